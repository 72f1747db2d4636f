"""Which backend runs an operation, array modules, and the facts ``pf.info()`` reports.

Backends:

- ``"cuda"``:  pyfeat's CUDA kernels (``pyfeat._core``) on CuPy arrays, on CuPy's current stream.
- ``"numba"``: the CPU backend: Numba (parallel) for the fused element-wise parts, BLAS for GEMMs.
- ``"numpy"``: the float64 NumPy reference (``pyfeat.ops._reference``), used by the tests.

``backend=None`` or ``"auto"`` means: the ``PYFEAT_BACKEND`` environment variable if set, else
``"cuda"`` when pyfeat._core was built with CUDA, CuPy imports and a device is present, else
``"numba"``. The backend decides where the work runs; the type of the input arrays decides the
type of the output (NumPy in -> NumPy out, CuPy in -> CuPy out).
"""

from __future__ import annotations

import functools
import os
import re
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

BACKENDS = ("cuda", "numba", "numpy")

# Extra memory an op may use for its blocks, by default (bytes). Override with the environment
# variable PYFEAT_MEMORY_BUDGET_MB, or per call with block_size.
DEFAULT_MEMORY_BUDGET = {"cpu": 64 * 2**20, "cuda": 1024 * 2**20}


def env_mib(name: str) -> int | None:
    """Bytes from the environment variable ``name`` given in MiB, or None when it is unset.

    Parameters
    ----------
    name : str
        Name of the environment variable, e.g. ``"PYFEAT_MEMORY_BUDGET_MB"``.

    Returns
    -------
    int or None
        ``int(value * 2**20)``, or None when the variable is unset or empty.

    Raises
    ------
    ValueError
        When the variable is set but is not a positive number.

    Examples
    --------
    >>> import os
    >>> from pyfeat.backend import env_mib
    >>> os.environ["PYFEAT_EXAMPLE_MB"] = "1.5"
    >>> env_mib("PYFEAT_EXAMPLE_MB")
    1572864
    >>> del os.environ["PYFEAT_EXAMPLE_MB"]
    >>> env_mib("PYFEAT_EXAMPLE_MB") is None
    True
    """
    env = os.environ.get(name)
    if not env:
        return None
    try:
        mb = float(env)
    except ValueError:
        raise ValueError(f"{name} must be a number of MiB, got {env!r}") from None
    if not mb > 0:
        raise ValueError(f"{name} must be > 0, got {env!r}")
    return int(mb * 2**20)


def memory_budget(device: str = "cpu") -> int:
    """Bytes of temporaries an op may allocate on ``device`` ("cpu" or "cuda").

    The ops size their row blocks and column tiles from this budget (unless a call gives
    ``block_size``), so their extra memory does not depend on n.

    Parameters
    ----------
    device : {"cpu", "cuda"}, default "cpu"
        Which memory the budget is for.

    Returns
    -------
    int
        ``PYFEAT_MEMORY_BUDGET_MB`` (in MiB) as bytes when that environment variable is set,
        else the default: 64 MiB on the CPU, 1 GiB on the GPU (``DEFAULT_MEMORY_BUDGET``).

    Raises
    ------
    ValueError
        When ``PYFEAT_MEMORY_BUDGET_MB`` is set but is not a positive number.

    Examples
    --------
    >>> import os
    >>> from pyfeat.backend import memory_budget
    >>> budget = memory_budget("cpu")
    >>> budget == (64 * 2**20 if "PYFEAT_MEMORY_BUDGET_MB" not in os.environ else budget)
    True
    """
    budget = env_mib("PYFEAT_MEMORY_BUDGET_MB")
    return DEFAULT_MEMORY_BUDGET[device] if budget is None else budget


@functools.lru_cache(maxsize=None)
def _core():
    """The compiled extension, or None with the import error remembered by cuda_status()."""
    try:
        from pyfeat import _core as core
    except ImportError:
        return None
    return core


@functools.lru_cache(maxsize=None)
def cuda_status() -> tuple[bool, str]:
    """Whether the "cuda" backend can run here, and why (not).

    It can when pyfeat._core imports, was built with CUDA, CuPy imports and CuPy sees at least
    one device. The answer is computed once per process.

    Returns
    -------
    available : bool
        True when ``backend="cuda"`` can run.
    reason : str
        Why not (the first condition that fails), or what was found.

    Examples
    --------
    >>> from pyfeat.backend import cuda_status
    >>> available, reason = cuda_status()
    >>> isinstance(available, bool), isinstance(reason, str)
    (True, True)
    """
    core = _core()
    if core is None:
        return False, "pyfeat._core (the compiled extension) did not import"
    if not core.build_info()["cuda"]:
        return False, "pyfeat._core was built without CUDA (no CUDA compiler at build time, or PYFEAT_CUDA=OFF)"
    try:
        import cupy
    except ImportError:
        return False, 'CuPy is not installed (pip install "pyfeat[gpu]")'
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # no driver, no device
        return False, f"CuPy sees no CUDA device ({exc.__class__.__name__}: {exc})"
    if count < 1:
        return False, "CuPy sees no CUDA device"
    return True, f"pyfeat._core built with CUDA, CuPy {cupy.__version__}, {count} device(s)"


