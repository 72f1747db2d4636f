"""Plots of sweep results (matplotlib ``Figure`` objects, never a display window).

``plot_results`` draws the test error against n (log-log), one color per model and one line
style per d, with the mean over seeds and its standard deviation as error bars; with a
threshold, a second panel shows n*(d) per model with the fitted power law, its exponent and
bootstrap interval in the legend; a d where n* is censored by the grid is drawn as a bound, a
hollow triangle pointing the way n* lies: ▽ at n_min for n* ≤ n_min (reached at the smallest n),
△ at n_max for n* > n_max (never reached). When the results sweep a task parameter (e.g. the spike
exponent β), the error is drawn against that parameter instead, one line per (model, d, n).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pyfeat.experiments.complexity import sample_complexity
from pyfeat.experiments.results import swept_parameters

__all__ = ["plot_results", "save_figure", "METRIC_LABELS"]

METRIC_LABELS = {"test_mse": "test MSE", "test_rel": "test MSE / Var(y)"}
_STYLES = ["-", "--", ":", "-."]
_MARKERS = ["o", "s", "^", "D", "v", "P"]


def _fmt(value):
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def _mean_curves(rows, x, metric, group):
    """{group key: (x values, mean, std)} averaging the metric over seeds."""
    cells = {}
    for r in rows:
        cells.setdefault(tuple(r[g] for g in group), {}).setdefault(r[x], []).append(r[metric])
    curves = {}
    for key, by_x in cells.items():
        xs = sorted(by_x)
        vals = [np.asarray(by_x[v], dtype=np.float64) for v in xs]
        curves[key] = (np.array(xs, dtype=np.float64), np.array([np.nanmean(v) for v in vals]),
                       np.array([np.nanstd(v) for v in vals]))
    return curves


def plot_results(results, threshold=None, metric="test_mse", x=None, interpolate=False, title=None):
    """Figure of a sweep's results (see the module docstring). ``x``: "n" or a swept task
    parameter (default: the swept parameter if there is one, else n). Returns the Figure."""
    rows = list(results)
    if not rows:
        raise ValueError("results is empty: nothing to plot")
    if metric not in METRIC_LABELS:
        raise ValueError(f"metric must be one of {sorted(METRIC_LABELS)}, got {metric!r}")
    swept = swept_parameters(rows)
    x = x or (swept[0] if swept else "n")
    if x != "n" and x not in swept:
        raise ValueError(f"x must be 'n' or a swept task parameter {swept}, got {x!r}")
    from matplotlib.figure import Figure  # here: importing it takes a second or more

    models = list(dict.fromkeys(r["model"] for r in rows))
    colors = {m: f"C{i % 10}" for i, m in enumerate(models)}
    group = ["model", "d"] + (["n"] if x != "n" else []) + [s for s in swept if s != x]
    curves = _mean_curves(rows, x, metric, group)
    styles = {}

    with_nstar = x == "n" and threshold is not None
    fig = Figure(figsize=(12 if with_nstar else 7, 4.8), layout="constrained")
    ax = fig.add_subplot(1, 2 if with_nstar else 1, 1)
    for key, (xs, mean, std) in curves.items():
        rest = key[1:]
        if rest not in styles:
            styles[rest] = len(styles)
        k = styles[rest]
        label = f"{key[0]}, " + ", ".join(f"{g}={_fmt(v)}" for g, v in zip(group[1:], rest))
        ax.errorbar(xs, mean, yerr=std, color=colors[key[0]], linestyle=_STYLES[k % len(_STYLES)],
                    marker=_MARKERS[k % len(_MARKERS)], markersize=4, capsize=2, label=label)
    if x == "n":
        ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("n (training samples)" if x == "n" else x)
    ax.set_ylabel(METRIC_LABELS[metric])
    if threshold is not None:
        ax.axhline(threshold, color="0.5", linewidth=0.8, linestyle="--", label=f"threshold {threshold:g}")
    ax.legend(fontsize=7, ncol=2 if len(curves) > 8 else 1)
    ax.grid(True, which="both", alpha=0.3)

    if with_nstar:
        ax2 = fig.add_subplot(1, 2, 2)
        for model, sc in sample_complexity(rows, threshold, metric, interpolate=interpolate).items():
            keep = sc.censored == ""
            ax2.plot(sc.d[keep], sc.n_star[keep], "o", color=colors[model])
            if np.isfinite(sc.exponent):
                dd = np.geomspace(sc.d[keep].min(), sc.d[keep].max(), 50)
                ci = (f"[{sc.ci_low:.2f}, {sc.ci_high:.2f}] ({100 * sc.level:.0f}% CI)"
                      if np.isfinite(sc.ci_low) else "(no CI: 1 seed)")
                label = f"{model}: n* ∝ d^{sc.exponent:.2f} {ci}" + ("" if keep.all() else f", fit on {keep.sum()} d")
                ax2.plot(dd, np.exp(sc.intercept) * dd**sc.exponent, "-", color=colors[model], label=label)
            else:
                ax2.plot([], [], "o", color=colors[model],
                         label=f"{model}: n* inside the grid at {keep.sum()} of {keep.size} d (no fit)")
            for kind, marker, text in (("upper", "v", "n* ≤ smallest n"), ("lower", "^", "n* > largest n (never reached)")):
                at = sc.censored == kind
                if at.any():
                    ax2.plot(sc.d[at], sc.bound[at], marker, color=colors[model], markerfacecolor="none",
                             markersize=8, label=f"{model}: {text}")
        ax2.set_xscale("log")
        ax2.set_yscale("log")
        ax2.set_xlabel("d")
        ax2.set_ylabel(f"n* (mean {METRIC_LABELS[metric]} ≤ {threshold:g})")
        ax2.legend(fontsize=7)
        ax2.grid(True, which="both", alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


def save_figure(fig, path, formats=("png",), dpi=130):
    """Save ``fig`` as ``path`` with each suffix in ``formats`` (e.g. png, pdf); returns the paths."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        target = path.with_suffix(f".{fmt}")
        fig.savefig(target, dpi=dpi)
        paths.append(target)
    return paths
