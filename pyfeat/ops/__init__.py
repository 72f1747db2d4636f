"""The hot operations: one public function each, backend dispatch inside.

Every op takes NumPy or CuPy arrays (rows are samples) of any real dtype and layout. The working
dtype is set by X: float32 when X is float32 (or narrower), float64 otherwise. X is converted block
by block (never copied whole); the smaller inputs (W, a, b, y, V, Z) are converted once to
contiguous arrays of the working dtype. NumPy in -> NumPy out, CuPy in -> CuPy out, whatever backend
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


from pyfeat import _activation_table
from pyfeat.ops import blocked
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


def _network_args(op, backend, X, y, W, a, b, y_name="y"):
    """The checked (args, X, y, W, a, b) of an op on a network f(x) = aᵀ relu(W x + b)."""
    args = _Args(op, backend)
    X = args.matrix("X", X)
    n, d = X.shape
    y = args.vector(y_name, y, n)
    W = args.matrix("W", W, cols=d, cols_name="X.shape[1]")
    m = W.shape[0]
    a = args.vector("a", a, m, length_name="W.shape[0]")
    return args, X, y, W, a, args.bias(b, m)


def first_step_gradient(X, y, W, a, b=None, *, backend=None, block_size=None):
    """First-step feature gradient of Algorithm 1: ∇_W L at a network with f ≡ 0.

    With L = (1/n) Σ_i (f(x_i) − y_i)², f(x) = aᵀ relu(W x + b) and f ≡ 0 (symmetric init),

        G_j = −(2/n) Σ_i y_i a_j 1[w_j·x_i + b_j ≥ 0] x_i        (G: m × d, row j = ∇_{w_j} L)

    computed as two GEMMs per row block with the mask fused between them: the n × m activation
    mask never exists beyond one block.

    Parameters
    ----------
    X : (n, d) array.  y : (n,) labels.  W : (m, d) first layer.  a : (m,) second layer.
    b : (m,) biases or None (zeros).

    Returns
    -------
    (m, d) array in the working dtype (accumulated in float64).
    """
    args, X, y, W, a, b = _network_args("first_step_gradient", backend, X, y, W, a, b)
    out = blocked.first_step_gradient(args.device, X, y, W, a, b, _block(block_size))
    return args.result(out)


def residual_gradient(X, r, W, a, b=None, *, backend=None, block_size=None):
    """The first-step gradient weighted by residuals: ∇_W of (1/2n) Σ_i (f(x_i) − y_i)² for
    f(x) = aᵀ relu(W x + b), given the residuals r_i = f(x_i) − y_i,

        G_j = (1/n) Σ_i r_i a_j 1[w_j·x_i + b_j ≥ 0] x_i        (G: m × d)

    (with r = −2y it is ``first_step_gradient``). Two GEMMs per row block with the mask fused
    between them, as ``first_step_gradient``. Shapes: X (n, d), r (n,), W (m, d), a (m,), b (m,)
    or None; returns (m, d) in the working dtype (accumulated in float64).
    """
    args, X, r, W, a, b = _network_args("residual_gradient", backend, X, r, W, a, b, y_name="r")
    return args.result(blocked.residual_gradient(args.device, X, r, W, a, b, _block(block_size)))


def network_gradient(X, y, W, a, b=None, *, backend=None, block_size=None):
    """Loss and gradients of L = (1/2n) Σ_i (f(x_i) − y_i)², f(x) = aᵀ relu(W x + b), in one pass.

    With r_i = f(x_i) − y_i and the ReLU derivative 1[w_j·x_i + b_j ≥ 0]:

        L = (1/2n) Σ_i r_i²,
        ∇_W L = (1/n) Σ_i r_i a_j 1[w_j·x_i + b_j ≥ 0] x_i,   ∇_a L = (1/n) Σ_i r_i relu(w_j·x_i + b_j),
        ∇_b L = (1/n) Σ_i r_i a_j 1[w_j·x_i + b_j ≥ 0].

    Per row block: one GEMM Z = X_b Wᵀ, a fused pass (features, predictions, residuals, ∇_a and
    ∇_b, and the residual-weighted mask in place of Z), one GEMM Zᵀ X_b: 4·n·m·d FLOPs in all, the
    n × m activations never beyond one block. Shapes: X (n, d), y (n,), W (m, d), a (m,), b (m,)
    or None. Returns (L, ∇_W L, ∇_a L, ∇_b L): a float and float64 arrays (m, d), (m,), (m,).
    """
    args, X, y, W, a, b = _network_args("network_gradient", backend, X, y, W, a, b)
    sq, gW, ga, gb = blocked.network_gradient(args.device, X, y, W, b, a, _block(block_size))
    n = X.shape[0]
    return float(sq) / (2 * n), args.result(gW / n), args.result(ga / n), args.result(gb / n)


def relu_features(X, W, b=None, *, backend=None, block_size=None):
    """Φ = relu(X Wᵀ + b), shape (n, m), in the working dtype (materialized: small n only)."""
    args = _Args("relu_features", backend)
    X = args.matrix("X", X)
    W = args.matrix("W", W, cols=X.shape[1], cols_name="X.shape[1]")
    b = args.bias(b, W.shape[0])
    return args.result(blocked.relu_features(args.device, X, W, b, _block(block_size)))


def relu_gram(X, W, b, y=None, *, backend=None, block_size=None):
    """(ΦᵀΦ, Φᵀy) with Φ = relu(X Wᵀ + b), accumulated over row blocks (Φ never exists whole).

    y may be (n,), (n, k) or None (then the second result is None). Both results are float64
    (they feed a linear solve), shapes (m, m) and (m,) / (m, k).
    """
    args = _Args("relu_gram", backend)
    X = args.matrix("X", X)
    n, d = X.shape
    W = args.matrix("W", W, cols=d, cols_name="X.shape[1]")
    b = args.bias(b, W.shape[0])
    if y is not None:
        y = args.vector_or_matrix("y", y, n)
    G, c = blocked.relu_gram(args.device, X, W, b, y, _block(block_size))
    return args.result(G), (None if c is None else args.result(c))


def relu_predict(X, W, b, a, *, backend=None, block_size=None):
    """f(X) = relu(X Wᵀ + b) a, streamed over row blocks; a (m,) -> (n,), a (m, k) -> (n, k)."""
    args = _Args("relu_predict", backend)
    X = args.matrix("X", X)
    W = args.matrix("W", W, cols=X.shape[1], cols_name="X.shape[1]")
    m = W.shape[0]
    b = args.bias(b, m)
    a = args.vector_or_matrix("a", a, m, length_name="W.shape[0]")
    return args.result(blocked.relu_predict(args.device, X, W, b, a, _block(block_size)))


def relu_transpose(X, W, b, V, *, backend=None, block_size=None):
    """Φᵀ V with Φ = relu(X Wᵀ + b), streamed over row blocks (Φ never exists whole): V (n,) ->
    (m,), V (n, k) -> (m, k), float64 (a sum over n)."""
    args = _Args("relu_transpose", backend)
    X = args.matrix("X", X)
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


def taylor_gradient(X, y, W0, W, a1, a2, activation="relu3", *, b0=None, b=None, features=None, backend=None,
                    block_size=None):
    """Loss and gradients of the Taylor model of a two-layer network (seed 002) in one pass.

    With φ(x) = x, or φ(x) = relu(Vx + c) for ``features = (V, c)`` (a fixed representation),
    u0_r = w0_r·φ(x) + b0_r, u_r = w_r·φ(x) + b_r and the activation σ (``activation``: "relu3",
    "softplus", "relu2", "cubic"; ``pyfeat._activation_table``),

        f(x) = Σ_r [a1_r σ'(u0_r) u_r + a2_r σ''(u0_r) u_r²/2],      r_i = f(x_i) − y_i,
        L = (1/2n) Σ_i r_i²,   ∇_W L = (1/n) Σ_i P_i φ(x_i)ᵀ,   ∇_b L = (1/n) Σ_i P_i,
        P_ir = r_i [a1_r σ'(u0_ir) + a2_r σ''(u0_ir) u_ir]

    (W0, b0 fixed: the expansion point). With a1 = s a/√m and a2 = a/√m this is the linear plus
    quadratic term f⁽¹⁾ + f⁽²⁾ of f_{W0+SW}(x) = (1/√m) Σ_r a_r σ((w0_r + s_r w_r)·x) around W0.
    Per row block one GEMM of width 2m (φ [W0; W]ᵀ), a fused epilogue, one GEMM Pᵀφ: 6·n·m·D
    FLOPs, memory independent of n. Shapes: X (n, d), y (n,), W0 and W (m, D) with D = d (or
    V.shape[0]: V (D, d), c (D,)), a1, a2, b0, b (m,) (biases None: zeros). Returns
    (L, ∇_W L, ∇_b L): a float and float64 arrays (m, D), (m,).
    """
    act = _activation_table.parse(activation)
    args, X, W0, W, a1, a2, b0, b, features = _taylor_args("taylor_gradient", backend, X, W0, W, a1, a2, b0, b,
                                                            features)
    y = args.vector("y", y, X.shape[0])
    sq, gW, gb = blocked.taylor_gradient(args.device, X, y, W0, b0, W, b, a1, a2, act, features, _block(block_size))
    n = X.shape[0]
    return float(sq) / (2 * n), args.result(gW / n), args.result(gb / n)


def taylor_predict(X, W0, W, a1, a2, activation="relu3", *, b0=None, b=None, features=None, backend=None,
                   block_size=None):
    """f(x) of the Taylor model of ``taylor_gradient`` for every row of X, streamed over row
    blocks: (n,) in the working dtype (each row's sum over the m neurons in float64)."""
    act = _activation_table.parse(activation)
    args, X, W0, W, a1, a2, b0, b, features = _taylor_args("taylor_predict", backend, X, W0, W, a1, a2, b0, b,
                                                            features)
    return args.result(blocked.taylor_predict(args.device, X, W0, b0, W, b, a1, a2, act, features,
                                              _block(block_size)))


def kernel_matvec(X, Z, V, kernel="ntk", *, backend=None, block_size=None):
    """K(X, Z) @ V without forming K: (n_x, n_z) tiles of inner products X Zᵀ, the kernel
    function applied to each tile and reduced against V at once (see ``pyfeat.kernels``).

    X (n_x, d), Z (n_z, d), V (n_z,) or (n_z, k) -> (n_x,) or (n_x, k) in the working dtype
    (tiles accumulate in float64). ``kernel`` is a name or a ``pyfeat.kernels.get(...)`` result.
    """
    args = _Args("kernel_matvec", backend)
    kern = args.kernel(kernel)
    X = args.matrix("X", X)
    Z = args.matrix("Z", Z, cols=X.shape[1], cols_name="X.shape[1]")
    V = args.vector_or_matrix("V", V, Z.shape[0], length_name="Z.shape[0]")
    V2 = V.reshape(-1, 1) if V.ndim == 1 else V
    out = blocked.kernel_matvec(args.device, X, Z, V2, kern, _block(block_size))
    return args.result(out[:, 0] if V.ndim == 1 else out)


def kernel_matrix(X, Z=None, kernel="ntk", *, backend=None, block_size=None):
    """K(X, Z), shape (n_x, n_z), in the working dtype (Z=None means Z = X).

    The matrix is materialized (what the caller asked for); temporaries are bounded by blocks.
    """
    args = _Args("kernel_matrix", backend)
    kern = args.kernel(kernel)
    X = args.matrix("X", X)
    Z = X if Z is None else args.matrix("Z", Z, cols=X.shape[1], cols_name="X.shape[1]")
    return args.result(blocked.kernel_matrix(args.device, X, Z, kern, _block(block_size)))
