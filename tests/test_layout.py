"""The layout that keeps one rule in one place (README "Architecture"), checked statically.

* layers: core/ imports nothing of db/, services/, cli/ or pages/; db/ only core/; services/
  core/ and db/; pages/ never cli/; nothing imports pages/ but the app;
* no underscore name is imported from another module (``from m import _x`` or ``m._x``);
* the import graph, module-level and function-level imports alike, has no cycle;
* no module is longer than 800 lines; db/ never commits on its own.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from core.config import REPO_ROOT

PACKAGES = ("core", "db", "services", "cli", "pages")
MAX_LINES = 800
# What each layer may import from the project (besides itself).
ALLOWED = {
    "core": {"core"},
    "db": {"core", "db"},
    "services": {"core", "db", "services"},
    "cli": {"core", "db", "services", "cli"},
    "pages": {"core", "db", "services", "pages"},
    "app": {"core", "db", "services", "pages"},
    "serve": {"core", "services"},
}
# ``python -m core.cli`` is the documented entry point: these two files only hand over to cli/.
ENTRY_POINTS = {"core.cli", "core.__main__"}


def _sources() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((REPO_ROOT / pkg).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            rel = path.relative_to(REPO_ROOT).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    out["app"] = REPO_ROOT / "app.py"
    out["serve"] = REPO_ROOT / "serve.py"
    return out


SOURCES = _sources()


def _resolve(name: str) -> str | None:
    """The project module a dotted name refers to (the longest known prefix)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in SOURCES:
            return candidate
        parts.pop()
    return None


def _package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _imports(module: str) -> list[tuple[str, list[str], int]]:
    """(imported project module, names taken from it, line) for every import in a module,
    at any depth (function-level imports included)."""
    path = SOURCES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _resolve(alias.name)
                if target:
                    found.append((target, [], node.lineno))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = _package_of(module, path).split(".")
                pkg = pkg[: len(pkg) - node.level + 1]
                base = ".".join([*pkg, base] if base else pkg)
            for alias in node.names:
                sub = _resolve(f"{base}.{alias.name}")
                if sub == f"{base}.{alias.name}":  # a submodule
                    found.append((sub, [], node.lineno))
                else:
                    target = _resolve(base)
                    if target:
                        found.append((target, [alias.name], node.lineno))
    return found


def _layer(module: str) -> str:
    return module.split(".")[0]


def _with_packages(target: str) -> list[str]:
    """Importing a.b.c runs a/__init__ and a/b/__init__ first."""
    parts = target.split(".")
    return [".".join(parts[:k]) for k in range(1, len(parts) + 1) if ".".join(parts[:k]) in SOURCES]


def test_layers_import_only_what_they_may() -> None:
    bad = []
    for module in SOURCES:
        layer = _layer(module)
        for target, _, line in _imports(module):
            if module in ENTRY_POINTS and target.startswith("cli"):
                continue
            if _layer(target) not in ALLOWED[layer]:
                bad.append(f"{SOURCES[module].relative_to(REPO_ROOT)}:{line} imports {target}")
    assert not bad, "layer violations:\n" + "\n".join(bad)


def test_no_underscore_name_crosses_a_module() -> None:
    bad = []
    for module, path in SOURCES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if _resolve(a.name):
                        aliases[a.asname or a.name.split(".")[0]] = a.name
            elif isinstance(node, ast.ImportFrom) and node.module and _resolve(node.module):
                for a in node.names:
                    if a.name.startswith("_") and not a.name.startswith("__"):
                        bad.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno} imports {a.name} from {node.module}")
                    elif _resolve(f"{node.module}.{a.name}") == f"{node.module}.{a.name}":
                        aliases[a.asname or a.name] = f"{node.module}.{a.name}"
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                bad.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno} uses {node.value.id}.{node.attr}")
    assert not bad, "\n".join(bad)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_import_graph_has_no_cycle() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for module in SOURCES:
        own_packages = set(_with_packages(module))
        for target, _, _ in _imports(module):
            for step in _with_packages(target):
                if step != module and step not in own_packages:  # a package's own modules run inside it
                    graph[module].add(step)
    cycles = _cycles(graph)
    assert not cycles, "import cycles (module and function level):\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_no_module_is_too_long() -> None:
    long = {str(p.relative_to(REPO_ROOT)): n for p in SOURCES.values() if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_db_never_commits_on_its_own() -> None:
    bad = []
    for module, path in SOURCES.items():
        if _layer(module) != "db" or module == "db.engine":  # the session factory commits the scope it opens
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in ("commit", "rollback"):
                bad.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno} calls .{node.attr}()")
    assert not bad, "\n".join(bad)


def test_pages_hold_no_sql_and_no_orm() -> None:
    bad = []
    for module, path in SOURCES.items():
        if _layer(module) not in ("pages", "app", "serve"):
            continue
        for target, _, line in _imports(module):
            if target in ("db.models", "db.review_models", "db.student_models"):
                bad.append(f"{path.relative_to(REPO_ROOT)}:{line} imports {target}")
        text = path.read_text(encoding="utf-8")
        if "sqlalchemy" in text.replace("from sqlalchemy import Engine", ""):
            bad.append(f"{path.relative_to(REPO_ROOT)} uses sqlalchemy")
    assert not bad, "\n".join(bad)
