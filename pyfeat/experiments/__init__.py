"""Experiments: sample-complexity sweeps, transfer, fits of n*(d) and plots (also the CLI's
``run``, ``plot`` and ``demo`` commands)::

    from pyfeat import experiments as ex
    rows = ex.run_sweep("separation", out="results/separation", dask="local:2")
    sc = ex.sample_complexity(rows, threshold=0.5)      # {model: SampleComplexity}
    frame = ex.load_results("results/separation", as_frame=True)   # a pandas DataFrame
    fig = ex.plot_results(rows, threshold=0.5); ex.save_figure(fig, "separation", ("png", "pdf"))

A sweep is described by a TOML config (``pyfeat.experiments.config``); shipped configs run by
name (``shipped_configs()``).
"""

from pyfeat.experiments.complexity import SampleComplexity, n_star, sample_complexity
from pyfeat.experiments.config import (ConfigError, ModelSpec, SweepConfig, load_config,
                                       register_model, register_task, shipped_configs)
from pyfeat.experiments.plots import plot_results, save_figure
from pyfeat.experiments.results import SweepError, load_results
from pyfeat.experiments.sweep import GridPointError, grid, run_point, run_sweep

__all__ = [
    "ConfigError", "GridPointError", "ModelSpec", "SampleComplexity", "SweepConfig", "SweepError",
    "grid", "load_config", "load_results", "n_star", "plot_results", "register_model",
    "register_task", "run_point", "run_sweep", "sample_complexity", "save_figure", "shipped_configs",
]
