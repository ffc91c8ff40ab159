"""Read scenario files: YAML -> overrides -> absolute paths -> a validated ``Scenario``.

``load(path)`` and ``loads(text)`` return a ``Scenario`` or raise one ``ScenarioError`` listing
every problem with its field path and file line (``fleet[0].arrivals.rate_per_s: must be > 0,
got -5 (line 14)``); problems inside a ``--set`` override say so instead of naming a line.
YAML syntax errors, a top level that is not a mapping and duplicate keys in one mapping (which
PyYAML would silently collapse) are errors too. The sweep block is expanded once so that every
point is validated.

Relative file paths in a scenario (``file:`` link traces, trace arrivals' ``path``,
``replay_from``, ``codec_costs``, also inside sweep values) are made absolute against the
scenario file's directory (``base_dir`` for ``loads``, default the current directory); paths
given in overrides are relative to the current directory, like any command-line argument. The
returned scenario never depends on the working directory.

Paths (in overrides and sweep keys) are read by ``scenarios.paths``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from scenarios.errors import (
    PathTuple,
    Problem,
    ScenarioError,
    format_path,
    problems_from_validation,
    show_typed,
)
from scenarios.paths import parse_path, set_path
from scenarios.schema import Scenario
from scenarios.sweep import expand

_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Loader(yaml.SafeLoader):  # type: ignore[misc]
    """SafeLoader read as YAML 1.2 does in two places: exponent floats without a dot
    (``2e9``, ``1e-3``) are numbers, and only ``true``/``false`` are booleans, so that keys
    and values such as ``on`` (``servers.decode.on``), ``off``, ``yes`` and ``no`` stay
    strings; YAML 1.1 would read the first as strings and the rest as booleans."""


_BOOL = "tag:yaml.org,2002:bool"
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load(path: str | Path, overrides: Sequence[str] = ()) -> Scenario:
    """Read and validate the scenario file at ``path``, then apply ``overrides`` (``--set``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ScenarioError(
            [Problem("", f"cannot read the scenario file: {why}")], str(path)
        ) from exc
    return loads(text, str(path), overrides, Path(os.path.abspath(path)).parent)


def loads(
    text: str,
    source: str = "<string>",
    overrides: Sequence[str] = (),
    base_dir: Path | None = None,
) -> Scenario:
    """Validate scenario YAML ``text``; ``source`` names it in errors, ``base_dir`` anchors its
    relative paths (default: the current directory)."""
    data, lines = _parse(text, source)
    data, origins = _apply_overrides(data, overrides, source)
    data = _resolve(data, (), Path(os.path.abspath(base_dir or Path.cwd())))
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        found = problems_from_validation(exc, data)
        problems = [_locate(path, message, lines, origins) for path, message in found]
        raise ScenarioError(problems, source) from exc
    try:
        expand(scenario)
    except ScenarioError as exc:
        problems = [_locate(parse_path(p.path), p.message, lines, origins) for p in exc.problems]
        raise ScenarioError(problems, source) from exc
    return scenario


def parse_override(text: str) -> tuple[str, Any]:
    """``"fleet[0].count=100"`` -> ``("fleet[0].count", 100)``; the value is read as YAML, so
    ``5`` is an int, ``0.5`` a float, ``fp16`` a string and ``{id: slicer}`` a mapping."""
    path, sep, raw = text.partition("=")
    path = path.strip()
    if not sep or not path:
        raise ScenarioError.at("", f"--set takes path=value, e.g. fleet[0].count=100; got {text!r}")
    parse_path(path)
    try:
        value = yaml.load(raw, Loader=_Loader)
    except yaml.YAMLError as exc:
        why = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError.at(path, f"cannot read the value {raw!r} as YAML: {why}") from exc
    return path, value


def _parse(text: str, source: str) -> tuple[dict[str, Any], dict[PathTuple, int]]:
    """The YAML's data and the 1-based line of every key and list item in it."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise ScenarioError([Problem("", "the file is empty; a scenario is a mapping")], source)
        lines: dict[PathTuple, int] = {(): node.start_mark.line + 1}
        problems: list[Problem] = []
        _walk(node, (), lines, problems, set())
        if problems:
            raise ScenarioError(problems, source)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        why = "; ".join(str(part) for part in (exc.problem, exc.context) if part)
        column = f" at column {mark.column + 1}" if mark else ""
        line = mark.line + 1 if mark else None
        raise ScenarioError([Problem("", f"invalid YAML{column}: {why}", line)], source) from exc
    except yaml.YAMLError as exc:
        raise ScenarioError([Problem("", f"invalid YAML: {exc}")], source) from exc
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ScenarioError(
            [
                Problem(
                    "",
                    "the top level must be a mapping of scenario keys (name, model, fleet, ...); "
                    f"got {show_typed(data)}",
                    lines[()],
                )
            ],
            source,
        )
    return data, lines


def _walk(
    node: yaml.Node,
    path: PathTuple,
    lines: dict[PathTuple, int],
    problems: list[Problem],
    active: set[int],
) -> None:
    """Record lines below ``node`` and report keys that appear twice in one mapping."""
    if id(node) in active:  # a recursive alias
        return
    active.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE_TAG:
                continue
            key, line = key_node.value, key_node.start_mark.line + 1
            if key in first:
                problems.append(
                    Problem(
                        format_path((*path, key)),
                        f"duplicate key {key!r}: first on line {first[key]}, again on line "
                        f"{line}; YAML would keep only the last, so remove one",
                        line,
                    )
                )
                continue
            first[key] = lines[(*path, key)] = line
            _walk(value_node, (*path, key), lines, problems, active)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            _walk(item, (*path, index), lines, problems, active)
    active.discard(id(node))


def _apply_overrides(
    data: dict[str, Any], overrides: Sequence[str], source: str
) -> tuple[dict[str, Any], list[tuple[PathTuple, str]]]:
    """``data`` with every override applied, and (path, origin) of each override."""
    origins: list[tuple[PathTuple, str]] = []
    problems: list[Problem] = []
    for text in overrides:
        origin = f"from --set {text}"
        try:
            path, value = parse_override(text)
            steps = parse_path(path)
            data = set_path(data, path, _resolve(value, steps, Path.cwd()))
        except ScenarioError as exc:
            problems += [Problem(p.path, p.message, None, origin) for p in exc.problems]
            continue
        origins.append((steps, origin))
    if problems:
        raise ScenarioError(problems, source)
    return data, origins


def _locate(
    path: PathTuple, message: str, lines: dict[PathTuple, int], origins: list[tuple[PathTuple, str]]
) -> Problem:
    """A problem at ``path``: from the last override that set it or a part of it, else at the
    line of the deepest node on ``path`` that the file has."""
    for steps, origin in reversed(origins):
        if path[: len(steps)] == steps:
            return Problem(format_path(path), message, None, origin)
    depth = len(path)
    while path[:depth] not in lines:
        depth -= 1
    return Problem(format_path(path), message, lines[path[:depth]])


def _resolve(value: Any, steps: PathTuple, base_dir: Path) -> Any:
    """``value`` (found at ``steps``) with relative file paths made absolute against
    ``base_dir``; sweep entries are resolved at the paths they set."""
    if steps == ("sweep",) and isinstance(value, dict):
        return {key: _resolve_entry(key, values, base_dir) for key, values in value.items()}
    if isinstance(value, dict):
        return {key: _resolve(item, (*steps, key), base_dir) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolve(item, (*steps, index), base_dir) for index, item in enumerate(value)]
    if isinstance(value, str):
        match steps:
            case ("replay_from",) | ("codec_costs",) | ("fleet", int(), "arrivals", "path"):
                return _absolute(value, base_dir)
            case ("fleet", int(), "uplink" | "downlink", "trace") | (
                "network",
                "cells",
                int(),
                "uplink" | "downlink",
                "trace",
            ) if value.startswith("file:"):
                return "file:" + _absolute(value.removeprefix("file:"), base_dir)
    return value


def _resolve_entry(key: str, values: Any, base_dir: Path) -> Any:
    if key == "zip" and isinstance(values, dict):
        return {k: _resolve_entry(k, v, base_dir) for k, v in values.items()}
    if not isinstance(values, list):
        return values
    try:
        steps = parse_path(key)
    except ScenarioError:
        return values  # expand reports the bad path
    return [_resolve(value, steps, base_dir) for value in values]


def _absolute(path: str, base_dir: Path) -> str:
    return os.path.normpath(base_dir / Path(path).expanduser())
