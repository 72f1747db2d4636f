"""Validation of the public ops' arguments: shapes, dtypes, finiteness, and the move to the
backend's device. Inputs are cast to the working dtype first and checked after, so a value that
the cast turns into inf is caught; X itself is converted one block at a time inside the op, and
checked in its own dtype (every real dtype casts to the working dtype without overflow)."""

from __future__ import annotations

import logging

import numpy as np

from pyfeat import backend as _backend
from pyfeat._kernel_table import DISTANCE_KERNELS
from pyfeat._kernel_table import parse as parse_kernel
from pyfeat.ops._device import device
from pyfeat.ops._plan import blocks, working_dtype

logger = logging.getLogger("pyfeat.ops")

# rows per block when a finiteness check has to look at the entries (no n-sized temporary)
_CHECK_ROWS = 1 << 14


RESOLUTION = 0.01  # the largest error allowed in the exponent of a distance kernel


def peak_sq_norm(xp, *arrays):
    """max_i |a_i|² over the rows of the arrays, in float64, block by block."""
    return max(max(float(xp.max(xp.einsum("ij,ij->i", A[s:e], A[s:e], dtype=xp.float64)))
                   for s, e in blocks(A.shape[0], _CHECK_ROWS)) for A in arrays)


def resolved(kernel, dtype, peak_sq_norm):
    """Whether inner products resolve the distance kernel (rbf/laplace) with bandwidth h on
    inputs of squared norm up to R² in ``dtype``: |x − z|² = |x|² + |z|² − 2<x, z> (from the GEMM)
    carries an error of about 4·eps·R², i.e. 4·eps·R²/(2h²) in rbf's exponent and √(4·eps·R²)/h
    in laplace's (at |x − z| → 0); both must stay ≤ RESOLUTION (1 %), and R² must be finite
    (float64). Otherwise the kernel is evaluated from differences (``KernelSpec.from_differences``:
    with float32 rows of norm ~400 and bandwidth 1e-3 the inner products gave an rbf diagonal of
    0 instead of 1; rows of norm 1e200 gave NaN)."""
    if not np.isfinite(peak_sq_norm):
        return False
    h = float(kernel.params["bandwidth"])
    err = 4.0 * float(np.finfo(dtype).eps) * peak_sq_norm
    exponent_err = err / (2 * h * h) if kernel.name == "rbf" else np.sqrt(err) / h
    return bool(exponent_err <= RESOLUTION)


def for_inputs(kernel, dtype, peak):
    """The kernel as the ops evaluate it on inputs of squared norm up to ``peak()`` (called only
    for a distance kernel): from differences when inner products do not resolve it
    (``resolved``), else itself."""
    if kernel.name not in DISTANCE_KERNELS or kernel.differences or resolved(kernel, dtype, peak()):
        return kernel
    logger.info("kernel %r from the differences x − z: inner products cannot resolve it", kernel.name)
    return kernel.from_differences()


