"""The largest eigenvalue of a PSD operator by block power iteration."""

from __future__ import annotations

import numpy as np

from pyfeat.backend import to_numpy as to_host

__all__ = ["top_eigenvalue"]


def top_eigenvalue(apply, n, k, rng, xp, n_iter=10):
    """Largest eigenvalue of the PSD operator ``apply`` (n×n) by block power iteration with
    ``k`` vectors and a final Rayleigh–Ritz step; returns (estimate, error bar) where the error
    bar ‖Av − θv‖ bounds the distance from θ to an eigenvalue."""
    V = xp.asarray(rng.standard_normal((n, k)))
    V, _ = xp.linalg.qr(V)
    for _ in range(n_iter):
        V, _ = xp.linalg.qr(apply(V))
    AV = apply(V)
    theta, S = np.linalg.eigh(to_host(V.T @ AV))
    v, av = V @ xp.asarray(S[:, -1]), AV @ xp.asarray(S[:, -1])
    return float(theta[-1]), float(to_host(xp.linalg.norm(av - theta[-1] * v)))
