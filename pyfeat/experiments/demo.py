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
from pathlib import Path

from pyfeat.experiments.plots import plot_results, save_figure
from pyfeat.experiments.sweep import run_sweep

__all__ = ["demo_config", "run_demo", "format_table"]


def demo_config(quick=False, backend="auto", warm_up=False):
    """The demo's sweep config as TOML text (``warm_up``: the same models on n = 64)."""
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
ridge = "auto"
backend = "{backend}"
max_n = {ntk_max}
"""


def format_table(rows, columns=("model", "d", "n", "test_mse", "fit_time")):
    """Rows as an aligned text table (floats with 4 significant digits)."""
    heads = {"test_mse": "test MSE", "fit_time": "time (s)", "test_rel": "MSE/Var(y)"}
    cells = [[heads.get(c, c) for c in columns]]
    for r in sorted(rows, key=lambda r: (r["model"], r["d"], r["n"], r["seed"])):
        cells.append([f"{r[c]:.4g}" if isinstance(r[c], float) else str(r[c]) for c in columns])
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    return "\n".join("  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells)


def run_demo(quick=False, out="demo.png", workdir=None, backend="auto", progress=True):
    """Run the demo sweep and write its plot to ``out``. Returns (rows, seconds in all).

    ``workdir`` keeps results.csv (default: a temporary directory); a rerun with the same
    ``workdir`` resumes."""
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
