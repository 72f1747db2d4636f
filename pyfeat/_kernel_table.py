"""The kernel table: every kernel's name, integer code, parameters (in the order the compiled
code receives them as p0, p1, p2) and float64 reference formula, defined once.

Every kernel k(x, z) here is a function of g = <x, z>, sx = |x|^2 and sz = |z|^2, so a tile of
inner products (one GEMM) is all the blocked operations need. With t = angle(x, z) (cos t clamped
to [-1, 1]; a zero vector gives t = pi/2 by convention, never NaN):

- ``ntk``:      <x,z>(pi - t)/(2 pi) + |x||z|((pi - t) cos t + sin t)/(2 pi) — the NTK of the
  two-layer ReLU net f(x) = (1/sqrt(m)) sum_i b_i relu(a_i.x), a ~ N(0, I_d), b ~ N(0, 1), at
  infinite width (seed 003; DESIGN.md). neural-tangents' ``stax`` NTK equals this divided by d.
- ``nngp`` (alias ``arccos1``): |x||z|((pi - t) cos t + sin t)/(2 pi), the second NTK term.
- ``arccos0``: (pi - t)/(2 pi).

The three cosine kernels take ``bias`` (beta >= 0, default 0): the kernel of the inputs (x, beta),
i.e. g + beta^2, sx + beta^2, sz + beta^2 in the formulas above — the network with biases
c_i ~ N(0, beta^2) in its first layer (a_i.x + c_i = (a_i, c_i/beta).(x, beta)). Without a bias the
ReLU NTK has zero eigenvalues on the odd harmonics of degree >= 3 (Bietti & Mairal 2019): it
cannot learn a degree-3 target's cubic part; any beta > 0 restores them. The blocked ops
evaluate a biased kernel as the bias-free one on the inputs with a column beta appended.
- ``rbf``:      exp(-|x - z|^2 / (2 bandwidth^2)).
- ``laplace``:  exp(-|x - z| / bandwidth)  (Euclidean distance, as in the EigenPro papers).
- ``poly``:     (gamma <x,z> + coef0)^degree, degree a positive integer.

The same formulas are compiled for the CPU (``pyfeat.ops._numba``: ``_cosine_unit`` for the
cosine kernels ntk/nngp/arccos0, ``_kval`` for the others) and the GPU
(``csrc/include/pyfeat/kernel_math.hpp``, ``kernel_value``), which select one by ``code``.
tests/test_kernel_table.py checks that the header's codes and arccos coefficients are the ones
below. Adding a kernel: a row of ``TABLE`` (with its reference formula) and its formula in
kernel_math.hpp and in ``pyfeat.ops._numba._kval``; nothing else.

This module sits below ``pyfeat.ops``; ``pyfeat.kernels`` (above the ops) adds what needs them.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any

from pyfeat.backend import array_module

__all__ = ["TABLE", "ALIASES", "ACOS32_COEFFICIENTS", "KernelSpec", "parse", "names"]

# float32 arccos on [0, 1]: acos(x) = sqrt(1 - x) * P(x), P of degree 7 with these coefficients
# (highest first; Abramowitz & Stegun 4.4.46, |error| <= 2e-8), acos(-x) = pi - acos(x).
ACOS32_COEFFICIENTS = (-0.0012624911, 0.0066700901, -0.0170881256, 0.0308918810,
                       -0.0501743046, 0.0889789874, -0.2145988016, 1.5707963050)


def _positive(name, value):
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")


def _positive_integer(name, value):
    if int(value) != value or value < 1:
        raise ValueError(f"degree must be a positive integer, got {value!r}")


def _cosine(xp, g, s):
    """cos t = g / sqrt(s), s = sx sz, clamped to [-1, 1]; 0 where s = 0 (t = pi/2)."""
    pos = s > 0
    return xp.clip(xp.where(pos, g / xp.sqrt(xp.where(pos, s, 1)), 0), -1, 1)


def _nngp(xp, g, sx, sz):
    s = sx * sz
    c = _cosine(xp, g, s)
    return xp.sqrt(s) * ((math.pi - xp.arccos(c)) * c + xp.sqrt(xp.maximum(1 - c * c, 0))) / (2 * math.pi)


def _arccos0(xp, g, sx, sz):
    return (math.pi - xp.arccos(_cosine(xp, g, sx * sz))) / (2 * math.pi)


def _nonnegative(name, value):
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")


def _biased(formula):
    """A cosine kernel's formula of the inputs (x, bias): (g, sx, sz) + bias^2."""

    def reference(xp, g, sx, sz, bias):
        b2 = bias * bias
        return formula(xp, g + b2, sx + b2, sz + b2)

    return reference


