"""Tests of the gradient-descent training loop (pyfeat.models._train) and of GDNetwork: the loop on
a linear model against its closed-form iteration, batches from arrays and streams, gradients of
every parameterization against finite differences and a float64 NumPy network, one step against
the closed-form update, streamed == in-memory, the first step against Algorithm 1's gradient,
the lazy-regime scaling on a small case, and bad input.

Statistical tests use fixed seeds and state the numbers measured with them in their docstrings.
"""

from __future__ import annotations

import numpy as np
import pytest

import pyfeat as pf
from pyfeat import ops
from pyfeat.models import _data as _data_passes
from pyfeat.models import _train
from pyfeat.models.gd import PARAMETERIZATIONS, GDNetwork

# ---------------------------------------------------------------------------------------------
# the loop, on a linear model


class Linear:
    """f(x) = θ·x through the objective interface of pyfeat.models._train (NumPy, float64);
    records the rows it sees."""

    def __init__(self, d, scale=1.0):
        self.params = {"theta": np.zeros(d)}
        self.lr_scale = {"theta": scale}
        self.seen, self.steps = [], []

    def begin_step(self, t):
        self.steps.append(t)

    def gradient(self, X, y):
        self.seen.append(X[:, -1].copy())
        r = X @ self.params["theta"] - y
        return r @ r, {"theta": X.T @ r}

    def residual(self, X, y):
        r = X @ self.params["theta"] - y
        return r @ r

    def diagnostics(self):
        return {"norm": float(np.linalg.norm(self.params["theta"]))}


def _linear_data(n=90, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    X[:, -1] = np.arange(n)  # row ids, to see which rows a batch holds
    return X, X[:, 0] - 2 * X[:, 1] + 0.1 * rng.standard_normal(n)


def _stream(X, y, block):
    return lambda: ((X[s : s + block], y[s : s + block]) for s in range(0, len(y), block))


def _data(X, y, block=None):
    dev = ops.device("numba")
    if block is None:
        return _train.Data(dev, X, y)
    source = _stream(X, y, block)
    n, _, _, _, sum_y = _data_passes.moments(source)
    return _train.Data(dev, source=source, n=n, sum_y=sum_y, dtype=np.dtype(np.float64))


def test_loop_full_batch_is_the_closed_form_iteration():
    """θ_{t+1} = (1 − lr·λ)θ_t − lr·s·Xᵀ(Xθ_t − y)/n, the loss (1/2n)‖Xθ_t − y‖² logged at θ_t, from
    arrays and from a stream of 7-row blocks alike."""
    X, y = _linear_data()
    X = X[:, :2]
    n, lr, s, wd, T = len(y), 0.05, 2.0, 0.3, 12
    theta, losses = np.zeros(2), []
    for t in range(T + 1):
        r = X @ theta - y
        losses.append(r @ r / (2 * n))
        if t < T:
            theta = (1 - lr * wd) * theta - lr * s * X.T @ r / n
    for data in (_data(X, y), _data(X, y, block=7)):
        obj = Linear(2, scale=s)
        hist = _train.train(obj, data, steps=T, lr=lr, weight_decay=wd, log_every=1)
        np.testing.assert_allclose(obj.params["theta"], theta, rtol=1e-12)
        np.testing.assert_allclose(hist["train_loss"], losses, rtol=1e-12)
        np.testing.assert_array_equal(hist["step"], np.arange(T + 1))
        assert obj.steps == list(range(T + 1))
        assert set(hist) == {"step", "train_loss", "norm"}


def test_loop_minibatches_from_arrays_cover_each_epoch_once():
    """Mini-batches from arrays: each epoch a permutation of all rows (last batch the remainder),
    seeded by the loop's generator: the same generator gives the same order."""
    X, y = _linear_data(n=50)
    obj = Linear(3)
    _train.train(obj, _data(X, y), steps=14, lr=1e-4, batch_size=8, rng=np.random.default_rng(1))
    sizes = [len(s) for s in obj.seen]
    assert sizes == [8] * 6 + [2] + [8] * 6 + [2]
    for epoch in (obj.seen[:7], obj.seen[7:]):
        np.testing.assert_array_equal(np.sort(np.concatenate(epoch)), np.arange(50))
    assert not np.array_equal(np.concatenate(obj.seen[:7]), np.arange(50))
    again = Linear(3)
    _train.train(again, _data(X, y), steps=14, lr=1e-4, batch_size=8, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(again.params["theta"], obj.params["theta"])


@pytest.mark.parametrize("block", [1, 5, 13, 50])
def test_loop_minibatches_from_a_stream_are_consecutive_rows(block):
    """From a stream: batches of consecutive rows of each pass, whatever the stream's block size
    (the same θ for every block size)."""
    X, y = _linear_data(n=30)
    obj = Linear(3)
    _train.train(obj, _data(X, y, block=block), steps=8, lr=1e-4, batch_size=7)
    rows = [s.astype(int).tolist() for s in obj.seen]
    assert rows[:5] == [list(range(0, 7)), list(range(7, 14)), list(range(14, 21)), list(range(21, 28)), [28, 29]]
    assert rows[5] == list(range(0, 7))
    ref = Linear(3)
    _train.train(ref, _data(X, y, block=30), steps=8, lr=1e-4, batch_size=7)
    np.testing.assert_allclose(obj.params["theta"], ref.params["theta"], rtol=1e-14)


def test_loop_logging_callback_and_divergence():
    X, y = _linear_data()
    assert _train.log_steps(10, 4) == [0, 4, 8, 10]
    hist = _train.train(Linear(3), _data(X, y), steps=10, lr=1e-5, log_every=4,
                        val=(X[:10], y[:10]))
    np.testing.assert_array_equal(hist["step"], [0, 4, 8, 10])
    assert all(len(v) == 4 for v in hist.values()) and "val_loss" in hist
    seen = []

    def stop_at_6(step, row, params):
        seen.append((step, set(row), set(params)))
        return step >= 6

    hist = _train.train(Linear(3), _data(X, y), steps=10, lr=1e-5, log_every=2, callback=stop_at_6)
    np.testing.assert_array_equal(hist["step"], [0, 2, 4, 6])
    assert seen[0] == (0, {"step", "train_loss", "norm"}, {"theta"})
    with pytest.raises(ValueError, match=r"lr=1000.0 is too large .* loss is inf"):
        with np.errstate(over="ignore", invalid="ignore"):
            _train.train(Linear(3), _data(X, y), steps=300, lr=1e3)
