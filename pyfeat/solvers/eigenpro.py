"""``eigenpro``: EigenPro 2 iteration (Ma & Belkin, "Diving into the shallows", NeurIPS 2017;
"Kernel machines that adapt to GPUs for effective large batch training", MLSys 2019).

**How ridge enters.** EigenPro is gradient descent in the RKHS H preconditioned by P; here it
runs on the regularized objective L(f) = (1/2n)Σ(f(x_i) − y_i)² + (λ/2)‖f‖²_H, whose gradient at
f = Σ_j α_j k(x_j, ·) has coefficients g/n with g = (K + nλI)α − y, and whose Hessian is T + λI
(T = (1/n)Σ_j k(x_j, ·) ⊗ k(x_j, ·), eigenvalues λ_i(K)/n). The minimizer is α = (K + nλI)⁻¹y and
every row of g vanishes there, so mini-batches with a fixed step converge to it exactly (no step
decay), for every ridge ≥ 0.

**Preconditioner.** S: a fixed uniform subsample of s points; K_SS = Σ σ_i u_i u_iᵀ. Nyström
gives T's top eigenpairs: τ_i = σ_i/s and H-orthonormal ψ_i = Σ_{j∈S} (u_ij/√σ_i) k(x_j, ·).
P = I − Σ_{i≤q} c_i ψ_i ⊗ ψ_i with

    c_i = 1 − (τ_{q+1} + λ)/(τ_i + λ)      (λ = 0: EigenPro's 1 − λ_{q+1}/λ_i)

flattens the top q eigenvalues of T + λI to τ_{q+1} + λ; P ≻ 0 since c_i < 1, so the iteration
converges for steps below 2/λ_max(P(T + λI)).

**Iteration.** Per mini-batch B (size m, rows in a fresh random order each epoch):

    g_B = k(X_B, X)α + nλα_B − y_B                     (one matvec: m·n kernel values)
    α_B ← α_B − η g_B
    α_S ← α_S + η U diag(c_i/σ_i) Uᵀ k(X_S, X_B) g_B   (P's correction: s·m kernel values)

Top eigenvalue of the preconditioned system in α units: Λ = n(τ_{q+1} + λ); largest
preconditioned diagonal β = max_{j∈S} (k(x_j, x_j) − Σ_i c_i σ_i u_ij² + nλ) (on the subsample,
as EigenPro 2 does).

**Step and batch** (EigenPro 2 / Ma, Bassily & Belkin 2018): the critical batch size is
m* = βn/Λ; the default batch is m = min(n, max(m*, 512)) (512: below it the ops' tiles run
inefficiently), and the step is the largest safe one for that batch, η = 1/(β + (m − 1)Λ/n)
(η = 1/Λ for full batches m = n).

**Defaults**: s = min(n, 2000) (``subsample``), q = min(100, s/10) (``n_components``),
``max_iter`` = 100 epochs. One epoch costs about one full matvec.

**Stopping.** The batch residuals g_B of one epoch (each exact when computed) give an estimate
of ‖Aα − y‖; when it drops below tol·‖y‖ the true residual is computed (one matvec) and the
solve ends if it is below tol too. If the estimate ever exceeds 2‖y‖ (divergence: the Nyström
estimates were off), η is halved and the epoch restarts from the last α.
"""

from __future__ import annotations

import math

import numpy as np

from pyfeat import _linalg
from pyfeat.solvers.monitor import warn_not_converged
from pyfeat.solvers.problem import Solution, to_host

DEFAULT_SUBSAMPLE = 2000
DEFAULT_COMPONENTS = 100
DEFAULT_MAX_EPOCHS = 100
MIN_BATCH = 512


