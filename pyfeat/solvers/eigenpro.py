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

Top eigenvalue of the preconditioned system in α units: Λ = n(λ_max(K_P)/s′ + λ), and largest
preconditioned diagonal β = max k_P(x, x) + nλ, both on a held-out subsample S′ of
s′ = min(2000, n − s) points (k_P the kernel of P(T + λI): k_P(x, z) = k(x, z) −
Σ_i c_i ψ_i(x)ψ_i(z)). On S itself both are biased low, by 1.4–2.6× for Λ (the Nyström
eigenvectors do not deflate the full operator exactly), which made larger q diverge; on S′ Λ is
over-estimated 1.4–3.3× (research notes §1.5), a safe side.

**Step and batch** (EigenPro 2 / Ma, Bassily & Belkin 2018): the critical batch size is
m* = βn/Λ; the default batch is m = min(n, max(m*, 512)) (512: below it the ops' tiles run
inefficiently); the step is η = 1/β for m ≤ m* and 1.8/(β + (m − 1)Λ/n) above (the EigenPro 2
codes run at 2/(β + (m − 1)Λ/n); 1.8 keeps a margin against the estimates). In the mini-batch
regime the slowest directions contract by about e^{−nλ/β} per epoch whatever q is; q lowers β
(the top directions leave the diagonal) and raises m*.

**Defaults** (``pyfeat.solvers.subsample``): s from the device and memory (at most 4000 on the
CPU) and min(s, n/2), so that the correction costs at most half a matvec per epoch; q = the
number of τ̂_i above 2λ (flattening directions within 2× of the ridge gains nothing), at most
⌈s/5⌉ and 1000 — for the NTK at d = 32 that covers the spherical-harmonic degrees 0–2
(q ≈ 560, where the spectrum drops 700×; research notes §1.4), where q = 100 stopped inside the
degree-2 cluster. ``max_iter`` = 100 epochs. An epoch costs one matvec (n² kernel values) plus
s·n for the corrections.

**Stopping.** The batch residuals g_B of one epoch (each exact when computed) give an estimate
of ‖Aα − y‖; when it drops below tol·‖y‖ the true residual is computed (one matvec) and the
solve ends if it is below tol too. If the estimate ever exceeds 2‖y‖ (divergence: the Nyström
estimates were off), η is halved and the epoch restarts from the last α.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg

from pyfeat import _linalg
from pyfeat.solvers import subsample
from pyfeat.solvers.monitor import not_converged
from pyfeat.solvers.problem import Solution, to_host

DEFAULT_MAX_EPOCHS = 100
MIN_BATCH = 512
MAX_COMPONENTS = 1000
HELD_OUT = 2000


def components(sub, lam):
    """The default q (module docstring); 0 (no preconditioning) when the subsample has only one
    eigenpair (n = 2), since the step needs σ_{q+1}."""
    return int(min(sub.tau.size - 1, max(1, min(MAX_COMPONENTS, np.count_nonzero(sub.tau > 2 * lam)))))


def preconditioner(problem, sub, q):
    """Weights c_i/σ_i (q,), Λ and β (module docstring) from the subsample's top q + 1
    eigenpairs, Λ and β on held-out points."""
    n, lam, s = problem.n, problem.ridge, sub.size
    top, tau = sub.sigma[:q], sub.sigma / s
    c = 1.0 - (tau[q] + lam) / np.where(tau[:q] + lam > 0, tau[:q] + lam, 1.0)
    c = np.where(top > 0, np.clip(c, 0.0, 1.0), 0.0)
    weights = np.where(top > 0, c / np.where(top > 0, top, 1.0), 0.0)
    rest = np.setdiff1d(np.arange(n), sub.indices, assume_unique=True)
    if rest.size == 0:  # S is everything: the estimates on S itself
        held, K_hS, K_hh = sub.indices, sub.K, sub.K
    else:
        held = np.sort(problem.rng.choice(rest, size=min(HELD_OUT, rest.size), replace=False))
        Xh = problem.X[problem.xp.asarray(held)]
        K_hS = problem.host_kernel(Xh, sub.X)
        K_hh = problem.host_kernel(Xh, Xh)
    Phi = K_hS @ sub.U[:, :q]
    K_P = K_hh - (Phi * weights) @ Phi.T
    with _linalg.single_threaded_blas():
        top_P = scipy.linalg.eigvalsh(K_P, subset_by_index=[held.size - 1, held.size - 1], check_finite=False)[0]
    Lambda = n * (max(top_P, 0.0) / held.size + lam)
    beta = float(np.max(np.diag(K_P))) + problem.shift
    return weights, float(max(Lambda, 1e-300)), float(max(beta, 1e-300))


def solve(problem, *, tol, max_iter, monitor, subsample_size=None, n_components=None, batch_size=None):
    n, xp, Y = problem.n, problem.xp, problem.Y
    max_epochs = DEFAULT_MAX_EPOCHS if max_iter is None else max_iter
    s = min(subsample.subsample_size(problem), max(2, n // 2)) if subsample_size is None else min(n, subsample_size)
    if s < 2:
        raise ValueError(f"eigenpro needs a subsample of at least 2 points, got subsample={s}")
    rank = None if n_components is None else n_components + 1
    sub = subsample.draw(problem, s, rank=rank)
    q = components(sub, problem.ridge) if n_components is None else min(n_components, sub.tau.size - 1)
    weights, Lambda, beta = preconditioner(problem, sub, q)
    critical = beta * n / Lambda
    m = min(n, max(math.ceil(critical), MIN_BATCH)) if batch_size is None else min(n, batch_size)
    eta = 1.0 / beta if m <= critical else 1.8 / (beta + (m - 1) * Lambda / n)
    S_dev, U_dev, w_dev = xp.asarray(sub.indices), xp.asarray(sub.U[:, :q]), xp.asarray(weights)
    XS = sub.X

    alpha = xp.zeros_like(Y)
    good = alpha.copy()
    ynorm = to_host(xp.sqrt((Y * Y).sum(axis=0)))
    halvings, epoch, converged, true = 0, 0, False, float("inf")
    with _linalg.single_threaded_blas():  # the corrections' GEMVs: see pyfeat.solvers.krylov
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
            not_converged("eigenpro", problem, true, tol, epoch)
    info = {"subsample": s, "n_components": q, "tau": sub.tau, "batch_size": m, "critical_batch": critical,
            "step": eta, "Lambda": Lambda, "beta": beta, "halvings": halvings, "final_residual": true}
    return Solution(alpha, epoch, converged, monitor.history(), info=info)
