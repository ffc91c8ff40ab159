"""The scenario reference: Markdown tables generated from the pydantic models of ``schema.py``.

``markdown()`` walks ``Scenario`` and its nested models (field order, defaults, descriptions,
``Literal`` choices, ge/gt/le/length/pattern constraints, discriminated unions) into one table
per section: field, type, default, meaning (with units from the field name's suffix and
bounds). The output is deterministic and imports nothing heavier than pydantic.
``update_readme(path)`` rewrites the README block between ``START`` and ``END``;
``check_readme(path)`` raises ``StaleReferenceError`` when that block differs from
``markdown()``. The CLI is ``slicer schema --markdown [--write FILE]``.
"""

from __future__ import annotations

import json
import re
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from scenarios import schema as s

START = "<!-- scenario-reference:start -->"
END = "<!-- scenario-reference:end -->"
REGENERATE = "slicer schema --markdown --write README.md"

INTRO = (
    "Generated from the pydantic models in `scenarios/schema.py`: after changing the schema, "
    f"run `{REGENERATE}` to regenerate this block (a test fails while it is stale). "
    'Unknown keys are errors and types are strict (`count: "5"` is an error). Units come '
    "from the field names (`_s` seconds, `_per_s` per second, `_mbps` Mbit/s, `_bytes` "
    "bytes, `_w` watts, `_j_per_mbit` joules per Mbit) and stand in parentheses with the "
    "bounds; *unset* means the field is left out (`null`)."
)

