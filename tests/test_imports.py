"""The import map of ``custom/``: packages import one another downhill only, with no cycle, and the network
package loads without the training engine."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
import types
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "custom"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The ``custom`` modules that the file at ``path`` imports, anywhere in it (inside functions too)."""
    name = _module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found |= {module} | {f"{module}.{alias.name}" for alias in node.names}
    return {m for m in found if m in modules and m != name}


def _room(module: str) -> str:
    """The node of the package-level map: ``custom.<package>``, or the top-level module itself."""
    return ".".join(module.split(".")[:2])


def package_imports() -> dict[str, set[str]]:
    """``{room: rooms it imports}`` over every module of ``custom/``."""
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {_room(m): set() for m in files if m != "custom"}
    for module, path in files.items():
        if module == "custom":  # the package's face reads only the version (custom.paths), tested below
            continue
        for imported in _imports(path, set(files)):
            if _room(imported) not in (_room(module), "custom"):
                graph[_room(module)].add(_room(imported))
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """A cycle of ``graph`` as a list of nodes (first repeated last), or ``[]``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str]:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [node, nxt] if nxt in path else [node, nxt]
            if nxt not in state and (found := visit(nxt, path + [node])):
                return found
        state[node] = 2
        return []

    for start in sorted(graph):
        if start not in state and (found := visit(start, [])):
            return found
    return []


def _single_modules(graph: dict[str, set[str]]) -> set[str]:
    return {room for room in graph if (PACKAGE / f"{room.split('.')[1]}.py").is_file()}


def test_no_cycle_between_packages_and_single_modules_are_the_lowest_layer():
    graph = package_imports()
    assert not _cycle(graph), f"import cycle between packages: {' -> '.join(_cycle(graph))}"
    singles = _single_modules(graph)
    assert {"custom.errors", "custom.keys", "custom.paths"} <= singles
    upward = {room: sorted(graph[room] - singles) for room in singles if graph[room] - singles}
    assert not upward, f"top-level modules import packages: {upward}"


def test_the_layers_named_in_the_architecture_import_downhill_only():
    """The trained model on disk is the lowest package; networks know nothing of the engine; nothing below deploy
    imports it."""
    graph = package_imports()
    assert not graph["custom.checkpoints"] - _single_modules(graph), graph["custom.checkpoints"]
    higher = {"custom.deploy", "custom.report", "custom.workflows"}
    forbidden = {
        "custom.networks": higher | {"custom.engine", "custom.transforms"},
        **{room: higher for room in ("custom.data", "custom.transforms", "custom.engine")},
    }
    wrong = {room: sorted(graph[room] & bad) for room, bad in forbidden.items() if graph[room] & bad}
    assert not wrong, f"imports running up a layer: {wrong}"


def test_importing_the_networks_loads_no_engine_module():
    code = (
        "import json, sys, custom.networks; print(json.dumps(sorted(m for m in sys.modules if m.startswith('custom'))))"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True,
                          env={"PYTHONPATH": str(REPO), "PATH": ""})  # fmt: skip
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "custom.networks" in loaded
    assert not [m for m in loaded if m.startswith(("custom.engine", "custom.deploy", "custom.transforms"))], loaded


def test_no_two_modules_share_a_name():
    """A module's file name says what it is, once in the package (``metrics.py`` twice was two different things)."""
    seen: dict[str, list[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        if path.name != "__init__.py":
            seen.setdefault(path.name, []).append(str(path.relative_to(REPO)))
    assert {name: paths for name, paths in seen.items() if len(paths) > 1} == {}


def _config_references(value) -> set[str]:
    """Every ``custom.<...>`` name a config value refers to, as a target or inside an expression."""
    if isinstance(value, dict):
        return set().union(*(_config_references(v) for v in value.values()), set())
    if isinstance(value, list):
        return set().union(*(_config_references(v) for v in value), set())
    if isinstance(value, str):
        return {word.rstrip("(") for word in value.replace("(", "( ").split() if word.startswith("custom.")}
    return set()


def test_configs_reach_project_code_through_package_faces():
    """Configs name ``custom.<package>.<Name>`` (or a top-level module's name), never a module inside a package."""
    deep = {}
    for config in (REPO / "bundle" / "configs").rglob("*.json"):
        for name in _config_references(json.loads(config.read_text())):
            parts = name.split(".")
            face = importlib.import_module(".".join(parts[:2]))
            if len(parts) > 3 or isinstance(getattr(face, parts[2], None), types.ModuleType):
                deep.setdefault(str(config.relative_to(REPO)), []).append(name)
    assert deep == {}


def test_the_package_face_imports_only_the_paths_module():
    """``import custom`` reads the bundle's version and loads no package (so a script's --help stays quick)."""
    assert _imports(PACKAGE / "__init__.py", {_module_name(p) for p in PACKAGE.rglob("*.py")}) == {"custom.paths"}


def test_no_cycle_between_files():
    """No module imports, directly or through others, a module that imports it back (imports inside functions
    count: a cycle that works only through import order or a late import is still a cycle)."""
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {module: _imports(path, set(files)) for module, path in files.items()}
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, f"import cycle: {' -> '.join(path[path.index(module):] + (module,))}"
        if module not in done:
            for imported in sorted(graph[module]):
                visit(imported, path + (module,))
            done.add(module)

    for module in sorted(graph):
        visit(module, ())
