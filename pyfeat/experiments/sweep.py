"""Sweeps: the grid of a config, one grid point = one model fitted at one (d, n, seed, task
parameters), run in a loop or on Dask, each finished point appended to ``DIR/results.csv``.

**Seeds.** Every seed of a grid point is derived from the config's ``seed`` and the point's
coordinates (SHA-256 of their JSON, first 4 bytes), never from the order of execution, so a Dask
run gives the same rows as a local run:

- task draw (e.g. U):    (seed, "task", d, task parameters, rep)   - same target for every n
- training data:         (seed, "train", d, task parameters, n, rep)
- test data:             (seed, "test", d, task parameters, rep)   - same test set for every n
- source data (transfer): (seed, "source", d, task parameters, rep)   - n_source (or n_source_per_d2·d²) rows
- model init:            (seed, "model", d, task parameters, rep)

**Metrics.** ``test_mse`` = mean (f(x) − f*(x))² over ``n_test`` noise-free test samples;
``test_rel`` = test_mse / variance of the test labels (1 = predicting the mean);
``alignment`` = ``model.alignment(task.U)`` for models that have it (else empty);
``fit_time`` = seconds of ``fit`` (in a transfer experiment: source fit + transfer);
``ridge_``, ``solver_``, ``n_iter_``, ``converged_`` = the fitted model's attributes of those
names (empty when it has none); ``params`` = the model's ``get_params()``, a dict of JSON values
(arrays as lists, other objects as their repr; for a model without ``get_params``, the table's
parameters and the seed it was built with), one JSON column in results.csv; ``timestamp`` =
when the point finished (UTC, ISO 8601).

**Early stop.** A model with ``stop_below`` (``pyfeat.experiments.config``) skips its points at
larger n at a (d, task parameters) once every seed's metric is ≤ stop_below at one n; the
skipped points get no row. They are decided from the rows, so a resumed run skips the same ones.

**Failures.** A grid point that raises stops the sweep with a ``GridPointError`` naming the
point (its cause is the original exception); the rows already written stay, and a rerun with
``resume=True`` continues from them. A results file without rows (a run that failed at its
first point) counts as no results: a plain rerun starts afresh.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from pyfeat.backend import to_numpy
from pyfeat.experiments.config import (MODELS, TASKS, ModelSpec, SweepConfig, call_factory, load_config,
                                       resolve)
from pyfeat.experiments.results import BASE_COLUMNS, ResultsWriter, SweepError, has_rows, load_results

__all__ = ["GridPoint", "GridPointError", "grid", "run_point", "run_sweep", "columns", "derive_seed",
           "dask_workers"]

logger = logging.getLogger(__name__)

DIST_HINT = 'Dask is an optional extra: pip install "pyfeat[dist]"'


def derive_seed(*parts: Any) -> int:
    """A 32-bit seed from JSON-serializable parts (stable across processes and machines).

    Parameters
    ----------
    *parts : JSON-serializable
        What the seed depends on, e.g. (seed, role, d, task parameters, rep).

    Returns
    -------
    int
        The first 4 bytes (little-endian) of the SHA-256 of the parts' JSON, in [0, 2**32).

    Examples
    --------
    >>> from pyfeat.experiments.sweep import derive_seed
    >>> derive_seed(0, "task", 16, [], 0)
    771552074
    """
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).digest()
    return int.from_bytes(digest[:4], "little")


@dataclass(frozen=True)
class GridPoint:
    """One model at one (d, n, rep, task parameter values) of a sweep.

    Parameters
    ----------
    config : SweepConfig
        The sweep.
    model : ModelSpec
        The model fitted at this point.
    d : int
        Input dimension.
    n : int
        Training samples (in a transfer experiment: target samples).
    rep : int
        Repetition, 0 <= rep < config.seeds (the results' ``seed`` column).
    values : tuple, default ()
        ((task parameter, value), ...) of the swept task parameters.

    See Also
    --------
    pyfeat.experiments.grid : All grid points of a config.
    pyfeat.experiments.run_point : Fit one.

    Examples
    --------
    >>> from pyfeat.experiments import grid
    >>> point = grid('''
    ... name = "tiny"
    ... n_test = 256
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
    ... ''')[0]
    >>> point.label, point.d, point.n, point.rep
    ('model=rf d=4 n=64 seed=0', 4, 64, 0)
    """

    config: SweepConfig
    model: ModelSpec
    d: int
    n: int
    rep: int
    values: tuple = ()  # ((task parameter, value), ...) of the swept task parameters

    @property
    def n_source(self) -> int | None:
        """Source samples of a transfer experiment at this d (None for a regression).

        Examples
        --------
        >>> from pyfeat.experiments import grid
        >>> [p.n_source for p in grid("transfer")[:2]]               # n_source_per_d2·d²
        [8192, 8192]
        """
        return self.config.source_size(self.d)

    @property
    def label(self) -> str:
        """The point as text: model=nn d=16 n=256 seed=0 (and its swept task parameters).

        Examples
        --------
        >>> from pyfeat.experiments import grid
        >>> grid("spiked")[0].label
        'model=nn d=256 n=1024 seed=0 beta=0.0'
        """
        return " ".join(f"{k}={v}" for k, v in [("model", self.model.name), ("d", self.d),
                                                 ("n", self.n), ("seed", self.rep), *self.values])

    def seed(self, role: str, with_n: bool = False) -> int:
        """The seed of one random thing of this point (see the module docstring).

        Parameters
        ----------
        role : {"task", "train", "test", "source", "model"}
            What the seed is for.
        with_n : bool, default False
            Whether it depends on n too (the training data does; the task draw and the test
            set are the same at every n).

        Returns
        -------
        int
            ``derive_seed(config.seed, role, d, values, [n,] rep)``.

        Examples
        --------
        >>> from pyfeat.experiments import grid
        >>> a, b = [p for p in grid("separation") if p.model.name == "nn" and p.d == 16 and p.rep == 0][:2]
        >>> a.n != b.n, a.seed("test") == b.seed("test"), a.seed("train", True) == b.seed("train", True)
        (True, True, False)
        """
        coords = [self.config.seed, role, self.d, list(self.values)]
        return derive_seed(*coords, *([self.n] if with_n else []), self.rep)

    @property
    def point_id(self) -> str:
        """Hash of everything that determines this point's row (resume skips known ids).

        Examples
        --------
        >>> from pyfeat.experiments import grid
        >>> ids = [p.point_id for p in grid("separation")]
        >>> len(ids[0]), len(set(ids)) == len(ids)
        (16, True)
        """
        c, m = self.config, self.model
        return hashlib.sha256(json.dumps([
            c.experiment, c.task, c.task_params, c.seed, c.n_test, c.noise, c.dtype, self.n_source,
            m.name, m.type, m.params, m.transfer, self.d, self.n, self.rep, list(self.values),
        ], sort_keys=True, default=str).encode()).hexdigest()[:16]


def columns(config: SweepConfig) -> tuple[str, ...]:
    """The results.csv columns of a sweep: the base columns with its swept task parameters.

    Parameters
    ----------
    config : SweepConfig
        The sweep.

    Returns
    -------
    tuple of str
        ``BASE_COLUMNS`` with the swept task parameters inserted after ``seed``.

    Examples
    --------
    >>> from pyfeat.experiments import load_config
    >>> from pyfeat.experiments.sweep import columns
    >>> columns(load_config("spiked"))[:9]
    ('model', 'type', 'task', 'experiment', 'd', 'n', 'seed', 'beta', 'test_mse')
    """
    at = BASE_COLUMNS.index("seed") + 1
    return BASE_COLUMNS[:at] + tuple(config.sweep) + BASE_COLUMNS[at:]


def grid(config: str | PathLike | SweepConfig) -> list[GridPoint]:
    """All grid points of a config, in the order d, task parameter values, n, seed, model.

    The n run ascending; points with n above a model's ``max_n`` are left out.

    Parameters
    ----------
    config : SweepConfig, path, shipped name or TOML text
        The sweep (read by :func:`load_config`).

    Returns
    -------
    list of GridPoint
        The points.

    Raises
    ------
    ConfigError
        When the config does not load.

    Examples
    --------
    >>> from pyfeat.experiments import grid
    >>> points = grid('''
    ... name = "tiny"
    ... n_test = 256
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
    >>> len(points), [p.label for p in points[:3]]
    (8, ['model=rf d=4 n=64 seed=0', 'model=rf d=4 n=64 seed=1', 'model=rf d=4 n=256 seed=0'])
    """
    config = load_config(config)
    names = list(config.sweep)
    combos = [()]
    for name in names:
        combos = [c + ((name, v),) for c in combos for v in config.sweep[name]]
    return [GridPoint(config, m, d, n, rep, values)
            for d in config.d for values in combos for n in sorted(config.n)
            for rep in range(config.seeds) for m in config.models
            if m.max_n is None or n <= m.max_n]


class GridPointError(RuntimeError):
    """A grid point raised while running; ``point`` is the GridPoint, ``__cause__`` the error.

    :func:`run_sweep` raises it; the rows already written stay, and a rerun with
    ``resume=True`` continues from them.

    Parameters
    ----------
    point : GridPoint
        The point that failed.
    error : Exception
        What it raised.

    Attributes
    ----------
    point : GridPoint
        The point that failed.

    Examples
    --------
    >>> from pyfeat.experiments import GridPointError, grid
    >>> point = grid("separation")[0]
    >>> print(GridPointError(point, FloatingPointError("diverged")))
    grid point model=nn d=16 n=256 seed=0 failed: FloatingPointError: diverged
    """

    def __init__(self, point: GridPoint, error: BaseException):
        super().__init__(f"grid point {point.label} failed: {type(error).__name__}: {error}")
        self.point = point


def _numpy(a):
    return np.asarray(to_numpy(a), dtype=np.float64)


def _backend_of(model):
    """The resolved backend name of a model with a ``backend`` parameter, else ""."""
    if not hasattr(model, "backend"):
        return ""
    from pyfeat.backend import resolve as resolve_backend

    return resolve_backend(model.backend)


def run_point(point: GridPoint, threads: int | None = None) -> dict:
    """Fit the point's model and return its results row (a dict over ``columns``).

    Draws the task, the training and test data and the model from the point's seeds (module
    docstring), fits (in a transfer experiment: on the source, then ``transfer`` to the
    target) and measures the metrics.

    Parameters
    ----------
    point : GridPoint
        The grid point.
    threads : int, optional
        Limits BLAS and Numba threads for this point (Dask workers sharing a machine).

    Returns
    -------
    dict
        The row: one value per column of ``columns(point.config)`` (module docstring).

    Examples
    --------
    >>> from pyfeat.experiments import grid, run_point
    >>> point = grid('''
    ... name = "tiny"
    ... n_test = 256
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
    ... ''')[0]
    >>> row = run_point(point, threads=1)
    >>> row["model"], row["d"], row["n"], row["seed"], 0 < row["test_rel"] < 1
    ('rf', 4, 64, 0, True)
    """
    if threads is None:
        return _run_point(point)
    import numba
    from threadpoolctl import threadpool_limits

    before = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        with threadpool_limits(limits=threads):
            return _run_point(point)
    finally:
        numba.set_num_threads(before)


# fitted attributes recorded in the results (when the model has them), with their column types
FITTED = {"ridge_": float, "solver_": str, "n_iter_": int, "converged_": bool}


def _jsonable(value):
    """JSON for what ``json`` cannot encode: arrays (and NumPy scalars) as lists, else the repr."""
    return value.tolist() if hasattr(value, "tolist") else repr(value)


def _fitted(model):
    """The model's attributes named in FITTED, in their column types (None where it has none)."""
    values = {name: getattr(model, name, None) for name in FITTED}
    return {name: None if v is None else FITTED[name](v) for name, v in values.items()}


def _params(model, passed):
    """The model's ``get_params()`` (else the parameters it was built with) as a dict of JSON
    values (what ``load_results`` reads back)."""
    get_params = getattr(model, "get_params", None)
    return json.loads(json.dumps(get_params() if callable(get_params) else passed, default=_jsonable))


def _run_point(point):
    import pyfeat

    c, spec = point.config, point.model
    made = call_factory(resolve(TASKS, c.task),
                        {**c.task_params, **dict(point.values), "d": point.d, "seed": point.seed("task")})
    if c.experiment == "transfer":
        source, task = made
    else:
        task = made
    X, y = task.sample(point.n, noise=c.noise, seed=point.seed("train", with_n=True), dtype=c.dtype)
    X_test, y_test = task.sample(c.n_test, noise=0.0, seed=point.seed("test"), dtype=c.dtype)
    passed = {**spec.params, "seed": point.seed("model")}
    model = call_factory(resolve(MODELS, spec.type), passed)

    t0 = time.perf_counter()
    if c.experiment == "transfer" and spec.transfer and hasattr(model, "transfer"):
        X_src, y_src = source.sample(point.n_source, noise=c.noise, seed=point.seed("source"), dtype=c.dtype)
        model = model.fit(X_src, y_src).transfer(X, y)
    else:
        model = model.fit(X, y)
    fit_time = time.perf_counter() - t0

    y_test = _numpy(y_test)
    mse = float(np.mean((_numpy(model.predict(X_test)) - y_test) ** 2))
    var = float(np.var(y_test))
    alignment = None
    if hasattr(model, "alignment") and hasattr(task, "U"):
        alignment = float(model.alignment(task.U))
    return {
        "model": spec.name, "type": spec.type, "task": c.task, "experiment": c.experiment,
        "d": point.d, "n": point.n, "seed": point.rep, **dict(point.values),
        "test_mse": mse, "test_rel": mse / var if var > 0 else float("nan"),
        "alignment": alignment, "fit_time": fit_time,
        **_fitted(model),
        "params": _params(model, passed), "backend": _backend_of(model), "version": pyfeat.__version__,
        "timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "point_id": point.point_id,
    }


def dask_workers(dask: Any) -> int | None:
    """N for ``dask="local:N"``, None for a scheduler address or a Client.

    Parameters
    ----------
    dask : str or distributed.Client
        ``"local:N"``, a scheduler address, or a Client.

    Returns
    -------
    int or None
        N for ``"local:N"``; None for an address or a Client.

    Raises
    ------
    SweepError
        (a ValueError) for anything else: an empty address, N not a positive integer, another
        type.

    Examples
    --------
    >>> from pyfeat.experiments.sweep import dask_workers
    >>> dask_workers("local:2"), dask_workers("tcp://10.0.0.1:8786")
    (2, None)
    >>> dask_workers("local:0")
    Traceback (most recent call last):
    ...
    pyfeat.experiments.results.SweepError: 'local:N' needs a worker count N >= 1, got 'local:0'
    """
    if not isinstance(dask, str):
        if hasattr(dask, "submit"):
            return None
        raise SweepError(f"dask must be 'local:N', a scheduler address or a distributed.Client, got {dask!r}")
    if not dask.strip():
        raise SweepError("dask: an empty scheduler address")
    if not dask.startswith("local:"):
        return None
    count = dask.split(":", 1)[1]
    if not count.isdigit() or int(count) < 1:
        raise SweepError(f"'local:N' needs a worker count N >= 1, got {dask!r}")
    return int(count)


def _dask_client(dask):
    """(client, cluster, threads per point) for ``"local:N"``, an address, or a Client."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise RuntimeError(f"--dask needs dask.distributed. {DIST_HINT}") from None
    workers = dask_workers(dask)
    if isinstance(dask, Client):
        return dask, None, None
    if workers is not None:
        dashboard = ":0" if importlib.util.find_spec("bokeh") is not None else None  # the dashboard needs bokeh
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=dashboard)
        client = Client(cluster)
        _announce(client)
        # Dask's nannies start workers with OMP/MKL/OPENBLAS_NUM_THREADS=1: set the count here
        return client, cluster, max(1, (os.cpu_count() or 1) // workers)
    timeout = connect_timeout()
    try:
        client = Client(dask, timeout=timeout)
    except (OSError, TimeoutError) as exc:  # no scheduler there (after the connect timeout)
        raise SweepError(f"cannot connect to the Dask scheduler at {dask!r} within {timeout:g} s "
                         f"(PYFEAT_DASK_TIMEOUT): {exc}") from None
    _announce(client)
    return client, None, None


def connect_timeout() -> float:
    """Seconds to wait for a Dask scheduler: PYFEAT_DASK_TIMEOUT, default 10.

    Returns
    -------
    float
        The value of the environment variable ``PYFEAT_DASK_TIMEOUT`` (seconds), or 10.

    Raises
    ------
    SweepError
        When ``PYFEAT_DASK_TIMEOUT`` is not a positive number.

    Examples
    --------
    >>> import os
    >>> from pyfeat.experiments.sweep import connect_timeout
    >>> connect_timeout() == float(os.environ.get("PYFEAT_DASK_TIMEOUT", "10"))
    True
    """
    value = os.environ.get("PYFEAT_DASK_TIMEOUT", "10")
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise SweepError(f"PYFEAT_DASK_TIMEOUT must be a positive number of seconds, got {value!r}")
    return seconds


def _announce(client):
    """Log (and print, for the command line) where the cluster's dashboard is."""
    link = getattr(client, "dashboard_link", None)
    workers = len(client.scheduler_info().get("workers", {}))
    message = f"Dask: {workers} worker(s) at {client.scheduler.address}" + (f", dashboard {link}" if link else "")
    logger.info(message)
    print(message, file=sys.stderr)


def run_sweep(config: str | PathLike | SweepConfig, out: str | PathLike, dask: Any = None,
              resume: bool = False, progress: bool = True,
              on_row: Callable[[dict], Any] | None = None) -> list[dict]:
    """Run every grid point of ``config`` that ``out/results.csv`` does not hold yet.

    One row is appended per finished point (atomically: a killed run loses at most the points
    in flight).

    Parameters
    ----------
    config : SweepConfig, path, shipped name or TOML text
        The sweep (read by :func:`load_config`).
    out : str or path
        Directory for ``results.csv`` and a copy of the config (``config.toml``).
    dask : None, str or distributed.Client, default None
        None (run here, one point after another), ``"local:N"`` (a LocalCluster of N worker
        processes running one point each with cores // N BLAS and Numba threads), a scheduler
        address, or a ``distributed.Client``. Rows are written by this process only. The rows
        equal those of a local run exactly when each point runs with the same thread count
        (N = 1, or a cluster of whole machines); with fewer threads per point, float
        reductions may round differently.
    resume : bool, default False
        Skip the points already in ``out/results.csv``. Without it an existing results file
        with rows is an error (a sweep never silently mixes with an old one); a file without
        rows (a run that failed at its first point) is no results. The config may differ from
        the one that wrote the rows when its grid contains every one of them (a grown grid:
        more seeds, n or d); it then replaces ``out/config.toml``.
    progress : bool, default True
        Show a progress bar over the grid points.
    on_row : callable, optional
        ``on_row(row)``, called after each row is written.

    Returns
    -------
    list of dict
        The rows of ``out/results.csv`` (:func:`load_results`).

    Raises
    ------
    GridPointError
        When a grid point fails (see the module docstring).
    ConfigError
        When the config does not load.
    FileExistsError
        When ``out/results.csv`` has rows and ``resume`` is False.
    SweepError
        For a bad ``dask`` value, a scheduler not reached within ``PYFEAT_DASK_TIMEOUT``
        seconds (:func:`pyfeat.experiments.sweep.connect_timeout`), rows in ``out`` that are
        not points of this config, or a malformed results file.
    RuntimeError
        When ``dask`` is given but dask.distributed is not installed.

    Examples
    --------
    >>> import tempfile
    >>> from pyfeat.experiments import run_sweep
    >>> out = tempfile.mkdtemp()
    >>> text = '''
    ... name = "tiny"
    ... n_test = 256
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
    ... '''
    >>> rows = run_sweep(text, out, progress=False)
    >>> len(rows), sorted({(r["d"], r["n"]) for r in rows})
    (8, [(4, 64), (4, 256), (8, 64), (8, 256)])
    >>> len(run_sweep(text, out, resume=True, progress=False))   # nothing left to run
    8
    """
    config = load_config(config)
    if dask is not None:
        dask_workers(dask)
    out = Path(out)
    path, copy = out / "results.csv", out / "config.toml"
    points, known = grid(config), []
    if has_rows(path):
        if not resume:
            raise FileExistsError(f"{path} exists: pass resume=True (--resume) or use another output directory")
        known = load_results(path)
        if copy.exists() and copy.read_text(encoding="utf-8") != config.text:
            # another config may continue these rows when its grid holds every one of them (more
            # seeds, n or d): a point's id covers everything that determines its row
            ids = {p.point_id for p in points}
            stray = [r for r in known if r.get("point_id") not in ids]
            if stray:
                raise SweepError(f"{copy} holds a different config than the rows of {path}, and {len(stray)} of "
                                 "those rows are not points of the new one; resume with a config whose grid "
                                 "contains them (e.g. more seeds, n or d) or use another directory")
    out.mkdir(parents=True, exist_ok=True)
    copy.write_text(config.text, encoding="utf-8")

    from tqdm.auto import tqdm

    stops = _EarlyStop(config, known, points)
    skipped = 0
    with ResultsWriter(path, columns(config)) as writer:
        todo = [p for p in points if p.point_id not in writer.done]
        with tqdm(total=len(todo), disable=not progress, desc=config.name, unit="point") as bar:
            for point, row in _execute(todo, dask, stops):
                bar.update()
                if row is None:
                    skipped += 1
                    continue
                writer.append(row)
                if on_row is not None:
                    on_row(row)
    if skipped:
        logger.info("%s: %d grid points skipped by stop_below", config.name, skipped)
    return load_results(path)


class _EarlyStop:
    """Which grid points a model's ``stop_below`` skips (``pyfeat.experiments.config``).

    A point is skipped when, at a smaller n of its (model, d, task parameters), every seed
    0 … seeds − 1 has a row whose ``metric`` is ≤ the model's stop_below.

    Parameters
    ----------
    config : SweepConfig
        The sweep.
    rows : list of dict
        Rows already known (a resumed run's results).
    points : list of GridPoint
        The config's grid (to place the rows by their point_id).
    """

    def __init__(self, config: SweepConfig, rows: list[dict], points: list[GridPoint]):
        self.metric, self.seeds = config.metric, config.seeds
        self.cells: dict[tuple, dict[int, dict[int, Any]]] = {}  # group -> n -> rep -> metric
        by_id = {p.point_id: p for p in points}
        for row in rows:
            point = by_id.get(row.get("point_id"))
            if point is not None:
                self.add(point, row)

    @staticmethod
    def group(point: GridPoint) -> tuple:
        """(model, d, task parameter values): the points whose n grid stops together."""
        return point.model.name, point.d, point.values

    def add(self, point: GridPoint, row: dict) -> None:
        """Record the row of a finished point."""
        if point.model.stop_below is not None:
            self.cells.setdefault(self.group(point), {}).setdefault(point.n, {})[point.rep] = row[self.metric]

    def skips(self, point: GridPoint) -> bool:
        """Whether every seed reached stop_below at an n below ``point.n``. "Reached" leaves a
        margin of a few float64 roundings, so that the mean of any resample of those seeds is
        ≤ stop_below as computed, too."""
        if point.model.stop_below is None:
            return False
        level = point.model.stop_below * (1.0 - 4 * self.seeds * np.finfo(np.float64).eps)
        for n, reps in self.cells.get(self.group(point), {}).items():
            values = [reps.get(rep) for rep in range(self.seeds)]
            if n < point.n and all(v is not None and v <= level for v in values):
                return True
        return False


def _execute(points, dask, stops):
    """Yield (point, row) as the points finish, here or on Dask; row is None for a point that
    ``stops`` skips. The points of a model with stop_below run n by n at each d."""
    if dask is None:
        for point in points:
            if stops.skips(point):
                yield point, None
                continue
            try:
                row = run_point(point)
            except Exception as exc:
                raise GridPointError(point, exc) from exc
            stops.add(point, row)
            yield point, row
        return
    if not points:
        return
    levels: dict[tuple, list[list[GridPoint]]] = {}  # group -> its points n by n, ascending
    ready = []
    for point in points:
        if point.model.stop_below is None:
            ready.append(point)
        else:
            levels.setdefault(_EarlyStop.group(point), []).append(point)
    for group, staged in levels.items():
        ns = sorted({p.n for p in staged})
        levels[group] = [[p for p in staged if p.n == n] for n in ns]
    client, cluster, threads = _dask_client(dask)
    from distributed import as_completed

    futures, point_of, waiting = [], {}, {}  # waiting: group -> futures left of its current n
    queue = as_completed()

    def submit(batch):
        for p in batch:
            future = client.submit(run_point, p, threads, pure=False)
            futures.append(future)
            point_of[future.key] = p
            queue.add(future)

    def advance(group):
        """Submit the group's next n, or skip all its remaining points; returns the skipped."""
        staged = levels[group]
        if staged and not stops.skips(staged[0][0]):
            batch = staged.pop(0)
            waiting[group] = len(batch)
            submit(batch)
            return []
        levels[group] = []
        return [p for batch in staged for p in batch]

    try:
        submit(ready)
        skipped = [p for group in levels for p in advance(group)]
        yield from ((p, None) for p in skipped)
        for future in queue:
            point = point_of[future.key]
            try:
                row = future.result()
            except Exception as exc:
                raise GridPointError(point, exc) from exc
            stops.add(point, row)
            yield point, row
            group = _EarlyStop.group(point)
            if group in waiting:
                waiting[group] -= 1
                if waiting[group] == 0:
                    del waiting[group]
                    yield from ((p, None) for p in advance(group))
    finally:
        client.cancel(futures)
        if client is not dask:
            client.close()
        if cluster is not None:
            cluster.close()
