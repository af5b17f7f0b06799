"""No import circle inside submitter/: between modules, nor between its packages.

A reader following a name to where it is defined should never climb back to where they
started; a package is a floor that the floors below it do not import. The imports counted are a module's own (module level, `if TYPE_CHECKING:` blocks
included: a type is a dependency too); an import inside a function is a deliberate late one
and is left out. `from package import module` is an import of that module alone.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import submitter

PACKAGE = Path(submitter.__file__).parent


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _module_level(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """The imports a module runs (or declares for its types) as it loads."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, (ast.If, ast.Try)):
            yield from _module_level(node.body + node.orelse)
            if isinstance(node, ast.Try):
                yield from _module_level(node.finalbody)
                for handler in node.handlers:
                    yield from _module_level(handler.body)


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    imported = set()
    for node in _module_level(ast.parse(path.read_text(encoding="utf-8")).body):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            up = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join([*up, base] if base else up)
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            imported.add(submodule if submodule in modules else base)
    return {m for m in imported if m in modules and m != name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _package(module: str) -> str | None:
    """`submitter.config.models` -> `submitter.config`; None for a top-level module."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 or module in _PACKAGES else None


_PACKAGES = {
    ".".join(path.relative_to(PACKAGE.parent).parts)
    for path in PACKAGE.iterdir()
    if (path / "__init__.py").is_file()
}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle of each strongly connected group of nodes, as a path back to its start."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for after in sorted(graph.get(node, ())):
            if after not in index:
                visit(after)
                low[node] = min(low[node], low[after])
            elif after in stack:
                low[node] = min(low[node], index[after])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_path_back(graph, group) for group in groups]


def _path_back(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """The shortest way from the group's first node back to itself, inside the group."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for after in sorted(graph[node] & group):
                if after == start:
                    return [*paths[node], start]
                if after not in paths:
                    paths[after] = [*paths[node], after]
                    following.append(after)
        frontier = following
    return sorted(group)


def test_no_module_imports_itself_back() -> None:
    assert [" -> ".join(c) for c in _cycles(_graph())] == []


def test_no_package_imports_itself_back() -> None:
    """Between the packages (config, render, schedulers, store, ...): one imports another
    when one of its modules imports one of the other's."""
    packages: dict[str, set[str]] = {}
    for module, imported in _graph().items():
        package = _package(module)
        if package is not None:
            outside = {p for p in map(_package, imported) if p is not None} - {package}
            packages.setdefault(package, set()).update(outside)
    assert [" -> ".join(c) for c in _cycles(packages)] == []


def test_a_circle_is_found() -> None:
    """The search itself: a graph with a circle gives that circle."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}
    assert _cycles(graph) == [["a", "b", "c", "a"]]
