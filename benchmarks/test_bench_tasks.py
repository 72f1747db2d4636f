"""Data generation speed of ``pyfeat.tasks`` (float32, MultiIndex r = 2, degree 4), in rows/s.

Run: ``pytest benchmarks/test_bench_tasks.py`` (``--benchmark-json`` keeps ``extra_info``).

Generating x ~ N(0, I_d) dominates (d normals per row; the label costs 2d multiply-adds plus ~12
Hermite terms), so each case also records the ceiling: NumPy's standard_normal rate on one core,
measured in the same run, times the threads sample() uses — ``fraction_of_ceiling`` says how
close the task gets. sample() is measured at n = 10⁶ for d = 128 and n = 2.5·10⁵ for d = 1024
(10⁶ rows of d = 1024 would hold 4 GB); stream() at n = 10⁶ for both (memory O(block·d)).
"""

import os
import time

import numpy as np
import pytest

import pyfeat.tasks as tasks

CASES = [(128, 1_000_000), (1024, 250_000)]
STREAM_N = 1_000_000


def _threads():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


@pytest.fixture(scope="module")
def normals_per_s():
    """float32 standard normals per second on one core (numpy Generator, best of 3)."""
    rng = np.random.default_rng(0)
    out = np.empty(2**23, np.float32)
    best = np.inf
    for _ in range(3):
        t0 = time.perf_counter()
        rng.standard_normal(out=out, dtype=np.float32)
        best = min(best, time.perf_counter() - t0)
    return out.size / best


def _record(benchmark, n, d, normals_per_s, machine):
    rows_per_s = n / benchmark.stats.stats.min
    ceiling = normals_per_s * _threads() / d
    benchmark.extra_info.update(
        n=n, d=d, dtype="float32", rows_per_s=rows_per_s, normals_per_s_one_core=normals_per_s,
        threads=_threads(), ceiling_rows_per_s=ceiling, fraction_of_ceiling=rows_per_s / ceiling, **machine)
    print(f"\n  d={d} n={n}: {rows_per_s:.3g} rows/s ({rows_per_s / ceiling:.0%} of the RNG ceiling "
          f"{ceiling:.3g} rows/s = {_threads()} threads x {normals_per_s:.3g} normals/s / d)")


@pytest.mark.parametrize("d,n", CASES, ids=[f"d{d}" for d, _ in CASES])
def test_sample_rows_per_s(benchmark, d, n, normals_per_s, machine):
    task = tasks.MultiIndex(d, 2, 4, seed=0)
    X, y = benchmark.pedantic(lambda: task.sample(n, seed=1, dtype=np.float32), rounds=3, warmup_rounds=1)
    assert X.shape == (n, d) and X.dtype == np.float32
    _record(benchmark, n, d, normals_per_s, machine)


@pytest.mark.parametrize("d", [d for d, _ in CASES], ids=[f"d{d}" for d, _ in CASES])
def test_stream_rows_per_s(benchmark, d, normals_per_s, machine):
    task = tasks.MultiIndex(d, 2, 4, seed=0)

    def run():
        rows = 0
        for Xb, _ in task.stream(STREAM_N, block=65536, seed=1, dtype=np.float32):
            rows += Xb.shape[0]
        return rows

    assert benchmark.pedantic(run, rounds=2, warmup_rounds=0) == STREAM_N
    _record(benchmark, STREAM_N, d, normals_per_s, machine)
