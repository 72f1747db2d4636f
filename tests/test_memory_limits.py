"""Running out of memory under an address-space limit (``ulimit -v``) is a MemoryError saying
what to reduce — never a kill or a segfault — on the heaviest paths: the materialized kernel and
feature matrices, the direct solver's n×n matrix, Nyström's M×M factors, EigenPro's subsample
matrix and the network head's m×m Gram."""

import subprocess
import sys
import textwrap

import pytest

CHILD = textwrap.dedent(r"""
    import resource, re, sys
    import numpy as np
    import pyfeat as pf

    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 4)); y = X[:, 0] ** 2
    pf.ops.kernel_matrix(X, X); pf.ops.relu_features(X, X[:8]); pf.TwoLayerReLU(width=8).fit(X, y)
    pf.KernelRidge(solver="nystrom", n_centers=50).fit(X, y)  # compile everything before the limit
    with open("/proc/self/status") as f:
        vm = int(re.search(r"VmSize:\s+(\d+) kB", f.read()).group(1)) * 1024
    limit = vm + 2**30  # 1 GiB above what the process maps now
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    big = rng.standard_normal((20_000, 4))
    cases = {
        "kernel_matrix": (lambda: pf.ops.kernel_matrix(big, big), "use kernel_matvec"),
        "relu_features": (lambda: pf.ops.relu_features(np.tile(big, (10, 1)), rng.standard_normal((4096, 4))),
                          "relu_gram / relu_predict"),
        "direct": (lambda: pf.KernelRidge(solver="direct").fit(big, big[:, 0]), "solver='cg'"),
        "nystrom": (lambda: pf.KernelRidge(solver="nystrom", n_centers=20_000).fit(big, big[:, 0]), "n_centers"),
        "eigenpro": (lambda: pf.KernelRidge(solver="eigenpro", subsample=20_000).fit(big, big[:, 0]), "subsample"),
        "network head": (lambda: pf.RandomFeatures(width=16_384).fit(X, y), "width"),
    }
    for name, (call, what) in cases.items():
        try:
            call()
        except MemoryError as exc:
            assert "reduce" in str(exc) and what in str(exc), (name, str(exc))
            print(f"{name}: MemoryError: {exc}")
        else:
            print(f"{name}: ran within the limit")
            sys.exit(3)
    print("all heavy paths raised MemoryError")
""")


@pytest.mark.slow
def test_out_of_memory_is_a_memory_error_saying_what_to_reduce(tmp_path):
    env = {"PYFEAT_DIRECT_MEMORY_MB": "100000", "PATH": "/usr/bin:/bin"}
    import os

    env.update({k: v for k, v in os.environ.items() if k.startswith(("NUMBA", "OPENBLAS", "HOME", "PYTHON", "VIRTUAL"))})
    proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=600, env=env,
                          cwd=tmp_path)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-3000:]}"
    assert "all heavy paths raised MemoryError" in proc.stdout
