"""``nystrom``: Falkon (Rudi, Carratino & Rosasco, "FALKON: An optimal large scale kernel
method", NeurIPS 2017).

**A different problem.** Nyström KRR restricts f to the span of M centres C = {c_1 … c_M}
(sampled uniformly without replacement from the training set, ``n_centers``):
f(x) = Σ_j β_j k(x, c_j), minimizing (1/n)Σ(f(x_i) − y_i)² + λ‖f‖²_H, i.e.

    H β = K_nMᵀ y / n,      H = K_nMᵀ K_nM / n + λ K_MM.

For M = n (C = X) this is K(K + nλI)β = Ky, so β = α of the full problem; for M < n it is an
approximation whose statistical error is that of full KRR once M ≳ √n log n (Rudi et al. 2015).

**Preconditioner** (Falkon, Algorithm 1): T = chol(K_MM + εM·I) (upper, TᵀT ≈ K_MM, ε the
machine epsilon of the working dtype), A = chol(TTᵀ/M + λI) (upper; TTᵀ by LAPACK's lauum,
M³/3 FLOPs in place), B = T⁻¹A⁻¹/√n ≈ H^{-1/2}.
CG runs on the preconditioned system (BᵀHB scaled by n; T⁻ᵀK_MM T⁻¹ ≈ I)

    W γ = A⁻ᵀT⁻ᵀ K_nMᵀ y / n,     W γ = A⁻ᵀ( T⁻ᵀ K_nMᵀ K_nM T⁻¹A⁻¹γ / n + λ A⁻¹γ ),
    β = T⁻¹A⁻¹γ,

whose condition number is O(1) when M ≳ √n log n. ``tol`` applies to the relative residual of
this M-dimensional system (it is not ‖(K + nλI)α − y‖/‖y‖, which the Nyström problem does not
solve). Per iteration one fused product K_nMᵀ(K_nM v) (``Problem.kgram``: each block of K_nM is
evaluated once and reduced twice, as Falkon's fmmv does; n·M kernel values, O(nMd) FLOPs);
memory O(M²) for T and A (float64) plus O(n) vectors.

**Default M.** The statistical theory asks for M ≳ d_eff(λ) = Σ_i τ_i/(τ_i + λ) centres at the
ridge used (Rudi, Camoriano & Rosasco 2015; Bach 2013; √n log n is the value at λ ≍ 1/√n, not
at a fixed small λ). The default is

    M = min(n, max(⌈√n ln n⌉, ⌈2 d̂_eff(λ)⌉), 20,000, M_mem),

d̂_eff estimated from the top eigenvalues of a subsample of min(n, 2000) points
(``pyfeat.solvers.subsample``; error −2 … −13 %), M_mem from the two float64 M × M factors in
the direct solver's memory limit. The factor: M/d_eff = 1.5 left +2.1 % on the test problem of
tests/test_kernel_ridge_scale.py (NTK, d = 16, n = 3000, λ = 1e-3; the research notes measured
up to +2.6 % at 1.5), 2 gives +1.2 % there; figures on larger problems in
benchmarks/test_bench_kernel_ridge.py. At small ridges d_eff is a
large fraction of n (0.6–0.8 n at λ = 1e-4 for the NTK at d = 32), so M approaches n and Nyström
saves little: ``solver="auto"`` then runs ``pcg`` on the full problem. ``max_iter`` = 200 CG
iterations (Falkon typically needs 10–50).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg

from pyfeat import _linalg
from pyfeat.solvers import direct, subsample
from pyfeat.solvers.krylov import restarted
from pyfeat.solvers.monitor import not_converged
from pyfeat.solvers.problem import Solution

DEFAULT_MAX_ITER = 200
MAX_DEFAULT_CENTERS = 20_000
DEFF_FACTOR = 2.0
DEFF_SUBSAMPLE = 2000


def default_centers(problem):
    """The default M (module docstring) and the d̂_eff(λ) it came from."""
    n = problem.n
    sub = subsample.draw(problem, min(n, DEFF_SUBSAMPLE))
    deff = sub.effective_dimension(n, problem.ridge)
    m_mem = int(math.sqrt(direct.memory_limit() / (2 * 8)))
    low = math.ceil(math.sqrt(n) * math.log(max(n, 2)))
    return int(min(n, max(low, math.ceil(DEFF_FACTOR * deff)), MAX_DEFAULT_CENTERS, m_mem)), deff


def solve(problem, *, tol, max_iter, monitor, n_centers=None):
    n, xp, lam = problem.n, problem.xp, problem.ridge
    max_iter = DEFAULT_MAX_ITER if max_iter is None else max_iter
    M, deff = default_centers(problem) if n_centers is None else (min(n, n_centers), None)
    idx = np.arange(n) if M == n else np.sort(problem.rng.choice(n, size=M, replace=False))
    C = problem.X[xp.asarray(idx)]
    K = problem.host_kernel_matrix(C)
    eps = np.finfo(problem.working_dtype).eps
    try:
        with _linalg.single_threaded_blas():  # the factors overwrite their inputs: two M × M at most
            K[np.diag_indices(M)] += eps * M
            T = scipy.linalg.cholesky(K, lower=False, overwrite_a=True, check_finite=False)
            del K
            TT, _ = scipy.linalg.lapack.dlauum(np.array(T, order="F"), lower=0, overwrite_c=1)  # T Tᵀ (upper)
            TT /= M
            TT[np.diag_indices(M)] += lam
            A = scipy.linalg.cholesky(TT, lower=False, overwrite_a=True, check_finite=False)
            del TT
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

    def knm_t_knm(v):  # K_nMᵀ K_nM v, each block of K_nM evaluated once
        return problem.kgram(C, v)

    def apply(u, cols=None):
        au = solve_tri(A_d, u)
        return solve_tri(A_d, solve_tri(T_d, knm_t_knm(solve_tri(T_d, au)), trans="T") / n + lam * au, trans="T")

    rhs = precond_t(problem.kmv(C, problem.X, problem.Y)) / n
    gamma, it, _, rel = restarted(apply, rhs, tol, max_iter, monitor)
    rel = float(rel.max())
    converged = rel <= tol
    if not converged:
        not_converged("nystrom", problem, rel, tol, it)
    info = {"n_centers": M, "center_indices": idx, "effective_dimension": deff, "final_residual": rel}
    return Solution(precond(gamma), it, converged, monitor.history(), centers=C, info=info)


def _triangular(xp):
    """solve_triangular for upper-triangular factors on the arrays' device."""
    if xp is np:
        return lambda T, b, trans="N": scipy.linalg.solve_triangular(T, b, trans=trans, lower=False, check_finite=False)
    from cupyx.scipy.linalg import solve_triangular

    return lambda T, b, trans="N": solve_triangular(T, b, trans=trans, lower=False)
