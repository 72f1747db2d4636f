"""Smoke test of an installed pyfeat wheel: the compiled core imports and the ops agree with the
float64 reference. Run outside the source tree (so the wheel, not ./pyfeat, is imported) by
.ci/run and by cibuildwheel's test-command (pyproject.toml)."""

import numpy as np

import pyfeat as pf
from pyfeat import _core

info = pf.info()
print("wheel smoke test:", pf.__file__, info["version"], "cuda compiled:", info["cuda_compiled"],
      info["cuda_architectures"])
rng = np.random.default_rng(0)
X = rng.standard_normal((300, 8)).astype(np.float32)
W = rng.standard_normal((16, 8)).astype(np.float32)
a = np.sign(rng.standard_normal(16)).astype(np.float32)
y = rng.standard_normal(300).astype(np.float32)
G = pf.ops.first_step_gradient(X, y, W, a)
R = pf.ops.first_step_gradient(X.astype(np.float64), y, W, a, backend="numpy")
assert np.abs(G - R).max() <= 1e-4 * np.abs(R).max(), "wheel: first_step_gradient mismatch"
K = pf.ops.kernel_matvec(X, X, y, "ntk")
KR = pf.ops.kernel_matvec(X.astype(np.float64), X, y, "ntk", backend="numpy")
assert np.abs(K - KR).max() <= 1e-4 * np.abs(KR).max(), "wheel: kernel_matvec mismatch"
k = _core.kernel_values(0, np.array([1.0]), np.array([2.0]), np.array([3.0]), 0.0, 0.0, 0.0)
assert np.isfinite(k).all()
print("wheel smoke test passed")
