"""The kernel ridge system a solver works on, and what it returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pyfeat import ops
from pyfeat.backend import array_module
from pyfeat.backend import to_numpy as to_host  # small matrices for SciPy
from pyfeat.ops import blocked
from pyfeat.ops._plan import working_dtype

__all__ = ["Problem", "Solution", "column_ratio", "to_host"]


@dataclass
class Problem:
    """(K + shift·I) α = Y with K = k(X, X).

    X : (n, d) training inputs, any real dtype (the working dtype is the ops' rule: float32 for
        float32 X). Placed on ``device`` once, here; every kernel product then runs on the
        device through ``pyfeat.ops.blocked`` (no per-call checks or copies of X).
    Y : (n, k) float64 targets (or None for prediction-only problems).
    shift : nλ.  rng : numpy.random.Generator for subsamples and starting vectors.
    device : a backend name or ``pyfeat.ops.Device``.  block_size : rows per block of the ops.
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
    n_matvecs: int = field(default=0, init=False)

    def __post_init__(self):
        self.device = ops.device(self.device)
        self.X = self.device.asarray(self.X)
        if self.Y is not None:
            self.Y = self.device.asarray(self.Y, dtype=np.float64)

    @property
    def n(self):
        return self.X.shape[0]

    @property
    def xp(self):
        return self.device.xp

    @property
    def working_dtype(self):
        return working_dtype(self.X)  # the ops' rule (float16 X works in float32)

    def kmv(self, A, B, V):
        """k(A, B) @ V in float64 for float64 V (n_b,) or (n_b, k); A, B on the device in the
        working dtype's family (see the module docstring of ``pyfeat.solvers``)."""
        xp = self.xp
        self.n_matvecs += 1
        V = xp.asarray(V, dtype=xp.float64)
        V2 = V.reshape(V.shape[0], -1)
        if self.working_dtype == np.float32:
            hi = V2.astype(xp.float32)
            lo = (V2 - hi).astype(xp.float32)
            out = blocked.kernel_matvec(self.device, A, B, xp.concatenate([hi, lo], axis=1), self.kernel,
                                        self.block_size)
            k = V2.shape[1]
            out = out[:, :k].astype(xp.float64) + out[:, k:].astype(xp.float64)
        else:
            out = blocked.kernel_matvec(self.device, A, B, V2, self.kernel, self.block_size)
            out = out.astype(xp.float64, copy=False)
        return out.reshape((A.shape[0],) + V.shape[1:])

    def matvec(self, V):
        """(K + nλI) V."""
        return self.kmv(self.X, self.X, V) + self.shift * V

    def relative_residual(self, alpha):
        """max over columns of ‖(K + nλI)α − y‖ / ‖y‖ (one matvec)."""
        return column_ratio(self.matvec(alpha) - self.Y, self.Y).max()

    def host_kernel_matrix(self, A):
        """K(A, A) as a float64 NumPy matrix (A cast to float64; small sizes: the factorizations
        of direct, Nyström's centres and EigenPro's subsample run on the host)."""
        A64 = to_host(A).astype(np.float64)
        host = self.device if self.device.xp is np else ops.device("numba")
        return blocked.kernel_matrix(host, A64, A64, self.kernel)


def column_ratio(R, Y):
    """‖R[:, j]‖ / ‖Y[:, j]‖ per column as a NumPy array (0/0 counts as 0)."""
    xp = array_module(R)
    num = to_host(xp.sqrt((R * R).sum(axis=0)))
    den = to_host(xp.sqrt((Y * Y).sum(axis=0)))
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.where(num > 0, np.inf, 0.0))


@dataclass
class Solution:
    """What a solver returns. ``coef`` (n_coef, k) float64; ``centers`` the points the
    coefficients refer to (None: the training set); ``info`` solver-specific settings."""

    coef: object
    n_iter: int
    converged: bool
    history: dict
    centers: object = None
    info: dict = field(default_factory=dict)
