"""The separation in 20 lines: feature learning beats the kernels on f*(x) = g(Ux).

A degree-4 multi-index target (d = 32, r = 2, Var f* = 1); test MSE of a two-layer ReLU network
trained by Algorithm 1 (TwoLayerReLU), the same network without its feature step
(RandomFeatures) and NTK kernel ridge with its ridge chosen by GCV / held-out MSE, at a few n.
Only the network gets well below 1 (predicting 0): the kernels need n ≍ d⁴ for the degree-4 part.
Runtime on the 2-core CPU: 43 s (cores shared);
PYFEAT_EXAMPLES_QUICK=1 (d = 16, two small n): 5 s.
"""

import os

import numpy as np

import pyfeat as pf

QUICK = os.environ.get("PYFEAT_EXAMPLES_QUICK") == "1"
d, ns, width = (16, [256, 1024], 256) if QUICK else (32, [1024, 2048, 8192], 1024)
task = pf.tasks.MultiIndex(d=d, r=2, degree=4, seed=0)
X_test, y_test = task.sample(4096, seed=1, dtype="float32")
models = {"nn": lambda: pf.TwoLayerReLU(width=width, seed=0),
          "rf": lambda: pf.RandomFeatures(width=width, seed=0),
          "ntk": lambda: pf.KernelRidge(kernel="ntk", ridge="auto")}

print(f"test MSE, MultiIndex(d={d}, r=2, degree=4); 1 = predicting 0")
print(f"{'n':>6}" + "".join(f"{name:>8}" for name in models))
for n in ns:
    X, y = task.sample(n, seed=2, dtype="float32")  # nested: the first rows of the next n
    mse = [np.mean((make().fit(X, y).predict(X_test) - y_test) ** 2) for make in models.values()]
    print(f"{n:>6}" + "".join(f"{e:8.3f}" for e in mse))
