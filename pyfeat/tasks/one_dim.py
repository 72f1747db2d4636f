"""The 1-D examples of seed 001 (the slides' "simple 1-D example: Heaviside function", and a
smooth counterpart, to contrast how kernels and networks handle smoothness)."""

from __future__ import annotations

import math

import numpy as np

from pyfeat.backend import array_module
from pyfeat.tasks._base import Task, check_float


class _Uniform1D(Task):
    """x ~ Unif[−1, 1] (d = 1); with ``append_one=True`` the rows are (x, 1) (d = 2), so that
    bias-free ReLU features and the NTK of seed 003 can represent a threshold at 0 — f* reads
    the first column either way."""

    def __init__(self, append_one=False):
        self.append_one = bool(append_one)
        self.d = 2 if self.append_one else 1

    def _fill_inputs(self, rng, out):
        out[:, 0] = rng.random(out.shape[0], dtype=out.dtype)
        out[:, 0] *= 2
        out[:, 0] -= 1
        if self.append_one:
            out[:, 1] = 1

    def __call__(self, X):
        """f*(x) on the rows of X (n, d), from the first column, float64."""
        self._check_X(X)
        return self._f(array_module(X).asarray(X[:, 0], dtype=np.float64))

    def __repr__(self):
        return f"{type(self).__name__}({self._describe()}append_one={self.append_one})"

    def _describe(self):
        return ""


class Heaviside1D(_Uniform1D):
    """f*(x) = 1[x ≥ 0], x ~ Unif[−1, 1] (seed 001, the slides' 1-D example).
    Exact E f* = 1/2, Var f* = 1/4."""

    mean = 0.5
    variance = 0.25

    def _f(self, x):
        return (x >= 0).astype(np.float64)


class SmoothStep1D(_Uniform1D):
    """f*(x) = (1 + tanh(x/w))/2, x ~ Unif[−1, 1]: the smooth counterpart of :class:`Heaviside1D`
    (→ 1[x ≥ 0] as the width w → 0). Exact E f* = 1/2 (odd part) and
    Var f* = (1 − w·tanh(1/w))/4, from ∫₀¹ tanh²(x/w) dx = 1 − w·tanh(1/w)."""

    mean = 0.5

    def __init__(self, width=0.1, append_one=False):
        self.width = check_float("width", width, 0.0, strict=True)
        super().__init__(append_one)

    @property
    def variance(self):
        return (1.0 - self.width * math.tanh(1.0 / self.width)) / 4.0

    def _f(self, x):
        xp = array_module(x)
        return (1.0 + xp.tanh(x / self.width)) / 2.0

    def _describe(self):
        return f"width={self.width:g}, "
