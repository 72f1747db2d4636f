"""``pyfeat demo``: TwoLayerReLU (Algorithm 1), RandomFeatures and NTK kernel ridge on a degree-4
multi-index task over a small grid of n; a table of test MSE and fit time, and a plot.

The grid is n = d²/2 … 32d² at d = 32 (the NTK up to 8d² = 8192, solved directly), width 1024;
``quick``: d = 24, n = d²/2 … 16d² (the NTK up to 8d²). One seed, float32. Before the sweep every model is fitted once on 64
samples, so the table's times do not include Numba's compilation. Runtime on a 2-core CPU: see
the README.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterable, Sequence
from os import PathLike
from pathlib import Path

from pyfeat.experiments.plots import plot_results, save_figure
from pyfeat.experiments.sweep import run_sweep

__all__ = ["demo_config", "run_demo", "format_table"]


def demo_config(quick: bool = False, backend: str = "auto", warm_up: bool = False) -> str:
    """The demo's sweep config as TOML text (``warm_up``: the same models on n = 64).

    Parameters
    ----------
    quick : bool, default False
        The smaller grid of ``pyfeat demo --quick`` (module docstring).
    backend : {"auto", "numba", "cuda", "numpy"}, default "auto"
        Every model's backend.
    warm_up : bool, default False
        The same models on n = 64 (and 64 test samples): run once before the demo so that
        its times do not include Numba's compilation.

    Returns
    -------
    str
        TOML text for :func:`pyfeat.experiments.load_config` / ``run_sweep``.

    Examples
    --------
    >>> from pyfeat.experiments import load_config
    >>> from pyfeat.experiments.demo import demo_config
    >>> config = load_config(demo_config(quick=True))
    >>> config.name, config.d, config.n[0], config.n[-1], [m.name for m in config.models]
    ('demo-quick', (24,), 288, 9216, ['nn', 'rf', 'ntk'])
    """
    d, ns, width, n_test, ntk_max = (24, [288, 576, 1152, 2304, 4608, 9216], 1024, 4096, 4608) if quick \
        else (32, [512, 1024, 2048, 4096, 8192, 16384, 32768], 1024, 8192, 8192)
    if warm_up:
        ns, n_test = [64], 64
    return f"""\
# pyfeat demo{' --quick' if quick else ''}: NN (Algorithm 1) vs random features vs NTK kernel ridge
name = "demo{'-quick' if quick else ''}"
seed = 0
n_test = {n_test}
dtype = "float32"

[task]
family = "MultiIndex"
r = 2
degree = 4

[grid]
d = [{d}]
n = {ns}
seeds = 1

[models.nn]
type = "TwoLayerReLU"
width = {width}
backend = "{backend}"

[models.rf]
type = "RandomFeatures"
width = {width}
backend = "{backend}"

[models.ntk]
type = "KernelRidge"
kernel = "ntk"
ridge = 1e-4
backend = "{backend}"
max_n = {ntk_max}
"""


def format_table(rows: Iterable[dict],
                 columns: Sequence[str] = ("model", "d", "n", "test_mse", "fit_time")) -> str:
    """Rows as an aligned text table (floats with 4 significant digits).

    Parameters
    ----------
    rows : iterable of dict
        Results rows; sorted by model, d, n and seed.
    columns : sequence of str, default ("model", "d", "n", "test_mse", "fit_time")
        The columns shown (test_mse, fit_time and test_rel get readable headers).

    Returns
    -------
    str
        A header line and one right-aligned line per row.

    Examples
    --------
    >>> from pyfeat.experiments.demo import format_table
    >>> rows = [{"model": "nn", "d": 32, "n": 512, "seed": 0, "test_mse": 0.51234, "fit_time": 0.25},
    ...         {"model": "ntk", "d": 32, "n": 512, "seed": 0, "test_mse": 0.9, "fit_time": 1.5}]
    >>> print(format_table(rows))
    model   d    n  test MSE  time (s)
       nn  32  512    0.5123      0.25
      ntk  32  512       0.9       1.5
    """
    heads = {"test_mse": "test MSE", "fit_time": "time (s)", "test_rel": "MSE/Var(y)"}
    cells = [[heads.get(c, c) for c in columns]]
    for r in sorted(rows, key=lambda r: (r["model"], r["d"], r["n"], r["seed"])):
        cells.append([f"{r[c]:.4g}" if isinstance(r[c], float) else str(r[c]) for c in columns])
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    return "\n".join("  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells)


def run_demo(quick: bool = False, out: str | PathLike = "demo.png", workdir: str | PathLike | None = None,
             backend: str = "auto", progress: bool = True) -> tuple[list[dict], float]:
    """Run the demo sweep and write its plot to ``out`` (what ``pyfeat demo`` does).

    Parameters
    ----------
    quick : bool, default False
        The smaller grid (module docstring).
    out : str or path, default "demo.png"
        The plot; its suffix gives the format (none: png).
    workdir : str or path, optional
        Keeps results.csv (default: a temporary directory); a rerun with the same
        ``workdir`` resumes.
    backend : {"auto", "numba", "cuda", "numpy"}, default "auto"
        Every model's backend.
    progress : bool, default True
        Show a progress bar.

    Returns
    -------
    rows : list of dict
        The demo's results rows.
    seconds : float
        Wall time in all (warm-up, sweep and plot).

    Examples
    --------
    The quick demo takes about 5 s on 2 cores, so it is not run here:

    >>> from pyfeat.experiments.demo import format_table, run_demo
    >>> rows, seconds = run_demo(quick=True, out="demo.png")  # doctest: +SKIP
    >>> print(format_table(rows))  # doctest: +SKIP
    """
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pyfeat-demo-") as tmp:
        run_sweep(demo_config(quick, backend, warm_up=True), Path(tmp) / "warm-up", progress=False)
        rows = run_sweep(demo_config(quick, backend), workdir or Path(tmp) / "demo",
                         resume=workdir is not None, progress=progress)
    fig = plot_results(rows, title="pyfeat demo: degree-4 multi-index target, r = 2, "
                                   f"d = {rows[0]['d']}")
    out = Path(out)
    save_figure(fig, out, formats=(out.suffix.lstrip(".") or "png",))
    return rows, time.perf_counter() - t0
