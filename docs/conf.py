"""Sphinx configuration of the course site (``make site``).

The site is built from the repository root (``sphinx-build -c docs . build/site``) so that the
lessons' relative links (``13_algorithms.ipynb``, ``../exercises/...``) resolve as they do on disk.
Notebooks are rendered with their stored outputs and never executed (``nb_execution_mode``).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

project = "course_lib: build your own RLlib on Ray"
author = "the course_lib authors"
copyright = "2026, the course_lib authors"

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx_copybutton",
]

root_doc = "docs/index"
include_patterns = [
    "docs/*.md",
    "notebooks/[0-9][0-9]_*.ipynb",
    "exercises/[0-9][0-9]_*.ipynb",
    "README.md",
    "BENCHMARKS.md",
]
exclude_patterns = [".venv", ".git", "build", "wheelhouse", "**/.ipynb_checkpoints"]

# Lessons are shown as stored: running 21 notebooks would take half an hour and start Ray.
nb_execution_mode = "off"
# Widget views need the widget state saved in the notebook; without it they show their text.
nb_render_markdown_format = "myst"
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
# A link to a file that is not a page (a .py, .yaml, the Makefile) opens the file itself.
myst_links_external_new_tab = False

autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"

html_theme = "sphinx_book_theme"
html_title = "course_lib"
html_theme_options = {
    "show_toc_level": 2,
    "use_download_button": True,
    "home_page_in_toc": True,
}
# Only the prompts of code cells; output is not copied.
copybutton_exclude = ".linenos, .gp, .go"
