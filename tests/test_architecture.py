"""The house rules of ``src/justering``, checked on its source: one folder per
concern, imports running one way (down the layers of docs/architecture.md), no
import cycle, development tools outside the production graph, no module much
over 500 lines, ``__all__`` in every public module."""

from __future__ import annotations

import ast
from collections import defaultdict
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "justering"

LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"errors"}),
    frozenset({"model"}),
    frozenset({"config", "home"}),
    frozenset({"documents"}),
    frozenset({"pades"}),
    frozenset({"ledger"}),
    frozenset({"archive", "mail", "identity", "webhooks"}),
    frozenset({"workflow"}),
    frozenset({"web"}),
    frozenset({"orchestration"}),
    frozenset({"devtools"}),
    frozenset({"cli"}),
)
"""The concerns, bottom first: a module imports only from lower layers and its own
folder (the order docs/architecture.md draws)."""

MAX_LINES = 600


def _concern(module: str) -> str:
    """``justering.workflow.advance`` -> ``workflow``; the package itself -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _layer(concern: str) -> int:
    for index, layer in enumerate(LAYERS):
        if concern in layer:
            return index
    raise AssertionError(f"justering.{concern} is in no layer of LAYERS")


def _module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


@cache
def _imports() -> dict[str, frozenset[str]]:
    """Each module's imports of other justering modules, wherever they stand
    (top level, inside functions, under TYPE_CHECKING)."""
    modules = _modules()
    found: dict[str, frozenset[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                base = node.module
                for alias in node.names:
                    candidate = f"{base}.{alias.name}"
                    targets.add(candidate if candidate in modules else base)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
        found[name] = frozenset(t for t in targets if t in modules and t != name)
    return found


def test_every_folder_is_a_concern_of_a_layer() -> None:
    concerns = {_concern(m) for m in _modules()} - {"", "__main__", "samples"}
    for concern in concerns:
        _layer(concern)
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert len(folders) >= 6, folders


def test_imports_run_down_the_layers() -> None:
    upward = []
    for module, targets in _imports().items():
        concern = _concern(module)
        if concern in ("", "__main__"):
            continue
        for target in targets:
            other = _concern(target)
            if other in ("", concern):
                continue
            if _layer(other) >= _layer(concern):
                upward.append(f"{module} imports {target}")
    assert upward == []


def test_no_import_cycle() -> None:
    graph = _imports()
    cycles: list[list[str]] = []
    state: dict[str, int] = defaultdict(int)  # 0 new, 1 on the path, 2 done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph.get(module, ())):
            if state[target] == 1:
                cycles.append([*path[path.index(target) :], target])
            elif state[target] == 0:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if state[module] == 0:
            visit(module)
    assert cycles == []


def test_development_tools_stay_out_of_the_production_graph() -> None:
    users = sorted(
        module
        for module, targets in _imports().items()
        if any(_concern(t) == "devtools" for t in targets)
        and _concern(module) not in ("devtools", "cli")
    )
    assert users == []


@pytest.mark.parametrize("module", sorted(_modules()))
def test_modules_stay_small_and_name_their_public_surface(module: str) -> None:
    path = _modules()[module]
    source = path.read_text("utf-8")
    assert source.count("\n") <= MAX_LINES, f"{module} has {source.count(chr(10))} lines"
    if path.name not in ("__init__.py", "__main__.py"):
        assert "\n__all__ = [" in source, f"{module} has no __all__"


def test_test_modules_have_unique_names() -> None:
    """pytest imports test modules by their base name (tests/ has no packages):
    two ``test_login.py`` in different folders break the collection of both."""
    tests = Path(__file__).resolve().parent
    names = [path.name for path in tests.rglob("test_*.py")]
    assert sorted(n for n in set(names) if names.count(n) > 1) == []
