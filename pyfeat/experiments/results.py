"""``results.csv``: one row per finished grid point, appended atomically.

Each row is written with a single ``os.write`` on a file opened with ``O_APPEND`` and then
fsync'ed, so concurrent readers and a killed run see whole rows, except possibly a last line cut
short by a kill in the middle of the write. ``ResultsWriter`` drops such a partial last line
(truncating the file to its last newline) before it appends; ``load_results`` ignores it.

**Columns** (``BASE_COLUMNS``; swept task parameters go between ``seed`` and ``test_mse``):
model, type, task, experiment, d, n, seed; test_mse, test_rel, alignment, fit_time (seconds);
what the fit chose, empty when the model has no such attribute: ridge_, solver_, n_iter_,
converged_; params (the model's ``get_params()`` as one JSON object: models have different
parameter sets, and one column keeps the header the same for every model and sweep, so files
concatenate and resume); backend, version (pyfeat's), timestamp (UTC, ISO 8601, when the point
finished), point_id. Files written before ridge_ … timestamp existed (``LEGACY_COLUMNS``) still
load (those keys are then absent), and ``ResultsWriter`` upgrades them in place on resume
(their old rows get empty values in the new columns).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Any

__all__ = ["BASE_COLUMNS", "LEGACY_COLUMNS", "ResultsWriter", "SweepError", "has_rows",
           "load_results", "results_path", "swept_parameters"]

LEGACY_COLUMNS = ("model", "type", "task", "experiment", "d", "n", "seed", "test_mse", "test_rel",
                  "alignment", "fit_time", "backend", "version", "point_id")
BASE_COLUMNS = ("model", "type", "task", "experiment", "d", "n", "seed", "test_mse", "test_rel",
                "alignment", "fit_time", "ridge_", "solver_", "n_iter_", "converged_", "params",
                "backend", "version", "timestamp", "point_id")
ADDED_COLUMNS = tuple(c for c in BASE_COLUMNS if c not in LEGACY_COLUMNS)
_INT_COLUMNS = ("d", "n", "seed", "n_iter_")
_FLOAT_COLUMNS = ("test_mse", "test_rel", "alignment", "fit_time", "ridge_")
_TEXT_COLUMNS = ("model", "type", "task", "experiment", "solver_", "backend", "version",
                 "timestamp", "point_id")


class SweepError(ValueError):
    """A sweep's output cannot be used as asked.

    A malformed results file, other columns, another config in the directory, a bad Dask
    address. The CLI prints it as one line (exit status 2).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from pyfeat.experiments import SweepError, load_results
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "results.csv"
    >>> _ = path.write_text("model,d\\nnn,16\\n")
    >>> try:
    ...     load_results(path)
    ... except SweepError as exc:
    ...     print(str(exc).split(": ", 1)[1][:62])
    not a pyfeat results file: its header lacks type, task, experi
    """


def results_path(path: str | PathLike) -> Path:
    """``path`` itself if it is a file, else ``path/results.csv``.

    Parameters
    ----------
    path : str or path
        A sweep's output directory or a ``.csv`` file.

    Returns
    -------
    pathlib.Path
        ``path`` when it ends in ``.csv``, else ``path/results.csv``.

    Examples
    --------
    >>> from pyfeat.experiments.results import results_path
    >>> results_path("results/separation").as_posix(), results_path("old.csv").as_posix()
    ('results/separation/results.csv', 'old.csv')
    """
    path = Path(path)
    return path if path.suffix == ".csv" else path / "results.csv"


def _field(value):
    """A value as CSV text: floats exactly (repr), dicts as JSON, None as empty."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return json.dumps(value, sort_keys=True) if isinstance(value, dict) else value


def _format(row, columns):
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([_field(row.get(c)) for c in columns])
    return buf.getvalue().encode("utf-8")


def _complete_text(path):
    """The file's text up to and including its last newline (a partial last line is dropped)."""
    data = path.read_bytes()
    try:
        return data[: data.rfind(b"\n") + 1].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SweepError(f"{path}: not a results file (not UTF-8 text: {exc.reason})") from None


def _records(path, required=LEGACY_COLUMNS):
    """(header, [(line number, fields)]) of a results CSV; a header-only or empty file has no
    records. Raises SweepError for a header lacking a ``required`` column or a row whose field
    count differs from it."""
    reader = csv.reader(io.StringIO(_complete_text(path)))
    try:
        header = next(reader, [])
        records = [(reader.line_num, fields) for fields in reader if fields]
    except csv.Error as exc:
        raise SweepError(f"{path}, line {reader.line_num}: not CSV: {exc}") from None
    if header or records:
        missing = [c for c in required if c not in header]
        if missing:
            raise SweepError(f"{path}: not a pyfeat results file: its header lacks "
                             f"{', '.join(missing)} (line 1: {','.join(header)[:80]!r})")
    for line, fields in records:
        if len(fields) != len(header):
            raise SweepError(f"{path}, line {line}: {len(fields)} fields, the header has {len(header)}")
    return header, records


