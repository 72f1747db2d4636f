"""Algorithm 1 over a Dask cluster vs one process (not part of CI; run once, record the figures):

    PYFEAT_BENCH_DASK_N=10000000 python -m pytest benchmarks/test_bench_dask.py -s \\
        --benchmark-json=benchmarks/results/cpu-dask.json

``TwoLayerReLU(width=M).fit_task`` on a MultiIndex task (d = 64, r = 2, degree 4, float32 rows),
n = ``PYFEAT_BENCH_DASK_N`` (default 10⁷), width ``PYFEAT_BENCH_DASK_M`` (default 1024), blocks
of 65,536 rows: once in this process (the ops' two workers) and once on a LocalCluster of 2
worker processes × 1 thread, the rows generated on the workers (``client=``). Each fit runs in a
fresh subprocess that reports its wall time, its phases, its own peak RSS (the client's, for the
cluster run) and the workers' peak RSS. Both fits must agree to float64 rounding.

What to expect on N machines (from the per-block figures this records): every pass is
n/65,536 independent tasks, each costing t_block (moments ≪ gradient < Gram); partial sums
of d, m×d and m×m float64 go to combine tasks on the workers (adjacent chunks mostly meet on the
same worker), and one m×m matrix (8 MB at m = 1024) reaches the client per pass. With W workers
the pass takes ≈ ceil(blocks / W)·t_block + log₂(blocks)·(8m² bytes / bandwidth + latency).
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

N = int(os.environ.get("PYFEAT_BENCH_DASK_N", 10_000_000))
M = int(os.environ.get("PYFEAT_BENCH_DASK_M", 1024))

CHILD = textwrap.dedent(r"""
    import json, resource, sys, time
    import numpy as np
    import pyfeat as pf
    from threadpoolctl import threadpool_info

    n, m, where = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    task = pf.tasks.MultiIndex(64, 2, 4, seed=0)
    pf.TwoLayerReLU(width=64).fit_task(task, 70_000, seed=1, dtype=np.float32)  # compile
    client = cluster = None
    if where == "cluster":
        from distributed import Client, LocalCluster
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
        client.run(lambda: pf.TwoLayerReLU(width=64).fit_task(task, 70_000, seed=1, dtype=np.float32))
    t0 = time.perf_counter()
    nn = pf.TwoLayerReLU(width=m).fit_task(task, n, seed=1, dtype=np.float32, client=client)
    wall = time.perf_counter() - t0
    Xt, yt = task.sample(20_000, seed=2, dtype=np.float32)
    out = {"where": where, "n": n, "m": m, "wall_s": wall, "timings": nn.timings_,
           "test_mse": nn.mse(Xt, yt), "alignment": nn.alignment(task.U),
           "W_checksum": float(np.abs(nn.W_).sum()), "a_checksum": float(np.abs(nn.a_).sum()),
           "client_peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
           "blas": [(l["internal_api"], l["architecture"], l["num_threads"]) for l in threadpool_info()
                    if l["user_api"] == "blas"]}
    if client is not None:
        rss = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
        out["worker_peak_rss_gb"] = sorted(rss.values())
        client.close(); cluster.close()
    print("RESULT " + json.dumps(out))
""")


def _run(where):
    proc = subprocess.run([sys.executable, "-c", CHILD, str(N), str(M), where], capture_output=True, text=True,
                          timeout=7200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


@pytest.mark.parametrize("where", ["local", "cluster"])
def test_algorithm1_one_process_vs_local_cluster(benchmark, where):
    result = benchmark.pedantic(_run, args=(where,), rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    print(json.dumps(result, indent=1))