_BIAS = (("bias", 0.0, _nonnegative),)


def _ntk(xp, g, sx, sz):
    return g * _arccos0(xp, g, sx, sz) + _nngp(xp, g, sx, sz)


def _sq_distance(xp, g, sx, sz):
    return xp.maximum(sx + sz - 2 * g, 0)


@dataclass(frozen=True)
class Row:
    """One kernel: its code in the compiled backends, its parameters as (name, default, check)
    in the order p0, p1, p2, and its reference formula ``reference(xp, g, sx, sz, *p)``.

    Examples
    --------
    >>> from pyfeat._kernel_table import TABLE
    >>> TABLE["rbf"].code, [(name, default) for name, default, _ in TABLE["rbf"].params]
    (3, [('bandwidth', 1.0)])
    """

    code: int
    params: tuple
    reference: object
    # cosine kernels: k(2^a x, 2^b z) = 2^{degree (a + b)} k(x, z) (bias-free form); None otherwise
    degree: int | None = None


TABLE = {
    "ntk": Row(0, _BIAS, _biased(_ntk), degree=1),
    "nngp": Row(1, _BIAS, _biased(_nngp), degree=1),
    "arccos0": Row(2, _BIAS, _biased(_arccos0), degree=0),
    "rbf": Row(3, (("bandwidth", 1.0, _positive),),
               lambda xp, g, sx, sz, bw: xp.exp(-_sq_distance(xp, g, sx, sz) / (2 * bw * bw))),
    "laplace": Row(4, (("bandwidth", 1.0, _positive),),
                   lambda xp, g, sx, sz, bw: xp.exp(-xp.sqrt(_sq_distance(xp, g, sx, sz)) / bw)),
    "poly": Row(5, (("gamma", 1.0, None), ("coef0", 1.0, None), ("degree", 3, _positive_integer)),
                lambda xp, g, sx, sz, gamma, coef0, degree: (gamma * g + coef0) ** degree),
}
ALIASES = {"arccos1": "nngp"}
DISTANCE_KERNELS = ("rbf", "laplace")  # functions of |x − z|: evaluated from differences where needed
MAX_PARAMS = 3  # p0, p1, p2 in the compiled code


def names() -> list[str]:
    """The kernel names :func:`pyfeat.kernels.get` and the ops' ``kernel=`` accept (aliases included).

    Returns
    -------
    list of str
        Sorted: "arccos0", "arccos1" (alias of "nngp"), "laplace", "nngp", "ntk", "poly",
        "rbf".

    Examples
    --------
    >>> import pyfeat as pf
    >>> pf.kernels.names()
    ['arccos0', 'arccos1', 'laplace', 'nngp', 'ntk', 'poly', 'rbf']
    """
    return sorted(list(TABLE) + list(ALIASES))


def _check_params(name, params):
    """Validated parameters of kernel ``name`` in table order (dict); ValueError/TypeError."""
    row = TABLE[name]
    known = [p for p, _, _ in row.params]
    unknown = set(params) - set(known)
    if unknown:
        raise TypeError(f"kernel {name!r}: unknown parameter(s) {sorted(unknown)}; expected {known or 'none'}")
    out = {}
    for pname, default, check in row.params:
        value = params.get(pname, default)
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ValueError(f"kernel {name!r}: {pname} must be a finite real number, got {value!r}")
        if check is not None:
            try:
                check(pname, value)
            except ValueError as exc:
                raise ValueError(f"kernel {name!r}: {exc}") from None
        out[pname] = int(value) if check is _positive_integer else value
    return out


