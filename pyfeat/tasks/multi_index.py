"""Multi-index polynomial targets f*(x) = g(Ux) on Gaussian inputs (seed 001, Damian, Lee &
Soltanolkotabi: Assumptions 1–2, H = E[∇²f*], κ; seed 000: transfer learning with a shared U)."""

from __future__ import annotations

import math

import numpy as np

from pyfeat.backend import array_module
from pyfeat.tasks._base import (HEAD, TARGET_HEAD, U_ROLE, Task, check_int, orthonormal_rows,
                               project, random_orthonormal_rows, readonly, task_rng)
from pyfeat.tasks._hermite import HermiteExpansion, multi_indices

HEADS = ("random", "sum", "product", "hard")


class IndexTask(Task):
    """f*(x) = g(s·Ux), U (r, d) with orthonormal rows, g a Hermite expansion (``_hermite``),
    x ~ N(0, I_d + θ UᵀU) and s = 1/√(1+θ), so that s·Ux ~ N(0, I_r) and every moment is exact:

        E f* = c_0,   Var f* = Σ_{α≠0} c_α²,   E[∇f*] = s Uᵀ E[∇g],   H = E[∇²f*] = s² Uᵀ E[∇²g] U.

    θ = 0 (isotropic) for MultiIndex; SingleIndex uses the spike θ > 0 along μ (r = 1).
    Sampling draws z ~ N(0, I_d) and sets x = z + (√(1+θ) − 1) UᵀU z.
    """

    def __init__(self, U, g: HermiteExpansion, theta=0.0):
        self.d = U.shape[1]
        self.r = U.shape[0]
        self._U = readonly(U)
        self._g = g
        self._theta = float(theta)
        self._scale = 1.0 / math.sqrt(1.0 + self._theta)

    @property
    def U(self) -> np.ndarray:
        """(r, d), orthonormal rows spanning the principal subspace S* (read-only)."""
        return self._U

    @property
    def principal_subspace(self) -> np.ndarray:
        """Π* = UᵀU (d, d), the orthogonal projector onto S* = span(u_1, …, u_r)."""
        return self._U.T @ self._U

    @property
    def degree(self) -> int:
        return self._g.degree

    @property
    def hermite_coefficients(self) -> dict:
        """{α: c_α} of g in the orthonormal Hermite basis Π_i He_{α_i}(z_i)/√(α_i!)."""
        return dict(self._g.coefficients)

    @property
    def mean(self) -> float:
        """E f*(x), exact: c_0."""
        return self._g.mean

    @property
    def variance(self) -> float:
        """Var f*(x), exact: Σ_{α≠0} c_α²."""
        return self._g.variance

    def expected_gradient(self) -> np.ndarray:
        """E[∇f*] (d,), exact (= E[y x] on isotropic inputs; Algorithm 1's β)."""
        return self._scale * (self._U.T @ self._g.expected_gradient())

    def hessian(self) -> np.ndarray:
        """H = E[∇²f*] (d, d), exact."""
        return self._scale**2 * (self._U.T @ self._g.expected_hessian() @ self._U)

    @property
    def kappa(self) -> float:
        """κ = ‖H†‖/√r (seed 001), or inf when rank H < r (Assumption 2 fails)."""
        s = np.linalg.svd(self._scale**2 * self._g.expected_hessian(), compute_uv=False)
        if s[-1] <= 1e-12 * max(1.0, s[0]):
            return math.inf
        return float(1.0 / (s[-1] * math.sqrt(self.r)))

    def _projection(self, X):
        """s·X Uᵀ (n, r) in float64 (summed in float64, also for float32 X)."""
        self._check_X(X)
        Z = project(X, self._U)
        if self._scale != 1.0:
            Z *= self._scale
        return Z

    def __call__(self, X):
        """f*(x) for each row of X (n, d), float64 (NumPy in → NumPy out, CuPy → CuPy)."""
        return self._g(self._projection(X))

    def _fill_inputs(self, rng, out):
        super()._fill_inputs(rng, out)
        if self._theta:  # x = z + (√(1+θ) − 1) UᵀU z
            xp = array_module(out)
            P = (math.sqrt(1.0 + self._theta) - 1.0) * project(out, self._U)
            out += xp.einsum("nk,kd->nd", P, xp.asarray(self._U))

    def _describe(self):
        return f"d={self.d}, r={self.r}, degree={self.degree}"

    def __repr__(self):
        return f"{type(self).__name__}({self._describe()})"


