"""KernelRidge at scale on this machine (not part of CI; run once and record the figures). One
command each, sizes from environment variables:

    pytest benchmarks/test_bench_kernel_ridge.py -s -k krr_20k      # n = PYFEAT_BENCH_KRR_N (20,000)
    pytest benchmarks/test_bench_kernel_ridge.py -s -k krr_100k     # n = PYFEAT_BENCH_KRR_BIG_N (100,000)
    pytest benchmarks/test_bench_kernel_ridge.py -s -k krr_1m       # n = PYFEAT_BENCH_KRR_HUGE_N (1,000,000)
    (add --benchmark-json=benchmarks/results/cpu-kernel-ridge.json to keep the records)

Problem (the issue's): NTK, ridge λ = 1e-4, MultiIndex(d = 32, r = 2, degree = 4, seed 0),
X float32 (``sample(n, seed=1)``), 4000 test points (seed 2), Var f* = 1.

1. ``krr_20k``: every solver and scikit-learn's KernelRidge (direct, on the precomputed float64
   NTK matrix) in the same run: fit time, iterations, relative residual ‖(K + nλI)α − y‖/‖y‖,
   test MSE, peak RSS, matvec-equivalents (kernel values evaluated / n²).
   ``PYFEAT_BENCH_KRR_SOLVERS`` picks the solvers (comma-separated; default all).
2. ``krr_100k``: the goal "test MSE within 1 % of the converged solution in ≤ 2 minutes":
   ``auto`` (pcg to tol 1e-3), ``pcg`` to 1e-6 (the converged reference), ``eigenpro`` (10
   epochs), ``nystrom`` (default M); ``PYFEAT_BENCH_KRR_BIG`` picks them.
3. ``krr_1m``: ``auto`` (nystrom) at n = 10⁶: O(n) memory (the data, M² factors), finishes.

Each fit runs in a fresh subprocess that reports its own peak resident memory
(``ru_maxrss`` at the end of the child: the whole process, data included) and the BLAS kernels
(threadpoolctl), and the load average of the machine during the run (shared cores: times are
upper bounds; compare within one run).

Measured figures: benchmarks/results/cpu-kernel-ridge-*.json and the README's Performance table.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

N = int(os.environ.get("PYFEAT_BENCH_KRR_N", 20_000))
BIG_N = int(os.environ.get("PYFEAT_BENCH_KRR_BIG_N", 100_000))
HUGE_N = int(os.environ.get("PYFEAT_BENCH_KRR_HUGE_N", 1_000_000))
D, N_TEST, RIDGE = 32, 4000, 1e-4

CHILD = textwrap.dedent(
    """
    import json, os, resource, sys, time, warnings
    import numpy as np
    from threadpoolctl import threadpool_info
    import pyfeat as pf
    import pyfeat.ops as ops
    from pyfeat.kernel_ridge import KernelRidge

    n, d, n_test, ridge, solver, options = json.loads(sys.argv[1])
    task = pf.tasks.MultiIndex(d=d, r=2, degree=4, seed=0)
    X, y = task.sample(n, seed=1, dtype="float32")
    Xt, yt = task.sample(n_test, seed=2, dtype="float32")
    ops.kernel_matvec(X[:64], X[:64], y[:64])  # compile / load the Numba cache outside the timing
    out = {"solver": solver, "n": n, "d": d, "ridge": ridge, "options": options}
    if solver in ("sklearn", "direct"):
        # OpenBLAS's threaded Cholesky crashes at n ≳ 15,000 on these machines (PERF_NOTES.md)
        from threadpoolctl import threadpool_limits
        threadpool_limits(limits=1, user_api="blas")
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    if solver == "sklearn":
        from sklearn.kernel_ridge import KernelRidge as SK
        X64 = X.astype(np.float64)
        K = ops.kernel_matrix(X64, X64, "ntk")
        m = SK(alpha=n * ridge, kernel="precomputed").fit(K, y.astype(np.float64))
        out["fit_s"] = time.perf_counter() - t0
        alpha = m.dual_coef_
        out["residual"] = float(np.linalg.norm(K @ alpha + n * ridge * alpha - y) / np.linalg.norm(y))
        del K
        pred = ops.kernel_matvec(Xt.astype(np.float64), X64, alpha, "ntk")
        out.update(iterations=1, matvecs=1.0)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = KernelRidge(ridge=ridge, solver=solver, **options).fit(X, y)
        out["fit_s"] = time.perf_counter() - t0
        pred = m.predict(Xt)
        info = {k: v for k, v in m.solver_info_.items() if k not in ("center_indices", "tau", "column_residuals")}
        out.update(solver_ran=m.solver_, reason=m.solver_reason_, iterations=m.n_iter_, converged=m.converged_,
                   matvecs=m.n_matvecs_, info=info, history_time=m.history_["time"].tolist(),
                   history_residual=m.history_["residual"].tolist())
        # the relative residual of (K + nλI)α = y (nystrom: of its own M-dimensional system)
        out["residual"] = float(m.solver_info_.get("final_residual", m.history_["residual"][-1]))
    out["test_mse"] = float(np.mean((np.asarray(pred, np.float64) - yt) ** 2))
    out["null_mse"] = float(np.mean(yt.astype(np.float64) ** 2))
    out["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    out["load_average"] = [load0, os.getloadavg()[0]]
    out["blas"] = [(l["internal_api"], l.get("architecture"), l["num_threads"]) for l in threadpool_info()
                   if l.get("user_api") == "blas"]
    print("RESULT " + json.dumps(out, default=float))
    """
)


def run_child(n, solver, options=None):
    args = json.dumps([n, D, N_TEST, RIDGE, solver, options or {}])
    proc = subprocess.run([sys.executable, "-c", CHILD, args], capture_output=True, text=True, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{solver} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def report(benchmark, machine, result):
    benchmark.extra_info.update(result)
    benchmark.extra_info["machine"] = machine
    short = {k: v for k, v in result.items() if not k.startswith("history")}
    print("\n" + json.dumps(short, default=float))


def _pick(cases, variable):
    chosen = os.environ.get(variable)
    if not chosen:
        return cases
    names = chosen.split(",")
    return [c for c in cases if c[0] in names]


SMALL = _pick([
    ("sklearn", None),
    ("direct", None),
    ("auto", None),
    ("pcg", {"tol": 1e-6}),
    ("cg", {"tol": 1e-6}),
    ("eigenpro", {"max_iter": 20, "tol": 1e-6}),
    ("nystrom", None),
], "PYFEAT_BENCH_KRR_SOLVERS")

BIG = _pick([
    ("auto", {"tol": 1e-3}),
    ("pcg", {"tol": 1e-6}),
    ("eigenpro", {"max_iter": 10, "tol": 1e-6}),
    ("nystrom", None),
], "PYFEAT_BENCH_KRR_BIG")


@pytest.mark.parametrize("solver,options", SMALL, ids=[s for s, _ in SMALL])
def test_krr_20k(benchmark, machine, solver, options):
    result = benchmark.pedantic(run_child, args=(N, solver, options), rounds=1, iterations=1)
    report(benchmark, machine, result)


@pytest.mark.parametrize("solver,options", BIG, ids=[s for s, _ in BIG])
def test_krr_100k(benchmark, machine, solver, options):
    result = benchmark.pedantic(run_child, args=(BIG_N, solver, options), rounds=1, iterations=1)
    report(benchmark, machine, result)


def test_krr_1m(benchmark, machine):
    result = benchmark.pedantic(run_child, args=(HUGE_N, "auto", {"tol": 1e-4}), rounds=1, iterations=1)
    report(benchmark, machine, result)
