"""What pyfeat does with Dask (an optional dependency: ``pip install "pyfeat[dist]"``): the
passes over a dask array's row chunks run on the workers and only small results come back.

``tree_reduce`` adds per-chunk partial results in a fixed binary tree, computed on the cluster
(the current ``distributed.Client`` when one exists, else Dask's default scheduler), so the
result depends on neither the workers' timing nor where the chunks live.
"""

from __future__ import annotations

import numpy as np

__all__ = ["is_dask", "compute", "tree_reduce", "shipped", "single_chunk", "row_chunks"]


def is_dask(x) -> bool:
    return type(x).__module__.startswith("dask.")


def compute(*objects, client=None):
    """dask.compute on ``client`` (a distributed.Client) or Dask's default scheduler."""
    import dask

    return dask.compute(*objects, scheduler=client) if client is not None else dask.compute(*objects)


def tree_reduce(parts, combine):
    """The dask.delayed combine-tree of the delayed ``parts``: (p0 ⊕ p1) ⊕ (p2 ⊕ p3) ⊕ …"""
    import dask

    merge = dask.delayed(combine, pure=True)
    while len(parts) > 1:
        parts = [merge(parts[i], parts[i + 1]) if i + 1 < len(parts) else parts[i] for i in range(0, len(parts), 2)]
    return parts[0]


def shipped(a):
    """A NumPy array as one dask.delayed value (sent once to each worker that needs it, not once
    per task); anything else as it is."""
    import dask

    return dask.delayed(a) if isinstance(a, np.ndarray) else a


def single_chunk(A):
    """A dask array as one delayed NumPy array assembled on the cluster (not on the client)."""
    return A.rechunk({i: -1 for i in range(A.ndim)}).to_delayed().ravel()[0]


def row_chunks(X, *others):
    """(X with its columns in one chunk, and the delayed row chunks of X and of ``others``
    rechunked to X's rows), for per-chunk work."""
    import dask.array as da

    if any(np.isnan(c) for c in X.chunks[0]):
        raise ValueError("X has unknown chunk sizes: call X.compute_chunk_sizes() first")
    X = X.rechunk({1: -1}) if X.ndim == 2 else X
    out = [X.to_delayed().ravel()]
    for A in others:
        A = A if is_dask(A) else da.from_array(np.asarray(A), chunks=(X.chunks[0],) + tuple((s,) for s in np.shape(A)[1:]))
        A = A.rechunk((X.chunks[0],) + tuple((s,) for s in A.shape[1:]))
        out.append(A.to_delayed().ravel())
    return X, list(zip(*out))
