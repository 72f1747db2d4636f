"""pyfeat.tasks: exact population quantities against Monte Carlo and independent formulas,
sampling reproducibility, parameter validation.

Statistical tests use fixed seeds and n = 200_000 samples; a Monte Carlo mean of a statistic s is
accepted when |mean(s) − exact| ≤ 5·std(s)/√n (5 standard errors, the standard error estimated from
the same sample), so a correct formula fails with probability < 1e-6 per check, and a wrong one
(an error of ≥ 0.05 in a quantity of order 1) fails for sure.
"""

import math
import subprocess
import sys

import numpy as np
import pytest
from numpy.polynomial import hermite_e

import pyfeat.tasks as tasks
from pyfeat.backend import cuda_status
from pyfeat.tasks._hermite import hermite_table, monomial_coefficients, power_coefficients

N_MC = 200_000
Z_TOL = 5.0  # standard errors


def assert_mc(samples, exact, what):
    """|mean(samples) − exact| ≤ Z_TOL standard errors."""
    samples = np.asarray(samples, dtype=np.float64)
    se = samples.std() / math.sqrt(samples.size)
    err = abs(samples.mean() - exact)
    assert err <= Z_TOL * se + 1e-12, f"{what}: Monte Carlo {samples.mean():.5f} vs exact {exact:.5f} ({err / se:.1f} SE)"


def he_normalized(k, t):
    """He_k(t)/√(k!) by numpy's own HermiteE series (independent of pyfeat's recurrence)."""
    c = np.zeros(k + 1)
    c[k] = 1.0
    return hermite_e.hermeval(t, c) / math.sqrt(math.factorial(k))


def eval_expansion(coefficients, Z):
    """Σ_α c_α Π_i He_{α_i}(z_i)/√(α_i!), evaluated independently of pyfeat."""
    out = np.zeros(Z.shape[0])
    for alpha, c in coefficients.items():
        term = np.full(Z.shape[0], c)
        for i, a in enumerate(alpha):
            term *= he_normalized(a, Z[:, i])
        out += term
    return out


def check_stein(task, X, y, directions):
    """For isotropic Gaussian x: E[y (v·x)(w·x) − y v·w] = vᵀHw and E[y (v·x)] = v·E[∇f*]
    (Stein's identity), for all pairs of the given unit directions."""
    H, grad = task.hessian(), task.expected_gradient()
    P = X @ np.asarray(directions).T
    for a, v in enumerate(directions):
        assert_mc(y * P[:, a], v @ grad, f"E[y v·x], v={a}")
        for b, w in enumerate(directions[: a + 1]):
            assert_mc(y * (P[:, a] * P[:, b] - v @ w), v @ H @ w, f"E[y (v·x)(w·x) − y v·w], ({a},{b})")


# -- Hermite calculus ---------------------------------------------------------------------------------


def test_hermite_table_matches_numpy_hermite_e():
    t = np.linspace(-4, 4, 101)
    T = hermite_table(t, 8)
    for k in range(9):
        np.testing.assert_allclose(T[k], he_normalized(k, t), rtol=1e-12, atol=1e-10)


@pytest.mark.parametrize("m", range(7))
def test_monomial_coefficients(m):
    t = np.linspace(-3, 3, 41)
    series = sum(c * he_normalized(j, t) for j, c in monomial_coefficients(m).items())
    np.testing.assert_allclose(series, t**m, rtol=1e-12, atol=1e-10)


def test_power_coefficients():
    rng = np.random.default_rng(0)
    b, Z = rng.standard_normal(3), rng.standard_normal((50, 3))
    for p in range(1, 6):
        np.testing.assert_allclose(eval_expansion(power_coefficients(b, p), Z), (Z @ b) ** p, rtol=1e-10, atol=1e-10)


# -- MultiIndex -----------------------------------------------------------------------------------------

D = 10

