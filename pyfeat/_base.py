"""What every pyfeat estimator shares: scikit-learn's ``BaseEstimator`` + ``RegressorMixin``, one
input path for arrays, and the seed.

Conventions (scikit-learn's): ``__init__`` stores its arguments verbatim, ``fit`` validates them
(each model's ``_check_params``, whose errors name the parameter first) and returns ``self``,
fitted attributes end in an underscore, ``get_params``/``set_params``/``clone`` work, and
``score`` is R². Errors are scikit-learn's: ``NotFittedError`` (``sklearn.exceptions``; also a
ValueError and an AttributeError) and the messages of ``sklearn.utils.validation``.

**Inputs.** Arrays of every kind a scikit-learn user passes — NumPy arrays and memmaps, lists,
pandas DataFrames/Series (``feature_names_in_`` is recorded and checked at predict), xarray
DataArrays — go through ``sklearn.utils.validation.validate_data``: float32 stays float32
(pyfeat's ops then work in float32), anything else becomes float64; NaN/inf, complex, object,
sparse and empty inputs get scikit-learn's errors. CuPy arrays stay on the GPU and get the same
checks here (scikit-learn cannot look at them). Data streams (models that read the data in
passes) have their own path in ``pyfeat.models._data``.

**Seeds.** ``seed`` is pyfeat's name (DESIGN.md) and ``random_state`` scikit-learn's; both take
None (fresh entropy), an int ≥ 0, a ``numpy.random.Generator``, a ``SeedSequence`` or a legacy
``RandomState``. ``random_state``, when not None, is used instead of ``seed``. A Generator or a
RandomState is advanced by one draw per fit, as in scikit-learn.
"""

from __future__ import annotations

import numbers

import numpy as np
import scipy.sparse
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted, validate_data

from pyfeat import backend as _backend

__all__ = ["Regressor", "NotFittedError", "clone", "check_is_fitted", "check_seed", "seed_sequence"]

FLOAT_DTYPES = (np.float64, np.float32)
# what ``seed`` and ``random_state`` accept (the module docstring)
SeedLike = int | np.random.Generator | np.random.SeedSequence | np.random.RandomState | None


def check_seed(value, name="seed"):
    """ValueError naming ``name`` unless ``value`` is something ``seed_sequence`` accepts."""
    if value is None or isinstance(value, (np.random.SeedSequence, np.random.Generator, np.random.RandomState)):
        return
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 0:
        return
    raise ValueError(f"{name} must be None, an integer >= 0, a numpy Generator, SeedSequence or "
                     f"RandomState, got {value!r}")


def seed_sequence(value, name="seed"):
    """A ``numpy.random.SeedSequence`` from what ``seed``/``random_state`` accept (module
    docstring); a Generator or RandomState is advanced by one draw."""
    check_seed(value, name)
    if value is None:
        return np.random.SeedSequence()
    if isinstance(value, np.random.SeedSequence):
        return value
    if isinstance(value, np.random.Generator):
        return np.random.SeedSequence(int(value.integers(0, 2**63)))
    if isinstance(value, np.random.RandomState):
        return np.random.SeedSequence(int(value.randint(0, 2**31 - 1)))
    return np.random.SeedSequence(int(value))


def _check_cupy(X, name, ndim):
    """The checks of validate_data for a CuPy array (which scikit-learn cannot look at)."""
    xp = _backend.array_module(X)
    if X.dtype.kind not in "fiub" or X.dtype.itemsize > 8:
        raise ValueError(f"{name} must hold real numbers (float32/float64), got dtype {X.dtype}")
    if X.ndim not in ndim:
        raise ValueError(f"{name} must be a {' or '.join(f'{d}-D' for d in ndim)} array, got shape {X.shape}")
    if X.size == 0:
        raise ValueError(f"{name} is empty (shape {X.shape})")
    if X.dtype.kind == "f" and not bool(xp.isfinite(X).all()):
        raise ValueError(f"Input {name} contains NaN or infinity.")
    return X if X.dtype in FLOAT_DTYPES else X.astype(xp.float64)


