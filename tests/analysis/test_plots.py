"""Figures from hand-made metric rows: the right number of lines, bars and legend entries,
units on the axes, log scales when values span decades, NaN skipped, "no data" on empty input,
and PNG + SVG files that are identical for identical figures."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from matplotlib.axes import Axes
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from analysis import plots
from records.tables import REQUESTS_SCHEMA, STAGE_TIMES

NAN = float("nan")
STAGES = ("device", "uplink", "server_wait", "server_compute", "downlink")
SLICER = "slicer(max_nmse=0.01)"


def row(split: Any, codec: str, devices: int, **metrics: Any) -> dict[str, Any]:
    """One sweep_rows-like row; latency grows with the fleet, SLICER is 10x smaller."""
    small = 0.1 if codec.startswith("slicer") else 1.0
    base: dict[str, Any] = {
        "point": f"{split}-{codec}-{devices}",
        "devices": devices,
        "split": split,
        "codec": codec,
        "replicas": 2,
        "task": "infer",
        "p95_latency_s": 0.05 * (1 + devices / 100) * (1 + small),
        "server_busy_s_per_request": 0.01 * (20 - _int(split)) / 10,
        "server_busy_s_per_token": NAN,
        "uplink_bytes_per_request": 1e5 * small * _int(split) / 4,
        "uplink_bits_per_token": NAN,
        **{f"{stage}_s": 0.01 * (i + 1) for i, stage in enumerate(STAGES)},
    }
    base.update(metrics)
    return base


def _int(split: Any) -> int:
    return split if isinstance(split, int) else 8


def sweep(splits: tuple[Any, ...] = (4, 8, 16), codecs: tuple[str, ...] = ("fp16", SLICER)):
    return [row(s, c, d) for s in splits for c in codecs for d in (10, 100, 1000, 10000)]


def legend_texts(fig: Figure) -> list[str]:
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    return [t.get_text() for leg in [*legends, *fig.legends] for t in leg.get_texts()]


def says_no_data(ax: Axes) -> bool:
    return any(t.get_text() == "no data" for t in ax.texts)


def data_lines(ax: Axes) -> list[Any]:
    return [line for line in ax.get_lines() if not line.get_label().startswith("SLO")]


# ------------------------------------------------------------------------- colours, markers


def test_codec_colours_are_fixed_distinct_and_shared_by_variants() -> None:
    known = ["fp32", "fp16", "bf16", "int8", "blockwise8", "zstd", "topk", "rans", "slicer"]
    known += ["jpeg", "webp"]
    colours = [plots.codec_color(c) for c in known]
    assert len(set(colours)) == len(known)
    assert plots.codec_color("fp16") != plots.codec_color("slicer")
    assert plots.codec_color(SLICER) == plots.codec_color("slicer")
    assert plots.codec_color("jpeg(quality=60,format=webp)") == plots.codec_color("webp")
    assert plots.codec_color("jpeg(quality=60)") == plots.codec_color("jpeg")
    mixed = plots.codec_color("fp16/slicer(max_nmse=0.01)")
    assert mixed == plots.codec_color("fp16/slicer") and mixed not in colours
    assert plots.codec_color("mycodec(a=1)") == plots.codec_color("mycodec")
    assert to_hex(plots.codec_color("something-new")) == plots.codec_color("something-new")


def test_split_markers_are_stable_and_distinct_for_nearby_splits() -> None:
    markers = [plots.split_marker(s) for s in range(15)]
    assert len(set(markers)) == 15
    assert plots.split_marker(8) == plots.split_marker(8.0) == plots.split_marker(np.int32(8))
    assert plots.split_marker("4/8") == plots.split_marker("4/8")
    assert plots.split_marker(None) in markers


def test_axis_labels_carry_units() -> None:
    assert plots.axis_label("p95_latency_s") == "p95 latency (s)"
    assert plots.axis_label("uplink_bytes_per_request") == "uplink (bytes/request)"
    assert plots.axis_label("uplink_bits_per_token") == "uplink (bits/token)"
    assert plots.axis_label("devices") == "fleet size (devices)"
    assert plots.axis_label("server_wait_s") == "server wait: dispatch, queue (s)"
    assert plots.axis_label("kv_free_min_bytes") == "kv free min (bytes)"  # unit from suffix
    assert plots.axis_label("device_energy_j") == "device energy (J)"


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        ("p50_tpot_s", "p50 time per output token (s)"),
        ("p95_tpot_s", "p95 time per output token (s)"),
        ("p99_tpot_s", "p99 time per output token (s)"),
        ("p50_ttft_s", "p50 time to first token (s)"),
        ("p95_ttft_s", "p95 time to first token (s)"),
        ("p99_ttft_s", "p99 time to first token (s)"),
        ("uplink_bits_per_token", "uplink (bits/token)"),
        ("server_busy_s_per_token", "server busy time (s/token)"),
    ],
)
def test_token_metrics_have_proper_labels_and_titles(metric: str, expected: str) -> None:
    assert plots.axis_label(metric) == expected
    rows = [row(8, "fp16", d, task="generate", **{metric: 0.01 * d}) for d in (10, 20)]
    ax = plots.scaling_curve(rows, metric=metric).axes[0]
    assert ax.get_ylabel() == expected
    assert ax.get_title() == f"{expected.split(' (')[0]} vs fleet size"


# ---------------------------------------------------------------------------- scaling curves


def test_scaling_curve_one_line_per_split_and_codec_with_styles_and_log_axes() -> None:
    rows = sweep()
    fig = plots.scaling_curve(rows, slo_s=0.5)
    ax = fig.axes[0]
    lines = data_lines(ax)
    assert len(lines) == 6 and len(ax.get_lines()) == 7  # + the SLO line
    labels = legend_texts(fig)
    assert "split 4 · fp16" in labels and f"split 16 · {SLICER}" in labels and "SLO 0.5 s" in labels
    assert fig.legends, "7 entries go below the axes"
    by_label = {line.get_label(): line for line in lines}
    assert by_label["split 8 · fp16"].get_color() == plots.codec_color("fp16")
    assert by_label[f"split 8 · {SLICER}"].get_color() == plots.codec_color("slicer")
    assert by_label["split 16 · fp16"].get_marker() == plots.split_marker(16)
    assert list(by_label["split 4 · fp16"].get_xdata()) == [10, 100, 1000, 10000]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"  # 0.05..10 s spans 2 decades
    assert "(devices)" in ax.get_xlabel() and ax.get_ylabel() == "p95 latency (s)"
    assert ax.get_title()


def test_scaling_curve_skips_nan_and_stays_linear_within_two_decades() -> None:
    rows = [row(8, "fp16", d) for d in (10, 20, 40, 80)]
    rows[1]["p95_latency_s"] = NAN
    rows.append(row(4, "fp16", 10, p95_latency_s=None))  # a group with no finite value
    rows.append(row(4, "fp16", 20, p95_latency_s="n/a"))
    fig = plots.scaling_curve(rows, ylabel="custom (s)")
    ax = fig.axes[0]
    (line,) = ax.get_lines()
    assert list(line.get_xdata()) == [10, 40, 80]
    assert ax.get_xscale() == "linear" and ax.get_yscale() == "linear"
    assert ax.get_ylabel() == "custom (s)"
    assert legend_texts(fig) == ["split 8 · fp16"] and ax.get_legend() is not None


def test_scaling_curve_varying_replicas_get_line_styles_and_labels() -> None:
    rows = [row(8, "fp16", d, replicas=r) for r in (1, 4) for d in (10, 100)]
    fig = plots.scaling_curve(rows, metric="server_busy_s_per_request")
    lines = fig.axes[0].get_lines()
    assert [line.get_label() for line in lines] == [
        "split 8 · fp16 · 1 replica",
        "split 8 · fp16 · 4 replicas",
    ]
    assert lines[0].get_linestyle() != lines[1].get_linestyle()
    assert fig.axes[0].get_ylabel() == "server busy time (s/request)"


def test_codec_variants_are_shades_of_the_codec_colour() -> None:
    codecs = ("slicer(max_nmse=0.001)", SLICER, "slicer(max_nmse=0.1)")
    fig = plots.scaling_curve(sweep(splits=(8,), codecs=codecs))
    colours = [line.get_color() for line in fig.axes[0].get_lines()]
    assert len(set(colours)) == 3
    assert all(c != plots.codec_color("fp16") for c in colours)


@pytest.mark.parametrize(
    "rows", [[], [row(8, "fp16", 10, p95_latency_s=NAN)], [{"devices": 10}]], ids=str
)
def test_scaling_curve_without_data_says_so(rows: list[dict[str, Any]]) -> None:
    fig = plots.scaling_curve(rows)
    assert says_no_data(fig.axes[0]) and not fig.axes[0].get_lines()
    assert fig.axes[0].get_ylabel() == "p95 latency (s)"


def test_busy_curve_per_request_for_infer_and_per_token_for_generate() -> None:
    infer = plots.busy_per_request_curve(sweep())
    assert infer.axes[0].get_ylabel() == "server busy time (s/request)"
    assert len(infer.axes[0].get_lines()) == 6
    generate = [row(8, "fp16", d, task="generate", server_busy_s_per_token=1e-3) for d in (1, 9)]
    fig = plots.busy_per_request_curve(generate)
    assert fig.axes[0].get_ylabel() == "server busy time (s/token)"
    assert list(fig.axes[0].get_lines()[0].get_ydata()) == [1e-3, 1e-3]
    assert says_no_data(plots.busy_per_request_curve([]).axes[0])


def test_replicas_needed_curve_lines_missed_points_and_integer_axis() -> None:
    needed = [
        {"split": 8, "codec": "fp16", "devices": 10, "replicas": 1},
        {"split": 8, "codec": "fp16", "devices": 100, "replicas": 2},
        {"split": 8, "codec": "fp16", "devices": 1000, "replicas": None},
        {"split": 8, "codec": SLICER, "devices": 10, "replicas": 1},
        {"split": 8, "codec": SLICER, "devices": 100, "replicas": 1},
        {"split": 8, "codec": SLICER, "devices": 1000, "replicas": 3},
    ]
    fig = plots.replicas_needed_curve(needed, slo_s=0.25)
    ax = fig.axes[0]
    lines = ax.get_lines()
    assert len(lines) == 3  # two lines + the missed point
    assert [list(line.get_xdata()) for line in lines] == [[10, 100], [1000], [10, 100, 1000]]
    assert lines[1].get_marker() == "x" and lines[1].get_color() == plots.codec_color("fp16")
    assert legend_texts(fig) == [
        "split 8 · fp16",
        f"split 8 · {SLICER}",
        "SLO missed at every replica count",
    ]
    assert "0.25 s" in ax.get_title() and "(count)" in ax.get_ylabel()
    assert ax.get_xscale() == "log"
    assert all(float(t).is_integer() for t in ax.yaxis.get_major_locator()())
    assert says_no_data(plots.replicas_needed_curve([], slo_s=1).axes[0])


def visible_ticks(fig: Figure) -> list[float]:
    fig.canvas.draw()  # the locator and limits as a saved figure has them
    ax = fig.axes[0]
    lo, hi = ax.get_ylim()
    return [t for t in ax.get_yticks() if lo <= t <= hi]


def test_replicas_needed_curve_one_replica_everywhere_has_whole_ticks_from_zero() -> None:
    needed = [{"split": 8, "codec": "fp16", "devices": d, "replicas": 1} for d in (10, 100, 1000)]
    fig = plots.replicas_needed_curve(needed, slo_s=0.5)
    ax = fig.axes[0]
    assert visible_ticks(fig) == [0.0, 1.0]  # not 0.945 .. 1.05 around the one count
    assert ax.get_ylim() == pytest.approx((0.0, 1.6)) and ax.get_yscale() == "linear"
    for most in (2, 3, 7, 10, 40):  # the top edge, where misses sit, is never on a tick
        counts = [{**needed[0], "replicas": most}, {**needed[1], "replicas": None}]
        top = plots.replicas_needed_curve(counts, slo_s=0.5).axes[0].get_ylim()[1]
        assert most + 0.5 <= top < 1.2 * most + 1 and not float(top).is_integer()
    only_missed = [{"split": 8, "codec": "fp16", "devices": 10, "replicas": None}]
    missed = plots.replicas_needed_curve(only_missed, slo_s=0.5)
    assert all(float(t).is_integer() for t in visible_ticks(missed))


def test_replicas_needed_curve_counts_over_decades_stay_whole_on_a_log_axis() -> None:
    needed = [
        {"split": 8, "codec": "fp16", "devices": d, "replicas": r}
        for d, r in ((10, 1), (100, 12), (1000, 150))
    ]
    fig = plots.replicas_needed_curve(needed, slo_s=0.5)
    assert fig.axes[0].get_yscale() == "log"
    ticks = visible_ticks(fig)
    assert ticks and all(t >= 1 and float(t).is_integer() for t in ticks)


# ------------------------------------------------------------------------------------ bars


def test_uplink_bars_per_codec_grouped_by_split() -> None:
    rows = sweep(splits=(4, 8))
    rows.append(row(16, "fp16", 10))  # split 16 only has fp16
    rows.append(row(16, SLICER, 10, uplink_bytes_per_request=NAN))
    fig = plots.uplink_per_codec(rows)
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    assert len(ax.patches) == 5
    heights = sorted(p.get_height() for p in ax.patches)
    assert heights == pytest.approx([1e4, 2e4, 1e5, 2e5, 4e5])  # medians over fleet sizes
    fp16 = [p for p in ax.patches if to_hex(p.get_facecolor()) == plots.codec_color("fp16")]
    assert len(fp16) == 3
    assert legend_texts(fig) == ["fp16", SLICER]
    assert ax.get_ylabel() == "uplink (bytes/request)" and "split" in ax.get_xlabel()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["4", "8", "16"]
    assert ax.get_yscale() == "linear"  # 1e4 .. 4e5: under 2 decades
    rows.append(row(16, "topk(keep=0.01)", 10, uplink_bytes_per_request=100.0))
    assert plots.uplink_per_codec(rows).axes[0].get_yscale() == "log"  # 100 .. 4e5


def test_uplink_bars_add_a_bits_per_token_panel_for_generate_rows() -> None:
    rows = [row(8, c, 10, uplink_bits_per_token=b) for c, b in (("fp16", 9216.0), (SLICER, 700))]
    fig = plots.uplink_per_codec(rows)
    assert len(fig.axes) == 2
    assert fig.axes[1].get_ylabel() == "uplink (bits/token)"
    assert [p.get_height() for p in fig.axes[1].patches] == [9216.0, 700.0]
    assert fig.axes[1].get_yscale() == "linear"
    assert legend_texts(fig) == ["fp16", SLICER]


@pytest.mark.parametrize("codec", ["fp32", "fp16", SLICER])
def test_a_single_codec_draws_a_narrow_bar_in_its_colour(codec: str) -> None:
    fig = plots.uplink_per_codec([row(8, codec, 10), row(8, codec, 100)])
    ax = fig.axes[0]
    (bar,) = ax.patches
    assert bar.get_width() <= 0.35  # of the split's slot (width 1)
    lo, hi = ax.get_xlim()
    assert hi - lo >= 2.5 and bar.get_width() / (hi - lo) < 0.15  # a bar, not a wall
    assert bar.get_x() + bar.get_width() / 2 == pytest.approx(0.0)  # centred on its split
    assert to_hex(bar.get_facecolor()) == plots.codec_color(codec)  # fp32's is black
    assert legend_texts(fig) == [codec]


def test_uplink_bars_without_data_say_so() -> None:
    assert says_no_data(plots.uplink_per_codec([]).axes[0])
    nan_rows = [row(8, "fp16", 10, uplink_bytes_per_request=NAN)]
    assert says_no_data(plots.uplink_per_codec(nan_rows).axes[0])


def test_stage_bars_stack_the_stages_at_the_largest_fleet() -> None:
    rows = sweep(splits=(4, 8))
    for r in rows:
        r["server_wait_s"] = r["devices"] / 1e4  # queueing grows with the fleet
    rows[0]["uplink_s"] = NAN  # 4-fp16 at 10 devices: not the chosen point anyway
    fig = plots.stage_bars(rows)
    ax = fig.axes[0]
    assert len(ax.patches) == 4 * len(STAGES)
    tops = {round(p.get_y() + p.get_height(), 9) for p in ax.patches}
    assert max(tops) == pytest.approx(0.01 + 0.02 + 1.0 + 0.04 + 0.05)
    assert "10k devices" in ax.get_title() and "(s)" in ax.get_ylabel()
    assert legend_texts(fig) == [
        "device (queue, head, encode)",
        "uplink",
        "server wait (dispatch, queue)",
        "server compute",
        "downlink",
    ]
    assert fig.legends  # below the bars
    assert {t.get_text() for t in ax.texts} == {"split 4", "split 8"}
    assert [t.get_text() for t in ax.get_xticklabels()] == ["fp16", SLICER] * 2


def test_stage_bars_at_a_chosen_fleet_size_and_nan_as_zero() -> None:
    rows = sweep(splits=(8,), codecs=("fp16",))
    rows[1]["downlink_s"] = NAN  # the 100-device row
    fig = plots.stage_bars(rows, devices=100)
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]
    assert heights == pytest.approx([0.01, 0.02, 0.03, 0.04, 0.0])
    assert "100 devices" in ax.get_title()
    assert says_no_data(plots.stage_bars(rows, devices=5).axes[0])
    assert says_no_data(plots.stage_bars([]).axes[0])


def test_stage_bars_name_the_fleet_size_under_bars_when_they_differ() -> None:
    rows = [row(8, "fp16", 10), row(8, SLICER, 100)]
    fig = plots.stage_bars(rows)
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert ticks == ["fp16 · 10 dev.", f"{SLICER} · 100 dev."]
    assert "devices" not in fig.axes[0].get_title()


# -------------------------------------------------------------------------- rate-distortion


def rd(codec: str, tensor: str, bits: float, nmse: float) -> dict[str, Any]:
    return {"codec": codec, "tensor": tensor, "bits_per_element": bits, "nmse": nmse}


def test_rate_distortion_one_line_per_codec_mean_over_tensors() -> None:
    points = [
        rd("slicer(max_nmse=0.01)", "a", 2.0, 1e-2),
        rd("slicer(max_nmse=0.01)", "b", 4.0, 1e-4),  # mean: 3 bits, geometric 1e-3
        rd("slicer(max_nmse=0.1)", "a", 1.0, 1e-1),
        rd("slicer(max_nmse=0.1)", "b", 1.0, 1e-1),
        rd("fp16", "a", 16.0, 1e-7),
        rd("fp32", "a", 32.0, 0.0),
        rd("rans(bits=4)", "a", 4.0, NAN),  # skipped
    ]
    fig = plots.rate_distortion(points)
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"fp32 (lossless)", "fp16", "slicer (max_nmse)"}
    slicer = lines["slicer (max_nmse)"]
    assert list(slicer.get_xdata()) == [1.0, 3.0]
    assert list(slicer.get_ydata()) == pytest.approx([1e-1, 1e-3])
    assert slicer.get_color() == plots.codec_color("slicer")
    assert sorted(t.get_text() for t in ax.texts) == ["0.01", "0.1"]
    assert ax.get_yscale() == "log" and ax.get_xscale() == "log"  # 1..32 bits: log2
    assert ax.get_xlabel() == "rate (bits/element)" and "NMSE" in ax.get_ylabel()
    assert "2 tensors" in ax.get_title()
    assert len(legend_texts(fig)) == 3


def test_rate_distortion_worst_row_and_empty() -> None:
    points = [{**rd("int8", "t", 8.0, 1e-4), "max_row_nmse": 1e-3}]
    fig = plots.rate_distortion(points, distortion="max_row_nmse")
    assert list(fig.axes[0].get_lines()[0].get_ydata()) == [1e-3]
    assert "worst-row" in fig.axes[0].get_ylabel() and "on t" in fig.axes[0].get_title()
    assert fig.axes[0].get_xscale() == "linear"
    assert says_no_data(plots.rate_distortion([]).axes[0])
    with pytest.raises(ValueError, match="distortion must be 'nmse' or 'max_row_nmse'"):
        plots.rate_distortion(points, distortion="cosine")


def test_rate_distortion_reads_codec_rd_records() -> None:
    codec_rd = pytest.importorskip("benchmarks.codec_rd")
    config = {"id": "slicer", "max_nmse": 0.01}
    point = codec_rd.Point("t", codec_rd.label(config), config, 2.5, 2.4, 4e-3, 9e-3,
                           0.99, 0.5, 30.0, 60.0, NAN)  # fmt: skip
    records = json.loads(json.dumps(codec_rd.rd_records([point]), allow_nan=False))
    assert records[0]["codec"] == SLICER and records[0]["ec_overhead_pct"] is None
    assert records[0]["bits_per_element"] == 2.5 and records[0]["max_row_nmse"] == 9e-3
    fig = plots.rate_distortion(records)
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["slicer"]


# ------------------------------------------------------------------------------------ CDFs


def test_cdf_one_step_line_per_series() -> None:
    samples = {"fp16": [0.3, 0.1, NAN, 0.2, 0.4], SLICER: [0.05, 0.01], "empty": [NAN]}
    fig = plots.cdf(samples, xlabel="latency (s)")
    ax = fig.axes[0]
    lines = ax.get_lines()
    assert len(lines) == 2
    assert list(lines[0].get_xdata()) == [0.1, 0.2, 0.3, 0.4]
    assert list(lines[0].get_ydata()) == [0.25, 0.5, 0.75, 1.0]
    assert lines[0].get_drawstyle() == "steps-post"
    assert lines[1].get_color() == plots.codec_color("slicer")
    assert legend_texts(fig) == ["fp16 (n=4)", f"{SLICER} (n=2)"]
    assert ax.get_xlabel() == "latency (s)" and "fraction" in ax.get_ylabel()
    assert ax.get_xscale() == "linear"


def test_cdf_log_x_drops_non_positive_and_empty_says_no_data() -> None:
    fig = plots.cdf({"a": [0.0, 10.0, 1000.0], "b": [5.0]}, xlabel="payload (bytes)", log_x=True)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert list(ax.get_lines()[0].get_xdata()) == [10.0, 1000.0]
    assert ax.get_lines()[0].get_color() != ax.get_lines()[1].get_color()
    assert says_no_data(plots.cdf({}, xlabel="x (s)").axes[0])
    assert says_no_data(plots.cdf({"a": [-1.0]}, xlabel="x (s)", log_x=True).axes[0])


# --------------------------------------------------------------------------------- timeline


def requests(n: int, dropped: tuple[int, ...] = ()) -> pa.Table:
    """Request i arrives at 10 - i (so the table is in reverse arrival order), each stage 0.1 s
    long, except the server wait (0.2 s)."""
    rows = []
    for i in range(n):
        t0 = 10.0 - i
        steps = [0.0, 0.05, 0.08, 0.1, 0.2, 0.2, 0.4, 0.5, 0.6]  # uplink start 0.1 ... done 0.6
        done = i not in dropped
        times = [t0 + s if done or k < 5 else NAN for k, s in enumerate(steps)]
        rows.append(
            {
                **dict(zip(STAGE_TIMES, times, strict=True)),
                "run_id": "r",
                "request_id": i,
                "device_id": i % 3,
                "group": "g",
                "model": "m",
                "split": 8,
                "codec": "fp16",
                "input_id": 0,
                "replica_id": i % 2 if done else -1,
                "status": "completed" if done else "dropped",
                "reason": "" if done else "queue_full",
            }
        )
    return pa.Table.from_pylist(rows, schema=REQUESTS_SCHEMA)


def test_timeline_lanes_for_the_first_completed_requests() -> None:
    fig = plots.timeline(requests(8, dropped=(7, 5)), max_requests=4)
    ax = fig.axes[0]
    assert len(ax.patches) == 4 * len(STAGES)
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert ticks == ["6 (0 → 0)", "4 (1 → 0)", "3 (0 → 1)", "2 (2 → 0)"]  # by arrival
    widths = [round(p.get_width(), 9) for p in ax.patches]
    assert widths == [0.1] * 4 + [0.1] * 4 + [0.2] * 4 + [0.1] * 4 + [0.1] * 4
    first = ax.patches[0]
    assert first.get_x() == pytest.approx(4.0) and first.get_y() == pytest.approx(-0.35)
    assert ax.get_xlabel() == "simulated time (s)"
    assert len(legend_texts(fig)) == 5 and "4 completed" in ax.get_title()


def test_timeline_empty_and_bad_input() -> None:
    assert says_no_data(plots.timeline(requests(0)).axes[0])
    assert says_no_data(plots.timeline(requests(2, dropped=(0, 1))).axes[0])
    with pytest.raises(ValueError, match="max_requests must be an integer >= 1"):
        plots.timeline(requests(2), max_requests=0)
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['t_done_s'\]"):
        plots.timeline(requests(2).drop_columns(["t_done_s"]))


# ------------------------------------------------------------------------------------- save


def test_save_writes_png_and_svg_closes_and_is_deterministic(tmp_path: Path) -> None:
    fig = plots.scaling_curve(sweep(), slo_s=0.5)
    paths = plots.save(fig, tmp_path / "sub" / "p95-slo=0.5")
    assert [p.name for p in paths] == ["p95-slo=0.5.png", "p95-slo=0.5.svg"]
    assert paths[0].read_bytes().startswith(b"\x89PNG") and paths[0].stat().st_size > 10_000
    assert b"<svg" in paths[1].read_bytes()
    assert fig.axes == []  # closed: cleared
    again = plots.save(plots.scaling_curve(sweep(), slo_s=0.5), tmp_path / "again")
    assert again[0].read_bytes() == paths[0].read_bytes()
    assert again[1].read_bytes() == paths[1].read_bytes()


def test_save_closes_a_pyplot_figure_too(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    fig = plt.figure()
    fig.add_subplot().plot([1, 2], [3, 4])
    plots.save(fig, tmp_path / "pyplot")
    assert not plt.fignum_exists(fig.number)


def test_mixed_split_rows_get_text_labels() -> None:
    rows = [row("4/8", "fp16/slicer(max_nmse=0.01)", d) for d in (10, 100)]
    (line,) = plots.scaling_curve(rows).axes[0].get_lines()
    assert line.get_label() == "split 4/8 · fp16/slicer(max_nmse=0.01)"
    assert line.get_marker() == plots.split_marker("4/8")
    assert line.get_color() == plots.codec_color("fp16/slicer")


def test_every_figure_renders() -> None:
    """Drawing runs the tick formatters and layout that building a figure does not."""
    generate = [row(8, "fp16", d, uplink_bits_per_token=9216.0) for d in (10, 1000)]
    figures = {
        "busy": plots.busy_per_request_curve(sweep()),
        "needed": plots.replicas_needed_curve(
            [{"split": "4/8", "codec": "fp16", "devices": 10, "replicas": 1}], slo_s=1
        ),
        "uplink": plots.uplink_per_codec(generate),
        "stages": plots.stage_bars(sweep()),
        "rd": plots.rate_distortion([rd("topk(keep=0.1)", "a", 3, 0.1), rd("fp32", "a", 32, 0)]),
        "cdf": plots.cdf({"a": [0.02, 0.05, 0.7]}, xlabel="latency (s)", log_x=True),
        "timeline": plots.timeline(requests(3)),
        "empty": plots.scaling_curve([]),
    }
    for name, fig in figures.items():
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=40)
        assert len(buffer.getvalue()) > 2_000, name