def cuda_available() -> bool:
    """Whether the "cuda" backend can run here: the first element of :func:`cuda_status`.

    Returns
    -------
    bool
        True when pyfeat._core was built with CUDA, CuPy imports and a device is present.

    Examples
    --------
    >>> from pyfeat.backend import cuda_available, cuda_status
    >>> cuda_available() == cuda_status()[0]
    True
    """
    return cuda_status()[0]


def resolve(backend: str | None = None) -> str:
    """Return the backend name for ``backend`` (None/"auto"/"cuda"/"numba"/"numpy").

    None or "auto" means: the ``PYFEAT_BACKEND`` environment variable if set, else "cuda"
    when pyfeat._core was built with CUDA, CuPy imports and a device is present, else
    "numba".

    Parameters
    ----------
    backend : {None, "auto", "cuda", "numba", "numpy"}, default None
        The backend asked for.

    Returns
    -------
    str
        One of ``BACKENDS``: "cuda", "numba" or "numpy".

    Raises
    ------
    ValueError
        For an unknown name (also in ``PYFEAT_BACKEND``).
    RuntimeError
        Saying why, when "cuda" is asked for but cannot run here.

    Examples
    --------
    >>> from pyfeat.backend import resolve
    >>> resolve("numpy")
    'numpy'
    >>> resolve() in ("cuda", "numba", "numpy")
    True
    >>> resolve("gpu")
    Traceback (most recent call last):
    ...
    ValueError: backend must be one of ('cuda', 'numba', 'numpy') or 'auto'/None, got 'gpu'
    """
    name, _ = _resolve_with_reason(backend)
    return name


def _resolve_with_reason(backend):
    if backend is None or backend == "auto":
        env = os.environ.get("PYFEAT_BACKEND", "").strip().lower()
        if env and env != "auto":
            if env not in BACKENDS:
                raise ValueError(f"PYFEAT_BACKEND must be one of {BACKENDS} or 'auto', got {env!r}")
            if env == "cuda" and not cuda_status()[0]:
                raise RuntimeError(f"PYFEAT_BACKEND=cuda, but CUDA is unavailable: {cuda_status()[1]}; unset "
                                   "PYFEAT_BACKEND or set it to 'auto'")
            return env, f"PYFEAT_BACKEND={env}"
        ok, why = cuda_status()
        if ok:
            return "cuda", f"auto: {why}"
        return "numba", f"auto: no CUDA ({why})"
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS} or 'auto'/None, got {backend!r}")
    if backend == "cuda":
        ok, why = cuda_status()
        if not ok:
            raise RuntimeError(f"backend='cuda' is unavailable: {why}")
    return backend, "requested"


def is_cupy(x: Any) -> bool:
    """Whether ``x`` is a CuPy object (checked by its type's module; CuPy is not imported).

    Parameters
    ----------
    x : object
        Anything.

    Returns
    -------
    bool
        True for a CuPy array (or any other object of a ``cupy`` module).

    Examples
    --------
    >>> import numpy as np
    >>> from pyfeat.backend import is_cupy
    >>> is_cupy(np.zeros(3))
    False
    """
    return type(x).__module__.startswith("cupy")


def to_numpy(x: ArrayLike) -> np.ndarray:
    """``x`` as a NumPy array (copied from the device when it is a CuPy array).

    Parameters
    ----------
    x : array_like
        A NumPy or CuPy array, or anything ``numpy.asarray`` takes.

    Returns
    -------
    numpy.ndarray
        ``x.get()`` for a CuPy array, else ``numpy.asarray(x)`` (no copy of a NumPy array).

    Examples
    --------
    >>> from pyfeat.backend import to_numpy
    >>> to_numpy([1.0, 2.0])
    array([1., 2.])
    """
    return x.get() if is_cupy(x) else np.asarray(x)


