"""Single-index target on spiked-covariance inputs (seed 000: the abstract on learning a
single-index f* under spiked covariance data, kernels needing β ≥ 1 − 1/p, networks β > 1 − 1/k)."""

from __future__ import annotations


import numpy as np

from pyfeat.tasks._base import U_ROLE, check_float, check_int, orthonormal_rows, random_orthonormal_rows, task_rng
from pyfeat.tasks._hermite import HermiteExpansion, hermite_table
from pyfeat.tasks.multi_index import IndexTask


class SingleIndex(IndexTask):
    """f*(x) = σ*(⟨x, μ⟩/√(1+θ)),  x ~ N(0, I_d + θ μμᵀ),  θ = d^β  (seed 000).

    μ ∈ R^d is a unit vector (random from ``seed``, or ``mu``); since ⟨x, μ⟩/√(1+θ) ~ N(0, 1),
    the link is written in the orthonormal Hermite basis, σ*(t) = Σ_j c_j He_j(t)/√(j!), and
    E f* = c_0, Var f* = Σ_{j≥1} c_j², E[∇f*] = c_1 μ/√(1+θ), H = E[∇²f*] = √2 c_2 μμᵀ/(1+θ).
    The information exponent k is the lowest j ≥ 1 with c_j ≠ 0, the degree p the highest.

    ``link``: a sequence (c_0, …, c_p) of Hermite coefficients, or None for the default link
    of information exponent ``k`` (default 2) and degree ``p`` (default k):
    σ* = (He_k/√(k!) + He_p/√(p!))/√2 if p > k, else He_k/√(k!) — E f* = 0, Var f* = 1.
    The spike: ``beta`` (θ = d^β, β ≥ 0; the seed takes β ∈ [0, 1)) or ``theta`` (θ ≥ 0)
    directly; neither means θ = 0 (isotropic x). Sampling draws z ~ N(0, I_d) and sets
    x = z + (√(1+θ) − 1)⟨μ, z⟩μ, whose covariance is exactly I_d + θμμᵀ.
    Exposes ``U`` = μ as a (1, d) row, so every MultiIndex diagnostic applies.
    """

    def __init__(self, d, link=None, *, k=None, p=None, beta=None, theta=None, mu=None, seed=0):
        d = check_int("d", d, 1)
        seed = check_int("seed", seed, 0)
        if link is None:
            k = 2 if k is None else check_int("k", k, 1)
            p = k if p is None else check_int("p", p, k)
            coeffs = np.zeros(p + 1)
            coeffs[k] += 1.0
            coeffs[p] += 1.0
            coeffs /= np.linalg.norm(coeffs)
        else:
            if k is not None or p is not None:
                raise ValueError("k and p are read from link when link is given: pass one or the other")
            coeffs = np.asarray(link, dtype=np.float64)
            if coeffs.ndim != 1 or coeffs.size < 2 or not np.all(np.isfinite(coeffs)) or not np.any(coeffs[1:]):
                raise ValueError(
                    "link must be a 1-D sequence of finite Hermite coefficients (c_0, ..., c_p) "
                    f"with some c_j != 0 for j >= 1, got {link!r}")
        if beta is not None and theta is not None:
            raise ValueError("give beta (theta = d**beta) or theta, not both")
        if beta is not None:
            beta = check_float("beta", beta, 0.0)
            theta = float(d) ** beta
        theta = 0.0 if theta is None else check_float("theta", theta, 0.0)
        if mu is None:
            U = random_orthonormal_rows(1, d, task_rng(seed, U_ROLE))
        else:
            U = orthonormal_rows("mu", np.reshape(np.asarray(mu, dtype=np.float64), (1, -1)), 1, d)
        self.seed = seed
        self.beta = beta
        self.theta = theta
        self.link_coefficients = coeffs.copy()
        self.link_coefficients.setflags(write=False)
        self.information_exponent = int(np.flatnonzero(coeffs[1:])[0]) + 1
        super().__init__(U, HermiteExpansion({(j,): c for j, c in enumerate(coeffs)}, 1), theta)

    @property
    def mu(self) -> np.ndarray:
        """The spike (signal) direction μ (d,), unit norm."""
        return self.U[0]

    def link(self, t):
        """σ*(t) on a 1-D array t (float64)."""
        T = hermite_table(np.asarray(t, dtype=np.float64), len(self.link_coefficients) - 1)
        return np.tensordot(self.link_coefficients, T, axes=1)

    def _describe(self):
        return (f"d={self.d}, k={self.information_exponent}, p={self.degree}, theta={self.theta:g}"
                + (f", beta={self.beta:g}" if self.beta is not None else "") + f", seed={self.seed}")
