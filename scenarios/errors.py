"""How scenario problems are represented and phrased.

``ScenarioError`` carries every ``Problem`` found in a scenario at once; each problem names a
field path written ``a.b[0].c``, says what was wrong and what was expected, and where it came
from: a file line or a ``--set`` override. ``problems_from_validation`` turns a pydantic
``ValidationError`` into such problems: paths hold only real keys of the data (discriminator
tags and validator names are dropped) and messages are ours, e.g. ``must be > 0, got -5``.
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from scenarios.schema import NAME_PATTERN, FieldError, Scenario

PathTuple = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a scenario: ``path`` like ``fleet[0].count`` ('' for the whole
    file), a message, and where it came from (a 1-based ``line``, or ``origin`` such as
    ``from --set fleet[0].count=5``)."""

    path: str
    message: str
    line: int | None = None
    origin: str | None = None

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line else f" ({self.origin})" if self.origin else ""
        return f"{self.path}: {self.message}{where}" if self.path else f"{self.message}{where}"


class ScenarioError(ValueError):
    """A scenario is invalid. ``problems`` lists everything found; ``str`` gives one line per
    problem, after the source file's name when known."""

    def __init__(self, problems: Sequence[Problem], source: str | None = None) -> None:
        if not problems:
            raise ValueError("a ScenarioError needs at least one problem")
        super().__init__(list(problems), source)
        self.problems: list[Problem] = list(problems)
        self.source = source

    @classmethod
    def at(cls, path: str, message: str, line: int | None = None) -> ScenarioError:
        """An error with a single problem."""
        return cls([Problem(path, message, line)])

    def __str__(self) -> str:
        prefix = f"{self.source}: " if self.source else ""
        if len(self.problems) == 1:
            return f"{prefix}{self.problems[0]}"
        lines = [f"{prefix}{len(self.problems)} problems"]
        lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)


