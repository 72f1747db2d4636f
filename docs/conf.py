"""Sphinx configuration: the pyfeat API reference and usage guide.

Build (warnings are errors, as in CI):  sphinx-build -W --keep-going -b html docs docs/_build/html
Needs the installed package (``pip install ".[docs]"``): autodoc imports pyfeat, compiled core
included, so nothing is mocked. No intersphinx: CI reaches no network beyond package registries.

Docstrings are numpydoc, validated by numpydoc (every check but those excluded below), with
Examples that run as doctests — except those matched by ``NOT_YET_NUMPYDOC``, not converted
yet. What is left to tighten: docs/README.md.
"""

import logging
import re

from sphinx.util.logging import get_node_location

import pyfeat

# Docstrings not converted to numpydoc yet, as regular expressions on the names Sphinx gives
# them: the documented name (``pyfeat.TwoLayerReLU.fit``) for numpydoc's validation, and the
# defining module (``pyfeat.models.two_layer.TwoLayerReLU.fit``) in docutils' messages. numpydoc
# does not validate them, and reST problems inside them are listed in
# <outdir>/docstring_problems.txt (counted at the end of the build) instead of failing it.
# Empty today; list a module here only while converting it, and remove it again (docs/README.md).
NOT_YET_NUMPYDOC: tuple[str, ...] = ()  # every documented docstring is converted

# True: a reST problem inside a docstring fails the build, except in NOT_YET_NUMPYDOC's. False
# (while converting a module, say): problems in every docstring are only listed. Every problem
# in the pages under docs/ is an error either way.
STRICT_DOCSTRINGS = True

project = "pyfeat"
author = "the pyfeat developers"
copyright = "2026, the pyfeat developers"
release = pyfeat.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
]

templates_path = ["_templates"]
exclude_patterns = ["_build"]
default_role = "obj"

# autodoc / autosummary: one page per public name, members in source order
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"  # signatures keep their defaults; types belong in the docstrings

# numpydoc: every check except GL01 (summary on the line after the quotes), SA01 (See Also),
# ES01 (Extended Summary), RT02 (type-only first Returns line) and SS05 (summary verb form);
# a failure is a warning, hence an error under -W
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks = {"all", "GL01", "SA01", "ES01", "RT02", "SS05"}
numpydoc_validation_exclude = set(NOT_YET_NUMPYDOC)
numpydoc_xref_param_type = False

html_theme = "alabaster"
html_title = f"pyfeat {release}"
html_static_path: list[str] = []
nitpicky = True  # every cross-reference must resolve (numpy/scipy types are plain text: no intersphinx)


def _skip_foreign_members(app, what, name, obj, skip, options):
    """Document only members whose code lives in pyfeat: members a class inherits from
    scikit-learn (get_params, the metadata-routing set_*_request methods, ...) carry docstrings
    that cross-reference scikit-learn's own documentation, which does not exist here."""
    if callable(obj) or isinstance(obj, property):
        module = getattr(getattr(obj, "fget", obj), "__module__", None) or ""
        if module and module.split(".")[0] != "pyfeat":
            return True
    return None


class _DocstringProblems(logging.Filter):
    """Takes the problems located in a docstring (``...:docstring of pyfeat...``) whose name
    matches ``lenient`` out of the warning stream and keeps them for docstring_problems.txt:
    docutils' messages (as a logging filter) and unresolved references (as the
    warn-missing-reference handler)."""

    def __init__(self, lenient):
        super().__init__()
        self.lenient = lenient
        self.messages = []

    def _keep(self, location, message):
        _, docstring, name = location.partition("docstring of ")
        if docstring and self.lenient.search(name.split(":")[0]):
            self.messages.append(f"{location}: {message}")
            return True
        return False

    def filter(self, record):
        location = str(getattr(record, "location", "") or "")
        return not (record.levelno >= logging.WARNING and self._keep(location, record.getMessage()))

    def missing_reference(self, app, domain, node):
        return self._keep(get_node_location(node) or "", f"reference target not found: {node['reftarget']}") or None


def _report_docstring_problems(problems):
    def report(app, exception):
        if exception is None:
            path = app.outdir / "docstring_problems.txt"
            path.write_text("".join(m + "\n" for m in problems.messages), encoding="utf-8")
            which = "not yet converted (NOT_YET_NUMPYDOC)" if STRICT_DOCSTRINGS else "(STRICT_DOCSTRINGS = False)"
            print(f"pyfeat docs: {len(problems.messages)} reST problems and unresolved references in docstrings {which}, "
                  f"listed, not errors: {path}")
    return report


def setup(app):
    app.connect("autodoc-skip-member", _skip_foreign_members)
    lenient = "|".join(NOT_YET_NUMPYDOC) if STRICT_DOCSTRINGS else "^"
    if lenient:
        problems = _DocstringProblems(re.compile(lenient))
        # the logger through which sphinx.util.docutils reports docutils' system messages
        logging.getLogger("sphinx.sphinx.util.docutils").addFilter(problems)
        app.connect("warn-missing-reference", problems.missing_reference)
        app.connect("build-finished", _report_docstring_problems(problems))
