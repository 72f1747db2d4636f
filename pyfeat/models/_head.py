"""The second layer of the network, from the streamed normal equations.

Everything here works on m-sized quantities only (the Gram is the sufficient statistic of the
head problem): with Φ = σ(W x + b) over the n (preprocessed) samples ỹ,

    A = ΦᵀΦ / n  (m × m),   c = Φᵀỹ / n  (m,),   q = ‖ỹ‖² / n.

Ridge head (DESIGN.md convention): a_λ minimizes (1/n)‖Φa − ỹ‖² + λ‖a‖², i.e.
a_λ = (ΦᵀΦ/n + λI)⁻¹Φᵀỹ/n = (A + λI)⁻¹c. There is no separate intercept: Algorithm 1's α, β
already take out the mean and the linear part of y.

GCV from one eigendecomposition A = V diag(s) Vᵀ, with z = Vᵀc:

    a_λ = V diag(1/(s + λ)) z
    RSS(λ)/n = q − 2a_λᵀc + a_λᵀA a_λ = q − Σ_k z_k² (s_k + 2λ) / (s_k + λ)²
    df(λ) = tr Φ(ΦᵀΦ + nλI)⁻¹Φᵀ = Σ_k s_k / (s_k + λ)
    GCV(λ) = (RSS(λ)/n) / (1 − df(λ)/n)²

so every λ of the grid costs O(m) once V is known (Golub, Heath & Wahba 1979).
"""

from __future__ import annotations

import numpy as np

from pyfeat import _linalg

# ridge="auto": GCV over λ = mean eigenvalue of A × 10^k for k in this grid (scale free; the low
# end stays above the rounding level of a Gram accumulated in float32 blocks)
AUTO_GRID_EXPONENTS = np.linspace(-5.0, 1.0, 25)


def auto_grid(A):
    """The default ridge grid: tr(A)/m × 10^k, k = -5, -4.75, ..., 1."""
    return np.trace(A) / A.shape[0] * 10.0**AUTO_GRID_EXPONENTS


def eigh(A, n):
    """(s, V): eigenvalues and eigenvectors of the Gram A of n samples, with the eigenvalues that
    are zero in exact arithmetic set to 0: those below the float64 rounding level m·eps·max(s),
    and, when m > n, the m − n smallest (rank A ≤ n; rounding — float32 features above all —
    leaves them slightly positive, and GCV read them as directions fitted exactly)."""
    s, V = _linalg.eigh(A, driver="evd")
    m = s.shape[0]
    s = np.where(s > m * np.finfo(np.float64).eps * max(float(s[-1]), 0.0), s, 0.0)
    s[: max(m - n, 0)] = 0.0  # ascending order
    return s, V


def gcv_scores(s, z, q, n, grid):
    """GCV(λ) for each λ of ``grid`` (formula in the module docstring), over the nonzero s only,
    with RSS(λ)/n = r₀ + Σ_k (z_k²/s_k)(λ/(s_k + λ))², r₀ = q − Σ_k z_k²/s_k (the least-squares
    residual, clipped at 0): the same as q − Σ_k z_k²(s_k + 2λ)/(s_k + λ)² without its
    cancellation at small λ."""
    keep = s > 0
    s, z = s[keep], z[keep]
    lam = np.asarray(grid, np.float64)[:, None]
    w = z**2 / s
    r0 = max(q - float(np.sum(w)), 0.0)
    rss = r0 + np.sum(w * (lam / (s + lam)) ** 2, axis=1)
    df = np.sum(s / (s + lam), axis=1)
    with np.errstate(divide="ignore"):
        return np.where(df < n, rss / (1.0 - df / n) ** 2, np.inf)


def ridge_eig(s, V, z, lam):
    """a_λ = V diag(1/(s + λ)) z over the nonzero s (the null space of A gets no weight)."""
    keep = s > 0
    return V[:, keep] @ (z[keep] / (s[keep] + lam))


def ridge_solve(A, c, lam):
    """a_λ = (A + λI)⁻¹c by Cholesky."""
    M = A + lam * np.eye(A.shape[0])
    return _linalg.cho_solve(_linalg.cho_factor(M, overwrite_a=True), c)


def gradient_descent(A, c, q, a0, weight_decay, lr, steps):
    """The paper's head loop: a ← a − η[∇_a L + λa], t = 2..T, from a = a0.

    ∇_a L = (2/n)(ΦᵀΦa − Φᵀỹ) = 2(Aa − c) uses the Gram once: W and b are fixed, so A and c are
    too. Returns (a, losses) with losses[t] = L(a_t) = q − 2aᵀc + aᵀAa (the training MSE on ỹ)
    before step t and, last, after the final step.
    """
    a = np.array(a0, np.float64)
    losses = np.empty(steps + 1)
    for t in range(steps + 1):
        Aa = A @ a
        losses[t] = q - 2.0 * a @ c + a @ Aa
        if t < steps:
            a -= lr * (2.0 * (Aa - c) + weight_decay * a)
    return a, losses
