"""A tiny scikit-learn style estimator base: ``get_params``, ``set_params``, ``repr``, ``clone``.

Subclasses follow scikit-learn's conventions: ``__init__`` stores its keyword arguments verbatim
(no validation, no logic), ``fit`` validates them and returns ``self``, and fitted attributes end
in an underscore.
"""

from __future__ import annotations

import inspect


class NotFittedError(ValueError, AttributeError):
    """Raised when a method needs a fitted estimator (as scikit-learn's NotFittedError)."""


class BaseEstimator:
    """get_params/set_params read the parameter names from the ``__init__`` signature."""

    @classmethod
    def _param_names(cls):
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values() if p.name != "self"]

    def get_params(self, deep=True):
        """Parameters as a dict (``deep`` is accepted for scikit-learn compatibility)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        """Set parameters by name; returns self. Unknown names raise ValueError."""
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(
                    f"{type(self).__name__}.set_params: unknown parameter {name!r}; valid: {valid}"
                )
            setattr(self, name, value)
        return self

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def clone(estimator, **overrides):
    """A new unfitted estimator with the same parameters (``overrides`` replace some)."""
    params = estimator.get_params()
    params.update(overrides)
    return type(estimator)(**params)
