"""The shape of the code: no import cycles among the modules of our packages, counting every
import (inside functions and ``TYPE_CHECKING`` blocks too), and no package module over 400
lines or function over 60. ``lint-imports`` checks the layers between packages and the
cycles between siblings; this test checks module against module, parents and children included,
and names every cycle it finds."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("codec", "models", "scenarios", "records", "server", "fleet", "analysis", "cli")

Graph = dict[str, set[str]]


def import_graph() -> Graph:
    """Module -> the modules of our packages it imports directly."""
    built = grimp.build_graph(*PACKAGES, cache_dir=None)
    return {m: set(built.find_modules_directly_imported_by(m)) for m in sorted(built.modules)}


def strongly_connected(graph: Graph) -> Iterator[list[str]]:
    """Tarjan's strongly connected components, iteratively; each is sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            child = next(successors, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
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
                yield sorted(component)


def shortest_cycle(graph: Graph, members: list[str]) -> list[str]:
    """A shortest cycle through the first member, within its component (breadth first)."""
    start, inside = members[0], set(members)
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & inside):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [*reversed(path), start]
                if child not in parents:
                    parents[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"{members} is not a cycle")


def cycles(graph: Graph) -> list[str]:
    """One line per tangle (strongly connected component): a shortest cycle through it, and the
    other modules tangled in it if any."""
    found = []
    for members in strongly_connected(graph):
        if len(members) == 1 and members[0] not in graph[members[0]]:
            continue
        path = shortest_cycle(graph, members)
        rest = sorted(set(members) - set(path))
        found.append(" -> ".join(path) + (f" (also tangled: {', '.join(rest)})" if rest else ""))
    return sorted(found)


def test_cycle_finder_names_each_cycle() -> None:
    graph: Graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}, "f": {"a"}}
    assert cycles(graph) == ["a -> b -> c -> a", "e -> e"]


def test_no_import_cycles() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles (break each; see README Development):\n" + "\n".join(found)


MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _package_files() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def test_no_package_module_is_over_400_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in _package_files()
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}, f"split these modules by concept: {long}"


def test_no_function_is_over_60_lines() -> None:
    long = {}
    for p in _package_files():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{p.relative_to(ROOT)}:{node.lineno} {node.name}"] = lines
    assert long == {}, f"break these functions up: {long}"
