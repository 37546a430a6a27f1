"""The package's layout says where each piece runs, and the imports keep to it (issue 14).

These tests read the source only (no kernel starts): the import graph has no
cycle and points one way, no module grows past what a reader takes in at once,
and every language of the table has its recipe, kernelspec, docs section and
demo cells.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import re
from pathlib import Path

import pytest

from backend_kernel_provisioner.common.languages import LANGUAGES

PACKAGE = "backend_kernel_provisioner"
ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / PACKAGE

#: Each part and the parts it may import (besides itself). ``None``: anything (entry points, tools).
ALLOWED: dict[str, set[str] | None] = {
    "common": set(),
    "sidecar": {"common"},
    "kernels": {"common"},
    "drawing": set(),
    "server": {"common", "sidecar"},
    "install": {"common"},
    "integrations": {"common"},
    "agent": {"common", "install"},
    "launcher": {"common", "sidecar", "server"},
    "remote": {"common", "sidecar", "server"},
    "devtools": None,
    "": None,  # the package's own top-level modules: __init__, __main__, the python_kernel shim
}
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def part_of(module: str) -> str:
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 2 or (len(pieces) == 2 and (SOURCE / pieces[1]).is_dir()) else ""


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node except those under ``if TYPE_CHECKING:`` (type-only imports never run)."""
    nodes: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        nodes.append(node)
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
    return nodes


def imports_of(path: Path) -> set[str]:
    """Every module of the package that ``path`` imports at run time (anywhere in the file, lazily or not)."""
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import (the layout test reads absolute ones)"
            if node.module and node.module.split(".")[0] == PACKAGE:
                for alias in node.names:  # ``from pkg.part import module`` imports that module
                    candidate = f"{node.module}.{alias.name}"
                    found.add(candidate if importlib.util.find_spec(node.module) and _is_module(candidate)
                              else node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == PACKAGE}
    return found


def _is_module(name: str) -> bool:
    relative = Path(*name.split(".")[1:])
    return (SOURCE / relative).with_suffix(".py").is_file() or (SOURCE / relative / "__init__.py").is_file()


def sources() -> list[Path]:
    return sorted(SOURCE.rglob("*.py"))


@functools.cache
def import_graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) - {module_name(p)} for p in sources()}


def test_every_part_is_known() -> None:
    parts = {p.name for p in SOURCE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert parts == set(ALLOWED) - {""}, "add the new part to ALLOWED and to docs/architecture.md"


@pytest.mark.parametrize("part", [p for p, allowed in ALLOWED.items() if allowed is not None])
def test_imports_point_one_way(part: str) -> None:
    """Nothing next to the kernel imports the kernels; no recipe imports server code; common imports nothing."""
    allowed = {part, *(ALLOWED[part] or set())}
    wrong = [
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        if part_of(module) == part
        for target in targets
        if part_of(target) not in allowed and target != PACKAGE
    ]
    assert not wrong, "\n".join(wrong)


def test_import_graph_has_no_cycle() -> None:
    graph = import_graph()
    # A package's __init__ importing its own modules is how packages re-export; cycles through it count.
    visiting: list[str] = []
    done: set[str] = set()

    def visit(module: str) -> None:
        if module in done:
            return
        if module in visiting:
            cycle = visiting[visiting.index(module):] + [module]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        visiting.append(module)
        for target in sorted(graph.get(module, ())):
            if target in graph and not _is_parent_package(target, module):
                visit(target)
        visiting.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)


def _is_parent_package(target: str, module: str) -> bool:
    """Importing a name from one's own package (``from pkg.part import x`` inside pkg.part.y) is not a cycle
    when ``x`` is a module: that edge was already resolved to the module itself."""
    return module.startswith(target + ".")


def test_the_import_checker_sees_a_wrong_import(tmp_path: Path) -> None:
    """The checker itself: a sidecar module importing the kernels is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("from backend_kernel_provisioner.kernels.base import BackendKernel\n")
    assert part_of(next(iter(imports_of(bad)))) == "kernels"


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(SOURCE)))
def test_no_module_is_too_long(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines: split it by concept"


@pytest.mark.parametrize("key", list(LANGUAGES))
def test_each_language_is_one_recipe_and_one_table_entry(key: str) -> None:
    """Adding a language: a table entry plus a recipe module; generated kernelspec, docs section, demo cells."""
    spec = LANGUAGES[key]
    recipe = SOURCE / "kernels" / ("python/kernel.py" if key == "python" else f"languages/{key}.py")
    assert recipe.is_file(), f"no recipe module {recipe.relative_to(ROOT)}"
    if key != "python":
        assert f'LANGUAGES["{key}"]' in recipe.read_text(), f"{recipe.name} does not take its spec from the table"
    kernelspec = ROOT / "kernelspecs" / spec.spec_name
    assert (kernelspec / "kernel.json").is_file() and (kernelspec / "logo-64x64.png").is_file()
    headings = re.findall(r"^#{2,4} .+$", (ROOT / "docs" / "kernels.md").read_text(), flags=re.M)
    assert any(f"`{spec.spec_name}`" in h for h in headings), f"docs/kernels.md has no section for {spec.spec_name}"
    assert spec.demo and all(cell.strip() for cell in spec.demo), f"{key} has no demo cells"


def test_each_program_name_is_written_once() -> None:
    """A toolchain program's name lives in the table only (``lua5.4`` once), not in recipes or batch plans."""
    names = {n for spec in LANGUAGES.values() for n in (spec.key, spec.translator, spec.jupyter_language)}
    for spec in LANGUAGES.values():
        if not spec.program or spec.program in names | {"python3", "node", "java"}:
            continue  # also a language's name, or a word of prose and code
        users = [p.relative_to(ROOT) for p in sources() if f'"{spec.program}"' in p.read_text()]
        assert users == [Path(PACKAGE, "common", "languages.py")], f"{spec.program!r} is written in {users}"
