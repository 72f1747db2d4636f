"""The structure of the ops layer: one kernel table that the compiled code agrees with, layers
without upward imports, the shared blocked loops (``pyfeat.ops.blocked``) on every executor and
tiling a device can choose, and internal callers that bypass the per-call validation."""

import ast
import re
from pathlib import Path

import numba
import numpy as np
import pytest

import pyfeat as pf
from pyfeat import _kernel_table, ops
from pyfeat.ops import _reference, blocked
from pyfeat.ops._device import Device
from pyfeat.ops._plan import blocks, tiles

ROOT = Path(pf.__file__).resolve().parent
HEADER = ROOT.parent / "csrc" / "include" / "pyfeat" / "kernel_math.hpp"
needs_sources = pytest.mark.skipif(not HEADER.is_file(), reason="csrc/ not next to the package (installed wheel)")


# one kernel table ------------------------------------------------------------------------------


@needs_sources
def test_header_codes_and_constants_are_the_tables():
    text = HEADER.read_text()
    enum = re.search(r"enum KernelCode : int \{([^}]*)\}", text).group(1)
    codes = {name.strip().lower(): int(value) for name, value in re.findall(r"(\w+)\s*=\s*(\d+)", enum)}
    assert codes == {name: row.code for name, row in _kernel_table.TABLE.items()}
    assert int(re.search(r"kKernelCount = (\d+);", text).group(1)) == len(_kernel_table.TABLE)
    body = text[text.index("PF_HD float pf_acos(float x)"):]
    body = body[: body.index("}")]
    coefs = [float(c.replace(" ", "")) for c in re.findall(r"(-?\s*\d\.\d+)f", body.replace("- ", "-"))]
    assert tuple(coefs[:8]) == _kernel_table.ACOS32_COEFFICIENTS
    # every launcher validates codes through the header's one check
    for path in (ROOT.parent / "csrc").rglob("*.c*"):
        src = path.read_text()
        assert "POLY" not in src and "NTK" not in src, f"{path.name} spells out kernel codes"


def test_numba_codes_are_the_tables():
    from pyfeat.ops import _numba

    names = ("ntk", "nngp", "arccos0", "rbf", "laplace", "poly")
    assert (_numba.NTK, _numba.NNGP, _numba.ARCCOS0, _numba.RBF, _numba.LAPLACE, _numba.POLY) == tuple(
        _kernel_table.TABLE[n].code for n in names)
    assert set(names) == set(_kernel_table.TABLE)


def test_kernel_built_directly_is_validated_at_the_op_boundary():
    X = np.ones((3, 2))
    with pytest.raises(ValueError, match="bandwidth must be > 0"):
        ops.kernel_matrix(X, X, pf.kernels.Kernel("rbf", {"bandwidth": 0.0}))
    with pytest.raises(ValueError, match="unknown kernel 'gauss'"):
        ops.kernel_matvec(X, X, np.ones(3), pf.kernels.Kernel("gauss", {}))
    with pytest.raises(TypeError, match="unknown parameter"):
        ops.kernel_matrix(X, X, pf.kernels.Kernel("ntk", {"bandwidth": 1.0}))
    # missing parameters take the table's defaults, in the table's order
    assert pf.kernels.Kernel("poly", {"degree": 2}).validated().p == (1.0, 1.0, 2.0)


# layers ----------------------------------------------------------------------------------------

# (module path under pyfeat/, what it must not import): nothing imports a higher layer
LOWER = {
    "backend.py": ("pyfeat.ops", "pyfeat.kernels", "pyfeat.solvers", "pyfeat.models", "pyfeat.tasks",
                   "pyfeat.kernel_ridge", "pyfeat.experiments"),
    "_kernel_table.py": ("pyfeat.ops", "pyfeat.kernels", "pyfeat.solvers", "pyfeat.models",
                         "pyfeat.kernel_ridge", "pyfeat.experiments"),
    "ops": ("pyfeat.kernels", "pyfeat.solvers", "pyfeat.models", "pyfeat.tasks", "pyfeat.kernel_ridge",
            "pyfeat.experiments"),
    "kernels.py": ("pyfeat.solvers", "pyfeat.models", "pyfeat.kernel_ridge", "pyfeat.experiments"),
    "solvers": ("pyfeat.kernel_ridge", "pyfeat.models", "pyfeat.experiments"),
    "tasks": ("pyfeat.ops", "pyfeat.solvers", "pyfeat.models", "pyfeat.kernel_ridge", "pyfeat.experiments"),
    "models": ("pyfeat.experiments",),
}