def block_size(value):
    """The ``block_size`` argument of an op: None or a positive integer."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"block_size must be a positive integer or None, got {value!r}")
    return int(value)


class Args:
    """Validates one call's arrays, moves them to the backend's device, and remembers whether
    the caller gave CuPy or NumPy arrays (the result comes back the same way)."""

    def __init__(self, op, backend):
        self.op = op
        self.device = device(backend)
        self.cupy_in = None
        self.dtype = None

    def kernel(self, kernel):
        return parse_kernel(kernel)

    def kernel_for(self, kernel, *arrays):
        """The validated kernel as evaluated on the op's inputs (``for_inputs``)."""
        return for_inputs(kernel, self.dtype, lambda: peak_sq_norm(self.device.xp, *arrays))

    def _to_device(self, name, x):
        if x is None:
            raise ValueError(f"{self.op}: {name} must be an array, got None")
        cupy_x = _backend.is_cupy(x)
        if self.cupy_in is None:
            self.cupy_in = cupy_x
        if self.device.name == "cuda":
            import cupy

            return cupy.asarray(x)
        return x.get() if cupy_x else np.asarray(x)

    def _check_dtype(self, name, x):
        if x.dtype.kind == "f" and x.dtype.itemsize > 8:
            raise TypeError(f"{self.op}: {name} has dtype {x.dtype} (extended precision), which the ops "
                            "do not support; convert it to float64")
        if x.dtype.kind not in "fiub":
            raise TypeError(f"{self.op}: {name} must hold real numbers (float32/float64), got dtype {x.dtype}")

    def _check_finite(self, name, x, finite_in_loop=False):
        if x.size == 0:
            raise ValueError(f"{self.op}: {name} is empty (shape {x.shape})")
        if x.dtype.kind != "f" or finite_in_loop:
            return
        xp = _backend.array_module(x)
        # one float64 sum: finite means every entry is finite (the usual case, no temporary) ...
        if bool(xp.isfinite(xp.sum(x, dtype=xp.float64))):
            return
        # ... else NaN/inf are there or the sum overflowed: look at the entries, block by block
        bad = None
        for s, e in blocks(x.shape[0], _CHECK_ROWS):
            if bool(xp.isnan(x[s:e]).any()):
                bad = "NaN"
                break
            if bad is None and bool(xp.isinf(x[s:e]).any()):
                bad = "inf"
        if bad is not None:
            raise ValueError(f"{self.op}: {name} contains {bad}; expected finite values")

    def matrix(self, name, x, cols=None, cols_name=None, finite_in_loop=False):
        """The first matrix fixes the working dtype; later inputs are converted to it.
        ``finite_in_loop``: the op's blocked loop checks the entries (``blocked.NonFiniteRows``;
        not on the reference device, which has no such loop)."""
        x = self._to_device(name, x)
        self._check_dtype(name, x)
        if x.ndim != 2:
            raise ValueError(f"{self.op}: {name} must be a 2-D array, got shape {x.shape}")
        if cols is not None and x.shape[1] != cols:
            raise ValueError(
                f"{self.op}: {name} must have {cols} columns ({cols_name}), got shape {x.shape}"
            )
        if self.dtype is None:
            self._check_finite(name, x, finite_in_loop and not self.device.reference)
            self.dtype = working_dtype(x)
            return x  # X itself is converted block by block
        return self._small(name, x)

    def _small(self, name, x):
        """x as a contiguous array of the working dtype, checked after the cast."""
        with np.errstate(over="ignore"):  # an overflowing cast is reported just below
            x = _backend.array_module(x).ascontiguousarray(x, dtype=self.dtype)
        self._check_finite(name, x)
        return x

    def vector(self, name, x, length, length_name="X.shape[0]"):
        x = self._to_device(name, x)
        self._check_dtype(name, x)
        if x.ndim != 1 or x.shape[0] != length:
            raise ValueError(
                f"{self.op}: {name} must have shape ({length},) (length {length_name}), got {x.shape}"
            )
        return self._small(name, x)

    def vector_or_matrix(self, name, x, length, length_name="X.shape[0]"):
        x = self._to_device(name, x)
        self._check_dtype(name, x)
        if x.ndim not in (1, 2) or x.shape[0] != length:
            raise ValueError(
                f"{self.op}: {name} must have shape ({length},) or ({length}, k) "
                f"(length {length_name}), got {x.shape}"
            )
        return self._small(name, x)

    def bias(self, b, m):
        if b is None:
            return self.device.xp.zeros(m, dtype=self.dtype)
        return self.vector("b", b, m, length_name="W.shape[0]")

    def result(self, out):
        """The op's result, checked (inputs were finite, so a non-finite result overflowed) and
        returned as the caller's array type."""
        xp = _backend.array_module(out)
        if not bool(xp.isfinite(xp.sum(out, dtype=xp.float64))) and not bool(xp.isfinite(out).all()):
            raise ValueError(f"{self.op}: the result is not representable in {out.dtype} (it overflows "
                             "for inputs of this magnitude); rescale the inputs or use float64")
        gpu_out = _backend.is_cupy(out)
        if self.cupy_in and not gpu_out:
            import cupy

            return cupy.asarray(out)
        if not self.cupy_in and gpu_out:
            return out.get()
        return out
