"""pyfeat._linalg: Cholesky, its solve, eigh and AAᵀ against NumPy; the BLAS thread guard; and
the crash it guards against (OpenBLAS's threaded SYRK/POTRF segfaults at n ≈ 16,000)."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.linalg
from threadpoolctl import threadpool_info

from pyfeat import _linalg

N = 60
TOL = 1e-10  # float64, well-conditioned matrices (eigenvalues in [1, 1 + N])


def blas_threads():
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def spd(rng, n=N, order="C"):
    G = rng.standard_normal((n, n))
    return np.asarray(G @ G.T / n + np.eye(n), order=order)


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("lower", [True, False])
@pytest.mark.parametrize("overwrite", [True, False])
def test_cho_factor_matches_numpy_and_scipy_bit_for_bit(rng, order, lower, overwrite):
    """The factor of NumPy's Cholesky; exactly SciPy's (LAPACK reads the same numbers), in a's
    memory when overwrite_a (no transposed copy), leaving a alone otherwise."""
    A = spd(rng, order=order)
    a = A.copy(order="K")
    c, c_lower = _linalg.cho_factor(a, lower=lower, overwrite_a=overwrite)
    assert c_lower is lower and c.flags.f_contiguous
    L = np.tril(c) if lower else np.triu(c).T
    np.testing.assert_allclose(L, np.linalg.cholesky(A), rtol=TOL, atol=TOL)
    with _linalg.single_threaded_blas():
        expected = scipy.linalg.cho_factor(A, lower=lower, check_finite=False)[0]
    tri = np.tril if lower else np.triu
    np.testing.assert_array_equal(tri(c), tri(expected))
    if overwrite:
        assert np.shares_memory(c, a)
    else:
        np.testing.assert_array_equal(a, A)


@pytest.mark.parametrize("lower", [True, False])
def test_cholesky_is_the_clean_triangular_factor(rng, lower):
    A = spd(rng)
    T = _linalg.cholesky(A, lower=lower)
    L = np.linalg.cholesky(A)
    np.testing.assert_allclose(T, L if lower else L.T, rtol=TOL, atol=TOL)


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("lower", [True, False])
@pytest.mark.parametrize("shape", [(N,), (N, 3)])
def test_cho_solve_solves(rng, order, lower, shape):
    A = spd(rng, order=order)
    b = rng.standard_normal(shape)
    x = _linalg.cho_solve(_linalg.cho_factor(A, lower=lower), b)
    assert x.shape == shape
    np.testing.assert_allclose(x, np.linalg.solve(A, b), rtol=1e-9, atol=1e-9)


def test_not_positive_definite_raises_linalgerror(rng):
    A = spd(rng)
    A[5, 5] = -1.0
    before = blas_threads()
    for call in (_linalg.cho_factor, _linalg.cholesky):
        with pytest.raises(np.linalg.LinAlgError, match="not positive definite"):
            call(A)
    assert blas_threads() == before


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("driver", [None, "evd", "evr"])
def test_eigh_matches_numpy_and_scipy_bit_for_bit(rng, order, driver):
    A = spd(rng, order=order)
    w, V = _linalg.eigh(A, driver=driver)
    np.testing.assert_allclose(w, np.linalg.eigvalsh(A), rtol=TOL, atol=TOL)
    np.testing.assert_allclose(A @ V, V * w, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(V.T @ V, np.eye(N), atol=1e-12)
    with _linalg.single_threaded_blas():
        w0, V0 = scipy.linalg.eigh(A, driver=driver, check_finite=False)
    np.testing.assert_array_equal(w, w0)
    np.testing.assert_array_equal(V, V0)


def test_eigh_subset_is_the_top_of_the_spectrum(rng):
    A = spd(rng)
    k = 7
    w, V = _linalg.eigh(A, subset_by_index=[N - k, N - 1])
    np.testing.assert_allclose(w, np.linalg.eigvalsh(A)[-k:], rtol=TOL, atol=TOL)
    np.testing.assert_allclose(A @ V, V * w, rtol=1e-9, atol=1e-9)


def test_eigh_overwrite_works_in_place_on_c_order(rng):
    A = spd(rng)
    a = A.copy()
    w, _ = _linalg.eigh(a, overwrite_a=True)
    np.testing.assert_allclose(w, np.linalg.eigvalsh(A), rtol=TOL, atol=TOL)
    assert not np.array_equal(a, A)  # LAPACK used a's memory as its workspace (no copy)


def test_gram_is_a_at(rng):
    a = rng.standard_normal((40, 25))
    np.testing.assert_allclose(_linalg.gram(a), np.einsum("ik,jk->ij", a, a), rtol=1e-12, atol=1e-12)


def test_calls_run_at_one_blas_thread_on_openblas_and_restore_it(rng, monkeypatch):
    """Inside each factorization the BLAS runs at one thread (OpenBLAS) or untouched (others);
    afterwards, and after a nested use inside the ops' one-thread context, the count is back."""
    openblas = any(lib["internal_api"] == "openblas" for lib in threadpool_info() if lib["user_api"] == "blas")
    before = blas_threads()
    seen = []

    def spy(name):
        real = getattr(scipy.linalg, name)

        def wrapped(*args, **kwargs):
            seen.append((name, blas_threads()))
            return real(*args, **kwargs)

        monkeypatch.setattr(scipy.linalg, name, wrapped)

    for name in ("cho_factor", "eigh"):
        spy(name)
    A = spd(rng)
    _linalg.cholesky(A)
    _linalg.eigh(A, subset_by_index=[N - 3, N - 1])
    assert [name for name, _ in seen] == ["cho_factor", "eigh"]
    for _, threads in seen:
        assert threads == ([1] * len(before) if openblas else before)
    assert blas_threads() == before
    with _linalg.single_threaded_blas():
        _linalg.cho_factor(A)
        assert blas_threads() == [1] * len(before)  # the outer limit survives the inner call
    assert blas_threads() == before


