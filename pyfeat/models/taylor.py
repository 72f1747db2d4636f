"""Beyond linearization (seed 002: Bai & Lee 2020; Chen, Bai, Lee et al. 2020): a two-layer
network trained in its quadratic Taylor regime with random signs on the weight movement, and the
hierarchical learner that applies it to a fixed random representation h(x).

**Model.** f_{W0+W}(x) = (1/√m) Σ_r a_r σ((w0_r + w_r)·x) expanded around the symmetric init W0
(neurons r and r + m/2 share w0_r and have opposite a_r ∈ {±1}, w0_r ~ N(0, I_d/d), so
f⁽⁰⁾ = f_{W0} ≡ 0), with W the trained *movement* (only the first layer moves):

    f⁽¹⁾_{W0,W}(x) = (1/√m) Σ_r a_r σ'(w0_r·x)(w_r·x)              (the linearized / NTK model)
    f⁽²⁾_{W0,W}(x) = (1/(2√m)) Σ_r a_r σ''(w0_r·x)(w_r·x)²          (the quadratic model)

exactly as seed 002 writes them (w0_r ~ N(0, I_d/d) on x ~ N(0, I_d) is the seed's w0_r ~ N(0, I)
on inputs of norm ≈ 1: w0_r·x = O(1)). ``order`` selects the Taylor model: 1 → f⁽¹⁾, 2 →
f⁽¹⁾ + f⁽²⁾, "2only" → f⁽²⁾.

**Random signs.** With ``signs="resample"`` and order 2, every step draws fresh s_r ∈ {±1}
(uniform, from the model's seed) and takes the gradient at W0 + SW: f⁽¹⁾_{W0,SW} has E_S = 0
(it only adds noise) while f⁽²⁾_{W0,SW} = f⁽²⁾_{W0,W} (s_r² = 1), so the quadratic term fits the
data: SGD on E_S[L(W0 + SW)] + R(W). The predictor is E_S f_{W0+SW} = f⁽²⁾. The linear model
(order 1) is trained without signs (they would kill it); f⁽²⁾ does not see them.

**Objective.** L = (1/2n) Σ_i (f(x_i) − y_i)² at the step's signs, plus the regularizer

    R(W) = λ ‖W‖_{2,4}⁸,   ‖W‖_{2,4} = (Σ_r ‖w_r‖⁴)^{1/4},   ∇_{w_r} R = 8λ ‖W‖_{2,4}⁴ ‖w_r‖² w_r

(λ = ``penalty``), the regularizer of Bai & Lee's landscape theorem as we recall it (the seed
names R without its formula; the paper's text could not be retrieved here), and the loop's
optional ``weight_decay``. Trained by ``pyfeat.models._train`` (full batch or mini-batches,
arrays or streams): W ← W − lr·(s_W ∇_W(L + R) + weight_decay·W), and with ``noise`` > 0 the
perturbation W ← W + noise·√lr·ξ (ξ ~ N(0, I), seeded) before every step: perturbed (noisy)
gradient descent, the escaping-saddle algorithm of the theorem.

**Scales.** In the quadratic regime ‖w_r‖ ≍ m^{−1/4} (so f⁽²⁾ = O(1)), where f⁽²⁾'s tangent kernel
is O(‖x‖²/√m): the step multiplier is s_W = √m for orders 2 and "2only" (one lr is the same
time step at every width) and s_W = 1 for order 1 (the NTK scale). W starts at
w_r ~ N(0, init_scale²·m^{−1/2}·I_d/d), small but not 0: W = 0 is a stationary point of f⁽²⁾.

**Cost.** Each step is one pass through ``pyfeat.ops.blocked.taylor_gradient``: per row block one
GEMM of width 2m (X[W0; W]ᵀ), a fused epilogue, one GEMM Pᵀ X: 6·n·m·d FLOPs, memory
O(m·d + block·(m + d)), independent of n.

**Activation.** σ'' of the ReLU is a delta, so f⁽²⁾ would vanish; ``activation`` is one of
``pyfeat._activation_table``: "relu3" (σ = relu³/6, σ'' = relu; default), "softplus",
"relu2" (σ'' = 1[t ≥ 0]), "cubic" (σ = t³/6). relu3 is the default because σ'' = relu makes
relu(w0·x)(w·x)² rich, unbounded features and is Lipschitz (so the Taylor remainder is
O(‖W‖³)); measured on LowRankPolynomial(d=16, r=2, degree=3), n = 2000, m = 256, 300 steps of
lr = 8/mean‖x‖², the test MSE of f⁽²⁾ alone was 0.015 with relu3, 0.062 with relu2 and about 1
with softplus, whose σ'' = p(1 − p) ≤ 1/4 is nearly flat.

**Hierarchical learner.** ``HierarchicalQuadratic`` applies the same model to h(x) ∈ R^D
instead of x (below).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from pyfeat import _activation_table, ops
from pyfeat import backend as _backend
from pyfeat._base import Regressor, SeedLike, check_is_fitted
from pyfeat.models import _train
from pyfeat.models.gd import GDNetwork
from pyfeat.models.two_layer import _int, _real, _subspace
from pyfeat.ops import blocked
from pyfeat.ops._plan import working_dtype

if TYPE_CHECKING:
    from pyfeat.tasks import Task

__all__ = ["QuadraticTaylor", "HierarchicalQuadratic", "ORDERS", "SIGNS"]

ORDERS = (1, 2, "2only")
SIGNS = ("resample", "none")
_SAMPLE_CELLS = 1 << 20  # lr="auto" looks at rows × m ≤ this many pre-activations of the first rows


def _terms(order):
    """(c1, c2): whether f⁽¹⁾ and f⁽²⁾ are in the model."""
    return float(order in (1, 2)), float(order in (2, "2only"))


def auto_lr(P: np.ndarray, y: np.ndarray, W0: np.ndarray, activation: str, order: int | str,
            resampled: bool) -> float:
    """Return the learning rate of ``lr="auto"`` from sample rows of the model's inputs at the init.

    With u0_ir = w0_r·φ_i:

    - order 1: 2/τ₁, τ₁ = mean_i (1/m) Σ_r σ'(u0_ir)² ‖φ_i‖² (the trace per sample of f⁽¹⁾'s
      tangent kernel: lr·λ_max < 2 for the linear model);
    - orders 2, "2only": 1/max(ρτ₂, 2τ_y), τ₂ = mean_i (1/m) Σ_r σ''(u0_ir)² ‖φ_i‖⁴/D (the trace
      per sample of f⁽²⁾'s tangent kernel, step multiplier √m included, at the quadratic scale
      w_r ~ N(0, I_D/(D√m)): the Gauss–Newton part of the curvature), times ρ = max(1, rms(y))
      (fitting f⁽²⁾ ≈ y takes ‖w_r‖² ∝ rms(y)), and τ_y = mean_i abs(y_i) (1/m) Σ_r
      abs(σ''(u0_ir)) ‖φ_i‖² (a bound on the residual part, a_r (1/n) Σ_i r_i σ''(u0_ir) φ_i φ_iᵀ
      per neuron, at r = −y; twice); halved with resampled signs (``resampled``), whose f⁽¹⁾
      noise in the steps grows with lr.

    For x ~ N(0, I_d), relu3 and LowRankPolynomial labels: 2/τ₁ = 2d/(0.375 (d + 2)(d + 4))
    (→ 5.3/d) and 1.2/d … 1.5/d (half that with resampled signs).

    Parameters
    ----------
    P : ndarray of shape (rows, D)
        Sample rows of the model's inputs φ(x) (float64).
    y : ndarray of shape (rows,)
        Their labels.
    W0 : ndarray of shape (m, D)
        The init.
    activation : str
        A name of ``pyfeat._activation_table`` ("relu3", "softplus", "relu2", "cubic").
    order : {1, 2, "2only"}
        The Taylor model.
    resampled : bool
        Whether the steps resample the signs (order 2 with ``signs="resample"``).

    Returns
    -------
    float
        The learning rate (1.0 when the trace is 0: X = 0).

    Examples
    --------
    >>> import numpy as np
    >>> from pyfeat.models.taylor import auto_lr
    >>> rng = np.random.default_rng(0)
    >>> P, W0 = rng.standard_normal((10000, 8)), rng.standard_normal((64, 8))
    >>> W0 /= np.linalg.norm(W0, axis=1, keepdims=True)  # u0 ~ N(0, 1): τ₁ = 0.375 (d + 4)
    >>> lr = auto_lr(P, np.zeros(10000), W0, "relu3", 1, False)
    >>> round(lr * 0.375 * (8 + 4) / 2, 1)
    1.0
    >>> y = rng.standard_normal(10000)
    >>> bool(np.isclose(auto_lr(P, y, W0, "relu3", 2, True), auto_lr(P, y, W0, "relu3", 2, False) / 2))
    True
    """
    act = _activation_table.parse(activation)
    U0 = P @ W0.T
    sq = np.sum(P * P, axis=1)
    if order == 1:
        trace, scale = np.mean(np.mean(act.derivative(U0, 1) ** 2, axis=1) * sq), 2.0
    else:
        d2 = act.derivative(U0, 2)
        size = max(1.0, float(np.sqrt(np.mean(y * y))))  # f⁽²⁾ ≈ y needs ‖w_r‖² ∝ rms(y)
        trace = max(size * np.mean(np.mean(d2**2, axis=1) * sq * sq) / P.shape[1],
                    2 * np.mean(np.abs(y) * np.mean(np.abs(d2), axis=1) * sq))
        scale = 0.5 if resampled else 1.0
    return float(scale / trace) if trace > 0 else 1.0


def _first_rows(data, rows):
    """The first ≤ ``rows`` rows (X, y) of the training data, float64 on the host."""
    Xb, yb = (data.X, data.y) if data.source is None else next(iter(data.passes()))
    return tuple(_backend.to_numpy(v[:rows]).astype(np.float64) for v in (Xb, yb))


def norm_24(W: ArrayLike) -> float:
    """Return ‖W‖_{2,4} = (Σ_r ‖w_r‖⁴)^{1/4} over the rows w_r of W.

    Parameters
    ----------
    W : array_like of shape (m, D)
        Rows w_r.

    Returns
    -------
    float
        The norm, computed in float64.

    Examples
    --------
    >>> from pyfeat.models.taylor import norm_24
    >>> norm_24([[3.0, 4.0], [0.0, 0.0]])  # one row of norm 5
    5.0
    >>> round(norm_24([[1.0, 0.0], [0.0, 2.0]]) ** 4, 6)  # 1 + 16
    17.0
    """
    return float(np.sum(np.sum(np.asarray(W, dtype=np.float64) ** 2, axis=1) ** 2) ** 0.25)


class _Identity:
    """The raw inputs as the model's φ(x) = x: no features, no change of coordinates."""

    features = None

    @staticmethod
    def weights(W):
        """(W, b) as the op sees them (b None: zeros), for W (m, D) in the model's coordinates
        (a device array)."""
        return W, None

    @staticmethod
    def gradient(gW, gb):
        """The gradient in the model's coordinates from the op's (g_W, g_b)."""
        return gW

    @staticmethod
    def transform(X):
        """φ(x) of host rows X (float64)."""
        return X


