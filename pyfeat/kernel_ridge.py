"""Kernel ridge regression that never forms the n×n matrix (except ``solver="direct"``), and
kernel gradient flow.

**Convention** (DESIGN.md): ``KernelRidge(ridge=λ)`` minimizes

    (1/n) Σ_i (f(x_i) − y_i)² + λ ‖f‖²_H,     f = Σ_j α_j k(x_j, ·),     α = (K + nλI)⁻¹ y,

so scikit-learn's ``KernelRidge(alpha=nλ, kernel="precomputed")`` gives the same α.
Solvers and their defaults are documented in ``pyfeat.solvers`` and its modules.
"""

from __future__ import annotations

import logging
import math
import numbers
import time
from typing import Self

import numpy as np
from numpy.typing import ArrayLike
from sklearn.utils.validation import check_array

from pyfeat import _linalg
from pyfeat import backend as _backend
from pyfeat import kernels as _kernels
from pyfeat._base import Regressor, SeedLike, _check_shapes, finite_predictions
from pyfeat._dask import Replicated, compute, current_client, is_dask, single_chunk
from pyfeat.ops._dask import _rowwise
from pyfeat._memory import hint
from pyfeat.solvers import SOLVERS, Monitor, Problem, Solution, solve
from pyfeat.solvers.cluster import ClusterRows
from pyfeat.solvers.problem import to_host
from pyfeat.solvers import direct as _direct
from pyfeat.solvers import nystrom as _nystrom
from pyfeat.solvers import richardson as _richardson
from pyfeat.solvers import ridge_path as _ridge_path

__all__ = ["KernelRidge", "kernel_gradient_flow", "AUTO_DIRECT_MAX_N", "AUTO_NYSTROM_MIN_N"]

logger = logging.getLogger(__name__)

# solver="auto" (see KernelRidge): direct up to this n; pcg up to AUTO_NYSTROM_MIN_N; nystrom above
AUTO_DIRECT_MAX_N = 5_000
AUTO_NYSTROM_MIN_N = 200_000
# below this ridge the iterative solvers converge slowly: direct wherever the matrix fits
AUTO_SMALL_RIDGE = 1e-7
# kernel_gradient_flow(method="auto"): eigendecomposition up to this n
AUTO_EIGH_MAX_N = 5_000


