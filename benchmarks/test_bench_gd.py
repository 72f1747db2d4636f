"""GDNetwork: one gradient step at n = 10⁵, d = 128, m = 2048 (float32, Numba backend) against its
GEMM floor, the fused step against the unfused ops and a blocked NumPy step; the lazy-regime
measurements of the shipped ``lazy`` config (movement slope with its interval, distance to the
kernel flow, change of the empirical NTK) and the time of a full ``pyfeat run lazy``.

Run: ``pytest benchmarks/test_bench_gd.py`` (figures in ``extra_info``; ``--benchmark-json``
keeps them; ``-s`` prints the lazy table).

FLOPs of a step (the floor): two GEMMs of n·m·d, Z = X Wᵀ and Mᵀ X (M the residual-weighted
mask), i.e. 4nmd; the fused pass between them is O(nm). The unfused step (predictions, then
``residual_gradient`` and ``relu_transpose``) recomputes Z three times: 8nmd.
"""

import math
import time

import numpy as np
import pytest
import scipy.stats

import pyfeat as pf
from pyfeat import ops
from pyfeat.ops import blocked

BLOCK = 8192  # rows per block of the NumPy baseline (≈ the 64 MiB budget of the Numba backend)


@pytest.fixture(scope="module")
def step_data():
    n, d, m = 100_000, 128, 2048
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d), dtype=np.float32)
    y = rng.standard_normal(n, dtype=np.float32)
    W = rng.standard_normal((m, d), dtype=np.float32)  # the NTK init, w ~ N(0, I_d)
    a = (rng.standard_normal(m) / math.sqrt(m)).astype(np.float32)  # c_m a, c_m = 1/√m
    return X, y, W, a, np.zeros(m, np.float32)


def numpy_step(X, y, W, a, b):
    """The same sums in blocked NumPy (three passes over each block: Z, P, mask)."""
    m, d = W.shape
    gW, ga, gb, sq = np.zeros((m, d)), np.zeros(m), np.zeros(m), 0.0
    for s in range(0, X.shape[0], BLOCK):
        Xb, yb = X[s : s + BLOCK], y[s : s + BLOCK]
        U = Xb @ W.T + b
        P = np.maximum(U, 0)
        r = P @ a - yb
        M = (U >= 0) * r[:, None]
        sq += float(r @ r)
        gW += M.T @ Xb
        ga += P.T @ r
        gb += M.sum(axis=0)
    return sq, gW * a[:, None], ga, gb * a


def unfused_step(dev, X, y, W, a, b):
    r = blocked.relu_predict(dev, X, W, b, a) - y
    return blocked.residual_gradient(dev, X, r, W, a, b), blocked.relu_transpose(dev, X, W, b, r)


@pytest.mark.parametrize("impl", ["pyfeat-fused", "pyfeat-unfused", "numpy-blocked"])
def test_gd_step(benchmark, step_data, impl, gemm_gflops, machine):
    X, y, W, a, b = step_data
    n, d = X.shape
    m = W.shape[0]
    dev = ops.device("numba")
    fn = {"pyfeat-fused": lambda: blocked.network_gradient(dev, X, y, W, b, a),
          "pyfeat-unfused": lambda: unfused_step(dev, X, y, W, a, b),
          "numpy-blocked": lambda: numpy_step(X, y, W, a, b)}[impl]
    fn()
    benchmark.pedantic(fn, rounds=3, iterations=1)
    floor = 4 * n * m * d
    t = benchmark.stats.stats.min
    gemm = gemm_gflops(floor)
    benchmark.extra_info.update({"seconds": t, "flops_floor": floor, "gflops_at_floor": floor / t / 1e9,
                                 "gemm_gflops": gemm, "ratio_to_gemm": floor / t / 1e9 / gemm,
                                 "floor_seconds": floor / gemm / 1e9, "n": n, "d": d, "m": m, **machine})


