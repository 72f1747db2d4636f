"""What pyfeat does with Dask (an optional dependency: ``pip install "pyfeat[dist]"``): the
passes over a dask array's row chunks run on the workers and only small results come back.

``tree_reduce`` adds per-chunk partial results in a fixed binary tree, computed on the cluster
(the current ``distributed.Client`` when one exists, else Dask's default scheduler), so the
result depends on neither the workers' timing nor where the chunks live.

``Replicated`` keeps one copy of a dask array on every worker of a ``distributed.Client``, for
work that reads all of X from every task (the Z side of kernel products): each copy under its
own key, since Dask's active memory manager drops the extra replicas of one key once no task
waits for them, and X would travel again for every product.
"""

from __future__ import annotations

import itertools
import uuid

import numpy as np

__all__ = ["is_dask", "compute", "current_client", "tree_reduce", "shipped", "single_chunk", "row_chunks",
           "Replicated"]


def is_dask(x) -> bool:
    return type(x).__module__.startswith("dask.")


def compute(*objects, client=None):
    """dask.compute on ``client`` (a distributed.Client) or Dask's default scheduler."""
    import dask

    return dask.compute(*objects, scheduler=client) if client is not None else dask.compute(*objects)


def current_client():
    """The current ``distributed.Client``, or None (no distributed scheduler: Dask's default
    scheduler runs in this process)."""
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):
        return None


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


class Replicated:
    """A dask array X (n, d) in ``dtype``, one copy on every worker of ``client`` (module
    docstring): X's row chunks computed once (cast, checked finite), then each copy assembled on
    its worker from them, which moves (W − 1)·n·d values between the W workers once.

    ``map(fn, parts, *args)`` = [fn(X, part, *args) for part in parts] computed on the workers:
    the parts spread round robin over the workers' threads, each run where its copy is, ``args``
    sent once (one scattered object that the workers fetch), the results gathered in order."""

    def __init__(self, X, dtype, client):
        import dask
        from distributed import wait

        threads = client.nthreads()
        if not threads:
            raise ValueError("the Dask cluster has no workers: start some (or fit NumPy arrays)")
        X = X.rechunk({1: -1})
        tag = uuid.uuid4().hex
        cast = dask.delayed(_finite_rows, pure=True)
        chunks = client.compute([cast(c, dtype, dask_key_name=f"pyfeat-rows-{tag}-{i}")
                                 for i, c in enumerate(X.to_delayed().ravel())])
        self.copies = {w: client.submit(_stack, *chunks, key=f"pyfeat-copy-{tag}-{w}", workers=[w],
                                        allow_other_workers=True) for w in sorted(threads)}
        wait(list(self.copies.values()))
        failed = next((f for f in self.copies.values() if f.status == "error"), None)
        if failed is not None:
            raise failed.exception()
        self.slots = [w for w in sorted(threads) for _ in range(threads[w])]
        self.client, self.shape, self.dtype = client, tuple(int(s) for s in X.shape), np.dtype(dtype)

    def map(self, fn, parts, *args):
        shared = self.client.scatter([args], hash=False)[0]
        futures = [self.client.submit(_apply, fn, self.copies[w], part, shared, workers=[w], allow_other_workers=True,
                                      pure=False) for part, w in zip(parts, itertools.cycle(self.slots))]
        return self.client.gather(futures)

    def to_dask(self):
        """X as a dask array of one chunk: one of the copies (kept while the array lives)."""
        import dask.array as da

        return da.from_delayed(next(iter(self.copies.values())), self.shape, self.dtype)


def _finite_rows(Xc, dtype):
    Xc = np.ascontiguousarray(Xc, dtype=dtype)
    if not np.isfinite(Xc).all():
        raise ValueError("Input X contains NaN or infinity.")
    return Xc


def _stack(*chunks):
    return np.concatenate(chunks, axis=0)


def _apply(fn, X, part, args):
    return fn(X, part, *args)
