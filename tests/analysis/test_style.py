"""The shared vocabulary of figures and tables: codec ids and order, split text, one set of
labels with units for axes and table headers, and number text."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis import labels, metrics, plots, plots_bars, plots_rd, report_html, sizing, style


def test_codec_family_reads_ids_of_mixed_and_webp_labels() -> None:
    assert style.codec_family("slicer(max_nmse=0.01)") == "slicer"
    assert style.codec_family(" FP16 ") == "fp16"
    assert style.codec_family("fp16/slicer(a=1/2)") == "fp16/slicer"  # "/" inside () stays
    assert style.codec_family("fp16/fp16(x=1)") == "fp16"
    assert style.codec_family("jpeg(format=webp, quality=60)") == "webp"


def test_natural_key_reads_numbers_as_numbers() -> None:
    names = ["jpeg(quality=100)", "jpeg(quality=30)", "jpeg(quality=5)"]
    assert sorted(names, key=style.natural_key) == [names[2], names[1], names[0]]
    nmse = ["slicer(max_nmse=1e-2)", "slicer(max_nmse=1e-3)", "slicer(max_nmse=0.5)"]
    assert sorted(nmse, key=style.natural_key) == [nmse[1], nmse[0], nmse[2]]


def test_codecs_and_splits_sort_known_ids_first_numbers_by_value() -> None:
    codecs = ["mycodec", "slicer(max_nmse=0.1)", "fp16", "slicer(max_nmse=0.01)", "fp32"]
    assert sorted(codecs, key=style.family_sort_key) == [
        "fp32",
        "fp16",
        "slicer(max_nmse=0.01)",
        "slicer(max_nmse=0.1)",
        "mycodec",
    ]
    splits = ["4/8", 16, None, 2, np.int64(8)]
    ordered = sorted(splits, key=style.split_sort_key)
    assert [style.split_text(s) for s in ordered] == ["2", "8", "16", "4/8", "?"]
    assert style.split_text(8.0) == "8" and style.split_text(2.5) == "2.5"


def test_num_turns_anything_not_numeric_into_nan() -> None:
    assert style.num(3) == 3.0 and style.num(np.float32(0.5)) == 0.5
    for value in (None, "3", b"3", object(), [1]):
        assert math.isnan(style.num(value))


def test_one_vocabulary_for_axes_and_table_headers() -> None:
    assert report_html.label is labels.label and plots.axis_label is labels.axis_label
    for key in labels.LABELS:
        if key not in labels.AXIS_LABELS:
            assert labels.axis_label(key) == labels.label(key), key
    assert labels.axis_label("devices") == "fleet size (devices)"
    assert labels.label("devices") == "devices"
    assert labels.label("p95_tpot_s") == "p95 time per output token (s)"
    assert labels.label("server_busy_s_per_request") == "server busy time (s/request)"
    assert labels.label("tx_rps") == "tx (requests/s)" and labels.label("link_mbps") == (
        "link (Mbit/s)"
    )
    assert labels.label("_s") == " s"  # a bare suffix is no unit
    assert labels.short_name("p95_ttft_s") == "p95 time to first token"


@pytest.mark.parametrize(
    ("value", "cell", "compact"),
    [
        (None, "–", "–"),
        (math.nan, "–", "–"),
        (0.0, "0", "0"),
        (0.0123456, "0.01235", "0.0123"),
        (12345.6, "12,346", "12.3k"),
        (2.5e6, "2,500,000", "2.5M"),
        (-4e9, "-4,000,000,000", "-4G"),
    ],
)
def test_number_text_for_cells_and_inside_figures(value: float, cell: str, compact: str) -> None:
    assert labels.cell_text(value) == cell
    assert labels.compact_number(math.nan if value is None else value) == compact


def test_names_stay_importable_from_where_they_were() -> None:
    assert metrics.capacity is sizing.capacity and metrics.Capacity is sizing.Capacity
    assert metrics.replicas_needed is sizing.replicas_needed
    assert plots.uplink_per_codec is plots_bars.uplink_per_codec
    assert plots.rate_distortion is plots_rd.rate_distortion
    assert plots.codec_color is style.codec_color and plots.split_marker is style.split_marker
    assert report_html.cell_text is labels.cell_text and report_html.MISSING == "–"
    assert plots.STAGES == metrics.STAGES == tuple(style.STAGE_NAMES) == tuple(style.STAGE_COLORS)