class _Whitened:
    """h(x) = T(φ(x) − μ) with φ(x) = relu(Vx + c) (the op's ``features``) and T symmetric: the
    model's w·h(x) is the op's w'·φ(x) + b with w' = Tw, b = −w'·μ, and the gradient in h
    coordinates is (g_W − g_b μᵀ) T (device arrays; V, c in the working dtype dt)."""

    def __init__(self, dev, dt, V, c, mean, T):
        self.host = V, c, mean, T
        self.features = (dev.asarray(np.ascontiguousarray(V), dt), dev.asarray(c, dt))
        self.mean, self.T = dev.asarray(mean, dev.xp.float64), dev.asarray(T, dev.xp.float64)

    def transform(self, X):
        V, c, mean, T = self.host
        return (np.maximum(X @ V.T + c, 0.0) - mean) @ T

    def weights(self, W):
        Wp = W @ self.T
        return Wp, -(Wp @ self.mean)

    def gradient(self, gW, gb):
        return (gW - gb[:, None] * self.mean[None, :]) @ self.T


class _TaylorObjective:
    """The Taylor model for ``pyfeat.models._train`` (its objective interface): the movement W in
    float64 on the device; per step the signs, the coefficients a1 = c1·s·a/√m, a2 = c2·a/√m and
    the op's weights (cast to the data's dtype), the perturbation and ∇R."""

    def __init__(self, model, dev, dt, W0, a, W, rep, scale, steps, rngs, U):
        xp = dev.xp
        self.dev, self.dt, self.rep, self.steps = dev, dt, rep, steps
        self.model = model
        self.c1, self.c2 = _terms(model.order)
        self.resample = model.signs == "resample" and model.order == 2
        self.act = _activation_table.parse(model.activation)
        self.penalty, self.noise = float(model.penalty), float(model.noise)
        self.lr = model.lr_
        self.sign_rng, self.noise_rng = rngs
        self.a = a / math.sqrt(a.shape[0])
        self.params = {"W": xp.array(W, dtype=xp.float64)}
        self.lr_scale = {"W": scale}
        W0_op, b0 = rep.weights(dev.asarray(W0))
        self.W0 = xp.ascontiguousarray(W0_op, dtype=dt)
        self.b0 = xp.zeros(W0.shape[0], dt) if b0 is None else xp.ascontiguousarray(b0, dtype=dt)
        self.norm0 = float(np.linalg.norm(W0))
        self.U = None if U is None else xp.asarray(U)

    def begin_step(self, t):
        xp, dt, m = self.dev.xp, self.dt, self.a.shape[0]
        W = self.params["W"]
        if self.noise and t < self.steps:
            W += xp.asarray(self.noise * math.sqrt(self.lr) * self.noise_rng.standard_normal(W.shape))
        s = self.sign_rng.choice([-1.0, 1.0], m) if self.resample else np.ones(m)
        self.a1 = self.dev.asarray(self.c1 * s * self.a, dt)
        self.a2 = self.dev.asarray(self.c2 * self.a, dt)
        W_op, b = self.rep.weights(W)
        self.W = xp.ascontiguousarray(W_op, dtype=dt)
        self.b = xp.zeros(m, dt) if b is None else b.astype(dt)
        self.grad_R = None
        if self.penalty:
            sq = xp.sum(W * W, axis=1)
            self.grad_R = (8 * self.penalty * float(xp.sum(sq * sq))) * sq[:, None] * W

    def gradient(self, X, y):
        sq, gW, gb = blocked.taylor_gradient(self.dev, X, y, self.W0, self.b0, self.W, self.b, self.a1, self.a2,
                                             self.act, self.rep.features, self.model.block_size)
        G = self.rep.gradient(gW, gb)
        if self.grad_R is not None:
            G += X.shape[0] * self.grad_R  # the loop divides the batch's sum by its rows
        return sq, {"W": G}

    def residual(self, X, y):
        f = blocked.taylor_predict(self.dev, X, self.W0, self.b0, self.W, self.b, self.a1, self.a2, self.act,
                                   self.rep.features, self.model.block_size)
        r = f.astype(self.dev.xp.float64) - y
        return float(r @ r)

    def diagnostics(self):
        W = _backend.to_numpy(self.params["W"])
        out = {"movement_W": float(np.linalg.norm(W)) / self.norm0, "norm_24": norm_24(W)}
        if self.U is not None:
            out["alignment"] = float(np.sum((W @ _backend.to_numpy(self.U)) ** 2) / max(np.sum(W**2), 1e-300))
        return out


