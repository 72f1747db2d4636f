"""Kernels: :func:`get` a kernel by name, evaluate it, and the empirical NTK of a finite network.

The formulas, names, codes and parameters live in one table, ``pyfeat._kernel_table`` (below the
ops; its docstring lists every formula). This module sits above ``pyfeat.ops``: a
:class:`Kernel` is a ``KernelSpec`` of that table that can also be called on data, and
:func:`empirical_ntk` is computed with the ops.

- ``ntk``:      ``<x,z>(pi - t)/(2 pi) + |x||z|((pi - t) cos t + sin t)/(2 pi)``, t = angle(x, z)
- ``nngp`` (alias ``arccos1``): ``|x||z|((pi - t) cos t + sin t)/(2 pi)``;  ``arccos0``: ``(pi - t)/(2 pi)``
- ``rbf``: ``exp(-|x - z|^2 / (2 bandwidth^2))``;  ``laplace``: ``exp(-|x - z| / bandwidth)``
- ``poly``: ``(gamma <x,z> + coef0)^degree``
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from pyfeat import ops
from pyfeat._kernel_table import KernelSpec, names, parse
from pyfeat.backend import array_module

__all__ = ["Kernel", "get", "names", "empirical_ntk"]


@dataclass(frozen=True)
class Kernel(KernelSpec):
    """A kernel of `names()` with its parameters; build it with :func:`get`.

    Any op that takes ``kernel=`` takes a Kernel (or its name). Calling it gives the kernel
    matrix.

    Parameters
    ----------
    name : str
        The kernel's name (an alias is resolved by :func:`get`, not here).
    params : dict, optional
        Its parameters by name; :func:`get` checks them and fills in the defaults.
    differences : bool, default False
        For rbf/laplace only: evaluate the kernel from the differences x − z instead of inner
        products (:meth:`from_differences`; the ops and KernelRidge choose it where inner
        products cannot resolve the kernel).

    See Also
    --------
    get : Build a validated Kernel by name.

    Examples
    --------
    >>> import pyfeat as pf
    >>> k = pf.kernels.get("rbf", bandwidth=2.0)
    >>> k
    Kernel(name='rbf', params={'bandwidth': 2.0})
    >>> isinstance(k, pf.kernels.Kernel)
    True
    """

    def __call__(self, X: ArrayLike, Z: ArrayLike | None = None) -> np.ndarray:
        """The kernel matrix K(X, Z) (small sizes; see ``pyfeat.ops.kernel_matrix`` for large).

        Parameters
        ----------
        X : array_like of shape (n_x, d)
            Rows x_i (NumPy or CuPy).
        Z : array_like of shape (n_z, d), optional
            Rows z_j; None means Z = X.

        Returns
        -------
        ndarray of shape (n_x, n_z)
            K_ij = k(x_i, z_j), in the working dtype of ``pyfeat.ops.kernel_matrix`` (float32
            for float32 X, else float64; NumPy in → NumPy out, CuPy in → CuPy out).

        Examples
        --------
        >>> import numpy as np
        >>> import pyfeat as pf
        >>> X = np.array([[1.0, 0.0], [0.0, 1.0]])
        >>> pf.kernels.get("ntk")(X)         # θ = π/2 off the diagonal: 1/(2π)
        array([[1.        , 0.1591...],
               [0.1591..., 1.        ]])
        """
        return ops.kernel_matrix(X, X if Z is None else Z, self)


def get(name: str | Kernel, **params: float) -> Kernel:
    """Return the kernel ``name`` with ``params`` (see the module docstring for the formulas).

    Parameters
    ----------
    name : str or Kernel
        "ntk", "nngp" (= "arccos1"), "arccos0", "rbf", "laplace" or "poly" (case-insensitive);
        or a :class:`Kernel`, returned validated (then no params may be given).
    **params : float
        "rbf", "laplace": ``bandwidth`` (> 0, default 1.0); "poly": ``gamma`` (default 1.0),
        ``coef0`` (default 1.0), ``degree`` (a positive integer, default 3); the arc-cosine
        kernels have none.

    Returns
    -------
    Kernel
        The kernel, its parameters checked and completed with the defaults.

    Raises
    ------
    ValueError
        For an unknown name or a bad parameter value.
    TypeError
        For an unknown parameter name.

    Examples
    --------
    >>> import pyfeat as pf
    >>> pf.kernels.get("poly", degree=2)
    Kernel(name='poly', params={'gamma': 1.0, 'coef0': 1.0, 'degree': 2})
    >>> pf.kernels.get("arccos1").name
    'nngp'
    >>> pf.kernels.get("rbf", width=1.0)
    Traceback (most recent call last):
    ...
    TypeError: kernel 'rbf': unknown parameter(s) ['width']; expected ['bandwidth']
    """
    kern = parse(name, Kernel, **params)
    return kern if isinstance(kern, Kernel) else Kernel(kern.name, kern.params)


def empirical_ntk(X: ArrayLike, Z: ArrayLike, W: ArrayLike, a: ArrayLike, b: ArrayLike | None = None, *,
                  layers: str = "both", block_size: int = 1024) -> np.ndarray:
    """Return the empirical NTK ∇_θf(x)·∇_θf(z) of the network f(x) = (1/√m) Σ_i a_i σ(w_i·x + b_i).

    Seed 003's parameterization with its names mapped to DESIGN's: W (m, d) holds the first-layer
    rows (seed 003's a_i ~ N(0, I_d)), ``a`` (m,) the output weights (seed 003's b_i ~ N(0, 1)),
    ``b`` (m,) biases or None (no bias parameters). With θ = (W, a[, b]):

        K_m(x, z) = (1/m) Σ_i [ σ(w_i·x + b_i) σ(w_i·z + b_i)
                               + a_i² σ'(w_i·x + b_i) σ'(w_i·z + b_i) (x·z + [b given]) ],

    σ = ReLU, σ'(u) = 1[u > 0]. ``layers``: "both" (θ = all parameters), "second" (θ = a: the
    first term alone) or "first" (θ = W[, b]: the second term alone). As m → ∞ with W, a
    Gaussian and b = None it converges to ``get("ntk")`` (the first term to "nngp", the second to
    x·z times "arccos0"). Other parameterizations: for f(x) = c Σ_i a_i σ(w_i·x + b_i) trained with
    every step s times the gradient, the kernel of the dynamics s∇_θf(x)·∇_θf(z) is this one
    whenever s c² = 1/m — as in each parameterization of ``pf.GDNetwork`` ("ntk", "mean_field",
    "standard"). Computed in float64 over blocks of ``block_size`` rows of X (σ(XWᵀ + b) by
    ``pyfeat.ops.relu_features``).

    Parameters
    ----------
    X : array_like of shape (n_x, d)
        Rows x.
    Z : array_like of shape (n_z, d)
        Rows z.
    W : array_like of shape (m, d)
        First-layer rows w_i.
    a : array_like of shape (m,)
        Output weights a_i.
    b : array_like of shape (m,), optional
        Biases b_i; None: no bias parameters.
    layers : {"both", "first", "second"}, default "both"
        The parameters θ: all of them, W[, b] (the second term alone) or a (the first term
        alone).
    block_size : int, default 1024
        Rows of X per block.

    Returns
    -------
    ndarray of shape (n_x, n_z)
        K_m(x_i, z_j), float64 (NumPy in → NumPy out, CuPy in → CuPy out).

    Raises
    ------
    ValueError
        For an unknown ``layers``, or shapes that do not match (named).

    See Also
    --------
    get : The kernels, "ntk" among them.

    Examples
    --------
    >>> import numpy as np
    >>> import pyfeat as pf
    >>> rng = np.random.default_rng(0)
    >>> X, W, a = rng.standard_normal((4, 3)), rng.standard_normal((5000, 3)), rng.standard_normal(5000)
    >>> K = pf.kernels.empirical_ntk(X, X, W, a)
    >>> K.shape, bool(np.allclose(K, K.T))
    ((4, 4), True)
    >>> parts = [pf.kernels.empirical_ntk(X, X, W, a, layers=l) for l in ("first", "second")]
    >>> bool(np.allclose(parts[0] + parts[1], K))
    True
    >>> K_inf = pf.kernels.get("ntk")(X)  # the m → ∞ limit, for Gaussian W and a
    >>> bool(np.abs(K - K_inf).max() < 0.1 * np.abs(K_inf).max())
    True
    """
    if layers not in ("both", "first", "second"):
        raise ValueError(f"empirical_ntk: layers must be 'both', 'first' or 'second', got {layers!r}")
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
    phi_z = ops.relu_features(Z, W, b)
    step_z = (phi_z > 0) * (a * a)
    out = xp.empty((X.shape[0], Z.shape[0]))
    for s in range(0, X.shape[0], block_size):
        Xb = X[s : s + block_size]
        phi = ops.relu_features(Xb, W, b)
        inner = Xb @ Z.T + (0.0 if b is None else 1.0)
        first = ((phi > 0) * 1.0) @ step_z.T * inner if layers != "second" else 0.0
        second = phi @ phi_z.T if layers != "first" else 0.0
        out[s : s + block_size] = (second + first) / m
    return out