def preconditioner(problem, s, q):
    """Subsample indices S, eigenvectors U (s, q), weights c_i/σ_i (q,), Λ and β."""
    n, lam = problem.n, problem.ridge
    S = np.sort(problem.rng.choice(n, size=s, replace=False))
    Kss = problem.host_kernel_matrix(problem.X[problem.xp.asarray(S)])
    sigma, V = _linalg.eigh(Kss, subset_by_index=[s - q - 1, s - 1])
    sigma, V = np.maximum(sigma[::-1], 0.0), V[:, ::-1]
    top, tau = sigma[:q], sigma / s
    c = 1.0 - (tau[q] + lam) / np.where(tau[:q] + lam > 0, tau[:q] + lam, 1.0)
    c = np.where(top > 0, np.clip(c, 0.0, 1.0), 0.0)
    weights = np.where(top > 0, c / np.where(top > 0, top, 1.0), 0.0)
    Lambda = n * (tau[q] + lam)
    beta = np.diag(Kss) - (V[:, :q] ** 2 * (c * top)).sum(axis=1) + problem.shift
    return S, V[:, :q], weights, float(max(Lambda, 1e-300)), float(max(beta.max(), 1e-300))


def solve(problem, *, tol, max_iter, monitor, subsample=None, n_components=None, batch_size=None):
    n, xp, Y = problem.n, problem.xp, problem.Y
    max_epochs = DEFAULT_MAX_EPOCHS if max_iter is None else max_iter
    s = min(n, DEFAULT_SUBSAMPLE if subsample is None else subsample)
    q = min(s - 1, min(DEFAULT_COMPONENTS, max(1, s // 10)) if n_components is None else n_components)
    if q < 1:
        raise ValueError(f"eigenpro needs a subsample of at least 2 points, got subsample={s}")
    S, U, weights, Lambda, beta = preconditioner(problem, s, q)
    critical = beta * n / Lambda
    m = min(n, max(math.ceil(critical), MIN_BATCH)) if batch_size is None else min(n, batch_size)
    eta = 1.0 / (beta + (m - 1) * Lambda / n)
    S_dev, U_dev, w_dev = xp.asarray(S), xp.asarray(U), xp.asarray(weights)
    XS = problem.X[S_dev]

    alpha = xp.zeros_like(Y)
    good = alpha.copy()
    ynorm = to_host(xp.sqrt((Y * Y).sum(axis=0)))
    halvings, epoch, converged, true = 0, 0, False, float("inf")
    while epoch < max_epochs:
        sq = np.zeros(Y.shape[1])
        order = problem.rng.permutation(n)
        for start in range(0, n, m):
            B = np.sort(order[start : start + m])
            B_dev = xp.asarray(B)
            g = problem.kmv(problem.X[B_dev], problem.X, alpha) + problem.shift * alpha[B_dev] - Y[B_dev]
            sq += to_host((g * g).sum(axis=0))
            alpha[B_dev] -= eta * g
            h = problem.kmv(XS, problem.X[B_dev], g)  # ⟨ψ_i, G⟩ = w_iᵀ K_SB g_B
            alpha[S_dev] += eta * (U_dev @ (w_dev[:, None] * (U_dev.T @ h)))
        epoch += 1
        estimate = float(np.max(np.sqrt(sq) / np.where(ynorm > 0, ynorm, 1.0)))
        monitor.record(epoch, estimate)
        if not np.isfinite(estimate) or estimate > 2.0:
            alpha, eta, halvings = good.copy(), eta / 2, halvings + 1
            continue
        good = alpha.copy()
        if estimate <= tol:
            true = problem.relative_residual(alpha)
            if true <= tol:
                converged = True
                break
    if not converged:
        true = problem.relative_residual(alpha)
        converged = true <= tol
        if not converged:
            warn_not_converged("eigenpro", true, tol, epoch)
    info = {"subsample": s, "n_components": q, "batch_size": m, "critical_batch": critical,
            "step": eta, "Lambda": Lambda, "beta": beta, "halvings": halvings, "final_residual": true}
    return Solution(alpha, epoch, converged, monitor.history(), info=info)
