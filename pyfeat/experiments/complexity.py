"""Sample complexity: n*(d), the smallest n reaching a test-error threshold, and its power law.

For each (model, d), the metric (``test_mse`` by default) is averaged over seeds at every n of the
grid; n*(d) is the smallest grid n whose mean is <= threshold. With ``interpolate=True``, n* is
instead interpolated linearly in (log n, log error) between that grid point and the one before it.

**Censoring.** The grid only brackets n* between two of its points. When the mean curve is
already below the threshold at the smallest n of the grid, n* <= n_min is only an upper bound
(``censored = "upper"``); when no n of the grid reaches it, n* > n_max is only a lower bound
(``censored = "lower"``). A censored d has n_star = NaN and its bound in ``bound``; the
exponent e of n* ∝ d^e is the least-squares slope of log n* on log d over the uncensored d only
(at least two are needed). Whether single seeds reach the threshold does not matter: n* is that
of the mean curve (a d is censored or not as a whole).

**Interval.** The confidence interval of e is ``scipy.stats.bootstrap`` (percentile method)
over seeds: the bootstrap's samples are, for every uncensored d, the indices of its seeds, so a
resample redraws each d's seeds with replacement, independently across d, and a seed keeps its
whole error-vs-n curve (it shares one task draw and test set across n); the statistic
recomputes the mean curves, n*(d) and the slope. (The curves themselves cannot be the samples:
scipy resamples scalar observations.) A resample in which the mean curve at some fitted d leaves
the grid takes n* = the edge it crossed (n_min or n_max), the only value the grid gives; their
number is ``boot_censored`` (a large count says: widen the n grid). The interval needs at least
2 seeds at each fitted d; with fewer than 5 it is unreliable and a warning says so. The
bootstrap generator is seeded, so the result is reproducible.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from pyfeat.experiments.results import swept_parameters

__all__ = ["SampleComplexity", "sample_complexity", "n_star", "MIN_SEEDS"]

MIN_SEEDS = 5  # fewer seeds at a fitted d: the bootstrap interval is flagged as unreliable


@dataclass
class SampleComplexity:
    """The sample complexity n*(d) of one model and its power law n* ≈ exp(intercept)·d^exponent.

    What :func:`sample_complexity` returns per model (censoring and the interval: module
    docstring).

    Parameters
    ----------
    model : str
        The model's name.
    threshold : float
        The error level defining n*.
    metric : str
        "test_mse" or "test_rel".
    d : ndarray
        The d values of the grid, ascending.
    n_star : ndarray
        Values n*(d); NaN where censored (see ``censored`` and ``bound``).
    exponent : float
        Exponent e of n* ∝ d^e; NaN when fewer than two d values are uncensored.
    intercept : float
        Intercept of the line log n* ≈ intercept + exponent · log d.
    ci_low, ci_high : float
        Bootstrap percentile interval of the exponent (NaN: no interval).
    level : float
        The interval's confidence level.
    n_boot : int
        Bootstrap resamples (0 when there is no interval).
    censored : ndarray of str
        Per d: "" (n* inside the grid), "upper" (n* <= bound = n_min), "lower"
        (n* > bound = n_max: never reached).
    bound : ndarray
        The bound of a censored d; NaN if uncensored.
    seeds : ndarray of int
        Seeds per d.
    boot_censored : int
        Resamples in which some fitted d left the grid (see the module docstring).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)          # test MSE ≈ d²/n: n* = 2d² at threshold 0.5
    >>> rows = [{"model": "nn", "d": d, "n": 2**k, "seed": s, "test_mse": d**2 / 2**k * rng.uniform(0.8, 1.25)}
    ...         for d in (8, 16, 32) for k in range(4, 14) for s in range(5)]
    >>> from pyfeat.experiments import sample_complexity
    >>> sc = sample_complexity(rows, threshold=0.5, n_boot=200)["nn"]
    >>> sc.d, sc.n_star, round(sc.exponent, 2), sc.censored
    (array([ 8., 16., 32.]), array([ 256., 1024., 4096.]), 2.0, array(['', '', ''], dtype='<U5'))
    """

    model: str
    threshold: float
    metric: str
    d: np.ndarray           # the d values of the grid, ascending
    n_star: np.ndarray      # n*(d); NaN where censored (see ``censored`` and ``bound``)
    exponent: float         # NaN when fewer than two d values are uncensored
    intercept: float
    ci_low: float           # bootstrap percentile interval of the exponent (NaN: no interval)
    ci_high: float
    level: float
    n_boot: int             # bootstrap resamples (0 when there is no interval)
    censored: np.ndarray = field(default_factory=lambda: np.array([], dtype="<U5"))
    #                         per d: "" (n* inside the grid), "upper" (n* <= bound = n_min),
    #                         "lower" (n* > bound = n_max: never reached)
    bound: np.ndarray = field(default_factory=lambda: np.array([]))  # the bound; NaN if uncensored
    seeds: np.ndarray = field(default_factory=lambda: np.array([], dtype=int))  # seeds per d
    boot_censored: int = 0  # resamples in which some fitted d left the grid (see module docstring)


def n_star(n: ArrayLike, errors: ArrayLike, threshold: float, interpolate: bool = False) -> np.ndarray:
    """Smallest n whose error is <= threshold, along the last axis of ``errors``.

    Parameters
    ----------
    n : array_like of shape (k,)
        The grid's n values, ascending.
    errors : array_like of shape (..., k)
        Errors at each n (vectorized over the leading axes).
    threshold : float
        The error level.
    interpolate : bool, default False
        Log-log interpolation between the first n reaching the threshold and the previous n
        (when the error decreases between them).

    Returns
    -------
    ndarray of shape (...)
        Values n*, float64; NaN where no n reaches the threshold.

    Examples
    --------
    >>> from pyfeat.experiments import n_star
    >>> n_star([100, 200, 400], [0.9, 0.4, 0.1], 0.5)
    array(200.)
    >>> float(n_star([100, 200, 400], [0.9, 0.4, 0.1], 0.5, interpolate=True))
    165.27...
    >>> n_star([100, 200, 400], [[0.9, 0.4, 0.1], [0.9, 0.8, 0.7]], 0.5)
    array([200.,  nan])
    """
    n = np.asarray(n, dtype=np.float64)
    errors = np.asarray(errors, dtype=np.float64)
    hit = errors <= threshold
    first = np.argmax(hit, axis=-1)
    found = hit.any(axis=-1)
    result = np.where(found, n[first], np.nan)
    if interpolate:
        prev = np.maximum(first - 1, 0)
        e1 = np.take_along_axis(errors, first[..., None], -1)[..., 0]
        e0 = np.take_along_axis(errors, prev[..., None], -1)[..., 0]
        ok = found & (first > 0) & (e0 > e1) & (e1 > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (np.log(e0) - np.log(threshold)) / (np.log(e0) - np.log(e1))
            interp = np.exp(np.log(n[prev]) + t * (np.log(n[first]) - np.log(n[prev])))
        result = np.where(ok, interp, result)
    return result


def _censoring(errors, threshold):
    """"upper" where the first n already reaches the threshold, "lower" where none does."""
    hit = np.asarray(errors) <= threshold
    return np.where(~hit.any(axis=-1), "lower", np.where(hit[..., 0], "upper", ""))


def _line(x, y):
    """(slope, intercept) of the least-squares line y ≈ slope·x + intercept along the last axis."""
    xc = x - x.mean()
    slope = np.sum(xc * (y - y.mean(axis=-1, keepdims=True)), axis=-1) / np.sum(xc**2)
    return slope, y.mean(axis=-1) - slope * x.mean()


def _curves(rows, metric):
    """{model: {d: (n values, (seeds, n) matrix of the metric with NaN for missing points)}}."""
    table = {}
    for r in rows:
        table.setdefault(r["model"], {}).setdefault(r["d"], {})[(r["seed"], r["n"])] = r[metric]
    curves = {}
    for model, by_d in table.items():
        curves[model] = {}
        for d, cells in sorted(by_d.items()):
            seeds = sorted({s for s, _ in cells})
            ns = sorted({n for _, n in cells})
            M = np.full((len(seeds), len(ns)), np.nan)
            for (s, n), v in cells.items():
                M[seeds.index(s), ns.index(n)] = np.nan if v is None else v
            curves[model][d] = (np.array(ns, dtype=np.float64), M)
    return curves


def _nanmean(M, axis):
    """Mean over the non-NaN entries (NaN where there are none), without warnings."""
    count = np.sum(~np.isnan(M), axis=axis)
    total = np.nansum(M, axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _exponent_statistic(curves, log_d, threshold, interpolate, counter):
    """The bootstrapped statistic: statistic(*seed indices, axis=-1) -> slope of log n* on log d,
    vectorized over leading axes; counts resamples with a d outside the grid in ``counter``."""
    def statistic(*indices, axis=-1):
        log_n, outside = [], False
        for idx, (ns, M) in zip(indices, curves):
            mean = _nanmean(M[np.asarray(idx, dtype=np.intp)], -2)  # (..., n values)
            outside = outside | (_censoring(mean, threshold) != "")
            stars = n_star(ns, mean, threshold, interpolate)
            log_n.append(np.log(np.where(np.isnan(stars), ns[-1], stars)))  # never reached: n_max
        counter[0] += int(np.sum(outside))
        return _line(log_d, np.stack(log_n, axis=-1))[0]
    return statistic


def sample_complexity(results: Iterable[dict], threshold: float, metric: str = "test_mse",
                      interpolate: bool = False, n_boot: int = 1000, level: float = 0.95,
                      seed: int = 0) -> dict[str, SampleComplexity]:
    """Estimate n*(d) per model and the exponent of n* ∝ d^e with a bootstrap confidence interval.

    The interval is ``scipy.stats.bootstrap`` over seeds; censored d are reported as bounds
    (module docstring).

    Parameters
    ----------
    results : iterable of dict
        Rows (:func:`load_results` or :func:`run_sweep`), all with one value of each swept
        task parameter (filter them first otherwise).
    threshold : float
        Error level defining n* (in the units of ``metric``), > 0.
    metric : {"test_mse", "test_rel"}, default "test_mse"
        The error.
    interpolate : bool, default False
        Log-log interpolation between grid points (default: the grid n itself).
    n_boot : int, default 1000
        Bootstrap resamples.
    level : float, default 0.95
        Confidence level of the interval, in (0, 1).
    seed : int, default 0
        Seed of the bootstrap generator.

    Returns
    -------
    dict of str to SampleComplexity
        Model name -> its :class:`SampleComplexity` (models in order of first appearance).

    Raises
    ------
    ValueError
        For empty results, a threshold that is not a positive number, an unknown metric, a
        level outside (0, 1), or rows sweeping a task parameter.

    Warns
    -----
    UserWarning
        When a fitted d has fewer than ``MIN_SEEDS`` seeds (the interval is then unreliable,
        or absent with one seed).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)          # test MSE ≈ d²/n: n* = 2d² at threshold 0.5
    >>> rows = [{"model": "nn", "d": d, "n": 2**k, "seed": s, "test_mse": d**2 / 2**k * rng.uniform(0.8, 1.25)}
    ...         for d in (8, 16, 32) for k in range(4, 14) for s in range(5)]
    >>> from pyfeat.experiments import sample_complexity
    >>> sc = sample_complexity(rows, threshold=0.5, interpolate=True, n_boot=200)["nn"]
    >>> round(sc.exponent, 2), bool(sc.ci_low < 2 < sc.ci_high), sc.n_boot
    (2.05, True, 200)
    """
    rows = list(results)
    if not rows:
        raise ValueError("results is empty")
    if not (np.isfinite(threshold) and threshold > 0):
        raise ValueError(f"threshold must be a positive number, got {threshold!r}")
    if metric not in ("test_mse", "test_rel"):
        raise ValueError(f"metric must be 'test_mse' or 'test_rel', got {metric!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    swept = swept_parameters(rows)
    if swept:
        raise ValueError(f"results sweep the task parameter(s) {swept}; keep the rows of one value, "
                         f"e.g. [r for r in rows if r[{swept[0]!r}] == ...]")
    rng = np.random.default_rng(seed)
    out = {}
    for model, by_d in _curves(rows, metric).items():
        ds = np.array(sorted(by_d), dtype=np.float64)
        means = [_nanmean(M, 0) for _, M in by_d.values()]
        stars = np.array([n_star(ns, m, threshold, interpolate) for (ns, _), m in zip(by_d.values(), means)])
        censored = np.array([str(_censoring(m, threshold)) for m in means], dtype="<U5")
        bound = np.array([ns[0] if c == "upper" else ns[-1] if c == "lower" else np.nan
                          for (ns, _), c in zip(by_d.values(), censored)])
        stars[censored != ""] = np.nan
        seeds = np.array([M.shape[0] for _, M in by_d.values()])
        fitted = censored == ""
        slope = intercept = low = high = np.nan
        resamples, counter = 0, [0]
        if fitted.sum() >= 2:
            slope, intercept = (float(v) for v in _line(np.log(ds[fitted]), np.log(stars[fitted])))
            few = seeds[fitted].min()
            where = ", ".join(f"{d:g}" for d in ds[fitted][seeds[fitted] < MIN_SEEDS])
            if few < 2:
                warnings.warn(f"{model}: 1 seed at d = {where}: no bootstrap interval of the exponent "
                              "(it resamples seeds: run 5 or more)", stacklevel=2)
            else:
                if few < MIN_SEEDS:
                    warnings.warn(f"{model}: only {few} seeds at d = {where}: the bootstrap interval of the "
                                  f"exponent resamples seeds and is unreliable with fewer than {MIN_SEEDS}",
                                  stacklevel=2)
                import scipy.stats  # here: importing it takes seconds, and the CLI's run never needs it

                curves = [c for c, keep in zip(by_d.values(), fitted) if keep]
                statistic = _exponent_statistic(curves, np.log(ds[fitted]), threshold, interpolate, counter)
                boot = scipy.stats.bootstrap(
                    [np.arange(M.shape[0], dtype=np.float64) for _, M in curves], statistic,
                    n_resamples=n_boot, vectorized=True, paired=False, confidence_level=level,
                    method="percentile", random_state=rng)
                low, high = (float(v) for v in boot.confidence_interval)
                resamples = n_boot
        out[model] = SampleComplexity(model, float(threshold), metric, ds, stars, slope, intercept,
                                      low, high, level, resamples, censored, bound, seeds, counter[0])
    return out
