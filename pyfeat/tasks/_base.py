"""The sampling machinery every task shares, and parameter checks.

Reproducibility: rows are generated in fixed chunks of ``CHUNK_ROWS`` rows; the inputs of chunk k
come from ``numpy.random.default_rng([seed, k, INPUTS])`` and its label noise from
``default_rng([seed, k, NOISE])``; a task's own parameters from ``default_rng([seed, role])``
with the other roles below. Every key ends with a distinct nonzero role because SeedSequence
ignores trailing zeros (default_rng([0, 0]) is default_rng([0, 0, 0])), which would otherwise
make a task's U and its data share random numbers. So ``stream(n, block=b, seed=s)`` yields, for every b, exactly the
rows of ``sample(n, seed=s)``, and ``sample(n, seed=s)[:m]`` equals ``sample(m, seed=s)`` (NumPy).
On the GPU (``backend="cuda"``) each chunk uses ``cupy.random.default_rng`` seeded from the same
(seed, k, role): different numbers than on the CPU, the same between ``sample`` and ``stream``.
On the CPU, chunks are generated in parallel threads (NumPy releases the GIL while it fills them).
"""

from __future__ import annotations

import math
import operator
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numpy.typing import DTypeLike

from pyfeat.backend import array_module, resolve

CHUNK_ROWS = 2**14
DEFAULT_BLOCK = 2**16
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

_pool = None

# roles of random streams (see the module docstring); nonzero and distinct
INPUTS, NOISE, U_ROLE, HEAD, TARGET_HEAD, SIGNS = 1, 2, 3, 4, 5, 6


def task_rng(seed, role):
    """The Generator of one kind of task parameter (``role``) for the task's ``seed``."""
    return np.random.default_rng([seed, role])


def _thread_pool():
    global _pool
    if _pool is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        _pool = ThreadPoolExecutor(max_workers=max(1, workers or 1), thread_name_prefix="pyfeat-tasks")
    return _pool


def _forget_pool_after_fork():
    """A forked child has none of the parent's worker threads: start a new pool there."""
    global _pool
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


# -- parameter checks ------------------------------------------------------------------------------


def check_int(name, value, low=None, high=None, high_name=None):
    """``value`` as an int in [low, high]; ValueError naming ``name`` otherwise."""
    try:
        if isinstance(value, bool):
            raise TypeError
        v = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if low is not None and v < low:
        raise ValueError(f"{name} must be >= {low}, got {name}={v}")
    if high is not None and v > high:
        bound = f", {high_name}={high}" if high_name else ""
        raise ValueError(f"{name} must be <= {high_name or high}, got {name}={v}{bound}")
    return v


def check_float(name, value, low=None, strict=False):
    """``value`` as a finite float, >= low (> low if strict); ValueError naming ``name`` otherwise."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number, got {value!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {name}={v}")
    if low is not None and (v <= low if strict else v < low):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {low}, got {name}={v}")
    return v


def check_dtype(dtype):
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dt not in DTYPES:
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    return dt


def orthonormal_rows(name, U, r, d):
    """``U`` as a float64 (r, d) array with orthonormal rows, or ValueError naming ``name``."""
    U = np.array(U, dtype=np.float64)
    if U.shape != (r, d):
        raise ValueError(f"{name} must have shape (r, d) = ({r}, {d}), got {U.shape}")
    if not np.all(np.isfinite(U)):
        raise ValueError(f"{name} must be finite")
    err = np.abs(U @ U.T - np.eye(r)).max()
    if err > 1e-8:
        raise ValueError(f"{name} must have orthonormal rows (max |U Uᵀ − I| = {err:.2e})")
    return U


def random_orthonormal_rows(r, d, rng):
    """(r, d) with orthonormal rows, uniformly (Haar) distributed: QR of a Gaussian matrix with
    the signs of R's diagonal moved into Q."""
    Q, R = np.linalg.qr(rng.standard_normal((d, r)))
    return (Q * np.sign(np.diag(R))).T.copy()


def readonly(a):
    a = np.array(a)
    a.setflags(write=False)
    return a


def project(X, W):
    """X Wᵀ (n, k) in float64, summed in float64, for X (n, d) of any real dtype and W (k, d)
    float64. NumPy: einsum, not BLAS — for k of a few, a threaded BLAS call on a tall-skinny
    product is ~10x slower than einsum's loop inside each sampling thread. CuPy: a float64 GEMM."""
    if isinstance(X, np.ndarray):
        return np.einsum("nd,kd->nk", X, W, dtype=np.float64)
    xp = array_module(X)
    return xp.asarray(X, dtype=xp.float64) @ xp.asarray(W).T