def random_head(r: int, degree: int, rng) -> dict:
    """Hermite coefficients of the default random g (degree p ≥ 2), E g = 0, Var g = 1:

    - degree 2: g₂(z) = (zᵀMz − tr M)/2, i.e. c_{2e_i} = M_ii/√2, c_{e_i+e_j} = M_ij (i < j), so
      E[∇²g] = M, with M = c·Q diag(λ) Qᵀ, Q Haar-random, λ_i = ±Unif[1, 2] (random signs);
    - each degree k = 3..p: i.i.d. N(0, 1) coefficients on every α with |α| = k;
    - every degree 2..p is scaled to variance 1/(p − 1) (so ‖M‖_F² = 2/(p − 1)).
    Hence rank H = r and κ = ‖M⁻¹‖/√r = √((p−1)/2)·rms(λ)/min|λ| ≤ √(2(p − 1)), whatever r.
    """
    share = 1.0 / (degree - 1)
    Q, R = np.linalg.qr(rng.standard_normal((r, r)))
    Q = Q * np.sign(np.diag(R))
    lam = rng.uniform(1.0, 2.0, r) * rng.choice([-1.0, 1.0], r)
    M = (Q * lam) @ Q.T
    M *= math.sqrt(2 * share) / np.linalg.norm(M)  # Var g₂ = ‖M‖_F²/2 = share
    coeffs = {}
    for i in range(r):
        for j in range(i, r):
            alpha = [0] * r
            alpha[i] += 1
            alpha[j] += 1
            coeffs[tuple(alpha)] = M[i, i] / math.sqrt(2) if i == j else M[i, j]
    for k in range(3, degree + 1):
        alphas = multi_indices(r, k)
        c = rng.standard_normal(len(alphas))
        c *= math.sqrt(share) / np.linalg.norm(c)
        coeffs.update(zip(alphas, c))
    return coeffs


