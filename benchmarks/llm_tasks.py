"""Benchmark accuracy through the split against uplink bits per token, for SmolLM2-135M and
Gemma-3-270M, through lm-evaluation-harness (``models.harness``).

Run: ``python -m benchmarks.llm_tasks [--limit N] [--models a,b] [--tasks a,b] [--out DIR]``
(``--replot`` only redraws the figure from ``DIR/llm_tasks.json``).
Per model, three splits (shallow, middle, deep) x codecs (fp16, blockwise8, rans 8-bit, SLICER
at three distortion budgets, slicer-llm with the split's profile at ``LLM_BITS``; ``--codecs``
picks some by id) on the same seeded subset of every task (``--limit`` examples per
task, default ``DEFAULT_LIMIT``: about 33 minutes per model on 2 cores shared with other jobs).
It prints bits per token, each task's accuracy, and the mean change over tasks against the
unsplit model with its 95% stratified paired-bootstrap interval (``analysis.task_quality``),
then per model the smallest bits per token whose whole interval lies within 1 point and within
3 points of no change. It writes ``llm_tasks.json`` and the quality-vs-bits figure
``llm_tasks.png`` to ``--out`` after each model, keeping the rows an earlier run wrote there
that this one does not redo (so models, or codecs, can run one at a time; each row records its
``limit``). Head IFs are computed once per split and input; each codec reruns only the codec
and the tail.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import codec
import models
from analysis.task_quality import mean_change, paired_change, within
from cli.eval import evaluate_tasks, headline, write_atomic
from models.benchmark_data import TASKS, subset_ids
from models.harness import SplitLM, run_tasks

SPLITS = {"smollm2-135m": (4, 16, 28), "gemma-3-270m": (3, 10, 17)}
CODECS: tuple[dict[str, Any], ...] = (
    {"id": "fp16"},
    {"id": "blockwise8"},
    {"id": "rans", "bits": 8},
    {"id": "slicer", "max_nmse": 0.01},
    {"id": "slicer", "max_nmse": 0.03},
    {"id": "slicer", "max_nmse": 0.1},
)
LLM_BITS = 3.0  # slicer-llm's budget: about 95% teacher-forced agreement (README)
DEFAULT_LIMIT = 10
SEED = 0


def codecs_at(name: str, split: int, ids: set[str] | None = None) -> list[dict[str, Any]]:
    """The codec settings run at one split (those whose id is in ``ids``, if given)."""
    configs = [*CODECS, {"id": "slicer-llm", "profile": f"{name}/{split}", "bits": LLM_BITS}]
    return [c for c in configs if ids is None or c["id"] in ids]


def label(config: dict[str, Any]) -> str:
    params = ",".join(f"{k}={v}" for k, v in config.items() if k != "id")
    return f"{config['id']}({params})" if params else str(config["id"])


def run_model(
    name: str, tasks: list[str], limit: int, ids: set[str] | None = None
) -> list[dict[str, Any]]:
    """Every split x codec row of one model (the first row is the unsplit model; ``ids`` picks
    codecs by id). A codec that cannot carry a split's IF (fp16 beyond its range) gives a row
    with its ``error`` and no scores."""
    model = models.load(name)
    doc_ids = {t: subset_ids(t, limit, SEED) for t in tasks}
    unsplit = run_tasks(SplitLM(model), doc_ids)
    rows = [_row(name, None, None, unsplit, unsplit, None)]
    for split in SPLITS[name]:
        memo: dict[Any, Any] = {}
        for config in codecs_at(name, split, ids):
            started = time.perf_counter()
            try:
                scores, uplink = evaluate_tasks(
                    model, split, codec.get_codec(config), doc_ids, memo
                )
            except codec.CodecError as exc:
                rows.append({"model": name, "split": split, "codec": config, "error": str(exc)})
                print(f"{name:13s} s{split} {label(config)}: cannot carry this IF: {exc}")
                continue
            rows.append(_row(name, split, config, unsplit, scores, uplink))
            rows[-1]["seconds"] = time.perf_counter() - started
            print(_line(rows[-1], tasks), flush=True)
    return rows


def scored(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with scores (not the codecs that could not carry their IF)."""
    return [r for r in rows if "error" not in r]


def _row(
    name: str,
    split: int | None,
    config: dict[str, Any] | None,
    unsplit: dict[str, Any],
    scores: dict[str, Any],
    uplink: dict[str, Any] | None,
) -> dict[str, Any]:
    pairs = {t: (unsplit[t].scores[headline(t)], s.scores[headline(t)]) for t, s in scores.items()}
    change = mean_change(pairs, seed=SEED)
    payload = sum(u[0] for u in uplink.values()) if uplink else 0.0
    tokens = sum(u[1] for u in uplink.values()) if uplink else 0
    return {
        "model": name,
        "split": split,
        "codec": config,
        "bits_per_token": 8 * payload / tokens if tokens else None,
        "accuracy": {t: sum(s) / len(s) for t, (_, s) in pairs.items()},
        "change": {t: paired_change(*p, seed=SEED).mean for t, p in pairs.items()},
        "mean_change": change.mean,
        "mean_change_low": change.low,
        "mean_change_high": change.high,
        "within_1pt": within(change, 1.0),
        "within_3pt": within(change, 3.0),
        "examples": change.examples,
    }


