"""Block planning shared by the backends: how many rows (and columns) of an operand one block
may hold, from a memory budget in bytes, and the working dtype of a call."""

from __future__ import annotations

import numpy as np


def working_dtype(X):
    """float32 when X is float32 (or narrower float), float64 otherwise."""
    if X.dtype.kind == "f" and X.dtype.itemsize <= 4:
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def rows_per_block(bytes_per_row: int, budget: int, lo: int = 64, hi: int = 1 << 16) -> int:
    """Rows whose temporaries (``bytes_per_row`` each) fit in ``budget`` bytes, in [lo, hi],
    rounded down to a multiple of 64 rows once above 64."""
    rows = max(lo, min(hi, budget // max(bytes_per_row, 1)))
    return rows if rows < 64 else rows - rows % 64


def tiles(n_rows: int, n_cols: int, *, row_bytes: int, col_bytes: int, cell_bytes: int, budget: int,
          max_rows: int, max_cols: int, rows: int | None = None) -> tuple[int, int]:
    """(rows, cols) of the tiles of an n_rows × n_cols blocked product, as Falkon's mmv ops size
    them: the columns first (as many as ``max_cols`` allows, so that a row block streams over few
    column blocks), then the rows, such that

        rows·row_bytes + cols·col_bytes + rows·cols·cell_bytes ≤ budget

    (``row_bytes``: per-row buffers such as the X block and its accumulators; ``col_bytes``:
    per-column ones; ``cell_bytes``: the tile itself). ``rows`` fixes the row count (the
    caller's ``block_size``). At least 1 × 1; a budget too small for 64 rows shrinks the
    columns before the rows."""
    cols = max(1, min(n_cols, max_cols))
    if rows is None:
        lo = min(n_rows, 64)
        while cols > 1 and lo * (row_bytes + cols * cell_bytes) + cols * col_bytes > budget:
            cols //= 2
        free = budget - cols * col_bytes
        rows = max(lo, min(max_rows, free // max(row_bytes + cols * cell_bytes, 1)))
        if rows >= 64:
            rows -= rows % 64
    return max(1, min(rows, n_rows)), cols


def blocks(n: int, block: int):
    """(start, stop) of consecutive blocks covering range(n)."""
    for s in range(0, n, block):
        yield s, min(n, s + block)