MULTI_INDEX_CASES = {
    "random r=2 p=4": dict(r=2, degree=4),
    "random r=3 p=3": dict(r=3, degree=3, seed=5),
    "random r=1 p=2": dict(r=1, degree=2, seed=2),
    "sum r=2 p=3": dict(r=2, degree=3, head="sum"),
    "product r=2 p=2": dict(r=2, degree=2, head="product"),
    "product r=3 p=4": dict(r=3, degree=4, head="product"),
    "hard p=4": dict(r=1, degree=4, head="hard"),
    # explicit coefficients with a constant and a linear part, so E f* ≠ 0 and E[∇f*] ≠ 0
    "explicit": dict(r=2, head={(0, 0): 0.3, (1, 0): 0.5, (0, 1): -0.4, (2, 0): 0.6, (1, 1): -0.7, (1, 2): 0.2}),
}


@pytest.fixture(scope="module", params=list(MULTI_INDEX_CASES), ids=list(MULTI_INDEX_CASES))
def multi_index_mc(request):
    task = tasks.MultiIndex(D, **MULTI_INDEX_CASES[request.param])
    X, y = task.sample(N_MC, seed=11)
    return task, X, y


def test_multi_index_U_orthonormal_and_projector(multi_index_mc):
    task = multi_index_mc[0]
    np.testing.assert_allclose(task.U @ task.U.T, np.eye(task.r), atol=1e-12)
    P = task.principal_subspace
    np.testing.assert_allclose(P @ P, P, atol=1e-12)
    np.testing.assert_allclose(P @ task.U.T, task.U.T, atol=1e-12)
    assert np.isclose(np.trace(P), task.r)


def test_multi_index_evaluation_matches_coefficients(multi_index_mc):
    task, X, y = multi_index_mc
    X = X[:1000]
    np.testing.assert_allclose(task(X), eval_expansion(task.hermite_coefficients, X @ task.U.T), rtol=1e-10, atol=1e-10)
    assert task.degree == max(sum(a) for a in task.hermite_coefficients)


def test_multi_index_mean_variance_monte_carlo(multi_index_mc):
    task, X, y = multi_index_mc
    assert_mc(y, task.mean, "mean")
    assert_mc((y - task.mean) ** 2, task.variance, "variance")
    c = task.hermite_coefficients
    assert task.mean == c.get((0,) * task.r, 0.0)
    assert math.isclose(task.variance, sum(v * v for a, v in c.items() if any(a)))


def test_multi_index_hessian_stein_monte_carlo(multi_index_mc):
    task, X, y = multi_index_mc
    w = np.random.default_rng(3).standard_normal((2, D))
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    check_stein(task, X, y, list(task.U) + list(w))


def test_hessian_formula_independently():
    """H from the coefficients against the exact E[∇²f*] of a hand-written polynomial:
    g(z) = 0.6 h₂(z₁) − 0.7 z₁z₂ + 0.2 z₁ h₂(z₂): ∂₁²g = 0.6·√2, ∂₁∂₂g = −0.7 + 0.2·√2 z₂,
    ∂₂²g = 0.2·√2 z₁ → E[∇²g] = [[0.6√2, −0.7], [−0.7, 0]]."""
    task = tasks.MultiIndex(6, 2, head={(2, 0): 0.6, (1, 1): -0.7, (1, 2): 0.2}, seed=1)
    M = np.array([[0.6 * math.sqrt(2), -0.7], [-0.7, 0.0]])
    np.testing.assert_allclose(task.hessian(), task.U.T @ M @ task.U, atol=1e-14)
    assert task.degree == 3


@pytest.mark.parametrize("r,degree,seed", [(1, 2, 0), (2, 4, 0), (3, 3, 1), (4, 4, 2), (5, 6, 3)])
def test_default_head_rank_r_unit_variance_moderate_kappa(r, degree, seed):
    task = tasks.MultiIndex(20, r, degree, seed=seed)
    assert np.linalg.matrix_rank(task.hessian(), tol=1e-10) == r
    assert task.mean == 0.0 and math.isclose(task.variance, 1.0)
    assert task.degree == degree
    assert 0 < task.kappa <= math.sqrt(2 * (degree - 1)) + 1e-12  # the bound in random_head's docstring
    s = np.linalg.svd(task.hessian(), compute_uv=False)
    assert math.isclose(task.kappa, 1 / (s[r - 1] * math.sqrt(r)))


