import zlib

import numpy as np
import pytest

from pyfeat.backend import cuda_status

CUDA_OK, CUDA_WHY = cuda_status()


def available_backends():
    """Every backend that can run here; "cuda" only with a device (skipped with the reason)."""
    return [
        "numpy",
        "numba",
        pytest.param("cuda", marks=pytest.mark.skipif(not CUDA_OK, reason=f"no CUDA backend: {CUDA_WHY}")),
    ]


@pytest.fixture
def rng(request):
    """A fresh Generator per test, seeded from the test's id: new inputs for every test and
    parametrization, reproducible from run to run."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


def pytest_configure(config):
    import pyfeat

    try:
        from pyfeat import _core  # noqa: F401
    except ImportError as exc:
        raise pytest.UsageError(
            f"pyfeat imported from {pyfeat.__path__[0]} has no compiled core ({exc}). Install it "
            '(pip install ".[test]") and run `pytest` (not `python -m pytest`, which puts the '
            "source directory first on sys.path), or use an editable install (pip install -e .)."
        ) from None