def test_fused_step_matches_the_baselines(step_data):
    X, y, W, a, b = (v[:20_000] if v.shape[0] == 100_000 else v for v in step_data)
    sq, gW, ga, gb = blocked.network_gradient(ops.device("numba"), X, y, W, b, a)
    ref = numpy_step(X, y, W, a, b)
    for got, want in zip((sq, gW, ga, gb), ref):
        assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()
    uW, ua = unfused_step(ops.device("numba"), X, y, W, a, b)
    assert np.abs(uW * X.shape[0] - gW).max() <= 1e-4 * np.abs(gW).max()
    assert np.abs(ua - ga).max() <= 1e-4 * np.abs(ga).max()


def test_gdnetwork_steps(benchmark, step_data, machine):
    """Three full-batch steps of GDNetwork (the model's overhead over the op: casts, updates,
    diagnostics, the last step's forward pass)."""
    X, y = step_data[:2]
    model = pf.GDNetwork(width=2048, lr=1e-3, steps=3, log_every=1, backend="numba")
    benchmark.pedantic(lambda: model.fit(X, y), rounds=1, iterations=1)
    benchmark.extra_info.update({"seconds": benchmark.stats.stats.min, "steps": 3, **machine})


# the lazy regime ------------------------------------------------------------------------------


def _slope_interval(widths, values):
    """Mean over seeds of the log-log slope of values (seeds × widths) against widths, with its 95%
    t-interval."""
    slopes = np.array([np.polyfit(np.log(widths), np.log(v), 1)[0] for v in values])
    half = scipy.stats.t.ppf(0.975, len(slopes) - 1) * slopes.std(ddof=1) / math.sqrt(len(slopes))
    return float(slopes.mean()), float(slopes.mean() - half), float(slopes.mean() + half)


def test_lazy_scaling(benchmark, machine):
    """The ``lazy`` config's setting (MultiIndex d = 16, r = 2, degree 2; NTK parameterization,
    symmetric init, lr 0.05, 100 steps, so t = 5) at n = 256, widths 256 … 16,384, 5 seeds (task
    seed, data and init differ per seed): relative movement of W, relative distance of the test
    predictions to ``kernel_gradient_flow(t=5)`` (closed form), relative change of the empirical
    NTK on the training points."""
    cfg = pf.experiments.load_config("lazy")
    spec = {m.name: m.params for m in cfg.models}
    lr, steps = spec["gd_256"]["lr"], spec["gd_256"]["steps"]
    widths = np.array(sorted(p["width"] for name, p in spec.items() if name.startswith("gd_")))
    n, d, seeds = 256, cfg.d[0], cfg.seeds
    shape = (seeds, len(widths))
    movement, distance, ntk_change, mse = (np.zeros(shape) for _ in range(4))
    flow_mse = np.zeros(seeds)

    def run():
        for seed in range(seeds):
            task = pf.tasks.MultiIndex(d=d, seed=seed, **cfg.task_params)
            X, y = task.sample(n, seed=100 + seed, dtype=cfg.dtype)
            Xt, yt = task.sample(1024, seed=200 + seed, dtype=cfg.dtype)
            flow = pf.kernel_gradient_flow(X.astype(np.float64), y, t=lr * steps, X_eval=Xt.astype(np.float64))
            flow_mse[seed] = np.mean((flow - yt) ** 2)
            for k, m in enumerate(widths):
                g = pf.GDNetwork(width=int(m), lr=lr, steps=steps, seed=seed).fit(X, y)
                pred = g.predict(Xt).astype(np.float64)
                movement[seed, k] = g.history_["movement_W"][-1]
                distance[seed, k] = np.linalg.norm(pred - flow) / np.linalg.norm(flow)
                mse[seed, k] = np.mean((pred - yt) ** 2)
                K0 = g.tangent_kernel(X, init=True)
                ntk_change[seed, k] = np.linalg.norm(g.tangent_kernel(X) - K0) / np.linalg.norm(K0)

    t0 = time.perf_counter()
    benchmark.pedantic(run, rounds=1, iterations=1)
    out = {"widths": widths.tolist(), "seeds": seeds, "n": n, "d": d, "t": lr * steps,
           "movement_W": movement.mean(axis=0).tolist(), "movement_slope": _slope_interval(widths, movement),
           "distance_to_flow": distance.mean(axis=0).tolist(), "distance_slope": _slope_interval(widths, distance),
           "ntk_change": ntk_change.mean(axis=0).tolist(), "ntk_change_slope": _slope_interval(widths, ntk_change),
           "test_mse": mse.mean(axis=0).tolist(), "flow_test_mse": float(flow_mse.mean()),
           "seconds": time.perf_counter() - t0, **machine}
    benchmark.extra_info.update(out)
    print(out)
    assert -0.6 < out["movement_slope"][0] < -0.4