def test_hard_and_sum_families_have_zero_hessian():
    hard = tasks.MultiIndex(20, 1, 4, head="hard")
    assert np.all(hard.hessian() == 0) and hard.kappa == math.inf
    assert math.isclose(hard.variance, 1.0)
    assert np.linalg.matrix_rank(tasks.MultiIndex(20, 3, 3, head="sum").hessian()) == 0
    # z₁z₂ (product, p = r = 2) has H = u₁u₂ᵀ + u₂u₁ᵀ: rank 2, κ = 1/√2
    prod = tasks.MultiIndex(20, 2, 2, head="product")
    assert np.linalg.matrix_rank(prod.hessian(), tol=1e-10) == 2
    assert math.isclose(prod.kappa, 1 / math.sqrt(2))


def test_given_U_and_seeds():
    a = tasks.MultiIndex(12, 2, 4, seed=3)
    b = tasks.MultiIndex(12, 2, 4, seed=3)
    c = tasks.MultiIndex(12, 2, 4, seed=4)
    assert np.array_equal(a.U, b.U) and a.hermite_coefficients == b.hermite_coefficients
    assert not np.allclose(a.U, c.U)
    d = tasks.MultiIndex(12, 2, 4, U=c.U, seed=3)
    assert np.array_equal(d.U, c.U) and d.hermite_coefficients == a.hermite_coefficients
    with pytest.raises(ValueError):
        a.U[0, 0] = 1.0  # read-only


def test_transfer_pair_shares_U_with_different_heads():
    source, target = tasks.transfer_pair(16, 2, 4, seed=7)
    assert np.array_equal(source.U, target.U)
    assert source.hermite_coefficients != target.hermite_coefficients
    for t in (source, target):
        assert math.isclose(t.variance, 1.0) and np.linalg.matrix_rank(t.hessian(), tol=1e-10) == 2
    s2, t2 = tasks.transfer_pair(16, 2, 4, target_degree=3, target_head="product", seed=7)
    assert np.array_equal(s2.U, source.U) and s2.hermite_coefficients == source.hermite_coefficients
    assert t2.hermite_coefficients == {(2, 1): 1.0}


# -- SingleIndex (spiked covariance) --------------------------------------------------------------------


def test_single_index_spiked_covariance_and_moments():
    d, theta = 16, 16 ** 0.6
    task = tasks.SingleIndex(d, link=[0.2, 0.5, 0.6, 0.3, 0.4], beta=0.6, seed=1)
    assert math.isclose(task.theta, theta)
    assert task.information_exponent == 1 and task.degree == 4
    assert math.isclose(task.mean, 0.2) and math.isclose(task.variance, 0.25 + 0.36 + 0.09 + 0.16)
    X, y = task.sample(N_MC, seed=2)
    mu = task.mu
    w = np.random.default_rng(0).standard_normal(d)
    w -= (w @ mu) * mu
    w /= np.linalg.norm(w)
    # covariance I + θμμᵀ: Var⟨x,μ⟩ = 1 + θ, Var⟨x,w⟩ = 1 (w ⟂ μ), Cov = 0
    xm, xw = X @ mu, X @ w
    assert_mc(xm**2, 1 + theta, "Var <x,mu>")
    assert_mc(xw**2, 1.0, "Var <x,w>")
    assert_mc(xm * xw, 0.0, "Cov")
    assert np.abs(xm).max() / math.sqrt(1 + theta) < 6  # data independent of μ (seed streams)
    assert_mc(y, task.mean, "mean")
    assert_mc((y - task.mean) ** 2, task.variance, "variance")
    # Stein for x ~ N(0, Σ): E[f Σ⁻¹x] = E∇f, E[f (Σ⁻¹x xᵀΣ⁻¹ − Σ⁻¹)] = E∇²f, Σ⁻¹ = I − θ/(1+θ) μμᵀ
    sm, sw = xm / (1 + theta), xw  # μᵀΣ⁻¹x and wᵀΣ⁻¹x
    assert_mc(y * sm, mu @ task.expected_gradient(), "E[f mu·Σ⁻¹x]")
    assert_mc(y * (sm**2 - 1 / (1 + theta)), mu @ task.hessian() @ mu, "mu H mu")
    assert_mc(y * (sw**2 - 1), w @ task.hessian() @ w, "w H w")
    assert math.isclose(mu @ task.hessian() @ mu, math.sqrt(2) * 0.6 / (1 + theta))
    assert math.isclose(mu @ task.expected_gradient(), 0.5 / math.sqrt(1 + theta))
    t = np.linspace(-2, 2, 9)
    np.testing.assert_allclose(task.link(t), 0.2 + sum(c * he_normalized(j, t) for j, c in enumerate([0, 0.5, 0.6, 0.3, 0.4])))


