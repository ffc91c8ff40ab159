"""The generated scenario reference: README is current, every field of every model sits in
its own table, the output is deterministic, and the README block is rewritten in place."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin

import pytest
from pydantic import BaseModel

from scenarios import schema
from scenarios.schema_doc import (
    END,
    REGENERATE,
    START,
    StaleReferenceError,
    check_readme,
    markdown,
    update_readme,
)

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class _Table:
    context: str  # the #### heading plus the text between the previous table and this one
    rows: dict[str, list[str]] = field(default_factory=dict)


def _tables(text: str) -> list[_Table]:
    tables: list[_Table] = []
    heading, since, in_table = "", list[str](), False
    for line in text.splitlines():
        if line.startswith("#### "):
            heading, since, in_table = line, [], False
        elif line.startswith("| field | type | default | meaning |"):
            tables.append(_Table("\n".join([heading, *since])))
            since, in_table = [], True
        elif in_table and line.startswith("| `"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            tables[-1].rows[cells[0].strip("`")] = cells[1:]
        elif not line.startswith("|---"):
            since.append(line)
            in_table = False
    return tables


def _nested(annotation: Any, suffix: str = "") -> Iterator[tuple[type[BaseModel], str]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation, suffix
        return
    if get_origin(annotation) is list:
        suffix += "[]"
    for arg in get_args(annotation):
        yield from _nested(arg, suffix)


def _places() -> dict[type[BaseModel], set[str]]:
    """Every model reachable from Scenario, with every path it is found at."""
    places: dict[type[BaseModel], set[str]] = {}

    def walk(model: type[BaseModel], path: str) -> None:
        places.setdefault(model, set()).add(path)
        for name, info in model.model_fields.items():
            for child, suffix in _nested(info.annotation):
                walk(child, f"{path}.{name}{suffix}".lstrip("."))

    walk(schema.Scenario, "")
    return places


def _matches(model: type[BaseModel], paths: set[str], table: _Table) -> bool:
    if set(table.rows) != set(model.model_fields):
        return False
    if "" in paths:
        return "Top level" in table.context
    segments = {p.rsplit(".", 1)[-1].removesuffix("[]") for p in paths}
    if not any(re.search(rf"{re.escape(seg)}(\[\])?`", table.context) for seg in segments):
        return False
    kind = model.model_fields.get("kind")
    values = get_args(kind.annotation) if kind is not None else ()
    return len(values) != 1 or f"kind: {values[0]}" in table.context


def test_readme_block_is_current() -> None:
    try:
        check_readme(ROOT / "README.md")
    except StaleReferenceError as exc:
        pytest.fail(f"{exc}\n(from the repository root: `{REGENERATE}`)")


def test_every_field_of_every_model_is_in_its_table() -> None:
    tables = _tables(markdown())
    places = _places()
    assert len(places) >= 20  # Scenario, its sections, arrival and availability kinds, ...
    for model, paths in places.items():
        found = [t for t in tables if _matches(model, paths, t)]
        assert len(found) == 1, (
            f"{model.__name__} (at {sorted(paths)}) should have exactly one table listing "
            f"{list(model.model_fields)} under a heading naming it; found {len(found)}"
        )
        for name, (type_text, default, meaning) in found[0].rows.items():
            assert type_text and default and meaning, f"{model.__name__}.{name}: empty cell"
    sweep = [t for t in tables if "#### `sweep`" in t.context]
    assert len(sweep) == 1 and set(sweep[0].rows) == {"PATH", "zip"}
    assert len(tables) == len(places) + 1, "a table for a model the schema no longer reaches"


def test_cells_carry_types_defaults_units_and_bounds() -> None:
    rows = {
        (t.context.splitlines()[0], name): cells
        for t in _tables(markdown())
        for name, cells in t.rows.items()
    }
    poisson = next(c for (h, n), c in rows.items() if "arrivals" in h and n == "rate_per_s")
    assert poisson[1] == "required" and "1/s; > 0" in poisson[2]
    assert rows[("#### `model`", "seq_len")][:2] == ["int", "`64`"]
    assert "≥ 1; ≤ 8192" in rows[("#### `model`", "seq_len")][2]
    routing = rows[("#### `servers`", "routing")][0]
    assert all(f"`{value}`" in routing for value in get_args(schema.Routing))
    assert rows[("#### `servers`", "batching")][0] == "`none` or mapping, see `servers.batching`"
    assert rows[("#### `servers`", "kv_cache_bytes")][1] == "unset"
    assert "bytes; > 0" in rows[("#### `servers`", "kv_cache_bytes")][2]
    assert rows[("#### Top level", "codec")][1] == "`{id: fp16}`"
    assert "at least 1 item" in rows[("#### Top level", "fleet")][2]
    assert rows[("#### Links", "kind")][1] == "inferred"
    assert rows[("#### `fleet[].radio`", "active_w")][2].endswith("(W; ≥ 0)")
    assert "letters, digits" in rows[("#### `network.cells[]`", "name")][2]
    assert "1.28804" in markdown()  # the radio preset, read from schema.RADIO_PRESETS


def test_markdown_is_deterministic_and_imports_no_torch() -> None:
    code = (
        "import sys; import scenarios.schema_doc as d; sys.stdout.write(d.markdown()); "
        "assert 'torch' not in sys.modules, 'scenarios.schema_doc imported torch'"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == markdown() == markdown()


def test_update_and_check_rewrite_only_the_block(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# top\n\n### Scenario reference\n\n{START}\nold\n{END}\n\n## after\n")
    with pytest.raises(StaleReferenceError, match=re.escape(REGENERATE)):
        check_readme(readme)
    assert update_readme(readme) is True
    text = readme.read_text()
    assert text == f"# top\n\n### Scenario reference\n\n{START}\n{markdown()}{END}\n\n## after\n"
    check_readme(readme)
    assert update_readme(readme) is False
    assert readme.read_text() == text


@pytest.mark.parametrize(
    "text", ["no markers\n", f"{END}\n{START}\n", f"{START}\n{END}\n{START}\n{END}\n"]
)
def test_misplaced_markers_are_named(tmp_path: Path, text: str) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(text)
    with pytest.raises(StaleReferenceError, match="scenario-reference:start"):
        update_readme(readme)
    with pytest.raises(StaleReferenceError, match=re.escape(REGENERATE)):
        check_readme(readme)
    assert readme.read_text() == text