def named_head(head: str, r: int, degree: int, names=("head", "degree")) -> dict:
    """Hermite coefficients of the named families (each with Var g = 1, E g = 0). ``names``: how
    errors call the head and degree arguments (``transfer_pair``'s target_head/target_degree)."""
    h, p = names
    if head == "sum":  # Σ_i He_p(z_i)/√(p!·r)
        return {tuple(degree if j == i else 0 for j in range(r)): 1 / math.sqrt(r) for i in range(r)}
    if head == "product":  # Π_i He_{a_i}(z_i)/√(a_i!), a spread evenly: Σ a_i = p, a_i ≥ 1
        if degree < r:
            raise ValueError(f"{p} must be >= r for {h}='product', got {p}={degree}, r={r}")
        return {tuple(degree // r + (1 if i < degree % r else 0) for i in range(r)): 1.0}
    if head == "hard":  # He_p(u·x)/√(p!): H = 0 for p ≥ 3
        if r != 1:
            raise ValueError(f"r must be 1 for {h}='hard' (a single index He_p(u·x)), got r={r}")
        if degree < 3:
            raise ValueError(f"{p} must be >= 3 for {h}='hard' (He_2 has H != 0), got {p}={degree}")
        return {(degree,): 1.0}
    raise ValueError(f"{h} must be one of {HEADS} or a dict of Hermite coefficients, got {head!r}")


class MultiIndex(IndexTask):
    """Multi-index polynomial f*(x) = g(Ux), x ~ N(0, I_d) (seed 001, Assumption 1; seed 000).

    U ∈ R^{r×d} has orthonormal rows (Haar-random from ``seed``, or ``U``). g is a degree-p
    polynomial of z = Ux ∈ R^r written in the orthonormal Hermite basis (probabilists' He_k,
    E[He_j He_k] = k! δ_jk):

        g(z) = Σ_α c_α Π_i He_{α_i}(z_i)/√(α_i!)

    so that E f* = c_0, Var f* = Σ_{α≠0} c_α², E[∇f*] = Uᵀ(c_{e_i})_i and
    H = E[∇²f*] = Uᵀ M U with M_ii = √2·c_{2e_i}, M_ij = c_{e_i+e_j} (i ≠ j), all exact.

    ``head``:
      - "random" (default, degree ≥ 2): a random g (see :func:`random_head`) with E f* = 0,
        Var f* = 1, no linear part, and H of rank exactly r (Assumption 2) with moderate κ;
      - "sum": Σ_i He_p(z_i)/√(p!·r) (H = 0 for p ≥ 3);
      - "product": Π_i He_{a_i}(z_i)/√(a_i!), a_i ≈ p/r (p = r: z_1 z_2 ⋯ z_r);
      - "hard": He_p(u·x)/√(p!) with r = 1, p ≥ 3: H = 0, violating Assumption 2 (the class of
        seed 001's Theorem 2 that needs n ≳ d^{p/2});
      - a dict {α (tuple of r ints): c_α} given as is (no normalization); ``degree`` is then
        inferred (or must match).
    The named families have E f* = 0 and Var f* = 1. ``seed`` draws U and the random head
    (``_base.task_rng``), independently of any data seed.

    Evaluation cost per row: the d·r projection plus one product per Hermite term
    (C(r+p, p) terms at most).
    """

    def __init__(self, d, r=2, degree=None, *, head="random", U=None, seed=0):
        d = check_int("d", d, 1)
        r = check_int("r", r, 1, d, "d")
        seed = check_int("seed", seed, 0)
        if degree is not None:
            degree = check_int("degree", degree, 1)
        if isinstance(head, dict):
            g = HermiteExpansion(head, r)
            if degree is not None and degree != g.degree:
                raise ValueError(f"degree must match the coefficients' degree {g.degree}, got degree={degree}")
            if g.degree < 1:
                raise ValueError("head: the coefficients must have degree >= 1")
        else:
            degree = 4 if degree is None else degree
            if head == "random":
                if degree < 2:
                    raise ValueError(f"degree must be >= 2 for head='random' (rank H = r), got degree={degree}")
                g = HermiteExpansion(random_head(r, degree, task_rng(seed, HEAD)), r)
            else:
                g = HermiteExpansion(named_head(head, r, degree), r)
        if U is None:
            U = random_orthonormal_rows(r, d, task_rng(seed, U_ROLE))
        else:
            U = orthonormal_rows("U", U, r, d)
        self.head = head if isinstance(head, str) else "coefficients"
        self.seed = seed
        super().__init__(U, g)

    def _describe(self):
        return f"{super()._describe()}, head={self.head!r}, seed={self.seed}"


def transfer_pair(d, r=2, degree=None, *, target_degree=None, source_head="random", target_head="random", seed=0):
    """(source, target): two :class:`MultiIndex` tasks with the same U and different heads g
    (seed 000: transfer learning when source and target share the representation U).

    The source is ``MultiIndex(d, r, degree, head=source_head, seed=seed)``; the target reuses
    its U with ``target_head`` of degree ``target_degree`` (default: the source's degree, or that
    of the coefficients when ``target_head`` is a dict); a random target head is drawn
    independently of the source's (``_base.task_rng(seed, TARGET_HEAD)``).
    """
    source = MultiIndex(d, r, degree, head=source_head, seed=seed)
    if target_degree is not None:
        target_degree = check_int("target_degree", target_degree, 1)
    if isinstance(target_head, dict):
        try:
            target = MultiIndex(d, r, head=target_head, U=source.U, seed=seed)
        except ValueError as exc:  # MultiIndex calls its argument head
            raise ValueError(f"target_{exc}" if str(exc).startswith("head") else f"target_head: {exc}") from None
        if target_degree not in (None, target.degree):
            raise ValueError(f"target_degree must match the degree {target.degree} of the target_head "
                             f"coefficients, got target_degree={target_degree}")
        return source, target
    target_degree = source.degree if target_degree is None else target_degree
    if target_head == "random":
        if target_degree < 2:
            raise ValueError(f"target_degree must be >= 2 for a random head, got target_degree={target_degree}")
        coefficients = random_head(source.r, target_degree, task_rng(source.seed, TARGET_HEAD))
    else:
        coefficients = named_head(target_head, source.r, target_degree, names=("target_head", "target_degree"))
    target = MultiIndex(d, r, target_degree, head=coefficients, U=source.U, seed=seed)
    target.head = target_head
    return source, target
