"""The hot operations: one public function each, backend dispatch inside.

Every op takes NumPy or CuPy arrays (rows are samples) of any real dtype and layout. The working
dtype is set by X: float32 when X is float32 (or narrower), float64 otherwise. X is converted block
by block (never copied whole); the smaller inputs (W, a, b, y, V, Z) are converted once to
contiguous arrays of the working dtype. NumPy in -> NumPy out, CuPy in -> CuPy out (dask arrays: see
``pyfeat.ops._dask``; sums come back as NumPy, row-wise results as lazy dask arrays), whatever backend
runs the work (``backend=None``/"auto", "numba", "cuda", "numpy"; see ``pyfeat.backend``).
Sums over n accumulate in float64. Extra memory is bounded by ``block_size`` (rows per block)
or, when it is None, by ``pyfeat.backend.memory_budget()`` (64 MiB on the CPU, 1 GiB on the
GPU by default; environment variable PYFEAT_MEMORY_BUDGET_MB), independent of n.

Bad inputs raise ValueError/TypeError naming the argument; a forced backend that cannot run here
raises RuntimeError saying why.

Inside pyfeat, models and solvers validate their data once and call ``pyfeat.ops.blocked`` (the
same blocked loops, without checks or copies) on a ``device(backend)``. How the ops are built
(one loop per op, written against a small per-backend interface): ``pyfeat.ops._device``.
"""

from __future__ import annotations


import functools

import numpy as np
from numpy.typing import ArrayLike

from pyfeat import _activation_table
from pyfeat._dask import is_dask
from pyfeat._kernel_table import KernelSpec
from pyfeat._kernel_table import parse as _parse_kernel
from pyfeat._memory import hint
from pyfeat.ops import _dask, blocked
from pyfeat.ops._device import Device, device
from pyfeat.ops._validate import Args as _Args
from pyfeat.ops._validate import block_size as _block

__all__ = [
    "first_step_gradient",
    "residual_gradient",
    "network_gradient",
    "relu_features",
    "relu_gram",
    "relu_predict",
    "relu_transpose",
    "taylor_gradient",
    "taylor_predict",
    "kernel_matvec",
    "kernel_matrix",
    "device",
    "Device",
]


def _checked_arithmetic(op):
    """Run the op without NumPy's overflow warnings: a result that overflowed is reported as a
    ValueError by its checks instead (``_validate.Args.result``). The network ops check X's
    finiteness in their blocked loop (``blocked.NonFiniteRows``), reported here under the op's name."""

    @functools.wraps(op)
    def call(*args, **kwargs):
        try:
            with np.errstate(over="ignore", invalid="ignore", under="ignore"):
                return op(*args, **kwargs)
        except blocked.NonFiniteRows as error:
            raise ValueError(f"{op.__name__}: {error}") from None

    return call


def _loss(op, sq, n):
    """L = Σr²/(2n) as a float, or ValueError when it is not representable."""
    loss = float(sq) / (2 * n)
    if not np.isfinite(loss):
        raise ValueError(f"{op}: the loss is not representable (the residuals overflow float64)")
    return loss


def _network_args(op, backend, X, y, W, a, b, y_name="y"):
    """The checked (args, X, y, W, a, b) of an op on a network f(x) = aᵀ relu(W x + b)."""
    args = _Args(op, backend)
    X = args.matrix("X", X, finite_in_loop=True)
    n, d = X.shape
    y = args.vector(y_name, y, n)
    W = args.matrix("W", W, cols=d, cols_name="X.shape[1]")
    m = W.shape[0]
    a = args.vector("a", a, m, length_name="W.shape[0]")
    return args, X, y, W, a, args.bias(b, m)


