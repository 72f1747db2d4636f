"""Two-layer ReLU networks trained by Algorithm 1 (Damian, Lee & Soltanolkotabi 2022), and the same
network without the first step (random features, the kernel regime at finite width).

**Network**: f_θ(x) = aᵀσ(Wx + b), σ = ReLU, W ∈ R^{m×d}, width m even.
Symmetric init: a_j ∈ {±1} uniform, w_j ~ N(0, I_d/d), b_j = 0, and for j ≤ m/2:
a_{j+m/2} = −a_j, w_{j+m/2} = w_j, b_{j+m/2} = b_j, so f_{θ0} ≡ 0.

**Algorithm 1**: α = mean(y), β = (1/n)Σ y_i x_i; y ← y − α − β·x.
W¹ = W⁰ − η₁[∇_W L(θ⁰) + λ₁W⁰] with λ₁ = 1/η₁ by default (so W¹ = −η₁∇_W L(θ⁰)); re-initialize
b_j ~ N(0, 1); then fit a by ridge regression on Φ = σ(W¹x + b) (closed form via the streamed
Gram ΦᵀΦ, or the paper's GD loop ``head="gd"`` with η, λ, T). Predict α + β·x + aᵀσ(W¹x + b).

Here L = (1/n)Σ_i (f(x_i) − ỹ_i)² on the preprocessed labels ỹ, and at the symmetric init
∇_{w_j}L(θ⁰) = −(2/n) Σ_i ỹ_i a_j 1[w_j·x_i ≥ 0] x_i (``pyfeat.ops.first_step_gradient``).

**Data passes.** The data is read in row blocks (``pyfeat.models._data``), from arrays (views
of rows, as many as the memory budget allows) or from a reproducible stream (``fit_task``, or
``fit(source)`` with a re-iterable / a callable returning a fresh iterator), so memory is
O(m² + block·(d + m)) whatever n is. ``TwoLayerReLU.fit`` makes three passes, each exact:

1. moments (O(nd), cheap): n, α = (1/n)Σy_i, β = (1/n)Σy_i x_i;
2. gradient: ỹ_i = y_i − α − β·x_i per block, ∇_W L summed over blocks with weights n_b/n;
3. Gram: (ΦᵀΦ, Φᵀỹ, ‖ỹ‖²) with Φ = σ(W¹x + b) (``pyfeat.ops.relu_gram``).

Pass 2 cannot be merged into pass 1 exactly: the gradient of the preprocessed labels contains
Σ_i 1[w_j·x_i ≥ 0] x_i x_iᵀ β, a d×d matrix per neuron. ``RandomFeatures`` skips pass 2. Each
pass re-reads (for a task: re-generates) the same blocks; the sum of y is compared between passes
and a source that yields different data raises ValueError.
"""

from __future__ import annotations

import functools
import logging
import numbers
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Self

import numpy as np
import scipy.linalg
from numpy.typing import ArrayLike, DTypeLike

from pyfeat import backend as _backend
from pyfeat import ops
from pyfeat._base import Regressor, SeedLike, check_is_fitted, clone
from pyfeat._memory import hint
from pyfeat.models import _data, _head
from pyfeat.ops import blocked
from pyfeat.ops._plan import working_dtype

if TYPE_CHECKING:
    from distributed import Client

    from pyfeat.tasks import Task

__all__ = ["TwoLayerReLU", "RandomFeatures"]

logger = logging.getLogger(__name__)

_HEADS = ("ridge", "gd")
# rows per block of fit_task's stream (the ops block again inside)
_STREAM_BLOCK = 1 << 16


# ---------------------------------------------------------------------------------------------
# parameter checks


def _real(name, value, low=0.0, strict=True):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise TypeError(f"{name} must be a finite real number, got {value!r}")
    if value < low or (strict and value == low):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {low}, got {value!r}")
    return float(value)


def _int(name, value, low):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value!r}")
    return int(value)


def _client(client):
    """A distributed.Client: the one given, or Dask's current one for "default"."""
    if isinstance(client, str) and client == "default":
        from distributed import get_client

        return get_client()
    if not hasattr(client, "compute"):
        raise TypeError(f"client must be a distributed.Client or 'default', got {type(client).__name__}")
    return client


def _norm(A):
    """Frobenius norm without overflow or underflow of the squares: s·‖A/s‖, s = max|A|."""
    s = float(np.abs(A).max()) if A.size else 0.0
    return s * float(np.linalg.norm(A / s)) if s > 0 else 0.0


def _subspace(U, d):
    """Orthonormal basis (d, r) of span(U) for U (r, d) rows (or a task with ``.U``)."""
    U = _backend.to_numpy(getattr(U, "U", U)).astype(np.float64)
    if U.ndim != 2 or U.shape[1] != d or U.shape[0] == 0:
        raise ValueError(f"U must have shape (r, {d}) (rows spanning the principal subspace), got {U.shape}")
    if not np.isfinite(U).all():
        raise ValueError("U contains NaN or inf")
    return scipy.linalg.orth(U.T)


# ---------------------------------------------------------------------------------------------
# the per-block work of the data passes (module functions: a Dask pass ships them to the workers)


def _block_on_device(Xb, yb, backend, alpha, beta, e, *arrays):
    """(device, X_b, ỹ_b·2^{-e}, arrays) on the device, in the block's working dtype."""
    dev = ops.device(backend)
    r = _data.residual(Xb, yb, alpha, beta, e)
    Xb = dev.asarray(Xb)
    dt = working_dtype(Xb)
    return dev, Xb, dev.asarray(r, dt), [dev.asarray(np.ascontiguousarray(a, dtype=dt)) for a in arrays]