SUBPROCESS_N = 16_000

DIRECT_AT_16K = textwrap.dedent(
    f"""
    import numpy as np
    from threadpoolctl import threadpool_info
    from pyfeat.kernel_ridge import KernelRidge

    print([(l["internal_api"], l.get("architecture"), l["num_threads"]) for l in threadpool_info()])
    n, ridge = {SUBPROCESS_N}, 1e-3
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 3))
    y = np.sin(X[:, 0]) + 0.1 * rng.standard_normal(n)
    model = KernelRidge(kernel="rbf", ridge=ridge, solver="direct").fit(X, y)
    alpha = model.dual_coef_
    rows = rng.choice(n, 2000, replace=False)  # (K + nλI)α − y on 2,000 rows, K = exp(-|x - z|²/2)
    sq = (X * X).sum(axis=1)
    d2 = np.maximum(sq[rows, None] + sq[None, :] - 2 * X[rows] @ X.T, 0)
    r = np.exp(-d2 / 2) @ alpha + n * ridge * alpha[rows] - y[rows]
    print("solver", model.solver_, "residual", np.linalg.norm(r) / np.linalg.norm(y[rows]))
    """
)


@pytest.mark.slow
def test_direct_solver_factors_16000_without_crashing():
    """The crash guard, end to end: KernelRidge(solver="direct") at n = 16,000 (the factorization
    that segfaults with two OpenBLAS threads) in a fresh process with OpenBLAS choosing its own
    kernels (OPENBLAS_CORETYPE unset) and its default threads: exit 0 and (K + nλI)α = y to
    1e-8 on 2,000 random rows (float64; measured ~1e-15). About 70 s on the shared 2-core
    machines, ~50 s of it the factorization; without the guard it dies with SIGSEGV."""
    unset = ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    proc = subprocess.run([sys.executable, "-c", DIRECT_AT_16K], env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-3000:]}"
    words = proc.stdout.split()
    assert words[-3] == "direct"
    assert float(words[-1]) < 1e-8, proc.stdout