def has_rows(path: str | PathLike) -> bool:
    """True when the results file ``path`` exists and holds at least one row.

    Parameters
    ----------
    path : str or path
        A results CSV.

    Returns
    -------
    bool
        False for a missing, empty or header-only file.

    Raises
    ------
    SweepError
        When the file is not a results file.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from pyfeat.experiments.results import BASE_COLUMNS, has_rows
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "results.csv"
    >>> has_rows(path)
    False
    >>> _ = path.write_text(",".join(BASE_COLUMNS) + "\\n")         # a header only
    >>> has_rows(path)
    False
    """
    return Path(path).is_file() and bool(_records(Path(path))[1])


class ResultsWriter:
    """Appends rows to a results CSV with the given columns (header written once).

    A file without rows (empty, or a header only: a run that failed at its first point) is
    started afresh. A file with rows must have the same header, or be an older results file
    whose header lacks only ``ADDED_COLUMNS`` (it is then rewritten with this header). A
    partial last line (a run killed mid-write) is dropped. Use it as a context manager, or
    call :meth:`close`.

    Parameters
    ----------
    path : str or path
        The results CSV (created with its directory if missing).
    columns : sequence of str
        The header (``pyfeat.experiments.sweep.columns(config)``); must contain ``point_id``.

    Attributes
    ----------
    done : set of str
        The ``point_id`` of every row already in the file or appended since (for resume).

    Raises
    ------
    SweepError
        When the file has rows with other columns, or is not a results file.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from pyfeat.experiments.results import ResultsWriter
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "results.csv"
    >>> with ResultsWriter(path, ("model", "test_mse", "point_id")) as writer:
    ...     writer.append({"model": "nn", "test_mse": 0.25, "point_id": "a1"})
    >>> print(path.read_text(), end="")
    model,test_mse,point_id
    nn,0.25,a1
    >>> ResultsWriter(path, ("model", "test_mse", "point_id")).done
    {'a1'}
    """

    def __init__(self, path: str | PathLike, columns: Sequence[str]):
        self.path = Path(path)
        self.columns = tuple(columns)
        self.done = set()
        if self.path.exists():
            size = len(_complete_text(self.path).encode("utf-8"))
            if size != self.path.stat().st_size:
                os.truncate(self.path, size)  # drop a half-written row
            header, records = _records(self.path, required=("point_id",))
            if not records:
                os.truncate(self.path, 0)
            elif tuple(header) != self.columns:
                self._upgrade(header, records)
            key = header.index("point_id") if records else None
            self.done = {fields[key] for _, fields in records}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if os.fstat(self._fd).st_size == 0:
            self._write(_format(dict(zip(self.columns, self.columns)), self.columns))

    def _upgrade(self, header, records):
        """Rewrite an older file (its header lacks some ADDED_COLUMNS) with this header."""
        if set(header) - set(self.columns) or set(self.columns) - set(header) - set(ADDED_COLUMNS):
            raise SweepError(f"{self.path} has columns {header}, this sweep writes {list(self.columns)};"
                             " use a new output directory")
        rows = [dict(zip(header, fields)) for _, fields in records]
        tmp = self.path.with_name(self.path.name + ".upgrade")
        tmp.write_bytes(b"".join(_format(r, self.columns)
                                 for r in [dict(zip(self.columns, self.columns)), *rows]))
        os.replace(tmp, self.path)

    def _write(self, data):
        written = os.write(self._fd, data)
        if written != len(data):
            raise OSError(f"short write to {self.path}: {written} of {len(data)} bytes")
        os.fsync(self._fd)

    def append(self, row: dict) -> None:
        """Write one row (a dict with the writer's columns) as a single atomic append.

        One ``os.write`` on the file opened with ``O_APPEND``, then fsync: readers and a
        killed run see whole rows. Floats are written exactly (repr), dicts as JSON, None as
        an empty field.

        Parameters
        ----------
        row : dict
            Column -> value; missing columns are written empty; ``row["point_id"]`` is added
            to ``done``.

        Examples
        --------
        >>> import pathlib, tempfile
        >>> from pyfeat.experiments.results import ResultsWriter
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "results.csv"
        >>> with ResultsWriter(path, ("model", "params", "point_id")) as writer:
        ...     writer.append({"model": "nn", "params": {"width": 8}, "point_id": "a1"})
        >>> print(path.read_text().splitlines()[1])
        nn,"{""width"": 8}",a1
        """
        self._write(_format(row, self.columns))
        self.done.add(row["point_id"])

    def close(self) -> None:
        """Close the file (the rows are on disk already: each append is fsync'ed).

        Examples
        --------
        >>> import pathlib, tempfile
        >>> from pyfeat.experiments.results import ResultsWriter
        >>> writer = ResultsWriter(pathlib.Path(tempfile.mkdtemp()) / "results.csv", ("point_id",))
        >>> writer.close()
        """
        os.close(self._fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _parse(column, value):
    """A CSV field as a value (ValueError when a typed column does not hold its type)."""
    if value == "":
        return math.nan if column in _FLOAT_COLUMNS else None
    if column in _INT_COLUMNS:
        return int(value)
    if column in _FLOAT_COLUMNS:
        return float(value)
    if column in _TEXT_COLUMNS:
        return value
    if column == "converged_":
        if value not in ("True", "False"):
            raise ValueError(f"not True or False: {value!r}")
        return value == "True"
    if column == "params":
        params = json.loads(value)
        if not isinstance(params, dict):
            raise ValueError(f"not a JSON object: {value!r}")
        return params
    try:  # a swept task parameter: a number when it reads as one
        return float(value) if any(ch in value for ch in ".eEn") else int(value)
    except ValueError:
        return value


def load_results(path: str | PathLike, as_frame: bool = False) -> Any:
    """Rows of a results CSV (``DIR`` or ``DIR/results.csv``).

    Types: d, n, seed, ``n_iter_`` int; the metrics, fit_time and ``ridge_`` float (NaN when
    empty); ``converged_`` bool; params a dict; other empty fields None; swept task
    parameters numbers when they read as numbers. A partial last line (a run killed
    mid-write) is ignored; a header-only file has no rows.

    Parameters
    ----------
    path : str or path
        A sweep's output directory, or a results CSV.
    as_frame : bool, default False
        Return a pandas DataFrame (pandas is optional) instead of a list of dicts.

    Returns
    -------
    list of dict or pandas.DataFrame
        One row per finished grid point, in the file's order.

    Raises
    ------
    FileNotFoundError
        When there is no results file.
    SweepError
        For a malformed file, naming the line and column.
    ImportError
        For ``as_frame=True`` without pandas.

    Examples
    --------
    >>> import tempfile
    >>> from pyfeat.experiments import load_results, run_sweep
    >>> out = tempfile.mkdtemp()
    >>> _ = run_sweep('''
    ... [task]
    ... family = "MultiIndex"
    ... degree = 2
    ... [grid]
    ... d = [4]
    ... n = [64]
    ... [models.rf]
    ... type = "RandomFeatures"
    ... width = 16
    ... ''', out, progress=False)
    >>> row = load_results(out)[0]
    >>> row["model"], row["d"], type(row["test_mse"]).__name__, row["params"]["width"]
    ('rf', 4, 'float', 16)
    >>> load_results(out, as_frame=True)[["model", "d", "n"]]
      model  d   n
    0    rf  4  64
    """
    if as_frame:
        try:
            import pandas
        except ImportError:
            raise ImportError("load_results(as_frame=True) needs pandas, an optional dependency: "
                              "pip install pandas (or call it without as_frame for a list of dicts)") from None
    path = results_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no results file {path}")
    header, records = _records(path)
    rows = []
    for line, fields in records:
        row = {}
        for column, value in zip(header, fields):
            try:
                row[column] = _parse(column, value)
            except ValueError as exc:
                raise SweepError(f"{path}, line {line}: column {column}: {_why(column, value, exc)}") from None
        rows.append(row)
    return pandas.DataFrame(rows, columns=header) if as_frame else rows


def _why(column, value, exc):
    if column in _INT_COLUMNS:
        return f"not an integer: {value!r}"
    if column in _FLOAT_COLUMNS:
        return f"not a number: {value!r}"
    return str(exc) if not isinstance(exc, json.JSONDecodeError) else f"not JSON: {value!r}"


def swept_parameters(rows: Sequence[dict]) -> list[str]:
    """The task parameters (columns beyond ``BASE_COLUMNS``) taking more than one value.

    Parameters
    ----------
    rows : sequence of dict
        Results rows (:func:`pyfeat.experiments.load_results`).

    Returns
    -------
    list of str
        In column order; empty for no rows.

    Examples
    --------
    >>> from pyfeat.experiments.results import swept_parameters
    >>> swept_parameters([{"model": "nn", "beta": 0.0, "r": 2}, {"model": "nn", "beta": 0.5, "r": 2}])
    ['beta']
    """
    return [k for k in rows[0] if k not in BASE_COLUMNS and len({r[k] for r in rows}) > 1] if rows else []
