"""Sample complexity: n*(d), the smallest n reaching a test-error threshold, and its power law.

For each (model, d), the metric (``test_mse`` by default) is averaged over seeds at every n of the
grid; n*(d) is the smallest grid n whose mean is <= threshold (NaN if no n of the grid reaches
it). With ``interpolate=True``, n* is instead interpolated linearly in (log n, log error) between
that grid point and the one before it. The exponent e of n* ∝ d^e is the least-squares slope of
log n* on log d over the d values where n* is finite (at least two are needed).

The confidence interval is a percentile bootstrap over seeds: each bootstrap sample resamples
the seeds of every (model, d) with replacement (a seed keeps its whole error-vs-n curve, since it
shares one task draw and test set across n), recomputes n*(d) and refits the exponent. The
bootstrap generator is seeded, so the result is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pyfeat.experiments.results import swept_parameters

__all__ = ["SampleComplexity", "sample_complexity", "n_star"]


@dataclass
class SampleComplexity:
    """n*(d) of one model and the fitted power law n* ≈ exp(intercept) · d^exponent."""

    model: str
    threshold: float
    metric: str
    d: np.ndarray           # the d values of the grid, ascending
    n_star: np.ndarray      # n*(d); NaN where the grid never reaches the threshold
    exponent: float         # NaN when fewer than two d values have a finite n*
    intercept: float
    ci_low: float           # bootstrap percentile interval of the exponent
    ci_high: float
    level: float
    n_boot: int             # bootstrap samples that gave an exponent


def n_star(n, errors, threshold, interpolate=False):
    """Smallest n whose error is <= threshold, along the last axis of ``errors`` (n ascending);
    NaN where none is. With ``interpolate``, log-log interpolation from the previous n."""
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


def _fit(d, ns):
    """(slope, intercept) of log n* on log d over finite n*, or NaNs with < 2 points."""
    keep = np.isfinite(ns)
    if np.unique(d[keep]).size < 2:
        return np.nan, np.nan
    slope, intercept = np.polyfit(np.log(d[keep]), np.log(ns[keep]), 1)
    return float(slope), float(intercept)


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


def sample_complexity(results, threshold, metric="test_mse", interpolate=False, n_boot=1000,
                      level=0.95, seed=0):
    """n*(d) per model and the exponent of n* ∝ d^e with a bootstrap confidence interval.

    Parameters
    ----------
    results : rows (``load_results`` or ``run_sweep``), all with one value of each swept task
        parameter (filter them first otherwise).
    threshold : error level defining n* (in the units of ``metric``).
    metric : "test_mse" or "test_rel".
    interpolate : log-log interpolation between grid points (default: the grid n itself).
    n_boot, level, seed : bootstrap samples, interval level, bootstrap generator seed.

    Returns
    -------
    dict model name -> ``SampleComplexity`` (models in order of first appearance).
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
        stars = np.array([n_star(ns, _nanmean(M, 0), threshold, interpolate) for ns, M in by_d.values()])
        slope, intercept = _fit(ds, stars)
        boot = np.empty((n_boot, ds.size))
        for j, (ns, M) in enumerate(by_d.values()):
            idx = rng.integers(0, M.shape[0], size=(n_boot, M.shape[0]))
            boot[:, j] = n_star(ns, _nanmean(M[idx], 1), threshold, interpolate)
        slopes = np.array([_fit(ds, b)[0] for b in boot])
        slopes = slopes[np.isfinite(slopes)]
        tail = 100 * (1 - level) / 2
        low, high = np.percentile(slopes, [tail, 100 - tail]) if slopes.size else (np.nan, np.nan)
        out[model] = SampleComplexity(model, float(threshold), metric, ds, stars, slope, intercept,
                                      float(low), float(high), level, int(slopes.size))
    return out
