"""pyfeat._linalg against SciPy at its default BLAS threads (not part of CI; run once and record):

    pytest benchmarks/test_bench_linalg.py --benchmark-json=benchmarks/results/cpu-linalg.json

Cholesky (n = ``PYFEAT_BENCH_LINALG_N``, default 4,000) and the top-101 eigenpairs EigenPro
computes (n / 2) of a C-ordered SPD float64 matrix, factored in place as the solvers do
(``overwrite_a=True``): pyfeat runs LAPACK on the Fortran view at one OpenBLAS thread, SciPy
copies the matrix into Fortran order and runs at the default threads. Sizes stay below the
n ≈ 15,000 where SciPy's threaded Cholesky segfaults here. Each figure carries the BLAS
(library, kernels, threads).

Recorded (2 shared cores, AMD Zen 5, OpenBLAS 0.3.31 / 0.3.30 SkylakeX x2, OPENBLAS_CORETYPE
unset, load average 5-6 from other jobs), seconds, min / median of 3:

                                 pyfeat        SciPy
cho_factor, n = 4,000         1.24 / 1.49   2.21 / 10.8
eigh top 101, n = 2,000       1.80 / 2.01   10.7 / 18.4
"""

import os

import numpy as np
import pytest
import scipy.linalg

from pyfeat import _linalg

N = int(os.environ.get("PYFEAT_BENCH_LINALG_N", "4000"))
TOP = 101

CALLS = {
    ("cho_factor", "pyfeat"): lambda K: _linalg.cho_factor(K, lower=True, overwrite_a=True),
    ("cho_factor", "scipy"): lambda K: scipy.linalg.cho_factor(K, lower=True, overwrite_a=True, check_finite=False),
    ("eigh_top", "pyfeat"): lambda K: _linalg.eigh(K, subset_by_index=[len(K) - TOP, len(K) - 1], overwrite_a=True),
    ("eigh_top", "scipy"): lambda K: scipy.linalg.eigh(K, subset_by_index=[len(K) - TOP, len(K) - 1],
                                                       overwrite_a=True, check_finite=False),
}


def spd(n):
    rng = np.random.default_rng(0)
    G = rng.standard_normal((n, n))
    K = G @ G.T / n
    K[np.diag_indices(n)] += 1.0
    return K


@pytest.mark.parametrize("impl", ["pyfeat", "scipy"])
@pytest.mark.parametrize("op", ["cho_factor", "eigh_top"])
def test_factorization(benchmark, machine, op, impl):
    n = N if op == "cho_factor" else N // 2
    K = spd(n)
    call = CALLS[op, impl]
    benchmark.pedantic(call, setup=lambda: ((K.copy(),), {}), rounds=3, iterations=1)
    benchmark.extra_info.update({"n": n, "blas": machine["blas"], "openblas_coretype": machine["openblas_coretype"]})