def _gradient_part(Xb, yb, backend, block_size, alpha, beta, e, W0, a0, second_moment=False):
    """n_b · ∇_W L on block b (pass 2), and X_bᵀX_b (float64) with ``second_moment``."""
    dev, Xd, r, (W, a, b) = _block_on_device(Xb, yb, backend, alpha, beta, e, W0, a0, np.zeros(len(a0)))
    g = blocked.first_step_gradient(dev, Xd, r, W, a, b, block_size)
    part = (Xb.shape[0] * _backend.to_numpy(g).astype(np.float64),)
    if not second_moment:
        return part
    X64 = _backend.array_module(Xd).asarray(Xd, dtype=np.float64)
    return part + (_backend.to_numpy(X64.T @ X64),)


def _gram_part(Xb, yb, backend, block_size, alpha, beta, e, W, b):
    """(ΦᵀΦ, Φᵀỹ, ‖ỹ‖²) on block b (pass 3), ỹ rescaled by 2^{-e}."""
    dev, Xd, r, (Wd, bd) = _block_on_device(Xb, yb, backend, alpha, beta, e, W, b)
    G, c = blocked.relu_gram(dev, Xd, Wd, bd, r, block_size)
    r = r.astype(dev.xp.float64)
    return _backend.to_numpy(G), _backend.to_numpy(c), float(r @ r)


# ---------------------------------------------------------------------------------------------
# the shared network


