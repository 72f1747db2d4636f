"""The public ops on dask arrays (rows chunked): each row chunk is computed on the worker that
holds it by the NumPy op itself (its checks included), and

- the sums over rows (``first_step_gradient``, ``residual_gradient``, ``network_gradient``,
  ``taylor_gradient``, ``relu_gram``, ``relu_transpose``) are added in a fixed tree on the cluster (``pyfeat._dask.tree_reduce``): only the (m, d) / (m, m) results reach the client;
- the row-wise results (``relu_features``, ``relu_predict``, ``taylor_predict``, ``kernel_matvec``,
  ``kernel_matrix``) come back as lazy dask arrays chunked like X.

The small arguments (W, a, b, V) travel once to each worker; Z of the kernel ops, when it is a
dask array too, is assembled on the cluster and used by every chunk, never gathered here.
"""

from __future__ import annotations

import numpy as np

from pyfeat._dask import compute, is_dask, row_chunks, shipped, single_chunk, tree_reduce

__all__ = ["first_step_gradient", "residual_gradient", "network_gradient", "taylor_gradient", "relu_gram",
           "relu_transpose", "relu_features", "relu_predict", "taylor_predict", "kernel_matvec", "kernel_matrix"]


def _ops():
    import pyfeat.ops as ops

    return ops


def _check(X, name="X"):
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array, got shape {X.shape}")
    if X.dtype.kind not in "fiub" or X.dtype.itemsize > 8:
        raise TypeError(f"{name} must hold real numbers (float32/float64), got dtype {X.dtype}")
    if X.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {X.shape})")


def _match(X, name, A, axis, what):
    if A is not None and np.shape(A)[axis] != X.shape[1 if what == "columns" else 0]:
        raise ValueError(f"{name} must have {X.shape[1] if what == 'columns' else X.shape[0]} {what} "
                         f"(X.shape), got shape {np.shape(A)}")


def _local(a):
    """Small arguments as NumPy arrays (a dask one is computed: it is m-sized)."""
    return None if a is None else np.asarray(compute(a)[0] if is_dask(a) else a)


def _dtype(X):
    return np.dtype(np.float32) if X.dtype.kind == "f" and X.dtype.itemsize <= 4 else np.dtype(np.float64)


def _row_sums(Xc, out):
    """n_c × each result of a mean over the rows of chunk Xc, in float64 (partial sums to add)."""
    return tuple(Xc.shape[0] * np.asarray(v, np.float64) for v in (out if isinstance(out, tuple) else (out,)))


def _mean_part(name, Xc, yc, W, a, b, kw):
    """n_c × the op on one chunk (a mean over its rows), each result in float64."""
    return _row_sums(Xc, getattr(_ops(), name)(Xc, yc, W, a, b, **kw))


def _row_mean(name, X, y, W, a, b, kw, y_name="y"):
    """A network op that is a mean over the rows (the gradients), from its chunks' means."""
    import dask

    _check(X)
    _match(X, "W", W, 1, "columns")
    _match(X, y_name, y, 0, "rows")
    X, chunks = row_chunks(X, y)
    call = dask.delayed(_mean_part, pure=True)
    args = [shipped(_local(v)) for v in (W, a, b)]
    parts = compute(tree_reduce([call(name, Xc, yc, *args, kw) for Xc, yc in chunks], _add))[0]
    return tuple(p / X.shape[0] for p in parts)


def first_step_gradient(X, y, W, a, b, kw):
    (G,) = _row_mean("first_step_gradient", X, y, W, a, b, kw)
    return G.astype(_dtype(X))


def residual_gradient(X, r, W, a, b, kw):
    (G,) = _row_mean("residual_gradient", X, r, W, a, b, kw, y_name="r")
    return G.astype(_dtype(X))


def network_gradient(X, y, W, a, b, kw):
    L, gW, ga, gb = _row_mean("network_gradient", X, y, W, a, b, kw)
    return float(L), gW, ga, gb


def _taylor_part(Xc, yc, small, features, kw):
    """n_c × taylor_gradient on one chunk, each result in float64."""
    W0, W, a1, a2, b0, b = small
    return _row_sums(Xc, _ops().taylor_gradient(Xc, yc, W0, W, a1, a2, b0=b0, b=b, features=features, **kw))


def _taylor_small(W0, W, a1, a2, b0, b, features):
    return (shipped(tuple(_local(v) for v in (W0, W, a1, a2, b0, b))),
            None if features is None else shipped(tuple(_local(v) for v in features)))


