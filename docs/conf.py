"""Sphinx configuration: the pyfeat API reference and usage guide.

Build (warnings are errors, as in CI):  sphinx-build -W --keep-going -b html docs docs/_build/html
Needs the installed package (``pip install ".[docs]"``): autodoc imports pyfeat, compiled core
included, so nothing is mocked. No intersphinx: CI reaches no network beyond package registries.

What to tighten once the docstrings are numpydoc-formatted (details in docs/README.md):
``STRICT_DOCSTRINGS = True``; ``numpydoc_validation_checks = {"all", "GL01", "SA01", "EX01",
"ES01", "RT02", "SS05"}`` (93 objects fail it, 2026-12-01); optionally ``nitpicky = True``.
"""

import logging

import pyfeat

# False while the docstrings are being converted to numpydoc: reST problems *inside pyfeat's
# docstrings* are listed in <outdir>/docstring_problems.txt and counted at the end of the build
# instead of failing it. Every problem in the pages under docs/ is an error either way.
STRICT_DOCSTRINGS = False

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

# numpydoc: see the module docstring for what to tighten
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks: set[str] = set()
numpydoc_xref_param_type = False

html_theme = "alabaster"
html_title = f"pyfeat {release}"
html_static_path: list[str] = []
nitpicky = False


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
    """Takes docutils' messages located in a docstring (``...:docstring of pyfeat...``) out of
    the warning stream and keeps them for docstring_problems.txt."""

    def __init__(self):
        super().__init__()
        self.messages = []

    def filter(self, record):
        location = str(getattr(record, "location", "") or "")
        if "docstring of " in location and record.levelno >= logging.WARNING:
            self.messages.append(f"{location}: {record.getMessage()}")
            return False
        return True


def _report_docstring_problems(problems):
    def report(app, exception):
        if exception is None:
            path = app.outdir / "docstring_problems.txt"
            path.write_text("".join(m + "\n" for m in problems.messages), encoding="utf-8")
            print(f"pyfeat docs: {len(problems.messages)} reST problems in docstrings "
                  f"(not errors until STRICT_DOCSTRINGS = True): {path}")
    return report


def setup(app):
    app.connect("autodoc-skip-member", _skip_foreign_members)
    if not STRICT_DOCSTRINGS:
        problems = _DocstringProblems()
        # the logger through which sphinx.util.docutils reports docutils' system messages
        logging.getLogger("sphinx.sphinx.util.docutils").addFilter(problems)
        app.connect("build-finished", _report_docstring_problems(problems))