class _ReLUNetwork(Regressor):
    """Shared by TwoLayerReLU and RandomFeatures: symmetric init, bias re-initialization, the
    Gram pass, the head, prediction and subspace diagnostics. Subclasses set the first layer."""

    def _check_params(self):
        width = _int("width", self.width, 2)
        if width % 2:
            raise ValueError(
                f"width must be an even positive integer (the symmetric init pairs neuron j with "
                f"j + m/2), got {width}"
            )
        if self.head not in _HEADS:
            raise ValueError(f"head must be one of {_HEADS}, got {self.head!r}")
        if not (isinstance(self.ridge, str) and self.ridge == "auto"):
            if np.ndim(self.ridge) == 0:
                _real("ridge", self.ridge)
            else:
                grid = np.asarray(self.ridge)
                if grid.ndim != 1 or grid.size == 0 or grid.dtype.kind not in "fiu" or not (
                    np.isfinite(grid).all() and (grid > 0).all()
                ):
                    raise ValueError(f"ridge must be 'auto', a positive number or a 1-D grid of them, got {self.ridge!r}")
        if not (isinstance(self.lr, str) and self.lr == "auto"):
            _real("lr", self.lr)
        _int("steps", self.steps, 0)
        _real("bias_scale", self.bias_scale, strict=False)
        self._check_seeds()
        if self.block_size is not None:
            _int("block_size", self.block_size, 1)
        if not isinstance(self.verbose, (bool, np.bool_)):
            raise TypeError(f"verbose must be a bool, got {self.verbose!r}")
        _backend.resolve(self.backend)
        return width

    def _on_device(self, *arrays):
        """(device, f): f(dt) gives ``arrays`` on the device as contiguous arrays of dtype dt
        (converted once per dtype); the blocks go to ``pyfeat.ops.blocked``, already checked."""
        dev = ops.device(self.backend)

        @functools.cache
        def f(dt):
            return [dev.asarray(np.ascontiguousarray(a, dtype=dt)) for a in arrays]

        return dev, f

    def _progress(self, blocks, phase, total=None):
        """The blocks of one pass, with a tqdm bar when ``verbose``."""
        if not self.verbose:
            return blocks
        from tqdm.auto import tqdm

        return tqdm(blocks, desc=f"{type(self).__name__} {phase}", total=total, unit="block", leave=False)

    def _rngs(self):
        """Independent generators for the init and the bias re-initialization."""
        init, bias = self._seed_sequence().spawn(2)
        return np.random.default_rng(init), np.random.default_rng(bias)

    @staticmethod
    def _symmetric_init(m, d, rng):
        """a_j ∈ {±1}, w_j ~ N(0, I_d/d), b_j = 0; a_{j+m/2} = −a_j, w_{j+m/2} = w_j."""
        a = rng.choice(np.array([-1.0, 1.0]), size=m // 2)
        W = rng.standard_normal((m // 2, d)) / np.sqrt(d)
        return np.concatenate([W, W]), np.concatenate([a, -a])

    # -- fitting ------------------------------------------------------------------------------

    def fit(self, X: ArrayLike | Iterable | Callable, y: ArrayLike | None = None) -> Self:
        """Fit on arrays X, y, or on a reproducible stream of (X_block, y_block).

        The data is read in row blocks, in one pass per phase (moments, the first-step gradient
        for ``TwoLayerReLU``, the Gram; ``pyfeat.models.two_layer``), so memory is
        O(m² + block·(d + m)) whatever n is.

        Parameters
        ----------
        X : array_like of shape (n, d), re-iterable or callable
            The inputs (NumPy, CuPy, dask or anything scikit-learn accepts; float32 stays
            float32), or a stream of (X_block, y_block) pairs: a re-iterable, or a callable
            returning a fresh iterator. Each pass re-reads the same blocks.
        y : array_like of shape (n,), optional
            The labels; None when X is a stream.

        Returns
        -------
        TwoLayerReLU or RandomFeatures
            This model, fitted.

        Raises
        ------
        ValueError
            A parameter out of range (named), bad input, a stream that yields different data on
            a later pass, or fitted parameters that overflow (the cause is named).
        TypeError
            A parameter of the wrong type, or a one-shot iterator as the stream.

        Examples
        --------
        >>> import numpy as np
        >>> import pyfeat as pf
        >>> X, y = pf.tasks.MultiIndex(d=6, r=2, degree=2, seed=0).sample(1000, seed=1)
        >>> nn = pf.TwoLayerReLU(width=128).fit(X, y)
        >>> nn.W_.shape, nn.a_.shape, sorted(nn.timings_)
        ((128, 6), (128,), ['gradient', 'gram', 'head', 'moments'])
        >>> def blocks():  # the same rows as a stream of four blocks: the same fit
        ...     return ((X[s:s + 250], y[s:s + 250]) for s in range(0, 1000, 250))
        >>> bool(np.allclose(pf.TwoLayerReLU(width=128).fit(blocks).predict(X), nn.predict(X)))
        True
        """
        return self._fit(_data.fit_source(self, X, y))

    def _memory_hint(self):
        return hint(f"{type(self).__name__}(width={self.width}).fit",
                    "width (the head's m×m Gram and its eigendecomposition: about 24m² bytes) or "
                    "PYFEAT_MEMORY_BUDGET_MB (the row blocks)")

    def fit_task(self, task: Task, n: int, seed: int = 0, block: int = _STREAM_BLOCK,
                 dtype: DTypeLike = np.float64, client: Client | str | None = None) -> Self:
        """Fit on n samples of ``task.stream(n, block=block, seed=seed, dtype=dtype)``.

        X is never held whole (memory O(m² + block·(d + m))). ``dtype=np.float32`` halves the
        time at large n (a float32 stream draws other rows than a float64 one).

        Parameters
        ----------
        task : pyfeat.tasks.Task
            The task whose stream is read (every pass regenerates the same blocks).
        n : int
            Number of samples, ≥ 1.
        seed : int, default 0
            The data seed of ``task.stream``.
        block : int, default 65536
            Rows per block of the stream (the ops block again inside).
        dtype : {numpy.float64, numpy.float32}, default numpy.float64
            The dtype of the generated rows.
        client : distributed.Client or "default", optional
            With a Dask client, each block is generated and used on a worker
            (``client="default"``: Dask's current client); the fit equals the local one to
            float64 rounding.

        Returns
        -------
        TwoLayerReLU or RandomFeatures
            This model, fitted.

        Examples
        --------
        >>> import numpy as np
        >>> import pyfeat as pf
        >>> task = pf.tasks.MultiIndex(d=6, r=2, degree=2, seed=0)
        >>> nn = pf.TwoLayerReLU(width=128).fit_task(task, n=1000, seed=1, block=300)
        >>> nn.n_samples_
        1000
        >>> X, y = task.sample(1000, seed=1)  # the stream's rows
        >>> bool(np.allclose(nn.predict(X), pf.TwoLayerReLU(width=128).fit(X, y).predict(X)))
        True
        """
        n = _int("n", n, 1)
        if client is not None:
            return self._fit(_data.DaskSource.from_task(task, n, seed, block, dtype, _client(client)))
        return self._fit(lambda: task.stream(n, block=block, seed=seed, dtype=dtype))

    def _fit(self, source, first_layer=None):
        """All passes; ``first_layer=(W, b, a_start)`` (transfer) skips the first step."""
        m = self._check_params()
        # overflow is checked where it matters (the first layer, the Gram, the fitted parameters)
        with self._memory_hint(), np.errstate(over="ignore", invalid="ignore"):
            return self._passes(source, m, first_layer)

    def _passes(self, source, m, first_layer):
        times = {}
        t0 = time.perf_counter()
        mo = _data.moments(source, self._progress)
        n, d, alpha, beta, sum_y, ye, nb = mo
        times["moments"] = time.perf_counter() - t0
        self.n_samples_, self.n_features_in_ = n, d
        self.alpha_, self.beta_ = alpha, beta
        rng_init, rng_bias = self._rngs()
        if first_layer is None:
            W0, a0 = self._symmetric_init(m, d, rng_init)
            self.W_init_, self.a_init_ = W0, a0
            t0 = time.perf_counter()
            W = self._first_step(source, mo, W0, a0)
            times["gradient"] = time.perf_counter() - t0
            b = self.bias_scale * rng_bias.standard_normal(m)
            a_start = a0
        else:
            W, b, a_start = first_layer
            if W.shape[1] != d:
                raise ValueError(f"X has {d} features, the source model was fitted with {W.shape[1]}")
        self.W_, self.b_ = W, b

        t0 = time.perf_counter()
        A, c, q = _data.reduce(source, _gram_part, (self.backend, self.block_size, alpha, beta, ye, W, b), mo,
                               self._progress, "gram")
        A, c, q = A / n, c / n, q / n
        times["gram"] = time.perf_counter() - t0
        if not (np.isfinite(A).all() and np.isfinite(c).all() and np.isfinite(q)):
            raise ValueError(f"{type(self).__name__}.fit: the Gram ΦᵀΦ of the features Φ = σ(Wx + b) overflows "
                             f"float64 (max|W| = {np.abs(W).max():.3g}, max|b| = {np.abs(b).max():.3g}): "
                             "the first layer is too large for the inputs' scale; lower eta1 or rescale X")

        t0 = time.perf_counter()
        self.a_ = np.ldexp(self._fit_head(A, c, q, n, np.ldexp(a_start, -ye)), ye)
        if self.head == "gd":
            with np.errstate(over="ignore"):
                self.loss_history_ = np.ldexp(self.loss_history_, 2 * ye)  # checked below
        times["head"] = time.perf_counter() - t0
        self.timings_ = times
        logger.info("%s.fit: n=%d, d=%d, m=%d, %d blocks: %s", type(self).__name__, n, d, m, nb,
                    ", ".join(f"{k} {v:.3g} s" for k, v in times.items()))
        self._check_fitted_finite()
        return self

    def _first_step(self, source, moments, W0, a0):
        raise NotImplementedError

    def _check_fitted_finite(self):
        """Every fitted parameter finite, or ValueError naming the cause (never a NaN model)."""
        for name, cause in [("alpha_", "the labels' mean"), ("beta_", "the labels' linear part (1/n)Σ y_i x_i"),
                            ("W_", "the first step W¹ = W⁰ − η₁(∇L + λ₁W⁰): lower eta1 or use eta1='auto'"),
                            ("a_", "the head: the ridge is too small for the scale of the features and labels"),
                            ("loss_history_", "the head's training loss, whose squares of the labels leave float64")]:
            if not np.isfinite(getattr(self, name, 0.0)).all():
                raise ValueError(f"{type(self).__name__}.fit: the fitted {name} is not finite; it overflowed in {cause}")

    def _fit_head(self, A, c, q, n, a_start):
        """Ridge (closed form, or GCV over a grid) or the paper's GD loop; sets ridge_ etc."""
        s = V = z = None
        if isinstance(self.ridge, str) or np.ndim(self.ridge) == 1:
            s, V = _head.eigh(A)
            z = V.T @ c
            grid = _head.auto_grid(A) if isinstance(self.ridge, str) else np.asarray(self.ridge, np.float64)
            scores = _head.gcv_scores(s, z, q, n, grid)
            lam = float(grid[np.argmin(scores)])
            self.ridge_grid_, self.gcv_ = grid, scores
        else:
            lam = float(self.ridge)
        self.ridge_ = lam
        if self.head == "ridge":
            if V is not None:
                return _head.ridge_eig(s, V, z, lam)
            try:
                return _head.ridge_solve(A, c, lam)
            except np.linalg.LinAlgError:
                raise ValueError(f"ridge={lam:g} is too small: ΦᵀΦ/n + λI is not positive definite in "
                                 f"float64 (its largest eigenvalue is {np.abs(A).max():.3g} or more); use a larger "
                                 "ridge or ridge='auto'") from None
        weight_decay = 2.0 * lam  # a ← a − η[∇_a L + λ_gd a] with λ_gd = 2·ridge: same minimizer
        if isinstance(self.lr, str):
            s_max = s[-1] if s is not None else scipy.linalg.eigvalsh(A, subset_by_index=[A.shape[0] - 1] * 2)[0]
            lr = 1.0 / (2.0 * s_max + weight_decay)  # 1/Lipschitz constant of the gradient
        else:
            lr = float(self.lr)
        self.lr_ = lr
        a, self.loss_history_ = _head.gradient_descent(A, c, q, a_start, weight_decay, lr, self.steps)
        return a

    # -- prediction ---------------------------------------------------------------------------

    def _predict(self, X):
        """α + β·x + aᵀσ(Wx + b) for each row of X (streamed; float32 for float32 X)."""
        X = self._validate_x(X)
        dev, layer = self._on_device(self.W_, self.b_, self.a_, self.beta_)
        Xd = dev.asarray(X)
        dt = working_dtype(Xd)
        W, b, a, beta = layer(dt)
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below
            out = blocked.relu_predict(dev, Xd, W, b, a, self.block_size)
            out += Xd @ beta
        out += dt.type(self.alpha_)
        out = self._finite_predictions(out)
        return out if _backend.is_cupy(X) else _backend.to_numpy(out)

    def mse(self, X: ArrayLike, y: ArrayLike) -> float:
        """Return the mean squared error (1/n)Σ(f(x_i) − y_i)² of the predictions, in float64.

        Parameters
        ----------
        X : array_like of shape (n, d)
            Test rows (as in ``predict``).
        y : array_like of shape (n,)
            Their labels.

        Returns
        -------
        float
            The mean squared error.

        Raises
        ------
        ValueError
            When y does not have shape (n,), or when the error overflows float64 (then use
            ``score``, R², which is scale free).

        Examples
        --------
        >>> import numpy as np
        >>> import pyfeat as pf
        >>> task = pf.tasks.MultiIndex(d=6, r=2, degree=2, seed=0)
        >>> nn = pf.TwoLayerReLU(width=128).fit(*task.sample(1000, seed=1))
        >>> Xt, yt = task.sample(500, seed=2)
        >>> bool(np.isclose(nn.mse(Xt, yt), np.mean((nn.predict(Xt) - yt) ** 2)))
        True
        >>> bool(nn.mse(Xt, yt) < 0.05 * np.var(yt))  # test R² ≈ 0.99
        True
        """
        pred = _backend.to_numpy(self.predict(X)).astype(np.float64)
        y = np.asarray(_backend.to_numpy(y))
        if y.shape != pred.shape:
            raise ValueError(f"y must have shape {pred.shape} (one label per row of X), got {y.shape}")
        with np.errstate(over="ignore"):
            mse = float(np.mean((pred - y) ** 2))
        if not np.isfinite(mse):
            raise ValueError("mse: the mean squared error overflows float64 at this scale of y; use score (R²)")
        return mse

    # -- transfer -----------------------------------------------------------------------------

    def transfer(self, X: ArrayLike | Iterable | Callable, y: ArrayLike | None = None) -> Self:
        """Return a new model with this model's first layer, refitted on the target data.

        The new model keeps this model's first layer W and biases b and refits only α, β and the
        head a on the target data. With ``head="gd"`` the loop starts from this model's head a
        (fine-tuning).

        Parameters
        ----------
        X : array_like of shape (n, d), re-iterable or callable
            Target inputs, or a stream of (X_block, y_block) as in ``fit``.
        y : array_like of shape (n,), optional
            Target labels; None when X is a stream.

        Returns
        -------
        TwoLayerReLU or RandomFeatures
            A new fitted model (this one is unchanged).

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        ValueError
            When the target data has another number of features.

        Examples
        --------
        >>> import numpy as np
        >>> import pyfeat as pf
        >>> source, target = pf.tasks.transfer_pair(d=6, r=2, degree=2, seed=0)
        >>> nn = pf.TwoLayerReLU(width=128).fit(*source.sample(1000, seed=1))
        >>> new = nn.transfer(*target.sample(300, seed=2))
        >>> bool(np.array_equal(new.W_, nn.W_)), bool(np.array_equal(new.b_, nn.b_)), new.n_samples_
        (True, True, 300)
        """
        check_is_fitted(self)
        new = clone(self)
        new._copy_first_layer(self)
        return new._fit(_data.fit_source(new, X, y), first_layer=(self.W_, self.b_, self.a_))

    def transfer_task(self, task: Task, n: int, seed: int = 0, block: int = _STREAM_BLOCK,
                      dtype: DTypeLike = np.float64) -> Self:
        """Return ``transfer`` on n samples of ``task.stream(n, block=block, seed=seed, dtype=dtype)``.

        Parameters
        ----------
        task : pyfeat.tasks.Task
            The target task.
        n : int
            Number of target samples, ≥ 1.
        seed : int, default 0
            The data seed of ``task.stream``.
        block : int, default 65536
            Rows per block of the stream.
        dtype : {numpy.float64, numpy.float32}, default numpy.float64
            The dtype of the generated rows.

        Returns
        -------
        TwoLayerReLU or RandomFeatures
            A new fitted model (this one is unchanged).

        Examples
        --------
        >>> import numpy as np
        >>> import pyfeat as pf
        >>> source, target = pf.tasks.transfer_pair(d=6, r=2, degree=2, seed=0)
        >>> nn = pf.TwoLayerReLU(width=128).fit_task(source, n=1000, seed=1)
        >>> new = nn.transfer_task(target, n=300, seed=2)
        >>> bool(np.array_equal(new.W_, nn.W_)), new.n_samples_
        (True, 300)
        """
        check_is_fitted(self)
        n = _int("n", n, 1)
        new = clone(self)
        new._copy_first_layer(self)
        return new._fit(lambda: task.stream(n, block=block, seed=seed, dtype=dtype),
                        first_layer=(self.W_, self.b_, self.a_))

    _FIRST_LAYER_ATTRS = ("W_init_", "a_init_")

    def _copy_first_layer(self, src):
        for name in self._FIRST_LAYER_ATTRS:
            setattr(self, name, getattr(src, name))

    # -- diagnostics --------------------------------------------------------------------------

    def _layer(self, init):
        check_is_fitted(self)
        return self.W_init_ if init else self.W_

    def alignment(self, U: ArrayLike | Task, init: bool = False) -> float:
        """Return ‖W Πᵤ‖_F² / ‖W‖_F², the fraction of first-layer energy in span(U).

        About r/d at the init.

        Parameters
        ----------
        U : array_like of shape (r, d), or a task with ``.U``
            Rows spanning the principal subspace.
        init : bool, default False
            True: of W⁰ (``W_init_``) instead of W (``W_``).

        Returns
        -------
        float
            The fraction, in [0, 1].

        Raises
        ------
        ValueError
            When U is not (r, d) or not finite.

        Examples
        --------
        >>> import pyfeat as pf
        >>> task = pf.tasks.MultiIndex(d=6, r=2, degree=2, seed=0)
        >>> nn = pf.TwoLayerReLU(width=128).fit(*task.sample(1000, seed=1))
        >>> round(nn.alignment(task, init=True), 1), round(nn.alignment(task), 1)  # r/d = 0.33 at init
        (0.3, 0.9)
        """
        W = self._layer(init)
        return float(np.sum((W @ _subspace(U, W.shape[1])) ** 2) / np.sum(W**2))

    def principal_angles(self, U: ArrayLike | Task, init: bool = False) -> np.ndarray:
        """Return the principal angles between the top-r right singular subspace of W and span(U).

        Parameters
        ----------
        U : array_like of shape (r, d), or a task with ``.U``
            Rows spanning the principal subspace; r is the rank of U.
        init : bool, default False
            True: of W⁰ (``W_init_``) instead of W (``W_``).

        Returns
        -------
        ndarray of shape (r,)
            The angles in radians, ascending.

        Raises
        ------
        ValueError
            When U is not (r, d) or not finite.

        Examples
        --------
        >>> import pyfeat as pf
        >>> task = pf.tasks.MultiIndex(d=6, r=2, degree=2, seed=0)
        >>> nn = pf.TwoLayerReLU(width=128).fit(*task.sample(1000, seed=1))
        >>> angles = nn.principal_angles(task)
        >>> angles.shape, bool(angles.max() < 0.2)  # W's top-2 subspace is close to span(U)
        ((2,), True)
        """
        W = self._layer(init)
        Q = _subspace(U, W.shape[1])
        Vt = np.linalg.svd(W, full_matrices=False)[2]
        return np.sort(scipy.linalg.subspace_angles(Vt[: Q.shape[1]].T, Q))

    def singular_values(self, init: bool = False) -> np.ndarray:
        """Return the singular values of the first layer W.

        Parameters
        ----------
        init : bool, default False
            True: of W⁰ (``W_init_``) instead of W (``W_``).

        Returns
        -------
        ndarray of shape (min(m, d),)
            The singular values, descending.

        Examples
        --------
        >>> import numpy as np
        >>> import pyfeat as pf
        >>> task = pf.tasks.MultiIndex(d=6, r=2, degree=2, seed=0)
        >>> nn = pf.TwoLayerReLU(width=128).fit(*task.sample(1000, seed=1))
        >>> s, s0 = nn.singular_values(), nn.singular_values(init=True)
        >>> s.shape
        (6,)
        >>> def top2(s):  # the energy fraction of the top two: W¹ is close to rank r = 2
        ...     return round(float(np.sum(s[:2] ** 2) / np.sum(s**2)), 1)
        >>> top2(s0), top2(s)
        (0.4, 0.9)
        """
        return np.linalg.svd(self._layer(init), compute_uv=False)


# ---------------------------------------------------------------------------------------------
# the two public models


class TwoLayerReLU(_ReLUNetwork):
    """Two-layer ReLU network trained by Algorithm 1 (one feature step, then the head).

    **Network**: f_θ(x) = aᵀσ(Wx + b), σ = ReLU, W ∈ R^{m×d}, width m even.
    Symmetric init: a_j ∈ {±1} uniform, w_j ~ N(0, I_d/d), b_j = 0, and for j ≤ m/2:
    a_{j+m/2} = −a_j, w_{j+m/2} = w_j, b_{j+m/2} = b_j, so f_{θ0} ≡ 0.

    **Algorithm 1**: α = mean(y), β = (1/n)Σ y_i x_i; y ← y − α − β·x.
    W¹ = W⁰ − η₁[∇_W L(θ⁰) + λ₁W⁰] with λ₁ = 1/η₁ by default (so W¹ = −η₁∇_W L(θ⁰));
    re-initialize b_j ~ N(0, 1); then fit a by ridge regression on Φ = σ(W¹x + b) (closed form
    via the streamed Gram ΦᵀΦ, or the paper's GD loop ``head="gd"`` with η, λ, T).
    Predict α + β·x + aᵀσ(W¹x + b).

    Parameters
    ----------
    width : int, default 2048
        The width m, even (the symmetric init pairs neuron j with j + m/2).
    eta1 : "auto" or float > 0, default "auto"
        The step η₁. ``"auto"`` computes η₁ = ‖W⁰‖_F / ‖∇_W L(θ⁰)‖_F, so that with λ₁ = 1/η₁ the
        new first layer W¹ = −η₁∇_W L has the Frobenius norm of W⁰: its rows have the typical
        norm ≈ 1 of w_j ~ N(0, I_d/d), and the features σ(w_j·x + b_j) with b_j ~ N(0, 1) are
        well scaled. Since ‖∇_{w_j}L‖ ≈ 2‖Hw_j‖/√(2π) = Θ(1/√d) (Lemma 1), this is
        η₁ = Θ(√d), Theorem 1's η₁ = Õ(√d), without a constant to tune.
    lambda1 : float >= 0, optional
        The first step's weight decay λ₁ (None: 1/η₁).
    ridge : "auto", float > 0 or 1-D array of floats > 0, default "auto"
        The head minimizes (1/n)‖Φa − ỹ‖² + λ‖a‖², i.e. a = (ΦᵀΦ/n + λI)⁻¹Φᵀỹ/n (no separate
        intercept: α, β take out the mean and linear part). ``"auto"``: generalized
        cross-validation (GCV) over λ = tr(ΦᵀΦ/n)/m × 10^k, k = −5, −4.75, …, 1, from one
        eigendecomposition of ΦᵀΦ/n (formula in ``pyfeat.models._head``); a grid: GCV over
        that grid.
    head : {"ridge", "gd"}, default "ridge"
        ``"ridge"``: the closed form. ``"gd"``: the paper's loop a ← a − η[∇_a L + λ_gd a] for
        t = 2..T from a = a⁰, with ∇_a L = (2/n)(ΦᵀΦa − Φᵀỹ) computed from the streamed Gram
        (W and b are fixed, so one Gram serves every step) and λ_gd = 2·ridge (the same
        minimizer as the ridge head).
    lr : "auto" or float > 0, default "auto"
        The step η of ``head="gd"``; ``"auto"``: 1/(2 s_max(ΦᵀΦ/n) + λ_gd).
    steps : int >= 0, default 1000
        Number of GD steps (T − 1) for ``head="gd"``.
    bias_scale : float >= 0, default 1.0
        The re-initialized biases are b_j ~ N(0, bias_scale²) (paper: 1), drawn independently
        for all m neurons.
    seed : int >= 0, numpy Generator, SeedSequence, RandomState or None, default 0
        Seeds the init and the bias draw (independent streams), so a ``RandomFeatures`` with
        the same seed has the same W⁰ and b (see ``pyfeat._base``).
    backend : {"auto", "numba", "cuda", "numpy"}, default "auto"
        Where the ops run (``pyfeat.backend``).
    block_size : int, optional
        Rows per block of ``pyfeat.ops`` (None: from the memory budget).
    random_state : int >= 0, numpy Generator, SeedSequence, RandomState or None, default None
        The scikit-learn name for the seed; when not None it is used instead of ``seed``.
    verbose : bool, default False
        A tqdm bar per data pass (moments, gradient, Gram; blocks done of how many); the
        phases' timings are logged (logger ``pyfeat.models.two_layer``, INFO) either way.
    preact_norm : bool, default False
        False: Algorithm 1 as in the paper. True: after the first step, each neuron is
        rescaled, w_j ← w_j/√(w_jᵀΣ̂w_j) with Σ̂ = (1/n)Σ_i x_i x_iᵀ, so that its
        pre-activation has unit second moment over the data, (1/n)Σ_i (w_j·x_i)² = 1, before the
        biases b_j ~ N(0, bias_scale²) are drawn. Algorithm 1's N(0, 1) biases assume that scale
        (isotropic x and ‖w_j‖ ≈ 1); on anisotropic inputs, e.g. spiked covariance
        N(0, I + θμμᵀ), W¹'s rows align with μ and w_j·x has scale √(1 + θ), every ReLU kink
        falls near 0 and the features collapse to about relu(±μ·x). Σ̂ is accumulated in the
        gradient pass (O(nd²) more work).

    Attributes
    ----------
    alpha_ : float
        The preprocessing's α = mean(y).
    beta_ : ndarray of shape (d,)
        The preprocessing's β = (1/n)Σ y_i x_i.
    W_init_ : ndarray of shape (m, d)
        W⁰ of the symmetric init θ⁰.
    a_init_ : ndarray of shape (m,)
        a⁰ of θ⁰ (±1).
    grad_ : ndarray of shape (m, d)
        The first-step gradient ∇_W L(θ⁰).
    eta1_, lambda1_ : float
        The η₁ and λ₁ of the first step.
    W_ : ndarray of shape (m, d)
        W¹, the first layer after the step.
    b_ : ndarray of shape (m,)
        The re-initialized biases b.
    a_ : ndarray of shape (m,)
        The head a.
    ridge_ : float
        The λ of the head (chosen by GCV for ``ridge="auto"`` or a grid).
    ridge_grid_, gcv_ : ndarray
        The grid of λ and its GCV scores (when GCV ran).
    lr_ : float
        The step η of ``head="gd"``.
    loss_history_ : ndarray of shape (steps + 1,)
        ``head="gd"``: the training MSE on ỹ before each step and, last, after the final one.
    n_samples_, n_features_in_ : int
        n and d.
    timings_ : dict
        Seconds per phase: "moments", "gradient", "gram", "head".

    See Also
    --------
    RandomFeatures : The same network without the first step.

    Examples
    --------
    >>> import numpy as np
    >>> import pyfeat as pf
    >>> task = pf.tasks.MultiIndex(d=6, r=2, degree=2, seed=0)
    >>> X, y = task.sample(1000, seed=1)
    >>> nn = pf.TwoLayerReLU(width=128, seed=0).fit(X, y)
    >>> Xt, yt = task.sample(500, seed=2)
    >>> round(nn.score(Xt, yt), 2)  # test R²
    0.99
    >>> bool(np.allclose(nn.W_, -nn.eta1_ * nn.grad_))  # λ₁ = 1/η₁: W¹ = −η₁∇_W L(θ⁰)
    True
    >>> nn.predict(Xt[:3]).shape, bool(np.allclose(nn.W_init_[:64], nn.W_init_[64:]))
    ((3,), True)
    """

    def __init__(self, width: int = 2048, eta1: float | str = "auto", lambda1: float | None = None,
                 ridge: float | str | ArrayLike = "auto", head: str = "ridge", lr: float | str = "auto",
                 steps: int = 1000, bias_scale: float = 1.0, seed: SeedLike = 0, backend: str = "auto",
                 block_size: int | None = None, random_state: SeedLike = None, verbose: bool = False,
                 preact_norm: bool = False):
        self.width = width
        self.eta1 = eta1
        self.lambda1 = lambda1
        self.ridge = ridge
        self.head = head
        self.lr = lr
        self.steps = steps
        self.bias_scale = bias_scale
        self.preact_norm = preact_norm
        self.seed = seed
        self.backend = backend
        self.block_size = block_size
        self.random_state = random_state
        self.verbose = verbose

    _FIRST_LAYER_ATTRS = ("W_init_", "a_init_", "grad_", "eta1_", "lambda1_")

    def _check_params(self):
        m = super()._check_params()
        if not (isinstance(self.eta1, str) and self.eta1 == "auto"):
            _real("eta1", self.eta1)
        if self.lambda1 is not None:
            _real("lambda1", self.lambda1, strict=False)
        if not isinstance(self.preact_norm, (bool, np.bool_)):
            raise TypeError(f"preact_norm must be True or False, got {self.preact_norm!r}")
        return m

    def _first_step(self, source, moments, W0, a0):
        """Pass 2: G = ∇_W L(θ⁰) on ỹ, then W¹ = W⁰ − η₁[G + λ₁W⁰]. With rescaled labels
        (``Moments.exponent`` e ≠ 0) the pass computes G' = G·2^{-e}, and W¹ = W⁰ − η₁λ₁W⁰
        − (η₁2^e)G' (eta1='auto': η₁ = ‖W⁰‖/‖G‖ = 2^{-e}‖W⁰‖/‖G'‖). With preact_norm the rows
        of W¹ are then rescaled by √(w_jᵀΣ̂w_j), Σ̂ summed in the same pass."""
        n, e = moments.n, moments.exponent
        G, *S = _data.reduce(source, _gradient_part, (self.backend, self.block_size, self.alpha_, self.beta_, e, W0,
                                                      a0, self.preact_norm), moments, self._progress, "gradient")
        G /= n
        self.grad_ = np.ldexp(G, e)
        if isinstance(self.eta1, str):
            norm = _norm(G)
            if norm == 0:
                raise ValueError("eta1='auto': the first-step gradient is zero (labels affine in x?)")
            eta1 = float(np.ldexp(_norm(W0) / norm, -e))
        else:
            eta1 = float(self.eta1)
        lambda1 = 1.0 / eta1 if self.lambda1 is None else float(self.lambda1)
        self.eta1_, self.lambda1_ = eta1, lambda1
        with np.errstate(over="ignore", invalid="ignore"):  # an overflowing W¹ is reported below
            W1 = W0 - eta1 * (np.ldexp(G, e) + lambda1 * W0) if e == 0 else \
                W0 - eta1 * lambda1 * W0 - np.ldexp(eta1, e) * G
        if not np.isfinite(W1).all():
            raise ValueError(f"eta1={eta1:g} makes the first layer W¹ = W⁰ − η₁(∇L + λ₁W⁰) overflow "
                             f"(‖∇_W L‖ = {np.ldexp(_norm(G), e):g}); use a smaller eta1 or eta1='auto'")
        if not S:
            return W1
        scale = np.sqrt(np.einsum("jk,kl,jl->j", W1, S[0] / n, W1))  # √((1/n)Σ_i (w_j·x_i)²)
        return W1 / np.where(scale > 0, scale, 1.0)[:, None]

    def lemma1_cosine(self, task: Task | ArrayLike) -> float:
        """Return mean_j cos(∇_{w_j}L, −2 a_j H w_j / √(2π)) over the neurons (Lemma 1).

        H = E[∇²f*] is the task's exact average Hessian. Lemma 1 says the cosine tends to 1 as n
        grows (up to Õ(√r/d) terms).

        Parameters
        ----------
        task : pyfeat.tasks.Task or array_like of shape (d, d)
            A task with ``hessian()``, or H itself.

        Returns
        -------
        float
            The mean cosine over the neurons with a nonzero gradient.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        ValueError
            When H is not (d, d).

        Examples
        --------
        >>> import pyfeat as pf
        >>> task = pf.tasks.MultiIndex(d=6, r=2, degree=2, seed=0)
        >>> nn = pf.TwoLayerReLU(width=128).fit(*task.sample(1000, seed=1))
        >>> round(nn.lemma1_cosine(task), 1)
        0.9
        """
        check_is_fitted(self)
        H = _backend.to_numpy(task.hessian() if hasattr(task, "hessian") else task).astype(np.float64)
        d = self.n_features_in_
        if H.shape != (d, d):
            raise ValueError(f"the Hessian must have shape ({d}, {d}), got {H.shape}")
        T = -2.0 * self.a_init_[:, None] * (self.W_init_ @ H) / np.sqrt(2 * np.pi)  # H symmetric
        G = self.grad_
        norms = np.linalg.norm(G, axis=1) * np.linalg.norm(T, axis=1)
        keep = norms > 0
        return float(np.mean(np.sum(G * T, axis=1)[keep] / norms[keep]))


class RandomFeatures(_ReLUNetwork):
    """Algorithm 1 without the first step: the kernel regime at finite width.

    **Network**: f_θ(x) = aᵀσ(Wx + b), σ = ReLU, W ∈ R^{m×d}, width m even, with W = W⁰ of the
    symmetric init (w_j ~ N(0, I_d/d), w_{j+m/2} = w_j: m/2 distinct directions, as the trained
    W¹ = −η₁∇L has m/2 distinct ± pairs) and b_j ~ N(0, bias_scale²) as Algorithm 1
    re-initializes them. Preprocessing (α = mean(y), β = (1/n)Σ y_i x_i; y ← y − α − β·x) and the
    head are those of ``TwoLayerReLU``; predict α + β·x + aᵀσ(W⁰x + b). Two passes over the
    data (moments, Gram).

    Parameters and fitted attributes are those of ``TwoLayerReLU`` without ``eta1``,
    ``lambda1`` and ``grad_``; the same ``seed`` gives the same W⁰ and b as a ``TwoLayerReLU``.

    Parameters
    ----------
    width : int, default 2048
        The width m, even (m/2 distinct directions w_j).
    ridge : "auto", float > 0 or 1-D array of floats > 0, default "auto"
        The head's λ, or GCV over a grid (as in ``TwoLayerReLU``).
    head : {"ridge", "gd"}, default "ridge"
        The closed-form ridge head or the paper's GD loop (as in ``TwoLayerReLU``).
    lr : "auto" or float > 0, default "auto"
        The step η of ``head="gd"``; ``"auto"``: 1/(2 s_max(ΦᵀΦ/n) + λ_gd).
    steps : int >= 0, default 1000
        Number of GD steps (T − 1) for ``head="gd"``.
    bias_scale : float >= 0, default 1.0
        The biases are b_j ~ N(0, bias_scale²).
    seed : int >= 0, numpy Generator, SeedSequence, RandomState or None, default 0
        Seeds the init and the bias draw (those of a ``TwoLayerReLU`` with the same seed).
    backend : {"auto", "numba", "cuda", "numpy"}, default "auto"
        Where the ops run (``pyfeat.backend``).
    block_size : int, optional
        Rows per block of ``pyfeat.ops`` (None: from the memory budget).
    random_state : int >= 0, numpy Generator, SeedSequence, RandomState or None, default None
        The scikit-learn name for the seed; when not None it is used instead of ``seed``.
    verbose : bool, default False
        A tqdm bar per data pass (moments, Gram).

    Attributes
    ----------
    alpha_ : float
        The preprocessing's α = mean(y).
    beta_ : ndarray of shape (d,)
        The preprocessing's β = (1/n)Σ y_i x_i.
    W_init_, W_ : ndarray of shape (m, d)
        W⁰, the fixed first layer (both attributes hold it).
    a_init_ : ndarray of shape (m,)
        a⁰ of θ⁰ (±1; the start of ``head="gd"``).
    b_ : ndarray of shape (m,)
        The biases b.
    a_ : ndarray of shape (m,)
        The head a.
    ridge_ : float
        The λ of the head (chosen by GCV for ``ridge="auto"`` or a grid).
    ridge_grid_, gcv_ : ndarray
        The grid of λ and its GCV scores (when GCV ran).
    lr_ : float
        The step η of ``head="gd"``.
    loss_history_ : ndarray of shape (steps + 1,)
        ``head="gd"``: the training MSE on ỹ before each step and, last, after the final one.
    n_samples_, n_features_in_ : int
        n and d.
    timings_ : dict
        Seconds per phase: "moments", "gram", "head".

    See Also
    --------
    TwoLayerReLU : The network with its feature step.

    Examples
    --------
    >>> import numpy as np
    >>> import pyfeat as pf
    >>> task = pf.tasks.MultiIndex(d=6, r=2, degree=2, seed=0)
    >>> X, y = task.sample(1000, seed=1)
    >>> rf = pf.RandomFeatures(width=128, seed=0).fit(X, y)
    >>> nn = pf.TwoLayerReLU(width=128, seed=0).fit(X, y)
    >>> bool(np.array_equal(rf.W_, nn.W_init_)), bool(np.array_equal(rf.b_, nn.b_))
    (True, True)
    >>> Xt, yt = task.sample(500, seed=2)
    >>> bool(rf.score(Xt, yt) < nn.score(Xt, yt))  # test R² 0.94 and 0.99
    True
    """

    def __init__(self, width: int = 2048, ridge: float | str | ArrayLike = "auto", head: str = "ridge",
                 lr: float | str = "auto", steps: int = 1000, bias_scale: float = 1.0, seed: SeedLike = 0,
                 backend: str = "auto", block_size: int | None = None, random_state: SeedLike = None,
                 verbose: bool = False):
        self.width = width
        self.ridge = ridge
        self.head = head
        self.lr = lr
        self.steps = steps
        self.bias_scale = bias_scale
        self.seed = seed
        self.backend = backend
        self.block_size = block_size
        self.random_state = random_state
        self.verbose = verbose

    def _first_step(self, source, moments, W0, a0):
        return W0.copy()