@_checked_arithmetic
def first_step_gradient(X: ArrayLike, y: ArrayLike, W: ArrayLike, a: ArrayLike, b: ArrayLike | None = None, *,
                        backend: str | None = None, block_size: int | None = None) -> np.ndarray:
    """First-step feature gradient of Algorithm 1: ∇_W L at a network with f ≡ 0.

    With L = (1/n) Σ_i (f(x_i) − y_i)², f(x) = aᵀ relu(W x + b) and f ≡ 0 (symmetric init)::

        G_j = −(2/n) Σ_i y_i a_j 1[w_j·x_i + b_j ≥ 0] x_i        (G: m × d, row j = ∇_{w_j} L)

    computed as two GEMMs per row block with the mask fused between them: the n × m activation
    mask never exists beyond one block.

    Parameters
    ----------
    X : array_like of shape (n, d)
        Inputs (NumPy, CuPy or dask, any real dtype; converted block by block).
    y : array_like of shape (n,)
        Labels.
    W : array_like of shape (m, d)
        First layer, rows w_j.
    a : array_like of shape (m,)
        Second layer.
    b : array_like of shape (m,), optional
        Biases; None means zeros.
    backend : {None, "auto", "numba", "cuda", "numpy"}, default None
        Where the work runs (``pyfeat.backend.resolve``).
    block_size : int, optional
        Rows per block (default: from ``pyfeat.backend.memory_budget()``).

    Returns
    -------
    ndarray of shape (m, d)
        G in the working dtype (float32 for float32 X, else float64; accumulated in
        float64); NumPy in → NumPy out, CuPy in → CuPy out, dask in → NumPy out (the sum
        over the row chunks is added on the cluster, ``pyfeat.ops._dask``).

    Raises
    ------
    ValueError
        Naming the argument: wrong shapes, NaN/inf, empty arrays, an unknown backend or a bad
        block_size; or a result that is not representable in the working dtype.
    TypeError
        For a non-real dtype.
    RuntimeError
        When ``backend="cuda"`` cannot run here.

    Examples
    --------
    >>> import numpy as np
    >>> import pyfeat as pf
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.standard_normal((1000, 5)), rng.standard_normal(1000)
    >>> W, a = rng.standard_normal((4, 5)), np.array([1.0, -1.0, 1.0, -1.0])
    >>> G = pf.ops.first_step_gradient(X, y, W, a)
    >>> G.shape, G.dtype
    ((4, 5), dtype('float64'))
    >>> mask = X @ W.T >= 0                                   # 1[w_j·x_i ≥ 0], (n, m)
    >>> bool(np.allclose(G, -(2 / 1000) * (mask * y[:, None] * a).T @ X))
    True
    """
    if is_dask(X):
        kw = {"backend": backend, "block_size": block_size}
        return _dask.first_step_gradient(X, y, W, a, b, kw)
    args, X, y, W, a, b = _network_args("first_step_gradient", backend, X, y, W, a, b)
    out = blocked.first_step_gradient(args.device, X, y, W, a, b, _block(block_size))
    return args.result(out)


@_checked_arithmetic
def residual_gradient(X: ArrayLike, r: ArrayLike, W: ArrayLike, a: ArrayLike, b: ArrayLike | None = None, *,
                      backend: str | None = None, block_size: int | None = None) -> np.ndarray:
    """The first-step gradient weighted by residuals: ∇_W of (1/2n) Σ_i (f(x_i) − y_i)².

    For f(x) = aᵀ relu(W x + b), given the residuals r_i = f(x_i) − y_i::

        G_j = (1/n) Σ_i r_i a_j 1[w_j·x_i + b_j ≥ 0] x_i        (G: m × d)

    With r = −2y it is ``first_step_gradient``. Two GEMMs per row block with the mask fused
    between them, as there.

    Parameters
    ----------
    X : array_like of shape (n, d)
        Inputs (NumPy, CuPy or dask, any real dtype; converted block by block).
    r : array_like of shape (n,)
        Residuals (weights of the rows).
    W : array_like of shape (m, d)
        First layer, rows w_j.
    a : array_like of shape (m,)
        Second layer.
    b : array_like of shape (m,), optional
        Biases; None means zeros.
    backend : {None, "auto", "numba", "cuda", "numpy"}, default None
        Where the work runs (``pyfeat.backend.resolve``).
    block_size : int, optional
        Rows per block (default: from ``pyfeat.backend.memory_budget()``).

    Returns
    -------
    ndarray of shape (m, d)
        G in the working dtype (accumulated in float64); NumPy in → NumPy out, CuPy in → CuPy
        out, dask in → NumPy out.

    Raises
    ------
    ValueError
        Naming the argument: wrong shapes, NaN/inf, empty arrays, an unknown backend or a bad
        block_size; or a result that is not representable in the working dtype.
    TypeError
        For a non-real dtype.
    RuntimeError
        When ``backend="cuda"`` cannot run here.

    See Also
    --------
    network_gradient : The loss and every gradient of the network in one pass.

    Examples
    --------
    >>> import numpy as np
    >>> import pyfeat as pf
    >>> rng = np.random.default_rng(0)
    >>> X, r = rng.standard_normal((1000, 5)), rng.standard_normal(1000)
    >>> W, a = rng.standard_normal((4, 5)), rng.standard_normal(4)
    >>> G = pf.ops.residual_gradient(X, r, W, a)
    >>> mask = X @ W.T >= 0
    >>> bool(np.allclose(G, (mask * r[:, None] * a).T @ X / 1000))
    True
    >>> bool(np.allclose(pf.ops.residual_gradient(X, -2 * r, W, a), pf.ops.first_step_gradient(X, r, W, a)))
    True
    """
    if is_dask(X):
        return _dask.residual_gradient(X, r, W, a, b, {"backend": backend, "block_size": block_size})
    args, X, r, W, a, b = _network_args("residual_gradient", backend, X, r, W, a, b, y_name="r")
    return args.result(blocked.residual_gradient(args.device, X, r, W, a, b, _block(block_size)))


