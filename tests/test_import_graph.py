"""The package's import graph is one-way: no module reaches, directly or through others, back to itself.

Every ``hardmatch/**/*.py`` is parsed with ``ast``; every import counts, wherever it stands (top
level, inside a function, under ``if TYPE_CHECKING``). Relative imports are resolved against the
importing module; ``from pkg import name`` is an import of the submodule ``pkg.name`` when such a
module exists and of ``pkg`` (its ``__init__``) otherwise. Importing ``a.b.c`` is counted as an
edge to ``a.b.c`` only: the parent packages' ``__init__`` files run first, but they are the
package's front, not a layer the module depends on.

``import_cycles(package_dir)`` is the checker; ``python tests/test_import_graph.py [DIR]`` prints
the circles of any package directory (exit 1 when there are some).

Rooms: the package's folders are the pipeline's rooms, in the order :data:`ROOMS` declares (lowest
first; the modules at the package root are the front, above every room). A module may import its
own room and the rooms below it, never one above: ``upward_imports`` lists the edges that break the
order, and ``folder_cycles`` the circles of the folder-level graph (every folder, sub-folders too).
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "hardmatch"


def _module_name(path: Path, package_dir: Path) -> str:
    """Dotted name of ``path`` inside the package rooted at ``package_dir``."""
    parts = [package_dir.name, *path.relative_to(package_dir).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve_from(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """Absolute module that ``from <node.module> import ...`` names, relative levels resolved."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def import_graph(package_dir: Path | str) -> dict[str, set[str]]:
    """Module name -> the package modules it imports (anywhere in its source)."""
    package_dir = Path(package_dir).resolve()
    files = {
        _module_name(p, package_dir): p for p in sorted(package_dir.rglob("*.py")) if "__pycache__" not in p.parts
    }
    root = package_dir.name
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                source = _resolve_from(node, name, is_package)
                for alias in node.names:
                    sub = f"{source}.{alias.name}"
                    targets.append(sub if sub in files else source)
            for target in targets:
                # `import hardmatch.a.b` names hardmatch.a.b; an unknown tail (an attribute) falls back to its module.
                while target and target not in files and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target in files and (target == root or target.startswith(root + ".")) and target != name:
                    graph[name].add(target)
    return graph


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's components of ``graph`` (iterative), each as a sorted list of module names."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def _shortest_cycle(graph: dict[str, set[str]], start: str, members: set[str]) -> list[str]:
    """A shortest path start -> ... -> start inside ``members`` (breadth first)."""
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & members):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if child not in previous:
                    previous[child] = node
                    following.append(child)
        frontier = following
    return [start]


def import_cycles(package_dir: Path | str) -> list[dict]:
    """Every import circle of the package: one entry per strongly connected set of modules.

    Each entry: ``modules`` (the sorted members), ``cycle`` (one shortest circle through the first
    member, as a list that ends where it starts) and ``pairs`` (modules that import each other directly).
    """
    graph = import_graph(package_dir)
    found = []
    for component in _strongly_connected(graph):
        if len(component) < 2:
            continue
        members = set(component)
        pairs = sorted(
            (a, b) for a in component for b in graph[a] & members if a < b and a in graph[b]
        )
        found.append({"modules": component, "cycle": _shortest_cycle(graph, component[0], members), "pairs": pairs})
    return found


def format_cycles(cycles: list[dict]) -> str:
    """Human-readable lines for :func:`import_cycles`' result."""
    lines = []
    for number, entry in enumerate(cycles, 1):
        lines.append(f"circle {number}: {len(entry['modules'])} modules: {', '.join(entry['modules'])}")
        lines.append("  e.g. " + " -> ".join(entry["cycle"]))
        for a, b in entry["pairs"]:
            lines.append(f"  {a} <-> {b}")
    return "\n".join(lines)


def test_package_has_no_import_circles():
    cycles = import_cycles(PACKAGE_DIR)
    assert not cycles, "import circles in hardmatch/:\n" + format_cycles(cycles)


