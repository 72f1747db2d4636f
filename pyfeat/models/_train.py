"""The training loop of pyfeat's gradient-trained models (``GDNetwork``, and the quadratic Taylor
model of seed 002 on the same machinery): T steps of full-batch or mini-batch gradient descent
on the squared loss, the data read from device-resident arrays or from a reproducible stream,
with weight decay, a history, a validation loss, a callback and a progress bar.

**What is minimized.** L(θ) = (1/2n) Σ_i (f_θ(x_i) − y_i)², by

    θ ← θ − lr · (s_θ · ∇_θ L_B(θ) + weight_decay · θ)          for each trained parameter θ,

with L_B the same loss on the step's batch B (all n rows, or a mini-batch) and s_θ the
parameter's learning-rate multiplier (its parameterization's scaling). The decay is not
multiplied by s_θ: ``weight_decay`` is a decay rate per unit of lr·steps in every
parameterization.

**The objective: the interface a model implements.** ``train`` talks to the model only through
an object with these members (``pyfeat.models.gd._NetworkObjective`` is an example):

``params``              dict name → float64 array of the device's array module: all parameters;
                        the loop updates the trained ones in place.
``lr_scale``            dict name → float: s_θ of each *trained* parameter (its keys say which
                        parameters are trained).
``begin_step(t)``       called before batch t is used, t = 0, …, T (t = T only evaluates): e.g.
                        cast the parameters to the data's dtype, resample random signs.
``gradient(X, y)``      on one block of rows (X, y on the device, y in X's working dtype):
                        ``(sq, grads)`` with sq = Σ_i (f(x_i) − y_i)² and, for each trained name,
                        grads[name] = Σ_i ∇_name ½(f(x_i) − y_i)² (float64). Sums over the
                        block's rows, not means, so that blocks add up to a batch.
``residual(X, y)``      sq alone (a forward pass: the validation loss and the last step's loss).
``diagnostics()``       dict name → float recorded in the history at every logged step (e.g. the
                        relative movement of a layer from its initialization).

**Batches.** ``batch_size=None`` (or ≥ n): every step uses all rows (from arrays: one call; from
a stream: one pass over it, its sum of y checked against the first pass). Mini-batches from
arrays: a fresh permutation of the rows each epoch (from the loop's generator), consecutive
slices of it; from a stream: consecutive rows of each pass (a stream is read in order, not
shuffled), cut into batches of ``batch_size`` rows whatever the stream's block size; the last
batch of an epoch is the shorter remainder. Nothing here depends on how a stream or the ops
block the rows (beyond float64 rounding).

**History** (``train``'s result): equal-length arrays at the logged steps t = 0, k, 2k, …
and always T (k = ``log_every``): "step"; "train_loss" = L at θ_t, exact for full batches (it
comes free with the step's gradient pass; t = T costs one forward pass), for mini-batches the
loss of the batch that step t + 1 uses, at θ_t (an unbiased estimate; t = T: the next batch);
"val_loss" = the same loss on the validation data (when given); then the objective's
diagnostics. ``callback(t, row, params)`` runs after each logged step with that step's row; a
true return value stops training there. A loss that is not finite (divergence) raises ValueError
naming lr.
"""

from __future__ import annotations

import math

import numpy as np

from pyfeat.models import _data
from pyfeat.ops._plan import working_dtype

__all__ = ["Data", "train", "log_steps"]


