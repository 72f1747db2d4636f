"""A two-layer ReLU network trained by gradient descent on both layers (or one of them) for T
steps: the lazy (NTK) regime at large width in the NTK parameterization, feature learning in the
mean-field one (seeds 003, 000, 002).

**Network**: f(x) = c_m Σ_j a_j σ(w_j·x + b_j), σ = ReLU, W ∈ R^{m×d} with rows w_j, a ∈ R^m,
b = 0 unless ``bias=True`` (then b is trained with the first layer, from b = 0). The
parameterization sets the output multiplier c_m, the init scale of a and the learning-rate
multiplier s_m (every parameter's step is lr·s_m·gradient):

- ``"ntk"``: f(x) = (1/√m) Σ a_j σ(w_j·x), w_j ~ N(0, I_d), a_j ~ N(0, 1), s_m = 1;
- ``"mean_field"``: f(x) = (1/m) Σ a_j σ(w_j·x), the same init, s_m = m;
- ``"standard"``: f(x) = Σ a_j σ(w_j·x), w_j ~ N(0, I_d), a_j ~ N(0, 1/m), s_m = 1/m.

"ntk" is exactly seed 003's f(x) = (1/√m) Σ_i b_i σ(a_iᵀx), a_i ~ N(0, I_d), b_i ~ N(0, 1)
(seed 003's a_i, b_i are w_j, a_j here). In all three s_m c_m² = 1/m, so a step moves the
predictions by −(lr/n) K_m (f − y) with the same empirical tangent kernel
K_m(x, z) = (1/m) Σ_j [σ(w_j·x)σ(w_j·z) + a_j² 1[w_j·x ≥ 0]1[w_j·z ≥ 0] x·z]
(``pyfeat.kernels.empirical_ntk``): lr means the same time step in each. As m → ∞, K_m stays at
its limit in "ntk" (lazy training: the relative movement of the weights is O(m^{−1/2})), the
first layer freezes in "standard" (its term of K_m is O(1/m)), and "mean_field" keeps moving
the features (each neuron moves O(1) in time O(1)).

**Init**: ``"symmetric"``: neurons j and j + m/2 share w_j (and b_j) and have opposite a_j, so
f ≡ 0 at the init (width even; DESIGN.md's symmetric init at this parameterization's scales);
``"gaussian"``: every w_j, a_j independent.

**Training** (``pyfeat.models._train``): full-batch (``batch_size=None``) or mini-batch gradient
descent on L(θ) = (1/2n) Σ_i (f(x_i) − y_i)² for ``steps`` steps,
θ ← θ − lr·(s_m ∇_θ L_B(θ) + weight_decay·θ) for θ in the trained layers. Each step is one pass
over its batch through ``pyfeat.ops.blocked.network_gradient`` (two GEMMs of n·m·d per row block;
memory O(m·d + block·(m + d)), independent of n). **Lazy limit**: full-batch GD with lr η for T
steps from the symmetric init, parameterization="ntk", train="both", is kernel gradient flow
``pf.kernel_gradient_flow(X, y, t=η·T)`` (u(t) = e^{−tK/n}u(0), K the "ntk" kernel) in the limit
m → ∞ (and η → 0 at fixed ηT: the flow is the continuous-time limit of the steps).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Self

import numpy as np
from numpy.typing import ArrayLike, DTypeLike
from sklearn.utils.validation import check_array, column_or_1d

from pyfeat import backend as _backend
from pyfeat import kernels as _kernels
from pyfeat._dask import is_dask
from pyfeat import ops
from pyfeat._base import FLOAT_DTYPES, Regressor, SeedLike, check_is_fitted
from pyfeat.models import _data, _train
from pyfeat.models.two_layer import _int, _real, _subspace
from pyfeat.ops import blocked
from pyfeat.ops._plan import blocks, working_dtype

if TYPE_CHECKING:
    from pyfeat.tasks import Task

__all__ = ["GDNetwork", "PARAMETERIZATIONS"]

# name -> (output multiplier c_m, init std of a, learning-rate multiplier s_m) as functions of m
PARAMETERIZATIONS = {
    "ntk": (lambda m: m**-0.5, lambda m: 1.0, lambda m: 1.0),
    "mean_field": (lambda m: 1.0 / m, lambda m: 1.0, lambda m: float(m)),
    "standard": (lambda m: 1.0, lambda m: m**-0.5, lambda m: 1.0 / m),
}
INITS = ("symmetric", "gaussian")
TRAIN = ("both", "first", "second")
_STREAM_BLOCK = 1 << 16
_SQ_ROWS = 1 << 14  # rows per block of the Σ‖x‖² pass over arrays


def _sum_sq(X):
    """Σ_i ‖x_i‖² in float64, block by block."""
    xp = _backend.array_module(X)
    return sum(float(xp.square(X[s:e], dtype=xp.float64).sum()) for s, e in blocks(X.shape[0], _SQ_ROWS))


def _stream_moments(source):
    """(n, d, Σy, Σ‖x‖², working dtype of the first block) of a stream; ``_data.moments``
    checks every block first."""
    total, dtypes = [0.0], []

    def tapped():
        for Xb, yb in source():
            yield Xb, yb
            total[0] += _sum_sq(Xb)  # runs once moments has checked the block
            dtypes.append(working_dtype(Xb))

    mom = _data.moments(tapped)
    return mom.n, mom.d, mom.sum_y, total[0], dtypes[0]


class _NetworkObjective:
    """The network for ``pyfeat.models._train`` (its objective interface): parameters W, a (and b)
    in float64 on the device; per step they are cast to the data's dtype, with a scaled by c_m."""

    def __init__(self, dev, dt, W, a, b, c, s, trained, block_size, U):
        xp = dev.xp
        self.dev, self.dt, self.c, self.block_size = dev, dt, c, block_size
        self.params = {"W": xp.array(W), "a": xp.array(a)}
        if b is not None:
            self.params["b"] = xp.array(b)
        self.lr_scale = {name: s for name in trained if name in self.params}
        self.W0, self.a0 = xp.asarray(W), xp.asarray(a)
        self.U = None if U is None else xp.asarray(U)

    def begin_step(self, t):
        p, dt = self.params, self.dt
        self.W = p["W"].astype(dt)
        self.a = (self.c * p["a"]).astype(dt)
        self.b = p["b"].astype(dt) if "b" in p else self.dev.xp.zeros(self.W.shape[0], dt)

    def gradient(self, X, y):
        sq, gW, ga, gb = blocked.network_gradient(self.dev, X, y, self.W, self.b, self.a, self.block_size,
                                                  grad_W="W" in self.lr_scale)
        grads = {"W": gW, "a": self.c * ga, "b": gb}
        return sq, {name: grads[name] for name in self.lr_scale}

    def predict(self, X):
        return blocked.relu_predict(self.dev, X, self.W, self.b, self.a, self.block_size)

    def residual(self, X, y):
        r = self.predict(X).astype(self.dev.xp.float64) - y
        return float(r @ r)

    def diagnostics(self):
        xp, W, a = self.dev.xp, self.params["W"], self.params["a"]
        out = {"movement_W": float(xp.linalg.norm(W - self.W0) / xp.linalg.norm(self.W0)),
               "movement_a": float(xp.linalg.norm(a - self.a0) / xp.linalg.norm(self.a0))}
        if self.U is not None:
            out["alignment"] = float(xp.sum((W @ self.U) ** 2) / xp.sum(W**2))
        return out