class _TaylorModel(Regressor):
    """What QuadraticTaylor and HierarchicalQuadratic share: the parameters, the fit, the predictor."""

    def __init__(self, width: int = 1024, order: int | str = 2, signs: str = "resample", activation: str = "relu3",
                 lr: float | str = "auto", steps: int = 300, batch_size: int | None = None, penalty: float = 0.0,
                 weight_decay: float = 0.0, noise: float = 0.0, init_scale: float = 0.1, seed: SeedLike = 0,
                 backend: str = "auto", block_size: int | None = None, log_every: int | None = None,
                 verbose: bool = False, callback: Callable | None = None, random_state: SeedLike = None):
        self.width = width
        self.order = order
        self.signs = signs
        self.activation = activation
        self.lr = lr
        self.steps = steps
        self.batch_size = batch_size
        self.penalty = penalty
        self.weight_decay = weight_decay
        self.noise = noise
        self.init_scale = init_scale
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
        if m % 2:
            raise ValueError(f"width must be even (neuron r is paired with r + m/2 so that f⁽⁰⁾ ≡ 0), got {m}")
        if isinstance(self.order, (bool, np.bool_)) or self.order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, got {self.order!r}")
        if not isinstance(self.signs, str) or self.signs not in SIGNS:
            raise ValueError(f"signs must be one of {SIGNS}, got {self.signs!r}")
        _activation_table.parse(self.activation)
        if not (isinstance(self.lr, str) and self.lr == "auto"):
            _real("lr", self.lr)
        _int("steps", self.steps, 0)
        for name in ("batch_size", "log_every", "block_size"):
            if getattr(self, name) is not None:
                _int(name, getattr(self, name), 1)
        for name in ("penalty", "weight_decay", "noise", "init_scale"):
            _real(name, getattr(self, name), strict=False)
        if self.order == "2only" and self.init_scale == 0 and self.noise == 0:
            raise ValueError("init_scale must be > 0 for order='2only' without noise: W = 0 is a stationary "
                             "point of f⁽²⁾ (its gradient vanishes there)")
        if not isinstance(self.verbose, (bool, np.bool_)):
            raise TypeError(f"verbose must be True or False, got {self.verbose!r}")
        if self.callback is not None and not callable(self.callback):
            raise TypeError(f"callback must be None or a callable(step, row, params), got {self.callback!r}")
        self._check_seeds()
        _backend.resolve(self.backend)
        return m

    # -- fitting (the data paths of GDNetwork: arrays or reproducible streams) ---------------

    fit = GDNetwork.fit
    fit_task = GDNetwork.fit_task
    _validation = GDNetwork._validation

    def _representation(self, data, seq):
        """(the model's inputs φ and coordinates, their dimension D): here x itself."""
        return _Identity(), self.n_features_in_

    def _fitted_representation(self, dev, dt):
        return _Identity()

    def _fit(self, data, sum_sq, m, X_val, y_val, U):  # sum_sq: GDNetwork.fit's, unused here
        t0 = time.perf_counter()
        dev, n = data.dev, data.n
        self.n_samples_ = n
        init_seq, batch_seq, sign_seq, noise_seq, rep_seq = self._seed_sequence().spawn(5)
        rep, D = self._representation(data, rep_seq)
        self.lr_scale_ = 1.0 if self.order == 1 else math.sqrt(m)
        rng = np.random.default_rng(init_seq)
        W0 = rng.standard_normal((m // 2, D)) / math.sqrt(D)
        a = rng.choice([-1.0, 1.0], m // 2)
        self.W_init_, self.a_ = np.concatenate([W0, W0]), np.concatenate([a, -a])
        if isinstance(self.lr, str):
            Xs, ys = _first_rows(data, max(64, _SAMPLE_CELLS // m))
            self.lr_ = auto_lr(rep.transform(Xs), ys, self.W_init_, self.activation, self.order,
                               self.order == 2 and self.signs == "resample")
        else:
            self.lr_ = float(self.lr)
        self.W_start_ = (float(self.init_scale) * m**-0.25 / math.sqrt(D)) * rng.standard_normal((m, D))
        if U is not None and not isinstance(rep, _Identity):
            U = None  # the movement lives in the representation's coordinates: no alignment with U
        objective = _TaylorObjective(self, dev, data.dtype, self.W_init_, self.a_, self.W_start_, rep,
                                     self.lr_scale_, int(self.steps),
                                     (np.random.default_rng(sign_seq), np.random.default_rng(noise_seq)),
                                     None if U is None else _subspace(U, D))
        val = self._validation(X_val, y_val, dev, data.dtype)
        log_every = max(1, self.steps // 100) if self.log_every is None else self.log_every
        self.history_ = _train.train(objective, data, steps=self.steps, lr=self.lr_, batch_size=self.batch_size,
                                     weight_decay=float(self.weight_decay), rng=np.random.default_rng(batch_seq),
                                     log_every=log_every, val=val, callback=self.callback, verbose=self.verbose,
                                     desc=type(self).__name__)
        self.n_iter_ = int(self.history_["step"][-1])
        self.W_ = _backend.to_numpy(objective.params["W"])
        self.fit_time_ = time.perf_counter() - t0
        return self

    # -- prediction ---------------------------------------------------------------------------

    def _predictor(self, dev, dt):
        """(W0, b0, W, b, a1, a2, features) of the predictor E_S f on ``dev`` in dtype dt."""
        xp = dev.xp
        rep = self._fitted_representation(dev, dt)
        c1, c2 = _terms(self.order)
        if self.order == 2 and self.signs == "resample":
            c1 = 0.0  # E_S f⁽¹⁾_{W0,SW} = 0
        a = self.a_ / math.sqrt(self.a_.shape[0])
        out = []
        for W in (self.W_init_, self.W_):
            Wp, b = rep.weights(dev.asarray(W))
            out += [xp.ascontiguousarray(Wp, dtype=dt), xp.zeros(a.shape[0], dt) if b is None else b.astype(dt)]
        return (*out, dev.asarray(c1 * a, dt), dev.asarray(c2 * a, dt), rep.features)

    def _predict(self, X):
        """The predictor E_S f(x) of the fitted Taylor model (f⁽²⁾ for order 2 with resampled
        signs, f⁽¹⁾ + f⁽²⁾ with signs="none", f⁽¹⁾ for order 1, f⁽²⁾ for "2only"), streamed;
        float32 for float32 X (``predict`` of a dask array maps this over its chunks)."""
        X = self._validate_x(X)
        dev = ops.device(self.backend)
        Xd = dev.asarray(X)
        W0, b0, W, b, a1, a2, features = self._predictor(dev, working_dtype(Xd))
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below
            out = self._finite_predictions(blocked.taylor_predict(dev, Xd, W0, b0, W, b, a1, a2,
                                                                  _activation_table.parse(self.activation),
                                                                  features, self.block_size))
        return out if _backend.is_cupy(X) else _backend.to_numpy(out)


class QuadraticTaylor(_TaylorModel):
    """Two-layer network trained in its quadratic Taylor regime with random signs (seed 002).

    The model (see ``pyfeat.models.taylor``): around the symmetric init W0 (f⁽⁰⁾ ≡ 0), with the
    trained movement W,

        f⁽¹⁾(x) = (1/√m) Σ_r a_r σ'(w0_r·x)(w_r·x),    f⁽²⁾(x) = (1/(2√m)) Σ_r a_r σ''(w0_r·x)(w_r·x)²,

    ``order`` = 1 (f⁽¹⁾: the linearized / NTK model), 2 (f⁽¹⁾ + f⁽²⁾) or "2only" (f⁽²⁾). With
    order 2 and ``signs="resample"`` each step uses fresh random signs on the movement,
    W0 + SW: E_S f⁽¹⁾ = 0 and f⁽²⁾ is unchanged, so the quadratic term fits the data, and the
    predictor is E_S f = f⁽²⁾. Trained by full-batch or mini-batch (noisy) gradient descent on
    (1/2n) Σ (f(x_i) − y_i)² + λ‖W‖_{2,4}⁸ (``pyfeat.models._train``): each step one pass of
    ``pyfeat.ops.taylor_gradient`` (6·n·m·d FLOPs, memory independent of n).

    Parameters
    ----------
    width : int, default 1024
        The width m, ≥ 2 and even.
    order : {1, 2, "2only"}, default 2
        The Taylor model: f⁽¹⁾, f⁽¹⁾ + f⁽²⁾ or f⁽²⁾ (above).
    signs : {"resample", "none"}, default "resample"
        ``"resample"``: fresh signs s_r ∈ {±1} every step, seeded (they act at order 2 only: the
        linear model is trained without them, f⁽²⁾ does not see them); ``"none"``: S = I.
    activation : {"relu3", "softplus", "relu2", "cubic"}, default "relu3"
        σ: relu3 (σ'' = relu), softplus, relu2 (σ'' = 1[t ≥ 0]) or cubic
        (``pyfeat._activation_table``; the ReLU itself is refused: its σ'' is 0 a.e.).
    lr : float > 0 or "auto", default "auto"
        The step on W is lr·s_W·∇ with s_W = √m for orders 2 and "2only" (f⁽²⁾'s tangent
        kernel is O(‖x‖²/√m) at ‖w_r‖ ≍ m^{−1/4}) and 1 for order 1. ``"auto"`` (``auto_lr``,
        from the first ≤ 2²⁰/m rows at the init): order 1: twice the inverse trace per sample
        of f⁽¹⁾'s tangent kernel; orders 2, "2only": the inverse of the larger of two curvature
        bounds at the quadratic scale ‖w_r‖² ≈ m^{−1/2} (the tangent kernel's trace and twice
        the residual term's), halved with resampled signs. For x ~ N(0, I_d), relu3 and
        LowRankPolynomial labels: → 5.3/d, 1.2/d … 1.5/d and 0.6/d … 0.75/d. Measured: the
        tangent-kernel bound alone diverged on scikit-learn's test data (‖x‖ ≈ 1, labels 0, 1,
        2); with resampled signs the unhalved rule diverged on its regression data (d = 10, a
        linear target) at widths 64 to 1024, the halved one at none (4 seeds each), and orders
        1, "2only" and signs="none" were stable at the full rule there.
    steps : int >= 0, default 300
        Gradient steps T.
    batch_size : int >= 1, optional
        None: full batch; else mini-batches (as in ``GDNetwork``).
    penalty : float >= 0, default 0.0
        The λ of R(W) = λ‖W‖_{2,4}⁸.
    weight_decay : float >= 0, default 0.0
        The loop's decay W ← W − lr·weight_decay·W.
    noise : float >= 0, default 0.0
        Perturbation W ← W + noise·√lr·ξ, ξ ~ N(0, I), before every step.
    init_scale : float >= 0, default 0.1
        W starts at w_r ~ N(0, init_scale²·m^{−1/2}·I_d/d) (‖w_r‖ ≈ init_scale·m^{−1/4}); 0 is
        a stationary point of f⁽²⁾, so "2only" needs > 0 or noise.
    seed : int >= 0, numpy Generator, SeedSequence, RandomState or None, default 0
        Seeds the init, the mini-batch order, the signs and the noise (independent streams of
        one SeedSequence; see ``pyfeat._base``).
    backend : {"auto", "numba", "cuda", "numpy"}, default "auto"
        Where the ops run (``pyfeat.backend``).
    block_size : int, optional
        Rows per block of ``pyfeat.ops`` (None: from the memory budget).
    log_every : int >= 1, optional
        History every this many steps (and at the last); None: max(1, steps // 100).
    verbose : bool, default False
        A tqdm progress bar over the steps.
    callback : callable, optional
        ``callback(step, row, params)`` at every logged step, as in ``GDNetwork``; a true
        return value stops training.
    random_state : int >= 0, numpy Generator, SeedSequence, RandomState or None, default None
        The scikit-learn name for the seed; when not None it is used instead of ``seed``.

    Attributes
    ----------
    W_ : ndarray of shape (m, d)
        The movement W.
    W_init_ : ndarray of shape (m, d)
        The expansion point W0.
    a_ : ndarray of shape (m,)
        The signs a (±1; the model uses a/√m).
    W_start_ : ndarray of shape (m, d)
        W at step 0.
    lr_ : float
        The learning rate.
    lr_scale_ : float
        The step multiplier s_W.
    history_ : dict
        Arrays at the logged steps: "step", "train_loss" (the loss at the step's signs: an
        unbiased estimate of E_S L for signs="resample", which exceeds the predictor's loss by
        E_S[f⁽¹⁾²]/2), "val_loss" (same, on ``X_val``), "movement_W" = ‖W_t‖_F/‖W0‖_F,
        "norm_24" = ‖W_t‖_{2,4}, "alignment" (with U: ‖W_t Π_U‖_F²/‖W_t‖_F²).
    n_iter_ : int
        The steps taken.
    n_samples_, n_features_in_ : int
        n and d.
    fit_time_ : float
        Seconds.

    See Also
    --------
    HierarchicalQuadratic : The same model on a fixed random representation h(x).
    GDNetwork : The network itself, trained by gradient descent.

    Examples
    --------
    >>> import numpy as np
    >>> import pyfeat as pf
    >>> task = pf.tasks.LowRankPolynomial(d=6, r=2, degree=3, seed=0)
    >>> X, y = task.sample(1000, seed=1)
    >>> model = pf.QuadraticTaylor(width=64, order="2only", steps=100).fit(X, y)
    >>> model.W_.shape, model.lr_scale_, sorted(model.history_)
    ((64, 6), 8.0, ['movement_W', 'norm_24', 'step', 'train_loss'])
    >>> Xt, yt = task.sample(500, seed=2)
    >>> bool(model.score(Xt, yt) > 0.9)  # test R² 0.95
    True
    """

    def alignment(self, U: ArrayLike | Task) -> float:
        """Return ‖W Π_U‖_F² / ‖W‖_F² of the movement W, the fraction of its energy in span(U).

        Parameters
        ----------
        U : array_like of shape (r, d), or a task with ``.U``
            Rows spanning the principal subspace.

        Returns
        -------
        float
            The fraction, in [0, 1] (about r/d for a random W).

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        ValueError
            When U is not (r, d) or not finite.

        Examples
        --------
        >>> import pyfeat as pf
        >>> task = pf.tasks.LowRankPolynomial(d=6, r=2, degree=3, seed=0)
        >>> model = pf.QuadraticTaylor(width=64, order="2only", steps=100).fit(*task.sample(1000, seed=1))
        >>> round(model.alignment(task), 1)  # r/d = 0.33 at the start
        0.9
        """
        check_is_fitted(self)
        return float(np.sum((self.W_ @ _subspace(U, self.W_.shape[1])) ** 2) / max(np.sum(self.W_**2), 1e-300))


class HierarchicalQuadratic(_TaylorModel):
    """The hierarchical learner (seed 002; Chen, Bai, Lee et al. 2020).

    The quadratic Taylor model of ``QuadraticTaylor`` applied to a fixed random representation
    h(x) ∈ R^D instead of x,

        f⁽²⁾(x) = (1/(2√m)) Σ_r a_r σ''(w0_r·h(x))(w_r·h(x))²     (and f⁽¹⁾ likewise),

    a three-layer network whose first layer is random and fixed and whose second layer is trained
    in its quadratic regime (with random signs, as QuadraticTaylor). D = d^{p/2} by default, the
    seed's width for a degree-p target (``degree``: p), for which the claim is Õ(d^{p/2}) samples
    against Õ(d^{p−1}) for the quadratic model on x and Θ(d^p) for the NTK.

    **Representation** (our construction; the paper's exact h(x) could not be retrieved here):
    φ(x) = relu(Vx + c), V rows ~ N(0, I_d/d), c ~ N(0, 1) (seeded), whitened on the training
    data as the seed asks h to be isotropic (‖(1/n) Σ h(x_i)h(x_i)ᵀ‖_op small):

        h(x) = T(φ(x) − μ),   T = (Σ̂ + eps·(tr Σ̂/D)·I)^{−1/2},

    μ, Σ̂ the mean and covariance of φ over the training rows (one streamed pass of
    ``pyfeat.ops.relu_gram``), so (1/n) Σ h hᵀ = Σ̂(Σ̂ + eps·(tr Σ̂/D)·I)⁻¹ (≈ I_D for eps ≪ 1;
    its eigenvalues are below 1) and h·w0_r = O(1) for w0_r ~ N(0, I_D/D). h
    is never stored: each row block computes φ inside ``pyfeat.ops.taylor_gradient`` (a GEMM of
    n·D·d and the ReLU epilogue), and T, μ are folded into the weights (w·h = (Tw)·φ − (Tw)·μ),
    so a step costs 6·n·m·D + 2·n·D·d FLOPs plus O(m·D²), memory independent of n.

    Parameters
    ----------
    D : int >= 1, optional
        Width of the representation; None: ⌈d^{degree/2}⌉.
    degree : int >= 1, default 3
        The degree p of the target, used only for the default D.
    eps : float > 0, default 1.0
        Relative ridge of the whitening.
    width : int, default 1024
        The width m, ≥ 2 and even.
    order : {1, 2, "2only"}, default 2
        The Taylor model, as in ``QuadraticTaylor``.
    signs : {"resample", "none"}, default "resample"
        Random signs on the movement, as in ``QuadraticTaylor``.
    activation : {"relu3", "softplus", "relu2", "cubic"}, default "relu3"
        σ, as in ``QuadraticTaylor``.
    lr : float > 0 or "auto", default "auto"
        As in ``QuadraticTaylor``, with h(x) in place of x (also in ``lr="auto"``).
    steps : int >= 0, default 300
        Gradient steps T.
    batch_size : int >= 1, optional
        None: full batch; else mini-batches (as in ``GDNetwork``).
    penalty, weight_decay, noise, init_scale : float >= 0
        As in ``QuadraticTaylor`` (defaults 0, 0, 0 and 0.1), with h(x) in place of x.
    seed : int >= 0, numpy Generator, SeedSequence, RandomState or None, default 0
        As in ``QuadraticTaylor``; the seed also draws V and c.
    backend : {"auto", "numba", "cuda", "numpy"}, default "auto"
        Where the ops run (``pyfeat.backend``).
    block_size : int, optional
        Rows per block of ``pyfeat.ops`` (None: from the memory budget).
    log_every : int >= 1, optional
        History every this many steps (and at the last); None: max(1, steps // 100).
    verbose : bool, default False
        A tqdm progress bar over the steps.
    callback : callable, optional
        ``callback(step, row, params)`` at every logged step, as in ``GDNetwork``.
    random_state : int >= 0, numpy Generator, SeedSequence, RandomState or None, default None
        The scikit-learn name for the seed; when not None it is used instead of ``seed``.

    Attributes
    ----------
    V_ : ndarray of shape (D, d)
        The representation's random first layer V.
    c_ : ndarray of shape (D,)
        Its biases c.
    mean_ : ndarray of shape (D,)
        μ, the mean of φ over the training rows.
    whitening_ : ndarray of shape (D, D)
        T.
    D_ : int
        D.
    W_, W_init_, W_start_ : ndarray of shape (m, D)
        The movement, the expansion point and the start, as in ``QuadraticTaylor``.
    a_ : ndarray of shape (m,)
        The signs a (±1; the model uses a/√m).
    lr_, lr_scale_ : float
        The learning rate and the step multiplier s_W.
    history_ : dict
        As in ``QuadraticTaylor``, without "alignment" (W lives in the representation's
        coordinates).
    n_iter_ : int
        The steps taken.
    n_samples_, n_features_in_ : int
        n and d.
    fit_time_ : float
        Seconds.

    See Also
    --------
    QuadraticTaylor : The same model on x itself.

    Examples
    --------
    >>> import numpy as np
    >>> import pyfeat as pf
    >>> task = pf.tasks.LowRankPolynomial(d=6, r=2, degree=3, seed=0)
    >>> X, y = task.sample(1000, seed=1)
    >>> model = pf.HierarchicalQuadratic(width=64, steps=100).fit(X, y)
    >>> model.D_, model.V_.shape, model.W_.shape  # D = ⌈6^{3/2}⌉
    (15, (15, 6), (64, 15))
    >>> loss = model.history_["train_loss"]
    >>> bool(loss[-1] < 0.7 * loss[0])
    True
    >>> rep = pf.HierarchicalQuadratic(width=64, steps=0, eps=1e-3).fit(X, y)  # the representation
    >>> H = (np.maximum(X @ rep.V_.T + rep.c_, 0) - rep.mean_) @ rep.whitening_
    >>> bool(np.allclose(H.T @ H / len(X), np.eye(15), atol=0.05))  # isotropic for eps ≪ 1
    True
    """

    def __init__(self, D: int | None = None, degree: int = 3, eps: float = 1.0, width: int = 1024,
                 order: int | str = 2, signs: str = "resample", activation: str = "relu3", lr: float | str = "auto",
                 steps: int = 300, batch_size: int | None = None, penalty: float = 0.0, weight_decay: float = 0.0,
                 noise: float = 0.0, init_scale: float = 0.1, seed: SeedLike = 0, backend: str = "auto",
                 block_size: int | None = None, log_every: int | None = None, verbose: bool = False,
                 callback: Callable | None = None, random_state: SeedLike = None):
        self.D = D
        self.degree = degree
        self.eps = eps
        super().__init__(width=width, order=order, signs=signs, activation=activation, lr=lr, steps=steps,
                         batch_size=batch_size, penalty=penalty, weight_decay=weight_decay, noise=noise,
                         init_scale=init_scale, seed=seed, backend=backend, block_size=block_size,
                         log_every=log_every, verbose=verbose, callback=callback, random_state=random_state)

    def _check_params(self):
        if self.D is not None:
            _int("D", self.D, 1)
        _int("degree", self.degree, 1)
        _real("eps", self.eps)
        return super()._check_params()

    def _representation(self, data, seq):
        """Draw V, c; whiten φ from one pass over the training rows (class docstring)."""
        dev, dt, n, d = data.dev, data.dtype, data.n, self.n_features_in_
        D = int(self.D) if self.D is not None else math.ceil(d ** (self.degree / 2) - 1e-9)
        rng = np.random.default_rng(seq)
        self.V_, self.c_ = rng.standard_normal((D, d)) / math.sqrt(d), rng.standard_normal(D)
        V, c = dev.asarray(self.V_, dt), dev.asarray(self.c_, dt)
        gram, total = np.zeros((D, D)), np.zeros(D)
        for Xb, _ in data.passes():
            G, s = blocked.relu_gram(dev, Xb, V, c, dev.xp.ones(Xb.shape[0], dt), self.block_size)
            gram += _backend.to_numpy(G)
            total += _backend.to_numpy(s)
        self.mean_ = total / n
        cov = gram / n - np.outer(self.mean_, self.mean_)
        lam, Q = np.linalg.eigh((cov + cov.T) / 2)
        lam = np.maximum(lam, 0.0)
        shrunk = lam + float(self.eps) * max(lam.mean(), np.finfo(float).tiny)
        self.whitening_ = (Q / np.sqrt(shrunk)) @ Q.T
        self.D_ = D
        return self._fitted_representation(dev, dt), D

    def _fitted_representation(self, dev, dt):
        return _Whitened(dev, dt, self.V_, self.c_, self.mean_, self.whitening_)