def _check_shapes(X, y=None):
    """scikit-learn's shape errors, naming the argument: X must be 2-D; X and y as long."""
    if scipy.sparse.issparse(X):
        return  # validate_data says that sparse input is not supported
    ndim = getattr(X, "ndim", None)
    if ndim is not None and ndim != 2:
        raise ValueError(f"X must be a 2-D array (n_samples, n_features), got shape {tuple(X.shape)}. "
                         "Reshape your data either using X.reshape(-1, 1) if it has a single feature "
                         "or X.reshape(1, -1) if it contains a single sample.")
    try:
        nx, ny = len(X), len(y)
    except TypeError:  # no length (y None or 0-d): validate_data says what is wrong
        return
    if nx != ny:
        raise ValueError(f"Found input variables with inconsistent numbers of samples: X has {nx} rows, "
                         f"y has {ny}")


class Regressor(RegressorMixin, BaseEstimator):
    """Base of pyfeat's regressors: scikit-learn's estimator API, one input path, the seed.

    Subclasses implement ``fit`` and ``_predict``; ``predict`` and ``score`` are shared (the
    conventions, inputs and seeds: the ``pyfeat._base`` module docstring).

    Examples
    --------
    >>> import pyfeat as pf
    >>> from pyfeat._base import Regressor
    >>> issubclass(pf.TwoLayerReLU, Regressor), issubclass(pf.KernelRidge, Regressor)
    (True, True)
    >>> pf.KernelRidge(ridge=1e-3).get_params()["ridge"]
    0.001
    """

    _multi_output = False  # whether y may be (n, k)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = self._multi_output
        tags.target_tags.single_output = True
        return tags

    def _check_seeds(self):
        check_seed(getattr(self, "seed", None), "seed")
        check_seed(getattr(self, "random_state", None), "random_state")

    def _seed_sequence(self):
        """The SeedSequence of this fit (``random_state`` if set, else ``seed``); call once per fit."""
        random_state = getattr(self, "random_state", None)
        if random_state is not None:
            return seed_sequence(random_state, "random_state")
        return seed_sequence(getattr(self, "seed", None))

    def _validate_xy(self, X, y):
        """(X, y) for fit: X (n, d) float32/float64, y (n,) (or (n, k) for multi-output models;
        a single-output model ravels an (n, 1) y with a DataConversionWarning)."""
        _check_shapes(X, y)
        if _backend.is_cupy(X):
            X = _check_cupy(X, "X", (2,))
            y = _check_cupy(_backend.array_module(X).asarray(y), "y", (1, 2) if self._multi_output else (1,))
            if y.shape[0] != X.shape[0]:
                raise ValueError(f"Found input variables with inconsistent numbers of samples: "
                                 f"[{X.shape[0]}, {y.shape[0]}]")
            self.n_features_in_ = X.shape[1]
            return X, y
        return validate_data(self, X, y, dtype=FLOAT_DTYPES, y_numeric=True, multi_output=self._multi_output)

    def _validate_x(self, X, name="X"):
        """X for predict (after fit): the features seen in fit, float32/float64."""
        check_is_fitted(self)
        _check_shapes(X)
        if _backend.is_cupy(X):
            X = _check_cupy(X, name, (2,))
            if X.shape[1] != self.n_features_in_:
                raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                                 f"{self.n_features_in_} features as input.")
            return X
        return validate_data(self, X, dtype=FLOAT_DTYPES, reset=False)

    def _finite_predictions(self, out):
        """``out``, or ValueError when a prediction is not representable in its dtype."""
        return finite_predictions(out, type(self).__name__)

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predict the labels of the rows of X with the fitted model.

        Parameters
        ----------
        X : array_like of shape (n, d)
            Rows to predict, with the d features seen in ``fit``: a NumPy or CuPy array, a
            list, a pandas DataFrame, or a dask array.

        Returns
        -------
        ndarray of shape (n,) or (n, k)
            The predictions, in the working dtype of X (float32 for float32 X, else float64);
            (n, k) for a model fitted on an (n, k) y. NumPy in → NumPy out, CuPy in → CuPy
            out, and a dask array → a lazy dask array chunked like X (each chunk predicted
            where it lives).

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        ValueError
            X with another number of features than in ``fit``, NaN/inf, or predictions that
            overflow their dtype.

        Examples
        --------
        >>> import pyfeat as pf
        >>> X, y = pf.tasks.MultiIndex(d=4, r=1, degree=2, seed=0).sample(200, seed=1)
        >>> for model in (pf.RandomFeatures(width=64), pf.KernelRidge()):
        ...     print(type(model).__name__, model.fit(X, y).predict(X[:3]).shape)
        RandomFeatures (3,)
        KernelRidge (3,)
        """
        if _is_dask(X):
            return self._predict_dask(X)
        return self._predict(X)

    def _check_dask_x(self, X):
        """A dask X for predict: (n, n_features_in_), its columns in one chunk."""
        check_is_fitted(self)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has shape {X.shape}, but {type(self).__name__} is expecting "
                             f"{self.n_features_in_} features as input.")
        return X.rechunk({1: -1})

    def _predict_dask(self, X):
        X = self._check_dask_x(X)
        dt = np.float32 if X.dtype == np.float32 else np.float64
        k = getattr(self, "n_outputs_", 1)
        if k == 1:
            return X.map_blocks(self._predict, dtype=dt, drop_axis=1)
        return X.map_blocks(self._predict, dtype=dt, chunks=(X.chunks[0], (k,)))

    def score(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
        """Return the coefficient of determination R² of the predictions.

        R² = 1 − Σ(y − f(x))² / Σ(y − ȳ)² (scikit-learn's ``r2_score``; averaged uniformly
        over the columns of a 2-D y), computed in float64 after rescaling y and the predictions
        by one power of two, so that the squares stay in range.

        Parameters
        ----------
        X : array_like of shape (n, d)
            Test rows (as in ``predict``; a dask array is scored chunk by chunk on its cluster).
        y : array_like of shape (n,) or (n, k)
            True labels.
        sample_weight : array_like of shape (n,), optional
            Weights of the rows (not for dask arrays).

        Returns
        -------
        float
            R²: 1 for a perfect prediction, 0 for the constant ȳ, negative when worse.

        Raises
        ------
        ValueError
            When y does not have one value (per output) for each row of X.

        Examples
        --------
        >>> import numpy as np
        >>> import pyfeat as pf
        >>> X, y = pf.tasks.MultiIndex(d=4, r=1, degree=2, seed=0).sample(200, seed=1)
        >>> model = pf.RandomFeatures(width=64).fit(X, y)
        >>> r2 = 1 - np.mean((model.predict(X) - y) ** 2) / np.var(y)
        >>> bool(np.isclose(model.score(X, y), r2))
        True
        """
        from sklearn.metrics import r2_score

        if _is_dask(X):
            return self._score_dask(X, y)
        pred = _backend.to_numpy(self.predict(X)).astype(np.float64)
        y = np.asarray(_backend.to_numpy(y) if _backend.is_cupy(y) else y, dtype=np.float64)
        if y.shape != pred.shape and not (y.size == pred.size and y.shape[0] == pred.shape[0]):
            raise ValueError(f"score: y must have shape {pred.shape} (one value per row of X), got {y.shape}")
        # R² is scale free: both by the same power of two, so that the squares stay in range
        peak = max(float(np.abs(y).max()), float(np.abs(pred).max()))
        e = int(np.frexp(peak)[1]) if 0 < peak < np.inf else 0
        return float(r2_score(np.ldexp(y.reshape(pred.shape), -e), np.ldexp(pred, -e), sample_weight=sample_weight))

    def _score_dask(self, X, y):
        """R² of a dask X, y: the sums computed chunk by chunk on the cluster (the averages over
        columns as scikit-learn takes them), after one power-of-two rescaling."""
        import dask
        import dask.array as da

        pred = self.predict(X)
        y = y if _is_dask(y) else da.from_array(np.asarray(y), chunks=pred.chunks[0])
        y = y.astype(np.float64).reshape(pred.shape).rechunk(pred.chunks)
        pred = pred.astype(np.float64)
        peak, = dask.compute(da.maximum(abs(y).max(), abs(pred).max()))
        e = int(np.frexp(peak)[1]) if 0 < peak < np.inf else 0
        y, pred = y * 2.0**-e, pred * 2.0**-e
        ss_res, ss_tot = dask.compute(((y - pred) ** 2).sum(axis=0), ((y - y.mean(axis=0)) ** 2).sum(axis=0))
        r2 = np.where(ss_tot > 0, 1 - ss_res / np.where(ss_tot > 0, ss_tot, 1), np.where(ss_res > 0, 0.0, 1.0))
        return float(np.mean(r2))


def finite_predictions(out, model):
    """``out``, or ValueError when a prediction of ``model`` (a class name) is not representable
    in its dtype."""
    xp = _backend.array_module(out)
    if not bool(xp.isfinite(out).all()):
        raise ValueError(f"{model}.predict: predictions overflow {out.dtype} for inputs of "
                         "this magnitude; pass float64 X (or rescale X)")
    return out


def _is_dask(x):
    return type(x).__module__.startswith("dask.")
