"""Sphinx configuration of the mixedmodels site (``make docs``).

Sphinx with the pydata theme, numpydoc for the API reference and myst-nb for pages that
execute: every code cell runs at build time, and the build fails on any warning or any
cell that raises, so no example can rot.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # chapter_helpers for the executed pages
os.environ.setdefault("MPLBACKEND", "Agg")

import mixedmodels  # noqa: E402

project = "mixedmodels"
author = "the mixedmodels developers"
copyright = "2026, the mixedmodels developers"
release = mixedmodels.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_nb",
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb"}
exclude_patterns = ["_build", "**.ipynb_checkpoints", "jupyter_execute"]
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3

# every page's code runs at build time; one failing cell fails the build
nb_execution_mode = "force"
nb_execution_raise_on_error = True
nb_execution_timeout = 600
nb_execution_show_tb = True
nb_merge_streams = True

autodoc_default_options = {"members": True, "inherited-members": True, "undoc-members": True}
autodoc_typehints = "none"  # numpydoc's Parameters sections carry the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

html_theme = "pydata_sphinx_theme"
html_title = "mixedmodels"
html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2}
html_static_path: list[str] = []


# -- the API reference is generated from mm.__all__, so a new public name cannot be missed ------
def _write_api_reference() -> None:
    import inspect

    lines = [
        "API reference",
        "=============",
        "",
        "Every public name of ``mixedmodels`` (``mm.__all__``), with its docstring.",
        "",
    ]
    sections: dict[str, list[str]] = {"Fitting": [], "Models": [], "Structures": [], "Other": []}
    for name in sorted(mixedmodels.__all__, key=str.lower):
        obj = getattr(mixedmodels, name)
        target = f"mixedmodels.{name}"
        if inspect.ismodule(obj):
            block = [f".. automodule:: {target}", "   :members:", "   :no-inherited-members:"]
            sections["Other"].append("\n".join(block))
        elif inspect.isclass(obj) and issubclass(obj, BaseException):
            sections["Other"].append(f".. autoexception:: {target}\n   :no-inherited-members:")
        elif inspect.isclass(obj) and name.endswith("Model"):
            sections["Models"].append(f".. autoclass:: {target}")
        elif inspect.isclass(obj):
            sections["Structures"].append(
                f".. autoclass:: {target}\n   :no-inherited-members:\n   :no-members:"
            )
        else:
            sections["Fitting"].append(f".. autofunction:: {target}")
    for title, blocks in sections.items():
        lines += [title, "-" * len(title), ""]
        for block in blocks:
            lines += [block, ""]
    text = "\n".join(lines)
    path = HERE / "api.rst"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


_write_api_reference()
