"""Progress of an iterative solver: residual history, a tqdm bar, and the warning for a solver
that stopped before its tolerance."""

from __future__ import annotations

import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning as _SklearnConvergenceWarning

__all__ = ["ConvergenceWarning", "Monitor", "not_converged"]


class ConvergenceWarning(_SklearnConvergenceWarning):
    """An iterative solver stopped before reaching its tolerance.

    A subclass of scikit-learn's ``ConvergenceWarning``, so scikit-learn's warning filters
    apply to it. ``KernelRidge`` then records ``converged_ = False``.

    Examples
    --------
    >>> import warnings
    >>> import pyfeat as pf
    >>> X, y = pf.tasks.MultiIndex(d=6, r=2, degree=2, seed=0).sample(500, seed=1)
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     krr = pf.KernelRidge(ridge=1e-6, solver="cg", max_iter=3).fit(X, y)
    >>> [w.category.__name__ for w in caught], krr.converged_
    (['ConvergenceWarning'], False)
    >>> from sklearn.exceptions import ConvergenceWarning
    >>> issubclass(pf.solvers.ConvergenceWarning, ConvergenceWarning)
    True
    """


class Monitor:
    """Records (iteration, relative residual, elapsed seconds) and shows a tqdm bar when verbose."""

    def __init__(self, solver, max_iter, verbose):
        from tqdm.auto import tqdm

        self.start = time.perf_counter()
        self.iteration, self.residual, self.time = [], [], []
        self.bar = tqdm(total=max_iter, desc=f"KernelRidge[{solver}]", disable=not verbose, leave=False)

    def record(self, iteration, residual):
        self.iteration.append(int(iteration))
        self.residual.append(float(residual))
        self.time.append(time.perf_counter() - self.start)
        self.bar.update(1)
        self.bar.set_postfix(residual=f"{residual:.2e}")

    def history(self):
        self.bar.close()
        return {
            "iteration": np.asarray(self.iteration, dtype=np.int64),
            "residual": np.asarray(self.residual, dtype=np.float64),
            "time": np.asarray(self.time, dtype=np.float64),
        }


def not_converged(solver, problem, residual, tol, n_iter, why=""):
    """A solver stopped at relative residual ``residual`` > tol: a ConvergenceWarning, or a
    ValueError when its α would predict garbage: the residual is not finite, or it is above 1
    (worse than α = 0) while the ridge is at K's rounding level (``Problem.interpolates``), where
    K + nλI can be singular in the working precision and the iterates diverge (duplicate rows
    with ridge = 0: cg's residual reached 2.5e11). With a larger ridge a residual above 1 is
    CG's non-monotone residual stopped early, and only warns."""
    singular = problem.interpolates()
    if not np.isfinite(residual) or (residual > 1 and singular):
        cause = (f"K + nλI is singular in {problem.working_dtype} at ridge={problem.ridge:g} (duplicate or "
                 "nearly duplicate rows of X?): use a larger ridge or ridge='auto'") if singular else \
                "its iterates overflowed: rescale X or y, or use a larger ridge"
        raise ValueError(f"solver={solver!r} diverged: relative residual {residual:.3g} after {n_iter} iterations, "
                         f"not better than the zero solution; {cause}")
    warnings.warn(
        f"solver={solver!r} stopped after {n_iter} iterations at relative residual "
        f"{residual:.3g} > tol={tol:g}{why}",
        ConvergenceWarning,
        stacklevel=4,
    )
