"""Paths into a scenario's data, as overrides (``--set``) and sweep keys write them.

A path addresses the data as ``a.b[0].c``: keys separated by dots, list indices in brackets.
Keys containing dots are not supported, except below ``sweep``, whose keys are themselves paths:
``sweep.fleet[0].count`` is the sweep entry ``fleet[0].count`` and ``sweep.zip.codec.id`` the zip
entry ``codec.id``. Errors are ``ScenarioError``s that name the path.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from scenarios.errors import PathTuple, ScenarioError, format_path, has_item, show_typed

_KEY = re.compile(r"([^.\[\]=\s]+)((?:\[\d+\])*)")


def parse_path(text: str) -> PathTuple:
    """``"fleet[0].arrivals.rate_per_s"`` -> ``("fleet", 0, "arrivals", "rate_per_s")``."""
    if not isinstance(text, str):
        raise ScenarioError.at(
            str(text), f"a path is text like fleet[0].count, got {show_typed(text)}"
        )
    head, _, rest = text.partition(".")
    if head == "sweep" and rest:
        return ("sweep", "zip", rest[4:]) if rest.startswith("zip.") else ("sweep", rest)
    steps: list[str | int] = []
    for piece in text.split("."):
        match = _KEY.fullmatch(piece)
        if match is None:
            raise ScenarioError.at(
                text,
                "cannot read this path: write keys separated by '.' and list indices in "
                "brackets, e.g. fleet[0].arrivals.rate_per_s (keys containing '.' are not "
                "supported)",
            )
        steps.append(match.group(1))
        steps += [int(index) for index in re.findall(r"\d+", match.group(2))]
    return tuple(steps)


def set_path(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``data`` with ``value`` at ``path``. Missing mapping keys (and nulls on
    the way) become new mappings, for the schema to judge; list indices must exist."""
    result = copy.deepcopy(data)
    set_in_place(result, parse_path(path), copy.deepcopy(value))
    return result


def set_in_place(data: dict[str, Any], steps: PathTuple, value: Any) -> None:
    """Put ``value`` at ``steps`` inside ``data`` itself (``set_path`` without the copies)."""
    node: Any = data
    for depth, part in enumerate(steps):
        where = format_path(steps[:depth]) or "the top level"
        if isinstance(part, int):
            if not isinstance(node, list):
                raise ScenarioError.at(
                    format_path(steps), f"{where} is {show_typed(node)}, so it has no item [{part}]"
                )
            if not has_item(node, part):
                raise ScenarioError.at(
                    format_path(steps),
                    f"{where} has {len(node)} item(s), so [{part}] does not exist; change an "
                    f"existing item, or set the whole list ({where}=[...])",
                )
        elif not isinstance(node, dict):
            raise ScenarioError.at(
                format_path(steps), f"{where} is {show_typed(node)}, so it has no key {part!r}"
            )
        if depth == len(steps) - 1:
            node[part] = value
        elif isinstance(steps[depth + 1], str) and (not has_item(node, part) or node[part] is None):
            node[part] = {}
        elif not has_item(node, part):
            raise ScenarioError.at(
                format_path(steps),
                f"{format_path(steps[: depth + 1])} does not exist, so it has no items to change; "
                f"set the whole list ({format_path(steps[: depth + 1])}=[...])",
            )
        node = node[part]
