"""``ridge="auto"``: λ chosen over a grid at far less than one solve per λ.

**Grid** (default): λ_g = t̄·10^{k/4}, k = −28, −27, …, −4 (25 values, 1e-7·t̄ … 0.1·t̄), t̄ the
mean of k(x_i, x_i) (the trace of K/n: the scale of its eigenvalues τ_i), so the grid does not
depend on the units of x. For the NTK on x ~ N(0, I_32) t̄ ≈ 32 and λ = 1e-4 ≈ 3e-6·t̄.

**Exact** (``exact``, for n ≤ EXACT_MAX_N): from one eigendecomposition K = V diag(Λ) Vᵀ
(float64), c = Vᵀy, μ = nλ, s_j = μ/(Λ_j + μ) (the eigenvalues of I − H, H = K(K + μI)⁻¹), the
residual r = y − Hy = V diag(s) c and the leverages h_ii = Σ_j V_ij² (1 − s_j):

    LOO(λ) = (1/n) Σ_i (r_i / (1 − h_ii))²          (exact leave-one-out MSE; the default)
    GCV(λ) = (1/n) Σ_j (s_j c_j)² / ((1/n) Σ_j s_j)²   (Golub, Heath & Wahba 1979)

summed over the columns of y. GCV replaces every leverage by their mean; near an interpolation
peak (n ≈ the dimension of a harmonic space of the kernel) the leverages are uneven and GCV can
choose a small λ whose test error exceeds predicting 0 (the demo at d = 32, n = 1024: GCV 1.04
against Var y = 0.90; LOO 0.898, the grid's best). GCV costs O(n) per λ after the O(n³)
eigendecomposition, LOO O(n²); the fit at λ* is α = V diag(1/(Λ + μ*)) c with no further
factorization. EXACT_MAX_N = 4096: the
eigendecomposition costs 10–15× a Cholesky (measured here: 20 s at n = 4096 on one loaded
core), above it the held-out path is faster.

**Held-out** (``held_out``, larger n): a seeded split holds out 10 % of the rows (at least
min(1000, n/5)); the training rows' systems (K_tr + μ_g I)α_g = y_tr for the whole grid are
the columns of one preconditioned CG run (``pyfeat.solvers.pcg`` with one shift per column: one
kernel_matvec per iteration for all λ_g, in the working dtype, to the relative residual
SELECT_TOL = 1e-3, which moves the held-out predictions by at most about 1e-3·‖y‖), each scored
by the held-out MSE of K(X_val, X_tr)α_g (one more product with the grid's columns). Columns
whose residual did not reach SELECT_TOL within max_iter (default SELECT_MAX_ITER = 150) are
early-stopped iterates, not the
ridge solution: they get no score (NaN) and are not candidates. The cost is about one PCG solve
at the smallest λ of the grid (whose system is the slowest), not one solve per λ.

**The grid's lower end.** On the exponents config's NTK (float32, d = 32, n = 16,384) λ* is the
grid's smallest λ, the held-out score still falling slowly below it: a grid continued down
scored 0.35676 at 1.9e-7 against 0.35732 at 3.3e-6 = 1e-7·t̄ (test MSE 0.44886 against 0.44983,
0.2 %), and below 1e-7 the float32 products' CG diverged (those λ unscored). The log line of the
selection says when λ* is at an end of the grid.

λ* = argmin of the score (ties go to the larger λ); the estimator then fits at λ* on all rows,
with pcg from this run's subsample, features and α at λ* (``pyfeat.solvers.pcg.Start``).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.linalg

from pyfeat import _linalg
from pyfeat.solvers import pcg, subsample
from pyfeat.solvers.monitor import Monitor
from pyfeat.solvers.problem import Problem, to_host

__all__ = ["default_grid", "exact", "held_out", "best", "EXACT_MAX_N", "SELECT_TOL", "SELECT_MAX_ITER"]

EXACT_MAX_N = 4096
SELECT_TOL = 1e-3
SELECT_MAX_ITER = 150
GRID_EXPONENTS = np.arange(-28, -3) / 4.0


def default_grid(problem):
    """t̄·10^k for the exponents k = −7, −6.75, …, −1 (module docstring)."""
    diag = problem.kernel_diagonal()
    return float(np.mean(diag)) * 10.0**GRID_EXPONENTS


def exact(problem, grid, criterion="loo"):
    """(LOO or GCV scores over the grid, the fit at each λ as a function λ -> α): module
    docstring."""
    n = problem.n
    K = problem.host_kernel_matrix(problem.X)
    with _linalg.single_threaded_blas():
        lam, V = scipy.linalg.eigh(K, overwrite_a=True, check_finite=False, driver="evd")
    del K
    lam = np.maximum(lam, 0.0)
    c = V.T @ to_host(problem.Y)
    mu = n * np.asarray(grid, np.float64)[:, None]
    shrink = mu / (lam[None, :] + mu)  # (grid, n): the eigenvalues of I − K(K + μI)⁻¹
    if criterion == "gcv":
        scores = ((shrink**2) @ (c**2) / n).sum(axis=1) / np.mean(shrink, axis=1) ** 2
    else:
        one_minus_h = (V**2) @ shrink.T  # (n, grid): 1 − h_ii = Σ_j V_ij² s_j
        scores = np.array([np.mean(((V @ (s[:, None] * c)) / one_minus_h[:, [g]]) ** 2) * c.shape[1]
                           for g, s in enumerate(shrink)])

    def coef(ridge):
        return problem.xp.asarray(V @ (c / (lam[:, None] + n * ridge)))

    return scores, coef


def held_out(problem, grid, max_iter, subsample_size=None):
    """Held-out MSE over the grid (NaN: not converged), from one multi-shift PCG run on the
    training split (module docstring; ``subsample_size``: pcg's s). Returns (scores, validation size, the run's
    ``pcg.Start``)."""
    n, xp = problem.n, problem.xp
    n_val = max(min(1000, n // 5), n // 10)
    order = problem.rng.permutation(n)
    val, tr = xp.asarray(np.sort(order[:n_val])), xp.asarray(np.sort(order[n_val:]))
    grid = np.asarray(grid, np.float64)
    G, k = grid.size, problem.Y.shape[1]
    Ytr = problem.Y[tr]
    train = Problem(problem.X[tr], xp.tile(Ytr, (1, G)), problem.kernel, 0.0, float(grid.min()),
                    problem.rng, problem.device, problem.block_size)
    train.working_products = True
    shifts = np.repeat(train.n * grid, k)  # column g·k + j: output j at λ_g
    sol = pcg.solve(train, tol=SELECT_TOL, max_iter=max_iter, monitor=Monitor("ridge=auto", max_iter, False),
                    subsample_size=subsample_size, shifts=shifts, quiet=True)
    problem.kernel_evaluations += train.kernel_evaluations
    pred = problem.kmv(problem.X[val], train.X, sol.coef)
    err = ((pred - xp.tile(problem.Y[val], (1, G))) ** 2).mean(axis=0)
    scores = to_host(err).reshape(G, k).mean(axis=1)
    converged = np.asarray(sol.info["column_residuals"]).reshape(G, k).max(axis=1) <= SELECT_TOL
    sub, F = sol.state
    sub = dataclasses.replace(sub, indices=to_host(tr)[sub.indices])
    return np.where(converged, scores, np.nan), n_val, pcg.Start(n, tr, sub, F, sol.coef)


def best(grid, scores):
    """λ* = argmin of the finite scores, ties to the larger λ."""
    scores = np.asarray(scores, np.float64)
    finite = np.isfinite(scores)
    if not finite.any():
        raise ValueError("ridge='auto': no λ of the grid could be scored (none converged); raise max_iter "
                         "or give a grid of larger ridges")
    low = np.nanmin(scores)
    return float(np.max(np.asarray(grid)[finite & (scores <= low)]))
