"""Low-rank polynomials (seed 002: Bai, Chen & Lee, "When are neural networks more powerful than
neural tangent kernels?", the targets of the quadratic Taylor model)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from pyfeat.backend import array_module
from pyfeat.tasks._base import SIGNS, U_ROLE, check_int, project, random_orthonormal_rows, readonly, task_rng
from pyfeat.tasks._hermite import HermiteExpansion, power_coefficients
from pyfeat.tasks.multi_index import IndexTask


def _double_factorial(m):
    return math.prod(range(m, 0, -2))


class LowRankPolynomial(IndexTask):
    """Low-rank polynomial f*(x) = Σ_{s=1}^{r*} α_s (β_sᵀx)^{p_s},  x ~ N(0, I_d)  (seed 002).

    The seed's normalization: ``|α_s| ≤ 1``, ‖(β_sᵀx)^{p_s}‖_{L²} ≤ 1, p_s ≤ p. Here each term
    has L² norm exactly 1: ‖β_s‖ = ((2p_s − 1)!!)^{−1/(2p_s)}, since
    E(β·x)^{2p} = ‖β‖^{2p}(2p − 1)!!. E f* and Var f* are exact (Hermite expansion of each
    power); H = E[∇²f*] is also Σ_s α_s p_s(p_s − 1) E[(β_s·x)^{p_s−2}] β_sβ_sᵀ. ``U`` is an
    orthonormal basis of span(β_1, …, β_{r*}) (so f* = g(Ux) is a multi-index model).

    Parameters
    ----------
    d : int
        Input dimension, >= 1.
    r : int, default 2
        The number of terms r*.
    degree : int, default 3
        The degree p: every p_s = p unless ``degrees`` is given.
    degrees : sequence of int, optional
        (p_1, …, p_{r*}).
    alpha : array_like of shape (r,), optional
        The coefficients α (default: random signs ±1 from ``seed``).
    directions : array_like of shape (r, d), optional
        Nonzero rows (only their directions matter); default Haar-random orthonormal rows.
    normalize : bool, default True
        Scale α so that Var f* = 1 (``|α_s| ≤ 1`` still holds for orthogonal directions and
        r* ≥ 2 or odd p).
    seed : int, default 0
        Draws the directions and the signs.

    Attributes
    ----------
    alpha : ndarray of shape (r,)
        α after normalization (read-only).
    betas : ndarray of shape (r, d)
        The β_s, scaled to ‖β_s‖ = ((2p_s − 1)!!)^{−1/(2p_s)} (read-only).
    degrees : tuple of int
        (p_1, …, p_{r*}).
    seed : int
        The task's seed.

    Raises
    ------
    ValueError
        Naming the argument: a bad d, r, degree(s), alpha or directions; r > d with random
        directions; ``normalize`` with a constant f*.

    Examples
    --------
    >>> import numpy as np
    >>> import pyfeat as pf
    >>> task = pf.tasks.LowRankPolynomial(d=8, r=2, degree=3, seed=0)
    >>> task
    LowRankPolynomial(d=8, r=2, degrees=(3, 3), seed=0)
    >>> task.mean, round(task.variance, 12), task.U.shape
    (0.0, 1.0, (2, 8))
    >>> X, y = task.sample(100, seed=1)
    >>> bool(np.allclose(y, task(X)))
    True
    """

    def __init__(self, d: int, r: int = 2, degree: int = 3, *, degrees: Sequence[int] | None = None,
                 alpha: ArrayLike | None = None, directions: ArrayLike | None = None,
                 normalize: bool = True, seed: int = 0):
        d = check_int("d", d, 1)
        r = check_int("r", r, 1)
        seed = check_int("seed", seed, 0)
        if degrees is None:
            degrees = [check_int("degree", degree, 1)] * r
        else:
            degrees = [check_int("degrees", p, 1) for p in degrees]
            if len(degrees) != r:
                raise ValueError(f"degrees must have r={r} entries, got {len(degrees)}")
        if directions is None:
            if r > d:
                raise ValueError(f"r must be <= d for random orthonormal directions, got r={r}, d={d}")
            B = random_orthonormal_rows(r, d, task_rng(seed, U_ROLE))
        else:
            B = np.array(directions, dtype=np.float64)
            if B.shape != (r, d) or not np.all(np.isfinite(B)):
                raise ValueError(f"directions must be a finite (r, d) = ({r}, {d}) array, got shape {B.shape}")
            norms = np.linalg.norm(B, axis=1)
            if np.any(norms == 0):
                raise ValueError("directions must have nonzero rows")
            B = B / norms[:, None]
        B *= np.array([_double_factorial(2 * p - 1) ** (-1.0 / (2 * p)) for p in degrees])[:, None]
        if alpha is None:
            alpha = task_rng(seed, SIGNS).choice([-1.0, 1.0], r)
        else:
            alpha = np.array(alpha, dtype=np.float64)
            if alpha.shape != (r,) or not np.all(np.isfinite(alpha)):
                raise ValueError(f"alpha must be r={r} finite numbers, got {alpha!r}")

        # orthonormal basis U of span(β_s): f*(x) = g(Ux) with g(z) = Σ α_s (b_s·z)^{p_s}, b_s = Uβ_s
        _, sv, Vt = np.linalg.svd(B, full_matrices=False)
        rank = int(np.sum(sv > 1e-10 * sv[0]))
        U = Vt[:rank]
        Bz = B @ U.T
        coeffs = {}
        for a, b, p in zip(alpha, Bz, degrees):
            for key, c in power_coefficients(b, p).items():
                coeffs[key] = coeffs.get(key, 0.0) + a * c
        g = HermiteExpansion(coeffs, rank)
        if normalize:
            if g.variance == 0.0:
                raise ValueError("normalize: f* is constant, its variance cannot be set to 1")
            scale = 1.0 / math.sqrt(g.variance)
            alpha = alpha * scale
            g = HermiteExpansion({key: c * scale for key, c in g.coefficients.items()}, rank)
        self.seed = seed
        self.alpha = readonly(alpha)
        self.betas = readonly(B)
        self.degrees = tuple(degrees)
        super().__init__(U, g)

    def __call__(self, X: np.ndarray) -> np.ndarray:
        """The target f*(x) = Σ_s α_s (β_sᵀx)^{p_s} on the rows of X, float64 (evaluated directly).

        Parameters
        ----------
        X : ndarray of shape (n, d)
            Inputs, any real dtype (projected in float64).

        Returns
        -------
        ndarray of shape (n,)
            Values f*(x_i), float64.

        Raises
        ------
        ValueError
            When X is not (n, d) with the task's d.

        Examples
        --------
        >>> import numpy as np
        >>> import pyfeat as pf
        >>> task = pf.tasks.LowRankPolynomial(d=2, r=1, degree=2, alpha=[1.0],
        ...                                   directions=[[1.0, 0.0]], normalize=False)
        >>> task(np.array([[2.0, 7.0]]))                    # (β·x)² with ‖β‖² = 1/√3
        array([2.3094...])
        """
        self._check_X(X)
        xp = array_module(X)
        P = project(X, self.betas)
        out = xp.zeros(X.shape[0])
        for s, (a, p) in enumerate(zip(self.alpha, self.degrees)):
            out += a * P[:, s] ** p
        return out

    def _describe(self):
        return f"d={self.d}, r={len(self.degrees)}, degrees={self.degrees}, seed={self.seed}"