@dataclass(frozen=True)
class KernelSpec:
    """A kernel of the table with its parameters (``pyfeat.kernels.Kernel`` adds ``__call__``).

    Parameters
    ----------
    name : str
        A name of ``TABLE`` (not an alias: :func:`parse` resolves those).
    params : dict, optional
        The kernel's parameters by name (e.g. ``{"bandwidth": 2.0}`` for "rbf").
    differences : bool, default False
        For rbf/laplace only: evaluate from the differences x − z (:meth:`from_differences`).

    Examples
    --------
    >>> from pyfeat._kernel_table import KernelSpec
    >>> KernelSpec("rbf").validated()
    KernelSpec(name='rbf', params={'bandwidth': 1.0})
    """

    name: str
    params: dict = field(default_factory=dict)
    # rbf/laplace only: evaluate from the differences x − z (``from_differences``), not inner products
    differences: bool = field(default=False, repr=False, compare=False)

    def validated(self) -> KernelSpec:
        """This kernel with its name checked and its parameters completed and checked.

        The ops call this at their boundary, so a KernelSpec built directly is validated too.

        Returns
        -------
        KernelSpec
            ``self`` when its parameters are already complete and valid, else a copy of the
            same class with every parameter (defaults filled in).

        Raises
        ------
        ValueError
            For an unknown name or a bad parameter value.
        TypeError
            For an unknown parameter name, or ``params`` not a dict.

        Examples
        --------
        >>> import pyfeat as pf
        >>> pf.kernels.Kernel("poly", {"degree": 2}).validated()
        Kernel(name='poly', params={'gamma': 1.0, 'coef0': 1.0, 'degree': 2})
        """
        if not isinstance(self.name, str) or self.name not in TABLE:
            raise ValueError(f"kernel: unknown kernel {self.name!r}; expected one of {names()}")
        if not isinstance(self.params, dict):
            raise TypeError(f"kernel {self.name!r}: params must be a dict, got {type(self.params).__name__}")
        params = _check_params(self.name, self.params)
        return self if params == self.params else type(self)(self.name, params, differences=self.differences)

    @property
    def code(self) -> int:
        """Integer code used by the compiled backends (kernel_math.hpp KernelCode).

        Examples
        --------
        >>> import pyfeat as pf
        >>> pf.kernels.get("ntk").code, pf.kernels.get("rbf").code
        (0, 3)
        """
        return TABLE[self.name].code

    @property
    def p(self) -> tuple:
        """Parameters as three floats (p0, p1, p2) for the compiled backends, in table order.

        Examples
        --------
        >>> import pyfeat as pf
        >>> pf.kernels.get("poly", degree=2).p
        (1.0, 1.0, 2.0)
        """
        vals = [float(self.params.get(pname, default)) for pname, default, _ in TABLE[self.name].params]
        return tuple(vals + [0.0] * (MAX_PARAMS - len(vals)))

    def from_inner(self, g: Any, sx: Any, sz: Any) -> Any:
        """The kernel k as an array function of g = <x,z>, sx = ``|x|^2``, sz = ``|z|^2``.

        Computed in the dtype of ``g``; this is the reference formula the tests use.

        Parameters
        ----------
        g : ndarray
            Inner products <x, z>.
        sx, sz : ndarray
            Squared norms of x and z, broadcast against ``g`` (e.g. (n_x, 1) and (1, n_z)).

        Returns
        -------
        ndarray
            Values k(x, z), of the broadcast shape (NumPy in → NumPy out, CuPy in → CuPy out).

        Examples
        --------
        >>> import numpy as np
        >>> import pyfeat as pf
        >>> ntk = pf.kernels.get("ntk")
        >>> float(ntk.from_inner(np.array(1.0), np.array(1.0), np.array(1.0)))  # x = z, |x| = 1
        1.0
        >>> float(pf.kernels.get("arccos0").from_inner(np.array(0.0), np.array(1.0), np.array(1.0)))
        0.25
        """
        row = TABLE[self.name]
        p = [self.params.get(pname, default) for pname, default, _ in row.params]
        return row.reference(array_module(g), g, sx, sz, *p)

    def diagonal(self, sq: Any) -> Any:
        """Kernel values k(x, x) from sq = ``|x|^2``, in a form that cannot overflow where they do not.

        Distance kernels: 1. Cosine kernels: s^degree · k(u, u) for a unit vector u, with s =
        ``|x|^2`` + bias² (the table's ``degree``: ntk s, nngp s/2, arccos0 1/2). poly: its formula
        at g = sx = sz = sq.

        Parameters
        ----------
        sq : ndarray
            Squared norms of the rows.

        Returns
        -------
        ndarray
            Values k(x_i, x_i), of the shape and array type of ``sq``.

        Examples
        --------
        >>> import numpy as np
        >>> import pyfeat as pf
        >>> pf.kernels.get("ntk", bias=1.0).diagonal(np.array([3.0, 1e300]))
        array([4.e+000, 1.e+300])
        """
        xp = array_module(sq)
        row = TABLE[self.name]
        if self.name in DISTANCE_KERNELS:
            return xp.ones_like(sq)
        if row.degree is None:
            return self.from_inner(sq, sq, sq)
        one = xp.ones_like(sq)
        unit = self.without_bias().from_inner(one, one, one)
        return unit * (sq + self.bias**2) ** row.degree

    @property
    def bias(self) -> float:
        """The ``bias`` beta of a cosine kernel (0 for the others).

        Examples
        --------
        >>> import pyfeat as pf
        >>> pf.kernels.get("ntk", bias=0.5).bias, pf.kernels.get("rbf").bias
        (0.5, 0.0)
        """
        return float(self.params.get("bias", 0.0))

    def from_differences(self) -> KernelSpec:
        """This distance kernel (rbf, laplace) evaluated from the differences x − z.

        The ops form ``|x − z|²`` from inner products (one GEMM), good to about 4·eps·R² for rows of
        norm up to R; where that error would exceed 1 % of the kernel's exponent (a bandwidth
        small for the norms and dtype, or norms whose squares overflow) they switch to this
        form, ``Σ_k ((x_k − z_k)/h)²`` in float64 (no cancellation, no overflow to NaN), at the
        cost of an elementwise pass per pair instead of a GEMM.

        Returns
        -------
        KernelSpec
            A copy with ``differences`` set (equal to this kernel; its repr is the same).

        Raises
        ------
        ValueError
            For a kernel that is not a distance kernel.

        Examples
        --------
        >>> import pyfeat as pf
        >>> pf.kernels.get("rbf").from_differences().differences
        True
        """
        if self.name not in DISTANCE_KERNELS:
            raise ValueError(f"kernel {self.name!r} is not a distance kernel {DISTANCE_KERNELS}")
        return type(self)(self.name, self.params, differences=True)

    def without_bias(self) -> KernelSpec:
        """The same kernel with ``bias`` 0 (what the compiled code evaluates on (x, beta)).

        Returns
        -------
        KernelSpec
            This kernel when its bias is 0, else a copy of the same class with bias 0.

        Examples
        --------
        >>> import pyfeat as pf
        >>> pf.kernels.get("ntk", bias=0.5).without_bias()
        Kernel(name='ntk', params={'bias': 0.0})
        """
        return self if not self.bias else type(self)(self.name, {**self.params, "bias": 0.0})


