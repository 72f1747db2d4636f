"""Multi-index polynomial targets f*(x) = g(Ux) on Gaussian inputs (seed 001, Damian, Lee &
Soltanolkotabi: Assumptions 1–2, H = E[∇²f*], κ; seed 000: transfer learning with a shared U)."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

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

    Examples
    --------
    >>> import pyfeat as pf
    >>> from pyfeat.tasks.multi_index import IndexTask
    >>> isinstance(pf.tasks.SingleIndex(d=8), IndexTask), pf.tasks.SingleIndex(d=8).U.shape
    (True, (1, 8))
    """

    def __init__(self, U: np.ndarray, g: HermiteExpansion, theta: float = 0.0):
        self.d = U.shape[1]
        self.r = U.shape[0]
        self._U = readonly(U)
        self._g = g
        self._theta = float(theta)
        self._scale = 1.0 / math.sqrt(1.0 + self._theta)

    @property
    def U(self) -> np.ndarray:
        """(r, d), orthonormal rows spanning the principal subspace S* (read-only).

        Examples
        --------
        >>> import numpy as np
        >>> import pyfeat as pf
        >>> U = pf.tasks.MultiIndex(d=8, r=2, degree=3, seed=0).U
        >>> U.shape, bool(np.allclose(U @ U.T, np.eye(2)))
        ((2, 8), True)
        """
        return self._U

    @property
    def principal_subspace(self) -> np.ndarray:
        """Π* = UᵀU (d, d), the orthogonal projector onto S* = span(u_1, …, u_r).

        Examples
        --------
        >>> import numpy as np
        >>> import pyfeat as pf
        >>> P = pf.tasks.MultiIndex(d=8, r=2, degree=3, seed=0).principal_subspace
        >>> P.shape, bool(np.allclose(P @ P, P)), round(float(np.trace(P)), 6)
        ((8, 8), True, 2.0)
        """
        return self._U.T @ self._U

    @property
    def degree(self) -> int:
        """The degree p of g (the highest ``|α|`` with c_α ≠ 0).

        Examples
        --------
        >>> import pyfeat as pf
        >>> pf.tasks.MultiIndex(d=8, r=2, degree=3, seed=0).degree
        3
        """
        return self._g.degree

    @property
    def hermite_coefficients(self) -> dict:
        """{α: c_α} of g in the orthonormal Hermite basis Π_i He_{α_i}(z_i)/√(α_i!).

        Examples
        --------
        >>> import pyfeat as pf
        >>> pf.tasks.MultiIndex(d=8, r=2, degree=4, head="sum", seed=0).hermite_coefficients
        {(0, 4): 0.707..., (4, 0): 0.707...}
        """
        return dict(self._g.coefficients)

    @property
    def mean(self) -> float:
        """E f*(x), exact: c_0.

        Examples
        --------
        >>> import pyfeat as pf
        >>> pf.tasks.MultiIndex(d=8, r=2, degree=3, seed=0).mean
        0.0
        """
        return self._g.mean

    @property
    def variance(self) -> float:
        """Var f*(x), exact: Σ_{α≠0} c_α².

        Examples
        --------
        >>> import pyfeat as pf
        >>> task = pf.tasks.MultiIndex(d=8, r=2, degree=3, seed=0)
        >>> round(task.variance, 12)
        1.0
        >>> X, y = task.sample(100_000, seed=1)
        >>> round(float(y.var()), 1)
        1.0
        """
        return self._g.variance

    def expected_gradient(self) -> np.ndarray:
        """E[∇f*] (d,), exact (= E[y x] on isotropic inputs; Algorithm 1's β).

        Returns
        -------
        ndarray of shape (d,)
            E[∇f*] = s·Uᵀ E[∇g], float64.

        Examples
        --------
        >>> import numpy as np
        >>> import pyfeat as pf
        >>> task = pf.tasks.MultiIndex(d=4, r=1, head={(1,): 0.6, (2,): 0.8}, seed=0)
        >>> bool(np.allclose(task.expected_gradient(), 0.6 * task.U[0]))
        True
        """
        return self._scale * (self._U.T @ self._g.expected_gradient())

    def hessian(self) -> np.ndarray:
        """H = E[∇²f*] (d, d), exact.

        Returns
        -------
        ndarray of shape (d, d)
            H = s²·Uᵀ E[∇²g] U, symmetric, float64; its rank is at most r.

        Examples
        --------
        >>> import numpy as np
        >>> import pyfeat as pf
        >>> H = pf.tasks.MultiIndex(d=8, r=2, degree=4, seed=0).hessian()
        >>> H.shape, int(np.linalg.matrix_rank(H))
        ((8, 8), 2)
        """
        return self._scale**2 * (self._U.T @ self._g.expected_hessian() @ self._U)

    @property
    def kappa(self) -> float:
        """The condition number κ = ‖H†‖/√r (seed 001), or inf when rank H < r (Assumption 2 fails).

        Examples
        --------
        >>> import pyfeat as pf
        >>> round(pf.tasks.MultiIndex(d=8, r=2, degree=4, seed=0).kappa, 3)
        1.527
        >>> pf.tasks.MultiIndex(d=8, r=1, degree=4, head="hard").kappa
        inf
        """
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

    def __call__(self, X: np.ndarray) -> np.ndarray:
        """The target f*(x) for each row of X (n, d), float64 (NumPy in → NumPy out, CuPy → CuPy).

        Parameters
        ----------
        X : ndarray of shape (n, d)
            Inputs, any real dtype (projected onto U in float64).

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
        >>> task = pf.tasks.MultiIndex(d=3, r=1, head={(2,): 1.0}, U=[[1.0, 0.0, 0.0]])
        >>> task(np.array([[2.0, 5.0, 5.0], [0.0, 1.0, 1.0]]))   # He_2(x_1)/√2
        array([ 2.1213..., -0.7071...])
        """
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


