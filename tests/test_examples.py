"""Every script in examples/ runs to completion at its quick size (PYFEAT_EXAMPLES_QUICK=1) and
prints what its docstring promises. Skipped where the examples are not next to the tests (an
installed package's tests run without the source tree)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = sorted(EXAMPLES.glob("*.py")) if EXAMPLES.is_dir() else []

# script -> patterns its output must contain (a number where a number is printed)
NUMBER = r"-?\d+\.\d+"
EXPECTED = {
    "separation.py": [r"n\s+nn\s+rf\s+ntk", rf"\n\s+1024(\s+{NUMBER}){{3}}"],
    "transfer.py": [r"after the feature step", rf"\n\s+1024\s+{NUMBER}\s+{NUMBER}"],
    "kernel_ridge_large_n.py": [r"solver: direct \(", rf"test MSE: {NUMBER}"],
    "custom_task.py": [rf"test MSE nn {NUMBER}, rf {NUMBER}", rf"\n\s+rf\s+16\s+1024\s+{NUMBER}\s+{NUMBER}"],
    "gd_lazy_vs_feature_learning.py": [rf"\n{p}\s+{NUMBER}\s+{NUMBER} →\s*{NUMBER}\s+{NUMBER}"
                                       for p in ("mean_field", "ntk")],
}

pytestmark = pytest.mark.skipif(not SCRIPTS, reason=f"no examples folder at {EXAMPLES} (installed package)")


def test_every_example_has_expected_output():
    assert {p.name for p in SCRIPTS} == set(EXPECTED)


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_example_runs_quick(script, tmp_path):
    env = {**os.environ, "PYFEAT_EXAMPLES_QUICK": "1"}
    proc = subprocess.run([sys.executable, str(script)], check=False, capture_output=True, text=True,
                          timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for pattern in EXPECTED[script.name]:
        assert re.search(pattern, proc.stdout), f"{pattern!r} not in the output of {script.name}:\n{proc.stdout}"
    assert not re.search(r"\bnan\b", proc.stdout, re.IGNORECASE), proc.stdout