def format_path(path: Iterable[str | int]) -> str:
    """``("fleet", 0, "count")`` -> ``fleet[0].count``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def problems_from_validation(exc: ValidationError, data: Any) -> list[tuple[PathTuple, str]]:
    """(path, message) for every error of ``exc``, raised validating ``data`` as a Scenario."""
    found: list[tuple[PathTuple, str]] = []
    for error in exc.errors():
        path = _real_path(error["loc"], data)
        kind, ctx, value = error["type"], error.get("ctx") or {}, error["input"]
        if kind == "value_error" and isinstance(ctx.get("error"), FieldError):
            path = (*path, *ctx["error"].loc)
        if kind in ("union_tag_invalid", "union_tag_not_found"):
            path = (*path, "kind")
        message = _message(kind, ctx, value, error["msg"], path, data)
        if (path, message) not in found:
            found.append((path, message))
    return found


def _real_path(loc: tuple[str | int, ...], data: Any) -> PathTuple:
    """Keep the parts of ``loc`` that are keys or indices of ``data``; the last part may be a
    missing key (unless it is the node's ``kind`` tag or a validator name)."""
    path: list[str | int] = []
    node = data
    for position, part in enumerate(loc):
        if has_item(node, part):
            path.append(part)
            node = node[part]
        elif position == len(loc) - 1 and not _is_tag(part, node):
            path.append(part)
    return tuple(path)


def has_item(node: Any, part: str | int) -> bool:
    """Whether ``node[part]`` exists: a key of a mapping or an index into a list."""
    if isinstance(node, list):
        return isinstance(part, int) and 0 <= part < len(node)
    return isinstance(node, dict) and part in node


def _is_tag(part: str | int, node: Any) -> bool:
    if isinstance(part, int):
        return False
    return "[" in part or (isinstance(node, dict) and node.get("kind") == part)


_TYPE_WORDS = {
    "int_type": "an integer",
    "float_type": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
}
_BOUNDS = {
    "greater_than": ("gt", ">"),
    "greater_than_equal": ("ge", ">="),
    "less_than": ("lt", "<"),
    "less_than_equal": ("le", "<="),
}


def _message(
    kind: str, ctx: dict[str, Any], value: Any, msg: str, path: PathTuple, data: Any
) -> str:
    if kind in _BOUNDS:
        key, sign = _BOUNDS[kind]
        bound = ctx[key]
        bound = int(bound) if isinstance(bound, float) and bound.is_integer() else bound
        return f"must be {sign} {bound}, got {show(value)}"
    if kind in _TYPE_WORDS:
        return f"must be {_TYPE_WORDS[kind]}, got {show_typed(value)}"
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return _unknown_key(path, data)
    if kind == "literal_error":
        return f"must be one of {_unquote(ctx['expected'])}; got {show(value)}"
    if kind == "union_tag_invalid":
        return f"must be one of {_unquote(ctx['expected_tags'])}; got {show(ctx['tag'])}"
    if kind == "union_tag_not_found":
        candidates, _ = _candidates_at(path[:-1], data)
        fields = [m.model_fields.get("kind") for m in candidates]
        kinds = [k for f in fields if f is not None for k in typing.get_args(f.annotation)]
        return f"required: one of {', '.join(kinds)}" if kinds else "required"
    if kind == "string_pattern_mismatch" and ctx.get("pattern") == NAME_PATTERN:
        return (
            "a name starts with a letter or digit and holds only letters, digits, '_', '.' "
            f"and '-'; got {show(value)}"
        )
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters, got {len(value)}"
    if kind == "too_short":
        return f"must have at least {ctx['min_length']} item(s), got {ctx['actual_length']}"
    if kind == "finite_number":
        return f"must be a finite number, got {show(value)}"
    if kind == "value_error":
        return str(ctx["error"])
    return f"{msg}; got {show(value)}"


def _unquote(expected: str) -> str:
    """pydantic's ``'a', 'b' or 'c'`` -> ``a, b, c``."""
    return ", ".join(part.strip().strip("'") for part in expected.replace(" or ", ", ").split(","))


def _unknown_key(path: PathTuple, data: Any) -> str:
    model = _model_at(path[:-1], data)
    if model is None:
        return "unknown key"
    allowed = list(model.model_fields)
    hint = difflib.get_close_matches(str(path[-1]), allowed, n=1)
    guess = f" (did you mean {hint[0]}?)" if hint else ""
    return f"unknown key; allowed here: {', '.join(allowed)}{guess}"


def _model_at(path: PathTuple, data: Any) -> type[BaseModel] | None:
    """The schema model that validates the mapping at ``path`` of ``data``."""
    candidates, node = _candidates_at(path, data)
    return _pick(candidates, node)


def _candidates_at(path: PathTuple, data: Any) -> tuple[list[type[BaseModel]], Any]:
    """The schema models that may validate the node at ``path`` of ``data``, and the node."""
    candidates: list[type[BaseModel]] = [Scenario]
    node = data
    for part in path:
        if isinstance(part, int):
            node = node[part] if isinstance(node, list) and 0 <= part < len(node) else None
            continue
        model = _pick(candidates, node)
        if model is None or part not in model.model_fields:
            return [], None
        candidates = _models_in(model.model_fields[part].annotation)
        node = node.get(part) if isinstance(node, dict) else None
    return candidates, node


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _pick(candidates: list[type[BaseModel]], node: Any) -> type[BaseModel] | None:
    if len(candidates) == 1:
        return candidates[0]
    kind = node.get("kind") if isinstance(node, dict) else None
    for model in candidates:
        field = model.model_fields.get("kind")
        if field is not None and kind in typing.get_args(field.annotation):
            return model
    return None


def show(value: Any, limit: int = 60) -> str:
    """A value as a scenario file would write it, shortened to ``limit`` characters."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def show_typed(value: Any) -> str:
    """``'5' (a string)``: the value and, unless null, its YAML type."""
    if value is None:
        return "null"
    words = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    word = words.get(type(value)) or ("a mapping" if isinstance(value, dict) else None)
    word = word or ("a list" if isinstance(value, list) else type(value).__name__)
    return f"{show(value)} ({word})"
