"""One training iteration of the Taylor models (seed 002) at n = 10⁵ on the CPU (float32), against
its FLOP floor (NumPy's GEMM measured in the same run) and against blocked NumPy with the same
memory budget.

Run: ``pytest benchmarks/test_bench_taylor.py`` (each case records seconds, GFLOP/s, the ratio to
GEMM, peak extra memory and the BLAS kernels in ``extra_info``).

An iteration of QuadraticTaylor is one ``taylor_gradient`` pass: per row block the GEMM
X [W0; W]ᵀ (4nmd FLOPs), the fused epilogue (f, r, the slopes: O(nm)), the GEMM Pᵀ X (2nmd):
floor 6nmd at GEMM rate. HierarchicalQuadratic adds the representation φ = relu(X Vᵀ + c) per
block (2nDd) and runs the model on D features: floor 6nmD + 2nDd.
"""

import math

import numpy as np
import pytest
from test_bench_ops import BLOCK, peak_extra_mb, record

import pyfeat as pf
from pyfeat import _activation_table

RELU3 = _activation_table.TABLE["relu3"]


def problem(n, d, m, D=None, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d), dtype=np.float32)
    y = rng.standard_normal(n, dtype=np.float32)
    features, width = None, d
    if D is not None:
        features = ((rng.standard_normal((D, d)) / math.sqrt(d)).astype(np.float32),
                    rng.standard_normal(D).astype(np.float32))
        width = D
    W0 = (rng.standard_normal((m, width)) / math.sqrt(width)).astype(np.float32)
    W = (0.1 * m**-0.25 * rng.standard_normal((m, width)) / math.sqrt(width)).astype(np.float32)
    a = rng.choice(np.array([-1.0, 1.0], np.float32), m) / np.float32(math.sqrt(m))
    s = rng.choice(np.array([-1.0, 1.0], np.float32), m)
    return X, y, W0, W, s * a, a, features


def numpy_taylor_gradient(X, y, W0, W, a1, a2, features):
    """The same pass in blocked NumPy (relu3): φ, both GEMMs, the epilogue as array expressions."""
    m = W.shape[0]
    WW = np.concatenate([W0, W])
    gW = np.zeros(W.shape, np.float64)
    sq = 0.0
    for s in range(0, X.shape[0], BLOCK):
        P = X[s : s + BLOCK]
        if features is not None:
            P = np.maximum(P @ features[0].T + features[1], 0)
        Z = P @ WW.T
        U0, U = Z[:, :m], Z[:, m:]
        d1, d2 = np.maximum(U0, 0) ** 2 / 2, np.maximum(U0, 0)
        r = ((a1 * d1 + 0.5 * a2 * d2 * U) * U).sum(axis=1, dtype=np.float64) - y[s : s + BLOCK]
        slope = (r[:, None] * (a1 * d1 + a2 * d2 * U)).astype(np.float32)
        gW += slope.T @ P
        sq += float(r @ r)
    return sq / (2 * X.shape[0]), gW / X.shape[0]


CASES = {
    "quadratic": dict(n=100_000, d=128, m=2048),        # QuadraticTaylor, 6nmd
    "hierarchical": dict(n=100_000, d=32, m=1024, D=1024),   # HierarchicalQuadratic, D = d²
}


@pytest.fixture(scope="module", params=list(CASES))
def case(request):
    return request.param, problem(**CASES[request.param])


@pytest.mark.parametrize("impl", ["pyfeat-numba", "numpy-blocked"])
def test_taylor_iteration(benchmark, case, impl, gemm_gflops, machine):
    name, (X, y, W0, W, a1, a2, features) = case
    n, d = X.shape
    m, width = W.shape
    flops = 6 * n * m * width + (0 if features is None else 2 * n * width * d)
    if impl == "pyfeat-numba":
        def fn():
            return pf.ops.taylor_gradient(X, y, W0, W, a1, a2, "relu3", features=features, backend="numba")
    else:
        def fn():
            return numpy_taylor_gradient(X, y, W0, W, a1, a2, features)
    fn()
    benchmark.pedantic(fn, rounds=3, iterations=1)
    record(benchmark, machine, flops, gemm_gflops(flops), peak_extra_mb=peak_extra_mb(fn), case=name, n=n, d=d,
           m=m, D=width)


def test_numpy_baseline_matches(case):
    """The baseline computes the same loss and gradient (so the comparison is fair)."""
    X, y, W0, W, a1, a2, features = case[1]
    k = 20_000
    L, gW, _ = pf.ops.taylor_gradient(X[:k], y[:k], W0, W, a1, a2, "relu3", features=features)
    L_np, gW_np = numpy_taylor_gradient(X[:k], y[:k], W0, W, a1, a2, features)
    assert L == pytest.approx(L_np, rel=1e-4)
    assert np.abs(gW - gW_np).max() <= 1e-3 * np.abs(gW).max()
