"""KernelRidge solvers against the direct solve and scikit-learn, kernel gradient flow, and the
empirical NTK against the infinite-width formula.

Tolerances: float64 problems are solved to tol=1e-8 (relative residual) and compared with
rtol 1e-5 on predictions, 1e-4 on α (κ ≤ 1e4 here); float32 problems (kernel values in float32)
to tol=1e-5, rtol 1e-3 on predictions and 1e-2 on α.
"""

import warnings

import numpy as np
import pytest

import pyfeat as pf
import pyfeat.kernels as kernels
from pyfeat._base import NotFittedError
from pyfeat.kernel_ridge import KernelRidge, kernel_gradient_flow
from pyfeat.solvers import ConvergenceWarning

N, D = 240, 5
TOL = {np.float64: 1e-8, np.float32: 1e-5}
RTOL_PRED = {np.float64: 1e-5, np.float32: 1e-3}
RTOL_COEF = {np.float64: 1e-4, np.float32: 1e-2}


def data(n=N, d=D, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2] + 0.1 * rng.standard_normal(n)
    return X, y


def rel(a, b):
    return float(np.linalg.norm(np.asarray(a, np.float64) - b) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def problem():
    X, y = data()
    Xt, _ = data(100, seed=1)
    return X, y, Xt


def test_direct_matches_sklearn(problem):
    from sklearn.kernel_ridge import KernelRidge as SK

    X, y, Xt = problem
    ridge = 1e-3
    ours = KernelRidge(ridge=ridge, solver="direct").fit(X, y)
    K = kernels.get("ntk")(X)
    ref = SK(alpha=N * ridge, kernel="precomputed").fit(K, y)
    assert rel(ours.dual_coef_, ref.dual_coef_) < 1e-8
    assert rel(ours.predict(Xt), ref.predict(kernels.get("ntk")(Xt, X))) < 1e-8
    assert ours.solver_ == "direct" and ours.converged_ and ours.history_["residual"][-1] < 1e-10


# (solver, ridge, options): richardson needs a well-conditioned problem to reach tol
SOLVERS = [
    ("cg", 1e-3, {}),
    ("pcg", 1e-3, {"subsample": 120}),
    ("eigenpro", 1e-3, {"subsample": N, "n_components": 60, "max_iter": 500}),
    ("richardson", 3e-1, {"max_iter": 3000}),
    ("nystrom", 1e-3, {"n_centers": N}),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("solver,ridge,options", SOLVERS, ids=[s[0] for s in SOLVERS])
def test_solver_agrees_with_direct(problem, solver, ridge, options, dtype):
    X, y, Xt = problem
    Xd, Xtd = X.astype(dtype), Xt.astype(dtype)
    ref = KernelRidge(ridge=ridge, solver="direct").fit(X, y)
    tol = TOL[dtype]
    model = KernelRidge(ridge=ridge, solver=solver, tol=tol, **options).fit(Xd, y)
    assert model.solver_ == solver
    assert model.converged_, model.history_["residual"][-5:]
    assert model.predict(Xtd).dtype == dtype
    assert rel(model.dual_coef_, ref.dual_coef_) < RTOL_COEF[dtype]
    assert rel(model.predict(Xtd), ref.predict(Xt)) < RTOL_PRED[dtype]
    assert np.isfinite(model.history_["residual"]).all() and (np.diff(model.history_["time"]) >= 0).all()


@pytest.mark.parametrize("solver", ["cg", "pcg", "eigenpro"])
def test_reaches_requested_tolerance(problem, solver):
    X, y, _ = problem
    for tol in (1e-4, 1e-7):
        m = KernelRidge(ridge=1e-3, solver=solver, tol=tol, subsample=N, n_components=60, max_iter=500).fit(X, y)
        true = np.linalg.norm(kernels.get("ntk")(X) @ m.dual_coef_ + N * 1e-3 * m.dual_coef_ - y) / np.linalg.norm(y)
        assert m.converged_ and true <= tol
        assert m.solver_info_["final_residual"] <= tol


def test_nystrom_tolerance_and_approximation(problem):
    X, y, Xt = problem
    ref = KernelRidge(ridge=1e-3, solver="direct").fit(X, y).predict(Xt)
    errs = []
    for M in (30, 120):
        m = KernelRidge(ridge=1e-3, solver="nystrom", n_centers=M, tol=1e-7).fit(X, y)
        assert m.converged_ and m.history_["residual"][-1] <= 1e-7
        assert m.X_fit_.shape == (M, D) and m.dual_coef_.shape == (M,)
        errs.append(rel(m.predict(Xt), ref))
    assert errs[1] < errs[0] and errs[1] < 0.25  # closer with more centres


def test_several_right_hand_sides(problem):
    X, y, Xt = problem
    Y = np.stack([y, np.cos(X[:, 3])], axis=1)
    for solver in ("direct", "cg", "pcg", "eigenpro", "nystrom"):
        both = KernelRidge(ridge=1e-2, solver=solver, tol=1e-9, subsample=N, n_components=60, max_iter=500,
                           n_centers=N).fit(X, Y)
        second = KernelRidge(ridge=1e-2, solver="direct").fit(X, Y[:, 1])
        assert both.dual_coef_.shape == (N, 2) and both.predict(Xt).shape == (100, 2)
        assert rel(both.predict(Xt)[:, 1], second.predict(Xt)) < 1e-6


@pytest.mark.parametrize("name,params", [("nngp", {}), ("arccos0", {}), ("rbf", {"bandwidth": 2.0}),
                                         ("laplace", {"bandwidth": 3.0}), ("poly", {"degree": 2, "gamma": 0.2})])
def test_every_kernel(problem, name, params):
    X, y, Xt = problem
    ref = KernelRidge(kernel=name, kernel_params=params, ridge=1e-2, solver="direct").fit(X, y)
    m = KernelRidge(kernel=name, kernel_params=params, ridge=1e-2, solver="cg", tol=1e-10).fit(X, y)
    assert rel(m.predict(Xt), ref.predict(Xt)) < 1e-6


def test_gradient_flow_closed_form_iterative_and_richardson(problem):
    X, y, Xt = problem
    t = np.array([5.0, 50.0])
    closed = kernel_gradient_flow(X, y, t, "ntk", X_eval=Xt, method="eigh")
    fine = kernel_gradient_flow(X, y, t, "ntk", X_eval=Xt, method="gd", step=0.1)  # ~10³ steps
    assert closed.shape == (100, 2)
    for j in range(2):
        assert rel(fine[:, j], closed[:, j]) < 3e-2
    # early-stopped Richardson is exactly the "gd" flow at that time
    gd = kernel_gradient_flow(X, y, 200.0, "ntk", X_eval=Xt, method="gd")
    es = KernelRidge(ridge=0.0, early_stopping=200.0).fit(X, y)
    assert es.solver_ == "richardson" and es.solver_info_["time"] == 200.0
    assert rel(es.predict(Xt), gd) < 1e-10
    # with ridge > 0 the flow converges to the ridge solution; the training residual decays
    far = kernel_gradient_flow(X, y, 1e9, "ntk", X_eval=Xt, ridge=1e-2)
    assert rel(far, KernelRidge(ridge=1e-2, solver="direct").fit(X, y).predict(Xt)) < 1e-8
    train = kernel_gradient_flow(X, y, [5.0, 50.0, 5000.0], "ntk")
    res = np.linalg.norm(train - y[:, None], axis=0)
    assert res[0] > res[1] > res[2]


def test_empirical_ntk_converges_to_ntk():
    """Monte Carlo E[∇f·∇f] over a ~ N(0, I), b ~ N(0, 1) (seed 003) equals DESIGN's formula."""
    rng = np.random.default_rng(3)
    X, Z = rng.standard_normal((6, D)), rng.standard_normal((4, D))
    Z[0] = 0.0  # a zero row: K = 0
    exact = kernels.get("ntk")(X, Z)
    errs = []
    for m in (100, 10_000, 400_000):
        W, a = rng.standard_normal((m, D)), rng.standard_normal(m)
        errs.append(np.abs(kernels.empirical_ntk(X, Z, W, a) - exact).max() / np.abs(exact).max())
    assert errs[0] > errs[1] > errs[2] and errs[2] < 1e-2
    # the two terms separately: the b-gradient gives "nngp", the a-gradient x·z times "arccos0"
    m = 400_000
    W, a = rng.standard_normal((m, D)), np.ones(m)
    phi_x, phi_z = np.maximum(X @ W.T, 0), np.maximum(Z @ W.T, 0)
    assert np.abs(phi_x @ phi_z.T / m - kernels.get("nngp")(X, Z)).max() < 2e-2 * np.abs(exact).max()
    # biases add a_i² σ'σ' to the a-gradient term
    b = rng.standard_normal(m)
    with_b = kernels.empirical_ntk(X[:2], X[:2], W, a, b)
    assert with_b.shape == (2, 2) and np.allclose(with_b, with_b.T)


@pytest.mark.parametrize("solver", ["direct", "cg", "pcg", "eigenpro", "nystrom", "richardson"])
def test_duplicate_and_zero_rows(problem, solver):
    X, y, Xt = problem
    X = X.copy()
    X[1] = X[0]
    X[2] = 0.0
    ref = KernelRidge(ridge=0.3, solver="direct").fit(X, y)
    m = KernelRidge(ridge=0.3, solver=solver, tol=1e-8, subsample=N, n_components=60, n_centers=N,
                    max_iter=3000).fit(X, y)
    assert np.isfinite(m.dual_coef_).all()
    assert rel(m.predict(Xt), ref.predict(Xt)) < 1e-5


def test_ridge_zero_singular(problem):
    X, y, _ = problem
    X = X.copy()
    X[1] = X[0]
    with pytest.raises(ValueError, match="not positive definite"):
        KernelRidge(ridge=0.0, solver="direct").fit(X, y)
    # one duplicated row, y not in K's range: CG's residual grows past ‖y‖ (it diverges) and it
    # raises; EigenPro's stays below (a ConvergenceWarning) with finite coefficients
    with pytest.raises(ValueError, match="solver='cg' diverged"):
        KernelRidge(ridge=0.0, solver="cg", max_iter=50).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m = KernelRidge(ridge=0.0, solver="eigenpro", max_iter=50, subsample=120).fit(X, y)
    assert np.isfinite(m.dual_coef_).all() and np.isfinite(m.history_["residual"]).all()
    assert m.history_["residual"][-1] < 1


def test_not_converged_warns(problem):
    X, y, _ = problem
    with pytest.warns(ConvergenceWarning, match="cg"):
        m = KernelRidge(ridge=1e-6, solver="cg", max_iter=3).fit(X, y)
    assert not m.converged_ and m.n_iter_ == 3


@pytest.mark.filterwarnings("ignore::pyfeat.solvers.ConvergenceWarning")  # eigenpro with 2 epochs
def test_auto_and_memory_limit(problem, monkeypatch):
    X, y, _ = problem
    assert KernelRidge().fit(X, y).solver_ == "direct"
    monkeypatch.setenv("PYFEAT_DIRECT_MEMORY_MB", "0.1")
    with pytest.raises(ValueError, match="memory"):
        KernelRidge(solver="direct").fit(X, y)
    assert KernelRidge(ridge=1e-2, subsample=120).fit(X, y).solver_ == "pcg"
    assert KernelRidge(ridge=0.0, subsample=120, max_iter=2).fit(X, y).solver_ == "eigenpro"


@pytest.mark.parametrize(
    "kwargs,X_bad,y_bad,match",
    [
        ({"solver": "lu"}, None, None, "solver"),
        ({"ridge": -1.0}, None, None, "ridge"),
        ({"tol": 0.0}, None, None, "tol"),
        ({"kernel": "sigmoid"}, None, None, "kernel"),
        ({"max_iter": 0}, None, None, "max_iter"),
        ({"solver": "cg", "early_stopping": 1.0}, None, None, "early_stopping"),
        ({"ridge": "gcv"}, None, None, "ridge"),
        ({"ridge": [1e-3, -1.0]}, None, None, "ridge"),
        ({"ridge": "auto", "early_stopping": 1.0}, None, None, "early_stopping"),
        ({"solver": "pcg", "ridge": 0.0}, None, None, "ridge > 0"),
        ({}, "nan", None, "X"),
        ({}, None, "short", "y"),
        ({}, "1d", None, "X"),
    ],
)
def test_bad_input(problem, kwargs, X_bad, y_bad, match):
    X, y, _ = problem
    X = X.copy()
    if X_bad == "nan":
        X[3, 1] = np.nan
    elif X_bad == "1d":
        X = X[:, 0]
    if y_bad == "short":
        y = y[:-1]
    with pytest.raises(ValueError, match=match):
        KernelRidge(**kwargs).fit(X, y)


def test_estimator_conventions(problem):
    X, y, Xt = problem
    m = KernelRidge(ridge=1e-2, solver="cg")
    assert m.get_params()["ridge"] == 1e-2 and m.set_params(tol=1e-3) is m and m.tol == 1e-3
    KernelRidge(solver="nonsense", ridge=-5)  # __init__ validates nothing
    with pytest.raises(NotFittedError):
        m.predict(Xt)
    assert m.fit(X, y) is m
    with pytest.raises(ValueError, match="X has 3 features, but KernelRidge is expecting 5 features"):
        m.predict(Xt[:, :3])
    assert -1.0 < m.score(X, y) <= 1.0 and m.score(X, y) > 0.5


def test_score_rejects_a_misshaped_target():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    Y = rng.standard_normal((40, 2))
    m = pf.KernelRidge(ridge=1e-2, solver="direct").fit(X, Y)
    assert np.isfinite(m.score(X, Y))
    with pytest.raises(ValueError, match="score: y must have shape"):
        m.score(X, Y.T)
    m1 = pf.KernelRidge(ridge=1e-2, solver="direct").fit(X, Y[:, 0])
    assert m1.score(X, Y[:, :1]) == pytest.approx(m1.score(X, Y[:, 0]))  # (n, 1) ~ (n,)