def taylor_gradient(X, y, W0, W, a1, a2, b0, b, features, kw):
    import dask

    _check(X)
    _match(X, "y", y, 0, "rows")
    X, chunks = row_chunks(X, y)
    small, feats = _taylor_small(W0, W, a1, a2, b0, b, features)
    call = dask.delayed(_taylor_part, pure=True)
    L, gW, gb = compute(tree_reduce([call(Xc, yc, small, feats, kw) for Xc, yc in chunks], _add))[0]
    return float(L) / X.shape[0], gW / X.shape[0], gb / X.shape[0]


def taylor_predict(X, W0, W, a1, a2, b0, b, features, kw):
    small, feats = _taylor_small(W0, W, a1, a2, b0, b, features)

    def part(Xc, small, features):
        W0, W, a1, a2, b0, b = small
        return _ops().taylor_predict(Xc, W0, W, a1, a2, b0=b0, b=b, features=features, **kw)

    return _rowwise(X, part, (), _dtype(X), small, feats)


def _gram_part(Xc, W, b, yc, kw):
    G, c = _ops().relu_gram(Xc, W, b, yc, **kw)
    return G, c


def _add(u, v):
    return tuple(None if a is None else a + b for a, b in zip(u, v))


def relu_gram(X, W, b, y, kw):
    import dask

    _check(X)
    _match(X, "W", W, 1, "columns")
    _match(X, "y", y, 0, "rows")
    X, chunks = row_chunks(X, *(() if y is None else (y,)))
    call = dask.delayed(_gram_part, pure=True)
    W, b = shipped(_local(W)), shipped(_local(b))
    return compute(tree_reduce([call(c[0], W, b, c[1] if y is not None else None, kw) for c in chunks], _add))[0]


def _transpose_part(Xc, W, b, Vc, kw):
    return (_ops().relu_transpose(Xc, W, b, Vc, **kw),)


def relu_transpose(X, W, b, V, kw):
    import dask

    _check(X)
    _match(X, "W", W, 1, "columns")
    _match(X, "V", V, 0, "rows")
    X, chunks = row_chunks(X, V)
    call = dask.delayed(_transpose_part, pure=True)
    W, b = shipped(_local(W)), shipped(_local(b))
    return compute(tree_reduce([call(Xc, W, b, Vc, kw) for Xc, Vc in chunks], _add))[0][0]


def _rowwise(X, fn, cols, dtype, *args):
    """A lazy dask array of fn(X_chunk, *args), (rows of the chunk,) + cols each."""
    import dask
    import dask.array as da

    _check(X)
    X, chunks = row_chunks(X)
    call = dask.delayed(fn, pure=True)
    args = [shipped(a) for a in args]
    blocks = [da.from_delayed(call(Xc, *args), shape=(int(r),) + cols, dtype=dtype)
              for (Xc,), r in zip(chunks, X.chunks[0])]
    return da.concatenate(blocks, axis=0)


def relu_features(X, W, b, kw):
    _match(X, "W", W, 1, "columns")
    W = _local(W)
    return _rowwise(X, lambda Xc, W, b: _ops().relu_features(Xc, W, b, **kw), (W.shape[0],), _dtype(X), W, _local(b))


def relu_predict(X, W, b, a, kw):
    _match(X, "W", W, 1, "columns")
    a = _local(a)
    return _rowwise(X, lambda Xc, W, b, a: _ops().relu_predict(Xc, W, b, a, **kw), a.shape[1:], _dtype(X),
                    _local(W), _local(b), a)


def _side(Z):
    """Z of a kernel op: a dask array stays on the cluster (one delayed array), else NumPy."""
    return single_chunk(Z) if is_dask(Z) else np.asarray(Z)


def kernel_matvec(X, Z, V, kernel, kw):
    _match(X, "Z", Z, 1, "columns")
    if np.shape(V)[0] != Z.shape[0]:
        raise ValueError(f"V must have {Z.shape[0]} rows (Z.shape[0]), got shape {np.shape(V)}")
    V = _local(V)
    return _rowwise(X, lambda Xc, Z, V: _ops().kernel_matvec(Xc, Z, V, kernel, **kw), V.shape[1:], _dtype(X),
                    _side(Z), V)


def kernel_matrix(X, Z, kernel, kw):
    Z = X if Z is None else Z
    _match(X, "Z", Z, 1, "columns")
    return _rowwise(X, lambda Xc, Z: _ops().kernel_matrix(Xc, Z, kernel, **kw), (int(Z.shape[0]),), _dtype(X),
                    _side(Z))
