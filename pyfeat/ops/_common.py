"""Block sizing shared by the backends."""

from __future__ import annotations


def rows_per_block(bytes_per_row: int, budget: int, lo: int = 64, hi: int = 1 << 16) -> int:
    """Rows whose temporaries (``bytes_per_row`` each) fit in ``budget`` bytes, in [lo, hi],
    rounded down to a multiple of 64 rows once above 64."""
    rows = max(lo, min(hi, budget // max(bytes_per_row, 1)))
    return rows if rows < 64 else rows - rows % 64


def blocks(n: int, block: int):
    """(start, stop) of consecutive row blocks covering range(n)."""
    for s in range(0, n, block):
        yield s, min(n, s + block)


def working_dtype(X):
    """float32 when X is float32 (or narrower float), float64 otherwise."""
    import numpy as np

    if X.dtype.kind == "f" and X.dtype.itemsize <= 4:
        return np.dtype(np.float32)
    return np.dtype(np.float64)
