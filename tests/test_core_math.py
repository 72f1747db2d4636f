"""The compiled core's shared scalar math (csrc/include/pyfeat/kernel_math.hpp), tested on the host.

The CUDA kernels evaluate exactly these inline functions on the device, so checking them here,
through ``pyfeat._core.kernel_values`` / ``acos_values``, tests the device formulas on machines
without a GPU. The reference is ``pyfeat.kernels.Kernel.from_inner`` in float64, fed the same
(g, |x|^2, |z|^2) values, rounded to the dtype under test.

Tolerances (per entry, see ``_tolerance``): rtol x the natural scale of the value (float64 1e-12,
float32 1e-6; measured worst cases on well-conditioned inputs 1.6e-16 and 6.6e-8), plus the
first-order effect of rounding the cosine or the squared distance in the working dtype (with it,
the worst measured error is 0.27 of the tolerance). Kernels written as functions of inner
products are ill-conditioned there (near-parallel vectors: d arccos(c)/dc = -1/sin t; near-equal
points: sqrt(d2) of a cancelled difference), and no implementation in that dtype does better;
the Numba backend and the GEMM-tile kernels share the same limits.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np
import pytest

import pyfeat
from pyfeat import _activation_table, kernels

core = pytest.importorskip("pyfeat._core")

DTYPES = (np.float32, np.float64)
RTOL = {np.float32: 1e-6, np.float64: 1e-12}
KERNELS = [
    ("ntk", {}),
    ("nngp", {}),
    ("arccos0", {}),
    ("rbf", {"bandwidth": 3.0}),
    ("laplace", {"bandwidth": 2.0}),
    ("poly", {"gamma": 0.5, "coef0": 1.0, "degree": 3}),
]
KERNEL_IDS = [name for name, _ in KERNELS]


def _host(kern, g, sx, sz):
    return core.kernel_values(kern.code, g, sx, sz, *kern.p)


def _tolerance(kern, dt, g, sx, sz):
    """Allowed |host - reference| per entry (inputs already in float64)."""
    rtol, u = RTOL[dt], 8 * float(np.finfo(dt).eps)  # u: rounding of c or d2 (a few operations)
    if kern.name in ("ntk", "nngp", "arccos0"):
        r = np.sqrt(sx * sz)
        c = np.clip(np.divide(g, r, out=np.zeros_like(g), where=r > 0), -1, 1)
        sin = np.sqrt(np.maximum(1 - c * c, 0))
        # error of t = arccos(c) when c is off by u: u / sin t, at most sqrt(2 u) at c = +-1
        dtheta = np.minimum(u / np.maximum(sin, 1e-300), math.sqrt(2 * u))
        if kern.name == "arccos0":
            return rtol + dtheta / (2 * math.pi)
        # d/dt [(pi - t) cos t + sin t] = -(pi - t) sin t
        nngp = rtol * r + r * sin * dtheta / 2
        return nngp if kern.name == "nngp" else nngp + rtol * np.abs(g) + np.abs(g) * dtheta / (2 * math.pi)
    if kern.name in ("rbf", "laplace"):
        bw = kern.params["bandwidth"]
        d2 = np.maximum(sx + sz - 2 * g, 0)
        dd2 = u * (sx + sz + 2 * np.abs(g))  # rounding of the cancelled difference
        value = kern.from_inner(g, sx, sz)
        if kern.name == "rbf":
            return rtol + value * dd2 / (2 * bw * bw)
        dist = np.sqrt(d2)
        ddist = np.minimum(dd2 / np.maximum(2 * dist, 1e-300), np.sqrt(dd2))
        return rtol + value * ddist / bw
    p = kern.params
    return rtol * (abs(p["gamma"]) * np.abs(g) + abs(p["coef0"])) ** p["degree"]


def _check(kern, dt, g, sx, sz):
    g, sx, sz = (np.asarray(a, dt) for a in (g, sx, sz))
    got = _host(kern, g, sx, sz)
    assert got.dtype == dt
    g, sx, sz = (a.astype(np.float64) for a in (g, sx, sz))
    ref = kern.from_inner(g, sx, sz)
    err = np.abs(got.astype(np.float64) - ref)
    tol = _tolerance(kern, dt, g, sx, sz)
    assert np.all(np.isfinite(got))
    worst = int(np.argmax(err / tol))
    assert np.all(err <= tol), (
        f"{kern.name} {np.dtype(dt).name}: |err| {err[worst]:.3g} > tol {tol[worst]:.3g} at "
        f"g={g[worst]!r}, sx={sx[worst]!r}, sz={sz[worst]!r} (host {got[worst]!r}, ref {ref[worst]!r})"
    )


def _random_pairs(rng, n, d, spread=2.0):
    """(g, |x|^2, |z|^2) of random pairs with log-normal norms (sigma `spread`: 2 spans about 4
    decades), a quarter of them nearly parallel, a quarter exactly anti-parallel (up to scale)."""
    X = rng.standard_normal((n, d)) * rng.lognormal(0, spread, (n, 1))
    Z = rng.standard_normal((n, d)) * rng.lognormal(0, spread, (n, 1))
    q = n // 4
    Z[:q] = X[:q] * rng.lognormal(0, 1, (q, 1)) + 1e-4 * rng.standard_normal((q, d))
    Z[q : 2 * q] = -X[q : 2 * q] * rng.lognormal(0, 1, (q, 1))
    return (X * Z).sum(1), (X * X).sum(1), (Z * Z).sum(1)


@pytest.mark.parametrize("dt", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("name,params", KERNELS, ids=KERNEL_IDS)
@pytest.mark.parametrize("d", [1, 2, 10, 300])
def test_kernel_values_match_float64_reference(name, params, dt, d):
    rng = np.random.default_rng(1000 + d)
    _check(kernels.get(name, **params), dt, *_random_pairs(rng, 4000, d))


@pytest.mark.parametrize("dt", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("name,params", KERNELS, ids=KERNEL_IDS)
@pytest.mark.parametrize("scale", [1e-15, 1e-6, 1.0, 1e6, 1e15])
def test_kernel_values_tiny_and_huge_inner_products(name, params, dt, scale):
    # Both vectors scaled by sqrt(scale): g, |x|^2, |z|^2 scale by `scale`. The angle needs
    # |x|^2 |z|^2 among the normal numbers of the dtype (float32: about 1e-38 .. 3e38).
    rng = np.random.default_rng(7)
    g, sx, sz = _random_pairs(rng, 2000, 5, spread=0.3)
    if name == "poly" and dt == np.float32:
        scale = min(scale, 1e9)  # (gamma g + coef0)^3 leaves float32's range beyond
    _check(kernels.get(name, **params), dt, g * scale, sx * scale, sz * scale)


@pytest.mark.parametrize("dt", DTYPES, ids=["float32", "float64"])
def test_zero_vectors_give_angle_pi_over_2(dt):
    # one or both vectors zero: cos t = 0 by convention, so arccos0 = 1/4, ntk = nngp = 0, no NaN
    g = np.zeros(3, dt)
    sx = np.array([0.0, 2.0, 0.0], dt)
    sz = np.array([3.0, 0.0, 0.0], dt)
    assert np.array_equal(_host(kernels.get("ntk"), g, sx, sz), np.zeros(3, dt))
    assert np.array_equal(_host(kernels.get("nngp"), g, sx, sz), np.zeros(3, dt))
    np.testing.assert_allclose(_host(kernels.get("arccos0"), g, sx, sz), 0.25, rtol=RTOL[dt])
    # rbf of two zero vectors is 1; of x and 0 it is exp(-|x|^2 / (2 bw^2))
    rbf = _host(kernels.get("rbf", bandwidth=2.0), g, sx, sz)
    np.testing.assert_allclose(rbf, np.exp(-np.array([3.0, 2.0, 0.0]) / 8), rtol=RTOL[dt])


@pytest.mark.parametrize("dt", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("sign", [1.0, -1.0])
@pytest.mark.parametrize("excess", [0.0, 1e-7, 1e-3])
def test_cosine_at_and_beyond_plus_minus_one_is_clamped(dt, sign, excess):
    # g = +-s (1 + excess) with |x|^2 = |z|^2 = s: cos t is +-1 exactly or, through rounding,
    # slightly beyond; the kernels see the clamped value: t = 0 gives ntk = g/2 + s/2,
    # nngp = s/2, arccos0 = 1/2; t = pi gives 0 for all three.
    s = np.array([1e-3, 0.5, 1.0, 7.0, 1e4], dt)
    g = (sign * s * (1 + excess)).astype(dt)
    g64, s64 = g.astype(np.float64), s.astype(np.float64)
    expect = {"ntk": (g64 + s64) / 2 if sign > 0 else 0 * s, "nngp": s64 / 2 if sign > 0 else 0 * s,
              "arccos0": np.full_like(s, 0.5 if sign > 0 else 0.0)}
    for name, want in expect.items():
        got = _host(kernels.get(name), g, s, s)
        assert np.all(np.isfinite(got))
        # at c = +-1 exactly the values are exact up to the last operations (rtol); the float32
        # arccos polynomial at -1 is pi - float32(pi) away from exact (scale: s for ntk/nngp)
        atol = (1e-6 if dt == np.float32 else 1e-14) * (1 if name == "arccos0" else s)
        err = np.abs(got.astype(np.float64) - want)
        assert np.all(err <= atol + RTOL[dt] * np.abs(want)), (name, got, want)


def test_pf_acos_float32_dense_grid():
    # The float32 arccos is a degree-7 polynomial (Abramowitz & Stegun 4.4.46; 2.2e-8 in exact
    # arithmetic) evaluated in float32. Measured on this grid: 4.2e-7 absolute (1.8 float32 ulps
    # at values near 2, where one ulp is 2.4e-7; a correctly rounded float32 arccos has 1.2e-7).
    x = np.linspace(-1, 1, 2_000_001).astype(np.float32)
    got = core.acos_values(x)
    assert got.dtype == np.float32
    exact = np.arccos(x.astype(np.float64))
    assert np.max(np.abs(got - exact)) <= 5e-7
    ends = core.acos_values(np.array([1.0, 0.0, -1.0], np.float32)).astype(np.float64)
    np.testing.assert_allclose(ends, [0.0, math.pi / 2, math.pi], rtol=0, atol=3e-7)
    assert ends[0] == 0.0


def test_pf_acos_float64_is_libm():
    x = np.linspace(-1, 1, 200_001)
    got = core.acos_values(x)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, np.arccos(x), rtol=4e-16, atol=0)


# ---------------------------------------------------------------------------------------------
# the activations of the Taylor models (taylor_math.hpp): host evaluation against the table's
# float64 formulas, and the Numba version against the host

TAYLOR_HEADER = Path(pyfeat.__file__).resolve().parent.parent / "csrc" / "include" / "pyfeat" / "taylor_math.hpp"
ACTIVATION_NAMES = _activation_table.names()


@pytest.mark.skipif(not TAYLOR_HEADER.is_file(), reason="csrc/ not next to the package (installed wheel)")
def test_activation_codes_are_the_tables():
    text = TAYLOR_HEADER.read_text()
    enum = re.search(r"enum ActivationCode : int \{([^}]*)\}", text).group(1)
    codes = {name.strip().lower(): int(value) for name, value in re.findall(r"(\w+)\s*=\s*(\d+)", enum)}
    assert codes == {name: act.code for name, act in _activation_table.TABLE.items()}
    assert int(re.search(r"kActivationCount = (\d+);", text).group(1)) == len(_activation_table.TABLE)
    with pytest.raises(ValueError, match="unknown activation code 4"):
        core.activation_values(4, np.zeros(2), 1)


def _activation_grid(dt):
    """t on [-30, 30] densely, the kinks, and values far out (σ'' of softplus underflows there)."""
    t = np.concatenate([np.linspace(-30, 30, 60_001), [-1e4, -700.0, -1e-30, 0.0, 1e-30, 700.0, 1e4]])
    return t.astype(dt)


@pytest.mark.parametrize("dt", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_activation_values_match_float64_reference(name, dt):
    """σ, σ', σ'' of the header against the table's float64 formulas at the same (rounded) t:
    |error| <= rtol·(|σ⁽ᵏ⁾(t)| + 1) (float64 1e-12, float32 1e-6; measured worst 2.2e-16 / 1.2e-7)."""
    act = _activation_table.TABLE[name]
    t = _activation_grid(dt)
    for k in range(3):
        got = core.activation_values(act.code, t, k)
        assert got.dtype == dt and np.all(np.isfinite(got) | (np.abs(t) > 100))
        ref = act.derivative(t.astype(np.float64), k)
        with np.errstate(invalid="ignore"):
            err = np.abs(got.astype(np.float64) - ref)
        ok = err <= RTOL[dt] * (np.abs(ref) + 1)
        ok |= np.isinf(ref) & (got == ref)  # relu3 and cubic at ±1e4 in float32: ±inf both
        assert np.all(ok), (name, k, t[~ok][:5], got[~ok][:5], ref[~ok][:5])


def _neurons_reference(act, u0, u, a1, a2):
    lin, quad = a1 * act.derivative(u0, 1), a2 * act.derivative(u0, 2) * u
    return (lin + 0.5 * quad) * u, lin + quad


def _neurons_inputs(dt, n=20_000, seed=3):
    rng = np.random.default_rng(seed)
    u0, u, a1, a2 = (rng.standard_normal(n) * s for s in (3.0, 1.0, 1.0, 1.0))
    u0[:100] = 0.0  # the kinks
    return tuple(v.astype(dt) for v in (u0, u, a1, a2))


@pytest.mark.parametrize("dt", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_taylor_neuron_host_and_numba(name, dt):
    """taylor_neuron (term a1σ'(u0)u + a2σ''(u0)u²/2, slope a1σ'(u0) + a2σ''(u0)u) of the header
    against the float64 formula, and the Numba version (pyfeat.ops._numba) against the header,
    both within rtol of the terms' natural size |a1σ'u| + |a2σ''u²|."""
    from numba import njit

    from pyfeat.ops._numba import _taylor_neuron

    act = _activation_table.TABLE[name]
    code = act.code  # a compile-time constant of the loop below, as in pyfeat.ops._numba

    @njit
    def numba_neurons(u0, u, a1, a2, term, slope):
        for i in range(u0.shape[0]):
            term[i], slope[i] = _taylor_neuron(code, u0[i], u[i], a1[i], a2[i])

    u0, u, a1, a2 = _neurons_inputs(dt)
    term, slope = core.taylor_neurons(act.code, u0, u, a1, a2)
    assert term.dtype == slope.dtype == dt
    ref_term, ref_slope = _neurons_reference(act, *(v.astype(np.float64) for v in (u0, u, a1, a2)))
    size_slope = np.abs(a1 * act.derivative(u0, 1)) + np.abs(a2 * act.derivative(u0, 2) * u)
    size_term = size_slope * np.abs(u)
    for got, ref, size in ((term, ref_term, size_term), (slope, ref_slope, size_slope)):
        assert np.all(np.abs(got - ref) <= RTOL[dt] * (size + 1e-30))
    nb_term, nb_slope = np.empty_like(u0), np.empty_like(u0)
    numba_neurons(u0, u, a1, a2, nb_term, nb_slope)
    for got, host, size in ((nb_term, term, size_term), (nb_slope, slope, size_slope)):
        assert np.all(np.abs(got.astype(np.float64) - host) <= 4 * np.finfo(dt).eps * (size + 1e-30))


# ---------------------------------------------------------------------------------------------
# build facts

CUDA_OPS = ("mask_times_y", "relu_bias", "kernel_matrix", "kernel_matvec", "relu_residual", "taylor_residual",
            "taylor_forward")


def test_build_info_is_consistent():
    info = core.build_info()
    assert info["version"] == pyfeat.__version__
    cuda_names = sorted(n for n in dir(core) if n.startswith("cuda_"))
    expect = os.environ.get("PYFEAT_EXPECT_CUDA")  # set by a CI job that knows how it built
    if expect is not None:
        assert info["cuda"] is (expect.strip().lower() in ("1", "true", "on", "yes"))
    if info["cuda"]:
        # CMAKE_CUDA_ARCHITECTURES with ";" -> ",", e.g. "80-real,89-real,90"
        assert re.fullmatch(r"\d+[a-z]?(-real|-virtual)?(,\d+[a-z]?(-real|-virtual)?)*",
                            info["cuda_architectures"]), info["cuda_architectures"]
        assert info["cuda_runtime_version"] >= 11000
        assert info["cuda_runtime_version"] == core.cuda_runtime_version()
        want = sorted([f"cuda_{op}_{s}" for op in CUDA_OPS for s in ("f32", "f64")]
                      + ["cuda_runtime_version"])
        assert cuda_names == want
    else:
        assert info["cuda_architectures"] == ""
        assert info["cuda_runtime_version"] == -1
        assert cuda_names == []
        ok, why = pyfeat.backend.cuda_status()
        assert not ok and "without CUDA" in why


# The launchers validate sizes and pointers before touching the device, so these run anywhere.
needs_cuda_build = pytest.mark.skipif(not core.build_info()["cuda"], reason="built without CUDA")


@needs_cuda_build
@pytest.mark.parametrize("sfx", ["f32", "f64"])
def test_cuda_launchers_reject_bad_arguments(sfx):
    relu_bias = getattr(core, f"cuda_relu_bias_{sfx}")
    mask = getattr(core, f"cuda_mask_times_y_{sfx}")
    kmat = getattr(core, f"cuda_kernel_matrix_{sfx}")
    kmv = getattr(core, f"cuda_kernel_matvec_{sfx}")
    fake = 1 << 20  # never dereferenced: every call below fails validation first
    with pytest.raises(ValueError, match="leading dimension"):
        relu_bias(fake, 3, 2, 4, fake, 0)
    with pytest.raises(ValueError, match="rows must be >= 0"):
        mask(fake, 4, -1, 4, fake, fake, 0)
    with pytest.raises(ValueError, match="y is a null pointer"):
        mask(fake, 4, 2, 4, fake, 0, 0)
    with pytest.raises(ValueError, match="unknown kernel code 9"):
        kmat(9, 1.0, 0.0, 0.0, fake, 4, 2, 4, fake, fake, 0)
    with pytest.raises(ValueError, match="unknown kernel code -1"):
        kmv(-1, 1.0, 0.0, 0.0, fake, 2, fake, 2, 3, fake, fake, fake, 1, fake, 0)
    with pytest.raises(ValueError, match="V is a null pointer"):
        kmv(0, 1.0, 0.0, 0.0, fake, 2, fake, 2, 3, fake, fake, 0, 1, fake, 0)
    with pytest.raises(ValueError, match="d must be >= 0"):
        kmv(0, 1.0, 0.0, 0.0, fake, 2, fake, 2, -3, fake, fake, fake, 1, fake, 0)
    resid = getattr(core, f"cuda_relu_residual_{sfx}")
    with pytest.raises(ValueError, match="relu_residual: leading dimension 3 < m 4"):
        resid(fake, 3, 2, 4, fake, fake, fake, fake, fake, 1, 0)
    with pytest.raises(ValueError, match="splits must be in"):
        resid(fake, 4, 2, 4, fake, fake, fake, fake, fake, 0, 0)
    with pytest.raises(ValueError, match="a is a null pointer"):
        resid(fake, 4, 2, 4, fake, 0, fake, fake, fake, 1, 0)
    with pytest.raises(ValueError, match="parts is a null pointer"):
        resid(fake, 4, 2, 4, fake, fake, fake, fake, 0, 1, 0)


@needs_cuda_build
@pytest.mark.parametrize("sfx", ["f32", "f64"])
def test_cuda_launchers_accept_empty_sizes_without_a_device(sfx):
    # nothing to do: no launch, no CUDA call, null pointers allowed for empty arrays
    assert getattr(core, f"cuda_relu_bias_{sfx}")(0, 0, 0, 0, 0, 0) is None
    assert getattr(core, f"cuda_mask_times_y_{sfx}")(0, 5, 0, 5, 1 << 20, 0, 0) is None
    assert getattr(core, f"cuda_kernel_matrix_{sfx}")(3, 1.0, 0.0, 0.0, 0, 0, 4, 0, 1 << 20, 0, 0) is None
    assert getattr(core, f"cuda_relu_residual_{sfx}")(0, 0, 5, 0, 0, 0, 1 << 20, 1 << 20, 0, 2, 0) is None
    assert getattr(core, f"cuda_kernel_matvec_{sfx}")(0, 0.0, 0.0, 0.0, 0, 0, 1 << 20, 3, 2, 0,
                                                      1 << 20, 1 << 20, 4, 0, 0) is None


@needs_cuda_build
@pytest.mark.parametrize("sfx", ["f32", "f64"])
def test_cuda_taylor_launchers_check_arguments(sfx):
    resid = getattr(core, f"cuda_taylor_residual_{sfx}")
    fwd = getattr(core, f"cuda_taylor_forward_{sfx}")
    fake = 1 << 20  # never dereferenced: every call below fails validation first
    with pytest.raises(ValueError, match="taylor_residual: leading dimension 7 < 2m 8"):
        resid(fake, 7, 2, 4, fake, fake, fake, fake, 0, fake, fake, 1, 0)
    with pytest.raises(ValueError, match="unknown activation code 4"):
        resid(fake, 8, 2, 4, fake, fake, fake, fake, 4, fake, fake, 1, 0)
    with pytest.raises(ValueError, match="splits must be in"):
        resid(fake, 8, 2, 4, fake, fake, fake, fake, 0, fake, fake, 0, 0)
    with pytest.raises(ValueError, match="a2 is a null pointer"):
        resid(fake, 8, 2, 4, fake, fake, 0, fake, 0, fake, fake, 1, 0)
    with pytest.raises(ValueError, match="y is a null pointer"):
        resid(fake, 8, 2, 4, fake, fake, fake, 0, 0, fake, fake, 1, 0)
    with pytest.raises(ValueError, match="taylor_forward: rows must be >= 0"):
        fwd(fake, 8, -1, 4, fake, fake, fake, 0, fake, 0)
    with pytest.raises(ValueError, match="out is a null pointer"):
        fwd(fake, 8, 2, 4, fake, fake, fake, 0, 0, 0)
    # nothing to do: no launch, no CUDA call
    assert resid(0, 0, 5, 0, 0, 0, 0, fake, 1, fake, 0, 2, 0) is None
    assert fwd(0, 8, 0, 4, fake, fake, fake, 2, 0, 0) is None


def _cosine_reference(name, X):
    X64 = X.astype(np.float64)
    G, sq = X64 @ X64.T, (X64 * X64).sum(1)
    kern = kernels.get(name)
    scale = np.ones_like(G) if name == "arccos0" else np.sqrt(sq[:, None] * sq[None, :])
    return kern, G, sq, kern.from_inner(G, sq[:, None], sq[None, :]), 2e-3 * scale + np.finfo(np.float32).tiny


@pytest.mark.parametrize("name", ["ntk", "nngp", "arccos0"])
@pytest.mark.parametrize("norm", [1e-15, 1e15])
def test_cosine_kernel_values_where_sx_sz_leaves_float32s_range(name, norm):
    """|x|²|z|² underflows (norms 1e-15) or overflows (1e15) in float32 although |x|², |x||z| and
    the cosine are representable: sqrt(sx sz) gave c = 0 or NaN in the device formula, which now
    takes sqrt(sx) sqrt(sz) there and equals the float64 reference."""
    X = (norm * np.random.default_rng(1).standard_normal((6, 3))).astype(np.float32)
    kern, G, sq, want, tol = _cosine_reference(name, X)
    got = _host(kern, G.astype(np.float32).ravel(), np.repeat(sq, 6).astype(np.float32),
                np.tile(sq, 6).astype(np.float32)).reshape(6, 6)
    assert np.all(np.abs(got - want) <= tol), (got, want)
