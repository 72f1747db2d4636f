"""KernelRidge benchmarks on this machine (not part of CI; run once and record the figures):

    python -m pytest benchmarks/test_bench_kernel_ridge.py -s --benchmark-json=benchmarks/results/kernel_ridge.json

1. NTK-KRR at n = 20,000, d = 100 (``PYFEAT_BENCH_KRR_N``), every pyfeat solver and
   scikit-learn's KernelRidge (direct, on the precomputed float64 NTK matrix) in the same run:
   fit time, iterations, final relative residual ‖(K + nλI)α − y‖/‖y‖ (target 1e-6), test MSE.
2. ``nystrom`` and ``eigenpro`` at n = 200,000 (``PYFEAT_BENCH_KRR_BIG_N``; solvers chosen with
   ``PYFEAT_BENCH_KRR_BIG``, default "nystrom"): time, test MSE against the converged one.

Each fit runs in a fresh subprocess that reports its own peak resident memory
(``resource.getrusage(RUSAGE_SELF).ru_maxrss`` at the end of the child: the whole process, data
included), so one solver's memory does not hide another's. The OpenBLAS kernel that ran
(threadpoolctl) is recorded with every figure.

Data: x ~ N(0, I_d/d) (‖x‖ ≈ 1), y = relu(x·u)·√d − mean + 0.1·noise with a fixed unit vector u
(a single-index target), float64 everywhere (scikit-learn's dtype); ridge λ = 1e-2 (nλ = 200 at
n = 20,000), so the iterative solvers reach 1e-6 in minutes on 2 cores.

Recorded (2 shared cores, AMD EPYC Zen 5, OpenBLAS 0.3.31 "Haswell" kernels x2 threads,
Numba backend, float64; load average 3-8 from other jobs during the run, so times are upper
bounds). Null test MSE 0.344.

n = 20,000        fit s   iters   rel. residual   test MSE   peak RSS GiB
sklearn direct    193.9       1         4.6e-16    0.205235       12.2
direct            154.9       1         4.5e-16    0.205235        6.2
cg                 71.9       7         7.8e-08    0.205235        0.20
eigenpro          219.5      22         4.5e-07    0.205235        0.25   (batch 15,176 = critical)
nystrom M=2000     13.3       6     (own system)   0.207593        0.35
richardson        223.9      20 (cap)   2.3e-01    -               -      (not converged)

n = 200,000 (quiet machine, 2026-11-23; PYFEAT_BENCH_KRR_BIG=cg,eigenpro,nystrom, and nystrom with
n_centers=6000 through run_child): converged reference cg (tol 1e-6) test MSE 0.20122.

n = 200,000       fit s   iters        rel. residual   test MSE   vs converged   peak RSS GiB
cg                768.1       6              9.9e-08    0.20122        —              0.34
eigenpro          437.7   3 epochs (cap)     3.1e-01    0.20713      +2.9 %           0.46
nystrom M=2000     14.8       6         (own system)    0.20378      +1.3 %           0.48
nystrom M=6000     43.9       5         (own system)    0.20202      +0.40 %          1.43

At this ridge (nλ = 2000) the system is well conditioned: CG needs 6 matvecs (~110 s each in
float64 here), and EigenPro's critical batch is ≈ n (151,680), so an epoch is one preconditioned
full-batch step; EigenPro pays off at small ridge / ill-conditioned systems, not here. Nyström
with M = 6000 centres is within 1 % of the converged test MSE in 44 s.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

N = int(os.environ.get("PYFEAT_BENCH_KRR_N", 20_000))
BIG_N = int(os.environ.get("PYFEAT_BENCH_KRR_BIG_N", 200_000))
BIG_SOLVERS = os.environ.get("PYFEAT_BENCH_KRR_BIG", "nystrom").split(",")
D, N_TEST, RIDGE = 100, 2000, 1e-2

CHILD = textwrap.dedent(
    """
    import json, resource, sys, time, warnings
    import numpy as np
    from threadpoolctl import threadpool_info
    import pyfeat.ops as ops
    from pyfeat.kernel_ridge import KernelRidge

    n, d, n_test, ridge, solver, options = json.loads(sys.argv[1])
    rng = np.random.default_rng(0)
    u = rng.standard_normal(d); u /= np.linalg.norm(u)
    def sample(m):
        X = rng.standard_normal((m, d)) / np.sqrt(d)
        return X, np.maximum(X @ u, 0) * np.sqrt(d)
    X, y = sample(n); Xt, yt = sample(n_test)
    shift = y.mean(); y = y - shift + 0.1 * rng.standard_normal(n); yt = yt - shift
    ops.kernel_matvec(X[:64], X[:64], y[:64])  # compile / load the Numba cache outside the timing
    out = {"solver": solver, "n": n}
    t0 = time.perf_counter()
    if solver == "sklearn":
        from sklearn.kernel_ridge import KernelRidge as SK
        K = ops.kernel_matrix(X, X, "ntk")
        m = SK(alpha=n * ridge, kernel="precomputed").fit(K, y)
        out["fit_s"] = time.perf_counter() - t0
        alpha = m.dual_coef_
        out["residual"] = float(np.linalg.norm(K @ alpha + n * ridge * alpha - y) / np.linalg.norm(y))
        del K
        pred = ops.kernel_matvec(Xt, X, alpha, "ntk")
        out["iterations"] = 1
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = KernelRidge(ridge=ridge, solver=solver, **options).fit(X, y)
        out["fit_s"] = time.perf_counter() - t0
        pred = m.predict(Xt)
        out.update(iterations=m.n_iter_, converged=m.converged_,
                   residual=float(m.history_["residual"][-1]) if solver != "nystrom" else None,
                   info={k: v for k, v in m.solver_info_.items() if k != "center_indices"})
        if solver in ("cg", "eigenpro"):
            out["residual"] = float(m.solver_info_["final_residual"])
    out["test_mse"] = float(np.mean((pred - yt) ** 2))
    out["null_mse"] = float(np.mean(yt ** 2))
    out["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
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
    print("\n" + json.dumps(result, default=float))


SMALL = [
    ("sklearn", None),
    ("direct", None),
    ("cg", None),
    ("eigenpro", None),
    ("nystrom", {"n_centers": 2000}),
    ("richardson", {"max_iter": 20}),
]


@pytest.mark.parametrize("solver,options", SMALL, ids=[s if not o else f"{s}-{'-'.join(map(str, o.values()))}" for s, o in SMALL])
def test_krr_20k(benchmark, machine, solver, options):
    result = benchmark.pedantic(run_child, args=(N, solver, options), rounds=1, iterations=1)
    report(benchmark, machine, result)


@pytest.mark.parametrize("solver", BIG_SOLVERS)
def test_krr_200k(benchmark, machine, solver):
    # cg to tol 1e-6 is the converged reference the others' test MSE is compared with
    options = {"nystrom": {"n_centers": 2000}, "eigenpro": {"max_iter": 3, "tol": 1e-3}, "cg": {}}[solver]
    result = benchmark.pedantic(run_child, args=(BIG_N, solver, options), rounds=1, iterations=1)
    report(benchmark, machine, result)
