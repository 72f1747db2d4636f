"""User mistakes at the command line, run as a user runs them (a subprocess): each is one line
``pyfeat <command>: error: ...`` on stderr, exit status 2, no traceback; ``--debug`` shows it."""

import subprocess
import sys

import pytest

from test_experiments import REAL_MISTAKES, REAL_TINY, TOY


def pyfeat(*args, cwd=None):
    proc = subprocess.run([sys.executable, "-m", "pyfeat", *map(str, args)], capture_output=True,
                          text=True, timeout=120, cwd=cwd)
    return proc.returncode, proc.stdout, proc.stderr


def assert_one_line_error(status, stderr, command, *fragments):
    assert status == 2, stderr
    assert "Traceback" not in stderr and stderr.count("\n") == 1, stderr
    assert stderr.startswith(f"pyfeat {command}: error: "), stderr
    for fragment in fragments:
        assert fragment in stderr, stderr


@pytest.mark.parametrize("old, new, message", REAL_MISTAKES[:1] + REAL_MISTAKES[2:5])  # wide, two, r > d, bogus
def test_config_value_mistakes(tmp_path, old, new, message):
    config = tmp_path / "bad.toml"
    config.write_text(REAL_TINY.replace(old, new, 1))
    status, _, err = pyfeat("run", config, "--out", tmp_path / "out", "--no-progress")
    assert_one_line_error(status, err, "run", f"{config}, {message}")
    assert not (tmp_path / "out").exists()  # checked before anything ran


@pytest.mark.parametrize("args, fragment", [
    (["run", "CONFIG", "--dask", "local:0"], "argument --dask: 'local:N' needs a worker count N >= 1, got 'local:0'"),
    (["plot", "DIR", "--format", "bogus"], "argument --format: unknown image format(s) bogus; known: "),
    (["plot", "DIR", "--threshold", "-1"], "argument --threshold: must be a positive number, got '-1'"),
])
def test_argument_mistakes(tmp_path, args, fragment):
    config = tmp_path / "toy.toml"
    config.write_text(REAL_TINY)
    args = [{"CONFIG": config, "DIR": tmp_path}.get(a, a) for a in args]
    status, _, err = pyfeat(*args)
    assert_one_line_error(status, err, args[0], fragment)
    assert not (tmp_path / "results").exists()


HEADER = ("model,type,task,experiment,d,n,seed,test_mse,test_rel,alignment,fit_time,backend,"
          "version,point_id")
ROW = "nn,TwoLayerReLU,MultiIndex,regression,16,256,0,0.5,0.5,0.1,1.0,numba,0.1.0,abc"


@pytest.mark.parametrize("text, fragment", [
    (f"{HEADER}\n{ROW}\nthis is not a row\n", "results.csv, line 3: 1 fields, the header has 14"),
    ("x,y\n1,2\n", "results.csv: not a pyfeat results file: its header lacks model, type"),
    (f"{HEADER}\n{ROW.replace(',0.5,0.5,', ',half,0.5,')}\n", "results.csv, line 2: column test_mse: not a number: 'half'"),
])
def test_plot_of_a_malformed_results_file(tmp_path, text, fragment):
    (tmp_path / "results.csv").write_text(text)
    status, _, err = pyfeat("plot", tmp_path)
    assert_one_line_error(status, err, "plot", fragment)


def test_debug_shows_the_traceback(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text(REAL_TINY.replace("width = 16", 'width = "wide"'))
    for args in (["--debug", "run", config], ["run", config, "--debug"]):
        status, _, err = pyfeat(*args, "--out", tmp_path / "out")
        assert status == 1 and "Traceback (most recent call last)" in err
        assert "ConfigError: " in err and "models.rf.width: width must be an integer" in err


def test_version():
    import pyfeat as pf

    status, out, _ = pyfeat("--version")
    assert status == 0 and out == f"pyfeat {pf.__version__}\n"


def test_a_failing_grid_point_is_one_line_with_status_1(tmp_path):
    """A grid point that raises (here: a model given as module:attr that fails in fit) stops the
    run with one line naming the point; a rerun with --resume after fixing it runs."""
    (tmp_path / "broken.py").write_text("class Model:\n    def __init__(self, seed=0):\n        pass\n"
                                        "    def fit(self, X, y):\n        raise ArithmeticError('no fit')\n")
    config = tmp_path / "c.toml"
    config.write_text(TOY.replace('family = "toy"', 'family = "MultiIndex"\nr = 1\ndegree = 2')
                      .replace('type = "toy_ls"', 'type = "broken:Model"').replace("ridge = 10.0\n", ""))
    status, _, err = pyfeat("run", config, "--out", tmp_path / "out", "--no-progress", cwd=tmp_path)
    assert status == 1 and "Traceback" not in err and err.count("\n") == 1, err
    assert err.startswith("pyfeat run: error: grid point model=ls d=4 n=16 seed=0 failed: ArithmeticError: no fit")
