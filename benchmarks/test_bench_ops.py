"""The hot ops at realistic sizes on the CPU, against NumPy's own GEMM measured in the same run
and against blocked NumPy implementations with the same memory budget.

Run: ``pytest benchmarks/test_bench_ops.py`` (each case records GFLOP/s, the ratio to GEMM, peak
extra memory and the BLAS kernels in ``extra_info``; ``--benchmark-json`` keeps them). The
kernel ops alone: ``pytest benchmarks/test_bench_ops.py -k kernel_floor -s`` (sizes
``PYFEAT_BENCH_KERNEL_N`` = 20,000 and ``PYFEAT_BENCH_KERNEL_D`` = 32).

FLOP counts (floors): first_step_gradient 4nmd (two GEMMs); relu_gram 2nmd + nm² (GEMM + SYRK);
kernel_matvec 2 n_x n_z d for the inner products (+ ~30 per pair for the NTK formula).
Bytes are not the limit for any of them at these sizes (arithmetic intensity > 100 FLOP/byte).

**Kernel ops (``test_kernel_floor``).** Floor = 2·n_x·n_z·d / R, R the GFLOP/s of one square
GEMM of the same FLOPs in the same dtype, measured in the same run (conftest ``gemm_gflops``).
Counted per pair (i, j): the inner product, 2d FLOPs (64 at d = 32: the GEMM) and then the
NTK in pyfeat's form (``pyfeat.ops._numba``: one square root, a degree-7 polynomial in float32 /
degree-18 in float64, ~16 vector operations) and 2 FLOPs per column of V for the reduction.
Bytes per pair: the 4 (8) bytes of the tile, written by the GEMM and read back from the L2 cache
(1 MiB tiles; on AVX-512 the cosine tiles of kernel_matrix and of products with more than 32
columns are written once by the SIMD loop, then reduced by GEMM) — except where
kernel_matvec's cosine tiles (d ≤ 256, ≤ 32 columns on AVX-512, ≤ 4 on AVX2) run in one
loop of ``csrc/cpu_cosine.cpp`` that keeps the inner products and the kernel in registers (no
tile in memory; per vector of pairs, 16 float32 on AVX-512 and 8 on AVX2, ~22 vector operations
of epilogue and reduction after the 32 FMAs of their inner products at d = 32, so its own
ceiling there is ≈ (32 + 22)/32 ≈ 1.7× the floor; k columns add k FMAs per vector, so 8 columns
≈ (32 + 29)/32 ≈ 1.9× and 25 columns ≈ 2.4×; the floor counts the inner products only):
every product on AVX-512 CPUs, the symmetric one on AVX2 CPUs (``pyfeat info``: "cosine loop"); kernel_matrix also writes n_x·n_z·itemsize bytes of output to memory (1.6 GB at
n = 20,000 in float32; at 4–10 GB/s here that alone is 0.2–0.4 s): its record also has the time
of allocating and writing that output alone (``store_s``, measured in the same run) and the
ratio to floor + store. X, Z and V are read once
per tile (O((n_x + n_z)d) bytes). The "symmetric" cases are the solvers' K(X, X) V, which on
that loop evaluates each pair of row blocks once (n(n + rows)/2 pairs; the floor is still the
full product's). The target is ratio ≤ 2 (time / floor) at d ≥ 32; the measured ratios are in
the README's Performance table.
"""

import math
import os
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

import pyfeat as pf

BLOCK = 8192  # rows per block of the NumPy baselines (≈ the 64 MiB budget of the Numba backend)