@pytest.mark.parametrize("k,p", [(1, 1), (2, 2), (2, 4), (3, 5)])
def test_single_index_default_link(k, p):
    task = tasks.SingleIndex(32, k=k, p=p, theta=3.0)
    assert task.information_exponent == k and task.degree == p
    assert task.mean == 0.0 and math.isclose(task.variance, 1.0)
    assert np.linalg.matrix_rank(task.hessian(), tol=1e-12) == (1 if 2 in (k, p) else 0)  # c_2 ≠ 0
    X, y = task.sample(50_000, seed=k)
    np.testing.assert_allclose(y, task.link(X @ task.mu / 2.0), rtol=1e-10, atol=1e-10)


def test_single_index_isotropic_matches_multi_index():
    s = tasks.SingleIndex(8, link=[0.0, 0.0, 0.5, 0.5], seed=3)
    m = tasks.MultiIndex(8, 1, head={(2,): 0.5, (3,): 0.5}, U=s.U)
    assert s.theta == 0.0
    X, y = s.sample(1000, seed=1)
    Xm, ym = m.sample(1000, seed=1)
    assert np.array_equal(X, Xm) and np.array_equal(y, ym)
    np.testing.assert_array_equal(s.hessian(), m.hessian())


# -- LowRankPolynomial ----------------------------------------------------------------------------------


def _gauss_moment(m):
    """E[t^m], t ~ N(0, 1)."""
    return 0.0 if m % 2 else float(math.prod(range(m - 1, 0, -2)))


@pytest.mark.parametrize(
    "kwargs",
    [dict(r=2, degree=3), dict(r=3, degree=2, seed=1), dict(r=3, degrees=[2, 3, 4], seed=2),
     dict(r=2, degree=4, directions=[[1.0, 1.0] + [0.0] * 10, [1.0, -0.5] + [0.0] * 10], seed=3)],
    ids=["p3", "p2", "mixed", "non-orthogonal"])
def test_low_rank_polynomial(kwargs):
    d = 12
    task = tasks.LowRankPolynomial(d, **kwargs)
    B, alpha, degrees = task.betas, task.alpha, task.degrees
    # the seed's normalization: ‖(β_sᵀx)^{p_s}‖_{L²} = 1, i.e. ‖β_s‖^{2p}(2p − 1)!! = 1
    for b, p in zip(B, degrees):
        assert math.isclose(np.linalg.norm(b) ** (2 * p) * _gauss_moment(2 * p), 1.0)
    assert math.isclose(task.variance, 1.0)  # normalize=True
    # closed forms: E f* = Σ α_s ‖β_s‖^p E t^p; H = Σ α_s p(p−1) ‖β_s‖^{p−2} E[t^{p−2}] β_sβ_sᵀ
    norms = np.linalg.norm(B, axis=1)
    mean = sum(a * n**p * _gauss_moment(p) for a, n, p in zip(alpha, norms, degrees))
    H = sum(a * p * (p - 1) * n ** (p - 2) * _gauss_moment(p - 2) * np.outer(b, b)
            for a, n, p, b in zip(alpha, norms, degrees, B) if p >= 2)
    assert math.isclose(task.mean, mean, abs_tol=1e-12)
    np.testing.assert_allclose(task.hessian(), H, atol=1e-12)
    X, y = task.sample(N_MC, seed=4)
    np.testing.assert_allclose(y[:1000], eval_expansion(task.hermite_coefficients, X[:1000] @ task.U.T), rtol=1e-9, atol=1e-9)
    assert_mc(y, task.mean, "mean")
    assert_mc((y - task.mean) ** 2, task.variance, "variance")
    check_stein(task, X, y, list(task.U))


