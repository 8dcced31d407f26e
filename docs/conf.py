"""Sphinx configuration for wshandle's documentation: `bash scripts/docs.sh` builds it.

The C reference (docs/c-api/) and the porting tables (docs/_generated/) are generated from
include/wshandle.h before Sphinx reads anything (docs/_ext/wshandle_docs.py); the Python
reference comes from the package's docstrings through autodoc (the package loads the library
named by $WSHANDLE_LIBRARY, which scripts/docs.sh points at target/debug).
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(REPO / "python"))

import wshandle_docs  # noqa: E402

HEADER = wshandle_docs.generate(REPO)

project = "wshandle"
author = "the wshandle authors"
copyright = "the wshandle authors"
release = HEADER.by_name()["WSHANDLE_VERSION"].value.strip('"')
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.graphviz",
    "myst_parser",
    "wshandle_docs",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_generated", "_ext", "examples", "porting", "diagrams", "requirements.txt"]
templates_path: list[str] = []

# Every reference must resolve: nitpicky turns a dangling :c:func: or :py:class: into a warning,
# and the build runs with -W (warnings are errors).
nitpicky = True
nitpick_ignore = list(wshandle_docs.std_types()) + [
    # Type aliases of the Python package's annotations (defined under TYPE_CHECKING only).
    ("py:class", "Data"),
    ("py:class", "BytesLike"),
    ("py:class", "Headers"),
    # The type of wshandle.FROM_OPTION, recv's "use the connection's receive_timeout" default.
    ("py:class", "_Default"),
    ("py:class", "Handler"),
    ("py:class", "Piece"),
    # wshandle.asyncio's internals in its signatures (the per-loop queue, the blocking object)
    ("py:class", "CompletionQueue"),
    ("py:class", "_sync.WebSocket"),
    ("py:class", "_sync.Listener"),
]
default_role = "py:obj"  # the package's docstrings write `WebSocket.close` for references

# Markdown pages (the reports in docs/ and benches/): headings get anchors, so links such as
# conformance.md#section-7 are checked like rst references.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_default_options = {"members": True}

graphviz_output_format = "svg"
graphviz_dot_args = ["-Gfontname=sans-serif", "-Nfontname=sans-serif", "-Efontname=sans-serif"]

html_theme = "furo"
html_title = f"wshandle {release}"
html_static_path = ["_static"]
html_css_files = ["wshandle.css"]
html_last_updated_fmt = None
html_copy_source = False
html_show_sourcelink = False

# Man pages: one per function (`man 3 ws_close`) and wshandle(3) for the constants, written to
# target/docs/man/man3/ (MANPATH=target/docs/man); scripts/install.sh copies them from there.
man_pages = wshandle_docs.man_pages(HEADER)
man_make_section_directory = True
man_show_urls = False