def peak_extra_mb(fn):
    """Peak of NumPy allocations (tracemalloc sees them) during fn(), in MB."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 1e6


@pytest.fixture(scope="module")
def net():
    n, d, m = 200_000, 128, 2048
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d), dtype=np.float32)
    y = rng.standard_normal(n, dtype=np.float32)
    W = (rng.standard_normal((m, d), dtype=np.float32) / math.sqrt(d)).astype(np.float32)
    a = rng.choice(np.array([-1.0, 1.0], np.float32), m)
    b = rng.standard_normal(m, dtype=np.float32)
    return X, y, W, a, b


def numpy_first_step_gradient(X, y, W, a, b):
    acc = np.zeros(W.shape, np.float64)
    for s in range(0, X.shape[0], BLOCK):
        Xb, yb = X[s : s + BLOCK], y[s : s + BLOCK]
        mask = (Xb @ W.T + b) >= 0
        acc += (mask * yb[:, None]).T @ Xb
    return (-2.0 / X.shape[0]) * a[:, None] * acc


def numpy_relu_gram(X, W, b, y):
    G = np.zeros((W.shape[0],) * 2)
    c = np.zeros(W.shape[0])
    for s in range(0, X.shape[0], BLOCK):
        P = np.maximum(X[s : s + BLOCK] @ W.T + b, 0)
        G += P.T @ P
        c += P.T @ y[s : s + BLOCK]
    return G, c


def numpy_ntk_matvec(X, Z, v, rows=256):
    """GEMM per block of X rows + NumPy arccos/sqrt, block buffers reused (shared/PERF_NOTES.md)."""
    nz = Z.shape[0]
    sz = np.sqrt(np.einsum("ij,ij->i", Z, Z))
    out = np.empty(X.shape[0], X.dtype)
    G = np.empty((rows, nz), X.dtype)
    C = np.empty_like(G)
    T = np.empty_like(G)
    for s in range(0, X.shape[0], rows):
        Xb = X[s : s + rows]
        k = Xb.shape[0]
        g, c, t = G[:k], C[:k], T[:k]
        sx = np.sqrt(np.einsum("ij,ij->i", Xb, Xb))
        np.matmul(Xb, Z.T, out=g)
        nn = np.multiply.outer(sx, sz)
        np.divide(g, nn, out=c)
        np.clip(c, -1, 1, out=c)
        np.arccos(c, out=t)
        np.subtract(np.pi, t, out=t)  # pi - theta
        # K = g (pi - t)/2pi + |x||z| ((pi - t) c + sqrt(1 - c^2))/2pi
        s_ = np.sqrt(np.maximum(1 - c * c, 0))
        K = (g * t + nn * (t * c + s_)) / (2 * np.pi)
        out[s : s + k] = K @ v
    return out


def record(benchmark, machine, flops, gemm, **extra):
    t = benchmark.stats.stats.min
    gflops = flops / t / 1e9
    benchmark.extra_info.update(
        {"seconds": t, "gflops": gflops, "gemm_gflops": gemm, "ratio_to_gemm": gflops / gemm, **machine, **extra}
    )


@pytest.mark.parametrize("impl", ["pyfeat-numba", "numpy-blocked"])
def test_first_step_gradient(benchmark, net, impl, gemm_gflops, machine):
    X, y, W, a, b = net
    n, d = X.shape
    m = W.shape[0]
    flops = 4 * n * m * d
    fn = (lambda: pf.ops.first_step_gradient(X, y, W, a, b, backend="numba")) if impl == "pyfeat-numba" \
        else (lambda: numpy_first_step_gradient(X, y, W, a, b))
    fn()
    benchmark.pedantic(fn, rounds=3, iterations=1)
    record(benchmark, machine, flops, gemm_gflops(flops), peak_extra_mb=peak_extra_mb(fn), n=n, d=d, m=m)


@pytest.mark.parametrize("impl", ["pyfeat-numba", "numpy-blocked"])
def test_relu_gram(benchmark, net, impl, gemm_gflops, machine):
    X, y, W, a, b = net
    n, d = X.shape
    m = W.shape[0]
    flops = 2 * n * m * d + n * m * m
    fn = (lambda: pf.ops.relu_gram(X, W, b, y, backend="numba")) if impl == "pyfeat-numba" \
        else (lambda: numpy_relu_gram(X, W, b, y))
    fn()
    benchmark.pedantic(fn, rounds=2, iterations=1)
    record(benchmark, machine, flops, gemm_gflops(flops), peak_extra_mb=peak_extra_mb(fn), n=n, d=d, m=m)


@pytest.mark.parametrize("impl", ["pyfeat-numba", "numpy-blocked"])
def test_kernel_matvec_ntk(benchmark, impl, gemm_gflops, machine):
    n, d = 50_000, 100
    rng = np.random.default_rng(1)
    X = rng.standard_normal((n, d), dtype=np.float32)
    v = rng.standard_normal(n, dtype=np.float32)
    flops = 2 * n * n * d
    fn = (lambda: pf.ops.kernel_matvec(X, X, v, "ntk", backend="numba")) if impl == "pyfeat-numba" \
        else (lambda: numpy_ntk_matvec(X, X, v))
    fn()
    benchmark.pedantic(fn, rounds=2, iterations=1)
    record(benchmark, machine, flops, gemm_gflops(flops), peak_extra_mb=peak_extra_mb(fn), n=n, d=d)


KERNEL_N = int(os.environ.get("PYFEAT_BENCH_KERNEL_N", 20_000))
KERNEL_D = int(os.environ.get("PYFEAT_BENCH_KERNEL_D", 32))
KERNEL_CASES = ["matvec-k1", "matvec-k3", "matvec-k8", "matvec-k25", "matvec-k1-v64", "symmetric-k1",
                "symmetric-k3", "symmetric-k8", "symmetric-k25", "symmetric-k1-v64", "matrix"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", KERNEL_CASES)
def test_kernel_floor(benchmark, case, dtype, gemm_gflops, machine):
    """kernel_matvec (1, 3, 8 and 25 columns; float64 V with float32 X) and kernel_matrix, NTK, X = Z,
    against the GEMM floor 2n²d/R (module docstring). float64 V runs through
    ``pyfeat.ops.blocked`` (the solvers' path; the public op casts V to the working dtype);
    "symmetric": the solvers' K(X, X) V (``symmetric=True``), which evaluates n(n + rows)/2 of
    the n² pairs (the floor stays the full product's)."""
    if case.endswith("v64") and dtype == "float64":
        pytest.skip("float64 V is the plain float64 case")
    n, d = KERNEL_N, KERNEL_D
    rng = np.random.default_rng(3)
    X = rng.standard_normal((n, d)).astype(dtype)
    kern = pf.kernels.get("ntk")
    dev = pf.ops.device("numba")
    k = int(case.split("-")[1][1:]) if case != "matrix" else 1
    V = rng.standard_normal((n, k)).astype("float64" if case.endswith("v64") else dtype)
    from pyfeat.ops import blocked

    symmetric = case.startswith("symmetric")
    fn = (lambda: blocked.kernel_matrix(dev, X, X, kern)) if case == "matrix" \
        else (lambda: blocked.kernel_matvec(dev, X, X, V, kern, symmetric=symmetric))
    fn()
    benchmark.pedantic(fn, rounds=3, iterations=1)
    flops = 2 * n * n * d
    gemm = gemm_gflops(flops, np.dtype(dtype))
    floor = flops / (gemm * 1e9)
    extra = {}
    if case == "matrix":  # the n² output alone: allocated and written once (page faults included)
        store = min(_timed(lambda: np.full((n, n), 1.0, dtype)) for _ in range(3))
        extra = {"store_s": store, "ratio_to_floor_plus_store": benchmark.stats.stats.min / (floor + store)}
    record(benchmark, machine, flops, gemm, n=n, d=d, case=case, dtype=dtype, floor_s=floor,
           ratio_to_floor=benchmark.stats.stats.min / floor, load_average=os.getloadavg()[0], **extra)
    print(f"\n{case} {dtype} n={n} d={d}: {benchmark.stats.stats.min:.3f} s, floor {floor:.3f} s "
          f"(GEMM {gemm:.0f} GFLOP/s), ratio {benchmark.stats.stats.min / floor:.2f}"
          + (f", output write alone {extra['store_s']:.3f} s, ratio to floor + write "
             f"{extra['ratio_to_floor_plus_store']:.2f}" if extra else "") + f", load {os.getloadavg()[0]:.1f}")


def _timed(fn):
    import time

    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def test_pyfeat_matches_numpy_baselines(net):
    """The baselines compute the same thing (so the comparison is fair)."""
    X, y, W, a, b = net
    Xs, ys = X[:20_000], y[:20_000]
    g = pf.ops.first_step_gradient(Xs, ys, W, a, b)
    assert np.abs(g - numpy_first_step_gradient(Xs, ys, W, a, b)).max() <= 1e-4 * np.abs(g).max()
    v = ys[:3000]
    k = pf.ops.kernel_matvec(Xs[:3000], Xs[:3000], v, "ntk")
    assert np.abs(k - numpy_ntk_matvec(Xs[:3000], Xs[:3000], v)).max() <= 1e-3 * np.abs(k).max()


FIRST_CALL = """
import time, numpy as np
t0 = time.perf_counter()
import pyfeat as pf
t1 = time.perf_counter()
X = np.ones((64, 8), np.float32); W = np.ones((16, 8), np.float32); a = np.ones(16, np.float32)
pf.ops.first_step_gradient(X, X[:, 0], W, a)
pf.ops.relu_gram(X, W, None, X[:, 0])
pf.ops.kernel_matvec(X, X, X[:, 0], "ntk")
t2 = time.perf_counter()
print(f"{t1 - t0:.3f} {t2 - t1:.3f}")
"""


def test_first_call_latency(benchmark, tmp_path):
    """Import time and first call of the ops in a fresh process. Run 1 has an empty Numba cache
    (compiles and writes it: what the first process after an install pays); runs 2-3 load it."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    runs = []
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", FIRST_CALL], capture_output=True, text=True,
                             check=True, env=env)
        runs.append(tuple(float(x) for x in out.stdout.split()))
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    benchmark.extra_info.update({"import_s": [r[0] for r in runs], "first_calls_s": [r[1] for r in runs]})
    print("import / first calls (s), cold cache then warm:", runs)
