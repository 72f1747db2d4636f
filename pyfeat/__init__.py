"""pyfeat: feature learning vs kernels, at scale.

Two-layer ReLU networks trained by Algorithm 1 (Damian, Lee & Soltanolkotabi), kernel ridge
regression with iterative solvers, and exact task generators, on CPU (Numba) and GPU (CUDA).
See DESIGN.md for the public API and conventions.
"""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("pyfeat")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"

from pyfeat import kernels, ops
from pyfeat.backend import info

__all__ = ["info", "kernels", "ops"]