class KernelRidge(Regressor):
    """Kernel ridge regression, α = (K + nλI)⁻¹y, with direct or iterative solvers.

    Parameters
    ----------
    kernel : str or pyfeat.kernels.Kernel, default "ntk"
        Any name of ``pyfeat.kernels.names()``; ``kernel_params`` are passed to
        ``pyfeat.kernels.get``.
    ridge : float ≥ 0, "auto" or a 1-D grid of floats > 0, default 1e-4
        The λ in (1/n)Σ(f(x_i) − y_i)² + λ‖f‖²_H (scikit-learn's alpha = nλ). "auto" (or a grid)
        chooses λ over a grid (default t̄·10^k, k = −7 … −1 in quarter decades, t̄ the mean of
        k(x_i, x_i); ``pyfeat.solvers.ridge_path``): by the exact leave-one-out error (or GCV,
        ``ridge_criterion``) from one eigendecomposition when n ≤ 4096 and the direct solver
        applies, else by the held-out MSE of a 10 % split, every λ of the grid solved in one
        preconditioned CG run; then fits at the chosen λ.
    solver : {"auto", "direct", "cg", "pcg", "richardson", "eigenpro", "nystrom"}, default "auto"
        "auto" picks the fastest solver for the size, the ridge and the memory (measured on
        2-core CPUs, benchmarks/test_bench_kernel_ridge.py): ``richardson`` when
        ``early_stopping`` is set; ``direct`` for n ≤ 5000, or for any n whose n×n float64
        matrix fits ``pyfeat.solvers.direct.memory_limit()`` when λ < 1e-7 (the iterative
        solvers converge slowly there) or λ = 0 (interpolation); ``eigenpro`` for λ = 0 above
        the memory limit; else ``nystrom`` when its default M = 2·d̂_eff(λ) centres (within 2 %
        of the exact solution) is at most n/4, ``pcg`` (Nyström-preconditioned CG on the full
        problem: a few tens of matvecs) up to n = 200,000 otherwise, and above that ``nystrom``
        with the centres the memory allows (accuracy limited by M: say so). The choice and the
        reason are logged (printed when verbose) and kept in ``solver_``, ``solver_reason_``.
    tol : float > 0, default 1e-6
        Relative residual ‖(K + nλI)α − y‖/‖y‖ (largest over columns of y) at which the
        iterative solvers stop; for ``nystrom`` the relative residual of its preconditioned
        M-dimensional system.
    max_iter : int or None
        Iterations (CG steps, gradient steps, EigenPro epochs); None: cg 1000, pcg 500,
        richardson 10,000, eigenpro 100 epochs, nystrom 200.
    block : int or None
        Rows per block in ``pyfeat.ops`` (None: from ``pyfeat.backend.memory_budget()``).
    backend : "auto", "numba", "cuda" or "numpy"
        Where the kernel products run (``pyfeat.backend``).
    verbose : bool, default False
        Show which solver runs and a tqdm progress bar.
    seed : int >= 0, None, or a numpy Generator/SeedSequence/RandomState, default 0
        Seeds the Nyström centres, the pcg/EigenPro subsample and batches, the ridge
        selection's split, and the power-iteration start (see ``pyfeat._base``).
    kernel_params : dict or None
        Kernel parameters (e.g. {"bandwidth": 2.0} for "rbf").
    early_stopping : float or None
        Gradient-flow time t for ``richardson`` (seed 003; see ``pyfeat.solvers.richardson``).
    n_centers : int or None
        Nyström centres M for ``nystrom`` (None: min(n, max(⌈√n ln n⌉, ⌈1.5 d̂_eff(λ)⌉),
        20,000); ``pyfeat.solvers.nystrom``).
    n_components, subsample, batch_size : int or None
        EigenPro's q, the subsample size s of EigenPro and pcg (also of ridge="auto"'s held-out
        pcg run, whatever the final solver), and EigenPro's mini-batch size
        (None: from the spectrum, the memory and the critical batch size;
        ``pyfeat.solvers.eigenpro``, ``pyfeat.solvers.pcg``).
    random_state : int >= 0, numpy Generator, SeedSequence, RandomState or None, default None
        The scikit-learn name for the seed; when not None it is used instead of ``seed``.
    ridge_criterion : {"loo", "gcv"}, default "loo"
        The exact path's score of a λ (n ≤ 4096): the exact leave-one-out MSE, or GCV, which
        can pick too small a λ near an interpolation peak (``pyfeat.solvers.ridge_path``).

    Attributes
    ----------
    dual_coef_ : ndarray of shape (n_coef,) or (n_coef, k)
        α, float64, so that f(x) = k(x, ``X_fit_``) @ ``dual_coef_``.
    X_fit_ : ndarray of shape (n_coef, d)
        The points α refers to: the training set, or the Nyström centres (after a fit on a
        dask array: the training set as a dask array on the cluster).
    solver_, solver_reason_ : str
        The solver that ran and why.
    n_iter_ : int
        Iterations.
    converged_ : bool
        Whether ``tol`` was met.
    ridge_ : float
        The λ of the fit (the chosen one for "auto" or a grid).
    ridge_grid_, ridge_scores_ : ndarray
        When λ was selected: the grid and its scores (LOO, GCV or held-out MSE per λ; NaN:
        not scored).
    ridge_method_ : str
        When λ was selected: "loo", "gcv" or "held-out".
    n_matvecs_ : float
        Kernel values evaluated by the fit, in units of one n × n matvec.
    history_ : dict
        Arrays "iteration", "residual" (relative), "time" (seconds since start).
    solver_info_ : dict
        Solver settings (step size, EigenPro q/s/batch, Nyström centres, ...).
    kernel_ : Kernel
        The kernel, validated.
    n_outputs_ : int
        k, the number of columns of y (1 for a 1-D y).
    fit_time_ : float
        Seconds.
    n_features_in_ : int
        d.

    See Also
    --------
    kernel_gradient_flow : Kernel gradient flow, the early-stopped alternative to the ridge.

    Notes
    -----
    Arrays: NumPy in → NumPy out, CuPy in → CuPy out; float32 X keeps float32 kernel values
    (see ``pyfeat.solvers`` for the precision model); ``dual_coef_`` is float64, predictions
    come in the working dtype of X.

    Dask arrays (with a ``distributed.Client``): X is assembled once on every worker, the kernel
    products run there as row-block tasks and the solver's vectors stay here (the communication
    per iteration: ``pyfeat.solvers.cluster`` and the README); every solver and ``ridge="auto"``
    work; ``X_fit_`` is then a dask array on the cluster (the centres for ``nystrom``) and
    ``predict`` returns a lazy dask array for dask X. Without a distributed client a dask X is
    computed here.

    References
    ----------
    Ma & Belkin 2017, 2019 (EigenPro); Rudi, Carratino & Rosasco 2017 (Falkon).

    Examples
    --------
    >>> import numpy as np
    >>> import pyfeat as pf
    >>> X, y = pf.tasks.MultiIndex(d=6, r=2, degree=2, seed=0).sample(500, seed=1)
    >>> krr = pf.KernelRidge(kernel="ntk", ridge=1e-3).fit(X, y)
    >>> krr.solver_, krr.dual_coef_.shape
    ('direct', (500,))
    >>> K = pf.kernels.get("ntk")(X)  # α = (K + nλI)⁻¹ y
    >>> bool(np.allclose(krr.dual_coef_, np.linalg.solve(K + 500 * 1e-3 * np.eye(500), y)))
    True
    >>> cg = pf.KernelRidge(ridge=1e-3, solver="cg").fit(X, y)  # never forms K
    >>> cg.converged_, bool(np.allclose(cg.predict(X), krr.predict(X), atol=1e-5))
    (True, True)
    """

    _multi_output = True

    def __init__(self, kernel: str | _kernels.Kernel = "ntk", ridge: float | str | ArrayLike = 1e-4,
                 solver: str = "auto", tol: float = 1e-6, max_iter: int | None = None, block: int | None = None,
                 backend: str = "auto", verbose: bool = False, seed: SeedLike = 0, kernel_params: dict | None = None,
                 early_stopping: float | None = None, n_centers: int | None = None, n_components: int | None = None,
                 subsample: int | None = None, batch_size: int | None = None, random_state: SeedLike = None,
                 ridge_criterion: str = "loo"):
        self.kernel = kernel
        self.ridge = ridge
        self.ridge_criterion = ridge_criterion
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter
        self.block = block
        self.backend = backend
        self.verbose = verbose
        self.seed = seed
        self.kernel_params = kernel_params
        self.early_stopping = early_stopping
        self.n_centers = n_centers
        self.n_components = n_components
        self.subsample = subsample
        self.batch_size = batch_size
        self.random_state = random_state

    # -- validation -------------------------------------------------------------------------

    def _kernel(self):
        params = self.kernel_params or {}
        if not isinstance(params, dict):
            raise TypeError(f"kernel_params must be a dict or None, got {type(params).__name__}")
        return _kernels.get(self.kernel, **params)

    def _ridge_grid(self):
        """None for a fixed ridge, else the user's grid (an array) or "auto"."""
        if isinstance(self.ridge, str):
            if self.ridge != "auto":
                raise ValueError(f"ridge must be 'auto', a number ≥ 0 or a 1-D grid of numbers > 0, got {self.ridge!r}")
            return "auto"
        if np.ndim(self.ridge) == 0:
            _real("ridge", self.ridge, strict=False)
            return None
        grid = np.asarray(self.ridge, dtype=np.float64) if _all_real(self.ridge) else None
        if grid is None or grid.ndim != 1 or grid.size == 0 or not np.isfinite(grid).all() or (grid <= 0).any():
            raise ValueError(f"ridge must be 'auto', a number ≥ 0 or a 1-D grid of numbers > 0, got {self.ridge!r}")
        return grid

    def _check_params(self):
        self._ridge_grid()
        if self.ridge_criterion not in ("loo", "gcv"):
            raise ValueError(f"ridge_criterion must be 'loo' or 'gcv', got {self.ridge_criterion!r}")
        _real("tol", self.tol)
        for name in ("max_iter", "block", "n_centers", "n_components", "batch_size"):
            _optional_int(name, getattr(self, name), 1)
        _optional_int("subsample", self.subsample, 2)
        self._check_seeds()
        if self.early_stopping is not None:
            _real("early_stopping", self.early_stopping)
            if self.solver not in ("auto", "richardson"):
                raise ValueError(
                    f"early_stopping is a parameter of solver='richardson' (gradient flow), got solver={self.solver!r}"
                )
            if self._ridge_grid() is not None:
                raise ValueError("early_stopping regularizes by time; it cannot be combined with a selected "
                                 f"ridge (ridge={self.ridge!r}): give a number")
        if self.solver != "auto" and self.solver not in SOLVERS:
            raise ValueError(f"solver must be 'auto' or one of {SOLVERS}, got {self.solver!r}")
        if not isinstance(self.verbose, (bool, np.bool_)):
            raise TypeError(f"verbose must be a bool, got {self.verbose!r}")
        _backend.resolve(self.backend)
        return self._kernel()

    def _choose_solver(self, problem, ridge):
        """(solver, why) for ``solver="auto"`` (the rule of the class docstring)."""
        if self.solver != "auto":
            return self.solver, "requested"
        if self.early_stopping is not None:
            return "richardson", "early_stopping is set"
        n = problem.n
        fits = _direct.fits(n)
        if n <= AUTO_DIRECT_MAX_N and fits:
            return "direct", f"n={n} ≤ {AUTO_DIRECT_MAX_N}: one factorization is fastest"
        if ridge < AUTO_SMALL_RIDGE and fits:
            return "direct", (f"ridge={ridge:g} < {AUTO_SMALL_RIDGE:g}: iterative solvers converge slowly, and the "
                              f"n×n matrix fits the direct memory limit")
        if ridge == 0:
            return "eigenpro", f"ridge=0 (interpolation) and n={n}: the n×n matrix is over the direct memory limit"
        M, deff = _nystrom.default_centers(problem)
        want = math.ceil(_nystrom.DEFF_FACTOR * deff)
        if M >= want and M <= n // 4:
            return "nystrom", (f"Nyström with M={M} ≥ {_nystrom.DEFF_FACTOR:g}·d_eff(λ) centres (≤ n/4): n·M kernel "
                               f"values per iteration instead of n², within 2 % of the exact solution")
        if n <= AUTO_NYSTROM_MIN_N:
            return "pcg", (f"{_nystrom.DEFF_FACTOR:g}·d_eff(λ) = {want} Nyström centres would not save enough (> n/4 "
                           f"or over the limit of {M}): Nyström-preconditioned CG on the full problem")
        return "nystrom", (f"n={n} > {AUTO_NYSTROM_MIN_N}: a matvec (n² kernel values) is too slow; Nyström with "
                           f"M={M} centres, fewer than {_nystrom.DEFF_FACTOR:g}·d_eff(λ) = {want}: its accuracy is "
                           f"limited by M (use solver='pcg' for the exact solution)")

    # -- fit / predict ----------------------------------------------------------------------

    def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        """Solve (K + nλI)α = y with the chosen solver.

        Parameters
        ----------
        X : array_like of shape (n, d)
            Training inputs (NumPy, CuPy, or anything scikit-learn accepts; float32 stays
            float32).
        y : array_like of shape (n,) or (n, k)
            Labels; the k columns share one matvec per iteration.

        Returns
        -------
        KernelRidge
            This model, fitted.

        Raises
        ------
        ValueError
            A parameter out of range (named), bad input, or a system the solver cannot solve
            (e.g. ``direct`` over its memory limit, or a Cholesky pivot at rounding level), or
            an iterative solver that diverged (residual not finite, or worse than α = 0 with the
            ridge at K's rounding level: duplicate rows with ridge = 0).
        TypeError
            A parameter of the wrong type.

        Warns
        -----
        pyfeat.solvers.ConvergenceWarning
            When an iterative solver stops before ``tol``.

        Examples
        --------
        >>> import pyfeat as pf
        >>> X, y = pf.tasks.MultiIndex(d=6, r=2, degree=2, seed=0).sample(500, seed=1)
        >>> krr = pf.KernelRidge(ridge="auto").fit(X, y)  # λ by exact leave-one-out over the grid
        >>> krr.ridge_method_, krr.ridge_grid_.shape, bool(krr.ridge_ in krr.ridge_grid_)
        ('loo', (25,), True)
        >>> import numpy as np
        >>> pf.KernelRidge(ridge=1e-3).fit(X, np.c_[y, 2 * y]).predict(X[:4]).shape
        (4, 2)
        """
        kernel = self._check_params()
        client = current_client() if is_dask(X) else None
        X, y = self._validate_xy(X, y) if client is None else self._cluster_xy(X, y, client)
        xp = _backend.array_module(X)
        single = y.ndim == 1
        Y = xp.asarray(y, dtype=xp.float64).reshape(X.shape[0], -1)
        n = X.shape[0]
        t0 = time.perf_counter()
        problem = Problem(X, Y, kernel, shift=0.0, ridge=0.0, rng=np.random.default_rng(self._seed_sequence()),
                          device=self.backend, block_size=self.block)
        exact, start = self._select_ridge(problem)
        ridge = self.ridge_
        problem.shift, problem.ridge = n * ridge, ridge
        name, why = ("direct", "the ridge selection's eigendecomposition") if exact else self._choose_solver(problem, ridge)
        if name != "pcg":
            start = None  # the selection's features and α: memory the other solvers do not use
        logger.info("KernelRidge: solver=%s (%s)", name, why)
        if self.verbose:
            print(f"KernelRidge: solver={name} ({why})")
        options = {
            "richardson": {"early_stopping": self.early_stopping},
            "eigenpro": {"subsample_size": self.subsample, "n_components": self.n_components,
                         "batch_size": self.batch_size},
            "pcg": {"subsample_size": self.subsample, "start": start},  # released by pcg.solve
            "nystrom": {"n_centers": self.n_centers},
        }.get(name, {})
        monitor = Monitor(name, self.max_iter, self.verbose)
        if exact:
            coef = exact(ridge)
            monitor.record(1, problem.relative_residual(coef))
            sol = Solution(coef, 1, True, monitor.history(), info={"method": "eigendecomposition"})
        else:
            reduce = {"direct": "n or PYFEAT_DIRECT_MEMORY_MB, or use solver='cg', 'eigenpro' or 'nystrom' (O(n) memory)",
                      "nystrom": "n_centers (M×M float64 factors)", "eigenpro": "subsample (its s×s kernel matrix)",
                      "pcg": "subsample (its s×s kernel matrix)"}
            with hint(f"KernelRidge(solver={name!r}) at n={n}", reduce.get(name, "PYFEAT_MEMORY_BUDGET_MB or n")):
                sol = solve(name, problem, tol=float(self.tol), max_iter=self.max_iter, monitor=monitor, **options)
        self.fit_time_ = time.perf_counter() - t0
        if not bool(_backend.array_module(sol.coef).isfinite(sol.coef).all()):
            raise ValueError(f"KernelRidge: solver={name!r} gave non-finite coefficients at ridge={ridge:g}; use a "
                             "larger ridge or ridge='auto'")
        self.solver_, self.solver_reason_ = name, why
        X_fit = problem.X if sol.centers is None else sol.centers
        if problem.on_cluster:  # the training set stays on the cluster, Nyström's centres come here
            X_fit = X_fit.replicated.to_dask() if sol.centers is None else X_fit.gather()
        self.X_fit_ = X_fit
        self.dual_coef_ = sol.coef[:, 0] if single else sol.coef
        self.n_outputs_ = 1 if single else sol.coef.shape[1]
        self.n_iter_, self.converged_ = sol.n_iter, bool(sol.converged)
        self.history_, self.solver_info_ = sol.history, sol.info
        self.kernel_ = problem.kernel  # as evaluated on X (rbf/laplace: maybe from differences)
        self.n_matvecs_ = problem.matvecs
        return self

    def _select_ridge(self, problem):
        """Sets ridge_ (and for a selection ridge_grid_, ridge_scores_, ridge_method_). Returns
        two things: the exact path's α(λ) when LOO/GCV ran (the fit then needs no solver), else
        None; and (the held-out run's pcg.Start, the index of λ*) for the final pcg solve, else
        None."""
        grid = self._ridge_grid()
        if grid is None:
            self.ridge_ = float(self.ridge)
            return None, None
        grid = _ridge_path.default_grid(problem) if isinstance(grid, str) else grid
        n = problem.n
        if n <= _ridge_path.EXACT_MAX_N and self.solver in ("auto", "direct") and _direct.fits(n):
            with np.errstate(divide="ignore", invalid="ignore"):
                scores, exact = _ridge_path.exact(problem, grid, self.ridge_criterion)
            self.ridge_method_ = self.ridge_criterion
        else:
            budget = _ridge_path.SELECT_MAX_ITER if self.max_iter is None else self.max_iter
            scores, _, start = _ridge_path.held_out(problem, grid, budget, self.subsample)
            exact = None
            self.ridge_method_ = "held-out"
        self.ridge_grid_, self.ridge_scores_ = np.asarray(grid, np.float64), scores
        self.ridge_ = _ridge_path.best(grid, scores)
        end = _grid_end(self.ridge_grid_, scores, self.ridge_)
        logger.info("KernelRidge: ridge=%g chosen by %s over %d values%s", self.ridge_, self.ridge_method_, len(grid),
                    end)
        if exact is not None:
            return exact, None
        return None, (start, int(np.flatnonzero(self.ridge_grid_ == self.ridge_)[0]))

    def _cluster_xy(self, X, y, client):
        """(X's rows on the cluster, y as NumPy) for a dask X with a distributed client
        (``pyfeat.solvers.cluster``): X's shape and dtype checked here, its values on the workers
        as X is assembled there; y (n-sized) computed here and checked by scikit-learn."""
        _check_shapes(X, y)
        if X.dtype.kind not in "fiub" or X.dtype.itemsize > 8:
            raise ValueError(f"X must hold real numbers (float32/float64), got dtype {X.dtype}")
        if any(np.isnan(c) for c in X.chunks[0]):
            raise ValueError("X has unknown chunk sizes: call X.compute_chunk_sizes() first")
        if X.size == 0:
            raise ValueError(f"X is empty (shape {X.shape})")
        y = check_array(compute(y, client=client)[0] if is_dask(y) else y, ensure_2d=False, dtype=np.float64,
                        input_name="y")
        self.n_features_in_ = int(X.shape[1])
        self.__dict__.pop("feature_names_in_", None)
        backend = "numpy" if _backend.resolve(self.backend) == "numpy" else "numba"
        dtype = np.float32 if X.dtype == np.float32 else np.float64
        return ClusterRows(Replicated(X, dtype, client), backend), y

    def _predict(self, X):
        """f(X) = k(X, X_fit_) @ dual_coef_ (blocked ``kernel_matvec``; the working dtype of X);
        after a fit on a cluster, computed there."""
        X = self._validate_x(X)
        if is_dask(self.X_fit_):
            import dask.array as da

            return compute(self._predict_dask(da.from_array(to_host(X))))[0]
        return _predict_rows(X, self.X_fit_, self.dual_coef_, self.kernel_, self.backend, self.block,
                             type(self).__name__)

    def _predict_dask(self, X):
        """A lazy dask array chunked like X; after a fit on a cluster each chunk is predicted on a
        worker against X_fit_ (on the cluster: it travels once to each worker per call)."""
        if not is_dask(self.X_fit_):
            return super()._predict_dask(X)
        X = self._check_dask_x(X)
        cols = () if self.dual_coef_.ndim == 1 else self.dual_coef_.shape[1:]
        return _rowwise(X, _predict_rows, cols, np.float32 if X.dtype == np.float32 else np.float64,
                        single_chunk(self.X_fit_), self.dual_coef_, self.kernel_, self.backend, self.block,
                        type(self).__name__)


