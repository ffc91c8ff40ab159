"""The hardware catalog: bundled entries, sources for every number, overrides and validation."""

from __future__ import annotations

import math
import pickle
import re
from pathlib import Path
from typing import Any

import pytest

from models.hardware import (
    CATALOG_PATH,
    HardwareError,
    HardwareSpec,
    get_hardware,
    load_catalog,
    read_entries,
    spec_from_dict,
)
from tests.models.toy_hardware import toy_fields

DEVICES = ("raspberry-pi-5", "jetson-orin-nano", "jetson-agx-orin", "flagship-phone", "laptop-cpu")
SERVERS = ("h100-sxm", "a100-80gb", "l4", "cpu-server")


def test_bundled_catalog_has_the_devices_servers_and_ideal() -> None:
    specs = load_catalog()
    assert {n for n in DEVICES if specs[n].kind == "device"} == set(DEVICES)
    assert {n for n in SERVERS if specs[n].kind == "server"} == set(SERVERS)
    assert specs["h100-sxm"].peak("bf16") == 989.5e12
    assert specs["h100-sxm"].memory_bandwidth_bytes_per_s == 3.35e12
    assert math.isinf(specs["ideal"].peak("fp32"))
    assert specs["ideal"].active_power_w == 0.0


def test_every_number_in_the_catalog_names_a_source() -> None:
    """A numeric value carries a comment on its own line or in the comment just above it."""
    previous = ""
    unsourced = []
    for line in CATALOG_PATH.read_text().splitlines():
        value = re.match(r"\s+[\w]+:\s*([-+.\w]+)\s*(#.*)?$", line)
        numeric = value and re.fullmatch(r"[-+]?(\.inf|[\d.]+(e[-+]?\d+)?)", value.group(1))
        if value and numeric and not value.group(2) and not previous.lstrip().startswith("#"):
            unsourced.append(line.strip())
        if line.strip():
            previous = line
    assert unsourced == []


def test_specs_round_trip_through_dicts_and_pickle() -> None:
    for name, spec in load_catalog().items():
        assert spec_from_dict(name, spec.to_dict()) == spec
        assert pickle.loads(pickle.dumps(spec)) == spec
        assert hash(spec) == hash(spec_from_dict(name, spec.to_dict()))


def test_extra_overrides_fields_and_merges_peaks() -> None:
    spec = get_hardware(
        "l4", {"l4": {"efficiency_compute": 0.3, "peak_flops_per_s": {"fp16": 1.0e14}}}
    )
    assert spec.efficiency_compute == 0.3
    assert spec.peak("fp16") == 1.0e14
    assert spec.peak("fp32") == 30.3e12  # kept from the bundled entry
    assert get_hardware("l4").efficiency_compute == 0.4  # the bundled entry is untouched


def test_extra_adds_entries_complete_or_from_a_base() -> None:
    extra = {"toy": toy_fields(), "slow-l4": {"base": "l4", "efficiency_memory": 0.5}}
    assert get_hardware("toy", extra).peak("fp16") == 2.0e9
    derived = get_hardware("slow-l4", extra)
    assert derived.name == "slow-l4"
    assert derived.efficiency_memory == 0.5
    assert derived.peak("int8") == get_hardware("l4").peak("int8")


def test_numeric_strings_are_numbers() -> None:
    """YAML 1.1 reads ``1e9`` as a string; the catalog takes it as the number it means."""
    spec = get_hardware("toy", {"toy": toy_fields(memory_bandwidth_bytes_per_s="2e9")})
    assert spec.memory_bandwidth_bytes_per_s == 2.0e9


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"bandwidth": 1.0}, "'toy': unknown field 'bandwidth'"),
        ({"idle_power_w": -1.0}, "'toy': idle_power_w must be >= 0"),
        ({"memory_bandwidth_bytes_per_s": 0.0}, "'toy': memory_bandwidth_bytes_per_s must be > 0"),
        ({"efficiency_compute": 7.0}, "'toy': efficiency_compute must be > 0 and <= 4"),
        ({"call_overhead_s": "soon"}, "'toy': call_overhead_s must be a number, got 'soon'"),
        ({"block_overhead_s": True}, "'toy': block_overhead_s must be a number"),
        ({"block_overhead_s": math.nan}, "'toy': block_overhead_s must be a number"),
        ({"peak_flops_per_s": {"fp32": -1.0}}, "'toy': peak_flops_per_s.fp32 must be > 0"),
        ({"peak_flops_per_s": {"fp64": 1.0}}, "unknown dtype 'fp64'"),
        ({"peak_flops_per_s": {"fp16": 1.0}}, "'toy': peak_flops_per_s must list fp32"),
        ({"kind": "phone"}, "'toy': kind must be one of"),
        ({"active_power_w": 0.5}, "'toy': active_power_w (0.5) is below idle_power_w"),
        ({"host_cpu_cores": 2.5}, "'toy': host_cpu_cores must be a whole number of cores"),
        ({"cpu_core_score": 0.0}, "'toy': cpu_core_score must be > 0"),
    ],
)
def test_bad_entries_name_entry_and_field(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(HardwareError) as info:
        get_hardware("toy", {"toy": toy_fields(**changes)})
    assert message in str(info.value)


def test_incomplete_new_entry_and_unknown_base_are_errors() -> None:
    with pytest.raises(HardwareError, match=r"'half': missing field 'kind'.*base: <entry>"):
        get_hardware("half", {"half": {"efficiency_compute": 0.5}})
    with pytest.raises(HardwareError, match="'x': base 'nope' is not an entry"):
        get_hardware("x", {"x": {"base": "nope"}})
    with pytest.raises(HardwareError, match="'l4': idle_power_w must be >= 0"):
        get_hardware("h100-sxm", {"l4": {"idle_power_w": -1}})  # every extra entry is checked
    with pytest.raises(HardwareError, match=r"unknown hardware 'h200'; known: .*'h100-sxm'"):
        get_hardware("h200")


def test_missing_dtype_lists_what_the_entry_has() -> None:
    with pytest.raises(HardwareError, match=r"'raspberry-pi-5' has no .* 'bf16'.*\['fp32'"):
        get_hardware("raspberry-pi-5").peak("bf16")


def test_load_catalog_reads_a_user_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("toy:\n  kind: server\n  base_power: 3\n")
    with pytest.raises(HardwareError, match="'toy': unknown field 'base_power'"):
        load_catalog(path)
    with pytest.raises(HardwareError, match="cannot read it"):
        load_catalog(tmp_path / "missing.yaml")
    path.write_text("- just a list\n")
    with pytest.raises(HardwareError, match="must map entry names"):
        load_catalog(path)
    spec = get_hardware("l4")
    assert read_entries()["l4"] == spec.to_dict()
    assert isinstance(spec, HardwareSpec)


def test_cpu_score_and_host_cores_are_optional_with_stated_meanings() -> None:
    spec = get_hardware("toy", {"toy": toy_fields()})
    assert math.isnan(spec.cpu_core_score) and spec.host_cpu_cores == 1
    assert "cpu_core_score" not in spec.to_dict()  # left out stays left out
    h100 = get_hardware("h100-sxm")
    assert h100.host_cpu_cores == 14 and h100.cpu_core_score > 0
    assert get_hardware("ideal").cpu_core_score == math.inf