# longest suffix first: `_per_s` before `_s`
_UNITS = {"_j_per_mbit": "J/Mbit", "_per_s": "1/s", "_mbps": "Mbit/s", "_bytes": "bytes"}
_UNITS |= {"_s": "s", "_w": "W"}
_BOUNDS = (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤"))

# What the Field descriptions leave out (or fields without one): appended to the meaning.
NOTES: dict[tuple[type[BaseModel], str], str] = {
    (s.Scenario, "name"): "names the results directory",
    (s.Scenario, "description"): "free text, kept with the resolved scenario in manifest.json",
    (s.Scenario, "seed"): "seeds every random draw; sweep points derive their own seeds from it",
    (s.Scenario, "duration_s"): "give exactly one of `duration_s` and `requests_per_device`",
    (s.Scenario, "mode"): "real: heads, codec and tails really run; replay: their results are "
    "sampled from an earlier real run (`replay_from`), for fleets too large to compute",
    (s.Scenario, "replay_from"): "required by mode: replay",
    (s.Scenario, "model"): "the split workload",
    (s.Scenario, "codec"): "used by every group that sets no codec of its own",
    (s.Scenario, "fleet"): "device groups",
    (s.Scenario, "network"): "shared cells",
    (s.Scenario, "servers"): "the server pool",
    (s.Scenario, "record"): "what the run records",
    (s.Scenario, "ray"): "where real compute runs",
    (s.DeviceGroup, "name"): "names the group in the results; unique within `fleet`",
    (s.DeviceGroup, "arrivals"): "when each device of the group sends requests",
    (s.DeviceGroup, "cell"): "leave out the group's own link in each direction the cell has",
    (s.LinkSpec, "kind"): "constant: `bandwidth_mbps`; trace: a bandwidth trace, looped, that "
    "a device's own link starts at a random offset; ideal: no time and no delay",
    (s.RadioSpec, "uplink_j_per_mbit"): "energy per Mbit sent",
    (s.RadioSpec, "downlink_j_per_mbit"): "energy per Mbit received",
    (s.Network, "cells"): "cells that device groups join with `fleet[].cell`",
    (s.Cell, "name"): "what `fleet[].cell` names; unique within `network.cells`",
    (s.Cell, "uplink"): "the uplink its devices share; give an uplink, a downlink or both",
    (s.Cell, "downlink"): "the downlink its devices share",
    (s.Servers, "replicas"): "identical server replicas",
    (s.Servers, "batching"): "how a replica forms batches; `none` is one request per batch",
    (s.Servers, "routing"): "which replica's queue a request joins: shared-queue (one queue "
    "every replica serves), round-robin, random, least-loaded (fewest queued plus running) "
    "or power-of-two (the less loaded of two random replicas)",
    (s.Servers, "service"): "a what-if distribution of batch service time instead of the cost "
    "model (task: infer only)",
    (s.Servers, "failures"): "task: infer only",
    (s.Servers, "decode"): "where the servers decode IFs: a decode pool of host CPU cores "
    "beside the accelerators (default), or the accelerators themselves",
    (s.ServiceOverride, "kind"): "the distribution of a batch's service time",
    (s.ServiceOverride, "mean_s"): "mean service time of one batch",
}
# The type column where a validator accepts more than the annotation says.
TYPE_TEXT: dict[tuple[type[BaseModel], str], str] = {
    (s.Scenario, "codec"): "codec id or mapping",
    (s.DeviceGroup, "codec"): "codec id or mapping",
    (s.DeviceGroup, "radio"): "preset name or mapping",
    (s.Servers, "batching"): "`none` or mapping",
    (s.Scenario, "sweep"): "mapping, see `sweep`",
}
# The default column where a validator fills the field in.
DEFAULT_TEXT: dict[tuple[type[BaseModel], str], str] = {(s.LinkSpec, "kind"): "inferred"}


class StaleReferenceError(Exception):
    """The README's scenario reference differs from ``markdown()`` (or has no markers)."""


@dataclass(frozen=True)
class Section:
    """A ``####`` heading with an intro and one table per model (several: one per kind).
    Other tables point here by the heading's part before a colon."""

    heading: str
    models: tuple[type[BaseModel], ...]
    intro: str = ""

    @property
    def ref(self) -> str:
        return self.heading.split(":")[0]


def _variants(union: Any) -> tuple[type[BaseModel], ...]:
    """The models of a discriminated union ``Annotated[A | B, Field(discriminator=...)]``."""
    return tuple(get_args(get_args(union)[0]))


_LABELS: dict[type[BaseModel], str] = {
    s.RandomOutages: "Random: `outages: {mean_gap_s, mean_s}`",
    s.OutageWindow: "Windows: `outages: [{start_s, end_s}, ...]`",
}
_RADIO = "; ".join(
    f"`radio: {name}`: " + ", ".join(f"`{key}: {value}`" for key, value in preset.items())
    for name, preset in s.RADIO_PRESETS.items()
)
_CODEC = "Also `fleet[].codec`. Every key besides `id` is a parameter of that codec (see the "
_CODEC += "codec reference); `slicer validate` checks them."
_LINKS = "`fleet[].uplink`, `fleet[].downlink`, `network.cells[].uplink` and "
_LINKS += "`network.cells[].downlink` each take one link (one direction)."
_POLICY = "`policy: static` (the default) runs every request at the group's `split` and codec; "
_POLICY += "`policy: {kind: adaptive, ...}` is this mapping."
_OUTAGES = "A mapping draws random outages; a list gives fixed windows (sorted, not overlapping)."

SECTIONS: tuple[Section, ...] = (
    Section("Top level", (s.Scenario,)),
    Section("`model`", (s.ModelSpec,), "The split workload."),
    Section("`codec`", (s.CodecSpec,), _CODEC),
    Section("`fleet[]`: device groups", (s.DeviceGroup,)),
    Section("`fleet[].arrivals`", _variants(s.Arrivals), "One process per device, by `kind`."),
    Section("Links", (s.LinkSpec,), _LINKS),
    Section("Outages: `outages` of any link", (s.RandomOutages, s.OutageWindow), _OUTAGES),
    Section("`fleet[].availability`", _variants(s.Availability), "Device dropouts, by `kind`."),
    Section("`fleet[].radio`", (s.RadioSpec,), f"Presets: {_RADIO}."),
    Section("`fleet[].policy`", (s.AdaptivePolicy,), _POLICY),
    Section("`fleet[].policy.options[]`", (s.HeadOption,)),
    Section("`network`", (s.Network,)),
    Section("`network.cells[]`", (s.Cell,)),
    Section("`servers`", (s.Servers,), "The server pool."),
    Section("`servers.batching`", (s.Batching,)),
    Section("`servers.decode`", (s.Decode,)),
    Section("`servers.failures`", (s.ReplicaFailures,)),
    Section("`servers.service`", (s.ServiceOverride,)),
    Section("`record`", (s.Record,), "What the run records."),
    Section("`ray`", (s.RaySpec,)),
)

_SWEEP = """#### `sweep`

`sweep: {PATH: [values], ...}` is a grid walked like `itertools.product` in file order (the
first key varies slowest); `zip: {PATH: [values], ...}` lists of equal length walk together,
and the points are every grid point with every zip row. Every point is validated at load time,
named by its values (`count=10-id=fp16`) and runs with its own seed drawn from the scenario's
seed and its values (`scenarios.sweep.point_seed`), never from its position, so extending a grid
keeps every finished point; `seed`, `name` and `sweep` cannot be swept, and two entries may not
set the same place (`codec` and `codec.id`).

| field | type | default | meaning |
|---|---|---|---|
| `PATH` | list | unset | the values of one field, e.g. `fleet[0].count: [10, 100]` or \
`codec: [fp16, {id: slicer}]` (whole sub-configs); PATH is a field path as in `--set` |
| `zip` | mapping of PATH to list | unset | lists of equal length walked together, one \
point per row |"""


def markdown() -> str:
    """The scenario reference (the README block's body), ending with a newline."""
    for model, name in (*NOTES, *TYPE_TEXT, *DEFAULT_TEXT):
        if name not in model.model_fields:
            raise KeyError(
                f"scenarios/schema_doc.py has a note on {model.__name__}.{name}, which the "
                "schema no longer has; fix or remove that note"
            )
    refs = {model: section.ref for section in SECTIONS for model in section.models}
    parts = [INTRO]
    for section in SECTIONS:
        parts.append(f"#### {section.heading}")
        if len(section.models) == 1:  # the model's docstring, then the section's words
            text = " ".join(p for p in (_doc(section.models[0]), section.intro) if p)
            parts += [text] if text else []
            parts.append(_table(section.models[0], refs))
            continue
        parts += [section.intro] if section.intro else []
        for model in section.models:
            parts.append(" ".join(p for p in (f"**{_label(model)}**", _doc(model)) if p))
            parts.append(_table(model, refs))
    parts.append(_SWEEP)
    return "\n\n".join(parts) + "\n"


def _label(model: type[BaseModel]) -> str:
    if model in _LABELS:
        return _LABELS[model]
    kinds = get_args(model.model_fields["kind"].annotation) if "kind" in model.model_fields else ()
    if len(kinds) != 1:
        raise ValueError(
            f"{model.__name__} shares a section with other models but has neither a single "
            "`kind` value nor an entry in scenarios.schema_doc._LABELS; add one"
        )
    return f"`kind: {kinds[0]}`"


def _doc(model: type[BaseModel]) -> str:
    doc = model.__doc__ or ""
    return " ".join(doc.replace("``", "`").split())


def _table(model: type[BaseModel], refs: dict[type[BaseModel], str]) -> str:
    rows = ["| field | type | default | meaning |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        cells = (f"`{name}`", _type(model, name, field, refs), _default(model, name, field))
        rows.append("| " + " | ".join((*cells, _meaning(model, name, field))) + " |")
    return "\n".join(rows)


def _strip(annotation: Any) -> tuple[list[Any], list[Any]]:
    """The alternatives of an annotation without Annotated layers and None, and the
    constraints that those Annotated layers carried."""
    metadata: list[Any] = []
    while get_origin(annotation) is Annotated:
        inner, *extras = get_args(annotation)
        metadata += [m for e in extras if isinstance(e, FieldInfo) for m in e.metadata]
        annotation = inner
    if get_origin(annotation) in (Union, types.UnionType):
        members: list[Any] = []
        for arg in get_args(annotation):
            if arg is not type(None):
                inner_members, inner_metadata = _strip(arg)
                members += inner_members
                metadata += inner_metadata
        return members, metadata
    return [annotation], metadata


def _one(annotation: Any) -> str:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping"
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is list:
        inner = _one(_strip(args[0])[0][0])
        return "list of " + ("mappings" if inner == "mapping" else inner)
    if origin is dict:
        return "mapping"
    if origin is Literal:
        values = [f"`{v}`" for v in args]
        return values[0] if len(values) == 1 else "one of " + ", ".join(values)
    if annotation in (bool, int, float, str):
        return str(annotation.__name__)
    raise TypeError(
        f"scenarios.schema_doc cannot render the annotation {annotation!r}; "
        "teach scenarios/schema_doc.py:_one about it"
    )


def _models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models(arg)]


def _type(
    model: type[BaseModel], name: str, field: FieldInfo, refs: dict[type[BaseModel], str]
) -> str:
    members, _ = _strip(field.annotation)
    texts = list(dict.fromkeys(_one(m) for m in members))
    text = TYPE_TEXT.get((model, name), " or ".join(texts))
    nested = [refs[m] for m in _models(field.annotation) if m in refs]
    if nested:
        text += f", see {nested[0]}"
    return _cell(text)


def _default(model: type[BaseModel], name: str, field: FieldInfo) -> str:
    if (model, name) in DEFAULT_TEXT:
        return _cell(DEFAULT_TEXT[(model, name)])
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True, validated_data={})
    if value is None:
        return "unset"
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", exclude_defaults=True)
    return _cell(f"`{_flow(value)}`")