def test_lazy_config_run(benchmark, tmp_path, machine):
    """``pyfeat run lazy``: the whole shipped sweep (50 grid points)."""
    from pyfeat.experiments import run_sweep

    rows = benchmark.pedantic(lambda: run_sweep("lazy", tmp_path / "lazy", progress=False), rounds=1, iterations=1)
    benchmark.extra_info.update({"seconds": benchmark.stats.stats.min, "points": len(rows), **machine})


# feature learning -------------------------------------------------------------------------------


def _mean_interval(values):
    """Mean and 95% t-interval over seeds."""
    values = np.asarray(values, np.float64)
    half = scipy.stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return float(values.mean()), float(values.mean() - half), float(values.mean() + half)


def test_feature_learning(benchmark, machine):
    """The ``separation`` config's GDNetwork (mean field, trained biases, width 512, lr = 16 × the
    kernel-safe rate, 1000 full-batch steps) against NTK kernel ridge (ridge 1e-4, direct) and the
    same network in the NTK parameterization at the kernel-safe rate (lazy), on MultiIndex(r = 2, degree 4) at n = 4d²,
    d = 16, 24, 32, 5 seeds (task, data and init per seed): test MSE (Var f* = 1) and the alignment
    ‖WΠ_U‖²/‖W‖² at the init and after training, means with 95% t-intervals; the paired
    difference NTK − GD per seed."""
    cfg = pf.experiments.load_config("separation")
    gd = {m.name: m.params for m in cfg.models}["gd"]
    out = {}

    def run():
        for d in (16, 24, 32):
            n = 4 * d * d
            rows = {"gd": [], "gd_ntk": [], "ntk": [], "align0": [], "align": []}
            for seed in range(5):
                task = pf.tasks.MultiIndex(d=d, seed=seed, **cfg.task_params)
                X, y = task.sample(n, seed=100 + seed, dtype=cfg.dtype)
                Xt, yt = task.sample(4096, seed=200 + seed, dtype=cfg.dtype)
                g = pf.GDNetwork(**gd, seed=seed).fit(X, y)
                lazy = pf.GDNetwork(**{**gd, "parameterization": "ntk", "lr_factor": 1.0}, seed=seed).fit(X, y)
                krr = pf.KernelRidge(kernel="ntk", ridge=1e-4).fit(X, y)
                for key, model in (("gd", g), ("gd_ntk", lazy), ("ntk", krr)):
                    rows[key].append(float(np.mean((model.predict(Xt) - yt) ** 2)))
                rows["align0"].append(g.alignment(task.U, init=True))
                rows["align"].append(g.alignment(task.U))
            out[d] = {key: _mean_interval(v) for key, v in rows.items()}
            out[d]["ntk_minus_gd"] = _mean_interval(np.subtract(rows["ntk"], rows["gd"]))
            out[d]["n"] = n

    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update({"results": {str(k): v for k, v in out.items()}, **machine})
    print(out)
    assert all(v["ntk_minus_gd"][1] > 0 for v in out.values())