def test_low_rank_random_signs_without_normalization():
    task = tasks.LowRankPolynomial(12, r=4, degree=3, normalize=False, seed=0)
    assert set(np.abs(task.alpha)) == {1.0}
    # odd p, orthonormal directions: independent terms, each of variance 1
    assert math.isclose(task.variance, 4.0) and task.mean == 0.0


# -- one-dimensional tasks ------------------------------------------------------------------------------


@pytest.mark.parametrize("task", [tasks.Heaviside1D(), tasks.SmoothStep1D(0.1), tasks.SmoothStep1D(0.5, append_one=True)],
                         ids=["heaviside", "smooth-0.1", "smooth-0.5-append-one"])
def test_one_dimensional_tasks(task):
    X, y = task.sample(N_MC, seed=1)
    assert X.shape == (N_MC, task.d) and -1 <= X[:, 0].min() and X[:, 0].max() < 1
    assert_mc(X[:, 0] ** 2, 1 / 3, "uniform[-1,1] second moment")
    if task.d == 2:
        assert np.all(X[:, 1] == 1)
    assert_mc(y, task.mean, "mean")
    assert_mc((y - task.mean) ** 2, task.variance, "variance")
    np.testing.assert_array_equal(task(X), y)


def test_smooth_step_variance_by_quadrature_and_limit():
    from scipy.integrate import quad

    for w in (0.05, 0.3, 2.0):
        f = tasks.SmoothStep1D(w)
        second = quad(lambda x: ((1 + math.tanh(x / w)) / 2) ** 2 / 2, -1, 1)[0]
        assert math.isclose(f.variance, second - 0.25, rel_tol=1e-9)
    x = np.array([[-0.5], [-1e-3], [1e-3], [0.5]])  # (at 0 the smooth step is 1/2)
    np.testing.assert_allclose(tasks.SmoothStep1D(1e-5)(x), tasks.Heaviside1D()(x), atol=1e-12)


# -- sampling -------------------------------------------------------------------------------------------

SAMPLING_TASKS = {
    "multi-index": lambda: tasks.MultiIndex(9, 2, 3, seed=1),
    "spiked": lambda: tasks.SingleIndex(9, k=2, p=3, theta=4.0, seed=1),
    "low-rank": lambda: tasks.LowRankPolynomial(9, 2, 3, seed=1),
    "heaviside": lambda: tasks.Heaviside1D(append_one=True),
}


