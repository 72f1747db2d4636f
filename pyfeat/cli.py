"""The ``pyfeat`` command line (also ``python -m pyfeat``).

    pyfeat info                        backends, devices, build facts
    pyfeat demo [--quick] [--out demo.png]
    pyfeat run CONFIG.toml|NAME [--out DIR] [--dask ADDRESS|local:N] [--resume]
    pyfeat plot DIR [--threshold T] [--metric test_mse|test_rel] [--format png,pdf]
    pyfeat bench [PYTEST ARGS...]      the benchmark suite (source checkout), as a table
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent.parent / "benchmarks"


class UserError(Exception):
    """A problem with the command's input: printed as one line, exit status 2."""


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
    from pyfeat.experiments import load_config, run_sweep

    if args.dask and importlib.util.find_spec("distributed") is None:
        raise UserError('--dask needs dask.distributed, an optional extra: pip install "pyfeat[dist]"')
    config = load_config(args.config)
    out = Path(args.out) if args.out else Path("results") / config.name
    rows = run_sweep(config, out, dask=args.dask, resume=args.resume, progress=not args.no_progress)
    print(f"{len(rows)} rows in {out / 'results.csv'}; plot them with: pyfeat plot {out}")
    return 0


def _cmd_plot(args):
    from pyfeat.experiments import load_config, load_results, plot_results, sample_complexity, save_figure
    from pyfeat.experiments.results import swept_parameters

    directory = Path(args.dir)
    rows = load_results(directory)
    if not rows:
        raise UserError(f"{directory / 'results.csv'} has no rows yet")
    config = load_config(directory / "config.toml") if (directory / "config.toml").is_file() else None
    threshold = args.threshold if args.threshold is not None else config and config.threshold
    metric = args.metric or (config.metric if config else "test_mse")
    interpolate = args.interpolate or bool(config and config.interpolate)
    fig = plot_results(rows, threshold=threshold, metric=metric, x=args.x, interpolate=interpolate,
                       title=config.name if config else directory.name)
    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    for path in save_figure(fig, Path(args.out) if args.out else directory / "plot", formats):
        print(f"wrote {path}")
    if threshold is not None and (args.x or "n") == "n" and not swept_parameters(rows):
        _print_complexity(sample_complexity(rows, threshold, metric, interpolate=interpolate))
    return 0


def _print_complexity(result):
    for model, sc in result.items():
        stars = ", ".join(f"d={d:g}: {n:.0f}" if n == n else f"d={d:g}: not reached"
                          for d, n in zip(sc.d, sc.n_star))
        fit = (f"n* ∝ d^{sc.exponent:.2f} [{sc.ci_low:.2f}, {sc.ci_high:.2f}] "
               f"({100 * sc.level:.0f}% bootstrap CI)" if sc.exponent == sc.exponent
               else "no exponent (n* reached at fewer than two d)")
        print(f"{model}: {fit}; n*: {stars}")


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


def format_bench(report):
    """A pytest-benchmark JSON report as a table: name, mean time, GFLOP/s and the ratio to a
    plain GEMM of the same FLOP count (from each benchmark's ``extra_info``, when it has them)."""
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


def build_parser():
    parser = argparse.ArgumentParser(prog="pyfeat", description="Feature learning vs kernels, at scale.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("info", help="backends, devices, build facts, BLAS kernels and threads")
    p.add_argument("--json", action="store_true", help="print the facts as JSON")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("demo", help="NN vs random features vs NTK on a degree-4 multi-index task: table and plot")
    p.add_argument("--quick", action="store_true", help="a smaller grid (under a minute on 2 cores)")
    p.add_argument("--out", default="demo.png", help="plot file (default: demo.png)")
    p.add_argument("--dir", default=None, help="keep the results.csv in this directory")
    p.add_argument("--backend", default="auto", help="auto, numba, cuda or numpy")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("run", help="run a sweep: one row per grid point in DIR/results.csv")
    p.add_argument("config", help="a TOML file, or the name of a shipped config "
                                   "(separation, transfer, spiked, heaviside)")
    p.add_argument("--out", default=None, help="output directory (default: results/<name>)")
    p.add_argument("--dask", default=None, metavar="ADDRESS|local:N",
                   help="run grid points on Dask: a scheduler address, or local:N for a LocalCluster of N workers")
    p.add_argument("--resume", action="store_true", help="skip the grid points already in DIR/results.csv")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("plot", help="plot DIR/results.csv: error vs n, and n*(d) with its fitted exponent")
    p.add_argument("dir", help="a sweep's output directory")
    p.add_argument("--threshold", type=float, default=None,
                   help="error threshold defining n* (default: the config's threshold)")
    p.add_argument("--metric", choices=["test_mse", "test_rel"], default=None)
    p.add_argument("--x", default=None, help="x axis: n, or a swept task parameter")
    p.add_argument("--interpolate", action="store_true",
                   help="n* interpolated (log-log) between grid points (default: the config's interpolate)")
    p.add_argument("--format", default="png,pdf", help="comma-separated formats (default: png,pdf)")
    p.add_argument("--out", default=None, help="output path without suffix (default: DIR/plot)")
    p.set_defaults(func=_cmd_plot)

    p = sub.add_parser("bench", help="run the benchmark suite (source checkout) and print a table")
    p.add_argument("pytest_args", nargs=argparse.REMAINDER, help="extra pytest arguments, e.g. -k gram")
    p.set_defaults(func=_cmd_bench)
    return parser


def main(argv=None):
    parser = build_parser()
    # `pyfeat bench -k gram`: what argparse does not know goes to pytest
    args, unknown = parser.parse_known_args(argv)
    if unknown and args.command != "bench":
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if unknown:
        args.pytest_args = unknown + args.pytest_args
    from pyfeat.experiments.config import ConfigError

    try:
        return args.func(args)
    except (UserError, ConfigError, FileExistsError, FileNotFoundError) as exc:
        print(f"pyfeat {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
