"""Sweep configurations: TOML files (or the shipped ones, by name) read into a ``SweepConfig``.

A config names a task family, the grid (d values, n values, number of seeds, optional sweeps of
task parameters) and the models with their constructor parameters::

    # What this reproduces, and its runtime on a 2-core CPU.
    name = "separation"
    experiment = "regression"   # or "transfer" (fit on a source task, refit the head on a target)
    seed = 0                    # base seed: every grid point's seeds derive from it
    n_test = 4096               # held-out samples per (d, seed, task parameters)
    noise = 0.0                 # label noise standard deviation
    dtype = "float32"
    threshold = 0.5             # default MSE threshold of ``pyfeat plot`` / sample_complexity
    metric = "test_mse"         # or "test_rel" (test MSE / variance of the test labels)
    interpolate = false         # ``pyfeat plot``: n* log-log interpolated between grid points

    [task]                      # family = a registered name (see TASKS) or "module:attr"
    family = "MultiIndex"
    r = 2
    degree = 4

    [grid]
    d = [16, 24, 32]
    n = [256, 1024, 4096]
    seeds = 2                   # repetitions 0, 1 (each with its own task draw and data)
    task = { beta = [0.0, 0.5] }   # optional: task parameters swept as extra grid axes

    [transfer]                  # experiment = "transfer" only; exactly one of:
    n_source = 16384            # source samples, the same at every d (the grid's n is the
                                # number of target samples), or
    # n_source_per_d2 = 32      # source samples growing with d: n_source = 32·d² at each d

    [models.nn]                 # the table name ("nn") is the model's name in results and plots
    type = "TwoLayerReLU"       # a registered name (see MODELS) or "module:attr"
    width = 1024                # any other key is passed to the constructor ...
    max_n = 65536               # ... except max_n (skip larger n for this model), stop_below
    stop_below = 0.3            # (see below) and transfer (false: fit on the target only in a
                                # transfer experiment)

The runner sets each model's ``seed`` itself (from the grid point), so a model table must not.

**stop_below** (a model's early stop of the n grid): at each (d, task parameters) the model's
points at larger n are skipped once, at one n, every seed's ``metric`` is ≤ stop_below (less a
few float64 roundings). It must be ≤ ``threshold``: n* at any threshold ≥ stop_below (the first
n whose seed-mean is at or below it) is then the same as on the whole grid, and so is every
bootstrap resample's (a mean of seeds that are all ≤ stop_below is ≤ it), so the skipped fits
change no n* and no interval of that metric. At a lower threshold, or in the other metric, a
d may show as a lower bound (n* > the last n run) where the whole grid would reach it. The
points of such a model run n by n at each d (on Dask too: its next n is submitted once the
seeds of the last one end).

Values are checked before anything runs: every model is built from its table (with a dummy
seed) and runs its parameter check (``_check_params()``, when the model has one: pyfeat's models
validate there, at fit time), and the task is built at every d of the grid and every
combination of swept task parameters (catching e.g. r > d). Every error names the file, the line
and the key (``ConfigError``); a model's or task's error is put at the key its message starts
with (``width must be an integer`` → ``models.<name>.width``).
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import itertools
import math
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

from pyfeat.experiments.results import BASE_COLUMNS

__all__ = ["ConfigError", "SweepConfig", "ModelSpec", "load_config", "shipped_configs",
           "MODELS", "TASKS", "register_model", "register_task", "resolve", "call_factory"]

CONFIG_DIR = Path(__file__).parent / "configs"

# name -> "module:attr" (imported when used) or a callable
MODELS = {
    "TwoLayerReLU": "pyfeat.models:TwoLayerReLU",
    "RandomFeatures": "pyfeat.models:RandomFeatures",
    "GDNetwork": "pyfeat.models:GDNetwork",
    "QuadraticTaylor": "pyfeat.models:QuadraticTaylor",
    "HierarchicalQuadratic": "pyfeat.models:HierarchicalQuadratic",
    "KernelRidge": "pyfeat.kernel_ridge:KernelRidge",
}
TASKS = {
    "MultiIndex": "pyfeat.tasks:MultiIndex",
    "SingleIndex": "pyfeat.tasks:SingleIndex",
    "Heaviside1D": "pyfeat.tasks:Heaviside1D",
    "transfer_pair": "pyfeat.tasks:transfer_pair",
}

EXPERIMENTS = ("regression", "transfer")
METRICS = ("test_mse", "test_rel")
DTYPES = ("float32", "float64")
RESERVED = BASE_COLUMNS  # result columns a swept task parameter must not shadow


class ConfigError(ValueError):
    """A malformed config; the message names the file, the line (when known) and the key.

    A ``ValueError``; the ``pyfeat`` command prints it as one line (exit status 2).

    Examples
    --------
    >>> from pyfeat.experiments import ConfigError, load_config
    >>> try:
    ...     load_config('''
    ... [task]
    ... family = "MultiIndex"
    ... [grid]
    ... d = [8]
    ... n = [0]
    ... [models.rf]
    ... type = "RandomFeatures"
    ... ''')
    ... except ConfigError as exc:
    ...     print(exc)
    <string>, line 6: grid.n: must be >= 1, got 0
    """


def register_model(name: str, factory: Callable[..., Any]) -> None:
    """Make ``type = name`` in a model table build ``factory(**params, seed=...)``.

    Parameters
    ----------
    name : str
        The name configs use (``type = name``); replaces an earlier registration.
    factory : callable
        Called with the table's other keys and ``seed`` (left out when the factory takes no
        ``seed``); returns an estimator with ``fit(X, y)`` and ``predict(X)``.

    See Also
    --------
    register_task : The same for task families.

    Examples
    --------
    >>> from sklearn.linear_model import Ridge
    >>> from pyfeat.experiments import load_config, register_model
    >>> register_model("Ridge", Ridge)
    >>> config = load_config('''
    ... [task]
    ... family = "MultiIndex"
    ... [grid]
    ... d = [8]
    ... n = [64]
    ... [models.ridge]
    ... type = "Ridge"
    ... alpha = 0.1
    ... ''')
    >>> config.models[0]
    ModelSpec(name='ridge', type='Ridge', params={'alpha': 0.1}, max_n=None, transfer=True, stop_below=None)
    """
    MODELS[name] = factory


def register_task(name: str, factory: Callable[..., Any]) -> None:
    """Make ``family = name`` in ``[task]`` build ``factory(d=..., seed=..., **params)``.

    Parameters
    ----------
    name : str
        The name configs use (``family = name``); replaces an earlier registration.
    factory : callable
        Called with ``d``, ``seed`` (each left out when the factory does not take it) and the
        table's other keys; returns a task with ``sample(n, noise=, seed=, dtype=)`` (and
        ``U`` for the alignment column), or a (source, target) pair for a transfer experiment.

    See Also
    --------
    register_model : The same for models.

    Examples
    --------
    >>> import pyfeat as pf
    >>> from pyfeat.experiments import load_config, register_task
    >>> register_task("Sum4", lambda d, seed: pf.tasks.MultiIndex(d, r=2, degree=4, head="sum", seed=seed))
    >>> load_config('''
    ... [task]
    ... family = "Sum4"
    ... [grid]
    ... d = [8]
    ... n = [64]
    ... [models.rf]
    ... type = "RandomFeatures"
    ... ''').task
    'Sum4'
    """
    TASKS[name] = factory


def resolve(registry: dict, name: str) -> Callable[..., Any]:
    """The callable behind a registry name or a "module:attr" string.

    Parameters
    ----------
    registry : dict
        ``MODELS`` or ``TASKS``: name -> callable or "module:attr".
    name : str
        A registered name, or "module:attr".

    Returns
    -------
    callable
        The registered callable, or the attribute imported from the module.

    Raises
    ------
    KeyError
        For a name that is neither registered nor "module:attr".
    ImportError, AttributeError
        When the module or the attribute does not exist.

    Examples
    --------
    >>> from pyfeat.experiments.config import MODELS, resolve
    >>> resolve(MODELS, "KernelRidge").__name__
    'KernelRidge'
    >>> resolve(MODELS, "sklearn.linear_model:Ridge").__name__
    'Ridge'
    """
    target = registry.get(name, name)
    if callable(target):
        return target
    if ":" not in target:
        raise KeyError(f"unknown name {name!r}; known: {sorted(registry)} (or use 'module:attr')")
    module, attr = target.split(":", 1)
    return getattr(importlib.import_module(module), attr)


def call_factory(factory: Callable[..., Any], kwargs: dict) -> Any:
    """Call ``factory(**kwargs)``, leaving out ``d``/``seed`` when the factory does not take them.

    Parameters
    ----------
    factory : callable
        A model or task factory.
    kwargs : dict
        Keyword arguments; ``d`` and ``seed`` are dropped unless the factory's signature has
        them (or ``**kwargs``).

    Returns
    -------
    object
        What the factory returns.

    Examples
    --------
    >>> from sklearn.linear_model import Ridge
    >>> from pyfeat.experiments.config import call_factory
    >>> call_factory(Ridge, {"alpha": 0.5, "seed": 3})     # Ridge takes no seed
    Ridge(alpha=0.5)
    """
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return factory(**kwargs)
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        kwargs = {k: v for k, v in kwargs.items() if k in params or k not in ("d", "seed")}
    return factory(**kwargs)


@dataclass(frozen=True)
class ModelSpec:
    """One ``[models.<name>]`` table.

    Parameters
    ----------
    name : str
        The table's name: the model's name in the results and plots.
    type : str
        A registered model name (``MODELS``) or "module:attr".
    params : dict
        The table's other keys: the constructor's keyword arguments (without ``seed``).
    max_n : int, optional
        Grid points with n above it are skipped for this model.
    transfer : bool, default True
        In a transfer experiment: fit on the source and transfer (False: fit on the target
        only).
    stop_below : float, optional
        Skip the larger n at a d once every seed's metric is ≤ it at one n (module docstring).

    Examples
    --------
    >>> from pyfeat.experiments import ModelSpec
    >>> ModelSpec("ntk", "KernelRidge", {"kernel": "ntk"}, max_n=8192)
    ModelSpec(name='ntk', type='KernelRidge', params={'kernel': 'ntk'}, max_n=8192, transfer=True, stop_below=None)
    """

    name: str
    type: str
    params: dict
    max_n: int | None = None
    transfer: bool = True
    stop_below: float | None = None


@dataclass(frozen=True)
class SweepConfig:
    """A validated sweep, as :func:`load_config` reads it (the module docstring has the format).

    Parameters
    ----------
    name : str
        The sweep's name (default: the file's stem).
    task : str
        The task family: a registered name (``TASKS``) or "module:attr".
    task_params : dict
        The ``[task]`` table without ``family``: the family's keyword arguments.
    d : tuple of int
        The dimensions of the grid.
    n : tuple of int
        The training-set sizes of the grid.
    seeds : int
        Repetitions 0, ..., seeds − 1 at each grid point.
    models : tuple of ModelSpec
        The ``[models.<name>]`` tables.
    sweep : dict, optional
        Task parameter -> tuple of values (``[grid] task``), extra grid axes.
    experiment : {"regression", "transfer"}, default "regression"
        What a grid point does.
    seed : int, default 0
        Base seed: every grid point's seeds derive from it.
    n_test : int, default 4096
        Held-out samples per (d, seed, task parameters).
    noise : float, default 0.0
        Label noise standard deviation.
    dtype : {"float32", "float64"}, default "float32"
        dtype of the samples.
    n_source : int, optional
        Transfer: source samples at every d.
    threshold : float, optional
        Default error threshold of ``pyfeat plot`` and :func:`sample_complexity`.
    metric : {"test_mse", "test_rel"}, default "test_mse"
        Default metric of ``pyfeat plot``.
    interpolate : bool, default False
        ``pyfeat plot``: n* log-log interpolated between grid points.
    text : str, default ""
        The TOML source, copied into the output directory.
    source : str, optional
        Where the config was read from: a path, or "<string>" (the default) for TOML text.
    n_source_per_d2 : int, optional
        Transfer: n_source = n_source_per_d2·d² (instead of ``n_source``).

    Examples
    --------
    >>> from pyfeat.experiments import load_config
    >>> config = load_config("separation")
    >>> config.name, config.task, config.d, [m.name for m in config.models]
    ('separation', 'MultiIndex', (16, 24, 32, 48), ['nn', 'rf', 'ntk', 'gd'])
    """

    name: str
    task: str
    task_params: dict
    d: tuple
    n: tuple
    seeds: int
    models: tuple
    sweep: dict = field(default_factory=dict)
    experiment: str = "regression"
    seed: int = 0
    n_test: int = 4096
    noise: float = 0.0
    dtype: str = "float32"
    n_source: int | None = None
    threshold: float | None = None
    metric: str = "test_mse"
    interpolate: bool = False
    text: str = ""
    source: str = "<string>"
    n_source_per_d2: int | None = None  # transfer: n_source = n_source_per_d2·d² (instead of n_source)

    def source_size(self, d: int) -> int | None:
        """Source samples of a transfer experiment at dimension d: n_source, or n_source_per_d2·d².

        Parameters
        ----------
        d : int
            The grid point's dimension.

        Returns
        -------
        int or None
            ``n_source``, or ``n_source_per_d2 * d * d`` when that is set; None for a
            regression.

        Examples
        --------
        >>> from pyfeat.experiments import load_config
        >>> config = load_config("transfer")
        >>> config.n_source, config.n_source_per_d2, config.source_size(16)
        (None, 32, 8192)
        """
        return self.n_source if self.n_source_per_d2 is None else self.n_source_per_d2 * d * d


def shipped_configs() -> list[str]:
    """Names of the configs shipped in ``pyfeat/experiments/configs``.

    Each runs by name: ``pyfeat run NAME``, ``load_config(NAME)``, ``run_sweep(NAME, out)``;
    each file says what it reproduces, its runtime, and what it showed.

    Returns
    -------
    list of str
        Sorted names.

    Examples
    --------
    >>> from pyfeat.experiments import shipped_configs
    >>> shipped_configs()
    ['exponents', 'heaviside', 'lazy', 'separation', 'spiked', 'taylor', 'transfer']
    """
    return sorted(p.stem for p in CONFIG_DIR.glob("*.toml"))


def load_config(source: str | PathLike | SweepConfig) -> SweepConfig:
    """Read and validate a sweep config (the module docstring has the format).

    Values are checked before anything runs: every model is built from its table and runs its
    parameter check, and the task is built at every d and swept parameter value of the grid.

    Parameters
    ----------
    source : str, path or SweepConfig
        A path, a shipped config name (e.g. ``"separation"``, see :func:`shipped_configs`),
        or TOML text (a string containing a newline); a SweepConfig is returned as is.

    Returns
    -------
    SweepConfig
        The validated config.

    Raises
    ------
    ConfigError
        Naming the file, the line and the key: no such file or shipped config, TOML syntax,
        an unknown or missing key, a bad value, a model's or task's own check failing.

    Examples
    --------
    >>> from pyfeat.experiments import load_config
    >>> config = load_config('''
    ... name = "tiny"
    ... [task]
    ... family = "MultiIndex"
    ... degree = 2
    ... [grid]
    ... d = [4, 8]
    ... n = [64, 256]
    ... seeds = 2
    ... [models.rf]
    ... type = "RandomFeatures"
    ... width = 32
    ... ''')
    >>> config.name, config.d, config.n, config.seeds, config.models[0].params
    ('tiny', (4, 8), (64, 256), 2, {'width': 32})
    >>> load_config("separation").source.endswith("separation.toml")
    True
    """
    if isinstance(source, SweepConfig):
        return source
    if isinstance(source, str) and "\n" in source:
        text, where = source, "<string>"
    else:
        path = Path(source)
        if not path.is_file() and (CONFIG_DIR / f"{source}.toml").exists():  # a directory does not shadow it
            path = CONFIG_DIR / f"{source}.toml"
        if not path.is_file():
            raise ConfigError(f"no config file {str(source)!r} and no shipped config of that name "
                              f"(shipped: {', '.join(shipped_configs())})")
        text, where = path.read_text(encoding="utf-8"), str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: TOML syntax error: {exc}") from None
    return _Validator(text, where).config(data)


# ---------------------------------------------------------------------------------------------
# finding a key's line in the TOML text (tomllib only reports lines for syntax errors)

_HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")
_ASSIGN = re.compile(r"^\s*([A-Za-z0-9_\-.\"' ]+?)\s*=")
_LEADING_NAME = re.compile(r"\s*([A-Za-z_]\w*)")


def _split_key(dotted):
    return tuple(part.strip().strip("\"'") for part in dotted.split("."))


def key_line(text: str, path: tuple[str, ...]) -> int | None:
    """1-based line of the key ``path`` in TOML ``text``.

    Parameters
    ----------
    text : str
        TOML source.
    path : tuple of str
        The key, e.g. ("models", "nn", "width").

    Returns
    -------
    int or None
        The ``key = ...`` line inside its table, or the table header for a table. Falls back
        to the longest prefix of ``path`` that is found (a key inside an inline table gives
        the line of the inline table); None if nothing is found.

    Examples
    --------
    >>> from pyfeat.experiments.config import key_line
    >>> text = '''[grid]
    ... d = [8]
    ... [models.nn]
    ... width = 64'''
    >>> key_line(text, ("models", "nn", "width")), key_line(text, ("models", "nn", "ridge"))
    (4, 3)
    """
    found = {}
    table = ()
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            table = _split_key(header.group(1))
            found.setdefault(table, number)
            continue
        assign = _ASSIGN.match(line)
        if assign:
            found.setdefault(table + _split_key(assign.group(1)), number)
    for k in range(len(path), 0, -1):
        if tuple(path[:k]) in found:
            return found[tuple(path[:k])]
    return None


class _Validator:
    """Checks the parsed TOML and builds the SweepConfig; every error names key and line."""

    def __init__(self, text, where):
        self.text, self.where = text, where

    def error(self, path, message):
        line = key_line(self.text, path)
        at = f"{self.where}, line {line}" if line else self.where
        return ConfigError(f"{at}: {'.'.join(path)}: {message}")

    def table(self, data, path, allowed, required=()):
        if not isinstance(data, dict):
            raise self.error(path, f"must be a table, got {type(data).__name__}")
        for key in data:
            if allowed is not None and key not in allowed:
                raise self.error(path + (key,), f"unknown key; allowed: {', '.join(allowed)}")
        for key in required:
            if key not in data:
                raise self.error(path, f"missing required key {key!r}")
        return data

    def integer(self, value, path, low):
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(path, f"must be an integer, got {value!r}")
        if value < low:
            raise self.error(path, f"must be >= {low}, got {value}")
        return value

    def number(self, value, path, low=None, strict=False):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(path, f"must be a number, got {value!r}")
        if not math.isfinite(value):
            raise self.error(path, f"must be a finite number, got {value!r}")
        if low is not None and (value <= low if strict else value < low):
            raise self.error(path, f"must be {'>' if strict else '>='} {low}, got {value}")
        return float(value)

    def string(self, value, path, choices=None):
        if not isinstance(value, str):
            raise self.error(path, f"must be a string, got {value!r}")
        if choices is not None and value not in choices:
            raise self.error(path, f"must be one of {', '.join(choices)}; got {value!r}")
        return value

    def int_list(self, value, path, low):
        if not isinstance(value, list) or not value:
            raise self.error(path, f"must be a non-empty list of integers, got {value!r}")
        values = [self.integer(v, path, low) for v in value]
        if len(set(values)) != len(values):
            raise self.error(path, f"has repeated values: {value}")
        return tuple(values)

    def factory(self, registry, name, path):
        try:
            return resolve(registry, name)
        except (ImportError, AttributeError, KeyError) as exc:
            raise self.error(path, f"{name!r} is not available: {exc}") from None

    def keywords(self, factory, params, path):
        """Each key of ``params`` must be a parameter of ``factory`` (unless it takes **kw)."""
        try:
            sig = inspect.signature(factory)
        except (TypeError, ValueError):  # no signature to check against: the call will check
            return
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()):
            return
        for key in params:
            if key not in sig.parameters:
                raise self.error(path + (key,), f"not a parameter of {getattr(factory, '__name__', factory)}"
                                 f" (parameters: {', '.join(sig.parameters)})")

    def built(self, factory, kwargs, keys, default, where=""):
        """factory(**kwargs), then its ``_check_params()`` when it has one. A ValueError or
        TypeError becomes a ConfigError at ``keys[name]`` for the parameter name its message
        starts with (else at ``default``), ``where`` appended (e.g. the grid point's d). A
        RuntimeError of the check (backend = "cuda" on a machine without one: the points may run
        on Dask workers that have one) is left to the grid points."""
        try:
            made = call_factory(factory, kwargs)
            check = getattr(made, "_check_params", None)
            if callable(check):
                with contextlib.suppress(RuntimeError):
                    check()
            return made
        except (ValueError, TypeError) as exc:
            name = _LEADING_NAME.match(str(exc))
            raise self.error(keys.get(name and name.group(1), default), f"{exc}{where}") from None

    def config(self, data):
        top = self.table(data, (), ["name", "experiment", "seed", "n_test", "noise", "dtype",
                                    "threshold", "metric", "interpolate", "task", "grid", "models", "transfer"],
                         required=["task", "grid", "models"])
        experiment = self.string(top.get("experiment", "regression"), ("experiment",), EXPERIMENTS)

        task = dict(self.table(top["task"], ("task",), None, required=["family"]))
        family = self.string(task.pop("family"), ("task", "family"))
        task_factory = self.factory(TASKS, family, ("task", "family"))
        for key in ("d", "seed"):
            if key in task:
                raise self.error(("task", key), "is set by the runner (use [grid] d / the top-level seed)")

        grid = self.table(top["grid"], ("grid",), ["d", "n", "seeds", "task"], required=["d", "n"])
        sweep = {}
        for key, values in self.table(grid.get("task", {}), ("grid", "task"), None).items():
            path = ("grid", "task", key)
            if not isinstance(values, list) or not values:
                raise self.error(path, f"must be a non-empty list of values to sweep, got {values!r}")
            if key in task:
                raise self.error(path, "is also set in [task]; set it in one place")
            if key in RESERVED:
                raise self.error(path, f"clashes with a result column; reserved: {', '.join(RESERVED)}")
            sweep[key] = tuple(values)

        transfer = self.table(top.get("transfer", {}), ("transfer",), ["n_source", "n_source_per_d2"])
        n_source = per_d2 = None
        if experiment == "transfer":
            if len(transfer) != 1:
                raise self.error(("transfer",), "experiment = 'transfer' needs exactly one of "
                                 "[transfer] n_source (fixed) and n_source_per_d2 (n_source = n_source_per_d2·d²)")
            if "n_source" in transfer:
                n_source = self.integer(transfer["n_source"], ("transfer", "n_source"), 1)
            else:
                per_d2 = self.integer(transfer["n_source_per_d2"], ("transfer", "n_source_per_d2"), 1)
        elif transfer:
            raise self.error(("transfer",), "only allowed with experiment = 'transfer'")

        self.keywords(task_factory, task, ("task",))
        self.keywords(task_factory, sweep, ("grid", "task"))
        ds = self.int_list(grid["d"], ("grid", "d"), 1)
        task_keys = {"d": ("grid", "d"), **{k: ("task", k) for k in task},
                     **{k: ("grid", "task", k) for k in sweep}}
        for d in ds:
            for values in itertools.product(*sweep.values()):
                swept = dict(zip(sweep, values))
                where = ", ".join(f"{k} = {v!r}" for k, v in {"d": d, **swept}.items())
                made = self.built(task_factory, {**task, **swept, "d": d, "seed": 0}, task_keys,
                                  ("task",), f" (at {where})")
        pair = isinstance(made, tuple) and len(made) == 2
        if pair != (experiment == "transfer"):
            raise self.error(("task", "family"), f"{family!r} makes a (source, target) pair: use experiment = 'transfer'"
                             if pair else f"experiment = 'transfer' needs a family making a (source, target) "
                             f"pair, e.g. transfer_pair; {family!r} makes {type(made).__name__}")

        models = []
        for name, table in self.table(top["models"], ("models",), None).items():
            path = ("models", name)
            table = dict(self.table(table, path, None, required=["type"]))
            mtype = self.string(table.pop("type"), path + ("type",))
            max_n = table.pop("max_n", None)
            if max_n is not None:
                max_n = self.integer(max_n, path + ("max_n",), 1)
            stop_below = table.pop("stop_below", None)
            if stop_below is not None:
                stop_below = self.number(stop_below, path + ("stop_below",), 0.0, strict=True)
            use_transfer = table.pop("transfer", True)
            if not isinstance(use_transfer, bool):
                raise self.error(path + ("transfer",), f"must be true or false, got {use_transfer!r}")
            if "seed" in table:
                raise self.error(path + ("seed",), "is set by the runner (derived from the top-level seed)")
            factory = self.factory(MODELS, mtype, path + ("type",))
            self.keywords(factory, table, path)
            self.built(factory, {**table, "seed": 0}, {k: path + (k,) for k in table}, path)
            models.append(ModelSpec(name, mtype, table, max_n, use_transfer, stop_below))
        if not models:
            raise self.error(("models",), "needs at least one [models.<name>] table")

        interpolate = top.get("interpolate", False)
        if not isinstance(interpolate, bool):
            raise self.error(("interpolate",), f"must be true or false, got {interpolate!r}")
        threshold = top.get("threshold")
        if threshold is not None:
            threshold = self.number(threshold, ("threshold",), 0.0, strict=True)
        for m in models:
            if m.stop_below is not None and (threshold is None or m.stop_below > threshold):
                raise self.error(("models", m.name, "stop_below"), f"must be ≤ threshold (so that no n* at the "
                                 f"threshold depends on the skipped points), got {m.stop_below:g} with threshold "
                                 f"{'unset' if threshold is None else f'{threshold:g}'}")
        return SweepConfig(
            name=self.string(top.get("name", Path(self.where).stem), ("name",)),
            task=family, task_params=task, sweep=sweep,
            d=ds,
            n=self.int_list(grid["n"], ("grid", "n"), 1),
            seeds=self.integer(grid.get("seeds", 1), ("grid", "seeds"), 1),
            models=tuple(models), experiment=experiment,
            seed=self.integer(top.get("seed", 0), ("seed",), 0),
            n_test=self.integer(top.get("n_test", 4096), ("n_test",), 1),
            noise=self.number(top.get("noise", 0.0), ("noise",), 0.0),
            dtype=self.string(top.get("dtype", "float32"), ("dtype",), DTYPES),
            n_source=n_source, n_source_per_d2=per_d2, threshold=threshold,
            metric=self.string(top.get("metric", "test_mse"), ("metric",), METRICS),
            interpolate=interpolate,
            text=self.text, source=self.where,
        )
