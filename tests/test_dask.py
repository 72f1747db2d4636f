"""Dask arrays in, work on the workers (a LocalCluster of 2 worker processes): every op and model
equals its NumPy result to float64 rounding, whatever the chunking; task rows generated on the
workers; a worker killed in the middle of a fit is recovered by Dask's recomputation; a
scheduler that does not answer fails within the documented timeout with one line."""

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import pyfeat as pf

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def _data(rng, n=2000, d=6, m=16):
    X = rng.standard_normal((n, d))
    y = np.sin(X[:, 0]) + X[:, 1] * X[:, 2]
    W = rng.standard_normal((m, d)) / np.sqrt(d)
    a = rng.choice([-1.0, 1.0], m)
    b = rng.standard_normal(m)
    return X, y, W, a, b


@pytest.mark.parametrize("chunk", [300, 2000])
def test_ops_on_dask_equal_numpy(client, rng, chunk):
    X, y, W, a, b = _data(rng)
    dX, dy = da.from_array(X, chunks=(chunk, 3)), da.from_array(y, chunks=chunk // 2 + 1)
    Z = rng.standard_normal((50, 6))
    pairs = [
        (pf.ops.first_step_gradient(dX, dy, W, a, b), pf.ops.first_step_gradient(X, y, W, a, b)),
        (pf.ops.relu_gram(dX, W, b, dy)[0], pf.ops.relu_gram(X, W, b, y)[0]),
        (pf.ops.relu_gram(dX, W, b, dy)[1], pf.ops.relu_gram(X, W, b, y)[1]),
        (pf.ops.relu_gram(dX, W, b)[0], pf.ops.relu_gram(X, W, b)[0]),
        (pf.ops.relu_features(dX, W, b), pf.ops.relu_features(X, W, b)),
        (pf.ops.relu_predict(dX, W, b, a), pf.ops.relu_predict(X, W, b, a)),
        (pf.ops.kernel_matvec(dX, Z, y[:50]), pf.ops.kernel_matvec(X, Z, y[:50])),
        (pf.ops.kernel_matvec(dX, da.from_array(Z, chunks=(20, 6)), y[:50]), pf.ops.kernel_matvec(X, Z, y[:50])),
        (pf.ops.kernel_matrix(dX, Z, "rbf"), pf.ops.kernel_matrix(X, Z, "rbf")),
    ]
    for got, ref in pairs:
        if hasattr(got, "compute"):
            assert got.chunks[0] == dX.chunks[0]  # lazy, chunked like X
            got = got.compute()
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12 * np.abs(ref).max())
    with pytest.raises(ValueError, match="W must have 6 columns"):
        pf.ops.relu_gram(dX, W[:, :4], b)


