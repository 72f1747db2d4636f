"""Running out of memory says what to reduce: ``MemoryError`` from an allocation is re-raised
as a ``MemoryError`` naming the computation, its size and the parameter that bounds it."""

from __future__ import annotations

import contextlib

__all__ = ["hint"]


@contextlib.contextmanager
def hint(what, reduce):
    """Inside the block, a MemoryError becomes MemoryError("<what>: out of memory (<numpy's
    message>); reduce <reduce>")."""
    try:
        yield
    except MemoryError as exc:
        raise MemoryError(f"{what}: out of memory ({exc}); reduce {reduce}") from None
