"""Shared pieces of the benchmarks: the NumPy GEMM reference measured in the same run, and the
BLAS facts every figure must carry (which OpenBLAS kernels ran, threads)."""

import time

import numpy as np
import pytest

from pyfeat.backend import blas_info, info


def best_time(fn, repeat=3):
    """Best wall time of ``repeat`` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


@pytest.fixture(scope="session")
def gemm_gflops():
    """gemm_gflops(flops, dtype): GFLOP/s of numpy.matmul on one square GEMM of ``flops`` FLOPs,
    measured once per (size, dtype) in this run."""
    cache = {}

    def rate(flops, dtype=np.float32):
        N = int(round((flops / 2) ** (1 / 3)))
        key = (N, np.dtype(dtype).name)
        if key not in cache:
            rng = np.random.default_rng(0)
            A = rng.standard_normal((N, N)).astype(dtype)
            B = rng.standard_normal((N, N)).astype(dtype)
            C = np.empty((N, N), dtype)
            cache[key] = 2 * N**3 / best_time(lambda: np.matmul(A, B, out=C)) / 1e9
        return cache[key]

    return rate


@pytest.fixture(scope="session")
def machine():
    d = info()
    blas = blas_info()
    return {
        "cpu": d["cpu"],
        "blas": ", ".join(f"{b['library']} {b['version']} {b['architecture']} x{b['num_threads']}" for b in blas),
        "openblas_coretype": d["openblas_coretype"],
        "numba_threads": d["numba_threads"],
        "backend": d["backend"],
    }
