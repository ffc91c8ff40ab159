"""The ``slicer`` command line. Each subcommand imports what it needs when it runs, so
``slicer --help`` stays fast.

    slicer models                       list models, tasks and split points
    slicer profile MODEL [--seq-len N]  per-block FLOPs, bytes and IF sizes
    slicer calibrate MODEL              fit a hardware entry to this machine's measured times
    slicer calibrate-llm-codec --model M --splits 4,16,28   slicer-llm profiles (package data)
    slicer eval --model M --split S --codec JSON   task quality through the split
    slicer eval ... --tasks piqa,hellaswag [--limit N]   benchmark accuracy (lm-eval harness)
    slicer run FILE [--out DIR] [--set k=v]... [--mode real|replay] [--address A] [--local]
    slicer validate FILE [--set k=v]...  check a scenario (and every sweep point) without running
    slicer schema [--markdown [--write README.md]]   the scenario file's JSON schema, or its
                                        Markdown reference (written into the README)
    slicer plan FILE --slo-s S [--minimize replicas|server_s|device_j|uplink_bytes]
                                        the split, codec and replicas to use (plan.yaml)
    slicer report DIR [--slo-s S]       report.html and report.md of a run or sweep
    slicer compare DIR_A DIR_B [--out DIR] [--slo-s S]   two runs or two sweeps side by side
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from typing import Any

from cli.calibrate import cmd_calibrate, cmd_calibrate_codecs
from cli.guard import guarded
from cli.llm_codec import add_parser as _add_llm_codec_command
from cli.plan import add_parser as _add_plan_command
from cli.tables import table as _table
from fleet.run.check import check


def cmd_models(args: argparse.Namespace) -> int:
    import models

    rows = []
    for info in models.available():
        model = models.load(info.name)  # synthetic models build no weights until they run
        splits = f"0..{model.num_blocks}"
        rows.append([info.name, info.task, "yes" if info.pretrained else "no", splits, info.source])
    print(_table(["model", "task", "pretrained", "split points", "weights"], rows))
    print("\n'split points' 0 sends the input; the last runs the whole model on the device.")
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    import models

    model = models.load(args.model)
    profiles = model.block_profiles(
        seq_len=args.seq_len, batch=args.batch, context_len=args.context_len
    )
    rows = []
    total = 0.0
    for split, p in enumerate(profiles, start=1):
        total += p.flops
        rows.append(
            [
                split,
                p.name,
                p.flops / 1e6,
                total / 1e6,
                p.weight_bytes / 1e6,
                p.out_bytes / 1e3,
                p.kv_bytes_per_token,
            ]
        )
    headers = [
        "split after",
        "block",
        "MFLOP",
        "cumulative MFLOP",
        "weights MB",
        "IF kB (fp32)",
        "KV B/token",
    ]
    lengths = f"seq_len={args.seq_len} " if model.task != "image-classification" else ""
    print(f"{model.name}: {lengths}batch={args.batch}")
    print(_table(headers, rows))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    if args.tasks is not None:  # benchmark accuracy through lm-evaluation-harness
        from cli.eval import cmd_eval_tasks

        return cmd_eval_tasks(args)
    import codec
    import models
    from models.quality import evaluate

    model = models.load(args.model)
    chosen = codec.get_codec(args.codec) if args.codec is not None else None
    report = evaluate(model, args.split, chosen, limit=args.limit)
    unit = "token" if model.task == "causal-lm" else "sample"
    print(f"{model.name} split {report.split}/{model.num_blocks}, codec {report.codec}")
    print(
        f"IF per {unit}: {report.raw_bytes:.0f} B as float32, {report.payload_bytes:.1f} B sent "
        f"({report.raw_bytes / max(report.payload_bytes, 1e-9):.1f}x smaller), "
        f"{report.samples} samples"
    )
    rows = [
        [name, report.uncompressed[name], value, value - report.uncompressed[name]]
        for name, value in report.metrics.items()
    ]
    print(_table(["metric", "uncompressed split", "with codec", "change"], rows))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import scenarios
    from fleet.run.runner import run

    overrides = [*args.set, *([f"mode={args.mode}"] if args.mode is not None else [])]
    if args.address is not None:
        overrides.append(f"ray.address={args.address}")
    if args.local:
        overrides.append("ray.enabled=false")
    scenario = scenarios.load(args.file, overrides)
    check(scenario)
    out = Path(args.out) if args.out is not None else None
    results = run(scenario, out, quiet=args.quiet, ignore_limits=args.ignore_limits)
    keys: tuple[str, ...] = ("requests", "completed", "dropped", "p50_latency_s", "p95_latency_s")
    if scenario.model.task == "generate":
        keys += ("p95_ttft_s", "p95_tpot_s", "uplink_bits_per_token", "mean_agreement")
    else:
        keys += ("throughput_rps",)
    rows = [[r.path.name, *(r.summary.get(k, "-") for k in keys)] for r in results]
    print(_table(["run", *keys], rows))
    where = results[0].path if len(results) == 1 else results[0].path.parent
    print(f"results: {where}")
    failed = [r for r in results if r.error]
    for r in failed:
        print(f"failed: {r.path.name}: {r.error}", file=sys.stderr)
    return 1 if failed else 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Every check that needs no compute, as ``run`` makes them before it starts: names,
    files and their contents, replay coverage, the resource estimate, the output path."""
    from pathlib import Path

    import scenarios
    from fleet.run.estimate import Limits, enforce, estimate
    from fleet.run.output import check_output

    scenario = scenarios.load(args.file, args.set)
    check(scenario)
    points = scenarios.expand(scenario)
    if not args.ignore_limits:
        enforce(points, Limits.here())
    if args.out is not None:
        check_output(Path(args.out))
    groups = ", ".join(f"{g.name} x{g.count}" for g in scenario.fleet)
    print(f"{args.file}: ok: scenario {scenario.name!r}, {len(points)} run(s), fleet {groups}")
    largest = max((estimate(p.scenario) for p in points), key=lambda e: e.memory_bytes)
    print(f"largest run: {largest.text()}")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    import scenarios
    from scenarios import schema_doc

    if args.write is not None:
        changed = schema_doc.update_readme(args.write)
        print(f"{args.write}: scenario reference {'updated' if changed else 'up to date'}")
    elif args.markdown:
        sys.stdout.write(schema_doc.markdown())
    else:
        print(json.dumps(scenarios.json_schema(), indent=2))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from analysis.report import write_report

    html_path, md_path = write_report(args.results, slo_s=args.slo_s)
    print(f"report: {html_path}\n        {md_path}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from analysis.report import write_comparison

    html_path, md_path = write_comparison(args.a, args.b, args.out, slo_s=args.slo_s)
    print(f"comparison: {html_path}\n            {md_path}")
    return 0


LIMITS_HELP = (
    "run even where the resource estimate passes this machine's limits (README: Troubleshooting)"
)


def build_parser() -> argparse.ArgumentParser:
    """The ``slicer`` argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="slicer", description="slicer-fleet: split models, IF codecs and fleet simulation"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _add_model_commands(sub)
    _add_llm_codec_command(sub)
    _add_run_commands(sub)
    _add_plan_command(sub)
    _add_report_commands(sub)
    return parser


def _add_model_commands(sub: Any) -> None:
    """models, profile, calibrate, eval: what a model and a codec do, without a fleet."""
    p = sub.add_parser("models", help="list models, tasks and split points")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("profile", help="per-block FLOPs, weight bytes and IF sizes of a model")
    p.add_argument("model")
    p.add_argument("--seq-len", type=int, default=128, help="tokens per call (LMs)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--context-len", type=int, default=None, help="attended tokens (default seq)")
    p.set_defaults(func=cmd_profile)

    p = sub.add_parser("calibrate", help="fit a hardware entry to measured per-block times")
    p.add_argument("model")
    p.add_argument("--name", default="this-cpu", help="name of the fitted hardware entry")
    p.add_argument("--out", default=None, help="YAML path (default results/calibration/...)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1, help="torch threads while timing")
    p.add_argument("--batch", type=int, default=4, help="inputs per call (vision, encoders)")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser(
        "calibrate-codecs",
        help="time codec calls here and fit per-call, per-element, per-byte costs",
    )
    p.add_argument("--out", default=None, help="YAML path (default results/calibration/...)")
    p.add_argument("--repeats", type=int, default=5, help="timed calls per size (median kept)")
    p.add_argument(
        "--codec",
        type=_codec_arg,
        action="append",
        default=None,
        help="a codec config to fit (repeatable; default: every codec and bundled setting)",
    )
    p.add_argument(
        "--cpu-score",
        type=float,
        default=None,
        help="this machine's Geekbench 6 single-core score, written with the fits: simulated "
        "hardware scales codec time by it over the hardware entry's cpu_core_score",
    )
    p.add_argument(
        "--ifs",
        default=None,
        metavar="MODEL",
        help="time a causal LM's real IFs (e.g. smollm2-135m) instead of the synthetic tensor",
    )
    p.set_defaults(func=cmd_calibrate_codecs)

    p = sub.add_parser("eval", help="task quality through a split with a codec in between")
    p.add_argument("--model", required=True)
    p.add_argument("--split", type=int, required=True)
    p.add_argument(
        "--codec", type=_codec_arg, default=None, help='fp16, or a config: \'{"id": "slicer"}\''
    )
    p.add_argument("--limit", type=int, default=None, help="fewer samples, for a quick look")
    p.add_argument("--tasks", default=None, help="benchmarks, e.g. piqa,hellaswag (or all)")
    p.add_argument("--seed", type=int, default=0, help="which --limit examples (with --tasks)")
    p.add_argument("--out", default=None, help="results folder (with --tasks)")
    p.set_defaults(func=cmd_eval)


def _add_run_commands(sub: Any) -> None:
    """run, validate, schema: scenario files."""
    p = sub.add_parser("run", help="run a scenario file (or its whole sweep)")
    p.add_argument("file", help="scenario YAML")
    p.add_argument("--out", default=None, help="run directory (default results/<name>/<time>)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="override a field, e.g. --set fleet[0].count=100 (repeatable)",
    )
    p.add_argument(
        "--mode",
        choices=["real", "replay"],
        default=None,
        help="real: run models and codec; replay: sample a recorded profile",
    )
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.add_argument("--address", default=None, help="join a Ray cluster: auto or HOST:PORT")
    p.add_argument(
        "--local", action="store_true", help="real compute in this process instead of on Ray actors"
    )
    p.add_argument("--ignore-limits", action="store_true", help=LIMITS_HELP)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("validate", help="check a scenario file without running it")
    p.add_argument("file")
    p.add_argument("--set", action="append", default=[], metavar="PATH=VALUE")
    p.add_argument("--out", default=None, help="also check that this results path is writable")
    p.add_argument("--ignore-limits", action="store_true", help=LIMITS_HELP)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("schema", help="print the scenario JSON schema (or its Markdown reference)")
    p.add_argument("--markdown", action="store_true", help="the Markdown scenario reference")
    p.add_argument(
        "--write",
        metavar="FILE",
        default=None,
        help="with --markdown: replace the reference between the markers in FILE (the README)",
    )
    p.set_defaults(func=cmd_schema)


def _add_report_commands(sub: Any) -> None:
    """report, compare: read finished results."""
    slo_help = "latency SLO in seconds: adds SLO attainment, capacity and replicas needed"
    p = sub.add_parser("report", help="write report.html and report.md beside a run's results")
    p.add_argument("results", metavar="RESULTS_DIR", help="a run or sweep directory")
    p.add_argument("--slo-s", type=float, default=None, metavar="S", help=slo_help)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("compare", help="two runs or two sweeps side by side")
    p.add_argument("a", metavar="DIR_A", help="a run or sweep directory (A)")
    p.add_argument("b", metavar="DIR_B", help="a run or sweep directory of the same kind (B)")
    p.add_argument("--out", default=None, help="where to write (default DIR_A/compare-<B name>)")
    p.add_argument("--slo-s", type=float, default=None, metavar="S", help=slo_help)
    p.set_defaults(func=cmd_compare)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return guarded(args.command, lambda: int(args.func(args)))


def _codec_arg(text: str) -> Any:
    """A codec config as JSON, or a bare id (``fp16``) as scenario files accept it."""
    if re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]*", text.strip()):
        return {"id": text.strip()}
    return _json_arg(text)


def _json_arg(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {text!r} ({exc})") from exc


if __name__ == "__main__":
    sys.exit(main())