@pytest.mark.parametrize("name", list(SAMPLING_TASKS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stream_equals_sample_for_any_block(name, dtype):
    task = SAMPLING_TASKS[name]()
    n = tasks.CHUNK_ROWS + 1234  # crosses a chunk boundary
    X, y = task.sample(n, noise=0.3, seed=5, dtype=dtype)
    assert X.dtype == y.dtype == np.dtype(dtype) and X.shape == (n, task.d) and y.shape == (n,)
    for block in (1, 7, 1000, tasks.CHUNK_ROWS, n, 3 * n):
        blocks = list(task.stream(n, block=block, noise=0.3, seed=5, dtype=dtype))
        assert [len(b[1]) for b in blocks[:-1]] == [block] * (len(blocks) - 1)
        assert np.array_equal(np.concatenate([b[0] for b in blocks]), X), block
        assert np.array_equal(np.concatenate([b[1] for b in blocks]), y), block


def test_sample_prefix_labels_and_noise():
    task = tasks.MultiIndex(7, 2, 4, seed=2)
    n = 2 * tasks.CHUNK_ROWS + 5
    X, y = task.sample(n, seed=3)
    Xs, ys = task.sample(1000, seed=3)
    assert np.array_equal(X[:1000], Xs) and np.array_equal(y[:1000], ys)  # prefix of the same stream
    assert np.array_equal(y, task(X))  # noiseless labels are f*(X), bit for bit
    X32, y32 = task.sample(n, seed=3, dtype=np.float32)
    assert np.array_equal(y32, task(X32).astype(np.float32))
    Xn, yn = task.sample(n, noise=0.5, seed=3)
    assert np.array_equal(Xn, X)  # noise is drawn from its own stream
    assert_mc((yn - y) ** 2, 0.25, "noise variance")
    assert_mc(yn - y, 0.0, "noise mean")
    X2, _ = task.sample(n, seed=4)
    assert not np.allclose(X2, X)
    # the data stream does not reuse the task's random numbers (SeedSequence drops trailing zeros)
    assert np.abs(X @ task.U.T).max() < 6


@pytest.mark.parametrize("seed", [0, 1])
def test_task_and_data_streams_are_independent(seed):
    """The same integer as task seed and data seed must not reuse random numbers: with μ drawn
    from the data's stream, ⟨x₀, μ⟩ would be ‖x₀‖ ≈ √d (SeedSequence ignores trailing zeros)."""
    for task in (tasks.SingleIndex(64, seed=seed), tasks.MultiIndex(64, 1, 2, seed=seed)):
        X, _ = task.sample(1000, seed=seed)
        assert np.abs(X @ task.U.T).max() < 6


def test_sampling_reproducible_across_processes():
    code = ("import numpy as np, pyfeat.tasks as t; X, y = t.MultiIndex(5, 2, 3, seed=9)"
            f".sample({3 * tasks.CHUNK_ROWS}, noise=0.1, seed=8, dtype='float32'); "
            "print(float(np.float64(X).sum()), float(np.float64(y).sum()))")
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
            for _ in range(2)]
    X, y = tasks.MultiIndex(5, 2, 3, seed=9).sample(3 * tasks.CHUNK_ROWS, noise=0.1, seed=8, dtype="float32")
    assert runs[0] == runs[1] == f"{float(np.float64(X).sum())} {float(np.float64(y).sum())}\n"


CUDA_OK, CUDA_WHY = cuda_status()


@pytest.mark.skipif(not CUDA_OK, reason=f"no CUDA backend: {CUDA_WHY}")
def test_cuda_sample_equals_stream_and_has_the_right_law():
    import cupy

    task = tasks.MultiIndex(9, 2, 3, seed=1)
    n = tasks.CHUNK_ROWS + 77
    X, y = task.sample(n, noise=0.2, seed=5, dtype=np.float32, backend="cuda")
    assert isinstance(X, cupy.ndarray) and X.dtype == y.dtype == np.float32
    for block in (7, 1000, n):
        blocks = list(task.stream(n, block=block, noise=0.2, seed=5, dtype=np.float32, backend="cuda"))
        assert bool((cupy.concatenate([b[0] for b in blocks]) == X).all())
        assert bool((cupy.concatenate([b[1] for b in blocks]) == y).all())
    Xh, yh = cupy.asnumpy(X).astype(np.float64), cupy.asnumpy(y).astype(np.float64)
    np.testing.assert_allclose(cupy.asnumpy(task(X)), task(Xh), rtol=1e-5, atol=1e-5)
    assert_mc(yh, task.mean, "cuda mean")
    assert_mc((yh - task.mean) ** 2, task.variance + 0.04, "cuda variance")


# -- validation -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: tasks.MultiIndex(3, 5), r"r must be <= d, got r=5, d=3"),
        (lambda: tasks.MultiIndex(0, 1), r"d must be >= 1"),
        (lambda: tasks.MultiIndex(5, 0), r"r must be >= 1"),
        (lambda: tasks.MultiIndex(5, 2, 0), r"degree must be >= 1"),
        (lambda: tasks.MultiIndex(5, 2, 1), r"degree must be >= 2 for head='random'"),
        (lambda: tasks.MultiIndex(5, 2, 2.5), r"degree must be an integer"),
        (lambda: tasks.MultiIndex(5, 2, 4, head="nope"), r"head must be one of"),
        (lambda: tasks.MultiIndex(5, 3, 2, head="product"), r"degree must be >= r"),
        (lambda: tasks.MultiIndex(5, 2, 4, head="hard"), r"r must be 1 for head='hard'"),
        (lambda: tasks.MultiIndex(5, 1, 2, head="hard"), r"degree must be >= 3 for head='hard'"),
        (lambda: tasks.MultiIndex(5, 2, head={(1,): 1.0}), r"coefficients"),
        (lambda: tasks.MultiIndex(5, 2, 3, head={(2, 0): 1.0}), r"degree must match"),
        (lambda: tasks.MultiIndex(5, 2, U=np.ones((2, 5))), r"U must have orthonormal rows"),
        (lambda: tasks.MultiIndex(5, 2, U=np.eye(3, 5)), r"U must have shape"),
        (lambda: tasks.MultiIndex(5, 2, seed=-1), r"seed must be >= 0"),
        (lambda: tasks.SingleIndex(5, theta=-1.0), r"theta must be >= 0"),
        (lambda: tasks.SingleIndex(5, beta=-0.5), r"beta must be >= 0"),
        (lambda: tasks.SingleIndex(5, beta=0.5, theta=1.0), r"beta .* or theta"),
        (lambda: tasks.SingleIndex(5, k=0), r"k must be >= 1"),
        (lambda: tasks.SingleIndex(5, k=3, p=2), r"p must be >= 3"),
        (lambda: tasks.SingleIndex(5, link=[1.0]), r"link must be"),
        (lambda: tasks.SingleIndex(5, link=[0.0, 1.0], k=1), r"k and p"),
        (lambda: tasks.SingleIndex(5, mu=np.ones(5)), r"mu must have orthonormal rows"),
        (lambda: tasks.LowRankPolynomial(3, r=4), r"r must be <= d"),
        (lambda: tasks.LowRankPolynomial(5, r=2, degree=0), r"degree must be >= 1"),
        (lambda: tasks.LowRankPolynomial(5, r=2, degrees=[2]), r"degrees must have r=2"),
        (lambda: tasks.LowRankPolynomial(5, r=2, directions=np.zeros((2, 5))), r"directions must have nonzero rows"),
        (lambda: tasks.LowRankPolynomial(5, r=2, alpha=[1.0]), r"alpha must be"),
        (lambda: tasks.SmoothStep1D(0.0), r"width must be > 0"),
        (lambda: tasks.transfer_pair(5, 2, 4, target_degree=0), r"target_degree must be >= 1"),
    ],
)
def test_invalid_parameters_raise_value_error(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda t: t.sample(0), r"n must be >= 1"),
        (lambda t: t.sample(10, noise=-1.0), r"noise must be >= 0"),
        (lambda t: t.sample(10, noise=float("nan")), r"noise must be finite"),
        (lambda t: t.sample(10, seed=-2), r"seed must be >= 0"),
        (lambda t: t.sample(10, dtype=np.int32), r"dtype must be float32 or float64"),
        (lambda t: t.sample(10, backend="gpu"), r"backend must be one of"),
        (lambda t: t.stream(10, block=0), r"block must be >= 1"),  # checked at the call, not at next()
        (lambda t: t.stream(-1), r"n must be >= 1"),
        (lambda t: t(np.zeros((3, 4))), r"X must have shape \(n, d\) with d=6"),
        (lambda t: t(np.zeros(6)), r"X must have shape"),
    ],
)
def test_invalid_sampling_arguments_raise_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call(tasks.MultiIndex(6, 2, 3))


def test_repr_names_the_parameters():
    assert repr(tasks.MultiIndex(6, 2, 3, seed=4)) == "MultiIndex(d=6, r=2, degree=3, head='random', seed=4)"
    assert "theta=4" in repr(tasks.SingleIndex(16, beta=0.5))
    assert repr(tasks.Heaviside1D()) == "Heaviside1D(append_one=False)"


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_sampling_works_in_a_forked_child():
    """The sampling thread pool is recreated in a forked child (its threads do not survive fork)."""
    import multiprocessing

    task = tasks.MultiIndex(5, 2, 3, seed=1)
    n = 3 * tasks.CHUNK_ROWS
    X, _ = task.sample(n, seed=2)  # the parent's pool exists now
    with multiprocessing.get_context("fork").Pool(1) as pool:
        total = pool.apply_async(_sum_of_sample, (task, n)).get(timeout=60)
    assert total == float(X.sum())


def _sum_of_sample(task, n):
    return float(task.sample(n, seed=2)[0].sum())
