"""pyfeat: feature learning vs kernels, at scale.

Two-layer ReLU networks trained by Algorithm 1 (Damian, Lee & Soltanolkotabi), kernel ridge
regression with iterative solvers, and exact task generators, on CPU (Numba) and GPU (CUDA).

- ``pyfeat.tasks``: the data models (``MultiIndex``, ``SingleIndex``, ...) with exact
  population quantities;
- ``pyfeat.TwoLayerReLU``, ``pyfeat.RandomFeatures``: Algorithm 1 and the same network
  without its feature step; ``pyfeat.KernelRidge``, ``pyfeat.kernel_gradient_flow``: kernel
  methods at large n;
- ``pyfeat.ops``: the hot operations; ``pyfeat.kernels``: the kernel formulas;
- ``pyfeat.experiments``: sample-complexity sweeps, fits of n*(d) and plots;
- ``pyfeat.info()``: the version, build, devices and backend chosen.

The heavier submodules (models, kernel ridge, tasks, experiments) load on first use.

Examples
--------
>>> import pyfeat as pf
>>> task = pf.tasks.MultiIndex(d=8, r=2, degree=2, seed=0)
>>> X, y = task.sample(2048, seed=1)
>>> Xt, yt = task.sample(1024, seed=2)
>>> nn = pf.TwoLayerReLU(width=256, seed=0).fit(X, y)
>>> krr = pf.KernelRidge(kernel="ntk", ridge=1e-4).fit(X, y)
>>> bool(nn.score(Xt, yt) > 0.9 > krr.score(Xt, yt))   # test R²: 0.997 and 0.65
True
"""

import importlib
from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("pyfeat")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"

from pyfeat import kernels, ops
from pyfeat.backend import info

# public name -> module that defines it (imported on first access)
_LAZY = {
    "TwoLayerReLU": "pyfeat.models",
    "RandomFeatures": "pyfeat.models",
    "GDNetwork": "pyfeat.models",
    "QuadraticTaylor": "pyfeat.models",
    "HierarchicalQuadratic": "pyfeat.models",
    "KernelRidge": "pyfeat.kernel_ridge",
    "kernel_gradient_flow": "pyfeat.kernel_ridge",
    "tasks": None,
    "models": None,
    "solvers": None,
    "experiments": None,
}

__all__ = ["info", "kernels", "ops", *_LAZY]


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'pyfeat' has no attribute {name!r}")
    module = _LAZY[name]
    value = (
        importlib.import_module(f"pyfeat.{name}")
        if module is None
        else getattr(importlib.import_module(module), name)
    )
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
