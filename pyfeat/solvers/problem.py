"""The kernel ridge system a solver works on, and what it returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pyfeat import ops
from pyfeat.ops._validate import for_inputs, peak_sq_norm
from pyfeat.backend import array_module
from pyfeat.backend import to_numpy as to_host  # small matrices for SciPy
from pyfeat.ops import blocked
from pyfeat.ops._plan import working_dtype
from pyfeat.solvers.cluster import ClusterRows, diagonal

__all__ = ["Problem", "Solution", "column_ratio", "to_host"]


@dataclass
class Problem:
    """(K + shift·I) α = Y with K = k(X, X).

    X : (n, d) training inputs, any real dtype (the working dtype is the ops' rule: float32 for
        float32 X). Placed on ``device`` once, here, contiguous in the working dtype; every
        kernel product then runs on the device through ``pyfeat.ops.blocked`` (no per-call
        checks or copies of X). Or rows on a Dask cluster (``pyfeat.solvers.cluster.ClusterRows``,
        already in the working dtype): the products run on the workers, the vectors (Y, α, V)
        are NumPy arrays here, and row subsets (``X[idx]``) stay on the cluster.
    Y : (n, k) float64 targets (or None for prediction-only problems).
    shift : nλ (``pcg`` also takes one shift per column of Y).  rng : numpy.random.Generator for subsamples and starting vectors.
    device : a backend name or ``pyfeat.ops.Device``.  block_size : rows per block of the ops.
    working_products : ``kmv`` multiplies V rounded to the working dtype (float32 sums within a
        tile for float32 X: faster with many columns, accurate to ~1e-6 relative; the ridge
        selection uses it) instead of V in float64.
    The kernel must be a validated kernel (``pyfeat.kernels.get``).
    """

    X: object
    Y: object
    kernel: object
    shift: float
    ridge: float
    rng: np.random.Generator
    device: object = None
    block_size: int | None = None
    working_products: bool = False
    kernel_evaluations: int = field(default=0, init=False)
    _diagonal: object = field(default=None, init=False, repr=False)

    def __post_init__(self):
        if self.on_cluster:  # the rows stay on the workers; the vectors here, on the CPU
            self.device = ops.device(self.X.backend)
            self.kernel = for_inputs(self.kernel, self.working_dtype, self.X.peak_sq_norm)
        else:
            self.device = ops.device(self.device)
            self.X = self._working(self.device.asarray(self.X))
            self.kernel = for_inputs(self.kernel, self.working_dtype, lambda: peak_sq_norm(self.xp, self.X))
        self._check_kernel_range()
        if self.Y is not None:
            self.Y = self.device.asarray(self.Y, dtype=np.float64)

    @property
    def on_cluster(self):
        """X is rows on a Dask cluster (``pyfeat.solvers.cluster``): every kernel product runs there."""
        return isinstance(self.X, ClusterRows)

    @property
    def n(self):
        return self.X.shape[0]

    @property
    def matvecs(self):
        """Kernel products so far, in units of one n × n matvec (n² values; ``kxx`` counts n²,
        though it evaluates about half of them)."""
        return self.kernel_evaluations / self.n**2

    @property
    def xp(self):
        return self.device.xp

    @property
    def working_dtype(self):
        return working_dtype(self.X)  # the ops' rule (float16 X works in float32)

    def kmv(self, A, B, V, symmetric=False):
        """k(A, B) @ V in float64 for V (n_b,) or (n_b, k) (cast to float64); A, B on the device
        in the working dtype's family. With float32 X the float32 kernel values multiply the
        float64 V in float64 (one product; see ``pyfeat.solvers``). ``symmetric``: A is B (the
        solvers' K(X, X) V, ``kxx``), each pair evaluated once where the device can."""
        xp = self.xp
        self.kernel_evaluations += A.shape[0] * B.shape[0]
        V = xp.asarray(V, dtype=self.working_dtype if self.working_products else xp.float64)
        V2 = V.reshape(V.shape[0], -1)
        if self.on_cluster:
            out = A.kernel_matvec(B, V2, self.kernel, self.block_size)
        else:
            out = blocked.kernel_matvec(self.device, A, self._working(B), V2, self.kernel, self.block_size,
                                        symmetric=symmetric)
        return out.astype(xp.float64, copy=False).reshape((A.shape[0],) + V.shape[1:])

    def kxx(self, V):
        """k(X, X) @ V in float64, each pair of rows evaluated once where the device can
        (``pyfeat.ops.blocked.kernel_matvec``'s ``symmetric``)."""
        return self.kmv(self.X, self.X, V, symmetric=True)

    def kernel_features(self, B, W, rows=None):
        """k(X, B) @ W in the working dtype (W cast to it): the features F of a preconditioner
        (``rows``: of X[rows] only)."""
        X = self.X if rows is None else self.X[rows]
        self.kernel_evaluations += X.shape[0] * B.shape[0]
        W = self.xp.asarray(W, dtype=self.working_dtype)
        if self.on_cluster:  # n × q, gathered here (pcg's F)
            return X.kernel_matvec(B, W, self.kernel, self.block_size)
        return blocked.kernel_matvec(self.device, X, self._working(B), W, self.kernel, self.block_size)

    def kgram(self, C, V):
        """k(X, C)ᵀ k(X, C) @ V in float64 (M, k) for V (M, k): each block of k(X, C) evaluated
        once (``pyfeat.ops.blocked.kernel_gram_matvec``, Falkon's fused product)."""
        self.kernel_evaluations += self.n * C.shape[0]
        V = self.xp.asarray(V, dtype=self.xp.float64)
        if self.on_cluster:
            return self.X.kernel_gram_matvec(C, V, self.kernel, self.block_size)
        return blocked.kernel_gram_matvec(self.device, self.X, self._working(C), V, self.kernel, self.block_size)

    def _working(self, B):
        """B contiguous in the working dtype (the Z side of the ops; a no-op for X itself)."""
        return self.xp.ascontiguousarray(B, dtype=self.working_dtype)

    def matvec(self, V):
        """(K + nλI) V."""
        return self.kxx(V) + self.shift * V

    def relative_residual(self, alpha):
        """max over columns of ‖(K + nλI)α − y‖ / ‖y‖ (one matvec)."""
        return column_ratio(self.matvec(alpha) - self.Y, self.Y).max()

    def _check_kernel_range(self):
        """ValueError when kernel values overflow the working dtype: |k(x, z)| ≤ max_i k(x_i, x_i)
        for these positive semidefinite kernels, so the float64 diagonal bounds every entry."""
        peak = float(np.max(self.kernel_diagonal()))
        dtype = np.dtype(self.working_dtype)
        if not peak < float(np.finfo(dtype).max):
            advice = "rescale X" + (" or pass float64 X" if dtype == np.float32 else "")
            raise ValueError(f"kernel {self.kernel.name!r} values reach {peak:.3g} on X, beyond {dtype.name}'s "
                             f"range: {advice}")

    def interpolates(self):
        """Whether nλ is at or below the rounding level of K's eigenvalues, n·eps·mean k(x, x)
        (eps of the working dtype): then K + nλI may be singular in the working precision."""
        eps = np.finfo(self.working_dtype).eps
        return self.ridge <= eps * float(np.mean(self.kernel_diagonal()))

    def kernel_diagonal(self):
        """k(x_i, x_i) for every training row, float64 (``KernelSpec.diagonal``), computed once
        (the range check, the ridge grid and the divergence test all read it)."""
        if self._diagonal is None:
            self._diagonal = self.X.kernel_diagonal(self.kernel) if self.on_cluster else \
                to_host(diagonal(self.kernel, self.X))
        return self._diagonal

    def host_kernel_matrix(self, A):
        """K(A, A) as a float64 NumPy matrix (A cast to float64; small sizes: the factorizations
        of direct, Nyström's centres and the solvers' subsamples run on the host)."""
        return self.host_kernel(A, A)

    def host_kernel(self, A, B):
        """K(A, B) as a float64 NumPy matrix (A, B cast to float64)."""
        if self.on_cluster:
            return A.kernel_matrix(B, self.kernel)
        A64 = to_host(A).astype(np.float64)
        B64 = A64 if B is A else to_host(B).astype(np.float64)
        host = self.device if self.device.xp is np else ops.device("numba")
        return blocked.kernel_matrix(host, A64, B64, self.kernel)


def column_ratio(R, Y):
    """‖R[:, j]‖ / ‖Y[:, j]‖ per column as a NumPy array (0/0 counts as 0)."""
    xp = array_module(R)
    num = to_host(xp.sqrt((R * R).sum(axis=0)))
    den = to_host(xp.sqrt((Y * Y).sum(axis=0)))
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.where(num > 0, np.inf, 0.0))


@dataclass
class Solution:
    """What a solver returns. ``coef`` (n_coef, k) float64; ``centers`` the points the
    coefficients refer to (None: the training set); ``info`` solver-specific settings;
    ``state`` what a later solve may reuse (pcg: its subsample and features F)."""

    coef: object
    n_iter: int
    converged: bool
    history: dict
    centers: object = None
    info: dict = field(default_factory=dict)
    state: object = None
