"""Reports of real (replayed) result directories: report.html is self-contained, valid and
escaped; report.md has the same content; sweeps get their points, curves and capacity;
comparisons put two results side by side; the CLI prints where it wrote and fails cleanly."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from analysis.load import ResultsError
from analysis.report import write_comparison, write_report
from analysis.report_html import cell_text, label
from cli.main import main
from tests.analysis.conftest import RISKY_DESCRIPTION, make_sweep

NAME = "tiny-infer<i>&"
VOID = {"meta", "img", "br", "hr", "link", "input", "col", "wbr", "source", "area", "base"}


class Page(HTMLParser):
    """What the tests read from a report: title, headings, images, table rows; it also checks
    that every element is closed in order."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.errors: list[str] = []
        self.title = ""
        self.headings: list[str] = []
        self.images: list[dict[str, str | None]] = []
        self.links: list[str] = []
        self.rows: list[list[str]] = []
        self.html_attrs: dict[str, str | None] = {}
        self.charset = False
        self._text: list[str] = []
        self.feed(text)
        self.close()
        if self.open:
            self.errors.append(f"never closed: {self.open}")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "html":
            self.html_attrs = values
        if tag == "meta" and (values.get("charset") or "").lower() == "utf-8":
            self.charset = True
        if tag == "img":
            self.images.append(values)
        self.links += [v or "" for k, v in attrs if k in ("src", "href")]
        if tag == "tr":
            self.rows.append([])
        if tag not in VOID:
            self.open.append(tag)
            self._text = []

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.open[-1:] or 'nothing'}")
            return
        self.open.pop()
        text = "".join(self._text).strip()
        if tag == "title":
            self.title = text
        elif tag == "h2":
            self.headings.append(text)
        elif tag in ("td", "th") and self.rows:
            self.rows[-1].append(text)

    def handle_data(self, data: str) -> None:
        self._text.append(data)

    def row(self, first: str) -> list[str]:
        """The table row whose first cell is ``first``."""
        found = [r for r in self.rows if r and r[0] == first]
        assert found, f"no table row starts with {first!r}"
        return found[0]


