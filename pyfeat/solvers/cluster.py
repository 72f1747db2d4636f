"""Training rows on a Dask cluster: what ``Problem.X`` is when ``KernelRidge`` fits a dask array
with a ``distributed.Client``.

X is assembled once on every worker (``pyfeat._dask.Replicated``); :class:`ClusterRows` is a
set of its rows (all of them, a subsample, Nyström's centres, a mini-batch, the ridge
selection's split), held as row indices on the client. A kernel product k(A, B) V splits the
rows of A into one part per worker thread; each part runs the NumPy/Numba op of
``pyfeat.ops.blocked`` on its worker, against the rows B of that worker's copy. Per product V
(and B's indices when B is a subset) goes once to each worker and the |A|×k result comes back:
the solver's vectors stay on the client as NumPy arrays, X never comes here.

Communication (8-byte values; W workers, k columns of y; each product also one round trip):

===============  ==================================================================================
once per fit     (W − 1)·n·d values of X between the workers (each assembles its copy)
cg, richardson   per iteration one matvec: V (n·k) to each worker, n·k back
pcg              as cg; once: F = k(X, X_S)W (n × q) gathered here, P⁻¹ applied here (4nqk FLOPs)
eigenpro         per mini-batch of m rows: α (n·k) to each worker and m·k back, then the correction
                 g (m·k) out and s·k back
nystrom          per iteration: M·k to each worker, one M·k partial per worker thread back; once:
                 the M centres (M·d) and k(C, X)Y (Y to each worker)
direct, LOO/GCV  K (n × n, float64) evaluated on the workers and gathered here (small n)
===============  ==================================================================================
"""

from __future__ import annotations

import numpy as np

from pyfeat import ops
from pyfeat.backend import array_module
from pyfeat.ops import blocked
from pyfeat.ops._validate import peak_sq_norm

__all__ = ["ClusterRows", "diagonal"]


class ClusterRows:
    """Rows ``index`` (None: all) of the replicated X; ``backend``: the workers' device, "numba"
    (or "numpy", the reference): the workers compute on their CPUs."""

    def __init__(self, replicated, backend, index=None):
        self.replicated, self.backend, self.index = replicated, backend, index

    @property
    def shape(self):
        n, d = self.replicated.shape
        return (n if self.index is None else self.index.size, d)

    @property
    def dtype(self):
        return self.replicated.dtype

    def __getitem__(self, rows):
        rows = np.asarray(rows)
        return ClusterRows(self.replicated, self.backend, rows if self.index is None else self.index[rows])

    def _map(self, fn, *args):
        """fn(X, part, *args) for the parts of these rows (slices of X when they are all of X),
        in order."""
        n = self.shape[0]
        count = min(n, len(self.replicated.slots))
        bounds = np.linspace(0, n, count + 1).astype(int)
        parts = ([slice(s, e) for s, e in zip(bounds[:-1], bounds[1:])] if self.index is None
                 else np.split(self.index, bounds[1:-1]))
        return self.replicated.map(fn, parts, *args)

    def kernel_matvec(self, B, V, kernel, block_size):
        """k(self, B) V as one NumPy array (``pyfeat.ops.blocked.kernel_matvec``, V's dtype)."""
        return np.concatenate(self._map(_matvec, B.index, V, kernel, self.backend, block_size), axis=0)

    def kernel_gram_matvec(self, C, V, kernel, block_size):
        """k(self, C)ᵀ k(self, C) V, float64 (M, k): the parts' sums added in order."""
        parts = self._map(_gram_matvec, C.index, V, kernel, self.backend, block_size)
        return np.sum(parts, axis=0)

    def kernel_matrix(self, B, kernel):
        """K(self, B) float64 from the rows cast to float64 (small sizes; it comes here)."""
        return np.concatenate(self._map(_kernel_matrix, B.index, kernel, self.backend), axis=0)

    def kernel_diagonal(self, kernel):
        return np.concatenate(self._map(_diagonal, kernel))

    def peak_sq_norm(self):
        """max_i |x_i|² over these rows, float64 (``pyfeat.ops._validate.peak_sq_norm``)."""
        return max(self._map(_peak_sq_norm))

    def gather(self):
        """These rows as a NumPy array here (small sets: Nyström's centres)."""
        return np.concatenate(self._map(_take))


def diagonal(kernel, A):
    """k(a_i, a_i) for the rows of A, float64 (``KernelSpec.diagonal`` of |a|²)."""
    with np.errstate(over="ignore"):  # an overflowing |a|² gives k = inf, which the caller reports
        sq = (A.astype(array_module(A).float64) ** 2).sum(axis=1)
        return kernel.diagonal(sq)


# -- on the workers: X is the worker's copy, rows its part ------------------------------------


def _rows(X, rows):
    return X if rows is None else np.ascontiguousarray(X[rows])


def _matvec(X, part, cols, V, kernel, backend, block_size):
    return blocked.kernel_matvec(ops.device(backend), X[part], _rows(X, cols), V, kernel, block_size)


def _gram_matvec(X, part, cols, V, kernel, backend, block_size):
    return blocked.kernel_gram_matvec(ops.device(backend), X[part], _rows(X, cols), V, kernel, block_size)


def _kernel_matrix(X, part, cols, kernel, backend):
    return blocked.kernel_matrix(ops.device(backend), X[part].astype(np.float64), _rows(X, cols).astype(np.float64),
                                 kernel)


def _diagonal(X, part, kernel):
    return diagonal(kernel, X[part])


def _peak_sq_norm(X, part):
    return peak_sq_norm(np, X[part])


def _take(X, part):
    return X[part]
