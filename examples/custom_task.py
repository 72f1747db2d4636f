"""A task of your own: subclass ``pyfeat.tasks.Task``, use it with the models and in a sweep.

A task needs ``d`` and ``__call__`` (f* on the rows of X); the base class gives it ``sample``
and ``stream`` with pyfeat's seeding (the same rows whatever the block size). Here: a
non-polynomial two-index target f*(x) = (|u₁·x| + |u₂·x| − 2√(2/π)) / √(2(1 − 2/π)) on
x ~ N(0, I_d), with E f* = 0 and Var f* = 1 exactly. ``U`` (the directions f* depends on) lets
the network report its alignment. ``register_task`` then makes it a ``family`` of sweep configs.
Runtime on the 2-core CPU: 14 s (PYFEAT_EXAMPLES_QUICK=1: smaller d and n, 4 s).
"""

import math
import os
import tempfile

import numpy as np

import pyfeat as pf
from pyfeat import experiments as ex

QUICK = os.environ.get("PYFEAT_EXAMPLES_QUICK") == "1"


class AbsSum(pf.tasks.Task):
    """f*(x) = (|u₁·x| + |u₂·x| − 2√(2/π)) / √(2(1 − 2/π)), U (2, d) random orthonormal rows.

    E|z| = √(2/π) and Var|z| = 1 − 2/π for z ~ N(0, 1), and u₁·x, u₂·x are independent."""

    def __init__(self, d, seed=0):
        self.d = d
        Q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, 2)))
        self.U = Q.T                                  # (2, d), orthonormal rows
        self.mean, self.variance = 0.0, 1.0

    def __call__(self, X):
        self._check_X(X)
        Z = np.asarray(X, dtype=np.float64) @ self.U.T
        return (np.abs(Z).sum(axis=1) - 2 * math.sqrt(2 / math.pi)) / math.sqrt(2 * (1 - 2 / math.pi))


d, n, width = (16, 2048, 256) if QUICK else (32, 8192, 1024)
task = AbsSum(d, seed=0)
X, y = task.sample(n, seed=1, dtype="float32")
X_test, y_test = task.sample(4096, seed=2, dtype="float32")
print(f"AbsSum(d={d}): sample mean {y.mean():.3f}, variance {y.var():.3f} (exact 0 and 1)")
nn = pf.TwoLayerReLU(width=width, seed=0).fit(X, y)
rf = pf.RandomFeatures(width=width, seed=0).fit(X, y)
print(f"n = {n}: test MSE nn {nn.mse(X_test, y_test):.3f}, rf {rf.mse(X_test, y_test):.3f}; "
      f"nn alignment with U {nn.alignment(task.U):.2f} (init {nn.alignment(task.U, init=True):.2f})")

# the same task in a sweep: family = "AbsSum" builds AbsSum(d=..., seed=...) at every grid point
ex.register_task("AbsSum", AbsSum)
config = f"""
name = "abs-sum"
n_test = 4096
dtype = "float32"
[task]
family = "AbsSum"
[grid]
d = {[8, 16] if QUICK else [16, 32]}
n = {[256, 1024] if QUICK else [1024, 4096]}
seeds = 1
[models.nn]
type = "TwoLayerReLU"
width = {width}
[models.rf]
type = "RandomFeatures"
width = {width}
"""
with tempfile.TemporaryDirectory() as out:
    rows = ex.run_sweep(config, out, progress=False)
print("sweep: model  d     n  test MSE  alignment")
for row in sorted(rows, key=lambda r: (r["model"], r["d"], r["n"])):
    print(f"{row['model']:>11}{row['d']:>3}{row['n']:>6}{row['test_mse']:10.3f}{row['alignment']:11.2f}")
