"""Kernel formulas, as functions of inner products and squared norms.

Every kernel k(x, z) here is a function of g = <x, z>, sx = |x|^2 and sz = |z|^2, so a tile of
inner products (one GEMM) is all the blocked operations need. With t = angle(x, z) (cos t clamped
to [-1, 1]; a zero vector gives t = pi/2 by convention, never NaN):

- ``ntk``:      <x,z>(pi - t)/(2 pi) + |x||z|((pi - t) cos t + sin t)/(2 pi) — the NTK of the
  two-layer ReLU net f(x) = (1/sqrt(m)) sum_i b_i relu(a_i.x), a ~ N(0, I_d), b ~ N(0, 1), at
  infinite width (seed 003; DESIGN.md). neural-tangents' ``stax`` NTK equals this divided by d.
- ``nngp`` (alias ``arccos1``): |x||z|((pi - t) cos t + sin t)/(2 pi), the second NTK term.
- ``arccos0``: (pi - t)/(2 pi).
- ``rbf``:      exp(-|x - z|^2 / (2 bandwidth^2)).
- ``laplace``:  exp(-|x - z| / bandwidth)  (Euclidean distance, as in the EigenPro papers).
- ``poly``:     (gamma <x,z> + coef0)^degree, degree a positive integer.

The same formulas are compiled for the CPU (Numba, ``pyfeat.ops._numba``) and the GPU
(``csrc/include/pyfeat/kernel_math.hpp``); the integer ``Kernel.code`` selects one there.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field


from pyfeat.backend import array_module

__all__ = ["Kernel", "get", "names"]

# name -> (code, default parameters in the order they are passed to compiled code as p0, p1, p2)
_SPECS = {
    "ntk": (0, {}),
    "nngp": (1, {}),
    "arccos0": (2, {}),
    "rbf": (3, {"bandwidth": 1.0}),
    "laplace": (4, {"bandwidth": 1.0}),
    "poly": (5, {"gamma": 1.0, "coef0": 1.0, "degree": 3}),
}
_ALIASES = {"arccos1": "nngp"}


def names():
    """The kernel names `get` accepts (aliases included)."""
    return sorted(list(_SPECS) + list(_ALIASES))


@dataclass(frozen=True)
class Kernel:
    """A kernel of `names()` with its parameters; build it with :func:`get`."""

    name: str
    params: dict = field(default_factory=dict)

    @property
    def code(self) -> int:
        """Integer code used by the compiled backends (kernel_math.hpp KernelCode)."""
        return _SPECS[self.name][0]

    @property
    def p(self) -> tuple:
        """Parameters as three floats (p0, p1, p2) for the compiled backends."""
        defaults = _SPECS[self.name][1]  # its order is the order of p0, p1, p2
        vals = [float(self.params.get(k, v)) for k, v in defaults.items()]
        return tuple(vals + [0.0] * (3 - len(vals)))

    def from_inner(self, g, sx, sz):
        """k as an array function of g = <x,z>, sx = |x|^2, sz = |z|^2 (NumPy or CuPy, broadcast).

        Computed in the dtype of ``g``; this is the reference formula the tests use.
        """
        xp = array_module(g)
        if self.name in ("ntk", "nngp", "arccos0"):
            s = sx * sz
            pos = s > 0
            c = xp.where(pos, g / xp.sqrt(xp.where(pos, s, 1)), 0)
            c = xp.clip(c, -1, 1)
            pit = math.pi - xp.arccos(c)
            if self.name == "arccos0":
                return pit / (2 * math.pi)
            nngp = xp.sqrt(s) * (pit * c + xp.sqrt(xp.maximum(1 - c * c, 0))) / (2 * math.pi)
            return nngp + g * pit / (2 * math.pi) if self.name == "ntk" else nngp
        if self.name in ("rbf", "laplace"):
            d2 = xp.maximum(sx + sz - 2 * g, 0)
            bw = self.params["bandwidth"]
            if self.name == "rbf":
                return xp.exp(-d2 / (2 * bw * bw))
            return xp.exp(-xp.sqrt(d2) / bw)
        p = self.params
        return (p["gamma"] * g + p["coef0"]) ** p["degree"]

    def __call__(self, X, Z=None):
        """The kernel matrix K(X, Z) (small sizes; see ``pyfeat.ops.kernel_matrix`` for large)."""
        from pyfeat.ops import kernel_matrix

        return kernel_matrix(X, X if Z is None else Z, self)


def get(name, **params) -> Kernel:
    """Return the kernel ``name`` with ``params`` (see the module docstring for the formulas).

    ``name`` may also be a :class:`Kernel`, returned as is (then no params may be given).
    Raises ValueError for an unknown name or a bad parameter value, TypeError for an unknown
    parameter name.
    """
    if isinstance(name, Kernel):
        if params:
            raise TypeError("kernel: parameters cannot be given together with a Kernel instance")
        return name
    if not isinstance(name, str):
        raise TypeError(f"kernel: expected a kernel name (str) or a Kernel, got {type(name).__name__}")
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in _SPECS:
        raise ValueError(f"kernel: unknown kernel {name!r}; expected one of {names()}")
    defaults = _SPECS[key][1]
    unknown = set(params) - set(defaults)
    if unknown:
        raise TypeError(
            f"kernel {key!r}: unknown parameter(s) {sorted(unknown)}; "
            f"expected {sorted(defaults) or 'none'}"
        )
    merged = {**defaults, **params}
    for pname, value in merged.items():
        if not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ValueError(f"kernel {key!r}: {pname} must be a finite real number, got {value!r}")
    if "bandwidth" in merged and merged["bandwidth"] <= 0:
        raise ValueError(f"kernel {key!r}: bandwidth must be > 0, got {merged['bandwidth']!r}")
    if key == "poly" and (int(merged["degree"]) != merged["degree"] or merged["degree"] < 1):
        raise ValueError(f"kernel 'poly': degree must be a positive integer, got {merged['degree']!r}")
    if key == "poly":
        merged["degree"] = int(merged["degree"])
    return Kernel(key, merged)




def empirical_ntk(X, Z, W, a, b=None, *, block_size=1024):
    """Empirical NTK ∇_θf(x)·∇_θf(z) of the finite network f(x) = (1/√m) Σ_i a_i σ(w_i·x + b_i).

    Seed 003's parameterization with its names mapped to DESIGN's: W (m, d) holds the first-layer
    rows (seed 003's a_i ~ N(0, I_d)), ``a`` (m,) the output weights (seed 003's b_i ~ N(0, 1)),
    ``b`` (m,) biases or None (no bias parameters). With θ = (W, a[, b]):

        K_m(x, z) = (1/m) Σ_i [ σ(w_i·x + b_i) σ(w_i·z + b_i)
                               + a_i² σ'(w_i·x + b_i) σ'(w_i·z + b_i) (x·z + [b given]) ],

    σ = ReLU, σ'(u) = 1[u > 0]. As m → ∞ with W, a Gaussian and b = None it converges to
    ``get("ntk")`` (the first term to "nngp", the second to x·z times "arccos0"). Computed in
    float64 over blocks of ``block_size`` rows of X (σ(XWᵀ + b) by ``pyfeat.ops.relu_features``);
    returns the (n_x, n_z) float64 matrix (NumPy in → NumPy out, CuPy in → CuPy out).
    """
    from pyfeat.ops import relu_features

    xp = array_module(X)
    X = xp.asarray(X, dtype=xp.float64)
    Z = xp.asarray(Z, dtype=xp.float64)
    W = xp.asarray(W, dtype=xp.float64)
    a = xp.asarray(a, dtype=xp.float64)
    if X.ndim != 2 or Z.ndim != 2 or W.ndim != 2 or X.shape[1] != W.shape[1] or Z.shape[1] != W.shape[1]:
        raise ValueError(
            f"empirical_ntk: X (n_x, d), Z (n_z, d) and W (m, d) must share d, got shapes "
            f"{X.shape}, {Z.shape}, {W.shape}"
        )
    m = W.shape[0]
    if a.shape != (m,):
        raise ValueError(f"empirical_ntk: a must have shape ({m},) (W.shape[0]), got {a.shape}")
    if b is not None:
        b = xp.asarray(b, dtype=xp.float64)
        if b.shape != (m,):
            raise ValueError(f"empirical_ntk: b must have shape ({m},) or be None, got {b.shape}")
    phi_z = relu_features(Z, W, b)
    step_z = (phi_z > 0) * (a * a)
    out = xp.empty((X.shape[0], Z.shape[0]))
    for s in range(0, X.shape[0], block_size):
        Xb = X[s : s + block_size]
        phi = relu_features(Xb, W, b)
        inner = Xb @ Z.T + (0.0 if b is None else 1.0)
        out[s : s + block_size] = (phi @ phi_z.T + ((phi > 0) * 1.0) @ step_z.T * inner) / m
    return out