def random_head(r: int, degree: int, rng: np.random.Generator) -> dict:
    """Hermite coefficients of the default random g (degree p ≥ 2), E g = 0, Var g = 1.

    - degree 2: g₂(z) = (zᵀMz − tr M)/2, i.e. c_{2e_i} = M_ii/√2, c_{e_i+e_j} = M_ij (i < j), so
      E[∇²g] = M, with M = c·Q diag(λ) Qᵀ, Q Haar-random, λ_i = ±Unif[1, 2] (random signs);
    - each degree k = 3..p: i.i.d. N(0, 1) coefficients on every α with ``|α| = k``;
    - every degree 2..p is scaled to variance 1/(p − 1) (so ‖M‖_F² = 2/(p − 1)).

    Hence rank H = r and κ = ``‖M⁻¹‖/√r = √((p−1)/2)·rms(λ)/min|λ| ≤ √(2(p − 1))``, whatever r.

    Parameters
    ----------
    r : int
        Number of variables of g (the rank of U).
    degree : int
        The degree p, >= 2.
    rng : numpy.random.Generator
        Source of the random numbers.

    Returns
    -------
    dict
        {α (tuple of r ints): c_α}, for every α with ``2 <= |α| <= p``.

    Examples
    --------
    >>> import math
    >>> import numpy as np
    >>> from pyfeat.tasks.multi_index import random_head
    >>> c = random_head(2, 3, np.random.default_rng(0))
    >>> len(c), round(math.fsum(v * v for v in c.values()), 12)   # Var g = Σ c_α² = 1
    (7, 1.0)
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


def named_head(head: str, r: int, degree: int, names: tuple[str, str] = ("head", "degree")) -> dict:
    """Hermite coefficients of the named families (each with Var g = 1, E g = 0).

    Parameters
    ----------
    head : {"sum", "product", "hard"}
        The family (see :class:`MultiIndex`).
    r : int
        Number of variables of g.
    degree : int
        The degree p (``"product"``: p >= r; ``"hard"``: p >= 3 and r = 1).
    names : tuple of str, default ("head", "degree")
        How errors call the head and degree arguments (``transfer_pair``'s
        target_head/target_degree).

    Returns
    -------
    dict
        {α (tuple of r ints): c_α}.

    Raises
    ------
    ValueError
        For an unknown family or a degree or r it does not allow, naming ``names``.

    Examples
    --------
    >>> from pyfeat.tasks.multi_index import named_head
    >>> named_head("product", 2, 3)
    {(2, 1): 1.0}
    >>> named_head("hard", 1, 4)
    {(4,): 1.0}
    """
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
    E[He_j He_k] = k! δ_jk)::

        g(z) = Σ_α c_α Π_i He_{α_i}(z_i)/√(α_i!)

    so that E f* = c_0, Var f* = Σ_{α≠0} c_α², E[∇f*] = Uᵀ(c_{e_i})_i and
    H = E[∇²f*] = Uᵀ M U with M_ii = √2·c_{2e_i}, M_ij = c_{e_i+e_j} (i ≠ j), all exact.
    The named families have E f* = 0 and Var f* = 1. Evaluation cost per row: the d·r
    projection plus one product per Hermite term (C(r+p, p) terms at most).

    Parameters
    ----------
    d : int
        Input dimension, >= 1.
    r : int, default 2
        Number of relevant directions (rows of U), 1 <= r <= d.
    degree : int, optional
        The degree p of g (default 4; with a dict ``head``: inferred, or it must match).
    head : {"random", "sum", "product", "hard"} or dict, default "random"
        g:

        - "random" (degree ≥ 2): a random g (see :func:`~pyfeat.tasks.multi_index.random_head`) with E f* = 0,
          Var f* = 1, no linear part, and H of rank exactly r (Assumption 2) with moderate κ;
        - "sum": Σ_i He_p(z_i)/√(p!·r) (H = 0 for p ≥ 3);
        - "product": Π_i He_{a_i}(z_i)/√(a_i!), a_i ≈ p/r (p = r: z_1 z_2 ⋯ z_r);
        - "hard": He_p(u·x)/√(p!) with r = 1, p ≥ 3: H = 0, violating Assumption 2 (the class
          of seed 001's Theorem 2 that needs n ≳ d^{p/2});
        - a dict {α (tuple of r ints): c_α} given as is (no normalization).
    U : array_like of shape (r, d), optional
        Orthonormal rows (default: Haar-random from ``seed``).
    seed : int, default 0
        Draws U and the random head (``_base.task_rng``), independently of any data seed.

    Attributes
    ----------
    d, r : int
        The input dimension and the number of relevant directions.
    head : str
        The head's family, or "coefficients" for a dict.
    seed : int
        The task's seed.

    Raises
    ------
    ValueError
        Naming the argument: d, r, degree or seed out of range, an unknown head, a degree the
        head does not allow, U not (r, d) with orthonormal rows.

    See Also
    --------
    transfer_pair : A source and a target sharing U.
    SingleIndex : One direction on spiked-covariance inputs.

    Examples
    --------
    >>> import numpy as np
    >>> import pyfeat as pf
    >>> task = pf.tasks.MultiIndex(d=8, r=2, degree=4, seed=0)
    >>> task
    MultiIndex(d=8, r=2, degree=4, head='random', seed=0)
    >>> task.mean, round(task.variance, 12), int(np.linalg.matrix_rank(task.hessian()))
    (0.0, 1.0, 2)
    >>> X, y = task.sample(4, seed=1)
    >>> bool(np.allclose(y, task(X)))
    True
    """

    def __init__(self, d: int, r: int = 2, degree: int | None = None, *, head: str | dict = "random",
                 U: ArrayLike | None = None, seed: int = 0):
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


