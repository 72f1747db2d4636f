"""``nystrom``: Falkon (Rudi, Carratino & Rosasco, "FALKON: An optimal large scale kernel
method", NeurIPS 2017).

**A different problem.** Nyström KRR restricts f to the span of M centres C = {c_1 … c_M}
(sampled uniformly without replacement from the training set, ``n_centers``):
f(x) = Σ_j β_j k(x, c_j), minimizing (1/n)Σ(f(x_i) − y_i)² + λ‖f‖²_H, i.e.

    H β = K_nMᵀ y / n,      H = K_nMᵀ K_nM / n + λ K_MM.

For M = n (C = X) this is K(K + nλI)β = Ky, so β = α of the full problem; for M < n it is an
approximation whose statistical error is that of full KRR once M ≳ √n log n (Rudi et al. 2015).

**Preconditioner** (Falkon, Algorithm 1): T = chol(K_MM + εM·I) (upper, TᵀT ≈ K_MM, ε the
machine epsilon of the working dtype), A = chol(TTᵀ/M + λI) (upper), B = T⁻¹A⁻¹/√n ≈ H^{-1/2}.
CG runs on the preconditioned system (BᵀHB scaled by n; T⁻ᵀK_MM T⁻¹ ≈ I)

    W γ = A⁻ᵀT⁻ᵀ K_nMᵀ y / n,     W γ = A⁻ᵀ( T⁻ᵀ K_nMᵀ K_nM T⁻¹A⁻¹γ / n + λ A⁻¹γ ),
    β = T⁻¹A⁻¹γ,

whose condition number is O(1) when M ≳ √n log n. ``tol`` applies to the relative residual of
this M-dimensional system (it is not ‖(K + nλI)α − y‖/‖y‖, which the Nyström problem does not
solve). Per iteration: K_nM v and K_nMᵀ w, two ``kernel_matvec`` calls of n·M kernel values
(O(nMd) FLOPs); memory O(M²) for T and A (float64) plus O(n) vectors.

Defaults: M = min(n, ⌈√n · ln n⌉, 20,000); ``max_iter`` = 200 CG iterations (Falkon typically
needs 10–50).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg

from pyfeat import _linalg
from pyfeat.solvers.krylov import conjugate_gradient
from pyfeat.solvers.monitor import warn_not_converged
from pyfeat.solvers.problem import Solution

DEFAULT_MAX_ITER = 200
MAX_DEFAULT_CENTERS = 20_000


def default_centers(n: int) -> int:
    return int(min(n, math.ceil(math.sqrt(n) * math.log(max(n, 2))), MAX_DEFAULT_CENTERS))


def solve(problem, *, tol, max_iter, monitor, n_centers=None):
    n, xp, lam = problem.n, problem.xp, problem.ridge
    max_iter = DEFAULT_MAX_ITER if max_iter is None else max_iter
    M = default_centers(n) if n_centers is None else min(n, n_centers)
    idx = np.arange(n) if M == n else np.sort(problem.rng.choice(n, size=M, replace=False))
    C = problem.X[xp.asarray(idx)]
    Kmm = problem.host_kernel_matrix(C)
    eps = np.finfo(problem.working_dtype).eps
    try:
        T = _linalg.cholesky(Kmm + eps * M * np.eye(M), lower=False, overwrite_a=True)
        A = _linalg.cholesky(_linalg.gram(T) / M + lam * np.eye(M), lower=False, overwrite_a=True)
    except np.linalg.LinAlgError:
        raise ValueError(
            f"solver='nystrom': the centres' kernel matrix is not positive definite even with "
            f"jitter εM (ridge={lam!r}); use ridge > 0 or fewer centres"
        ) from None
    T_d, A_d = xp.asarray(T), xp.asarray(A)
    solve_tri = _triangular(xp)

    def precond(u):  # T⁻¹A⁻¹u
        return solve_tri(T_d, solve_tri(A_d, u))

    def precond_t(v):  # A⁻ᵀT⁻ᵀv
        return solve_tri(A_d, solve_tri(T_d, v, trans="T"), trans="T")

    def knm_t_knm(v):  # K_nMᵀ K_nM v
        return problem.kmv(C, problem.X, problem.kmv(problem.X, C, v))

    def apply(u):
        au = solve_tri(A_d, u)
        return solve_tri(A_d, solve_tri(T_d, knm_t_knm(solve_tri(T_d, au)), trans="T") / n + lam * au, trans="T")

    rhs = precond_t(problem.kmv(C, problem.X, problem.Y)) / n
    gamma, it, converged, rel = conjugate_gradient(apply, rhs, tol, max_iter, monitor)
    if not converged:
        warn_not_converged("nystrom", rel, tol, it)
    info = {"n_centers": M, "center_indices": idx}
    return Solution(precond(gamma), it, converged, monitor.history(), centers=C, info=info)


def _triangular(xp):
    """solve_triangular for upper-triangular factors on the arrays' device."""
    if xp is np:
        return lambda T, b, trans="N": scipy.linalg.solve_triangular(T, b, trans=trans, lower=False, check_finite=False)
    from cupyx.scipy.linalg import solve_triangular

    return lambda T, b, trans="N": solve_triangular(T, b, trans=trans, lower=False)
