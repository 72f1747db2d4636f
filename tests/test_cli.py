"""The ``pyfeat`` command line: run/plot/bench/demo/info, errors as one line with exit status 2."""

import json
import subprocess
import sys

import pytest

from pyfeat import cli
from pyfeat import experiments as ex
from test_experiments import N_TOY_ROWS, TOY, TOY_STOP  # registers the "toy" task and "toy_ls" model


@pytest.fixture
def toy_config(tmp_path):
    path = tmp_path / "toy.toml"
    path.write_text(TOY)
    return path


def test_run_says_how_many_points_stop_below_skipped(tmp_path, capsys):
    path = tmp_path / "stop.toml"
    path.write_text(TOY_STOP)
    assert cli.main(["run", str(path), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    rows = len(ex.load_results(tmp_path / "out"))
    assert rows < N_TOY_ROWS
    assert f"({N_TOY_ROWS - rows} grid points skipped by stop_below)" in capsys.readouterr().out


def test_run_resume_and_plot(toy_config, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["run", str(toy_config), "--out", str(out), "--no-progress"]) == 0
    assert f"{N_TOY_ROWS} rows in {out / 'results.csv'}" in capsys.readouterr().out
    assert (out / "config.toml").read_text() == TOY

    assert cli.main(["run", str(toy_config), "--out", str(out), "--no-progress"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert cli.main(["run", str(toy_config), "--out", str(out), "--resume", "--no-progress"]) == 0
    assert len(ex.load_results(out)) == N_TOY_ROWS

    assert cli.main(["plot", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "ls: n* ∝ d^" in printed  # threshold 0.05 from the copied config
    for suffix in ("png", "pdf"):
        assert (out / f"plot.{suffix}").stat().st_size > 1000
    assert cli.main(["plot", str(out), "--format", "png", "--out", str(tmp_path / "p"),
                     "--metric", "test_rel"]) == 0
    assert (tmp_path / "p.png").exists() and not (tmp_path / "p.pdf").exists()


def test_malformed_config_is_one_line_naming_key_and_line(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(TOY.replace("seeds = 2", "seeds = 0"))
    assert cli.main(["run", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pyfeat run: error: ") and f"{bad}, line 14: grid.seeds: must be >= 1" in err
    assert not (tmp_path / "o").exists()


def test_more_argument_mistakes_are_one_line(tmp_path, capsys):
    (tmp_path / "results.csv").write_text("")
    for args, fragment in [
        (["plot", str(tmp_path), "--threshold", "nan"], "argument --threshold: must be a positive number, got 'nan'"),
        (["plot", str(tmp_path), "--format", " , "], "argument --format: unknown image format(s) ' , '"),
        (["demo", "--out", "demo.bogus"], "argument --out: 'demo.bogus': unknown image format 'bogus'"),
        (["demo", "--backend", "gpu"], "argument --backend: invalid choice: 'gpu'"),
        (["info", "--bogus"], "pyfeat info: error: unrecognized arguments: --bogus"),
    ]:
        with pytest.raises(SystemExit) as exit_:
            cli.main(args)
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and err.count("\n") == 1 and fragment in err, err
    assert cli.main(["plot", str(tmp_path)]) == 2
    assert "has no rows yet" in capsys.readouterr().err


def test_plot_x_must_be_n_or_swept(toy_config, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["run", str(toy_config), "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    assert cli.main(["plot", str(out), "--x", "beta"]) == 2
    assert "--x must be n or a swept task parameter (none here), got 'beta'" in capsys.readouterr().err


def test_failing_point_is_one_line_status_1_and_debug_raises(tmp_path, capsys):
    failing = tmp_path / "failing.toml"
    failing.write_text(TOY.replace('type = "toy_ls"\n\n', 'type = "toy_failing"\n\n', 1))
    out = str(tmp_path / "out")
    assert cli.main(["run", str(failing), "--out", out, "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(
        "pyfeat run: error: grid point model=ls d=4 n=16 seed=0 failed: FloatingPointError: the toy fit diverged")
    with pytest.raises(ex.GridPointError):
        cli.main(["--debug", "run", str(failing), "--out", out, "--no-progress"])
    fixed = tmp_path / "fixed.toml"  # the failed run left a header-only results.csv: no results
    fixed.write_text(TOY)
    assert cli.main(["run", str(fixed), "--out", out, "--resume", "--no-progress"]) == 0
    assert len(ex.load_results(out)) == N_TOY_ROWS


def test_warnings_are_one_line_each(toy_config, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["run", str(toy_config), "--out", str(out), "--no-progress"]) == 0
    assert cli.main(["plot", str(out), "--format", "png"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert "pyfeat plot: warning: ls: only 2 seeds at d = 4, 8: the bootstrap interval of the exponent " \
           "resamples seeds and is unreliable with fewer than 5" in err
    assert all(line.startswith("pyfeat plot: warning: ") for line in err)


def test_censored_n_star_is_printed_as_a_bound():
    from test_experiments import _synthetic

    with pytest.warns(UserWarning, match="only 3 seeds"):
        sc = ex.sample_complexity(_synthetic(2.0, ds=(2, 8, 16, 32, 2048)), threshold=1.0,
                                  interpolate=True, n_boot=100)
    line = cli.format_complexity(sc)
    assert line.startswith("m: n* ∝ d^2.00 [2.00, 2.00] (95% bootstrap CI over seeds), fitted on the 3 "
                           "of 5 d where n* is inside the grid; n*: d=2: ≤ 8 (reached at the smallest n), ")
    assert line.endswith("d=32: 1024, d=2048: > 524288 (never reached)") and "d^0.00" not in line
    none = ex.sample_complexity(_synthetic(2.0, ds=(8, 16)), threshold=1e-9, n_boot=20)  # no fit: no warning
    assert cli.format_complexity(none) == ("m: no exponent (n* inside the grid at 0 of 2 d; a fit needs 2); "
                                           "n*: d=8: > 524288 (never reached), d=16: > 524288 (never reached)")


def test_missing_config_and_results(tmp_path, capsys):
    assert cli.main(["run", str(tmp_path / "nope.toml")]) == 2
    assert "no config file" in capsys.readouterr().err
    assert cli.main(["plot", str(tmp_path)]) == 2
    assert "no results file" in capsys.readouterr().err


def test_dask_missing_says_how_to_get_it(toy_config, tmp_path, capsys, monkeypatch):
    real = cli.importlib.util.find_spec
    monkeypatch.setattr(cli.importlib.util, "find_spec",
                        lambda name, *a: None if name == "distributed" else real(name, *a))
    assert cli.main(["run", str(toy_config), "--out", str(tmp_path), "--dask", "local:2"]) == 2
    assert 'pip install "pyfeat[dist]"' in capsys.readouterr().err


def test_bench_table_and_source_checkout(monkeypatch, tmp_path, capsys):
    report = {"benchmarks": [
        {"name": "test_gram[numba-float32]", "stats": {"mean": 0.0125},
         "extra_info": {"gflops": 151.25, "ratio_to_gemm": 0.8123}},
        {"name": "test_other", "stats": {"mean": 2.0}, "extra_info": {}},
    ]}
    table = cli.format_bench(report).splitlines()
    assert table[0].split() == ["benchmark", "mean", "time", "GFLOP/s", "vs", "GEMM"]
    assert table[1].split() == ["test_gram[numba-float32]", "12.5", "ms", "151.2", "0.81"]
    assert table[2].split() == ["test_other", "2", "s", "-", "-"]
    monkeypatch.setattr(cli, "BENCH_DIR", tmp_path / "absent")
    assert cli.main(["bench"]) == 2
    assert "source checkout" in capsys.readouterr().err


def test_bench_passes_unknown_options_to_pytest(monkeypatch):
    seen = {}
    monkeypatch.setattr(cli, "_cmd_bench", lambda args: seen.setdefault("args", args.pytest_args) and 0)
    parser_args = ["bench", "-k", "gram", "--benchmark-min-rounds=1"]
    cli.main(parser_args)
    assert seen["args"] == ["-k", "gram", "--benchmark-min-rounds=1"]
    with pytest.raises(SystemExit):
        cli.main(["info", "-k", "gram"])  # other commands still reject unknown options


def test_python_dash_m_lists_the_commands():
    proc = subprocess.run([sys.executable, "-m", "pyfeat", "--help"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0
    for command in ("info", "demo", "run", "plot", "bench"):
        assert command in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "pyfeat", "info", "--json"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and "version" in json.loads(proc.stdout)


# -- with the real tasks and models ----------------------------------------------------------------

REAL = """\
# a tiny real sweep
name = "real"
n_test = 256
threshold = 0.9

[task]
family = "MultiIndex"
r = 2
degree = 4

[grid]
d = [8, 12]
n = [128, 512]
seeds = 1

[models.nn]
type = "TwoLayerReLU"
width = 64

[models.ntk]
type = "KernelRidge"
kernel = "ntk"
ridge = 1e-3
"""


@pytest.mark.slow
def test_real_sweep_on_a_dask_local_cluster_equals_local(tmp_path):
    """``--dask local:1`` (a worker process with this machine's thread count) gives exactly the
    rows of a local run (fit times aside), whatever order the points finish in."""
    pytest.importorskip("distributed")
    config = tmp_path / "real.toml"
    config.write_text(REAL)
    assert cli.main(["run", str(config), "--out", str(tmp_path / "local"), "--no-progress"]) == 0
    assert cli.main(["run", str(config), "--out", str(tmp_path / "dask"), "--dask", "local:1",
                     "--no-progress"]) == 0
    def strip(rows):  # NaN (an empty alignment) compares unequal to itself: use None
        return {r["point_id"]: {k: None if v != v else v for k, v in r.items()
                                if k not in ("fit_time", "timestamp")} for r in rows}

    local, remote = strip(ex.load_results(tmp_path / "local")), strip(ex.load_results(tmp_path / "dask"))
    assert len(local) == 8 and remote == local
    nn = [r for r in local.values() if r["model"] == "nn"]
    assert all(0 <= r["alignment"] <= 1 for r in nn) and all(r["backend"] for r in nn)


@pytest.mark.slow
def test_demo_quick_prints_table_and_writes_plot(tmp_path, capsys):
    out = tmp_path / "demo.png"
    assert cli.main(["demo", "--quick", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].split() == ["model", "d", "n", "test", "MSE", "time", "(s)"]
    assert sum(line.split()[0] in ("nn", "rf", "ntk") for line in printed.splitlines()[1:]) == 6 + 6 + 5
    assert out.read_bytes()[:4] == b"\x89PNG" and str(out.resolve()) in printed