def _line(row: dict[str, Any], tasks: list[str]) -> str:
    setting = "unsplit" if row["split"] is None else f"s{row['split']} {label(row['codec'])}"
    bits = "-" if row["bits_per_token"] is None else f"{row['bits_per_token']:8.1f}"
    accs = " ".join(f"{100 * row['accuracy'][t]:5.1f}" for t in tasks)
    change = (
        f"{100 * row['mean_change']:+5.1f} "
        f"[{100 * row['mean_change_low']:+5.1f},{100 * row['mean_change_high']:+5.1f}]"
    )
    return f"{row['model']:13s} {setting:28s} {bits:>8s}  {accs}  {change}"


def smallest_bits(rows: list[dict[str, Any]], key: str) -> dict[str, Any] | None:
    """The row with the fewest bits per token whose interval passes ``key``."""
    passing = [r for r in scored(rows) if r["split"] is not None and r[key]]
    return min(passing, key=lambda r: r["bits_per_token"]) if passing else None


def figure(rows: list[dict[str, Any]], path: Path) -> None:
    """Mean change over tasks against bits per token, one line per model and split."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    rows = scored(rows)
    for name, split in sorted({(r["model"], r["split"]) for r in rows if r["split"] is not None}):
        ours = sorted(
            (r for r in rows if (r["model"], r["split"]) == (name, split)),
            key=lambda r: r["bits_per_token"],
        )
        change = [100 * r["mean_change"] for r in ours]
        ax.errorbar(
            [r["bits_per_token"] for r in ours],
            change,
            yerr=[
                [c - 100 * r["mean_change_low"] for c, r in zip(change, ours, strict=True)],
                [100 * r["mean_change_high"] - c for c, r in zip(change, ours, strict=True)],
            ],
            marker="o",
            capsize=3,
            label=f"{name} split {split}",
        )
    ax.axhspan(-3, 0, color="0.9", label="0-3 point band")
    ax.set_xscale("log")
    ax.set_xlabel("uplink bits per token")
    ax.set_ylabel("mean accuracy change over tasks (points, 95% CI)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    write_atomic(path, lambda p: fig.savefig(p, format="png", dpi=120))
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help="examples per task")
    parser.add_argument("--models", default=",".join(SPLITS))
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--out", default="results/llm-tasks")
    parser.add_argument(
        "--codecs", default="", help="codec ids to run, e.g. slicer-llm (default: every one)"
    )
    parser.add_argument(
        "--replot", action="store_true", help="only redraw the figure from --out's llm_tasks.json"
    )
    args = parser.parse_args()
    tasks = args.tasks.split(",")
    out = Path(args.out)
    if args.replot:
        figure(json.loads((out / "llm_tasks.json").read_text())["rows"], out / "llm_tasks.png")
        return
    out.mkdir(parents=True, exist_ok=True)
    print(
        f"{'model':13s} {'setting':28s} {'bits/tok':>8s}  {' '.join(t[:5] for t in tasks)}  "
        "mean change [95% CI] (points)"
    )
    ids = set(args.codecs.split(",")) if args.codecs else None
    rows = kept_rows(out / "llm_tasks.json", args.models.split(","), tasks, ids)
    for name in args.models.split(","):
        model_rows = run_model(name, tasks, args.limit, ids)
        print(_line(model_rows[0], tasks))
        for key, points in (("within_1pt", 1), ("within_3pt", 3)):
            best = smallest_bits(model_rows, key)
            found = _line(best, tasks) if best else "none"
            print(f"  smallest bits/token within {points} point(s): {found}")
        rows += [{**row, "limit": args.limit} for row in model_rows]
        text = json.dumps({"seed": SEED, "tasks": tasks, "rows": rows}, indent=1)
        write_atomic(out / "llm_tasks.json", lambda p, text=text: p.write_text(text))
        figure(rows, out / "llm_tasks.png")
        print(f"results so far: {out}/llm_tasks.json, {out}/llm_tasks.png", flush=True)


def kept_rows(
    path: Path, running: list[str], tasks: list[str], ids: set[str] | None = None
) -> list[dict[str, Any]]:
    """The rows of an earlier run into the same folder, on the same tasks, that this run does
    not redo: other models, and with ``ids`` the running models' other codecs (each row keeps
    its own ``limit``)."""
    if not path.is_file():
        return []
    earlier = json.loads(path.read_text())
    if earlier.get("tasks") != tasks or earlier.get("seed") != SEED:
        print(f"{path}: other tasks or seed; its rows are replaced")
        return []
    return [row for row in earlier["rows"] if not _redone(row, running, ids)]


def _redone(row: dict[str, Any], running: list[str], ids: set[str] | None) -> bool:
    """Whether this run writes ``row`` again (a running model's unsplit row always)."""
    if row["model"] not in running:
        return False
    return ids is None or row["codec"] is None or row["codec"]["id"] in ids


if __name__ == "__main__":
    main()