@pytest.mark.parametrize("cls", [pf.TwoLayerReLU, pf.RandomFeatures])
def test_network_fits_on_dask_equal_numpy(client, rng, cls):
    X, y, *_ = _data(rng, n=3000)
    ref = cls(width=32).fit(X, y)
    for chunk in (400, 3000):
        got = cls(width=32).fit(da.from_array(X, chunks=(chunk, 6)), da.from_array(y, chunks=chunk))
        np.testing.assert_allclose(got.W_, ref.W_, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(got.predict(X), ref.predict(X), rtol=1e-7, atol=1e-9)
        pred = got.predict(da.from_array(X, chunks=(chunk, 6)))
        assert pred.chunks[0] == da.from_array(X, chunks=(chunk, 6)).chunks[0]
        np.testing.assert_allclose(pred.compute(), got.predict(X), rtol=1e-12)
        assert got.score(da.from_array(X, chunks=(chunk, 6)), da.from_array(y, chunks=chunk)) == \
            pytest.approx(got.score(X, y), rel=1e-10)


def test_fit_task_generates_the_rows_on_the_workers(client):
    task = pf.tasks.MultiIndex(8, 2, 3, seed=0)
    ref = pf.TwoLayerReLU(width=32).fit_task(task, 40_000, seed=1, block=7_000)
    got = pf.TwoLayerReLU(width=32).fit_task(task, 40_000, seed=1, block=7_000, client=client)
    np.testing.assert_allclose(got.W_, ref.W_, rtol=1e-10, atol=1e-12)
    Xt, _ = task.sample(500, seed=2)
    np.testing.assert_allclose(got.predict(Xt), ref.predict(Xt), rtol=1e-7, atol=1e-9)


def test_a_worker_killed_mid_fit_is_recovered(client):
    """SIGKILL one worker process while fit_task runs: Dask recomputes the lost chunks (pure
    functions of the task's seed and the chunk index), and the fit is the same, bit for bit,
    as without the fault (the partial sums add in a fixed tree)."""
    task = pf.tasks.MultiIndex(16, 2, 3, seed=0)
    kw = dict(seed=1, block=16_384, client=client)
    ref = pf.TwoLayerReLU(width=256).fit_task(task, 300_000, **kw)
    pids = client.run(os.getpid)
    victim = sorted(pids.values())[0]
    done = threading.Event()

    def kill_soon():
        time.sleep(1.0)
        if not done.is_set():
            os.kill(victim, signal.SIGKILL)

    killer = threading.Thread(target=kill_soon)
    killer.start()
    t0 = time.perf_counter()
    got = pf.TwoLayerReLU(width=256).fit_task(task, 300_000, **kw)
    done.set()
    killer.join()
    elapsed = time.perf_counter() - t0
    assert elapsed > 1.5, f"the fit took {elapsed:.2f} s: too short for the kill at 1 s to hit it"
    assert victim not in client.run(os.getpid).values()
    np.testing.assert_array_equal(got.W_, ref.W_)
    np.testing.assert_array_equal(got.a_, ref.a_)
    client.wait_for_workers(2, timeout=60)


def test_an_unreachable_scheduler_fails_within_the_timeout_with_one_line(tmp_path):
    env = dict(os.environ, PYFEAT_DASK_TIMEOUT="2")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pyfeat", "run", "heaviside", "--no-progress", "--out",
                           str(tmp_path / "out"), "--dask", "tcp://127.0.0.1:9"], capture_output=True, text=True,
                          env=env, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "cannot connect to the Dask scheduler" in proc.stderr and "within 2 s" in proc.stderr
    assert time.perf_counter() - t0 < 60


def test_client_memory_does_not_grow_with_n(client):
    """Nothing of size n·d reaches the client: its traced allocations during fit_task are the
    m×m sums and the task graph, O(number of blocks): measured 1.3 MB at n = 50,000 and 3.5 MB
    at n = 400,000 (5 and 40 blocks of 10,000 rows; X alone would be 6.4 and 51 MB), i.e.
    about 65 kB of graph per block of 1.3 MB of rows."""
    import tracemalloc

    task = pf.tasks.MultiIndex(16, 2, 3, seed=0)
    pf.TwoLayerReLU(width=64).fit_task(task, 20_000, seed=1, block=10_000, client=client)
    peaks = []
    for n in (50_000, 400_000):
        tracemalloc.start()
        try:
            pf.TwoLayerReLU(width=64).fit_task(task, n, seed=1, block=10_000, client=client)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    X_bytes = 400_000 * 16 * 8
    per_block = (peaks[1] - peaks[0]) / 35
    assert peaks[1] < 0.15 * X_bytes and per_block < 0.1 * 10_000 * 16 * 8, peaks


@pytest.fixture
def one_sided(monkeypatch):
    """The local fits with one-sided K(X, X) products, as the cluster computes them (row parts of
    X against X): the symmetric product sums each pair's two sides in another order, and a CG run
    carries that rounding to ~tol (6e-8 in α measured on the ridge-selection problem)."""
    from pyfeat.ops import _numba

    monkeypatch.setattr(_numba.NumbaDevice, "symmetric_reduce", lambda self, kernel, n_cols, d: False)