class Data:
    """The training rows, on ``dev``: arrays (``X``, ``y``, already validated) or a reproducible
    ``source`` of (X_block, y_block) that ``pyfeat.models._data.moments`` has checked, with n
    rows, Σy = ``sum_y`` (every later pass is compared with it) and its working ``dtype``
    (float32 or float64; for arrays, X's). y is passed to the objective in that dtype."""

    def __init__(self, dev, X=None, y=None, source=None, n=None, sum_y=None, dtype=None):
        self.dev, self.source, self.sum_y, self.dtype = dev, source, sum_y, dtype
        if source is None:
            self.X = dev.asarray(X)
            self.dtype = working_dtype(self.X)
            self.y = dev.asarray(y, self.dtype)
            n = X.shape[0]
        self.n = n

    def put(self, Xb, yb):
        """One block on the device, y in the working dtype."""
        return self.dev.asarray(Xb), self.dev.asarray(yb, self.dtype)

    def passes(self):
        """One pass over all rows, as device blocks."""
        if self.source is None:
            return [(self.X, self.y)]
        return (self.put(Xb, yb) for Xb, yb in _data.again(self.source, self.n, self.sum_y))

    def batches(self, batch_size, rng):
        """Endless batches (lists or iterators of device blocks); see the module docstring."""
        if batch_size is None or batch_size >= self.n:
            while True:
                yield self.passes()
        elif self.source is None:
            xp = self.dev.xp
            while True:
                perm = rng.permutation(self.n)
                for s in range(0, self.n, batch_size):
                    idx = xp.asarray(perm[s : s + batch_size])
                    yield [(self.X[idx], self.y[idx])]
        else:
            while True:
                yield from _consecutive(self.passes(), batch_size, self.dev.xp)


def _consecutive(blocks, size, xp):
    """Batches of ``size`` consecutive rows cut from the blocks of one pass (the last shorter)."""
    parts, have = [], 0
    for Xb, yb in blocks:
        while Xb.shape[0]:
            take = min(size - have, Xb.shape[0])
            parts.append((Xb[:take], yb[:take]))
            have += take
            Xb, yb = Xb[take:], yb[take:]
            if have == size:
                yield [_join(parts, xp)]
                parts, have = [], 0
    if parts:
        yield [_join(parts, xp)]


def _join(parts, xp):
    if len(parts) == 1:
        return parts[0]
    return xp.concatenate([p[0] for p in parts]), xp.concatenate([p[1] for p in parts])


def log_steps(steps, log_every):
    """The logged steps: 0, k, 2k, … and ``steps`` (k = ``log_every``)."""
    return sorted(set(range(0, steps + 1, log_every)) | {steps})


def _finite(sq, t, lr):
    if not math.isfinite(sq):
        raise ValueError(f"lr={lr!r} is too large for this data: the training loss is {sq} at step {t} "
                         "(diverged); use a smaller learning rate")


def train(objective, data, *, steps, lr, batch_size=None, weight_decay=0.0, rng=None, log_every=1,
          val=None, callback=None, verbose=False, desc="train"):
    """Run ``steps`` steps of gradient descent on ``objective`` (module docstring) over
    ``data`` (a ``Data``); ``val`` = (X_val, y_val) on the device or None; ``rng`` a numpy
    Generator (mini-batch permutations). Returns the history: a dict of equal-length arrays."""
    from tqdm.auto import tqdm

    logged = set(log_steps(steps, log_every))
    rows = []
    batches = data.batches(batch_size, rng)
    params, scale = objective.params, objective.lr_scale
    # overflow on the way to divergence is reported once, by _finite, instead of as warnings
    with tqdm(total=steps, disable=not verbose, desc=desc, unit="step") as bar, \
            np.errstate(over="ignore", invalid="ignore"):
        for t in range(steps + 1):
            objective.begin_step(t)
            batch_rows, sq, grads = 0, 0.0, None
            for Xb, yb in next(batches):
                batch_rows += Xb.shape[0]
                if t < steps:
                    sq_b, g_b = objective.gradient(Xb, yb)
                    grads = g_b if grads is None else {k: grads[k] + g_b[k] for k in grads}
                else:
                    sq_b = objective.residual(Xb, yb)
                sq += float(sq_b)
            _finite(sq, t, lr)
            if t in logged:
                row = {"step": t, "train_loss": sq / (2 * batch_rows)}
                if val is not None:
                    row["val_loss"] = float(objective.residual(*val)) / (2 * val[0].shape[0])
                row.update(objective.diagnostics())
                rows.append(row)
                bar.set_postfix(loss=f"{row['train_loss']:.4g}", refresh=False)
                if callback is not None and callback(t, row, params):
                    break
            if t == steps:
                break
            for name, s in scale.items():
                p = params[name]
                if weight_decay:
                    p *= 1.0 - lr * weight_decay
                p -= lr * (s / batch_rows) * grads[name]
            bar.update()
    return {key: np.array([r[key] for r in rows], dtype=np.int64 if key == "step" else np.float64)
            for key in rows[0]}