class GDNetwork(Regressor):
    """Two-layer ReLU network trained by (mini-batch or full-batch) gradient descent for T steps.

    f(x) = c_m Σ_j a_j σ(w_j·x + b_j) with, by ``parameterization`` (see ``pyfeat.models.gd``):

    - ``"ntk"``: f(x) = (1/√m) Σ_j a_j σ(w_j·x), w_j ~ N(0, I_d), a_j ~ N(0, 1) (seed 003);
      learning rate lr as given. Lazy at large m: weights move O(m^{−1/2}).
    - ``"mean_field"``: f(x) = (1/m) Σ_j a_j σ(w_j·x), same init; every step is lr·m times the
      gradient (lr scaled by m), so each neuron moves O(1): features are learned at any width.
    - ``"standard"``: f(x) = Σ_j a_j σ(w_j·x), a_j ~ N(0, 1/m); step lr/m times the gradient
      (the largest stable learning rate is O(1/m)): the first layer freezes as m → ∞.

    In all three the predictions move by −(lr/n)K_m(f − y) per full-batch step with the same
    empirical tangent kernel K_m (``tangent_kernel``), so one lr means the same time step.
    Loss L = (1/2n) Σ_i (f(x_i) − y_i)²; update θ ← θ − lr·(s_m ∇_θ L_B + weight_decay·θ).
    Full-batch GD with lr η for T steps from the symmetric init, "ntk", train="both", is
    ``pf.kernel_gradient_flow(X, y, t=η·T)`` with the "ntk" kernel as m → ∞.

    Parameters
    ----------
    width : int, default 2048
        The width m, ≥ 2 (even for the symmetric init).
    parameterization : {"ntk", "mean_field", "standard"}, default "ntk"
        The scaling of the output, the init and the steps (above).
    init : {"symmetric", "gaussian"}, default "symmetric"
        ``"symmetric"``: pairs j, j + m/2 with w_{j+m/2} = w_j, a_{j+m/2} = −a_j, so f ≡ 0 at
        the init; ``"gaussian"``: every w_j, a_j independent.
    lr : float > 0 or "auto", default "auto"
        The learning rate. ``"auto"``: lr = 1/mean_i(‖x_i‖² + [bias]), the inverse of the trace
        per sample of the limiting tangent kernel (tr K/n = mean ‖x‖² for the "ntk" kernel),
        so that lr·λ_max(K/n) ≤ 1: stable in the kernel regime, slow beyond it.
    steps : int >= 0, default 100
        T, the number of gradient steps.
    batch_size : int >= 1, optional
        None: full batch. Else mini-batches (from arrays a fresh permutation per epoch, from a
        stream consecutive rows: ``pyfeat.models._train``).
    train : {"both", "first", "second"}, default "both"
        The trained layers: both, the first (W, and b with ``bias=True``) or the second (a).
    weight_decay : float >= 0, default 0.0
        The λ of θ ← θ − lr·(s_m∇L + λθ).
    bias : bool, default False
        Trained biases b (with the first layer), from b = 0 (False: no biases, seed 003).
    lr_factor : float > 0, default 1.0
        The rate used is lr_factor × lr (e.g. ``lr="auto"``, ``lr_factor=8``: eight times the
        kernel-safe rate, ≈ 8/d for x ~ N(0, I_d), the same relative step at every d).
    seed : int >= 0, numpy Generator, SeedSequence, RandomState or None, default 0
        Seeds the init and the mini-batch order (independent streams; see ``pyfeat._base``).
    backend : {"auto", "numba", "cuda", "numpy"}, default "auto"
        Where the ops run (``pyfeat.backend``).
    block_size : int, optional
        Rows per block of ``pyfeat.ops`` (None: from the memory budget).
    log_every : int >= 1, optional
        History every this many steps (and at the last); None: max(1, steps // 100).
    verbose : bool, default False
        A tqdm progress bar over the steps.
    callback : callable, optional
        ``callback(step, row, params)``, called at every logged step with the history row
        (dict) and the current parameters (dict of float64 arrays "W", "a"[, "b"]); a true
        return value stops training.
    random_state : int >= 0, numpy Generator, SeedSequence, RandomState or None, default None
        The scikit-learn name for the seed; when not None it is used instead of ``seed``.

    Attributes
    ----------
    W_ : ndarray of shape (m, d)
        The trained first layer W (raw parameters: f(x) = c_m · aᵀσ(Wx + b) with
        c_m = ``output_scale_``, a = ``a_``, b = ``b_``).
    a_ : ndarray of shape (m,)
        The trained second layer.
    b_ : ndarray of shape (m,)
        The trained biases (zeros without ``bias``).
    W_init_, a_init_ : ndarray
        θ⁰, the init of W and a.
    output_scale_ : float
        The output multiplier c_m.
    lr_ : float
        The learning rate used.
    history_ : dict
        Equal-length arrays at the logged steps: "step", "train_loss" (L at θ_t), "val_loss"
        (with ``X_val``), "movement_W" = ‖W_t − W_0‖_F/‖W_0‖_F, "movement_a" =
        ‖a_t − a_0‖/‖a_0‖, "alignment" (with U: ‖W_t Π_U‖_F²/‖W_t‖_F²).
    n_iter_ : int
        The steps taken.
    n_samples_, n_features_in_ : int
        n and d.
    fit_time_ : float
        Seconds.

    See Also
    --------
    kernel_gradient_flow : The lazy limit of full-batch GD in the "ntk" parameterization.

    Examples
    --------
    >>> import numpy as np
    >>> import pyfeat as pf
    >>> X, y = pf.tasks.MultiIndex(d=6, r=2, degree=2, seed=0).sample(1000, seed=1)
    >>> net = pf.GDNetwork(width=256, steps=50, seed=0).fit(X, y)
    >>> net.n_iter_, sorted(net.history_)
    (50, ['movement_W', 'movement_a', 'step', 'train_loss'])
    >>> loss = net.history_["train_loss"]
    >>> bool(np.isclose(loss[0], np.mean(y**2) / 2)), bool(loss[-1] < 0.6 * loss[0])  # f ≡ 0 at the init
    (True, True)
    >>> mf = pf.GDNetwork(width=256, steps=50, parameterization="mean_field", seed=0).fit(X, y)
    >>> # the relative movement of W: lazy in "ntk", O(1) in "mean_field"
    >>> round(float(net.history_["movement_W"][-1]), 2), round(float(mf.history_["movement_W"][-1]), 1)
    (0.03, 0.5)
    """

    def __init__(self, width: int = 2048, parameterization: str = "ntk", init: str = "symmetric",
                 lr: float | str = "auto", steps: int = 100, batch_size: int | None = None, train: str = "both",
                 weight_decay: float = 0.0, bias: bool = False, lr_factor: float = 1.0, seed: SeedLike = 0,
                 backend: str = "auto", block_size: int | None = None, log_every: int | None = None,
                 verbose: bool = False, callback: Callable | None = None, random_state: SeedLike = None):
        self.width = width
        self.parameterization = parameterization
        self.init = init
        self.lr = lr
        self.lr_factor = lr_factor
        self.steps = steps
        self.batch_size = batch_size
        self.train = train
        self.weight_decay = weight_decay
        self.bias = bias
        self.seed = seed
        self.backend = backend
        self.block_size = block_size
        self.log_every = log_every
        self.verbose = verbose
        self.callback = callback
        self.random_state = random_state

    # -- parameters ---------------------------------------------------------------------------

    def _check_params(self):
        m = _int("width", self.width, 2)
        for name, choices in (("parameterization", tuple(PARAMETERIZATIONS)), ("init", INITS), ("train", TRAIN)):
            value = getattr(self, name)
            if not isinstance(value, str) or value not in choices:
                raise ValueError(f"{name} must be one of {choices}, got {value!r}")
        if self.init == "symmetric" and m % 2:
            raise ValueError(f"width must be even for init='symmetric' (neuron j is paired with j + m/2), got {m}")
        if not (isinstance(self.lr, str) and self.lr == "auto"):
            _real("lr", self.lr)
        _int("steps", self.steps, 0)
        for name in ("batch_size", "log_every", "block_size"):
            if getattr(self, name) is not None:
                _int(name, getattr(self, name), 1)
        _real("weight_decay", self.weight_decay, strict=False)
        _real("lr_factor", self.lr_factor)
        for name in ("bias", "verbose"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.callback is not None and not callable(self.callback):
            raise TypeError(f"callback must be None or a callable(step, row, params), got {self.callback!r}")
        self._check_seeds()
        _backend.resolve(self.backend)
        return m

    def _init(self, m, d, rng):
        """(W, a): w_j ~ N(0, I_d), a_j ~ N(0, σ_a²), paired for the symmetric init."""
        std_a = PARAMETERIZATIONS[self.parameterization][1](m)
        if self.init == "gaussian":
            return rng.standard_normal((m, d)), std_a * rng.standard_normal(m)
        a = std_a * rng.standard_normal(m // 2)
        W = rng.standard_normal((m // 2, d))
        return np.concatenate([W, W]), np.concatenate([a, -a])

    # -- fitting ------------------------------------------------------------------------------

    def fit(self, X: ArrayLike | Iterable | Callable, y: ArrayLike | None = None, X_val: ArrayLike | None = None,
            y_val: ArrayLike | None = None, U: ArrayLike | Task | None = None) -> Self:
        """Train on arrays X, y, or on a reproducible stream of (X_block, y_block).

        The data paths are those of ``TwoLayerReLU.fit``. Dask arrays are read chunk by chunk
        (each pass computes the chunks in turn; the steps run here). ``GDNetwork``,
        ``QuadraticTaylor`` and ``HierarchicalQuadratic`` share this method.

        Parameters
        ----------
        X : array_like of shape (n, d), re-iterable or callable
            The inputs (NumPy, CuPy, dask or anything scikit-learn accepts; float32 stays
            float32), or a stream of (X_block, y_block) pairs: a re-iterable, or a callable
            returning a fresh iterator.
        y : array_like of shape (n,), optional
            The labels; None when X is a stream.
        X_val, y_val : array_like of shape (n_val, d) and (n_val,), optional
            Held-out data for the "val_loss" history (both or neither).
        U : array_like of shape (r, d), or a task with ``.U``, optional
            The subspace of the "alignment" history (not for ``HierarchicalQuadratic``, whose
            weights live in the representation's coordinates).

        Returns
        -------
        GDNetwork, QuadraticTaylor or HierarchicalQuadratic
            This model, fitted.

        Raises
        ------
        ValueError
            A parameter out of range (named), bad input, only one of X_val and y_val, or a loss
            that is not finite (divergence; the message names lr).
        TypeError
            A parameter of the wrong type.

        Examples
        --------
        >>> import pyfeat as pf
        >>> task = pf.tasks.MultiIndex(d=6, r=2, degree=2, seed=0)
        >>> X, y = task.sample(1000, seed=1)
        >>> Xv, yv = task.sample(200, seed=2)
        >>> net = pf.GDNetwork(width=64, steps=20).fit(X, y, X_val=Xv, y_val=yv, U=task)
        >>> sorted(net.history_)
        ['alignment', 'movement_W', 'movement_a', 'step', 'train_loss', 'val_loss']
        >>> pf.QuadraticTaylor(width=64, steps=20).fit(X, y).n_iter_
        20
        """
        m = self._check_params()
        dev = ops.device(self.backend)
        if y is not None and not is_dask(X):
            X, y = self._validate_xy(X, y)
            data = _train.Data(dev, X, y)
            sum_sq = _sum_sq(data.X) if isinstance(self.lr, str) else None
        else:
            source = _data.fit_source(self, X, y)  # a stream, or a dask array's chunks
            n, d, sum_y, sum_sq, dt = _stream_moments(source)
            data = _train.Data(dev, source=source, n=n, sum_y=sum_y, dtype=dt)
            self.n_features_in_ = d
        return self._fit(data, sum_sq, m, X_val, y_val, U)

    def fit_task(self, task: Task, n: int, seed: int = 0, block: int = _STREAM_BLOCK, dtype: DTypeLike = np.float64,
                 X_val: ArrayLike | None = None, y_val: ArrayLike | None = None) -> Self:
        """Train on n samples of ``task.stream(n, block=block, seed=seed, dtype=dtype)``.

        X is never held whole. The "alignment" history uses ``task.U`` when the task has one
        (except for ``HierarchicalQuadratic``).

        Parameters
        ----------
        task : pyfeat.tasks.Task
            The task whose stream is read.
        n : int
            Number of samples, ≥ 1.
        seed : int, default 0
            The data seed of ``task.stream``.
        block : int, default 65536
            Rows per block of the stream.
        dtype : {numpy.float64, numpy.float32}, default numpy.float64
            The dtype of the generated rows.
        X_val, y_val : array_like of shape (n_val, d) and (n_val,), optional
            Held-out data for the "val_loss" history.

        Returns
        -------
        GDNetwork, QuadraticTaylor or HierarchicalQuadratic
            This model, fitted.

        Examples
        --------
        >>> import numpy as np
        >>> import pyfeat as pf
        >>> task = pf.tasks.MultiIndex(d=6, r=2, degree=2, seed=0)
        >>> net = pf.GDNetwork(width=64, steps=20).fit_task(task, n=1000, seed=1)
        >>> "alignment" in net.history_
        True
        >>> X, y = task.sample(1000, seed=1)  # the stream's rows: the same training
        >>> bool(np.allclose(net.W_, pf.GDNetwork(width=64, steps=20).fit(X, y).W_))
        True
        """
        n = _int("n", n, 1)
        return self.fit(lambda: task.stream(n, block=block, seed=seed, dtype=dtype), X_val=X_val, y_val=y_val,
                        U=getattr(task, "U", None))

    def _fit(self, data, sum_sq, m, X_val, y_val, U):
        t0 = time.perf_counter()
        dev, n, d = data.dev, data.n, self.n_features_in_
        self.n_samples_ = n
        c, _, s = (f(m) for f in PARAMETERIZATIONS[self.parameterization])
        self.output_scale_ = c
        lr = 1.0 / (sum_sq / n + float(self.bias)) if isinstance(self.lr, str) else float(self.lr)
        self.lr_ = float(self.lr_factor) * lr
        init_seq, batch_seq = self._seed_sequence().spawn(2)
        W0, a0 = self._init(m, d, np.random.default_rng(init_seq))
        self.W_init_, self.a_init_ = W0, a0
        trained = {"both": ("W", "a", "b"), "first": ("W", "b"), "second": ("a",)}[self.train]
        objective = _NetworkObjective(dev, data.dtype, W0, a0, np.zeros(m) if self.bias else None, c, s, trained,
                                      self.block_size, None if U is None else _subspace(U, d))
        val = self._validation(X_val, y_val, dev, data.dtype)
        log_every = max(1, self.steps // 100) if self.log_every is None else self.log_every
        self.history_ = _train.train(objective, data, steps=self.steps, lr=self.lr_, batch_size=self.batch_size,
                                     weight_decay=float(self.weight_decay), rng=np.random.default_rng(batch_seq),
                                     log_every=log_every, val=val, callback=self.callback, verbose=self.verbose,
                                     desc=type(self).__name__)
        self.n_iter_ = int(self.history_["step"][-1])
        params = {k: _backend.to_numpy(v) for k, v in objective.params.items()}
        self.W_, self.a_ = params["W"], params["a"]
        self.b_ = params.get("b", np.zeros(m))
        self.fit_time_ = time.perf_counter() - t0
        return self

    def _validation(self, X_val, y_val, dev, dt):
        """(X_val, y_val) on the device (y in the training dtype), or None."""
        if X_val is None and y_val is None:
            return None
        if X_val is None or y_val is None:
            raise ValueError("X_val and y_val must be given together")
        Xv = self._validate_x(X_val, "X_val")
        yv = column_or_1d(check_array(_backend.to_numpy(y_val), ensure_2d=False, dtype=FLOAT_DTYPES,
                                      input_name="y_val"))
        if yv.shape[0] != Xv.shape[0]:
            raise ValueError(f"y_val must have one value per row of X_val ({Xv.shape[0]}), got {yv.shape[0]}")
        return dev.asarray(Xv), dev.asarray(yv, dt)

    # -- prediction and diagnostics -----------------------------------------------------------

    def _predict(self, X):
        """f(x) = c_m aᵀσ(Wx + b) for each row of X (streamed; float32 for float32 X; ``predict``
        of a dask array maps this over its chunks)."""
        X = self._validate_x(X)
        dev = ops.device(self.backend)
        Xd = dev.asarray(X)
        dt = working_dtype(Xd)
        W, b, a = (dev.asarray(np.ascontiguousarray(v, dtype=dt)) for v in
                   (self.W_, self.b_, self.output_scale_ * self.a_))
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below
            out = self._finite_predictions(blocked.relu_predict(dev, Xd, W, b, a, self.block_size))
        return out if _backend.is_cupy(X) else _backend.to_numpy(out)

    def alignment(self, U: ArrayLike | Task, init: bool = False) -> float:
        """Return ‖W Πᵤ‖_F² / ‖W‖_F², the fraction of first-layer energy in span(U).

        Parameters
        ----------
        U : array_like of shape (r, d), or a task with ``.U``
            Rows spanning the principal subspace.
        init : bool, default False
            True: of ``W_init_`` instead of ``W_``.

        Returns
        -------
        float
            The fraction, in [0, 1] (about r/d at a Gaussian init).

        Raises
        ------
        ValueError
            When U is not (r, d) or not finite.

        Examples
        --------
        >>> import pyfeat as pf
        >>> task = pf.tasks.MultiIndex(d=6, r=2, degree=2, seed=0)
        >>> X, y = task.sample(1000, seed=1)
        >>> net = pf.GDNetwork(width=256, steps=50, parameterization="mean_field").fit(X, y)
        >>> round(net.alignment(task, init=True), 2), round(net.alignment(task), 2)  # r/d = 0.33
        (0.34, 0.46)
        """
        check_is_fitted(self)
        W = self.W_init_ if init else self.W_
        return float(np.sum((W @ _subspace(U, W.shape[1])) ** 2) / np.sum(W**2))

    def tangent_kernel(self, X: ArrayLike, Z: ArrayLike | None = None, init: bool = False) -> np.ndarray:
        """Return the empirical tangent kernel of the training dynamics.

        K_m(x, z) = Σ_θ s_m ∂_θf(x)∂_θf(z) over the trained parameters θ, at the fitted
        parameters (``init=True``: at θ⁰). Since s_m c_m² = 1/m in every parameterization this is
        ``pyfeat.kernels.empirical_ntk(X, Z, W, a, b, layers=train)``; for "ntk" and
        train="both" it tends to the "ntk" kernel as m → ∞ (at the init, and in the lazy regime
        after training too).

        Parameters
        ----------
        X : array_like of shape (n_x, d)
            Rows x.
        Z : array_like of shape (n_z, d), optional
            Rows z (None: Z = X).
        init : bool, default False
            True: at the init θ⁰ instead of the trained parameters.

        Returns
        -------
        ndarray of shape (n_x, n_z)
            K_m(x_i, z_j), float64.

        Examples
        --------
        >>> import numpy as np
        >>> import pyfeat as pf
        >>> X, y = pf.tasks.MultiIndex(d=6, r=2, degree=2, seed=0).sample(100, seed=1)
        >>> net = pf.GDNetwork(width=4096, steps=0).fit(X, y)
        >>> K, K_inf = net.tangent_kernel(X[:5]), pf.kernels.get("ntk")(X[:5])
        >>> K.shape, bool(np.allclose(K, K.T)), bool(np.abs(K - K_inf).max() < 0.1 * np.abs(K_inf).max())
        ((5, 5), True, True)
        """
        check_is_fitted(self)
        W, a = (self.W_init_, self.a_init_) if init else (self.W_, self.a_)
        b = (np.zeros_like(a) if init else self.b_) if self.bias else None
        X = self._validate_x(X)
        Z = X if Z is None else self._validate_x(Z, "Z")
        return _kernels.empirical_ntk(X, Z, W, a, b, layers=self.train)