def _krr_data(rng, n=500, d=5):
    X = rng.standard_normal((n, d))
    return X, np.sin(X[:, 0]) + X[:, 1] * X[:, 2]


@pytest.mark.parametrize("solver", ["cg", "eigenpro", "nystrom", "pcg", "direct"])
def test_kernel_ridge_on_dask_equals_numpy(client, rng, solver, one_sided):
    """The products run on the workers (pyfeat.solvers.cluster), the solver here: the same
    iterations (the same subsamples and batches: the rng runs here) and α as the NumPy fit to
    1e-8 relative (the products differ at float64 rounding, the row parts being tiled otherwise
    than the whole, and the tol = 1e-8 iterations carry that further); predictions, of dask or
    NumPy X by a model fitted on the cluster or here, are k(x, X_fit_) α to rounding."""
    X, y = _krr_data(rng)
    dX, dy = da.from_array(X, chunks=(130, 5)), da.from_array(y, chunks=200)
    kw = dict(solver=solver, ridge=1e-2, tol=1e-8)
    ref = pf.KernelRidge(**kw).fit(X, y)
    got = pf.KernelRidge(**kw).fit(dX, dy)
    assert got.n_iter_ == ref.n_iter_ and got.n_features_in_ == 5
    np.testing.assert_allclose(got.dual_coef_, ref.dual_coef_, rtol=0, atol=1e-8 * np.abs(ref.dual_coef_).max())
    # the training set stays on the cluster; Nyström's centres (M × d) come to the client
    assert isinstance(got.X_fit_, np.ndarray) == (solver == "nystrom")
    Xt, _ = _krr_data(rng, n=300)
    dXt = da.from_array(Xt, chunks=(100, 5))
    for model in (got, ref):
        centres = model.X_fit_ if isinstance(model.X_fit_, np.ndarray) else X
        pred = pf.ops.kernel_matrix(Xt, centres) @ model.dual_coef_
        np.testing.assert_allclose(model.predict(Xt), pred, rtol=0, atol=1e-12 * np.abs(pred).max())
        lazy = model.predict(dXt)
        assert lazy.chunks[0] == dXt.chunks[0]
        np.testing.assert_allclose(lazy.compute(), pred, rtol=0, atol=1e-12 * np.abs(pred).max())
        assert model.score(dX, dy) == pytest.approx(model.score(X, y), rel=1e-12)
    assert got.score(X, y) == pytest.approx(ref.score(X, y), rel=1e-8)


def test_kernel_ridge_on_dask_evaluates_rbf_from_differences_as_numpy(client, rng):
    """float32 rows of norm ~200 with an rbf bandwidth of 1e-3: inner products cannot resolve
    the kernel, so it is evaluated from the differences; on the cluster too (the peak norm comes
    from the workers): the cluster fit equals the NumPy one (its predictions were 56 off)."""
    X = (100 * rng.standard_normal((200, 4))).astype(np.float32)
    y = X[:, 0].astype(np.float64)
    kw = dict(kernel="rbf", kernel_params={"bandwidth": 1e-3}, ridge=1e-3, solver="cg")
    ref = pf.KernelRidge(**kw).fit(X, y)
    got = pf.KernelRidge(**kw).fit(da.from_array(X, chunks=(70, 4)), da.from_array(y, chunks=70))
    assert ref.kernel_.differences and got.kernel_.differences
    np.testing.assert_allclose(got.predict(X), ref.predict(X), rtol=1e-6, atol=1e-6 * np.abs(y).max())