def transfer_pair(d: int, r: int = 2, degree: int | None = None, *, target_degree: int | None = None,
                  source_head: str | dict = "random", target_head: str | dict = "random",
                  seed: int = 0) -> tuple[MultiIndex, MultiIndex]:
    """(source, target): two :class:`MultiIndex` tasks with the same U and different heads g.

    Seed 000: transfer learning when source and target share the representation U. The
    source is ``MultiIndex(d, r, degree, head=source_head, seed=seed)``; the target reuses its
    U with ``target_head`` of degree ``target_degree``; a random target head is drawn
    independently of the source's (``_base.task_rng(seed, TARGET_HEAD)``).

    Parameters
    ----------
    d : int
        Input dimension.
    r : int, default 2
        Number of shared directions.
    degree : int, optional
        Degree of the source head (as in :class:`MultiIndex`; default 4).
    target_degree : int, optional
        Degree of the target head (default: the source's degree, or that of the coefficients
        when ``target_head`` is a dict).
    source_head, target_head : {"random", "sum", "product", "hard"} or dict, default "random"
        The heads g of the source and the target (as ``head`` of :class:`MultiIndex`).
    seed : int, default 0
        Seed of U and of both random heads.

    Returns
    -------
    source : MultiIndex
        The source task.
    target : MultiIndex
        The target task, with ``target.U`` equal to ``source.U``.

    Raises
    ------
    ValueError
        Naming the argument (``target_head``, ``target_degree``, ... for the target).

    Examples
    --------
    >>> import numpy as np
    >>> import pyfeat as pf
    >>> source, target = pf.tasks.transfer_pair(d=8, r=2, degree=4, target_degree=3, seed=0)
    >>> source.degree, target.degree, bool(np.array_equal(source.U, target.U))
    (4, 3, True)
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
