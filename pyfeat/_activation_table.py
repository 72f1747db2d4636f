"""The activations of the Taylor models (seed 002): name, integer code and float64 reference
formulas of σ, σ' and σ'', defined once.

The quadratic Taylor term f⁽²⁾ = (1/(2√m)) Σ_r a_r σ''(w0_r·x)(w_r·x)² needs a σ'' that is not
zero almost everywhere, which rules out the ReLU (its σ'' is a delta at 0):

==============  =================  ===================  ===============  ======================
name            σ(t)               σ'(t)                σ''(t)           why
==============  =================  ===================  ===============  ======================
``"relu3"``     relu(t)³/6         relu(t)²/2           relu(t)          σ'' the ReLU itself:
                                                                         Lipschitz, unbounded
                                                                         features (default)
``"softplus"``  log(1 + eᵗ)        1/(1 + e⁻ᵗ)          p(1 − p)         a smooth ReLU; every
                                                                         derivative bounded
``"relu2"``     relu(t)²/2         relu(t)              1[t ≥ 0]         σ'' the ReLU gate
``"cubic"``     t³/6               t²/2                 t                a polynomial: f⁽²⁾ is
                                                                         a cubic polynomial
==============  =================  ===================  ===============  ======================

(p = 1/(1 + e⁻ᵗ).) The compiled backends evaluate the same formulas by ``code``
(``csrc/include/pyfeat/taylor_math.hpp`` on the GPU and in the host tests, ``_taylor_term`` in
``pyfeat.ops._numba``); tests/test_core_math.py checks the header's codes against this table.

This module sits below ``pyfeat.ops``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["TABLE", "Activation", "parse", "names"]


def _relu(t):
    return np.maximum(t, 0.0)


def _logistic(t):
    """p = 1/(1 + e⁻ᵗ), from e = e^-|t| (no overflow)."""
    e = np.exp(-np.abs(t))
    return np.where(t >= 0, 1.0, e) / (1.0 + e)


def _logistic_slope(t):
    """p(1 − p) = e/(1 + e)², e = e^-|t|: accurate where p is near 1 too."""
    e = np.exp(-np.abs(t))
    return e / (1.0 + e) ** 2


@dataclass(frozen=True)
class Activation:
    """One activation: its code in the compiled backends and its float64 formulas (NumPy)."""

    name: str
    code: int
    value: object
    first: object
    second: object

    def derivative(self, t, k):
        """σ⁽ᵏ⁾(t) for k = 0, 1, 2 (float64)."""
        return (self.value, self.first, self.second)[k](np.asarray(t, dtype=np.float64))


TABLE = {
    "relu3": Activation("relu3", 0, lambda t: _relu(t) ** 3 / 6, lambda t: _relu(t) ** 2 / 2, _relu),
    "softplus": Activation("softplus", 1, lambda t: np.logaddexp(0.0, t), _logistic, _logistic_slope),
    "relu2": Activation("relu2", 2, lambda t: _relu(t) ** 2 / 2, _relu, lambda t: (t >= 0).astype(np.float64)),
    "cubic": Activation("cubic", 3, lambda t: t**3 / 6, lambda t: t**2 / 2, lambda t: t),
}


def names():
    return tuple(TABLE)


def parse(activation, name="activation"):
    """The Activation of a name (ValueError naming ``name`` otherwise)."""
    if isinstance(activation, Activation):
        return activation
    if not isinstance(activation, str) or activation not in TABLE:
        hint = " (σ'' of the ReLU is 0 almost everywhere: f⁽²⁾ would vanish)" if activation == "relu" else ""
        raise ValueError(f"{name} must be one of {names()}, got {activation!r}{hint}")
    return TABLE[activation]