def _grid_end(grid, scores, ridge):
    """The selection log's note when λ* is at an end of the grid (or of its scored values)."""
    if grid.size < 2:
        return ""
    scored = grid[np.isfinite(scores)]
    if ridge == grid.min():
        return " (the grid's smallest: a smaller one may score lower)"
    if ridge == scored.min():
        return " (the smallest scored: the smaller ones did not converge)"
    if ridge == grid.max():
        return " (the grid's largest: a larger one may score lower)"
    return ""


def _predict_rows(X, X_fit, coef, kernel, backend, block, model):
    """k(X, X_fit) @ coef in the working dtype of X, checked finite (NumPy out unless X is CuPy);
    also one chunk of a dask predict, on a worker."""
    problem = Problem(X, None, kernel, 0.0, 0.0, None, backend, block)
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below
        out = problem.kmv(problem.X, X_fit, coef).astype(problem.working_dtype, copy=False)
    out = finite_predictions(out, model)
    return out if _backend.is_cupy(X) else to_host(out)


def kernel_gradient_flow(X: ArrayLike, y: ArrayLike, t: float | ArrayLike, kernel: str | _kernels.Kernel = "ntk", *,
                         X_eval: ArrayLike | None = None, ridge: float = 0.0, method: str = "auto",
                         step: float | None = None, backend: str = "auto", block: int | None = None,
                         seed: int = 0) -> np.ndarray:
    """Return the predictions of kernel gradient flow at time(s) t (seed 003).

    Gradient flow on L̂(f) = (1/2n)Σ(f(x_i) − y_i)² + (λ/2)‖f‖²_H from f ≡ 0 in the RKHS:
    dα/dt = −(1/n)((K + nλI)α − y), so with K + nλI = VΛVᵀ

        α(t) = V diag((1 − e^{−tΛ/n})/Λ) Vᵀ y,     ŷ(t) = K α(t)  (u(t) = e^{−tK/n}u(0) for λ=0;
                                                      seed 003 writes e^{−Kt}, time in units of n)

    and predictions f_t(x) = k(x, X)α(t) at the rows of ``X_eval`` (default: the training X).

    The lazy limit (seed 003): full-batch gradient descent with learning rate η for T steps on
    (1/2n)Σ(f(x_i) − y_i)² of the two-layer network f(x) = (1/√m) Σ_j a_j σ(w_j·x) from the
    symmetric init (f₀ ≡ 0), both layers trained — ``pf.GDNetwork(parameterization="ntk",
    init="symmetric", train="both", lr=η, steps=T)`` — predicts ``kernel_gradient_flow(X, y,
    t=η·T)`` with kernel "ntk" in the limit m → ∞ (the steps then approach the flow as η → 0 at
    fixed ηT).

    Parameters
    ----------
    X : array_like of shape (n, d)
        Training inputs (NumPy or CuPy; float32 keeps float32 kernel values).
    y : array_like of shape (n,)
        Training labels.
    t : float ≥ 0 or 1-D array of floats ≥ 0
        The time(s).
    kernel : str or Kernel, default "ntk"
        A name of ``pyfeat.kernels.names()`` or a ``pyfeat.kernels.Kernel``.
    X_eval : array_like of shape (n_eval, d), optional
        Where to predict (None: at X).
    ridge : float ≥ 0, default 0.0
        The RKHS penalty λ of the flow's objective.
    method : {"auto", "eigh", "gd"}, default "auto"
        ``"eigh"``: the closed form, from a float64 eigendecomposition of the n×n matrix.
        ``"gd"``: kernel gradient descent (``pyfeat.solvers.richardson``), which never forms K;
        each step of size η is a time increment nη, the steps are shortened to land exactly on
        each t, and it approaches the flow as ``step`` → 0. ``"auto"``: "eigh" for
        n ≤ 5,000, else "gd".
    step : float > 0, optional
        For ``method="gd"``: the step as a fraction of the stable step 1/λ_max (default 1).
    backend : {"auto", "numba", "cuda", "numpy"}, default "auto"
        Where the kernel products run (``pyfeat.backend``).
    block : int, optional
        Rows per block in ``pyfeat.ops`` (None: from the memory budget).
    seed : int, default 0
        Seeds the power iteration of ``method="gd"``.

    Returns
    -------
    ndarray of shape (n_eval,) or (n_eval, len(t))
        The predictions f_t at the rows of ``X_eval``: (n_eval,) for a scalar t, one column per
        time otherwise; in the working dtype of X (NumPy in → NumPy out, CuPy in → CuPy out).

    Raises
    ------
    ValueError
        Naming the argument: bad X, y or X_eval, a negative or non-finite t, an unknown method
        or kernel, a negative ridge or step.
    TypeError
        For X or y that do not hold real numbers.

    See Also
    --------
    KernelRidge : The t → ∞ limit for λ > 0.
    GDNetwork : The network whose lazy limit this is.

    Examples
    --------
    >>> import numpy as np
    >>> import pyfeat as pf
    >>> task = pf.tasks.MultiIndex(d=6, r=2, degree=2, seed=0)
    >>> X, y = task.sample(500, seed=1)
    >>> Xt, _ = task.sample(300, seed=2)
    >>> f = pf.kernel_gradient_flow(X, y, t=[0.0, 10.0, 1e3], X_eval=Xt)
    >>> f.shape, bool(np.all(f[:, 0] == 0))  # f ≡ 0 at t = 0
    ((300, 3), True)
    >>> f_inf = pf.kernel_gradient_flow(X, y, t=1e12, ridge=1e-3, X_eval=Xt)  # t → ∞: kernel ridge
    >>> bool(np.allclose(f_inf, pf.KernelRidge(ridge=1e-3).fit(X, y).predict(Xt)))
    True
    """
    X, Y, _ = _check_xy(X, y, y_name="y", single_only=True)
    n = X.shape[0]
    kern = _kernels.get(kernel)
    _real("ridge", ridge, strict=False)
    times = np.atleast_1d(np.asarray(t, dtype=np.float64))
    if times.ndim != 1 or times.size == 0 or not np.isfinite(times).all() or (times < 0).any():
        raise ValueError(f"t must be a time ≥ 0 or a 1-D array of them, got {t!r}")
    if method not in ("auto", "eigh", "gd"):
        raise ValueError(f"method must be 'auto', 'eigh' or 'gd', got {method!r}")
    if step is not None:
        _real("step", step)
    X_eval = X if X_eval is None else _check_x(X_eval, "X_eval")
    if X_eval.shape[1] != X.shape[1]:
        raise ValueError(f"X_eval must have {X.shape[1]} columns like X, got shape {X_eval.shape}")
    if method == "auto":
        method = "eigh" if n <= AUTO_EIGH_MAX_N else "gd"
    problem = Problem(X, Y, kern, n * float(ridge), float(ridge), np.random.default_rng(seed), backend, block)
    if method == "eigh":
        K = problem.host_kernel_matrix(problem.X)
        K[np.diag_indices(n)] += problem.shift
        lam, V = _linalg.eigh(K, overwrite_a=True)
        lam = np.maximum(lam, 0.0)
        z = V.T @ to_host(problem.Y[:, 0])
        # (1 − e^{−tλ/n})/λ, with its limit t/n at λ = 0
        rate = lam[:, None] / n
        filt = np.where(rate > 0, -np.expm1(-times[None, :] * rate) / np.where(lam > 0, lam, 1.0)[:, None],
                        times[None, :] / n)
        alphas = problem.xp.asarray(V @ (filt * z[:, None]))
    else:
        eta_max, _ = _richardson.step_size(problem)
        eta_max *= 1.0 if step is None else float(step)
        order = np.argsort(times)
        alphas = problem.xp.zeros((n, times.size))
        alpha, now = problem.xp.zeros_like(problem.Y), 0.0
        monitor = Monitor("gd", None, False)
        for j in order:
            span = times[j] - now
            if span > 0:
                steps = math.ceil(span / (n * eta_max))
                alpha, _, _ = _richardson.iterate(problem, alpha, span / (n * steps), steps, None, monitor)
                now = times[j]
            alphas[:, j] = alpha[:, 0]
        monitor.history()
    pred = problem.kmv(problem.device.asarray(X_eval), problem.X, alphas)
    pred = pred.astype(problem.working_dtype, copy=False)
    pred = pred if _backend.is_cupy(X) else to_host(pred)
    return pred[:, 0] if np.ndim(t) == 0 else pred