def _imports(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            yield from (f"{node.module}.{a.name}" for a in node.names)


@pytest.mark.parametrize("where", sorted(LOWER))
def test_no_layer_imports_a_higher_one(where):
    base = ROOT / where
    files = [base] if base.is_file() else sorted(base.rglob("*.py"))
    for path in files:
        for name in _imports(path):
            bad = [up for up in LOWER[where] if name == up or name.startswith(up + ".")]
            assert not bad, f"{path.relative_to(ROOT)} imports {name} (a higher layer)"


def test_solvers_shared_pieces_live_in_their_own_modules():
    init = (ROOT / "solvers" / "__init__.py").read_text()
    assert "def conjugate_gradient" not in init and "class Problem" not in init and "class Monitor" not in init
    for module in ("problem", "krylov", "power", "monitor"):
        assert (ROOT / "solvers" / f"{module}.py").is_file()


# the shared loops on other executors and tilings ------------------------------------------------


class SerialWholeZ(Device):
    """A NumPy device shaped like the GPU one: serial executor, whole-Z column tiles (the fused
    kernel materializes no tile), the full Gram by one GEMM; kernel tiles through the float64
    reference formula. The loops of ``pyfeat.ops.blocked`` run on it unchanged."""

    name = "test-serial"
    kernel_tile = (1 << 16, 1 << 62)

    def __init__(self, budget):
        self._budget = budget

    def budget(self):
        return self._budget

    @staticmethod
    def block(X, s, e, dt):
        return np.ascontiguousarray(X[s:e], dtype=dt)

    @staticmethod
    def matmul(A, B, out):
        np.matmul(A, B, out=out)

    @staticmethod
    def sq_norms(A):
        return (A * A).sum(axis=1)

    @staticmethod
    def relu_bias(Z, b):
        np.maximum(Z + b, 0, out=Z)

    @staticmethod
    def mask_times_y(Z, b, y):
        Z[...] = np.where(Z + b >= 0, y[:, None], 0)

    @staticmethod
    def kernel_apply(kernel, G, X, sx, Z, sz):
        G[...] = kernel.from_inner(G, sx[:, None], sz[None, :])

    @staticmethod
    def tile_cell_bytes(dt):
        return 0

    @staticmethod
    def kernel_workspace(rows, cols, k, dt):
        return None

    @staticmethod
    def kernel_reduce(kernel, Xb, sx, Zc, szc, Vc, acc, ws):
        acc += kernel.from_inner(Xb @ Zc.T, sx[:, None], szc[None, :]).astype(np.float64) @ Vc

    @staticmethod
    def gram_workspace(m, dt):
        return None

    @staticmethod
    def gram_update(P, G, ws):
        G += P.T @ P

    @staticmethod
    def gram_result(G):
        return G


def _network(rng, n, d, m):
    X = rng.standard_normal((n, d))
    W = rng.standard_normal((m, d)) / np.sqrt(d)
    return X, rng.standard_normal(n), W, rng.choice([-1.0, 1.0], m), rng.standard_normal(m)


@pytest.mark.parametrize("budget", [1 << 10, 1 << 16, 1 << 26])
def test_shared_loops_on_a_serial_whole_z_device(rng, budget):
    """Every loop on a GPU-shaped device, with budgets from a few rows per block to one block,
    equals the float64 reference (so the CUDA backend's loops are the tested ones)."""
    dev = SerialWholeZ(budget)
    X, y, W, a, b = _network(rng, 333, 7, 10)
    Z = rng.standard_normal((129, 7))
    V = rng.standard_normal((129, 2))
    kern = pf.kernels.get("ntk")
    pairs = [
        (blocked.first_step_gradient(dev, X, y, W, a, b), _reference.first_step_gradient(X, y, W, a, b, None)),
        (blocked.relu_features(dev, X, W, b), _reference.relu_features(X, W, b, None)),
        (blocked.relu_predict(dev, X, W, b, a), _reference.relu_predict(X, W, b, a, None)),
        (blocked.kernel_matrix(dev, X, Z, kern), _reference.kernel_matrix(X, Z, kern, None)),
        (blocked.kernel_matvec(dev, X, Z, V, kern), _reference.kernel_matvec(X, Z, V, kern, None)),
        *zip(blocked.relu_gram(dev, X, W, b, y), _reference.relu_gram(X, W, b, y, None)),
    ]
    for got, ref in pairs:
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10 * np.abs(ref).max())