@_checked_arithmetic
def network_gradient(X: ArrayLike, y: ArrayLike, W: ArrayLike, a: ArrayLike, b: ArrayLike | None = None, *,
                     backend: str | None = None, block_size: int | None = None
                     ) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """Loss and gradients of L = (1/2n) Σ_i (f(x_i) − y_i)², f(x) = aᵀ relu(W x + b), in one pass.

    With r_i = f(x_i) − y_i and the ReLU derivative 1[w_j·x_i + b_j ≥ 0]::

        L = (1/2n) Σ_i r_i²
        ∇_W L = (1/n) Σ_i r_i a_j 1[w_j·x_i + b_j ≥ 0] x_i
        ∇_a L = (1/n) Σ_i r_i relu(w_j·x_i + b_j)
        ∇_b L = (1/n) Σ_i r_i a_j 1[w_j·x_i + b_j ≥ 0]

    Per row block: one GEMM Z = X_b Wᵀ, a fused pass (features, predictions, residuals, ∇_a and
    ∇_b, and the residual-weighted mask in place of Z), one GEMM Zᵀ X_b: 4·n·m·d FLOPs in all, the
    n × m activations never beyond one block.

    Parameters
    ----------
    X : array_like of shape (n, d)
        Inputs (NumPy, CuPy or dask, any real dtype; converted block by block).
    y : array_like of shape (n,)
        Labels.
    W : array_like of shape (m, d)
        First layer, rows w_j.
    a : array_like of shape (m,)
        Second layer.
    b : array_like of shape (m,), optional
        Biases; None means zeros.
    backend : {None, "auto", "numba", "cuda", "numpy"}, default None
        Where the work runs (``pyfeat.backend.resolve``).
    block_size : int, optional
        Rows per block (default: from ``pyfeat.backend.memory_budget()``).

    Returns
    -------
    L : float
        The loss.
    grad_W : ndarray of shape (m, d)
        ∇_W L, float64.
    grad_a : ndarray of shape (m,)
        ∇_a L, float64.
    grad_b : ndarray of shape (m,)
        ∇_b L, float64. NumPy in → NumPy out, CuPy in → CuPy out, dask in → NumPy out.

    Raises
    ------
    ValueError
        Naming the argument: wrong shapes, NaN/inf, empty arrays, an unknown backend or a bad
        block_size; or a result that is not representable.
    TypeError
        For a non-real dtype.
    RuntimeError
        When ``backend="cuda"`` cannot run here.

    See Also
    --------
    residual_gradient, relu_transpose : The first-layer and second-layer parts on their own.

    Examples
    --------
    >>> import numpy as np
    >>> import pyfeat as pf
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.standard_normal((1000, 5)), rng.standard_normal(1000)
    >>> W, a, b = rng.standard_normal((4, 5)), rng.standard_normal(4), rng.standard_normal(4)
    >>> L, gW, ga, gb = pf.ops.network_gradient(X, y, W, a, b)
    >>> U = X @ W.T + b
    >>> r = np.maximum(U, 0) @ a - y
    >>> bool(np.isclose(L, r @ r / 2000)), bool(np.allclose(ga, np.maximum(U, 0).T @ r / 1000))
    (True, True)
    >>> bool(np.allclose(gW, pf.ops.residual_gradient(X, r, W, a, b)))
    True
    """
    if is_dask(X):
        return _dask.network_gradient(X, y, W, a, b, {"backend": backend, "block_size": block_size})
    args, X, y, W, a, b = _network_args("network_gradient", backend, X, y, W, a, b)
    sq, gW, ga, gb = blocked.network_gradient(args.device, X, y, W, b, a, _block(block_size))
    n = X.shape[0]
    loss = _loss("network_gradient", sq, n)
    return loss, args.result(gW / n), args.result(ga / n), args.result(gb / n)


@_checked_arithmetic
def relu_features(X: ArrayLike, W: ArrayLike, b: ArrayLike | None = None, *, backend: str | None = None,
                  block_size: int | None = None) -> np.ndarray:
    """Φ = relu(X Wᵀ + b), shape (n, m), in the working dtype (materialized: small n only).

    Parameters
    ----------
    X : array_like of shape (n, d)
        Inputs (NumPy, CuPy or dask, any real dtype).
    W : array_like of shape (m, d)
        First layer.
    b : array_like of shape (m,), optional
        Biases; None means zeros.
    backend : {None, "auto", "numba", "cuda", "numpy"}, default None
        Where the work runs (``pyfeat.backend.resolve``).
    block_size : int, optional
        Rows per block (default: from ``pyfeat.backend.memory_budget()``).

    Returns
    -------
    ndarray of shape (n, m)
        Φ in the working dtype (float32 for float32 X, else float64); NumPy in → NumPy out,
        CuPy in → CuPy out, dask in → a lazy dask array chunked like X (``pyfeat.ops._dask``).

    Raises
    ------
    ValueError
        Naming the argument, for bad shapes or values, an unknown backend or block_size.
    TypeError
        For a non-real dtype.
    RuntimeError
        When ``backend="cuda"`` cannot run here.
    MemoryError
        Naming the n × m feature matrix, when it does not fit.

    See Also
    --------
    relu_gram, relu_predict : Stream over the rows instead of forming Φ.

    Examples
    --------
    >>> import numpy as np
    >>> import pyfeat as pf
    >>> X = np.array([[1.0, 2.0], [-1.0, 0.5]], dtype=np.float32)
    >>> W = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, -1.0]])
    >>> pf.ops.relu_features(X, W, b=np.array([0.0, 0.0, 0.5]))
    array([[1. , 2. , 0. ],
           [0. , 0.5, 0. ]], dtype=float32)
    """
    if is_dask(X):
        kw = {"backend": backend, "block_size": block_size}
        return _dask.relu_features(X, W, b, kw)
    args = _Args("relu_features", backend)
    X = args.matrix("X", X, finite_in_loop=True)
    W = args.matrix("W", W, cols=X.shape[1], cols_name="X.shape[1]")
    b = args.bias(b, W.shape[0])
    with hint(f"relu_features: the {X.shape[0]} × {W.shape[0]} feature matrix",
              "the number of rows, or use relu_gram / relu_predict, which stream over them"):
        return args.result(blocked.relu_features(args.device, X, W, b, _block(block_size)))


