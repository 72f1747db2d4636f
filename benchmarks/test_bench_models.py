"""Benchmark: TwoLayerReLU.fit_task at n = 10⁶, d = 64, m = 2,048, streamed from a task (CPU).

Run:  python -m pytest benchmarks/test_bench_models.py -s   (add --benchmark-disable in CI)
The stream is float32 unless PYFEAT_BENCH_DTYPE=float64.

The fit runs in a fresh child process (multiprocessing, spawn) so that its peak resident set
size (``resource.getrusage(RUSAGE_SELF).ru_maxrss`` read inside the child at the end: the peak of
that process over its whole life, interpreter, NumPy, Numba and the fit included) is the fit's
own and not the test session's. The child reports the wall time of the fit, the time of each
phase (``TwoLayerReLU.timings_``: moments, gradient, gram, head; each data pass includes
regenerating the task's blocks), the time of one pass that only generates the stream, and the
BLAS library, kernel architecture and threads (threadpoolctl). The test asserts peak RSS < 2 GB
(X alone would be 256 MB in float32 and 512 MB in float64; ΦᵀΦ is 32 MiB).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os

import pytest

N, D, WIDTH, BLOCK = 1_000_000, 64, 2048, 65536
DTYPE = os.environ.get("PYFEAT_BENCH_DTYPE", "float32")  # the stream's dtype
PEAK_RSS_LIMIT = 2e9  # bytes


def _fit_in_child(queue):
    import resource
    import time

    from threadpoolctl import threadpool_info

    from pyfeat.models import TwoLayerReLU
    from pyfeat.tasks import MultiIndex

    task = MultiIndex(d=D, r=2, degree=4, seed=0)
    # warm the Numba caches on a small fit so that compilation is not timed
    TwoLayerReLU(WIDTH // 16, backend="numba").fit_task(task, 4096, seed=2, dtype=DTYPE)
    t0 = time.perf_counter()
    for _ in task.stream(N, block=BLOCK, seed=1, dtype=DTYPE):
        pass
    t_stream = time.perf_counter() - t0
    t0 = time.perf_counter()
    nn = TwoLayerReLU(WIDTH, backend="numba").fit_task(task, N, seed=1, block=BLOCK, dtype=DTYPE)
    t_fit = time.perf_counter() - t0
    Xt, yt = task.sample(20_000, seed=3, dtype=DTYPE)
    queue.put(
        {
            "n": N, "d": D, "width": WIDTH, "block": BLOCK, "dtype": DTYPE,
            "fit_s": t_fit,
            "phases_s": nn.timings_,
            "stream_pass_s": t_stream,
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "test_mse": nn.mse(Xt, yt),
            "alignment": nn.alignment(task.U),
            "ridge": nn.ridge_,
            "blas": [
                {k: lib.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
                for lib in threadpool_info() if lib.get("user_api") == "blas"
            ],
        }
    )


@pytest.mark.slow
def test_fit_task_1e6(benchmark):
    ctx = mp.get_context("spawn")
    results = []

    def run():
        queue = ctx.Queue()
        proc = ctx.Process(target=_fit_in_child, args=(queue,))
        proc.start()
        out = queue.get()
        proc.join()
        assert proc.exitcode == 0
        results.append(out)

    benchmark.pedantic(run, rounds=1, iterations=1)
    out = results[-1]
    total = sum(out["phases_s"].values())
    out["phase_share"] = {k: round(v / total, 3) for k, v in out["phases_s"].items()}
    benchmark.extra_info.update(out)
    print(json.dumps(out, indent=1))
    assert out["peak_rss_bytes"] < PEAK_RSS_LIMIT