def test_serial_executor_equals_the_threaded_one(rng):
    """The numba device with one worker (the serial path, BLAS keeping its threads) gives the
    threaded result to float64 rounding."""
    X, y, W, a, b = _network(rng, 4000, 9, 24)
    dev = ops.device("numba")
    threaded = [blocked.first_step_gradient(dev, X, y, W, a, b, 256), *blocked.relu_gram(dev, X, W, b, y, 256),
                blocked.kernel_matvec(dev, X, X[:700], y[:700, None], pf.kernels.get("ntk"), 256)]
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        serial = [blocked.first_step_gradient(dev, X, y, W, a, b, 256), *blocked.relu_gram(dev, X, W, b, y, 256),
                  blocked.kernel_matvec(dev, X, X[:700], y[:700, None], pf.kernels.get("ntk"), 256)]
    finally:
        numba.set_num_threads(before)
    for s, t in zip(serial, threaded):
        np.testing.assert_allclose(s, t, rtol=1e-12, atol=1e-12 * np.abs(t).max())


@pytest.mark.parametrize("budget", [100, 4096, 1 << 20, 1 << 30])
@pytest.mark.parametrize("shape", [(5, 7), (1000, 100_000), (100_000, 3)])
def test_tile_planner_respects_the_budget(budget, shape):
    n_rows, n_cols = shape
    kw = dict(row_bytes=40, col_bytes=8, cell_bytes=4, max_rows=4096, max_cols=8192)
    rows, cols = tiles(n_rows, n_cols, budget=budget, **kw)
    assert 1 <= rows <= min(n_rows, 4096) and 1 <= cols <= min(n_cols, 8192)
    used = rows * kw["row_bytes"] + cols * kw["col_bytes"] + rows * cols * kw["cell_bytes"]
    # within budget unless even the smallest tile (min(n, 64) rows x 1 column) is over it
    assert used <= budget or cols == 1 and rows == min(n_rows, 64)
    assert tiles(n_rows, n_cols, budget=budget, rows=3, **kw)[0] == min(3, n_rows)
    assert sum(e - s for s, e in blocks(n_rows, rows)) == n_rows


# validate once ---------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::pyfeat.solvers.ConvergenceWarning")
def test_models_and_solvers_do_not_revalidate_per_call(rng, monkeypatch):
    """KernelRidge's solver iterations and the network's data passes call the unchecked loops:
    with the public ops' validator disabled they still fit (one validation per fit is theirs)."""
    from pyfeat.ops import _validate

    X = rng.standard_normal((300, 5))
    y = np.sin(X[:, 0])

    def refuse(*args, **kwargs):
        raise AssertionError("a public op was called inside fit")

    monkeypatch.setattr(_validate.Args, "__init__", refuse)
    pf.KernelRidge(solver="cg", ridge=1e-3).fit(X, y)
    pf.KernelRidge(solver="eigenpro", ridge=1e-3, max_iter=3).fit(X, y)
    pf.KernelRidge(solver="nystrom", ridge=1e-3, n_centers=50).fit(X, y)
    pf.TwoLayerReLU(width=16).fit(X, y)
