"""``results.csv``: one row per finished grid point, appended atomically.

Each row is written with a single ``os.write`` on a file opened with ``O_APPEND`` and then
fsync'ed, so concurrent readers and a killed run see whole rows, except possibly a last line cut
short by a kill in the middle of the write. ``ResultsWriter`` drops such a partial last line
(truncating the file to its last newline) before it appends; ``load_results`` ignores it.
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path

__all__ = ["BASE_COLUMNS", "ResultsWriter", "load_results", "results_path", "swept_parameters"]

# the columns of every results.csv; swept task parameters go between "seed" and "test_mse"
BASE_COLUMNS = ("model", "type", "task", "experiment", "d", "n", "seed", "test_mse", "test_rel",
                "alignment", "fit_time", "backend", "version", "point_id")
_INT_COLUMNS = ("d", "n", "seed")
_FLOAT_COLUMNS = ("test_mse", "test_rel", "alignment", "fit_time")
_TEXT_COLUMNS = ("model", "type", "task", "experiment", "backend", "version", "point_id")


def results_path(path):
    """``path`` itself if it is a file, else ``path/results.csv``."""
    path = Path(path)
    return path if path.suffix == ".csv" else path / "results.csv"


def _format(row, columns):
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(
        ["" if row.get(c) is None else repr(row[c]) if isinstance(row[c], float) else row[c]
         for c in columns])
    return buf.getvalue().encode("utf-8")


def _complete_text(path):
    """The file's text up to and including its last newline (a partial last line is dropped)."""
    data = path.read_bytes()
    return data[: data.rfind(b"\n") + 1].decode("utf-8")


class ResultsWriter:
    """Appends rows to a results CSV with the given columns (header written once).

    An existing file must have the same header. ``done`` holds the ``point_id`` of every row
    already in the file (for resume)."""

    def __init__(self, path, columns):
        self.path = Path(path)
        self.columns = tuple(columns)
        self.done = set()
        if self.path.exists() and self.path.stat().st_size > 0:
            text = _complete_text(self.path)
            if len(text.encode("utf-8")) != self.path.stat().st_size:
                os.truncate(self.path, len(text.encode("utf-8")))  # drop a half-written row
            rows = list(csv.reader(io.StringIO(text)))
            if rows and tuple(rows[0]) != self.columns:
                raise ValueError(f"{self.path} has columns {rows[0]}, this sweep writes {list(self.columns)};"
                                 " use a new output directory")
            key = self.columns.index("point_id")
            self.done = {r[key] for r in rows[1:]}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if os.fstat(self._fd).st_size == 0:
            self._write(_format(dict(zip(self.columns, self.columns)), self.columns))

    def _write(self, data):
        written = os.write(self._fd, data)
        if written != len(data):
            raise OSError(f"short write to {self.path}: {written} of {len(data)} bytes")
        os.fsync(self._fd)

    def append(self, row):
        """Write one row (a dict with the writer's columns) as a single atomic append."""
        self._write(_format(row, self.columns))
        self.done.add(row["point_id"])

    def close(self):
        os.close(self._fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _parse(column, value):
    if value == "":
        return None if column not in _FLOAT_COLUMNS else math.nan
    if column in _INT_COLUMNS:
        return int(value)
    if column in _FLOAT_COLUMNS:
        return float(value)
    if column in _TEXT_COLUMNS:
        return value
    try:  # a swept task parameter: a number when it reads as one
        return float(value) if any(ch in value for ch in ".eEn") else int(value)
    except ValueError:
        return value


def load_results(path):
    """Rows of a results CSV (``DIR`` or ``DIR/results.csv``) as a list of dicts, with d, n, seed
    as int, the metrics and fit time as float (NaN when empty), swept task parameters as numbers
    when they read as numbers. A partial last line (a run killed mid-write) is ignored."""
    path = results_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no results file {path}")
    rows = list(csv.DictReader(io.StringIO(_complete_text(path))))
    return [{k: _parse(k, v) for k, v in row.items()} for row in rows]


def swept_parameters(rows):
    """The task parameters (columns beyond ``BASE_COLUMNS``) taking more than one value."""
    return [k for k in rows[0] if k not in BASE_COLUMNS and len({r[k] for r in rows}) > 1] if rows else []
