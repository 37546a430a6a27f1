"""docs/architecture.md and the README's layout match the package tree (issue 14 docs).

The module table in docs/architecture.md names every folder of the package and
every module at its top level, and everything it names exists; the README's
Layout table names every part; no page names a module path that is gone; the
import rules written in the docs are the ones tests/test_layout.py enforces.
These tests read files only (no kernel starts).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PACKAGE = "backend_kernel_provisioner"
ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / PACKAGE
DOCS = ROOT / "docs"
ARCHITECTURE = DOCS / "architecture.md"
README = ROOT / "README.md"

#: Modules of the package root that are not parts of their own (the version; ``python -m``).
ROOT_MODULES_NOT_LISTED = {"__init__.py", "__main__.py"}
#: A file name in the modules column (``provisioner.py``, ``lua_loader.lua``) or a folder (``services/``).
FILE_TOKEN = re.compile(r"^[\w-]+(?:\.\w+|/)$")


def code_spans(text: str) -> list[str]:
    """The inline code of a Markdown fragment (``x`` and ```` ``x`` ````)."""
    return [m.group(2).strip() for m in re.finditer(r"(`+)(.+?)\1", text)]


def section(path: Path, heading: str) -> str:
    """The text under ``heading`` (a ``## `` line) up to the next heading of that level or higher."""
    text = path.read_text()
    match = re.search(rf"^## {re.escape(heading)}\s*$(.*?)(?=^#{{1,2}} |\Z)", text, flags=re.M | re.S)
    assert match, f"{path.relative_to(ROOT)} has no '## {heading}' section"
    return match.group(1)


def table_rows(text: str) -> list[list[str]]:
    """The body rows of the first Markdown table in ``text``, as lists of cell texts."""
    rows: list[list[str]] = []
    lines = iter(text.splitlines())
    for line in lines:
        if line.startswith("|"):
            next(lines)  # the |---| separator under the header
            break
    else:
        return rows
    for line in lines:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
    return rows


def tree_parts() -> set[str]:
    """Every folder of the package (``kernels/languages/``) and every module at its top level."""
    folders = {
        f"{p.relative_to(SOURCE).as_posix()}/"
        for p in SOURCE.rglob("*")
        if p.is_dir() and "__pycache__" not in p.parts and not any(s.startswith(".") for s in p.parts)
    }
    modules = {p.name for p in SOURCE.glob("*.py")} - ROOT_MODULES_NOT_LISTED
    return folders | modules


def top_level_parts() -> set[str]:
    return {part for part in tree_parts() if part.count("/") <= 1}


def module_table() -> dict[str, list[str]]:
    """docs/architecture.md's module table: path (first column) -> the code spans of its last column."""
    rows = table_rows(section(ARCHITECTURE, "Modules"))
    assert rows, "docs/architecture.md: the Modules section has no table"
    table: dict[str, list[str]] = {}
    for row in rows:
        paths = code_spans(row[0])
        assert len(paths) == 1, f"docs/architecture.md module table: one path per row, got {row[0]!r}"
        assert paths[0] not in table, f"docs/architecture.md module table: {paths[0]} twice"
        table[paths[0]] = code_spans(row[-1]) if len(row) > 1 else []
    return table


def test_the_tree_walk_sees_the_layout() -> None:
    """The walk itself: the parts named in the issue are found, caches and root modules are not."""
    parts = tree_parts()
    assert {"server/", "sidecar/", "sidecar/services/", "kernels/", "kernels/languages/", "common/"} <= parts
    assert not any("__pycache__" in p or p in ROOT_MODULES_NOT_LISTED for p in parts)


def test_module_table_names_every_folder_and_top_level_module() -> None:
    missing = sorted(tree_parts() - set(module_table()))
    assert not missing, f"docs/architecture.md's module table does not name {missing}: add a row for each"


def test_everything_the_module_table_names_exists() -> None:
    gone: list[str] = []
    for path, spans in module_table().items():
        target = SOURCE / path
        if not (target.is_dir() if path.endswith("/") else target.is_file()):
            gone.append(path)
            continue
        if path.endswith("/"):  # the modules column names files of this row's folder
            gone += [f"{path}{name}" for name in spans
                     if FILE_TOKEN.match(name) and not (target / name).exists()]
    assert not gone, f"docs/architecture.md's module table names what is not in the tree: {gone}"


def test_architecture_has_the_picture() -> None:
    text = ARCHITECTURE.read_text()
    assert re.search(r"^```mermaid\n.*?flowchart.*?^```$", text, flags=re.M | re.S), "no Mermaid picture"
    for word in ("Jupyter server process", "kernel process", "next to the kernel", "agent"):
        assert word in text


def test_readme_layout_matches_the_tree() -> None:
    named: set[str] = set()
    gone: list[str] = []
    for row in table_rows(section(README, "Layout")):
        for path in code_spans(row[0]):
            if not (ROOT / path).exists():
                gone.append(path)
            if path.startswith(f"{PACKAGE}/"):
                named.add(path.removeprefix(f"{PACKAGE}/"))
    assert not gone, f"README.md's Layout table names what does not exist: {gone}"
    missing = sorted(top_level_parts() - named)
    assert not missing, f"README.md's Layout table does not name {missing}"


def _markdown_pages() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


@pytest.mark.parametrize("page", _markdown_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_pages_name_no_module_path_that_is_gone(page: Path) -> None:
    """``server/provisioner.py``, ``backend_kernel_provisioner/kernels/`` and ``backend_kernel_provisioner.x``
    must name parts that exist (catches the paths of before the layout change)."""
    text = page.read_text()
    parts = {p.rstrip("/").removesuffix(".py") for p in top_level_parts()} | {"__main__"}
    stale: list[str] = []
    for span in code_spans(text):
        path = span.removeprefix(f"{PACKAGE}/")
        first = path.split("/", 1)[0]
        names_ours = span.startswith(f"{PACKAGE}/") or ("/" in path and first in parts)
        if names_ours and "<" not in path and " " not in path and not (SOURCE / path).exists():
            stale.append(span)
    for match in re.finditer(rf"\b{PACKAGE}\.(\w+)", text):
        if match.group(1) not in parts:
            stale.append(match.group(0))
    assert not stale, f"{page.relative_to(ROOT)} names module paths that are not in the tree: {sorted(set(stale))}"


def test_import_rules_in_the_docs_are_the_enforced_ones() -> None:
    rows = table_rows(section(ARCHITECTURE, "Import rules"))
    folders = {p for p in top_level_parts() if p.endswith("/")}
    documented: dict[str, set[str] | None] = {}
    for row in rows:
        (part,) = code_spans(row[0])
        allowed = row[1] if len(row) > 1 else ""
        documented[part] = None if "any part" in allowed else {s for s in code_spans(allowed) if s in folders}
    missing = sorted(folders - set(documented))
    assert not missing, f"docs/architecture.md's import rules say nothing of {missing}"
    try:
        from .test_layout import ALLOWED
    except ImportError:
        pytest.skip("tests/test_layout.py (the enforced import rules) is not here")
    enforced = {f"{part}/": None if rules is None else {f"{r}/" for r in rules}
                for part, rules in ALLOWED.items() if part}
    assert {p: documented[p] for p in enforced} == enforced, (
        "docs/architecture.md's import rules differ from ALLOWED in tests/test_layout.py"
    )