@_checked_arithmetic
def relu_gram(X: ArrayLike, W: ArrayLike, b: ArrayLike | None, y: ArrayLike | None = None, *,
              backend: str | None = None,
              block_size: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """(ΦᵀΦ, Φᵀy) with Φ = relu(X Wᵀ + b), accumulated over row blocks (Φ never exists whole).

    Both results are float64 (they feed a linear solve), shapes (m, m) and (m,) / (m, k).

    Parameters
    ----------
    X : array_like of shape (n, d)
        Inputs (NumPy, CuPy or dask, any real dtype; converted block by block).
    W : array_like of shape (m, d)
        First layer.
    b : array_like of shape (m,) or None
        Biases; None means zeros.
    y : array_like of shape (n,) or (n, k), optional
        Labels; None: the second result is None.
    backend : {None, "auto", "numba", "cuda", "numpy"}, default None
        Where the work runs (``pyfeat.backend.resolve``).
    block_size : int, optional
        Rows per block (default: from ``pyfeat.backend.memory_budget()``).

    Returns
    -------
    gram : ndarray of shape (m, m)
        ΦᵀΦ, float64, symmetric.
    rhs : ndarray of shape (m,) or (m, k), or None
        Φᵀy, float64; None when y is None. NumPy in → NumPy out, CuPy in → CuPy out, dask
        in → NumPy out (the sums over the row chunks are added on the cluster).

    Raises
    ------
    ValueError
        Naming the argument, for bad shapes or values, an unknown backend or block_size.
    TypeError
        For a non-real dtype.
    RuntimeError
        When ``backend="cuda"`` cannot run here.

    Examples
    --------
    >>> import numpy as np
    >>> import pyfeat as pf
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.standard_normal((1000, 5)).astype(np.float32), rng.standard_normal(1000)
    >>> W, b = rng.standard_normal((3, 5)), rng.standard_normal(3)
    >>> G, c = pf.ops.relu_gram(X, W, b, y, block_size=256)
    >>> G.shape, c.shape, G.dtype, c.dtype
    ((3, 3), (3,), dtype('float64'), dtype('float64'))
    >>> Phi = pf.ops.relu_features(X, W, b).astype(np.float64)
    >>> bool(np.allclose(G, Phi.T @ Phi, rtol=1e-5)), bool(np.allclose(c, Phi.T @ y, rtol=1e-5))
    (True, True)
    """
    if is_dask(X):
        kw = {"backend": backend, "block_size": block_size}
        return _dask.relu_gram(X, W, b, y, kw)
    args = _Args("relu_gram", backend)
    X = args.matrix("X", X, finite_in_loop=True)
    n, d = X.shape
    W = args.matrix("W", W, cols=d, cols_name="X.shape[1]")
    b = args.bias(b, W.shape[0])
    if y is not None:
        y = args.vector_or_matrix("y", y, n)
    G, c = blocked.relu_gram(args.device, X, W, b, y, _block(block_size))
    return args.result(G), (None if c is None else args.result(c))


@_checked_arithmetic
def relu_predict(X: ArrayLike, W: ArrayLike, b: ArrayLike | None, a: ArrayLike, *, backend: str | None = None,
                 block_size: int | None = None) -> np.ndarray:
    """Network output f(X) = relu(X Wᵀ + b) a, streamed over row blocks.

    a (m,) -> (n,), a (m, k) -> (n, k).

    Parameters
    ----------
    X : array_like of shape (n, d)
        Inputs (NumPy, CuPy or dask, any real dtype; converted block by block).
    W : array_like of shape (m, d)
        First layer.
    b : array_like of shape (m,) or None
        Biases; None means zeros.
    a : array_like of shape (m,) or (m, k)
        Second layer.
    backend : {None, "auto", "numba", "cuda", "numpy"}, default None
        Where the work runs (``pyfeat.backend.resolve``).
    block_size : int, optional
        Rows per block (default: from ``pyfeat.backend.memory_budget()``).

    Returns
    -------
    ndarray of shape (n,) or (n, k)
        Φa in the working dtype (float32 for float32 X, else float64); NumPy in → NumPy out,
        CuPy in → CuPy out, dask in → a lazy dask array chunked like X (``pyfeat.ops._dask``).

    Raises
    ------
    ValueError
        Naming the argument, for bad shapes or values, an unknown backend or block_size.
    TypeError
        For a non-real dtype.
    RuntimeError
        When ``backend="cuda"`` cannot run here.

    Examples
    --------
    >>> import numpy as np
    >>> import pyfeat as pf
    >>> X = np.array([[1.0, 2.0], [-1.0, 0.5]])
    >>> W, a = np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([1.0, -2.0])
    >>> pf.ops.relu_predict(X, W, None, a)                 # relu(x_1) − 2 relu(x_2)
    array([-3., -1.])
    """
    if is_dask(X):
        kw = {"backend": backend, "block_size": block_size}
        return _dask.relu_predict(X, W, b, a, kw)
    args = _Args("relu_predict", backend)
    X = args.matrix("X", X, finite_in_loop=True)
    W = args.matrix("W", W, cols=X.shape[1], cols_name="X.shape[1]")
    m = W.shape[0]
    b = args.bias(b, m)
    a = args.vector_or_matrix("a", a, m, length_name="W.shape[0]")
    return args.result(blocked.relu_predict(args.device, X, W, b, a, _block(block_size)))


@_checked_arithmetic
def relu_transpose(X: ArrayLike, W: ArrayLike, b: ArrayLike | None, V: ArrayLike, *, backend: str | None = None,
                   block_size: int | None = None) -> np.ndarray:
    """Φᵀ V with Φ = relu(X Wᵀ + b), streamed over row blocks (Φ never exists whole).

    Parameters
    ----------
    X : array_like of shape (n, d)
        Inputs (NumPy, CuPy or dask, any real dtype).
    W : array_like of shape (m, d)
        First layer.
    b : array_like of shape (m,) or None
        Biases; None means zeros.
    V : array_like of shape (n,) or (n, k)
        Weights of the rows (e.g. residuals).
    backend : {None, "auto", "numba", "cuda", "numpy"}, default None
        Where the work runs (``pyfeat.backend.resolve``).
    block_size : int, optional
        Rows per block (default: from ``pyfeat.backend.memory_budget()``).

    Returns
    -------
    ndarray of shape (m,) or (m, k)
        Φᵀ V in float64 (a sum over n); NumPy in → NumPy out, CuPy in → CuPy out, dask in →
        NumPy out.

    Raises
    ------
    ValueError
        Naming the argument, for bad shapes or values, an unknown backend or block_size.
    TypeError
        For a non-real dtype.
    RuntimeError
        When ``backend="cuda"`` cannot run here.

    See Also
    --------
    relu_gram : ΦᵀΦ and Φᵀy in one pass.

    Examples
    --------
    >>> import numpy as np
    >>> import pyfeat as pf
    >>> rng = np.random.default_rng(0)
    >>> X, v = rng.standard_normal((1000, 5)), rng.standard_normal(1000)
    >>> W, b = rng.standard_normal((3, 5)), rng.standard_normal(3)
    >>> c = pf.ops.relu_transpose(X, W, b, v, block_size=256)
    >>> c.shape, c.dtype
    ((3,), dtype('float64'))
    >>> bool(np.allclose(c, pf.ops.relu_features(X, W, b).T @ v))
    True
    """
    if is_dask(X):
        return _dask.relu_transpose(X, W, b, V, {"backend": backend, "block_size": block_size})
    args = _Args("relu_transpose", backend)
    X = args.matrix("X", X, finite_in_loop=True)
    W = args.matrix("W", W, cols=X.shape[1], cols_name="X.shape[1]")
    b = args.bias(b, W.shape[0])
    V = args.vector_or_matrix("V", V, X.shape[0])
    return args.result(blocked.relu_transpose(args.device, X, W, b, V, _block(block_size)))


def _taylor_args(op, backend, X, W0, W, a1, a2, b0, b, features):
    """The checked (args, X, W0, W, a1, a2, b0, b, features) of a Taylor-model op."""
    args = _Args(op, backend)
    X = args.matrix("X", X)
    D = X.shape[1]
    if features is not None:
        if not isinstance(features, (tuple, list)) or len(features) != 2:
            raise ValueError(f"{op}: features must be None or a pair (V, c), got {type(features).__name__}")
        V = args.matrix("V", features[0], cols=D, cols_name="X.shape[1]")
        features = (V, args.vector("c", features[1], V.shape[0], length_name="V.shape[0]"))
        D = V.shape[0]
    width = "V.shape[0]" if features is not None else "X.shape[1]"
    W0 = args.matrix("W0", W0, cols=D, cols_name=width)
    m = W0.shape[0]
    W = args.matrix("W", W, cols=D, cols_name=width)
    if W.shape[0] != m:
        raise ValueError(f"{op}: W must have shape {W0.shape} (that of W0), got {W.shape}")
    a1, a2 = (args.vector(name, v, m, length_name="W0.shape[0]") for name, v in (("a1", a1), ("a2", a2)))
    b0, b = (args.device.xp.zeros(m, dtype=args.dtype) if v is None else
             args.vector(name, v, m, length_name="W0.shape[0]") for name, v in (("b0", b0), ("b", b)))
    return args, X, W0, W, a1, a2, b0, b, features


_TAYLOR_PARAMETERS = """X : array_like of shape (n, d)
        Inputs (NumPy, CuPy or dask, any real dtype; converted block by block).
    {y}W0 : array_like of shape (m, D)
        The expansion point's first layer (D = d, or V.shape[0] with ``features``).
    W : array_like of shape (m, D)
        The movement.
    a1, a2 : array_like of shape (m,)
        Weights of the linear and the quadratic term.
    activation : {"relu3", "softplus", "relu2", "cubic"}, default "relu3"
        σ (``pyfeat._activation_table``).
    b0, b : array_like of shape (m,), optional
        Biases of the expansion point and of the movement; None means zeros.
    features : pair (V, c) of arrays of shapes (D, d) and (D,), optional
        A fixed representation φ(x) = relu(Vx + c), computed per row block; None: φ(x) = x.
    backend : {None, "auto", "numba", "cuda", "numpy"}, default None
        Where the work runs (``pyfeat.backend.resolve``).
    block_size : int, optional
        Rows per block (default: from ``pyfeat.backend.memory_budget()``)."""

_TAYLOR_RAISES = """ValueError
        Naming the argument: wrong shapes, NaN/inf, empty arrays, an unknown activation, backend
        or block_size; or a result that is not representable.
    TypeError
        For a non-real dtype.
    RuntimeError
        When ``backend="cuda"`` cannot run here."""


@_checked_arithmetic
def taylor_gradient(X: ArrayLike, y: ArrayLike, W0: ArrayLike, W: ArrayLike, a1: ArrayLike, a2: ArrayLike,
                    activation: str = "relu3", *, b0: ArrayLike | None = None, b: ArrayLike | None = None,
                    features: tuple[ArrayLike, ArrayLike] | None = None, backend: str | None = None,
                    block_size: int | None = None) -> tuple[float, np.ndarray, np.ndarray]:
    """Loss and gradients of the Taylor model of a two-layer network (seed 002) in one pass.

    With φ(x) = x, or φ(x) = relu(Vx + c) for ``features = (V, c)``, u0_r = w0_r·φ(x) + b0_r,
    u_r = w_r·φ(x) + b_r and the activation σ::

        f(x) = Σ_r [a1_r σ'(u0_r) u_r + a2_r σ''(u0_r) u_r²/2],      r_i = f(x_i) − y_i,
        L = (1/2n) Σ_i r_i²,   ∇_W L = (1/n) Σ_i P_i φ(x_i)ᵀ,   ∇_b L = (1/n) Σ_i P_i,
        P_ir = r_i [a1_r σ'(u0_ir) + a2_r σ''(u0_ir) u_ir]

    (W0, b0 fixed: the expansion point). With a1 = s a/√m and a2 = a/√m this is the linear plus
    quadratic term f⁽¹⁾ + f⁽²⁾ of f_{W0+SW}(x) = (1/√m) Σ_r a_r σ((w0_r + s_r w_r)·x) around W0.
    Per row block one GEMM of width 2m (φ [W0; W]ᵀ), a fused epilogue, one GEMM Pᵀφ: 6·n·m·D
    FLOPs, memory independent of n.

    Parameters
    ----------
    {parameters}

    Returns
    -------
    L : float
        The loss.
    grad_W : ndarray of shape (m, D)
        ∇_W L, float64.
    grad_b : ndarray of shape (m,)
        ∇_b L, float64. NumPy in → NumPy out, CuPy in → CuPy out, dask in → NumPy out.

    Raises
    ------
    {raises}

    See Also
    --------
    taylor_predict : The model f itself.

    Examples
    --------
    >>> import numpy as np
    >>> import pyfeat as pf
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.standard_normal((500, 3)), rng.standard_normal(500)
    >>> W0, W = rng.standard_normal((4, 3)), 0.1 * rng.standard_normal((4, 3))
    >>> a1, a2 = rng.standard_normal(4), rng.standard_normal(4)
    >>> L, gW, gb = pf.ops.taylor_gradient(X, y, W0, W, a1, a2, "cubic")
    >>> U0, U = X @ W0.T, X @ W.T  # cubic: σ = t³/6, σ' = t²/2, σ'' = t
    >>> r = (U0**2 / 2 * U) @ a1 + (U0 * U**2 / 2) @ a2 - y
    >>> P = r[:, None] * (a1 * U0**2 / 2 + a2 * U0 * U)
    >>> bool(np.isclose(L, r @ r / 1000)), bool(np.allclose(gW, P.T @ X / 500))
    (True, True)
    """
    act = _activation_table.parse(activation)
    if is_dask(X):
        return _dask.taylor_gradient(X, y, W0, W, a1, a2, b0, b, features,
                                     {"activation": act.name, "backend": backend, "block_size": block_size})
    args, X, W0, W, a1, a2, b0, b, features = _taylor_args("taylor_gradient", backend, X, W0, W, a1, a2, b0, b,
                                                            features)
    y = args.vector("y", y, X.shape[0])
    sq, gW, gb = blocked.taylor_gradient(args.device, X, y, W0, b0, W, b, a1, a2, act, features, _block(block_size))
    n = X.shape[0]
    loss = _loss("taylor_gradient", sq, n)
    return loss, args.result(gW / n), args.result(gb / n)


@_checked_arithmetic
def taylor_predict(X: ArrayLike, W0: ArrayLike, W: ArrayLike, a1: ArrayLike, a2: ArrayLike,
                   activation: str = "relu3", *, b0: ArrayLike | None = None, b: ArrayLike | None = None,
                   features: tuple[ArrayLike, ArrayLike] | None = None, backend: str | None = None,
                   block_size: int | None = None) -> np.ndarray:
    """The Taylor model f(x) of ``taylor_gradient`` for every row of X, streamed over row blocks.

    f(x) = Σ_r [a1_r σ'(u0_r) u_r + a2_r σ''(u0_r) u_r²/2], u0 = W0 φ(x) + b0, u = W φ(x) + b.

    Parameters
    ----------
    {parameters}

    Returns
    -------
    ndarray of shape (n,)
        The values f(x_i), in the working dtype (each row's sum over the m neurons in float64); NumPy in →
        NumPy out, CuPy in → CuPy out, dask in → a lazy dask array chunked like X.

    Raises
    ------
    {raises}

    See Also
    --------
    taylor_gradient : Its loss and gradients.

    Examples
    --------
    >>> import numpy as np
    >>> import pyfeat as pf
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((200, 3))
    >>> W0, W = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    >>> a1, a2 = np.zeros(4), np.ones(4)
    >>> f = pf.ops.taylor_predict(X, W0, W, a1, a2, "relu3")  # σ'' = relu
    >>> bool(np.allclose(f, np.maximum(X @ W0.T, 0) * (X @ W.T) ** 2 @ a2 / 2))
    True
    """
    act = _activation_table.parse(activation)
    if is_dask(X):
        return _dask.taylor_predict(X, W0, W, a1, a2, b0, b, features,
                                    {"activation": act.name, "backend": backend, "block_size": block_size})
    args, X, W0, W, a1, a2, b0, b, features = _taylor_args("taylor_predict", backend, X, W0, W, a1, a2, b0, b,
                                                            features)
    return args.result(blocked.taylor_predict(args.device, X, W0, b0, W, b, a1, a2, act, features,
                                              _block(block_size)))


for _op in (taylor_gradient, taylor_predict):  # the shared parameter and error sections
    if _op.__doc__:  # (None under python -OO)
        _y = "y : array_like of shape (n,)\n        Labels.\n    " if _op is taylor_gradient else ""
        _op.__doc__ = (_op.__doc__.replace("{parameters}", _TAYLOR_PARAMETERS.replace("{y}", _y))
                       .replace("{raises}", _TAYLOR_RAISES))


@_checked_arithmetic
def kernel_matvec(X: ArrayLike, Z: ArrayLike, V: ArrayLike, kernel: str | KernelSpec = "ntk", *,
                  backend: str | None = None, block_size: int | None = None) -> np.ndarray:
    """K(X, Z) @ V without forming K, tile by tile.

    (n_x, n_z) tiles of inner products X Zᵀ, the kernel function applied to each tile and
    reduced against V at once (see ``pyfeat.kernels``); tiles accumulate in float64.

    Parameters
    ----------
    X : array_like of shape (n_x, d)
        Rows x_i (NumPy, CuPy or dask, any real dtype; converted block by block).
    Z : array_like of shape (n_z, d)
        Rows z_j.
    V : array_like of shape (n_z,) or (n_z, k)
        The vector(s) K multiplies.
    kernel : str or Kernel, default "ntk"
        A name of ``pyfeat.kernels.names()`` or a ``pyfeat.kernels.get(...)`` result.
    backend : {None, "auto", "numba", "cuda", "numpy"}, default None
        Where the work runs (``pyfeat.backend.resolve``).
    block_size : int, optional
        Rows per block (default: from ``pyfeat.backend.memory_budget()``).

    Returns
    -------
    ndarray of shape (n_x,) or (n_x, k)
        K(X, Z) V in the working dtype (float32 for float32 X, else float64); NumPy in →
        NumPy out, CuPy in → CuPy out, dask in → a lazy dask array chunked like X.

    Raises
    ------
    ValueError
        Naming the argument, for bad shapes or values, an unknown kernel, backend or
        block_size, or a bad kernel parameter.
    TypeError
        For a non-real dtype or an unknown kernel parameter.
    RuntimeError
        When ``backend="cuda"`` cannot run here.

    See Also
    --------
    kernel_matrix : K(X, Z) itself, for small sizes.

    Examples
    --------
    >>> import numpy as np
    >>> import pyfeat as pf
    >>> rng = np.random.default_rng(0)
    >>> X, Z, V = rng.standard_normal((300, 4)), rng.standard_normal((200, 4)), rng.standard_normal(200)
    >>> KV = pf.ops.kernel_matvec(X, Z, V, kernel="rbf", block_size=64)
    >>> KV.shape, bool(np.allclose(KV, pf.ops.kernel_matrix(X, Z, kernel="rbf") @ V))
    ((300,), True)
    """
    if is_dask(X):
        kw = {"backend": backend, "block_size": block_size}
        return _dask.kernel_matvec(X, Z, V, _parse_kernel(kernel), kw)
    args = _Args("kernel_matvec", backend)
    kern = args.kernel(kernel)
    X = args.matrix("X", X)
    Z = args.matrix("Z", Z, cols=X.shape[1], cols_name="X.shape[1]")
    V = args.vector_or_matrix("V", V, Z.shape[0], length_name="Z.shape[0]")
    kern = args.kernel_for(kern, X, Z)
    V2 = V.reshape(-1, 1) if V.ndim == 1 else V
    out = blocked.kernel_matvec(args.device, X, Z, V2, kern, _block(block_size))
    return args.result(out[:, 0] if V.ndim == 1 else out)


@_checked_arithmetic
def kernel_matrix(X: ArrayLike, Z: ArrayLike | None = None, kernel: str | KernelSpec = "ntk", *,
                  backend: str | None = None, block_size: int | None = None) -> np.ndarray:
    """K(X, Z), shape (n_x, n_z), in the working dtype (Z=None means Z = X).

    The matrix is materialized (what the caller asked for); temporaries are bounded by blocks.

    Parameters
    ----------
    X : array_like of shape (n_x, d)
        Rows x_i (NumPy, CuPy or dask, any real dtype).
    Z : array_like of shape (n_z, d), optional
        Rows z_j; None means Z = X.
    kernel : str or Kernel, default "ntk"
        A name of ``pyfeat.kernels.names()`` or a ``pyfeat.kernels.get(...)`` result.
    backend : {None, "auto", "numba", "cuda", "numpy"}, default None
        Where the work runs (``pyfeat.backend.resolve``).
    block_size : int, optional
        Rows per block (default: from ``pyfeat.backend.memory_budget()``).

    Returns
    -------
    ndarray of shape (n_x, n_z)
        K_ij = k(x_i, z_j) in the working dtype (float32 for float32 X, else float64); NumPy
        in → NumPy out, CuPy in → CuPy out, dask in → a lazy dask array chunked like X.

    Raises
    ------
    ValueError
        Naming the argument, for bad shapes or values, an unknown kernel, backend or
        block_size, or a bad kernel parameter.
    TypeError
        For a non-real dtype or an unknown kernel parameter.
    RuntimeError
        When ``backend="cuda"`` cannot run here.
    MemoryError
        Naming the n_x × n_z kernel matrix, when it does not fit.

    See Also
    --------
    kernel_matvec : K(X, Z) V without forming K.

    Examples
    --------
    >>> import numpy as np
    >>> import pyfeat as pf
    >>> X = np.array([[1.0, 0.0], [0.0, 2.0]])
    >>> pf.ops.kernel_matrix(X, kernel="arccos0")          # (π − θ)/(2π)
    array([[0.5 , 0.25],
           [0.25, 0.5 ]])
    >>> pf.ops.kernel_matrix(X, X[:1], kernel=pf.kernels.get("poly", degree=2))
    array([[4.],
           [1.]])
    """
    if is_dask(X):
        kw = {"backend": backend, "block_size": block_size}
        return _dask.kernel_matrix(X, Z, _parse_kernel(kernel), kw)
    args = _Args("kernel_matrix", backend)
    kern = args.kernel(kernel)
    X = args.matrix("X", X)
    Z = X if Z is None else args.matrix("Z", Z, cols=X.shape[1], cols_name="X.shape[1]")
    kern = args.kernel_for(kern, X, Z)
    with hint(f"kernel_matrix: the {X.shape[0]} × {Z.shape[0]} kernel matrix",
              "the number of rows, or use kernel_matvec, which never forms the matrix"):
        return args.result(blocked.kernel_matrix(args.device, X, Z, kern, _block(block_size)))
