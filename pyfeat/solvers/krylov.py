"""Conjugate gradient for symmetric positive (semi)definite operators, several right-hand
sides at once (each column with its own step sizes)."""

from __future__ import annotations

from pyfeat.backend import array_module
from pyfeat.backend import to_numpy as to_host

__all__ = ["conjugate_gradient"]


def conjugate_gradient(apply, B, tol, max_iter, monitor, x0=None, it0=0):
    """CG for apply(X) = B with apply symmetric positive (semi)definite, several columns at once.

    Each column has its own step sizes; a column stops moving once ‖r_j‖ ≤ tol·‖b_j‖. Stops at
    a breakdown (pᵀAp ≤ 0: the operator is singular along p) instead of dividing by zero.
    Returns (X, iterations done, converged, recursive relative residual).
    """
    xp = array_module(B)
    X = xp.zeros_like(B) if x0 is None else x0.copy()
    R = B - apply(X) if x0 is not None else B.copy()
    bnorm = xp.sqrt((B * B).sum(axis=0))
    bnorm = xp.where(bnorm > 0, bnorm, 1.0)
    P = R.copy()
    rr = (R * R).sum(axis=0)
    active = xp.sqrt(rr) > tol * bnorm
    rel = float(to_host(xp.sqrt(rr) / bnorm).max())
    it = 0
    while bool(active.any()) and it < max_iter:
        AP = apply(P)
        pap = (P * AP).sum(axis=0)
        active &= pap > 0
        if not bool(active.any()):
            break
        step = xp.where(active, rr / xp.where(active, pap, 1.0), 0.0)
        X += step * P
        R -= step * AP
        rr_new = (R * R).sum(axis=0)
        P = R + xp.where(active, rr_new / xp.where(rr > 0, rr, 1.0), 0.0) * P
        rr = rr_new
        it += 1
        rel = float(to_host(xp.sqrt(rr) / bnorm).max())
        monitor.record(it0 + it, rel)
        active &= xp.sqrt(rr) > tol * bnorm
    return X, it, rel <= tol, rel