def array_module(x: Any) -> Any:
    """The array module, numpy or cupy, whichever ``x`` belongs to.

    Parameters
    ----------
    x : object
        An array (NumPy, CuPy) or anything else (treated as NumPy).

    Returns
    -------
    module
        ``cupy`` for a CuPy object, else ``numpy``.

    Examples
    --------
    >>> import numpy as np
    >>> from pyfeat.backend import array_module
    >>> array_module(np.zeros(3)) is np
    True
    """
    if is_cupy(x):
        import cupy

        return cupy
    return np


def _cpu_flags() -> set:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


# OpenBLAS kernel families that use AVX-512 (threadpoolctl's "architecture")
_AVX512_KERNELS = re.compile(r"skylakex|cooperlake|sapphirerapids|zen5?$", re.I)


def blas_info() -> list[dict]:
    """The BLAS libraries NumPy/SciPy use: library, version, kernel architecture, threads.

    Read with threadpoolctl from the libraries loaded in this process.

    Returns
    -------
    list of dict
        One dict per BLAS library, with the keys "library" (e.g. "openblas"), "version",
        "architecture" (the kernels it runs, e.g. "Haswell"), "num_threads" and "filepath".

    Examples
    --------
    >>> from pyfeat.backend import blas_info
    >>> all(set(lib) == {"library", "version", "architecture", "num_threads", "filepath"}
    ...     for lib in blas_info())
    True
    """
    from threadpoolctl import threadpool_info

    out = []
    for lib in threadpool_info():
        if lib.get("user_api") != "blas":
            continue
        out.append(
            {
                "library": lib.get("internal_api"),
                "version": lib.get("version"),
                "architecture": lib.get("architecture"),
                "num_threads": lib.get("num_threads"),
                "filepath": lib.get("filepath"),
            }
        )
    return out


def blas_warnings(blas: list[dict] | None = None) -> list[str]:
    """Warnings when a BLAS runs kernels below what the CPU supports (e.g. AVX2 on AVX-512).

    Parameters
    ----------
    blas : list of dict, optional
        What :func:`blas_info` returns (default: called here).

    Returns
    -------
    list of str
        One warning per OpenBLAS whose kernels do not use AVX-512 on a CPU that has it
        (naming ``OPENBLAS_CORETYPE`` when it is set); empty otherwise.

    Examples
    --------
    >>> from pyfeat.backend import blas_warnings
    >>> blas_warnings([])
    []
    """
    blas = blas_info() if blas is None else blas
    warnings = []
    if "avx512f" in _cpu_flags():
        for lib in blas:
            arch = lib.get("architecture") or ""
            if lib.get("library") == "openblas" and arch and not _AVX512_KERNELS.search(arch):
                hint = os.environ.get("OPENBLAS_CORETYPE")
                warnings.append(
                    f"OpenBLAS runs {arch} kernels but this CPU supports AVX-512"
                    + (f" (OPENBLAS_CORETYPE={hint} is set in the environment)" if hint else "")
                    + ": GEMM runs at about half the CPU's rate"
                )
    return warnings


def info() -> dict:
    """Facts about this installation: version, build, devices, backends, threads, BLAS.

    What ``pyfeat info`` prints (as text: :func:`pyfeat.backend.format_info`; ``pyfeat info
    --json``: this dict). The backend is resolved as ``backend=None`` would be; an error doing
    so (e.g. ``PYFEAT_BACKEND=cuda`` where CUDA cannot run) is reported, not raised.

    Returns
    -------
    dict
        "version"; the build: "core_compiled", "cuda_compiled", "cuda_architectures"; CUDA at
        run time: "cuda_available", "cuda_reason", "devices" (a list of dicts with "index",
        "name", "compute_capability", "memory_gib"); the backends: "backends_available",
        "backend" (the one ``backend=None`` picks, or None on an error) and "backend_reason";
        the CPU: "cpu", "cpu_avx512", "cosine_loop" (the instruction set of the compiled cosine
        kernels' loop, "avx512" or "avx2", or None: ``pyfeat.ops._numba``); Numba: "numba_version", "numba_threads",
        "numba_threading_layer"; BLAS: "blas" (:func:`pyfeat.backend.blas_info`),
        "openblas_coretype"; and "warnings" (:func:`pyfeat.backend.blas_warnings`).

    See Also
    --------
    pyfeat.backend.format_info : The same facts as text.

    Examples
    --------
    >>> import pyfeat as pf
    >>> facts = pf.info()
    >>> facts["version"] == pf.__version__
    True
    >>> facts["backend"] in facts["backends_available"]
    True
    >>> "numpy" in facts["backends_available"], facts["core_compiled"]
    (True, True)
    """
    import numba

    from pyfeat import __version__

    core = _core()
    build = core.build_info() if core is not None else {"cuda": False, "cuda_architectures": ""}
    ok, why = cuda_status()
    devices = []
    if ok:
        import cupy

        for i in range(cupy.cuda.runtime.getDeviceCount()):
            props = cupy.cuda.runtime.getDeviceProperties(i)
            name = props["name"]
            devices.append(
                {
                    "index": i,
                    "name": name.decode() if isinstance(name, bytes) else name,
                    "compute_capability": f"{props['major']}.{props['minor']}",
                    "memory_gib": round(props["totalGlobalMem"] / 2**30, 1),
                }
            )
    try:
        chosen, reason = _resolve_with_reason(None)
    except (RuntimeError, ValueError) as exc:  # e.g. PYFEAT_BACKEND=cuda where CUDA cannot run
        chosen, reason = None, f"{exc.__class__.__name__}: {exc}"
    available = [b for b in BACKENDS if b != "cuda" or ok]
    blas = blas_info()
    return {
        "version": __version__,
        "core_compiled": core is not None,
        "cuda_compiled": bool(build["cuda"]),
        "cuda_architectures": build.get("cuda_architectures", ""),
        "cuda_available": ok,
        "cuda_reason": why,
        "devices": devices,
        "backends_available": available,
        "backend": chosen,
        "backend_reason": reason,
        "cpu": _cpu_name(),
        "cpu_avx512": "avx512f" in _cpu_flags(),
        "cosine_loop": _cosine_loop_isa(),
        "numba_version": numba.__version__,
        "numba_threads": numba.get_num_threads(),
        "numba_threading_layer": _numba_threading_layer(),
        "blas": blas,
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
        "warnings": blas_warnings(blas),
    }


