"""Conjugate gradient for symmetric positive (semi)definite operators, several right-hand
sides at once (each column with its own step sizes), optionally preconditioned, and the
restarted solve the solvers share.

The iterations run with the BLAS at one thread (``pyfeat._linalg.single_threaded_blas``): the
vector work between two kernel products is small, and OpenBLAS's worker threads spin for about
0.1 s after each threaded call, taking the cores from the kernel product that follows (measured:
the symmetric NTK product, n = 20,000, d = 32, float32, 2 cores: 0.078 s alone, 0.122 s right
after a threaded 20,000 × 801 GEMV such as the Nyström preconditioner's; the GEMV itself 1.77 ms
on one thread against 1.58 on two)."""

from __future__ import annotations

import numpy as np

from pyfeat import _linalg
from pyfeat.backend import array_module
from pyfeat.backend import to_numpy as to_host

__all__ = ["conjugate_gradient", "restarted"]


def conjugate_gradient(apply, B, tol, max_iter, monitor, x0=None, it0=0, precondition=None):
    """CG for A X = B with A symmetric positive (semi)definite, several columns at once.

    ``apply(V, cols)`` = A V for the columns ``cols`` (indices into B's columns) of the system,
    so that each column may be its own system (shifted systems); ``precondition(R, cols)``
    (symmetric positive definite per column) gives preconditioned CG. Each column has its own
    step sizes; a column stops once ‖r_j‖ ≤ tol·‖b_j‖ (r the residual of the system itself) and
    the products are then computed for the active columns only. Stops a column at a breakdown
    (pᵀAp ≤ 0: the operator is singular along p) or where pᵀAp or the step's update is not
    finite (p overflowed: CG diverging in finite precision, e.g. a tiny ridge with float32
    products), keeping its last
    iterate, instead of dividing by zero or carrying inf/NaN into X (such a column ends
    unconverged: its residual stays above tol; the floating-point warnings of that product are
    not shown).
    Returns (X, iterations done, converged, recursive relative residual per column).
    """
    with np.errstate(over="ignore", invalid="ignore"):
        return _conjugate_gradient(apply, B, tol, max_iter, monitor, x0, it0, precondition)


def _conjugate_gradient(apply, B, tol, max_iter, monitor, x0, it0, precondition):
    xp = array_module(B)
    every = xp.arange(B.shape[1])
    X = xp.zeros_like(B) if x0 is None else x0.copy()
    R = B - apply(X, every) if x0 is not None else B.copy()
    bnorm = xp.sqrt((B * B).sum(axis=0))
    bnorm = xp.where(bnorm > 0, bnorm, 1.0)
    Zr = R if precondition is None else precondition(R, every)
    P = Zr.copy()
    rz = (R * Zr).sum(axis=0)
    rnorm = xp.sqrt((R * R).sum(axis=0))
    active = to_host(rnorm > tol * bnorm)
    it = 0
    while active.any() and it < max_iter:
        cols = xp.asarray(np.flatnonzero(active))
        Pa = P[:, cols]
        APa = apply(Pa, cols)
        pap = (Pa * APa).sum(axis=0)
        step = rz[cols] / xp.where(pap > 0, pap, 1.0)
        dX, dR = step * Pa, step * APa
        ok = to_host((pap > 0) & xp.isfinite(pap) & xp.isfinite(dX).all(axis=0) & xp.isfinite(dR).all(axis=0))
        it += 1
        if not ok.all():  # those columns stop at their last iterate
            active[to_host(cols)[~ok]] = False
            if not ok.any():
                monitor.record(it0 + it, float(to_host(rnorm / bnorm).max()))
                break
            keep = xp.asarray(np.flatnonzero(ok))
            cols, Pa, dX, dR = cols[keep], Pa[:, keep], dX[:, keep], dR[:, keep]
        X[:, cols] += dX
        R[:, cols] -= dR
        Ra = R[:, cols]
        Za = Ra if precondition is None else precondition(Ra, cols)
        rz_new = (Ra * Za).sum(axis=0)
        P[:, cols] = Za + (rz_new / xp.where(rz[cols] > 0, rz[cols], 1.0)) * Pa
        rz[cols] = rz_new
        rnorm[cols] = xp.sqrt((Ra * Ra).sum(axis=0))
        rel = to_host(rnorm / bnorm)
        monitor.record(it0 + it, float(rel.max()))
        active &= rel > tol
    rel = to_host(rnorm / bnorm)
    return X, it, bool((rel <= tol).all()), rel


def restarted(apply, B, tol, max_iter, monitor, precondition=None, x0=None):
    """CG (from ``x0``, default 0) until the true relative residual of every column (one more
    product) meets tol: the residual CG updates recursively drifts from the true one in finite
    precision, so CG restarts from the current X while that improves it (by at least half); a
    residual that no longer improves (a precision floor) ends the solve. Returns (X, iterations, restarts, true relative
    residual per column)."""
    with _linalg.single_threaded_blas():
        return _restarted(apply, B, tol, max_iter, monitor, precondition, x0)


def _restarted(apply, B, tol, max_iter, monitor, precondition, x0):
    xp = array_module(B)
    every = xp.arange(B.shape[1])

    def true_residual(X):
        R = apply(X, every) - B
        bnorm = xp.sqrt((B * B).sum(axis=0))
        return to_host(xp.sqrt((R * R).sum(axis=0)) / xp.where(bnorm > 0, bnorm, 1.0))

    X, it, _, _ = conjugate_gradient(apply, B, tol, max_iter, monitor, x0=x0, precondition=precondition)
    true = true_residual(X)
    restarts = 0
    while true.max() > tol and it < max_iter:
        X, more, _, _ = conjugate_gradient(apply, B, tol, max_iter - it, monitor, x0=X, it0=it,
                                           precondition=precondition)
        it += more
        restarts += 1
        previous, true = true, true_residual(X)
        if true.max() > 0.5 * previous.max() or more == 0:
            break
    return X, it, restarts, true
