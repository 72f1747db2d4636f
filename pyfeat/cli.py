"""The ``pyfeat`` command line (also ``python -m pyfeat``).

    pyfeat [--debug] [--version]
    pyfeat info                        backends, devices, build facts
    pyfeat demo [--quick] [--out demo.png]
    pyfeat run CONFIG.toml|NAME [--out DIR] [--dask ADDRESS|local:N] [--resume]
    pyfeat plot DIR [--threshold T] [--metric test_mse|test_rel] [--format png,pdf]
    pyfeat bench [PYTEST ARGS...]      the benchmark suite (source checkout), as a table

Errors: a mistake in the command's input (arguments, config, results file, output directory)
is one line ``pyfeat <command>: error: ...`` on stderr and exit status 2; a grid point or
anything else failing while it runs is one line naming it and exit status 1. ``--debug`` (before
or after the command) shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

from pyfeat import __version__

BENCH_DIR = Path(__file__).resolve().parent.parent / "benchmarks"


class UserError(Exception):
    """A problem with the command's input: printed as one line, exit status 2.

    Examples
    --------
    >>> from pyfeat.cli import UserError
    >>> str(UserError("results/x/results.csv has no rows yet"))
    'results/x/results.csv has no rows yet'
    """


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line: ``pyfeat run: error: ...`` (exit status 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# -- argument types: a bad value is an argparse error (one line, exit status 2) --------------------

def _positive_number(text):
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _image_formats():
    from matplotlib.backend_bases import FigureCanvasBase

    return sorted(FigureCanvasBase.get_supported_filetypes())


def _formats(text):
    formats = [f.strip().lower() for f in text.split(",") if f.strip()]
    known = _image_formats()
    unknown = [f for f in formats if f not in known]
    if not formats or unknown:
        raise argparse.ArgumentTypeError(f"unknown image format(s) {', '.join(unknown) or repr(text)}; "
                                         f"known: {', '.join(known)}")
    return formats


def _shipped_configs():
    from pyfeat.experiments.config import shipped_configs

    return shipped_configs()


def _image_path(text):
    suffix = Path(text).suffix.lstrip(".").lower()
    if suffix and suffix not in _image_formats():
        raise argparse.ArgumentTypeError(f"{text!r}: unknown image format {suffix!r}; "
                                         f"known: {', '.join(_image_formats())}")
    return text


def _dask_address(text):
    from pyfeat.experiments.sweep import dask_workers

    try:
        dask_workers(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


# -- commands -----------------------------------------------------------------------------------

def _cmd_info(args):
    from pyfeat.backend import format_info, info

    d = info()
    print(json.dumps(d, indent=2, default=str) if args.json else format_info(d))
    return 0


def _cmd_demo(args):
    from pyfeat.experiments.demo import format_table, run_demo

    rows, seconds = run_demo(quick=args.quick, out=args.out, workdir=args.dir, backend=args.backend,
                             progress=not args.no_progress)
    print(format_table(rows))
    print(f"plot: {Path(args.out).resolve()}   ({seconds:.0f} s in all)")
    return 0


def _cmd_run(args):
    from pyfeat.experiments import grid, load_config, run_sweep

    if args.dask and importlib.util.find_spec("distributed") is None:
        raise UserError('--dask needs dask.distributed, an optional extra: pip install "pyfeat[dist]"')
    config = load_config(args.config)
    out = Path(args.out) if args.out else Path("results") / config.name
    rows = run_sweep(config, out, dask=args.dask, resume=args.resume, progress=not args.no_progress)
    ran = {r["point_id"] for r in rows}
    skipped = sum(p.point_id not in ran for p in grid(config))
    note = f" ({skipped} grid points skipped by stop_below)" if skipped > 0 else ""
    print(f"{len(rows)} rows in {out / 'results.csv'}{note}; plot them with: pyfeat plot {out}")
    return 0


def _cmd_plot(args):
    from pyfeat.experiments import load_config, load_results, plot_results, sample_complexity, save_figure
    from pyfeat.experiments.results import swept_parameters

    directory = Path(args.dir)
    rows = load_results(directory)
    if not rows:
        raise UserError(f"{directory / 'results.csv'} has no rows yet")
    swept = swept_parameters(rows)
    if args.x is not None and args.x != "n" and args.x not in swept:
        raise UserError(f"--x must be n or a swept task parameter ({', '.join(swept) or 'none here'}), got {args.x!r}")
    config = load_config(directory / "config.toml") if (directory / "config.toml").is_file() else None
    threshold = args.threshold if args.threshold is not None else config and config.threshold
    metric = args.metric or (config.metric if config else "test_mse")
    interpolate = args.interpolate or bool(config and config.interpolate)
    fig = plot_results(rows, threshold=threshold, metric=metric, x=args.x, interpolate=interpolate,
                       title=config.name if config else directory.name)
    for path in save_figure(fig, Path(args.out) if args.out else directory / "plot", args.format):
        print(f"wrote {path}")
    if threshold is not None and (args.x or "n") == "n" and not swept:
        print(format_complexity(sample_complexity(rows, threshold, metric, interpolate=interpolate)))
    return 0


def _bound(sc, i):
    """n*(d_i) as text: the value, or the bound a censored d gives."""
    if sc.censored[i] == "upper":
        return f"≤ {sc.bound[i]:.0f} (reached at the smallest n)"
    if sc.censored[i] == "lower":
        return f"> {sc.bound[i]:.0f} (never reached)"
    return f"{sc.n_star[i]:.0f}"


def format_complexity(result: dict) -> str:
    """One line per model: the fitted exponent with its interval, and n*(d) (bounds marked).

    What ``pyfeat plot`` prints after the figure.

    Parameters
    ----------
    result : dict of str to SampleComplexity
        What :func:`pyfeat.experiments.sample_complexity` returns.

    Returns
    -------
    str
        One line per model.

    Examples
    --------
    >>> from pyfeat.cli import format_complexity
    >>> from pyfeat.experiments import sample_complexity
    >>> rows = [{"model": "nn", "d": d, "n": n, "seed": s, "test_mse": d * d / n * (1 + 0.1 * s)}
    ...         for d in (8, 16, 32) for n in (64, 256, 1024) for s in range(5)]
    >>> print(format_complexity(sample_complexity(rows, threshold=0.5, n_boot=100)))
    nn: n* ∝ d^2.00 [2.00, 2.00] (95% bootstrap CI over seeds), fitted on the 2 of 3 d where n* is
    inside the grid; n*: d=8: 256, d=16: 1024, d=32: > 1024 (never reached)
    """
    lines = []
    for model, sc in result.items():
        stars = ", ".join(f"d={d:g}: {_bound(sc, i)}" for i, d in enumerate(sc.d))
        fitted = sc.censored == ""
        if sc.exponent == sc.exponent:
            ci = (f"[{sc.ci_low:.2f}, {sc.ci_high:.2f}] ({100 * sc.level:.0f}% bootstrap CI over seeds)"
                  if sc.ci_low == sc.ci_low else "(no interval: fewer than 2 seeds)")
            fit = f"n* ∝ d^{sc.exponent:.2f} {ci}"
            if not fitted.all():
                fit += f", fitted on the {fitted.sum()} of {fitted.size} d where n* is inside the grid"
            if sc.boot_censored:
                fit += f" ({sc.boot_censored} of {sc.n_boot} resamples left the grid at some d: widen it)"
        else:
            fit = f"no exponent (n* inside the grid at {fitted.sum()} of {fitted.size} d; a fit needs 2)"
        lines.append(f"{model}: {fit}; n*: {stars}")
    return "\n".join(lines)


def _cmd_bench(args):
    if not BENCH_DIR.is_dir():
        raise UserError("pyfeat bench runs the benchmarks/ folder of a source checkout "
                        "(git clone the repository and pip install -e '.[bench]')")
    if importlib.util.find_spec("pytest_benchmark") is None:
        raise UserError('pyfeat bench needs pytest-benchmark: pip install "pyfeat[bench]"')
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "bench.json"
        cmd = [sys.executable, "-m", "pytest", str(BENCH_DIR), "--benchmark-only", "-q",
               f"--benchmark-json={report}", *args.pytest_args]
        status = subprocess.call(cmd)
        if report.is_file():
            print(format_bench(json.loads(report.read_text())))
    return status


def format_bench(report: dict) -> str:
    """A pytest-benchmark JSON report as a table: name, mean time, GFLOP/s and the ratio to GEMM.

    The ratio is to a plain GEMM of the same FLOP count; both come from each benchmark's
    ``extra_info`` ("gflops", "ratio_to_gemm"), when it has them ("-" otherwise).

    Parameters
    ----------
    report : dict
        The parsed ``--benchmark-json`` file.

    Returns
    -------
    str
        A header and one line per benchmark.

    Examples
    --------
    >>> from pyfeat.cli import format_bench
    >>> print(format_bench({"benchmarks": [
    ...     {"name": "test_relu_gram", "stats": {"mean": 0.0123},
    ...      "extra_info": {"gflops": 190.23, "ratio_to_gemm": 0.84}},
    ...     {"name": "test_sample", "stats": {"mean": 2.5}}]}))
    benchmark       mean time  GFLOP/s  vs GEMM
    test_relu_gram    12.3 ms    190.2     0.84
    test_sample         2.5 s        -        -
    """
    lines = [("benchmark", "mean time", "GFLOP/s", "vs GEMM")]
    for b in report.get("benchmarks", []):
        extra = b.get("extra_info", {})
        gflops, ratio = extra.get("gflops"), extra.get("ratio_to_gemm")
        mean = b["stats"]["mean"]
        lines.append((b["name"], f"{mean * 1e3:.3g} ms" if mean < 1 else f"{mean:.3g} s",
                      "-" if gflops is None else f"{gflops:.1f}",
                      "-" if ratio is None else f"{ratio:.2f}"))
    widths = [max(len(line[i]) for line in lines) for i in range(4)]
    return "\n".join(line[0].ljust(widths[0]) + "  " +
                     "  ".join(v.rjust(w) for v, w in zip(line[1:], widths[1:])) for line in lines)


def build_parser() -> argparse.ArgumentParser:
    """The ``pyfeat`` argument parser: the commands info, demo, run, plot and bench.

    Its errors are one line (``pyfeat run: error: ...``) and exit status 2; ``--debug`` is
    accepted before or after the command.

    Returns
    -------
    argparse.ArgumentParser
        Each command's namespace has ``func``, the function that runs it.

    Examples
    --------
    >>> from pyfeat.cli import build_parser
    >>> args = build_parser().parse_args(["run", "separation", "--resume", "--dask", "local:2"])
    >>> args.command, args.config, args.resume, args.dask, args.debug
    ('run', 'separation', True, 'local:2', False)
    """
    parser = _Parser(prog="pyfeat", description="Feature learning vs kernels, at scale.")
    parser.add_argument("--version", action="version", version=f"pyfeat {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks (for bug reports)")
    # --debug is also accepted after the command (SUPPRESS: the command does not reset it)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name, help):
        return sub.add_parser(name, help=help, parents=[common])

    p = command("info", "backends, devices, build facts, BLAS kernels and threads")
    p.add_argument("--json", action="store_true", help="print the facts as JSON")
    p.set_defaults(func=_cmd_info)

    p = command("demo", "NN vs random features vs NTK on a degree-4 multi-index task: table and plot")
    p.add_argument("--quick", action="store_true", help="a smaller grid (under a minute on 2 cores)")
    p.add_argument("--out", type=_image_path, default="demo.png", help="plot file (default: demo.png)")
    p.add_argument("--dir", default=None, help="keep the results.csv in this directory")
    p.add_argument("--backend", choices=["auto", "numba", "cuda", "numpy"], default="auto",
                   help="compute backend (default: auto)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_demo)

    p = command("run", "run a sweep: one row per grid point in DIR/results.csv")
    p.add_argument("config", help="a TOML file, or the name of a shipped config "
                                   f"({', '.join(_shipped_configs())})")
    p.add_argument("--out", default=None, help="output directory (default: results/<name>)")
    p.add_argument("--dask", type=_dask_address, default=None, metavar="ADDRESS|local:N",
                   help="run grid points on Dask: a scheduler address, or local:N for a LocalCluster of N workers")
    p.add_argument("--resume", action="store_true",
                   help="skip the grid points already in DIR/results.csv (the config may grow the grid)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_run)

    p = command("plot", "plot DIR/results.csv: error vs n, and n*(d) with its fitted exponent")
    p.add_argument("dir", help="a sweep's output directory")
    p.add_argument("--threshold", type=_positive_number, default=None,
                   help="error threshold defining n* (default: the config's threshold)")
    p.add_argument("--metric", choices=["test_mse", "test_rel"], default=None)
    p.add_argument("--x", default=None, help="x axis: n, or a swept task parameter")
    p.add_argument("--interpolate", action="store_true",
                   help="n* interpolated (log-log) between grid points (default: the config's interpolate)")
    p.add_argument("--format", type=_formats, default=["png", "pdf"], help="comma-separated formats (default: png,pdf)")
    p.add_argument("--out", default=None, help="output path without suffix (default: DIR/plot)")
    p.set_defaults(func=_cmd_plot)

    p = command("bench", "run the benchmark suite (source checkout) and print a table")
    p.add_argument("pytest_args", nargs=argparse.REMAINDER, help="extra pytest arguments, e.g. -k gram")
    p.set_defaults(func=_cmd_bench)
    return parser


def _failure(exc):
    """(exit status, one-line message) for an exception that ends a command: 2 for a mistake in
    the command's input, 1 for a grid point or anything else failing."""
    from pyfeat.experiments.config import ConfigError
    from pyfeat.experiments.results import SweepError
    from pyfeat.experiments.sweep import GridPointError

    text = " ".join(str(exc).split())
    if isinstance(exc, (UserError, ConfigError, SweepError, FileExistsError, FileNotFoundError,
                        NotADirectoryError)):
        return 2, text
    if isinstance(exc, GridPointError):
        return 1, f"{text} (rerun with --debug for the traceback; --resume continues after the rows written)"
    return 1, f"{type(exc).__name__}: {text} (rerun with --debug for the traceback)"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``pyfeat`` command line (also ``python -m pyfeat``); returns the exit status.

    A mistake in the command's input is one line ``pyfeat <command>: error: ...`` on stderr
    and status 2; a failure while it runs is one line and status 1; ``--debug`` raises
    instead. Arguments ``pyfeat bench`` does not know go to pytest.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status: 0 on success, 2 for a mistake in the input, 1 for a failure.

    Examples
    --------
    >>> from pyfeat.cli import main
    >>> main(["plot", "no/such/sweep"])        # stderr: pyfeat plot: error: no results file ...
    2
    >>> main(["info"])                         # doctest: +ELLIPSIS
    pyfeat ...
      compiled core:  yes
    ...
    0
    """
    parser = build_parser()
    # `pyfeat bench -k gram`: what argparse does not know goes to pytest
    args, unknown = parser.parse_known_args(argv)
    prog = f"pyfeat {args.command}"
    if unknown and args.command != "bench":
        parser.exit(2, f"{prog}: error: unrecognized arguments: {' '.join(unknown)} (see {prog} --help)\n")
    if unknown:
        args.pytest_args = unknown + args.pytest_args
    with warnings.catch_warnings():
        if not args.debug:  # warnings as one line each, without the source line
            warnings.showwarning = lambda message, *rest: print(
                f"{prog}: warning: {' '.join(str(message).split())}", file=sys.stderr)
        try:
            return args.func(args)
        except Exception as exc:
            if args.debug:
                raise
            status, message = _failure(exc)
            print(f"{prog}: error: {message}", file=sys.stderr)
            return status


if __name__ == "__main__":
    sys.exit(main())
