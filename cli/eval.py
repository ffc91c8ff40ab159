"""``slicer eval --tasks piqa,hellaswag``: benchmark accuracy through a split and codec beside
the unsplit model, through lm-evaluation-harness (:mod:`models.harness`).

Each task runs on the same seeded subset of its official split both ways (``--limit N``
examples, all of them without it). Per task it prints the unsplit and split accuracy, their
paired change with a 95% paired-bootstrap interval (:mod:`analysis.task_quality`), and the
uplink: payload bytes per example and bits per token sent. ``tasks.json`` (one row per task)
and ``examples.parquet`` (one row per example) land in ``--out``, each written under a
temporary name and renamed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
from pathlib import Path
from typing import Any

from analysis.task_quality import paired_change
from cli.tables import table

#: The accuracy each task is usually quoted by (length-normalised where the harness offers it
#: and model cards use it); both are written to the results.
HEADLINE = {"hellaswag": "acc_norm", "arc_easy": "acc_norm", "arc_challenge": "acc_norm"}


def headline(benchmark: str) -> str:
    return HEADLINE.get(benchmark, "acc")


def parse_tasks(text: str) -> list[str]:
    from models.benchmark_data import TASKS

    names = [t.strip() for t in text.split(",") if t.strip()]
    names = list(TASKS) if names == ["all"] else names
    unknown = [t for t in names if t not in TASKS]
    if unknown or not names:
        raise ValueError(f"--tasks: unknown {unknown or text!r}; choose from {list(TASKS)} or all")
    return names


def evaluate_tasks(
    model: Any, split: int, codec: Any, doc_ids: dict[str, list[int]], memo: dict[Any, Any]
) -> tuple[dict[str, Any], dict[str, tuple[float, int, int]]]:
    """Per benchmark: the split's ``TaskScores`` and (payload bytes, tokens, requests) sent."""
    from models.harness import SplitLM, run_tasks

    scores, uplink = {}, {}
    for benchmark, ids in doc_ids.items():
        lm = SplitLM(model, split, codec, memo=memo)
        scores[benchmark] = run_tasks(lm, {benchmark: ids})[benchmark]
        channel = lm.channel
        uplink[benchmark] = (channel.payload_bytes, channel.units, len(ids))
    return scores, uplink


def task_rows(
    unsplit: dict[str, Any], split: dict[str, Any], uplink: dict[str, Any]
) -> list[dict[str, Any]]:
    """One summary row per task: accuracies, paired change, uplink."""
    rows = []
    for benchmark, scores in split.items():
        metric = headline(benchmark)
        base, ours = unsplit[benchmark].scores[metric], scores.scores[metric]
        change = paired_change(base, ours)
        payload, tokens, examples = uplink[benchmark]
        rows.append(
            {
                "task": benchmark,
                "metric": metric,
                "examples": examples,
                "unsplit": sum(base) / len(base),
                "split": sum(ours) / len(ours),
                "change": change.mean,
                "change_low": change.low,
                "change_high": change.high,
                "flips_to_wrong": change.flips_to_wrong,
                "flips_to_correct": change.flips_to_correct,
                "payload_bytes_per_example": payload / max(examples, 1),
                "bits_per_token": 8 * payload / max(tokens, 1),
                "unsplit_metrics": unsplit[benchmark].metrics,
                "split_metrics": scores.metrics,
            }
        )
    return rows


def write_atomic(path: Path, write: Any) -> None:
    """``write(tmp_path)``, then rename onto ``path``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


def write_results(
    out: Path, meta: dict[str, Any], rows: list[dict[str, Any]], examples: list[dict[str, Any]]
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps({**meta, "tasks": rows}, indent=2)
    write_atomic(out / "tasks.json", lambda p: p.write_text(text))
    frame = pa.Table.from_pylist(examples)
    write_atomic(out / "examples.parquet", lambda p: pq.write_table(frame, p))


def example_rows(
    meta: dict[str, Any], unsplit: dict[str, Any], split: dict[str, Any]
) -> list[dict[str, Any]]:
    rows = []
    for benchmark, scores in split.items():
        for i, doc_id in enumerate(scores.doc_ids):
            row = {
                "model": meta["model"],
                "split": meta["split"],
                "codec": json.dumps(meta["codec"]),
            }
            row |= {"task": benchmark, "doc_id": doc_id}
            for metric, values in scores.scores.items():
                row[f"unsplit_{metric}"] = unsplit[benchmark].scores[metric][i]
                row[f"split_{metric}"] = values[i]
            rows.append(row)
    return rows


def cmd_eval_tasks(args: argparse.Namespace) -> int:
    import codec
    import models
    from models.benchmark_data import subset_ids
    from models.harness import SplitLM, run_tasks

    benchmarks = parse_tasks(args.tasks)
    model = models.load(args.model)
    chosen = codec.get_codec(args.codec) if args.codec is not None else None
    doc_ids = {b: subset_ids(b, args.limit, args.seed) for b in benchmarks}
    unsplit = run_tasks(SplitLM(model), doc_ids)
    split, uplink = evaluate_tasks(model, args.split, chosen, doc_ids, {})
    config = chosen.get_config() if chosen is not None else None
    meta = {"model": model.name, "split": args.split, "codec": config, "seed": args.seed}
    rows = task_rows(unsplit, split, uplink)
    print(f"{model.name} split {args.split}/{model.num_blocks}, codec {config}, seed {args.seed}")
    headers = [
        "task",
        "metric",
        "n",
        "unsplit",
        "split",
        "change [95% CI]",
        "B/example",
        "bits/token",
    ]
    print(table(headers, [_printed(r) for r in rows]))
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    name = f"{model.name}-split{args.split}-{config['id'] if config else 'none'}-{stamp}"
    out = Path(args.out) if args.out else Path("results") / "eval" / name
    write_results(out, meta, rows, example_rows(meta, unsplit, split))
    print(f"results: {out}")
    return 0


def _printed(row: dict[str, Any]) -> list[Any]:
    low, high = 100 * row["change_low"], 100 * row["change_high"]
    interval = f"{100 * row['change']:+.1f} [{low:+.1f}, {high:+.1f}]"
    return [
        row["task"],
        row["metric"],
        row["examples"],
        f"{100 * row['unsplit']:.1f}",
        f"{100 * row['split']:.1f}",
        interval,
        f"{row['payload_bytes_per_example']:.0f}",
        f"{row['bits_per_token']:.1f}",
    ]
