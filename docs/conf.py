"""Sphinx configuration of dredux's documentation site.

Build it with ``sphinx-build -W -b html docs docs/_build/html`` (``pip install -e
".[docs]"``). The user guide is the Markdown of this folder (MyST); the API
reference comes from the numpydoc docstrings; the configuration and formula
references are generated here, at every build, from ``dredux.config.KEYS``
and from the operation and reduction records, so they cannot drift from the
code; the gallery runs ``examples/gallery/plot_*.py`` (sphinx-gallery).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MPLBACKEND", "Agg")

import dredux  # noqa: E402

sys.path.insert(0, str(HERE))
from generate import write_references  # noqa: E402

project = "dredux"
author = "the dredux developers"
copyright = "the dredux developers"
release = version = dredux.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "README.md"]
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks: set = set()
autodoc_default_options = {"members": True, "undoc-members": False}
autosummary_generate = False
html_theme = "alabaster"
html_static_path: list = []
html_theme_options = {"description": "Huge generic reductions on CPUs and GPUs, with Dask",
                      "fixed_sidebar": True}
# Markdown pages name source files in backticks; a few link to the repository's
# own files, which are not pages of the site
suppress_warnings = ["myst.header"]

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples" / "gallery"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "abort_on_example_error": True,
}

write_references(HERE / "generated")
