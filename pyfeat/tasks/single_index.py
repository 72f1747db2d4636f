"""Single-index target on spiked-covariance inputs (seed 000: the abstract on learning a
single-index f* under spiked covariance data, kernels needing β ≥ 1 − 1/p, networks β > 1 − 1/k)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from pyfeat.tasks._base import U_ROLE, check_float, check_int, orthonormal_rows, random_orthonormal_rows, task_rng
from pyfeat.tasks._hermite import HermiteExpansion, hermite_table
from pyfeat.tasks.multi_index import IndexTask


class SingleIndex(IndexTask):
    """Single index f*(x) = σ*(⟨x, μ⟩/√(1+θ)),  x ~ N(0, I_d + θ μμᵀ),  θ = d^β  (seed 000).

    μ ∈ R^d is a unit vector (random from ``seed``, or ``mu``); since ⟨x, μ⟩/√(1+θ) ~ N(0, 1),
    the link is written in the orthonormal Hermite basis, σ*(t) = Σ_j c_j He_j(t)/√(j!), and
    E f* = c_0, Var f* = Σ_{j≥1} c_j², E[∇f*] = c_1 μ/√(1+θ), H = E[∇²f*] = √2 c_2 μμᵀ/(1+θ).
    The information exponent k is the lowest j ≥ 1 with c_j ≠ 0, the degree p the highest.

    Sampling draws z ~ N(0, I_d) and sets x = z + (√(1+θ) − 1)⟨μ, z⟩μ, whose covariance is
    exactly I_d + θμμᵀ. Exposes ``U`` = μ as a (1, d) row, so every MultiIndex diagnostic
    applies.

    Parameters
    ----------
    d : int
        Input dimension, >= 1.
    link : sequence of float, optional
        (c_0, …, c_p), the Hermite coefficients of σ*, some c_j ≠ 0 for j ≥ 1; None for the
        default link of information exponent ``k`` and degree ``p``:
        σ* = (He_k/√(k!) + He_p/√(p!))/√2 if p > k, else He_k/√(k!) — E f* = 0, Var f* = 1.
    k : int, optional
        Information exponent of the default link (default 2); not with ``link``.
    p : int, optional
        Degree of the default link, >= k (default k); not with ``link``.
    beta : float, optional
        The spike θ = d^β, β ≥ 0 (the seed takes β ∈ [0, 1)); not with ``theta``.
    theta : float, optional
        The spike θ ≥ 0 directly. Neither ``beta`` nor ``theta``: θ = 0 (isotropic x).
    mu : array_like of shape (d,), optional
        The unit spike direction μ (default: random from ``seed``).
    seed : int, default 0
        Draws μ.

    Attributes
    ----------
    theta : float
        θ.
    beta : float or None
        β when it was given.
    link_coefficients : ndarray
        (c_0, …, c_p), read-only.
    information_exponent : int
        k, the lowest j ≥ 1 with c_j ≠ 0.
    seed : int
        The task's seed.

    Raises
    ------
    ValueError
        Naming the argument: d, k, p, beta, theta or seed out of range, ``link`` with k or p,
        ``beta`` with ``theta``, a link without a nonconstant coefficient, μ not a unit vector.

    Examples
    --------
    >>> import pyfeat as pf
    >>> task = pf.tasks.SingleIndex(d=16, k=2, p=3, beta=0.5, seed=0)
    >>> task
    SingleIndex(d=16, k=2, p=3, theta=4, beta=0.5, seed=0)
    >>> task.theta, task.information_exponent, task.U.shape, round(task.variance, 12)
    (4.0, 2, (1, 16), 1.0)
    >>> X, y = task.sample(50_000, seed=1)
    >>> round(float((X @ task.mu).var()), 1)             # Var⟨x, μ⟩ = 1 + θ
    5.0
    """

    def __init__(self, d: int, link: Sequence[float] | None = None, *, k: int | None = None,
                 p: int | None = None, beta: float | None = None, theta: float | None = None,
                 mu: ArrayLike | None = None, seed: int = 0):
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
        """The spike (signal) direction μ (d,), unit norm.

        Examples
        --------
        >>> import numpy as np
        >>> import pyfeat as pf
        >>> mu = pf.tasks.SingleIndex(d=16, seed=0).mu
        >>> mu.shape, round(float(np.linalg.norm(mu)), 12)
        ((16,), 1.0)
        """
        return self.U[0]

    def link(self, t: ArrayLike) -> np.ndarray:
        """The link σ*(t) on a 1-D array t (float64).

        Parameters
        ----------
        t : array_like of shape (m,)
            Points of the real line.

        Returns
        -------
        ndarray of shape (m,)
            Values σ*(t) = Σ_j c_j He_j(t)/√(j!), float64.

        Examples
        --------
        >>> import pyfeat as pf
        >>> pf.tasks.SingleIndex(d=16, k=2).link([0.0, 1.0, 2.0])   # He_2(t)/√2 = (t² − 1)/√2
        array([-0.7071...,  0.    ...,  2.1213...])
        """
        T = hermite_table(np.asarray(t, dtype=np.float64), len(self.link_coefficients) - 1)
        return np.tensordot(self.link_coefficients, T, axes=1)

    def _describe(self):
        return (f"d={self.d}, k={self.information_exponent}, p={self.degree}, theta={self.theta:g}"
                + (f", beta={self.beta:g}" if self.beta is not None else "") + f", seed={self.seed}")