def test_checker_finds_circles(tmp_path):
    """The checker sees lazy, relative and ``from pkg import submodule`` imports."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from .a import f\n")
    (pkg / "a.py").write_text("def f():\n    from .sub import b\n    return b\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("from pkg import c\n")
    (pkg / "c.py").write_text("import pkg.a\n")
    (pkg / "d.py").write_text("from pkg import a, e\n")
    (pkg / "e.py").write_text("from pkg.a import f\n")
    graph = import_graph(pkg)
    assert graph["pkg"] == {"pkg.a"}
    assert graph["pkg.a"] == {"pkg.sub.b"}
    assert graph["pkg.sub.b"] == {"pkg.c"}
    assert graph["pkg.d"] == {"pkg.a", "pkg.e"}
    cycles = import_cycles(pkg)
    assert [c["modules"] for c in cycles] == [["pkg.a", "pkg.c", "pkg.sub.b"]]
    assert cycles[0]["cycle"] == ["pkg.a", "pkg.sub.b", "pkg.c", "pkg.a"]
    (pkg / "c.py").write_text("X = 1\n")
    assert import_cycles(pkg) == []


#: The rooms of hardmatch/, lowest first (docs/architecture.md explains each); the root modules come last.
ROOMS = ("core", "nets", "features", "matching", "geometry", "datasets", "twoview", "scene", "evaluation", "train")
FRONT = "<front>"


def room_of(module: str) -> str:
    """``hardmatch.features.frames`` -> ``features``; modules at the package root -> :data:`FRONT`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in ROOMS) else FRONT


def folder_of(module: str, package_dir: Path) -> str:
    """The folder (package) a module sits in: ``hardmatch.scene.hloc_files`` -> ``hardmatch.scene``; a
    package's ``__init__`` sits in its own folder."""
    path = Path(package_dir, *module.split(".")[1:])
    return module if path.is_dir() else module.rsplit(".", 1)[0]


def upward_imports(package_dir: Path | str, rooms: tuple[str, ...] = ROOMS) -> list[tuple[str, str]]:
    """Edges (importer, imported) from a room to a room above it in ``rooms`` (the front above all)."""
    order = {room: rank for rank, room in enumerate((*rooms, FRONT))}
    graph = import_graph(package_dir)
    found = []
    for module, targets in graph.items():
        for target in targets:
            source_room, target_room = room_of(module), room_of(target)
            if source_room not in order or target_room not in order:
                found.append((module, target))  # a folder the declared order does not know
            elif order[target_room] > order[source_room]:
                found.append((module, target))
    return sorted(found)


def folder_cycles(package_dir: Path | str) -> list[list[str]]:
    """Circles between folders (each a sorted list of folder names), counting every module import."""
    package_dir = Path(package_dir).resolve()
    folders: dict[str, set[str]] = {}
    for module, targets in import_graph(package_dir).items():
        source = folder_of(module, package_dir)
        folders.setdefault(source, set())
        for target in targets:
            folder = folder_of(target, package_dir)
            folders.setdefault(folder, set())
            if folder != source:
                folders[source].add(folder)
    return [component for component in _strongly_connected(folders) if len(component) > 1]


def test_rooms_import_only_rooms_below():
    found = upward_imports(PACKAGE_DIR)
    assert not found, "imports that go up the rooms (" + " < ".join((*ROOMS, "front")) + "):\n" + \
        "\n".join(f"  {a} ({room_of(a)}) -> {b} ({room_of(b)})" for a, b in found)


def test_no_circles_between_folders():
    assert folder_cycles(PACKAGE_DIR) == []


def test_package_root_is_only_the_front():
    root_modules = sorted(p.name for p in PACKAGE_DIR.glob("*.py"))
    assert len(root_modules) <= 8, root_modules
    folders = sorted(p.name for p in PACKAGE_DIR.iterdir() if (p / "__init__.py").exists())
    assert folders == sorted(ROOMS), f"every folder is a declared room: {folders} against {sorted(ROOMS)}"


def test_no_module_is_over_450_lines():
    long = {str(p.relative_to(PACKAGE_DIR)): n for p in PACKAGE_DIR.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 450}
    assert not long, long


def test_layer_checker_finds_an_upward_import(tmp_path):
    """The room order and the folder circles are seen through lazy and relative imports."""
    pkg = tmp_path / "pkg"
    for room in ("low", "high"):
        (pkg / room).mkdir(parents=True)
        (pkg / room / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "high" / "h.py").write_text("from ..low import l\n")
    (pkg / "low" / "l.py").write_text("X = 1\n")
    assert upward_imports(pkg, rooms=("low", "high")) == []
    assert folder_cycles(pkg) == []
    (pkg / "low" / "l.py").write_text("def f():\n    from ..high.h import l\n")
    assert upward_imports(pkg, rooms=("low", "high")) == [("pkg.low.l", "pkg.high.h")]
    assert folder_cycles(pkg) == [["pkg.high", "pkg.low"]]


if __name__ == "__main__":
    found = import_cycles(sys.argv[1] if len(sys.argv) > 1 else PACKAGE_DIR)
    print(format_cycles(found) if found else "no import circles")
    sys.exit(1 if found else 0)
