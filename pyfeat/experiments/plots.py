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

from collections.abc import Iterable, Sequence
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pyfeat.experiments.complexity import sample_complexity
from pyfeat.experiments.results import swept_parameters

if TYPE_CHECKING:  # matplotlib is imported when a plot is drawn
    from matplotlib.figure import Figure

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


def plot_results(results: Iterable[dict], threshold: float | None = None, metric: str = "test_mse",
                 x: str | None = None, interpolate: bool = False, title: str | None = None) -> Figure:
    """Figure of a sweep's results: error vs n, and n*(d) with its fit (module docstring).

    Parameters
    ----------
    results : iterable of dict
        Rows (:func:`load_results` or :func:`run_sweep`).
    threshold : float, optional
        Error threshold: drawn as a line, and with ``x="n"`` a second panel of n*(d) per model
        with the fitted power law (:func:`sample_complexity`).
    metric : {"test_mse", "test_rel"}, default "test_mse"
        The error drawn.
    x : str, optional
        "n" or a swept task parameter (default: the swept parameter if there is one, else n).
    interpolate : bool, default False
        Interpolate n* log-log between grid points.
    title : str, optional
        The figure's title.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (never shown in a window; save it with :func:`save_figure`).

    Raises
    ------
    ValueError
        For empty results, an unknown metric, or ``x`` neither "n" nor a swept parameter.

    Examples
    --------
    >>> from pyfeat.experiments import plot_results
    >>> rows = [{"model": "nn", "d": d, "n": n, "seed": s, "test_mse": d * d / n}
    ...         for d in (8, 16) for n in (64, 256, 1024) for s in range(5)]
    >>> fig = plot_results(rows, threshold=0.5, title="test MSE = d²/n")
    >>> [ax.get_xlabel() for ax in fig.axes]
    ['n (training samples)', 'd']
    """
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


def save_figure(fig: Figure, path: str | PathLike, formats: Sequence[str] = ("png",),
                dpi: float = 130) -> list[Path]:
    """Save ``fig`` as ``path`` with each suffix in ``formats`` (e.g. png, pdf).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure (e.g. from :func:`plot_results`).
    path : str or path
        Output path; its suffix is replaced by each format's (directories are created).
    formats : sequence of str, default ("png",)
        Image formats matplotlib knows.
    dpi : float, default 130
        Resolution of raster formats.

    Returns
    -------
    list of pathlib.Path
        The files written, one per format.

    Examples
    --------
    >>> import tempfile
    >>> from matplotlib.figure import Figure
    >>> from pyfeat.experiments import save_figure
    >>> fig = Figure()
    >>> _ = fig.add_subplot().plot([1, 2], [3, 4])
    >>> paths = save_figure(fig, tempfile.mkdtemp() + "/plots/line", ("png", "svg"))
    >>> [p.name for p in paths], all(p.stat().st_size > 0 for p in paths)
    (['line.png', 'line.svg'], True)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        target = path.with_suffix(f".{fmt}")
        fig.savefig(target, dpi=dpi)
        paths.append(target)
    return paths
