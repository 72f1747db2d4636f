"""Solvers for kernel ridge regression: α = (K + nλI)⁻¹ Y, K = k(X, X), Y (n, k).

Every solver takes a :class:`Problem` (the training set, the kernel, the shift nλ, how the ops
run) and returns a :class:`Solution`. Iterative solvers touch K only through
``pyfeat.ops.kernel_matvec`` (the n×n matrix is never formed; memory is O(n·k) for the vectors
plus what the ops use for their blocks); ``direct`` materializes it.

=============  =================================================================================
``direct``     Cholesky of the float64 matrix K + nλI (small n; refuses above a memory limit).
``cg``         conjugate gradient on (K + nλI)α = Y, all right-hand sides in one matvec.
``richardson`` kernel gradient descent / Landweber α ← α − η((K + nλI)α − Y), η from a power
               iteration; ``early_stopping=t`` stops at gradient-flow time t (seed 003).
``eigenpro``   EigenPro 2 (Ma & Belkin 2017, 2019): mini-batch iteration preconditioned with the
               top-q Nyström eigensystem, step size from λ_{q+1} and the critical batch size.
``nystrom``    Falkon (Rudi, Carratino & Rosasco 2017): Nyström KRR on M centres, CG on the
               Cholesky-preconditioned normal equations; O(nMd) per iteration, O(M²) memory.
=============  =================================================================================

Precision. Solver vectors (α, residuals, search directions) are float64 whatever the dtype of
X. Kernel values are computed in the working dtype of X (float32 for float32 X). For float32 X,
a float64 vector v is passed to the matvec as two float32 columns hi = fl32(v), lo = fl32(v − hi)
and the two products are summed in float64 (one matvec with two columns costs about as much as
one with one column), so the iterate keeps float64 precision and the solver solves, to the
requested tolerance, the system of the float32-evaluated kernel (entries with relative error
≈ 1e-7). ``direct`` evaluates K in float64 from X cast to float64.

Residuals are reported relative: ‖(K + nλI)α − y‖ / ‖y‖ per column, the largest over columns.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from pyfeat import ops
from pyfeat.backend import array_module
from pyfeat.backend import to_numpy as to_host  # small matrices for SciPy
from pyfeat.ops._common import working_dtype

__all__ = ["SOLVERS", "Problem", "Solution", "Monitor", "ConvergenceWarning", "solve"]

SOLVERS = ("direct", "cg", "richardson", "eigenpro", "nystrom")


class ConvergenceWarning(UserWarning):
    """An iterative solver stopped before reaching its tolerance."""


def host_backend(backend):
    """Backend for small dense matrices that SciPy factorizes on the host."""
    return "numba" if backend in (None, "auto", "cuda") else backend


@dataclass
class Problem:
    """(K + shift·I) α = Y with K = k(X, X).

    X : (n, d) training inputs (NumPy or CuPy; float32 or float64 working dtype).
    Y : (n, k) float64 targets, same array module as X.
    shift : nλ.  rng : numpy.random.Generator for subsamples and starting vectors.
    """

    X: object
    Y: object
    kernel: object
    shift: float
    ridge: float
    rng: np.random.Generator
    backend: object = None
    block_size: int | None = None
    n_matvecs: int = field(default=0, init=False)

    @property
    def n(self):
        return self.X.shape[0]

    @property
    def xp(self):
        return array_module(self.X)

    @property
    def working_dtype(self):
        return working_dtype(self.X)  # the ops' rule (float16 X works in float32)

    def kmv(self, A, B, V):
        """k(A, B) @ V in float64 for float64 V (n_b,) or (n_b, k); see the module docstring."""
        xp = self.xp
        self.n_matvecs += 1
        V = xp.asarray(V, dtype=xp.float64)
        V2 = V.reshape(V.shape[0], -1)
        kw = {"backend": self.backend, "block_size": self.block_size}
        if self.working_dtype == np.float32:
            hi = V2.astype(xp.float32)
            lo = (V2 - hi).astype(xp.float32)
            out = ops.kernel_matvec(A, B, xp.concatenate([hi, lo], axis=1), self.kernel, **kw)
            k = V2.shape[1]
            out = out[:, :k].astype(xp.float64) + out[:, k:].astype(xp.float64)
        else:
            out = ops.kernel_matvec(A, B, V2, self.kernel, **kw).astype(xp.float64, copy=False)
        return out.reshape((A.shape[0],) + V.shape[1:])

    def matvec(self, V):
        """(K + nλI) V."""
        return self.kmv(self.X, self.X, V) + self.shift * V

    def relative_residual(self, alpha):
        """max over columns of ‖(K + nλI)α − y‖ / ‖y‖ (one matvec)."""
        return column_ratio(self.matvec(alpha) - self.Y, self.Y).max()


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


class Monitor:
    """Records (iteration, relative residual, elapsed seconds) and shows a tqdm bar when verbose."""

    def __init__(self, solver, max_iter, verbose):
        from tqdm.auto import tqdm

        self.start = time.perf_counter()
        self.iteration, self.residual, self.time = [], [], []
        self.bar = tqdm(total=max_iter, desc=f"KernelRidge[{solver}]", disable=not verbose, leave=False)

    def record(self, iteration, residual):
        self.iteration.append(int(iteration))
        self.residual.append(float(residual))
        self.time.append(time.perf_counter() - self.start)
        self.bar.update(1)
        self.bar.set_postfix(residual=f"{residual:.2e}")

    def history(self):
        self.bar.close()
        return {
            "iteration": np.asarray(self.iteration, dtype=np.int64),
            "residual": np.asarray(self.residual, dtype=np.float64),
            "time": np.asarray(self.time, dtype=np.float64),
        }


def warn_not_converged(solver, residual, tol, n_iter, why=""):
    warnings.warn(
        f"solver={solver!r} stopped after {n_iter} iterations at relative residual "
        f"{residual:.3g} > tol={tol:g}{why}",
        ConvergenceWarning,
        stacklevel=4,
    )


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


def solve(name, problem, *, tol, max_iter, monitor, **options):
    """Run solver ``name`` on ``problem``; ``options`` are the solver's own keyword arguments."""
    from pyfeat.solvers import cg, direct, eigenpro, nystrom, richardson

    impl = {"direct": direct, "cg": cg, "richardson": richardson, "eigenpro": eigenpro, "nystrom": nystrom}[name]
    return impl.solve(problem, tol=tol, max_iter=max_iter, monitor=monitor, **options)
