"""Dense factorizations that do not crash: Cholesky, its solve, symmetric eigendecomposition, AAᵀ.

**Why.** OpenBLAS's threaded SYRK (C = AAᵀ, also the trailing update inside its threaded POTRF)
segfaults on large matrices. Measured on the development machines (2 cores, AMD Zen 5, AVX-512;
NumPy's OpenBLAS 0.3.31 and SciPy's 0.3.30, both running their SkylakeX kernels,
OPENBLAS_CORETYPE unset; float64; single runs on shared cores, so only the ratios mean much),
one thread vs two:

- Cholesky (NumPy, SciPy, either triangle): n = 2,000: 0.16 vs 0.45 s; 4,000: 2.0 vs 4.3 s;
  8,000: 10.6 vs 29.9 s; 16,000: 49.7 s vs **SIGSEGV** (NumPy's and SciPy's). float32 at
  16,000, two threads: 51.5 s, no crash.
- AAᵀ, A n × k (NumPy matmul calls SYRK): n = k = 8,000: 12.8 vs 16.1 s; n = k = 12,000: two
  threads 73.7 s; n = k = 16,000: **SIGSEGV**; n = 16,000, k = 2,048: 24.9 s vs **SIGSEGV**;
  n = 14,000-16,000, k = 256: no crash.
- eigh, n = 4,000: SciPy driver evd 35.0 vs 73.8 s, evr 43.8 vs 86.6 s, evr with
  subset_by_index (top 101) 16.9 vs 49.7 s; NumPy eigh 35.0 vs 62.5 s. SYR2K (used by the
  tridiagonalization) at n = 16,000, k = 32 and 2,048, two threads: no crash.
- Cholesky solve at n = 16,000 (1 and 64 right-hand sides, C-ordered factor, so SciPy's copy
  included): 9.8-12.3 vs 5.8-7.7 s; triangular solve (64): 0.83 vs 0.69 s; at n = 32,000 two
  threads: no crash.
- GEMM 8,000 × 8,000 × 2,048 under the same load: 8.9 vs 9.0 s; 16,000 × 16,000 × 2,048: no
  crash.

**Rule.** When a loaded BLAS is OpenBLAS, :func:`cho_factor`, :func:`cholesky`, :func:`eigh`
and :func:`gram` run with the BLAS at one thread (:func:`single_threaded_blas`), at every size:
one thread never crashed and was 1.3-3× faster at every size measured. :func:`cho_solve` keeps
the BLAS's threads (TRSM: no crash, slightly faster threaded). Other BLAS libraries keep their
threads everywhere. benchmarks/test_bench_linalg.py, same machine, load 5-6: in-place Cholesky
at n = 4,000 1.49 s (pyfeat) vs 10.8 s (SciPy, two threads, with its copy), top-101 eigh at
n = 2,000 2.0 vs 18.4 s (medians of 3).

**No transposed copies.** LAPACK wants Fortran order; given a C-ordered array SciPy copies it
into a new Fortran array (5.3 s and 8n² bytes at n = 12,000, ``overwrite_a`` notwithstanding).
A symmetric A equals Aᵀ, the Fortran view of its memory, so these functions hand LAPACK that
view: the numbers LAPACK reads, and so its results, are those of SciPy's copy, and
``overwrite_a=True`` really works in place. The matrices must be symmetric (real): of a C-ordered
A the mirror triangle is read.
"""

from __future__ import annotations

import contextlib
import functools
import threading

import numpy as np
import scipy.linalg  # loads SciPy's BLAS before the thread controller looks for libraries


@functools.cache
def _blas_controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@functools.cache
def _openblas_loaded() -> bool:
    return any(lib["internal_api"] == "openblas" for lib in _blas_controller().select(user_api="blas").info())


_blas_lock = threading.Lock()
_blas_users = 0
_blas_saved = None


@contextlib.contextmanager
def single_threaded_blas():
    """BLAS at one thread inside the block (the ops' worker pools, the factorizations here). The
    setting is process-wide, so concurrent and nested users (e.g. several Dask threads) share it:
    the first to enter saves and sets it, the last to leave restores it."""
    global _blas_users, _blas_saved
    with _blas_lock:
        if _blas_users == 0:
            _blas_saved = _blas_controller().limit(limits=1, user_api="blas")
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                _blas_saved.restore_original_limits()
                _blas_saved = None


def _guarded():
    """One BLAS thread where threads crash or are slower (OpenBLAS; see the module docstring)."""
    return single_threaded_blas() if _openblas_loaded() else contextlib.nullcontext()


def _fortran(a):
    """The Fortran-ordered array LAPACK can read without a copy: Aᵀ for a C-ordered real A (equal
    to A when A is symmetric)."""
    a = np.asarray(a)
    if a.ndim == 2 and a.flags.c_contiguous and not a.flags.f_contiguous and np.isrealobj(a):
        return a.T
    return a


def cho_factor(a, lower=True, overwrite_a=False):
    """(c, lower): the Cholesky factor of the symmetric positive definite ``a`` in the ``lower``
    triangle of the Fortran-ordered c (``a = LLᵀ`` or ``UᵀU``), for :func:`cho_solve`. Raises
    ``numpy.linalg.LinAlgError`` if ``a`` is not positive definite, as SciPy does."""
    with _guarded():
        return scipy.linalg.cho_factor(_fortran(a), lower=lower, overwrite_a=overwrite_a, check_finite=False)


def cholesky(a, lower=False, overwrite_a=False):
    """The triangular Cholesky factor (L with a = LLᵀ, or U with a = UᵀU; other triangle zero)."""
    c, _ = cho_factor(a, lower=lower, overwrite_a=overwrite_a)
    return np.tril(c) if lower else np.triu(c)


def cho_solve(factor, b):
    """x = a⁻¹b from ``factor = cho_factor(a)``."""
    return scipy.linalg.cho_solve(factor, b, check_finite=False)


def eigh(a, subset_by_index=None, driver=None, overwrite_a=False):
    """(w, V): ascending eigenvalues and orthonormal eigenvectors of the real symmetric ``a``,
    optionally only those of ``subset_by_index`` = [lo, hi]."""
    with _guarded():
        return scipy.linalg.eigh(_fortran(a), subset_by_index=subset_by_index, driver=driver,
                                 overwrite_a=overwrite_a, check_finite=False)


def gram(a):
    """a aᵀ (the Gram matrix of a's rows; NumPy computes it with SYRK)."""
    a = np.asarray(a)
    with _guarded():
        return a @ a.T
