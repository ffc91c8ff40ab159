"""The README's results reference names every column of every result table."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pytest

from records import tables as records

ROOT = Path(__file__).resolve().parents[2]
TABLES = {
    "`requests.parquet`": records.GENERATE_REQUESTS_SCHEMA,
    "`servers.parquet`": records.GENERATE_SERVERS_SCHEMA,
    "`steps.parquet`": records.STEPS_SCHEMA,
    "`profile.parquet`": records.PROFILE_SCHEMA,
    "`generations.parquet`": records.GENERATIONS_SCHEMA,
}


def _reference() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split("### Results reference", 1)[1].split("\n### ", 1)[0]


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.strip("`"))
def test_every_column_is_documented(table: str) -> None:
    reference = _reference()
    start = reference.index(f"{table} (") if f"{table} (" in reference else reference.index(table)
    # the table's part runs to the next table's heading paragraph
    rest = reference[start + len(table) :]
    following = [rest.index(t) for t in TABLES if t != table and t in rest]
    part = rest[: min(following)] if following else rest
    spans = re.findall(r"`([^`]+)`", part)  # `a`, or several names in one span: `a, b, c`
    documented = {name for span in spans for name in re.split(r"[,\s]+", span) if name}
    schema: pa.Schema = TABLES[table]
    missing = [name for name in schema.names if name not in documented]
    assert not missing, f"README results reference lacks {table} columns {missing}"


def test_the_plain_schemas_are_subsets_of_the_documented_ones() -> None:
    assert set(records.REQUESTS_SCHEMA.names) <= set(records.GENERATE_REQUESTS_SCHEMA.names)
    assert set(records.SERVERS_SCHEMA.names) <= set(records.GENERATE_SERVERS_SCHEMA.names)