# -- sampling --------------------------------------------------------------------------------------


def _generator(xp, seed, chunk, stream):
    if xp is np:
        return np.random.default_rng([seed, chunk, stream])
    state = np.random.SeedSequence([seed, chunk, stream]).generate_state(1, np.uint64)[0]
    return xp.random.default_rng(int(state >> np.uint64(1)))


def _array_module(backend):
    """numpy, or cupy when ``backend`` resolves to "cuda" (anything else generates with NumPy)."""
    if resolve(backend) == "cuda":
        import cupy

        return cupy
    return np


class Task:
    """Base class: a data distribution (x, y = f*(x) + ς ε), ε ~ N(0, 1) independent of x.

    Subclasses set ``d`` and define ``__call__`` (f* on the rows of X) and, when x is not
    N(0, I_d), ``_fill_inputs``; ``mean`` and ``variance`` are the exact E f*(x) and Var f*(x).
    Every task samples with :meth:`sample` and :meth:`stream`, which give the same rows: they
    are generated in fixed chunks of ``CHUNK_ROWS`` rows, each seeded from (seed, chunk index),
    so results depend neither on the block size nor on the thread count.

    Attributes
    ----------
    d : int
        Input dimension: x ∈ R^d.

    See Also
    --------
    MultiIndex, SingleIndex, LowRankPolynomial, Heaviside1D, SmoothStep1D : The tasks.

    Examples
    --------
    >>> import pyfeat as pf
    >>> task = pf.tasks.MultiIndex(d=8, r=2, degree=3, seed=0)
    >>> isinstance(task, pf.tasks.Task), task.d
    (True, 8)
    """

    d: int

    def __call__(self, X: np.ndarray) -> np.ndarray:
        """The target f*(x) on the rows of X (n, d); each task defines it.

        Parameters
        ----------
        X : ndarray of shape (n, d)
            Inputs.

        Returns
        -------
        ndarray of shape (n,)
            Values f*(x_i), float64 (NumPy in → NumPy out, CuPy in → CuPy out).

        Examples
        --------
        >>> import pyfeat as pf
        >>> task = pf.tasks.MultiIndex(d=8, r=2, degree=3, seed=0)
        >>> X, y = task.sample(5, seed=1)
        >>> task(X).shape, task(X).dtype
        ((5,), dtype('float64'))
        """
        raise NotImplementedError

    def _check_X(self, X):
        if getattr(X, "ndim", None) != 2 or X.shape[1] != self.d:
            raise ValueError(f"X must have shape (n, d) with d={self.d}, got {getattr(X, 'shape', None)}")

    def _fill_inputs(self, rng, out):
        """Fill ``out`` (m, d) with m i.i.d. inputs; default x ~ N(0, I_d)."""
        if isinstance(out, np.ndarray):
            rng.standard_normal(out=out, dtype=out.dtype)
        else:
            out[...] = rng.standard_normal(out.shape, dtype=out.dtype)

    def _fill_chunk(self, k, X, y, seed, noise):
        """Rows of chunk k: inputs into X, labels into y."""
        xp = array_module(X)
        self._fill_inputs(_generator(xp, seed, k, INPUTS), X)
        y[...] = self(X)
        if noise:
            y += noise * _generator(xp, seed, k, NOISE).standard_normal(y.shape[0], dtype=y.dtype)

    def _check_sampling(self, n, noise, seed, dtype, backend):
        return (check_int("n", n, 1), check_float("noise", noise, 0.0), check_int("seed", seed, 0),
                check_dtype(dtype), _array_module(backend))

    def sample(self, n: int, noise: float = 0.0, seed: int = 0, dtype: DTypeLike = np.float64,
               backend: str | None = "numpy") -> tuple[np.ndarray, np.ndarray]:
        """Draw n i.i.d. samples (X (n, d), y (n,)), both of ``dtype`` (float32 or float64).

        y = f*(x) + noise·ε with ε ~ N(0, 1). The rows are the same as those of
        ``stream(n, seed=seed, ...)``, and ``sample(n, seed=s)[0][:m]`` equals
        ``sample(m, seed=s)[0]`` (NumPy).

        Parameters
        ----------
        n : int
            Number of samples, >= 1.
        noise : float, default 0.0
            Standard deviation ς of the Gaussian label noise, >= 0.
        seed : int, default 0
            Seed of the data (>= 0); the task's own parameters (e.g. U) come from the task's
            seed, independently.
        dtype : {float64, float32}, default numpy.float64
            dtype of X and y.
        backend : {"numpy", "cuda", None, "auto"}, default "numpy"
            "numpy": NumPy arrays; "cuda": CuPy arrays generated on the GPU (other random
            numbers than NumPy's); None/"auto": CuPy when ``pyfeat.backend.resolve`` picks
            "cuda", else NumPy.

        Returns
        -------
        X : ndarray of shape (n, d)
            The inputs.
        y : ndarray of shape (n,)
            The labels f*(x) + noise·ε.

        Raises
        ------
        ValueError
            Naming the argument, for a bad n, noise, seed, dtype or backend.
        RuntimeError
            When ``backend="cuda"`` cannot run here.

        See Also
        --------
        stream : The same rows in blocks, for n beyond memory.

        Examples
        --------
        >>> import numpy as np
        >>> import pyfeat as pf
        >>> task = pf.tasks.MultiIndex(d=8, r=2, degree=3, seed=0)
        >>> X, y = task.sample(1000, noise=0.1, seed=1, dtype="float32")
        >>> X.shape, y.shape, X.dtype, y.dtype
        ((1000, 8), (1000,), dtype('float32'), dtype('float32'))
        >>> X, y = task.sample(1000, seed=1)               # noise-free: y = f*(X)
        >>> bool(np.allclose(y, task(X)))
        True
        >>> bool(np.array_equal(task.sample(10, seed=1)[0], X[:10]))
        True
        """
        n, noise, seed, dtype, xp = self._check_sampling(n, noise, seed, dtype, backend)
        X = xp.empty((n, self.d), dtype=dtype)
        y = xp.empty(n, dtype=dtype)

        def fill(k):
            rows = slice(k * CHUNK_ROWS, min((k + 1) * CHUNK_ROWS, n))
            self._fill_chunk(k, X[rows], y[rows], seed, noise)

        chunks = range(math.ceil(n / CHUNK_ROWS))
        if xp is np and len(chunks) > 1:
            list(_thread_pool().map(fill, chunks))
        else:
            for k in chunks:
                fill(k)
        return X, y

    def stream(self, n: int, block: int | None = DEFAULT_BLOCK, noise: float = 0.0, seed: int = 0,
               dtype: DTypeLike = np.float64,
               backend: str | None = "numpy") -> Iterable[tuple[np.ndarray, np.ndarray]]:
        """Iterable over (X_block, y_block): the rows of :meth:`sample` in blocks.

        The blocks have ``block`` rows each (the last one shorter) and are together exactly the
        rows of ``sample(n, noise, seed, dtype, backend)``, for any block size; memory
        O(max(block, CHUNK_ROWS)·d), so n may be far beyond memory. Parameters are checked at
        the call. Each ``iter()`` regenerates the same rows, so the result can be read several
        times: ``TwoLayerReLU().fit(task.stream(n, seed=1))`` makes its passes over it.

        Parameters
        ----------
        n : int
            Number of samples in all, >= 1.
        block : int or None, default 65536
            Rows per block (None: DEFAULT_BLOCK, 65536).
        noise : float, default 0.0
            Standard deviation of the Gaussian label noise, >= 0.
        seed : int, default 0
            Seed of the data, >= 0 (as in :meth:`sample`).
        dtype : {float64, float32}, default numpy.float64
            dtype of the blocks.
        backend : {"numpy", "cuda", None, "auto"}, default "numpy"
            Where the blocks are generated (as in :meth:`sample`).

        Returns
        -------
        Iterable of (ndarray, ndarray)
            A re-iterable over the blocks (X_block (b, d), y_block (b,)).

        Raises
        ------
        ValueError
            Naming the argument, for a bad n, block, noise, seed, dtype or backend.
        RuntimeError
            When ``backend="cuda"`` cannot run here.

        See Also
        --------
        sample : All n rows at once.

        Examples
        --------
        >>> import numpy as np
        >>> import pyfeat as pf
        >>> task = pf.tasks.MultiIndex(d=8, r=2, degree=3, seed=0)
        >>> blocks = task.stream(1000, block=300, seed=1)
        >>> [Xb.shape[0] for Xb, yb in blocks]
        [300, 300, 300, 100]
        >>> X, y = task.sample(1000, seed=1)
        >>> bool(np.array_equal(np.concatenate([yb for _, yb in blocks]), y))
        True
        """
        n, noise, seed, dtype, xp = self._check_sampling(n, noise, seed, dtype, backend)
        block = DEFAULT_BLOCK if block is None else check_int("block", block, 1)
        return _Stream(lambda: self._stream(n, block, noise, seed, dtype, xp))

    def stream_block(self, n: int, k: int, block: int = DEFAULT_BLOCK, noise: float = 0.0, seed: int = 0,
                     dtype: DTypeLike = np.float64) -> tuple[np.ndarray, np.ndarray]:
        """Block k of ``stream(n, block, noise, seed, dtype)`` alone.

        (X_k, y_k) = rows [k·block, min(n, (k+1)·block)) of ``sample(n, noise, seed, dtype)``,
        generated from (seed, chunk index) without the blocks before it (so a cluster's workers
        can each make their own blocks; NumPy).

        Parameters
        ----------
        n : int
            Number of samples in all, >= 1.
        k : int
            The block's index, 0 <= k <= (n − 1) // block.
        block : int, default 65536
            Rows per block.
        noise : float, default 0.0
            Standard deviation of the Gaussian label noise, >= 0.
        seed : int, default 0
            Seed of the data, >= 0 (as in :meth:`sample`).
        dtype : {float64, float32}, default numpy.float64
            dtype of the block.

        Returns
        -------
        X_k : ndarray of shape (b, d)
            The block's inputs (b = block, or fewer for the last block).
        y_k : ndarray of shape (b,)
            Its labels.

        Raises
        ------
        ValueError
            Naming the argument, for a bad n, k, block, noise, seed or dtype.

        Examples
        --------
        >>> import numpy as np
        >>> import pyfeat as pf
        >>> task = pf.tasks.MultiIndex(d=8, r=2, degree=3, seed=0)
        >>> Xk, yk = task.stream_block(1000, 3, block=300, seed=1)
        >>> X, y = task.sample(1000, seed=1)
        >>> Xk.shape, bool(np.array_equal(Xk, X[900:])), bool(np.array_equal(yk, y[900:]))
        ((100, 8), True, True)
        """
        n, noise, seed, dtype, xp = self._check_sampling(n, noise, seed, dtype, "numpy")
        block = check_int("block", block, 1)
        k = check_int("k", k, 0, (n - 1) // block, "the last block")
        start, stop = k * block, min(n, (k + 1) * block)
        chunks = [self._make_chunk(c, n, seed, noise, dtype, xp)
                  for c in range(start // CHUNK_ROWS, (stop - 1) // CHUNK_ROWS + 1)]
        X = np.concatenate([c[0] for c in chunks]) if len(chunks) > 1 else chunks[0][0]
        y = np.concatenate([c[1] for c in chunks]) if len(chunks) > 1 else chunks[0][1]
        lo = start - (start // CHUNK_ROWS) * CHUNK_ROWS
        return X[lo : lo + stop - start], y[lo : lo + stop - start]

    def _make_chunk(self, k, n, seed, noise, dtype, xp):
        m = min(CHUNK_ROWS, n - k * CHUNK_ROWS)
        X = xp.empty((m, self.d), dtype=dtype)
        y = xp.empty(m, dtype=dtype)
        self._fill_chunk(k, X, y, seed, noise)
        return X, y

    def _stream(self, n, block, noise, seed, dtype, xp):
        cache = {}  # chunk index -> (X, y), generated but not yet fully emitted
        for start in range(0, n, block):
            stop = min(start + block, n)
            first, last = start // CHUNK_ROWS, (stop - 1) // CHUNK_ROWS
            missing = [k for k in range(first, last + 1) if k not in cache]

            def make(k):
                return self._make_chunk(k, n, seed, noise, dtype, xp)

            made = _thread_pool().map(make, missing) if xp is np and len(missing) > 1 else map(make, missing)
            cache.update(zip(missing, made))
            pieces = []
            for k in range(first, last + 1):
                lo = max(start, k * CHUNK_ROWS) - k * CHUNK_ROWS
                hi = min(stop, (k + 1) * CHUNK_ROWS) - k * CHUNK_ROWS
                pieces.append((cache[k][0][lo:hi], cache[k][1][lo:hi]))
            for k in range(first, last):
                del cache[k]
            if stop == (last + 1) * CHUNK_ROWS or stop == n:
                cache.pop(last, None)
            if len(pieces) == 1:
                yield pieces[0]
            else:
                yield xp.concatenate([p[0] for p in pieces]), xp.concatenate([p[1] for p in pieces])


class _Stream:
    """A re-iterable task stream: every iteration generates the same blocks again."""

    def __init__(self, blocks):
        self._blocks = blocks

    def __iter__(self):
        return self._blocks()
