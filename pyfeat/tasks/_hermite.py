"""Hermite expansions under the standard Gaussian, the exact calculus of every Gaussian task.

Convention: probabilists' Hermite polynomials He_k (He_0 = 1, He_1 = t, He_{k+1} = t He_k − k He_{k−1}),
E[He_j(t) He_k(t)] = k! δ_jk for t ~ N(0, 1), and the orthonormal h_k = He_k / √(k!). A function of
z ∈ R^r is written

    g(z) = Σ_α c_α Π_i h_{α_i}(z_i),        α ∈ N^r a multi-index,

so that for z ~ N(0, I_r): E[g] = c_0, Var g = Σ_{α≠0} c_α², E[∂_i g] = c_{e_i} and (Stein's identity,
E[∂_i∂_j g] = E[g (z_i z_j − δ_ij)] with z_i² − 1 = √2 h_2(z_i))
E[∂_i² g] = √2 c_{2e_i}, E[∂_i∂_j g] = c_{e_i+e_j} (i ≠ j).
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from pyfeat.backend import array_module


def multi_indices(r: int, k: int) -> list[tuple]:
    """All α ∈ N^r with |α| = k, in a fixed (lexicographic) order."""
    out = []
    for combo in itertools.combinations_with_replacement(range(r), k):
        alpha = [0] * r
        for i in combo:
            alpha[i] += 1
        out.append(tuple(alpha))
    return out


def hermite_table(t, p: int):
    """(p + 1, m) array of h_k(t) = He_k(t)/√(k!), k = 0..p, by the three-term recurrence
    h_{k+1} = (t h_k − √k h_{k−1}) / √(k+1)."""
    xp = array_module(t)
    T = xp.empty((p + 1,) + t.shape, dtype=t.dtype)
    T[0] = 1
    if p >= 1:
        T[1] = t
    for k in range(1, p):
        xp.multiply(t, T[k], out=T[k + 1])
        T[k + 1] -= math.sqrt(k) * T[k - 1]
        T[k + 1] /= math.sqrt(k + 1)
    return T


def monomial_coefficients(m: int) -> dict:
    """t^m in the orthonormal basis: t^m = Σ_j a_j h_j(t), from
    t^m = Σ_{k ≤ m/2} m! / (2^k k! (m−2k)!) He_{m−2k}(t)."""
    out = {}
    for k in range(m // 2 + 1):
        j = m - 2 * k
        out[j] = math.factorial(m) / (2**k * math.factorial(k) * math.factorial(j)) * math.sqrt(math.factorial(j))
    return out


def power_coefficients(b, p: int) -> dict:
    """(b·z)^p in the orthonormal product basis, b ∈ R^r: the multinomial expansion of (b·z)^p,
    each monomial z_i^{γ_i} expanded by :func:`monomial_coefficients`."""
    b = [float(v) for v in b]
    out = {}
    for gamma in multi_indices(len(b), p):
        weight = math.factorial(p)
        for bi, gi in zip(b, gamma):
            weight *= bi**gi / math.factorial(gi)
        if weight == 0.0:
            continue
        per_variable = [monomial_coefficients(g).items() for g in gamma]
        for combo in itertools.product(*per_variable):
            key = tuple(j for j, _ in combo)
            out[key] = out.get(key, 0.0) + weight * math.prod(c for _, c in combo)
    return out


class HermiteExpansion:
    """g(z) = Σ_α c_α Π_i h_{α_i}(z_i) on R^r, with its exact Gaussian moments (module docstring).

    ``coefficients``: {multi-index tuple of length r: coefficient}; zero coefficients are dropped.
    """

    def __init__(self, coefficients: dict, r: int):
        clean = {}
        for alpha, c in coefficients.items():
            key = tuple(alpha) if not np.isscalar(alpha) else (alpha,)
            if len(key) != r or any(int(a) != a or a < 0 for a in key):
                raise ValueError(
                    f"coefficients: every key must be a multi-index of {r} non-negative integers, got {alpha!r}")
            c = float(c)
            if not math.isfinite(c):
                raise ValueError(f"coefficients: coefficient of {alpha!r} must be finite, got {c}")
            key = tuple(int(a) for a in key)
            if c != 0.0:
                clean[key] = clean.get(key, 0.0) + c
        self.r = r
        self.coefficients = dict(sorted(clean.items(), key=lambda kv: (sum(kv[0]), kv[0])))
        self.degree = max((sum(a) for a in self.coefficients), default=0)
        self._max_power = [max((a[i] for a in self.coefficients), default=0) for i in range(r)]

    @property
    def mean(self) -> float:
        return self.coefficients.get((0,) * self.r, 0.0)

    @property
    def variance(self) -> float:
        return math.fsum(c * c for a, c in self.coefficients.items() if any(a))

    def expected_gradient(self) -> np.ndarray:
        """E[∇g] (r,): c_{e_i}."""
        out = np.zeros(self.r)
        for i in range(self.r):
            out[i] = self.coefficients.get(_unit(self.r, i), 0.0)
        return out

    def expected_hessian(self) -> np.ndarray:
        """E[∇²g] (r, r): √2 c_{2e_i} on the diagonal, c_{e_i+e_j} off it."""
        M = np.zeros((self.r, self.r))
        for i in range(self.r):
            for j in range(self.r):
                alpha = [0] * self.r
                alpha[i] += 1
                alpha[j] += 1
                M[i, j] = self.coefficients.get(tuple(alpha), 0.0) * (math.sqrt(2) if i == j else 1.0)
        return M

    def __call__(self, Z):
        """g on the rows of Z (m, r), float64, NumPy or CuPy."""
        xp = array_module(Z)
        m = Z.shape[0]
        tables = [hermite_table(xp.ascontiguousarray(Z[:, i]), self._max_power[i]) for i in range(self.r)]
        out = xp.zeros(m, dtype=Z.dtype)
        term = xp.empty(m, dtype=Z.dtype)
        for alpha, c in self.coefficients.items():
            factors = [tables[i][a] for i, a in enumerate(alpha) if a]
            if not factors:
                out += c
                continue
            xp.multiply(factors[0], c, out=term)
            for f in factors[1:]:
                term *= f
            out += term
        return out


def _unit(r, i):
    return tuple(1 if j == i else 0 for j in range(r))
