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
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from pyfeat.backend import to_numpy
from pyfeat.experiments.config import (MODELS, TASKS, ModelSpec, SweepConfig, call_factory, load_config,
                                       resolve)
from pyfeat.experiments.results import BASE_COLUMNS, ResultsWriter, SweepError, has_rows, load_results

__all__ = ["GridPoint", "GridPointError", "grid", "run_point", "run_sweep", "columns", "derive_seed",
           "dask_workers"]

logger = logging.getLogger(__name__)

DIST_HINT = 'Dask is an optional extra: pip install "pyfeat[dist]"'


def derive_seed(*parts):
    """A 32-bit seed from JSON-serializable parts (stable across processes and machines)."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).digest()
    return int.from_bytes(digest[:4], "little")


@dataclass(frozen=True)
class GridPoint:
    """One model at one (d, n, rep, task parameter values) of a sweep."""

    config: SweepConfig
    model: ModelSpec
    d: int
    n: int
    rep: int
    values: tuple = ()  # ((task parameter, value), ...) of the swept task parameters

    @property
    def n_source(self):
        """Source samples of a transfer experiment at this d (None for a regression)."""
        return self.config.source_size(self.d)

    @property
    def label(self):
        """The point as text: model=nn d=16 n=256 seed=0 (and its swept task parameters)."""
        return " ".join(f"{k}={v}" for k, v in [("model", self.model.name), ("d", self.d),
                                                 ("n", self.n), ("seed", self.rep), *self.values])

    def seed(self, role, with_n=False):
        coords = [self.config.seed, role, self.d, list(self.values)]
        return derive_seed(*coords, *([self.n] if with_n else []), self.rep)

    @property
    def point_id(self):
        """Hash of everything that determines this point's row (resume skips known ids)."""
        c, m = self.config, self.model
        return hashlib.sha256(json.dumps([
            c.experiment, c.task, c.task_params, c.seed, c.n_test, c.noise, c.dtype, self.n_source,
            m.name, m.type, m.params, m.transfer, self.d, self.n, self.rep, list(self.values),
        ], sort_keys=True, default=str).encode()).hexdigest()[:16]


def columns(config):
    """The results.csv columns of a sweep: the base columns with its swept task parameters."""
    at = BASE_COLUMNS.index("seed") + 1
    return BASE_COLUMNS[:at] + tuple(config.sweep) + BASE_COLUMNS[at:]


def grid(config):
    """All grid points of a config, in the order d, task parameter values, n, seed, model
    (points with n above a model's ``max_n`` are left out)."""
    config = load_config(config)
    names = list(config.sweep)
    combos = [()]
    for name in names:
        combos = [c + ((name, v),) for c in combos for v in config.sweep[name]]
    return [GridPoint(config, m, d, n, rep, values)
            for d in config.d for values in combos for n in config.n
            for rep in range(config.seeds) for m in config.models
            if m.max_n is None or n <= m.max_n]


class GridPointError(RuntimeError):
    """A grid point raised while running; ``point`` is the GridPoint, ``__cause__`` the error."""

    def __init__(self, point, error):
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


def run_point(point, threads=None):
    """Fit the point's model and return its results row (a dict over ``columns``).

    ``threads`` limits BLAS and Numba threads for this point (Dask workers sharing a machine)."""
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


def dask_workers(dask):
    """N for ``dask="local:N"``, None for a scheduler address or a Client; SweepError (a
    ValueError) for anything else."""
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


def connect_timeout():
    """Seconds to wait for a Dask scheduler: PYFEAT_DASK_TIMEOUT, default 10."""
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


def run_sweep(config, out, dask=None, resume=False, progress=True, on_row=None):
    """Run every grid point of ``config`` (a ``SweepConfig``, a path, a shipped name or TOML
    text) that ``out/results.csv`` does not hold yet, appending one row per finished point.

    Parameters
    ----------
    out : directory for ``results.csv`` and a copy of the config (``config.toml``).
    dask : None (run here, one point after another), ``"local:N"`` (a LocalCluster of N
        worker processes running one point each with cores // N BLAS and Numba threads), a
        scheduler address, or a ``distributed.Client``. Rows are
        written by this process only. The rows equal those of a local run exactly when each
        point runs with the same thread count (N = 1, or a cluster of whole machines); with
        fewer threads per point, float reductions may round differently.
    resume : skip the points already in ``out/results.csv``. Without it an existing results
        file with rows is an error (a sweep never silently mixes with an old one); a file
        without rows (a run that failed at its first point) is no results.
    progress : show a progress bar over the grid points.
    on_row : optional callable(row), called after each row is written.

    Returns the rows of ``out/results.csv`` (``load_results``). A grid point that fails raises
    ``GridPointError`` (see the module docstring).
    """
    config = load_config(config)
    if dask is not None:
        dask_workers(dask)
    out = Path(out)
    path, copy = out / "results.csv", out / "config.toml"
    if has_rows(path):
        if not resume:
            raise FileExistsError(f"{path} exists: pass resume=True (--resume) or use another output directory")
        if copy.exists() and copy.read_text(encoding="utf-8") != config.text:
            raise SweepError(f"{copy} holds a different config than the rows of {path}; resume with "
                             "the same config or use another directory")
    out.mkdir(parents=True, exist_ok=True)
    copy.write_text(config.text, encoding="utf-8")

    from tqdm.auto import tqdm

    with ResultsWriter(path, columns(config)) as writer:
        todo = [p for p in grid(config) if p.point_id not in writer.done]
        with tqdm(total=len(todo), disable=not progress, desc=config.name, unit="point") as bar:
            for row in _execute(todo, dask):
                writer.append(row)
                bar.update()
                if on_row is not None:
                    on_row(row)
    return load_results(path)


def _execute(points, dask):
    """Yield the rows of ``points`` as they finish (here, or on Dask)."""
    if dask is None:
        for point in points:
            try:
                row = run_point(point)
            except Exception as exc:
                raise GridPointError(point, exc) from exc
            yield row
        return
    if not points:
        return
    client, cluster, threads = _dask_client(dask)
    from distributed import as_completed

    futures = [client.submit(run_point, p, threads, pure=False) for p in points]
    point_of = dict(zip((f.key for f in futures), points))
    try:
        for future in as_completed(futures):
            try:
                row = future.result()
            except Exception as exc:
                raise GridPointError(point_of[future.key], exc) from exc
            yield row
    finally:
        client.cancel(futures)
        if client is not dask:
            client.close()
        if cluster is not None:
            cluster.close()
