"""The data of a network fit as a reproducible source of row blocks, read in several passes.

A *source* is a callable returning a fresh iterator of (X_block, y_block). ``fit_source`` makes
one from what ``fit`` receives:

- arrays X, y (NumPy, pandas, xarray, lists, memmaps: ``Regressor._validate_xy``, i.e.
  scikit-learn's validation; CuPy arrays stay on the GPU): views of consecutive rows, as many
  per block as the memory budget allows for one float64 row (``pyfeat.backend.memory_budget``,
  between 64 and 65,536 rows), so no temporary of a pass exceeds the budget;
- a stream with y=None: a re-iterable of (X_block, y_block) (e.g. ``task.stream(n, seed=1)``) or a
  callable returning a fresh iterator. Every block is checked (shape, dtype, finiteness) on the
  first pass, ``moments``.

- dask arrays (chunked by rows), or a task's rows generated on a Dask cluster (``task_chunks``):
  a ``DaskSource``, whose passes run where the chunks live (below).

Every pass after the first is a sum over blocks, ``reduce(source, fn, args)`` =
Σ_b fn(X_b, y_b, *args) (a tuple of float64 arrays and floats, added elementwise). Locally the
blocks are read in order, through ``again``, which compares n and Σy with the first pass and
raises when a source yields different data (fits read the data several times, so it must be
reproducible). On a ``DaskSource`` fn runs on the workers, one task per chunk, and the partial
sums are added in a fixed binary tree (so the result does not depend on the workers' timing;
it equals the local fit to float64 rounding, whatever the chunking); only the small sums (m×d,
m×m) travel to the client. Products with the blocks run in the block's working dtype (float32
for float32 X: no float64 copy of a block); sums over blocks accumulate in float64.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from pyfeat import backend as _backend
from pyfeat._dask import compute, is_dask, row_chunks, shipped, tree_reduce
from pyfeat.ops._plan import rows_per_block, working_dtype

__all__ = ["fit_source", "array_source", "Moments", "moments", "block_moments", "reduce", "again", "residual",
           "sum64", "DaskSource"]

ONE_SHOT = (
    "fit(source) needs to read the data more than once: pass a re-iterable of (X_block, y_block), "
    "a callable returning a fresh iterator (e.g. lambda: task.stream(n, seed=1)), or use "
    "fit_task(task, n, seed); got a one-shot {}"
)


def array_source(X, y):
    """Row blocks (views) of in-memory X, y, sized from the memory budget (module docstring)."""
    n, d = X.shape
    device = "cuda" if _backend.is_cupy(X) else "cpu"
    rows = rows_per_block(8 * (d + 1), _backend.memory_budget(device))
    return lambda: ((X[s : s + rows], y[s : s + rows]) for s in range(0, n, rows))


def fit_source(estimator, X, y):
    """The source of ``estimator.fit(X, y)`` (module docstring); arrays are validated here."""
    if is_dask(X):
        return DaskSource.from_arrays(X, y)
    if y is not None:
        return array_source(*estimator._validate_xy(X, y))
    if hasattr(X, "shape"):
        raise ValueError(f"{type(estimator).__name__} requires y to be passed, but the target y is None "
                         "(y may be None only when X is a stream of (X, y) blocks)")
    if callable(X):
        return X
    if hasattr(X, "__iter__") and iter(X) is not X:
        return lambda: iter(X)
    raise TypeError(ONE_SHOT.format(type(X).__name__))


def _check_block(k, Xb, yb, d):
    if getattr(Xb, "ndim", None) != 2:
        raise ValueError(f"block {k}: X must be a 2-D array, got {type(Xb).__name__} {getattr(Xb, 'shape', '')}")
    if getattr(yb, "ndim", None) != 1 or yb.shape[0] != Xb.shape[0]:
        raise ValueError(f"block {k}: y must have shape ({Xb.shape[0]},), got {getattr(yb, 'shape', None)}")
    for name, arr in (("X", Xb), ("y", yb)):
        if arr.dtype.kind not in "fiub" or arr.dtype.itemsize > 8:
            raise TypeError(f"{name} must hold real numbers (float32/float64), got dtype {arr.dtype}")
    if d is not None and Xb.shape[1] != d:
        raise ValueError(f"block {k}: X has {Xb.shape[1]} columns, earlier blocks had {d}")


def sum64(yb):
    """Σy of one block in float64 (the same expression on every pass)."""
    xp = _backend.array_module(yb)
    return float(xp.asarray(yb, dtype=xp.float64).sum())


class Moments(NamedTuple):
    """What the first pass learns: n, d, α = (1/n)Σy_i, β = (1/n)Σy_i x_i (float64), Σy (to
    recognize the data on later passes), the number of ``blocks`` and ``exponent``, the binary exponent e of a bound on
    the preprocessed labels, max(|y|, |α|) + d max|β| max|x| ≥ |ỹ|, when it is beyond 2^±20, else
    0: the later passes work with ỹ·2^{-e} (``residual``; exactly rescaled, so that products and
    squares stay in range) and scale back."""

    n: int
    d: int
    alpha: float
    beta: np.ndarray
    sum_y: float
    exponent: int
    blocks: int


# |binary exponent| of the labels' scale beyond which a fit works with rescaled labels (Moments)
SAFE_EXPONENT = 20


def _peak(A):
    return float(max(A.max(), -A.min())) if A.size else 0.0


def block_moments(Xb, yb, k=0):
    """(rows, Σy, Σ y_i x_i, max|y|, max|x|) of block k (float64), with the finiteness checks."""
    xp = _backend.array_module(Xb)
    with np.errstate(over="ignore", invalid="ignore"):  # reported below
        s_y = sum64(yb)
        s_xy = _backend.to_numpy(xp.asarray(yb, dtype=working_dtype(Xb)) @ Xb).astype(np.float64)
    if not np.isfinite(s_y):
        if bool(xp.isfinite(yb).all()):
            raise ValueError(f"Σy overflows (block {k}): the labels are beyond the range of float64 sums; rescale y")
        raise ValueError(f"y contains NaN or inf (block {k}); expected finite values")
    if not np.isfinite(s_xy).all():  # NaN/inf in X always reach Σ y_i x_i (inf·0 = NaN)
        if bool(xp.isfinite(Xb).all()):
            raise ValueError(f"Σ y_i x_i overflows (block {k}): the scale of X times y is beyond "
                             f"the floating-point range of {working_dtype(Xb)}; rescale X or y")
        raise ValueError(f"X contains NaN or inf (block {k}); expected finite values")
    return Xb.shape[0], s_y, s_xy, _peak(yb), _peak(Xb)


def _add_moments(u, v):
    return u[0] + v[0], u[1] + v[1], u[2] + v[2], max(u[3], v[3]), max(u[4], v[4])


def moments(source, progress=lambda blocks, phase, total=None: blocks):
    """Pass 1 (``Moments``); checks the shape, dtype and finiteness of every block.
    ``progress(iterable, phase, total)`` wraps the blocks (a progress bar)."""
    if isinstance(source, DaskSource):
        (n, sy, sxy, peak_y, peak_x), d, k = source.reduce(block_moments, (), _add_moments, indexed=True), \
            source.d, source.blocks - 1
    else:
        n, d, sy, sxy, peak_y, peak_x, k = 0, None, 0.0, None, 0.0, 0.0, -1
        for k, (Xb, yb) in enumerate(progress(source(), "moments")):
            _check_block(k, Xb, yb, d)
            d = Xb.shape[1]
            rows, s_y, s_xy, p_y, p_x = block_moments(Xb, yb, k)
            n, sy, sxy = n + rows, sy + s_y, s_xy if sxy is None else sxy + s_xy
            peak_y, peak_x = max(peak_y, p_y), max(peak_x, p_x)
    if n == 0:
        raise ValueError("the data source yielded no samples")
    alpha, beta = sy / n, sxy / n
    bound = max(peak_y, abs(alpha)) + _peak(beta) * d * peak_x  # ≥ |ỹ|, with no squares
    e = int(np.frexp(bound)[1]) if 0 < bound < np.inf else 0
    return Moments(n, d, alpha, beta, sy, e if abs(e) > SAFE_EXPONENT else 0, k + 1)


def residual(Xb, yb, alpha, beta, exponent=0):
    """ỹ·2^{-e} = (y − α − β·x)·2^{-e} for one block (e = ``Moments.exponent``), in float64
    (β·x in the block's working dtype)."""
    xp = _backend.array_module(Xb)
    dt = working_dtype(Xb)
    y = xp.asarray(yb, dtype=xp.float64)
    if exponent:
        y, alpha, beta = xp.ldexp(y, -exponent), np.ldexp(alpha, -exponent), np.ldexp(beta, -exponent)
    return y - alpha - Xb @ xp.asarray(beta, dtype=dt)


def again(source, n, sum_y):
    """Iterate the source again, checking at the end that it yielded the same data."""
    rows, sy = 0, 0.0
    for Xb, yb in source():
        rows += Xb.shape[0]
        sy += sum64(yb)
        yield Xb, yb
    if rows != n or sy != sum_y:
        raise ValueError(
            "the data source yielded different data on a later pass "
            f"({rows} rows, Σy = {sy!r}; first pass: {n} rows, Σy = {sum_y!r}): "
            "fitting reads the data several times, so the source must be reproducible "
            "(e.g. task.stream(n, seed=...) with a fixed seed)"
        )


def _add(u, v):
    return tuple(a + b for a, b in zip(u, v))


def reduce(source, fn, args=(), moments=None, progress=lambda blocks, phase, total=None: blocks, phase=""):
    """Σ over the source's blocks of fn(X_b, y_b, *args), a tuple of float64 arrays and floats
    added elementwise (module docstring). ``moments`` (the first pass's) checks that a local
    source yields the same data again."""
    if isinstance(source, DaskSource):
        return source.reduce(fn, args, _add)
    blocks = source() if moments is None else again(source, moments.n, moments.sum_y)
    total = None
    for Xb, yb in progress(blocks, phase, None if moments is None else moments.blocks):
        part = fn(Xb, yb, *args)
        total = part if total is None else _add(total, part)
    return total


class DaskSource:
    """Row chunks living on a Dask cluster: ``chunks`` is a list of dask.delayed (X_k, y_k) pairs
    (chunks of dask arrays, or a task's rows generated where they are used), n rows of d
    features. ``reduce`` runs a pass on the workers (module docstring); calling the source
    iterates over the chunks here (computed one at a time), for code that reads blocks locally.
    The computations use ``client`` if given, else Dask's default scheduler (the current
    ``distributed.Client`` when one exists)."""

    def __init__(self, chunks, n, d, client=None):
        self.chunks, self.n, self.d, self.client = chunks, n, d, client
        self.blocks = len(chunks)

    @classmethod
    def from_arrays(cls, X, y):
        """X (n, d) and y (n,) dask arrays (y may be NumPy): X's row chunks, columns in one chunk."""
        if X.ndim != 2:
            raise ValueError(f"X must be a 2-D dask array (n_samples, n_features), got shape {X.shape}")
        if y is None:
            raise ValueError("y is required with a dask array X")
        if np.ndim(y) != 1 or y.shape[0] != X.shape[0]:
            raise ValueError(f"Found input variables with inconsistent numbers of samples: X has {X.shape[0]} "
                             f"rows, y has shape {y.shape}")
        for name, arr in (("X", X), ("y", y)):
            if arr.dtype.kind not in "fiub" or arr.dtype.itemsize > 8:
                raise ValueError(f"{name} must hold real numbers (float32/float64), got dtype {arr.dtype}")
        X, chunks = row_chunks(X, y)
        return cls(chunks, int(X.shape[0]), int(X.shape[1]))

    @classmethod
    def from_task(cls, task, n, seed, block, dtype, client=None):
        """The rows of ``task.stream(n, block, seed=seed, dtype=dtype)``, block k generated on
        the worker that uses it (``task.stream_block``): no X on disk, none sent over the network."""
        import dask

        make = dask.delayed(task.stream_block, pure=True, nout=2)
        chunks = [tuple(make(n, k, block, 0.0, seed, dtype)) for k in range(-(-n // block))]
        return cls(chunks, n, task.d, client)

    def reduce(self, fn, args, combine, indexed=False):
        """combine-tree of fn(X_k, y_k, *args[, k]) over the chunks, computed on the cluster."""
        import dask

        args = [shipped(a) for a in args]
        call = dask.delayed(fn, pure=True)
        parts = [call(X, y, *args, *((k,) if indexed else ())) for k, (X, y) in enumerate(self.chunks)]
        return compute(tree_reduce(parts, combine), client=self.client)[0]

    def __call__(self):
        for X, y in self.chunks:
            yield compute(X, y, client=self.client)