def _cosine_loop_isa() -> str | None:
    """The best instruction set of the compiled cosine kernels' loop that this CPU runs ("avx512",
    "avx2"), or None (no such CPU, or no compiled core): ``pyfeat.ops._numba``."""
    core = _core()
    isas = getattr(core, "cosine_reduce_isas", list)()  # a core built before the loop had ISAs: none
    return isas[-1] if isas else None


def _numba_threading_layer():
    import numba

    try:
        return numba.threading_layer()
    except ValueError:  # not initialised before the first parallel call
        return numba.config.THREADING_LAYER


_COSINE_LOOP_USE = {"avx512": "avx512 (every ntk/nngp/arccos0 product)",
                    "avx2": "avx2 (the solvers' symmetric K(X, X) V; BLAS + Numba elsewhere)"}


def format_info(d: dict) -> str:
    """Human-readable text of :func:`pyfeat.info`, one fact per line (what ``pyfeat info`` prints).

    Parameters
    ----------
    d : dict
        What :func:`pyfeat.info` returns.

    Returns
    -------
    str
        Lines such as ``pyfeat 0.1.0``, ``compiled core: yes``, ``backend: numba (...)``, one
        per device and BLAS library, and a ``WARNING:`` line per warning.

    Examples
    --------
    >>> import pyfeat as pf
    >>> from pyfeat.backend import format_info
    >>> text = format_info(pf.info())
    >>> text.splitlines()[0] == f"pyfeat {pf.__version__}"
    True
    """
    lines = [
        f"pyfeat {d['version']}",
        f"  compiled core:  {'yes' if d['core_compiled'] else 'NO'}",
        f"  CUDA compiled:  {'yes, architectures ' + d['cuda_architectures'] if d['cuda_compiled'] else 'no'}",
        f"  CUDA usable:    {'yes' if d['cuda_available'] else 'no'} ({d['cuda_reason']})",
    ]
    for dev in d["devices"]:
        lines.append(
            f"  device {dev['index']}:       {dev['name']} (sm {dev['compute_capability']}, {dev['memory_gib']} GiB)"
        )
    lines += [
        f"  backends:       {', '.join(d['backends_available'])} available",
        f"  backend:        {d['backend']} ({d['backend_reason']})",
        f"  CPU:            {d['cpu']}{' (AVX-512)' if d['cpu_avx512'] else ''}",
        f"  cosine loop:    {_COSINE_LOOP_USE.get(d['cosine_loop'], 'none (BLAS + Numba)')}",
        f"  Numba:          {d['numba_version']}, {d['numba_threads']} threads, layer {d['numba_threading_layer']}",
    ]
    for lib in d["blas"]:
        lines.append(
            f"  BLAS:           {lib['library']} {lib['version']}, kernels {lib['architecture']}, "
            f"{lib['num_threads']} threads"
        )
    if d["openblas_coretype"]:
        lines.append(f"  OPENBLAS_CORETYPE={d['openblas_coretype']}")
    for w in d["warnings"]:
        lines.append(f"  WARNING: {w}")
    return "\n".join(lines)
