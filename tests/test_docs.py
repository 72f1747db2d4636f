"""The documented API of the modules whose docstrings are numpydoc: every public callable (and
public method or property, inherited ones included) has an Examples section, which CI runs as a
doctest (.ci/run), and every public name has its entry in docs/api.rst, where Sphinx validates
it with numpydoc (docs/conf.py). Extend CONVERTED as more modules are added."""

import importlib
import inspect
import re
from pathlib import Path

import pytest

API = Path(__file__).resolve().parent.parent / "docs" / "api.rst"

# module -> the names to check (None: every public name defined in the module)
CONVERTED = {
    "pyfeat.backend": None,
    "pyfeat.tasks._base": ["Task"],
    "pyfeat.tasks.multi_index": None,
    "pyfeat.tasks.single_index": None,
    "pyfeat.tasks.low_rank": None,
    "pyfeat.tasks.one_dim": None,
    "pyfeat._kernel_table": None,
    "pyfeat.kernels": ["get", "names", "Kernel", "empirical_ntk"],
    "pyfeat.ops": ["first_step_gradient", "residual_gradient", "network_gradient", "relu_features", "relu_gram",
                   "relu_predict", "relu_transpose", "taylor_gradient", "taylor_predict", "kernel_matvec",
                   "kernel_matrix"],
    "pyfeat.ops._device": ["device"],
    "pyfeat.experiments.config": None,
    "pyfeat.experiments.sweep": None,
    "pyfeat.experiments.results": None,
    "pyfeat.experiments.complexity": None,
    "pyfeat.experiments.plots": None,
    "pyfeat.experiments.demo": None,
    "pyfeat.cli": None,
    "pyfeat._base": ["Regressor"],
    "pyfeat.models.two_layer": None,
    "pyfeat.models.gd": None,
    "pyfeat.models.taylor": None,
    "pyfeat.kernel_ridge": None,
    "pyfeat.solvers.monitor": ["ConvergenceWarning"],
}
# public but documented through the classes built on them (their members appear there)
NOT_IN_API = {"pyfeat.tasks.multi_index.IndexTask", "pyfeat._kernel_table.KernelSpec",
              "pyfeat._kernel_table.Row", "pyfeat._kernel_table.parse", "pyfeat._base.Regressor"}


def _members(cls):
    """(name, member) of the public methods and properties (and ``__call__``) of a class, its
    own and those it inherits from pyfeat's classes (as its page in the docs shows them)."""
    seen = set()
    for klass in inspect.getmro(cls):
        for attr, member in vars(klass).items():
            if attr in seen or not (attr == "__call__" or not attr.startswith("_")):
                continue
            seen.add(attr)  # the definition that wins, even from a class outside pyfeat
            if klass.__module__.split(".")[0] == "pyfeat" and (callable(member) or isinstance(member, property)):
                yield attr, member


def _public(module_name, names):
    """(qualified name, object, top level?) of each public callable defined in the module, and
    of each public method and property (and ``__call__``) of its public classes (``_members``)."""
    module = importlib.import_module(module_name)
    if names is None:
        names = [n for n, obj in vars(module).items() if not n.startswith("_") and callable(obj)
                 and getattr(obj, "__module__", None) == module_name]
    out = []
    for name in names:
        obj = getattr(module, name)
        out.append((f"{module_name}.{name}", obj, True))
        if inspect.isclass(obj):
            out += [(f"{module_name}.{name}.{attr}", member, False) for attr, member in _members(obj)]
    return out


DOCUMENTED = [item for module, names in CONVERTED.items() for item in _public(module, names)]


@pytest.mark.parametrize("name, obj", [(n, o) for n, o, _ in DOCUMENTED], ids=[n for n, _, _ in DOCUMENTED])
def test_has_a_doctested_examples_section(name, obj):
    doc = inspect.getdoc(obj) or ""
    section = re.search(r"^Examples\n--------\n(.*?)(?=^\S[^\n]*\n-{3,}\n|\Z)", doc, re.M | re.S)
    assert section, f"{name}: no numpydoc Examples section"
    assert ">>> " in section.group(1), f"{name}: its Examples section has no >>> example"


@pytest.mark.skipif(not API.is_file(), reason="docs/ not next to the package (installed wheel)")
def test_every_public_name_is_in_the_api_reference():
    entries = set(re.findall(r"^   (?:[\w.]+\.)?(\w+)$", API.read_text(encoding="utf-8"), re.M))
    missing = [name for name, _, top in DOCUMENTED
               if top and name not in NOT_IN_API and name.rsplit(".", 1)[1] not in entries]
    assert not missing, f"public names missing from docs/api.rst: {missing}"
