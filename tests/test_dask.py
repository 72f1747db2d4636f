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
