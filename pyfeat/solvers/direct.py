"""``direct``: Cholesky of the materialized matrix K + nλI (float64), for small n.

K is evaluated in float64 (X cast to float64; ``pyfeat.ops.kernel_matrix``), the shift added to
its diagonal and factorized in place with ``scipy.linalg.cho_factor`` (LAPACK potrf), then
α = cho_solve(·, Y). Cost n²d + n³/3 FLOPs, memory 8n² bytes (the one matrix).

The matrix must fit in :func:`memory_limit` bytes: ``PYFEAT_DIRECT_MEMORY_MB`` if set, else half
of the physical memory, at most 8 GiB (n ≤ 32,768). Above it ``direct`` refuses with a
ValueError instead of swapping. A matrix that is not numerically positive definite (ridge = 0
with duplicate or zero rows, or with an ill-conditioned K) raises a ValueError saying so.
"""

from __future__ import annotations

import os

import numpy as np

from pyfeat import _linalg
from pyfeat.backend import env_mib
from pyfeat.solvers.problem import Solution, to_host

DEFAULT_LIMIT = 8 * 2**30


def memory_limit() -> int:
    """Bytes the direct solver may use for the n×n float64 matrix (see the module docstring)."""
    limit = env_mib("PYFEAT_DIRECT_MEMORY_MB")
    if limit is not None:
        return limit
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        physical = 2 * DEFAULT_LIMIT
    return min(DEFAULT_LIMIT, physical // 2)


def matrix_bytes(n: int) -> int:
    return 8 * n * n


def fits(n: int) -> bool:
    return matrix_bytes(n) <= memory_limit()


def solve(problem, *, tol, max_iter, monitor):
    n = problem.n
    if not fits(n):
        raise ValueError(
            f"solver='direct' needs the n×n float64 matrix, {matrix_bytes(n) / 2**30:.1f} GiB for "
            f"n={n}, over the direct solver's memory limit of {memory_limit() / 2**30:.1f} GiB "
            f"(PYFEAT_DIRECT_MEMORY_MB); "
            f"use solver='cg', 'eigenpro' or 'nystrom', which never form it"
        )
    K = problem.host_kernel_matrix(problem.X)
    K[np.diag_indices(n)] += problem.shift
    try:
        factor = _linalg.cho_factor(K, lower=True, overwrite_a=True)
    except np.linalg.LinAlgError:
        raise ValueError(
            f"solver='direct': K + nλI is not positive definite (ridge={problem.ridge!r}); K is "
            f"singular or too ill-conditioned (duplicate or zero rows of X?): use ridge > 0"
        ) from None
    coef = _linalg.cho_solve(factor, to_host(problem.Y))
    del K, factor
    coef = problem.xp.asarray(coef)
    monitor.record(1, problem.relative_residual(coef))
    return Solution(coef, n_iter=1, converged=True, history=monitor.history())
