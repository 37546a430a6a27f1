"""Sphinx configuration: Markdown pages through MyST; built in CI with -W."""

project = "backend-kernel-provisioner"
author = "backend-kernel-provisioner developers"
copyright = "2026, backend-kernel-provisioner developers"  # the footer shows it
extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
master_doc = "index"
exclude_patterns = ["_build", "examples/*.ipynb"]
html_theme = "alabaster"
myst_heading_anchors = 3
suppress_warnings = ["myst.xref_missing"]


def setup(app):
    """```mermaid blocks (the architecture picture) render as diagrams on GitHub; here they are
    shown as their source, since sphinxcontrib-mermaid is not a dependency."""
    from pygments.lexers.special import TextLexer

    app.add_lexer("mermaid", TextLexer)
