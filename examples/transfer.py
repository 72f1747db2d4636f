"""Transfer: a first layer learned on a source task serves a target task with the same U.

``pyfeat.tasks.transfer_pair`` gives two degree-4 multi-index tasks f*(x) = g(Ux) that share U
(d = 32, r = 2) and differ in their head g. A TwoLayerReLU trained by Algorithm 1 on n = 32d²
source samples is moved to the target with ``.transfer(X, y)`` (first layer kept, only the head
refitted); it is compared with the same network fitted from scratch on the target samples alone.
With the learned U the target needs far fewer samples (test MSE; Var f* = 1, 1 = predicting 0).
Runtime on the 2-core CPU: 7 s (PYFEAT_EXAMPLES_QUICK=1: d = 12, width 256, 3 s).
"""

import os

import pyfeat as pf

QUICK = os.environ.get("PYFEAT_EXAMPLES_QUICK") == "1"
d, width, n_targets = (12, 256, [256, 1024]) if QUICK else (32, 1024, [256, 1024, 4096])
source, target = pf.tasks.transfer_pair(d, r=2, degree=4, seed=0)

X, y = source.sample(32 * d * d, seed=1, dtype="float32")
nn = pf.TwoLayerReLU(width=width, seed=0).fit(X, y)
print(f"source: n = {X.shape[0]}, alignment of the first layer with U: "
      f"{nn.alignment(source.U, init=True):.2f} at the init, {nn.alignment(source.U):.2f} after the feature step")

X_test, y_test = target.sample(4096, seed=2, dtype="float32")
print(f"target test MSE, d = {d}")
print(f"{'n':>6}{'transfer':>10}{'scratch':>10}")
for n in n_targets:
    Xt, yt = target.sample(n, seed=3, dtype="float32")
    moved = nn.transfer(Xt, yt)
    scratch = pf.TwoLayerReLU(width=width, seed=0).fit(Xt, yt)
    print(f"{n:>6}{moved.mse(X_test, y_test):10.3f}{scratch.mse(X_test, y_test):10.3f}")