def _report(path: Path, *args: str) -> tuple[str, str, str]:
    """Run `slicer report PATH ARGS`: (printed text, report.html, report.md)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["report", str(path), *args]) == 0
    return out.getvalue(), (path / "report.html").read_text(), (path / "report.md").read_text()


@pytest.fixture(scope="module")
def run_report(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """The run, its manifest edited by hand to give the scenario a name with markup in it."""
    path = Path(shutil.copytree(run_dir, tmp_path_factory.mktemp("reports") / "run"))
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["scenario"]["name"] = NAME
    (path / "manifest.json").write_text(json.dumps(manifest))
    printed, html, md = _report(path, "--slo-s", "0.1")
    assert printed.split() == ["report:", str(path / "report.html"), str(path / "report.md")]
    return path, html, md


@pytest.fixture(scope="module")
def sweep_report(
    sweep_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str, str]:
    """The sweep with its last point marked failed (an error text with markup in it)."""
    path = Path(shutil.copytree(sweep_dir, tmp_path_factory.mktemp("reports") / "sweep"))
    points = pq.read_table(path / "sweep.parquet")
    last = pc.equal(points.column("point"), points.column("point")[-1])
    status = pc.if_else(last, "failed", points.column("status"))
    error = pc.if_else(last, "OracleError: <no profile> for split 4", points.column("error"))
    points = points.set_column(points.column_names.index("status"), "status", status)
    points = points.set_column(points.column_names.index("error"), "error", error.cast(pa.string()))
    pq.write_table(points, path / "sweep.parquet")
    _, html, md = _report(path, "--slo-s", "0.3")
    return path, html, md


def _images_are_embedded_pngs(page: Page) -> None:
    assert page.images, "the report has no figures"
    for image in page.images:
        src = image.get("src") or ""
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix), src[:60]
        assert base64.b64decode(src[len(prefix) :], validate=True)[:8] == b"\x89PNG\r\n\x1a\n"
        assert image.get("alt")


def _self_contained_html5(html: str, page: Page) -> None:
    assert html.startswith("<!DOCTYPE html>")
    assert page.errors == []
    assert page.html_attrs.get("lang") == "en" and page.charset and page.title
    assert "http://" not in html and "https://" not in html
    assert all(link.startswith(("#", "data:image/png;base64,")) for link in page.links)
    assert "<script" not in html and "<link" not in html


def test_a_run_report_has_every_section_and_embeds_its_figures(
    run_report: tuple[Path, str, str],
) -> None:
    path, html, _ = run_report
    page = Page(html)
    _self_contained_html5(html, page)
    assert page.title == f"Run report: {NAME}"
    assert page.headings == [
        "Overview",
        "Headline metrics",
        "Where the time goes",
        "Distributions",
        "Timeline",
        "Servers",
        "Resolved scenario",
        "Versions",
    ]
    _images_are_embedded_pngs(page)
    assert len(page.images) == 4  # stages, latency and payload CDFs, timeline
    assert page.row("seed") == ["seed", "1"] and page.row("mode") == ["mode", "replay"]
    assert page.row("status") == ["status", "complete"]
    summary = json.loads((path / "summary.json").read_text())
    assert page.row("p95 latency (s)")[1] == cell_text(summary["p95_latency_s"])
    assert page.row("within the 0.1 s SLO (share of requests)")[1] != "–"
    assert page.row("0")[0] == "0" and page.row("shared queue")[1] == "–"  # servers table
    for stem in ("stages", "latency-cdf", "payload-cdf", "timeline"):
        assert (path / "figures" / f"{stem}.png").is_file()
        assert (path / "figures" / f"{stem}.svg").is_file()


def test_nan_shows_as_a_dash_and_numbers_align_right(run_dir: Path, tmp_path: Path) -> None:
    """A requests table from before the radio_energy_j column: its radio energy is NaN."""
    path = Path(shutil.copytree(run_dir, tmp_path / "run"))
    requests = pq.read_table(path / "requests.parquet").drop_columns(["radio_energy_j"])
    pq.write_table(requests, path / "requests.parquet")
    _, html, _ = _report(path)
    page = Page(html)
    radio = "radio energy (J/request)"
    assert page.row(radio) == [radio, "–"]
    assert "server busy time (s/token)" not in html  # infer: no token figures
    assert not any(cell.lower() in ("nan", "none", "null") for r in page.rows for cell in r)
    assert '<td class="num">–</td>' in html


def test_text_from_the_results_is_escaped(run_report: tuple[Path, str, str]) -> None:
    _, html, md = run_report
    assert "<b>fleet</b>" not in html and "<script>" not in html
    assert "tiny &lt;b&gt;fleet&lt;/b&gt; &amp; &#x27;friends&#x27;" in html
    assert Page(html).row("description")[1] == RISKY_DESCRIPTION
    prose = md.split("```json")[0]  # a fenced code block shows its text as it is
    assert "<script>" not in prose and "| description | tiny &lt;b>fleet" in prose
    assert "<title>Run report: tiny-infer&lt;i&gt;&amp;</title>" in html and "<i>" not in html
    assert Page(html).row("scenario")[1] == NAME
    assert md.startswith("# Run report: tiny-infer&lt;i>&amp;\n")


def test_report_md_has_the_same_content_with_linked_figures(
    run_report: tuple[Path, str, str],
) -> None:
    path, html, md = run_report
    for heading in Page(html).headings:
        assert f"\n## {heading}\n" in md
    links = [line for line in md.splitlines() if line.startswith("![")]
    assert len(links) == 4
    for line in links:
        target = line.split("](", 1)[1].split(")", 1)[0]
        assert target.startswith("figures/") and (path / target).is_file()
    assert "| p95 latency (s) |" in md and "|---|---:|" in md
    assert "| completed (requests) | 32 |" in md
    assert "```json\n{" in md


def test_a_sweep_report_shows_points_curves_capacity_and_failures(
    sweep_report: tuple[Path, str, str],
) -> None:
    path, html, md = sweep_report
    page = Page(html)
    _self_contained_html5(html, page)
    assert page.title == "Sweep report: tiny-sweep"
    assert page.headings == [
        "Overview",
        "Points",
        "Scaling",
        "Capacity at the SLO",
        "Uplink and where the time goes",
        "Failed points",
        "Resolved scenario",
        "Versions",
    ]
    _images_are_embedded_pngs(page)
    assert len(page.images) == 6
    points = [r for r in page.rows if r and r[0].startswith("count=")]
    # five complete points in the points table, the failed one in its own table
    assert [r[0] for r in points[:5]] == [
        "count=1-replicas=1",
        "count=1-replicas=2",
        "count=8-replicas=1",
        "count=8-replicas=2",
        "count=64-replicas=1",
    ]
    header = next(r for r in page.rows if r and r[0] == "point" and "devices" in r)
    # fleet[0].count and servers.replicas repeat devices and replicas: not shown twice
    assert header[:6] == ["point", "devices", "replicas", "split", "codec", "seed"]
    assert "within the SLO (share of requests)" in header
    assert page.row("count=64-replicas=2") == [
        "count=64-replicas=2",
        "OracleError: <no profile> for split 4",
    ]
    assert "&lt;no profile&gt;" in html
    capacity = [r for r in page.rows if len(r) == 5 and r[1] == "fp32"]
    assert {r[2] for r in capacity} == {"1", "2"}
    words = {r[4] for r in capacity}
    assert words <= {
        "interpolated between the last point that meets it and the first that misses",
        "misses the SLO at every point",
        "the last swept point that meets the SLO",
    } or any(w.startswith("meets the SLO at every point (capacity >= ") for w in words)
    assert page.row("points")[1] == "6 (5 complete, 1 failed)"
    assert "Swept: fleet[0].count over 1, 8, 64; servers.replicas over 1, 2." in html
    assert "![" in md and "## Capacity at the SLO" in md
    assert {p.name for p in (path / "figures").glob("*.png")} == {
        "p95-latency-vs-devices.png",
        "busy-per-request.png",
        "replicas-needed.png",
        "uplink-per-codec.png",
        "stages.png",
        "latency-cdf.png",
    }


def test_a_sweep_report_without_an_slo_leaves_capacity_out(sweep_dir: Path, tmp_path: Path) -> None:
    path = Path(shutil.copytree(sweep_dir, tmp_path / "sweep"))
    (path / "figures").mkdir()
    (path / "figures" / "replicas-needed.png").write_bytes(b"stale")
    html_path, md_path = write_report(path)
    page = Page(html_path.read_text())
    assert "Capacity at the SLO" not in page.headings and "Failed points" not in page.headings
    assert not (path / "figures" / "replicas-needed.png").exists()  # an earlier report's
    header = next(r for r in page.rows if r and r[0] == "point" and "devices" in r)
    assert "within the SLO (share of requests)" not in header
    assert md_path.read_text().count("![") == 5


def test_capacity_is_found_per_value_of_another_swept_parameter(tmp_path: Path) -> None:
    bandwidth = "fleet[0].uplink.bandwidth_mbps"
    path = make_sweep(tmp_path, {"fleet[0].count": [1, 64], bandwidth: [0.5, 20.0]})
    html_path, _ = write_report(path, slo_s=0.3)
    page = Page(html_path.read_text())
    header = next(r for r in page.rows if r and r[-1] == "how it was found")
    assert header == ["split", "codec", "replicas", bandwidth, "capacity (devices)", header[-1]]
    assert sorted(r[3] for r in page.rows if len(r) == 6 and r[1] == "fp32") == ["0.5", "20"]


def test_a_generate_report_adds_token_metrics_and_is_deterministic(
    generate_dir: Path, tmp_path: Path
) -> None:
    generate_dir = Path(shutil.copytree(generate_dir, tmp_path / "generate"))
    html_path, md_path = write_report(generate_dir)
    html, md = html_path.read_text(), md_path.read_text()
    page = Page(html)
    assert "Generation" in page.headings
    summary = json.loads((generate_dir / "summary.json").read_text())
    assert page.row(label("share_matching_32"))[1] == cell_text(summary["share_matching_32"])
    assert page.row("uplink (bits/token)")[1] == cell_text(summary["uplink_bits_per_token"])
    assert page.row("p95 time per output token (s)")[1] != "–"
    assert len(page.images) == 6  # + TTFT and TPOT distributions
    assert (generate_dir / "figures" / "ttft-cdf.svg").is_file()
    again = write_report(generate_dir)
    assert again[0].read_text() == html and again[1].read_text() == md


def test_comparing_two_runs_shows_both_and_their_ratio(
    run_dir: Path, sweep_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = Path(shutil.copytree(run_dir, tmp_path / "run"))
    point = sweep_dir / "count=64-replicas=1"
    assert main(["compare", str(run_dir), str(point)]) == 0
    html_path = run_dir / "compare-count=64-replicas=1" / "report.html"  # the default
    md_path = html_path.with_name("report.md")
    assert capsys.readouterr().out.split() == ["comparison:", str(html_path), str(md_path)]
    page = Page(html_path.read_text())
    assert page.errors == [] and page.title == "Comparison: tiny-infer (A) vs tiny-sweep (B)"
    a = json.loads((run_dir / "summary.json").read_text())
    b = json.loads((point / "summary.json").read_text())
    row = page.row("p95 latency (s)")
    expected = [cell_text(a["p95_latency_s"]), cell_text(b["p95_latency_s"])]
    assert row[1:3] == expected
    assert row[3] == cell_text(b["p95_latency_s"] / a["p95_latency_s"])
    assert page.row("fleet[0].count")[1:] == ["8", "64"]  # where the scenarios differ
    assert page.row("name")[1:] == ["tiny-infer", "tiny-sweep"]
    _images_are_embedded_pngs(page)
    assert "| metric | A | B | B/A |" in md_path.read_text()


def test_comparing_two_sweeps_pairs_their_points(sweep_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    html_path, _ = write_comparison(sweep_dir, sweep_dir, out)
    assert html_path == out / "report.html"
    page = Page(html_path.read_text())
    assert "Points paired on devices, replicas, split, codec." in html_path.read_text()
    assert page.row("(no difference)")
    paired = [r for r in page.rows if len(r) == 16 and r[0].isdigit()]
    assert len(paired) == 6
    assert all(r[6] == "1" for r in paired)  # p95 latency B/A of a sweep with itself
    assert (out / "figures" / "p95-latency-vs-devices.png").is_file()


def test_comparing_a_run_with_a_sweep_is_refused(run_dir: Path, sweep_dir: Path) -> None:
    with pytest.raises(ResultsError, match=r"cannot compare a run .* with a sweep"):
        write_comparison(run_dir, sweep_dir)


def test_the_cli_reports_bad_input_as_errors(
    run_dir: Path, sweep_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("slicer report: error: ") and "does not exist" in err
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    assert "neither a run nor a sweep" in capsys.readouterr().err
    assert main(["report", str(run_dir), "--slo-s", "0"]) == 2
    assert "SLO must be a number of seconds > 0, got 0.0" in capsys.readouterr().err
    assert main(["compare", str(run_dir), str(sweep_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("slicer compare: error: cannot compare a run")
    assert not (run_dir / "report.html").exists()


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (float("nan"), "–"),
        (None, "–"),
        (float("inf"), "∞"),
        (0.0, "0"),
        (3, "3"),
        (1234567, "1,234,567"),
        (109525.0, "109,525"),
        (0.123456, "0.1235"),
        (2.5e-05, "2.5e-05"),
        (True, "yes"),
        ("fp16", "fp16"),
    ],
)
def test_cells_are_formatted_with_one_rule(value: Any, text: str) -> None:
    assert cell_text(value) == text


def test_labels_carry_units() -> None:
    assert label("p95_latency_s") == "p95 latency (s)"
    assert label("uplink_bytes_per_request") == "uplink (bytes/request)"
    assert label("radio_energy_j") == "radio energy (J)"
    assert label("queue_wait_s") == "queue wait (s)"


def test_a_run_report_names_what_its_times_assumed(run_dir: Path, tmp_path: Path) -> None:
    path = Path(shutil.copytree(run_dir, tmp_path / "run"))
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["assumptions"] = ["decode on the accelerator is not measured"]
    (path / "manifest.json").write_text(json.dumps(manifest))
    _, html, md = _report(path)
    assert "Assumptions" in Page(html).headings
    assert "decode on the accelerator is not measured" in md
    assert "decode pool utilisation" in md