# ---------------------------------------------------------------------------------------------
# validation helpers


def _real(name, value, strict=True):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    if value < 0 or (strict and value == 0):
        raise ValueError(f"{name} must be {'> 0' if strict else '≥ 0'}, got {value!r}")


def _all_real(values):
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError):
        return False
    return arr.dtype.kind in "fiu" and arr.dtype != np.bool_


def _optional_int(name, value, low):
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral,)) or value < low:
        raise ValueError(f"{name} must be None or an integer ≥ {low}, got {value!r}")


def _check_x(X, name):
    if not hasattr(X, "shape") or not hasattr(X, "dtype"):
        X = np.asarray(X)
    xp = _backend.array_module(X)
    if X.dtype.kind not in "fiu" or X.dtype.itemsize > 8:
        raise TypeError(f"{name} must hold real numbers (float32/float64), got dtype {X.dtype}")
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array (n_samples, n_features), got shape {X.shape}")
    if not bool(xp.isfinite(X).all()):
        raise ValueError(f"{name} contains NaN or inf; expected finite values")
    if X.dtype.kind != "f":
        X = X.astype(xp.float64)
    return X


def _check_xy(X, y, y_name="y", single_only=False):
    """X (n, d) finite; y (n,) or (n, k) finite -> (X, Y (n, k) float64, y was 1-D)."""
    X = _check_x(X, "X")
    xp = _backend.array_module(X)
    y = xp.asarray(y)
    if y.dtype.kind not in "fiub":
        raise TypeError(f"{y_name} must hold real numbers, got dtype {y.dtype}")
    shapes = "(n,)" if single_only else "(n,) or (n, k)"
    if y.ndim not in ((1,) if single_only else (1, 2)) or y.shape[0] != X.shape[0] or y.size == 0:
        raise ValueError(f"{y_name} must have shape {shapes} with n = X.shape[0] = {X.shape[0]}, got {y.shape}")
    Y = y.astype(xp.float64).reshape(X.shape[0], -1)
    if not bool(xp.isfinite(Y).all()):
        raise ValueError(f"{y_name} contains NaN or inf; expected finite values")
    return X, Y, y.ndim == 1