def _flow(value: Any) -> str:
    """A value in YAML flow style, as one would write it in a scenario file."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, str) and not re.fullmatch(r"[A-Za-z0-9_.:/-]+", value):
        return json.dumps(value)
    return str(value)


def _meaning(model: type[BaseModel], name: str, field: FieldInfo) -> str:
    members, metadata = _strip(field.annotation)
    parts = [p for p in (field.description, NOTES.get((model, name))) if p]
    if not parts and name == "kind" and len(members) == 1 and len(get_args(members[0])) == 1:
        parts = ["selects this kind"]
    text = "; ".join(parts)
    numeric = all(m in (int, float) for m in members)
    unit = (
        next((u for suffix, u in _UNITS.items() if name.endswith(suffix)), None)
        if numeric
        else None
    )
    kinds = [_one(m) for m in members]
    extra = [unit] if unit else []
    extra += _bounds([*field.metadata, *metadata], "item" if "list" in kinds[0] else "character")
    if extra:
        text += f" ({'; '.join(extra)})" if text else "; ".join(extra)
    return _cell(text)


def _bounds(metadata: list[Any], unit: str) -> list[str]:
    out: list[str] = []
    for item in metadata:
        out += [
            f"{sym} {getattr(item, a)}" for a, sym in _BOUNDS if getattr(item, a, None) is not None
        ]
        if getattr(item, "min_length", None) is not None:
            out.append(f"at least {item.min_length} {unit}{'s' * (item.min_length != 1)}")
        if getattr(item, "max_length", None) is not None:
            out.append(f"at most {item.max_length} {unit}s")
        pattern = getattr(item, "pattern", None)
        if pattern == s.NAME_PATTERN:
            out.append("letters, digits and `_ . -`, starting with a letter or digit")
        elif pattern is not None:
            out.append(f"matches `{pattern}`")
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _block(text: str, path: Path) -> tuple[int, int]:
    """Where the generated block lies in ``text``: just after ``START``, up to ``END``."""
    start, end = text.find(START), text.find(END)
    if text.count(START) != 1 or text.count(END) != 1 or end < start:
        raise StaleReferenceError(
            f"{path}: expected one {START} line and, after it, one {END} line around the "
            f"scenario reference; add them under '### Scenario reference' and run `{REGENERATE}`"
        )
    return start + len(START), end


def update_readme(path: str | Path) -> bool:
    """Write ``markdown()`` between the markers of the file at ``path``; True if it changed."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    start, end = _block(text, path)
    new = text[:start] + "\n" + markdown() + text[end:]
    if new == text:
        return False
    path.write_text(new, encoding="utf-8")
    return True


def check_readme(path: str | Path) -> None:
    """Raise ``StaleReferenceError`` unless the block in ``path`` equals ``markdown()``."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    start, end = _block(text, path)
    if text[start:end] != "\n" + markdown():
        raise StaleReferenceError(
            f"{path}: the scenario reference is stale (the schema changed since it was "
            f"generated); regenerate it with `{REGENERATE}`"
        )
