"""Autoregressive split serving: uplink bits per token, agreement, server time per token, TTFT
and TPOT across split depth x codec x fleet size, and the issue's targets.

Run: ``python -m benchmarks.llm_serving [RESULTS_DIR] [--tpot-slo-s 0.05] [--set PATH=VALUE]``.
``--slicer-llm BITS`` runs another sweep of the same scenario instead: at each split with a
shipped SmolLM2 ``slicer-llm`` profile, fp16, SLICER at ``max_nmse`` 1e-3 and slicer-llm at
``BITS`` with that split's profile, for 10, 100 and 500 phones (``slicer_llm_sweep``).

``RESULTS_DIR`` (default ``results/llm-fleet-scaling``) is a finished sweep of
``scenarios/llm-fleet-scaling.yaml``; when it has no ``sweep.parquet`` the sweep runs first
(real compute; ``--set`` overrides go to it, e.g. ``--set model.inputs=4`` for a quick look).
Everything printed comes from the points' ``summary.json`` files:

* per split and codec (bits, payload variance and agreement do not depend on fleet size; the
  server time per token is at the largest fleet): uplink bits per token (prompt and set-up
  included) and its cut against fp16 at the same split, the decode frames' mean size and
  variance, teacher-forced next-token top-1 agreement with the unsplit model, and the share of
  sequences whose first 32 greedy tokens equal the unsplit model's;
* per fleet size, split and codec: TTFT and TPOT p50/p95 and server GPU time per token;
* the targets: SLICER's cut in uplink bits per token against fp16 (>= 10x) at >= 95%
  agreement, and, per fleet size, how much the best SLICER split cuts server time per token
  against the shallowest split that fp16 serves within the p95 TPOT SLO.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from benchmarks.codec_rd import table

SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "llm-fleet-scaling.yaml"
BITS_TARGET = 10.0
AGREEMENT_TARGET = 0.95


def slicer_llm_sweep(bits: float, model: str = "smollm2-135m") -> dict[str, Any]:
    """The ``sweep`` of ``--slicer-llm``: split and codec walk together (a slicer-llm profile
    belongs to one split), fleet size is the grid."""
    from codec._llm_profile import shipped_splits

    splits = shipped_splits(model)
    if not splits:
        raise SystemExit(
            f"no slicer-llm profile of {model} is shipped; run slicer calibrate-llm-codec"
        )
    rows: list[tuple[int, Any]] = []
    for split in splits:
        rows.append((split, "fp16"))
        rows.append((split, {"id": "slicer", "max_nmse": 0.001}))
        rows.append((split, {"id": "slicer-llm", "profile": f"{model}/{split}", "bits": bits}))
    return {
        "fleet[0].count": [10, 100, 500],
        "zip": {"fleet[0].split": [s for s, _ in rows], "codec": [c for _, c in rows]},
    }


def points(out: Path) -> list[dict[str, Any]]:
    """One dict per finished point: its split, codec label and id, fleet size and summary."""
    import pyarrow.parquet as pq

    rows = pq.read_table(out / "sweep.parquet").to_pylist()
    found = []
    for row in rows:
        if row["status"] != "complete":
            print(f"skipping failed point {row['point']}: {row['error']}", file=sys.stderr)
            continue
        summary = json.loads((out / row["point"] / "summary.json").read_text())
        codec = json.loads(row["codec"])
        found.append(
            {
                "split": json.loads(row["fleet[0].split"]),
                "codec": _label(codec),
                "codec_id": codec if isinstance(codec, str) else str(codec["id"]),
                "devices": json.loads(row["fleet[0].count"]),
                **summary,
            }
        )
    return found


def _label(codec: Any) -> str:
    if isinstance(codec, str):
        return codec
    extra = ",".join(f"{k}={v}" for k, v in codec.items() if k != "id")
    return f"{codec['id']}({extra})" if extra else str(codec["id"])


def _get(rows: list[dict[str, Any]], **where: Any) -> dict[str, Any] | None:
    for row in rows:
        if all(row[k] == v for k, v in where.items()):
            return row
    return None


def _f(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}g}"


def codec_table(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    largest = max(r["devices"] for r in rows)
    head = ["split", "codec", "bits/token", "vs fp16", "frame B", "vs fp16", "frame var B^2"]
    head += ["agreement", "first 32 equal", "server us/token"]
    body = []
    for r in sorted(
        (r for r in rows if r["devices"] == largest), key=lambda r: (r["split"], r["codec"])
    ):
        fp16 = _get(rows, split=r["split"], codec="fp16", devices=largest)
        cut = fp16["uplink_bits_per_token"] / r["uplink_bits_per_token"] if fp16 else None
        frame_cut = fp16["step_payload_bytes_mean"] / r["step_payload_bytes_mean"] if fp16 else None
        body.append(
            [
                str(r["split"]),
                r["codec"],
                _f(r["uplink_bits_per_token"], 4),
                _f(cut) + "x" if cut else "n/a",
                _f(r["step_payload_bytes_mean"], 4),
                _f(frame_cut) + "x" if frame_cut else "n/a",
                _f(r["step_payload_bytes_var"], 3),
                f"{r['mean_agreement']:.1%}",
                f"{r['share_matching_32']:.0%}",
                _f(1e6 * r["server_busy_s_per_token"], 3),
            ]
        )
    return head, body


def latency_table(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    head = ["devices", "split", "codec", "TTFT p50 s", "TTFT p95 s", "TPOT p50 ms"]
    head += ["TPOT p95 ms", "server us/token", "batch", "done"]
    body = []
    for r in sorted(rows, key=lambda r: (r["devices"], r["split"], r["codec"])):
        body.append(
            [
                str(r["devices"]),
                str(r["split"]),
                r["codec"],
                _f(r["p50_ttft_s"]),
                _f(r["p95_ttft_s"]),
                _f(1e3 * r["p50_tpot_s"] if r["p50_tpot_s"] is not None else None),
                _f(1e3 * r["p95_tpot_s"] if r["p95_tpot_s"] is not None else None),
                _f(1e6 * r["server_busy_s_per_token"]),
                _f(r["mean_running_batch"], 3),
                f"{r['completed']}/{r['requests']}",
            ]
        )
    return head, body


def slo_table(rows: list[dict[str, Any]], slo_s: float) -> tuple[list[str], list[list[str]]]:
    """Per fleet size: the shallowest split fp16 serves within the SLO, the SLICER-family split
    and codec (``slicer`` or ``slicer-llm``) with the least server time per token within it
    (then the fewest uplink bits per token), and the cut."""
    head = ["devices", "fp16 shallowest ok", "fp16 us/token", "slicer best", "slicer us/token"]
    head += ["cut"]
    body = []
    slicer = sorted({r["codec"] for r in rows if r["codec"].startswith("slicer")})
    for devices in sorted({r["devices"] for r in rows}):
        within = [r for r in rows if r["devices"] == devices and _meets(r, slo_s)]
        fp16 = sorted((r for r in within if r["codec"] == "fp16"), key=lambda r: r["split"])
        best = sorted(
            (r for r in within if r["codec"] in slicer),
            key=lambda r: (r["server_busy_s_per_token"], r["uplink_bits_per_token"]),
        )  # on equal server time, the codec that sends less
        base = fp16[0] if fp16 else None
        top = best[0] if best else None
        cut = (
            base["server_busy_s_per_token"] / top["server_busy_s_per_token"]
            if base and top
            else None
        )
        body.append(
            [
                str(devices),
                f"split {base['split']}" if base else "none",
                _f(1e6 * base["server_busy_s_per_token"]) if base else "n/a",
                f"split {top['split']} {top['codec_id']}" if top else "none",
                _f(1e6 * top["server_busy_s_per_token"]) if top else "n/a",
                _f(cut) + "x" if cut else "n/a",
            ]
        )
    return head, body


def _meets(row: dict[str, Any], slo_s: float) -> bool:
    """Every sequence completed and p95 TPOT within the SLO."""
    tpot = row["p95_tpot_s"]
    return row["completed"] == row["requests"] and tpot is not None and tpot <= slo_s


def targets(rows: list[dict[str, Any]]) -> list[str]:
    """The bits-per-token target per split: SLICER's cut against fp16 and its agreement."""
    lines = []
    largest = max(r["devices"] for r in rows)
    for r in sorted(rows, key=lambda r: r["split"]):
        if r["devices"] != largest or not r["codec"].startswith("slicer"):
            continue
        fp16 = _get(rows, split=r["split"], codec="fp16", devices=largest)
        if fp16 is None:
            continue
        cut = fp16["uplink_bits_per_token"] / r["uplink_bits_per_token"]
        frame_cut = fp16["step_payload_bytes_mean"] / r["step_payload_bytes_mean"]
        met = min(cut, frame_cut) >= BITS_TARGET and r["mean_agreement"] >= AGREEMENT_TARGET
        lines.append(
            f"split {r['split']} {r['codec']}: {cut:.2f}x fewer uplink bits per token than fp16 "
            f"({frame_cut:.2f}x per decode frame) at {r['mean_agreement']:.1%} agreement, "
            f"{r['share_matching_32']:.0%} of sequences with their first 32 tokens equal -> "
            f"{'MET' if met else 'MISSED'} (target >= {BITS_TARGET:g}x at >= "
            f"{AGREEMENT_TARGET:.0%})"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default="results/llm-fleet-scaling", type=Path)
    parser.add_argument("--tpot-slo-s", type=float, default=0.05, help="p95 TPOT SLO")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument(
        "--slicer-llm",
        type=float,
        default=None,
        metavar="BITS",
        help="sweep fp16, SLICER and slicer-llm at BITS at the splits with a shipped profile",
    )
    args = parser.parse_args(argv)
    if not (args.out / "sweep.parquet").exists():
        from fleet.run.runner import run
        from scenarios import load

        overrides = list(args.overrides)
        if args.slicer_llm is not None:
            overrides.insert(0, "sweep=" + json.dumps(slicer_llm_sweep(args.slicer_llm)))
        run(load(SCENARIO, overrides), args.out, quiet=False)
    rows = points(args.out)
    if not rows:
        print(f"no finished points in {args.out}", file=sys.stderr)
        return 1
    print(f"## Per split and codec (server time at {max(r['devices'] for r in rows)} devices)\n")
    print(table(*codec_table(rows)))
    print("\n## Latency and server time per fleet size\n")
    print(table(*latency_table(rows)))
    print(f"\n## Server time per token within a p95 TPOT SLO of {1e3 * args.tpot_slo_s:g} ms\n")
    print(table(*slo_table(rows, args.tpot_slo_s)))
    print("\n## Targets\n")
    for line in targets(rows):
        print(f"- {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