@pytest.mark.parametrize("solver", ["auto", "cg"])
def test_kernel_ridge_on_dask_selects_the_ridge_as_numpy(client, rng, solver, one_sided):
    """ridge="auto" on a dask array: GCV (auto: n ≤ 4096, the n×n eigendecomposition here) or
    the held-out split (cg: one multi-shift pcg on the training rows, a subset on the cluster)."""
    X, y = _krr_data(rng, n=400)
    dX = da.from_array(X, chunks=(150, 5))
    ref = pf.KernelRidge(ridge="auto", solver=solver, max_iter=60).fit(X, y)
    got = pf.KernelRidge(ridge="auto", solver=solver, max_iter=60).fit(dX, y)
    assert got.ridge_method_ == ref.ridge_method_ == ("loo" if solver == "auto" else "held-out")
    assert got.ridge_ == ref.ridge_
    np.testing.assert_allclose(got.ridge_scores_, ref.ridge_scores_, rtol=1e-8)
    np.testing.assert_allclose(got.dual_coef_, ref.dual_coef_, rtol=0, atol=1e-9 * np.abs(ref.dual_coef_).max())


def _transfers(client):
    """{key: number of worker-to-worker transfers} and {key: bytes} since the logs were cleared."""
    logs = client.run(lambda dask_worker: list(dask_worker.transfer_incoming_log))
    count, size = {}, {}
    for entries in logs.values():
        for entry in entries:
            for key, nbytes in entry["keys"].items():
                key = str(key)
                count[key] = count.get(key, 0) + 1
                size[key] = size.get(key, 0) + nbytes
    return count, size


def test_kernel_ridge_sends_X_to_the_workers_once(client, rng):
    """Worker-to-worker transfers during a CG fit (the workers' incoming-transfer logs): X's row
    chunks move once to the other worker to assemble its copy (W − 1 = 1 copy's worth of bytes),
    the copies never move, and per product only V (n float64) moves, once."""
    X, y = _krr_data(rng, n=800, d=40)
    dX = da.from_array(X, chunks=(150, 40))
    client.run(lambda dask_worker: dask_worker.transfer_incoming_log.clear())
    model = pf.KernelRidge(solver="cg", ridge=1e-3).fit(dX, y)
    count, size = _transfers(client)
    rows = sum(b for k, b in size.items() if "pyfeat-rows-" in k)
    assert model.n_iter_ >= 10  # a resend per product would show many times over
    assert rows == pytest.approx(X.nbytes, rel=0.01)
    assert max(c for k, c in count.items() if "pyfeat-rows-" in k) == 1
    assert not any("pyfeat-copy-" in k for k in count)
    products = model.n_iter_ + 2  # CG's products and the true residuals
    rest = sum(b for k, b in size.items() if "pyfeat-rows-" not in k)
    assert rest < 2 * products * X.shape[0] * 8, (rest, products)


def test_kernel_ridge_client_never_holds_X(client):
    """The client's traced allocations during fits on dask arrays made on the workers do not grow
    with X: the n-vectors, Nyström's 40 centres and the messages (measured 1.3–1.5 MB whatever
    n·d, from n·d = 1.2 to 29 MB; a fit that gathered X would hold all of it here)."""
    import tracemalloc
    import warnings

    def peak(solver, n, d, **kw):
        dX = da.random.default_rng(0).standard_normal((n, d), chunks=(n // 4, d))
        y = np.sin(dX[:, 0]).compute()
        tracemalloc.start()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", pf.solvers.ConvergenceWarning)
                pf.KernelRidge(solver=solver, ridge=1e-2, **kw).fit(dX, y)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    for solver, n, kw in (("nystrom", 3000, {"n_centers": 40}), ("cg", 800, {"max_iter": 1})):
        peak(solver, n, 50, **kw)  # the first fit imports and compiles
        small, large = peak(solver, n, 50, **kw), peak(solver, n, 1200, **kw)
        growth = n * (1200 - 50) * 8
        assert large - small < 0.05 * growth and large < 0.2 * n * 1200 * 8, (solver, small, large)


def test_kernel_ridge_on_dask_checks_its_input(client):
    X = np.ones((50, 3))
    X[7, 1] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN or infinity"):
        pf.KernelRidge(solver="cg").fit(da.from_array(X, chunks=(20, 3)), np.ones(50))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        pf.KernelRidge(solver="cg").fit(da.from_array(np.ones((50, 3)), chunks=(20, 3)), np.ones(40))