def parse(kernel: str | KernelSpec, cls: type[KernelSpec] = KernelSpec, **params: float) -> KernelSpec:
    """A validated ``cls`` instance for a kernel name (aliases included) with ``params``.

    Parameters
    ----------
    kernel : str or KernelSpec
        A name of :func:`names` (case-insensitive), or a KernelSpec instance (returned
        validated; then no params may be given).
    cls : type, default KernelSpec
        The class built for a name (``pyfeat.kernels.get`` passes ``Kernel``).
    **params : float
        The kernel's parameters by name.

    Returns
    -------
    KernelSpec
        ``cls(name, params)`` with the alias resolved and every parameter checked and
        completed; for a KernelSpec ``kernel``, ``kernel.validated()``.

    Raises
    ------
    ValueError
        For an unknown name or a bad value.
    TypeError
        For an unknown parameter name or a wrong type.

    Examples
    --------
    >>> from pyfeat._kernel_table import parse
    >>> parse("arccos1")
    KernelSpec(name='nngp', params={'bias': 0.0})
    >>> parse("rbf", bandwidth=-1.0)
    Traceback (most recent call last):
    ...
    ValueError: kernel 'rbf': bandwidth must be > 0, got -1.0
    """
    if isinstance(kernel, KernelSpec):
        if params:
            raise TypeError("kernel: parameters cannot be given together with a Kernel instance")
        return kernel.validated()
    if not isinstance(kernel, str):
        raise TypeError(f"kernel: expected a kernel name (str) or a Kernel, got {type(kernel).__name__}")
    key = ALIASES.get(kernel.lower(), kernel.lower())
    if key not in TABLE:
        raise ValueError(f"kernel: unknown kernel {kernel!r}; expected one of {names()}")
    return cls(key, _check_params(key, params))
