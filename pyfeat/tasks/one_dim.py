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

    def __init__(self, append_one: bool = False):
        self.append_one = bool(append_one)
        self.d = 2 if self.append_one else 1

    def _fill_inputs(self, rng, out):
        out[:, 0] = rng.random(out.shape[0], dtype=out.dtype)
        out[:, 0] *= 2
        out[:, 0] -= 1
        if self.append_one:
            out[:, 1] = 1

    def __call__(self, X: np.ndarray) -> np.ndarray:
        """The target f*(x) on the rows of X (n, d), from the first column, float64.

        Parameters
        ----------
        X : ndarray of shape (n, d)
            Inputs: x in the first column (d = 2 with ``append_one``: the second is ignored).

        Returns
        -------
        ndarray of shape (n,)
            Values f*(x_i), float64.

        Raises
        ------
        ValueError
            When X is not (n, d) with the task's d.

        Examples
        --------
        >>> import numpy as np
        >>> import pyfeat as pf
        >>> pf.tasks.Heaviside1D()(np.array([[-0.5], [0.0], [0.5]]))
        array([0., 1., 1.])
        """
        self._check_X(X)
        return self._f(array_module(X).asarray(X[:, 0], dtype=np.float64))

    def __repr__(self):
        return f"{type(self).__name__}({self._describe()}append_one={self.append_one})"

    def _describe(self):
        return ""


class Heaviside1D(_Uniform1D):
    """Heaviside step f*(x) = 1[x ≥ 0], x ~ Unif[−1, 1] (seed 001, the slides' 1-D example).

    Exact E f* = 1/2, Var f* = 1/4.

    Parameters
    ----------
    append_one : bool, default False
        Rows (x, 1) (d = 2) instead of (x,) (d = 1), so that bias-free ReLU features and the
        NTK of seed 003 can represent a threshold at 0; f* reads the first column either way.

    Attributes
    ----------
    d : int
        1, or 2 with ``append_one``.
    mean : float
        E f* = 1/2.
    variance : float
        Var f* = 1/4.

    See Also
    --------
    SmoothStep1D : Its smooth counterpart.

    Examples
    --------
    >>> import pyfeat as pf
    >>> task = pf.tasks.Heaviside1D(append_one=True)
    >>> X, y = task.sample(10_000, seed=1)
    >>> X.shape, float(X[:, 1].min()), round(float(y.mean()), 1), task.mean
    ((10000, 2), 1.0, 0.5, 0.5)
    """

    mean = 0.5
    variance = 0.25

    def _f(self, x):
        return (x >= 0).astype(np.float64)


class SmoothStep1D(_Uniform1D):
    """Smooth step f*(x) = (1 + tanh(x/w))/2, x ~ Unif[−1, 1].

    The smooth counterpart of :class:`Heaviside1D` (→ 1[x ≥ 0] as the width w → 0). Exact
    E f* = 1/2 (odd part) and Var f* = (1 − w·tanh(1/w))/4, from
    ∫₀¹ tanh²(x/w) dx = 1 − w·tanh(1/w).

    Parameters
    ----------
    width : float, default 0.1
        The width w > 0.
    append_one : bool, default False
        Rows (x, 1) (d = 2) instead of (x,), as in :class:`Heaviside1D`.

    Attributes
    ----------
    d : int
        1, or 2 with ``append_one``.
    mean : float
        E f* = 1/2.

    Raises
    ------
    ValueError
        When ``width`` is not a positive finite number.

    Examples
    --------
    >>> import numpy as np
    >>> import pyfeat as pf
    >>> task = pf.tasks.SmoothStep1D(width=0.1)
    >>> task(np.array([[-1.0], [0.0], [1.0]])).round(6)
    array([0. , 0.5, 1. ])
    >>> round(task.variance, 4)
    0.225
    """

    mean = 0.5

    def __init__(self, width: float = 0.1, append_one: bool = False):
        self.width = check_float("width", width, 0.0, strict=True)
        super().__init__(append_one)

    @property
    def variance(self) -> float:
        """Var f* = (1 − w·tanh(1/w))/4, exact.

        Examples
        --------
        >>> import pyfeat as pf
        >>> round(pf.tasks.SmoothStep1D(width=0.5).variance, 6)
        0.129497
        """
        return (1.0 - self.width * math.tanh(1.0 / self.width)) / 4.0

    def _f(self, x):
        xp = array_module(x)
        return (1.0 + xp.tanh(x / self.width)) / 2.0

    def _describe(self):
        return f"width={self.width:g}, "
