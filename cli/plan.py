"""``slicer plan SCENARIO --slo-s X``: the split, codec setting and replica count to use
(``fleet.plan``), printed as the configurations judged, the Pareto set and the recommendation,
written to ``DIR/plan.json`` and a runnable ``DIR/plan.yaml``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cli.tables import table


def cmd_plan(args: argparse.Namespace) -> int:
    import scenarios
    from fleet.plan.output import plan
    from fleet.plan.search import Goal
    from fleet.run.check import check

    scenario = scenarios.load(args.file, args.set)
    check(scenario)
    goal = Goal(args.slo_s, args.metric, args.minimize, args.max_quality_loss)
    out = Path(args.out) if args.out is not None else Path("results") / scenario.name / "plan"
    replicas = [int(x) for x in args.replicas.split(",")] if args.replicas else None
    result = plan(scenario, goal, out, replicas=replicas, full=args.exhaustive, quiet=args.quiet)
    for key, values in result.space.dropped.items():
        print(f"not searched: {key} (swept {values}); planned at the scenario's own value")
    rows = [
        [
            v.config.label,
            _num(v.quality_loss),
            _num(v.latency_bound_s),
            v.fewest_replicas if v.fewest_replicas is not None else "-",
            ",".join(map(str, sorted(v.results))) or "-",
            v.answer if v.answer is not None else "-",
            v.pruned or "-",
        ]
        for v in result.verdicts
    ]
    heads = ["configuration", "quality loss", "latency bound s", "replicas bound"]
    print(table([*heads, "simulated at", "fewest meeting", "not further because"], rows))
    print(
        f"\nsimulated {len(result.simulated)} of {result.space.points} points "
        f"({goal.metric} <= {goal.slo_s} s, least {goal.minimize})"
    )
    _print_pareto(result.pareto(), goal.metric)
    best = result.recommended()
    if best is None:
        print("\nno configuration meets the goal: raise --slo-s, allow more replicas or codecs")
        return 1
    print(
        f"\nrecommended: {best['config']} with {best['replicas']} replica(s): "
        f"{goal.metric} {_num(best[goal.metric])} s, server busy "
        f"{_num(best['server_busy_s_per_request'])} s/request, device "
        f"{_num(best['device_energy_j_per_request'])} J/request, uplink "
        f"{_num(best['uplink_bytes_per_request'])} B/request"
    )
    print(f"plan: {out / 'plan.json'}\nrun it: slicer run {out / 'plan.yaml'}")
    return 0


def _print_pareto(rows: list[dict[str, Any]], metric: str) -> None:
    keys = ["replicas", "server_busy_s_per_request", "device_energy_j_per_request"]
    keys += ["uplink_bytes_per_request", metric]
    print("\nPareto set of the simulated points that meet the goal:")
    body = [[r["config"], *(_num(r[k]) for k in keys)] for r in rows]
    print(
        table(
            ["configuration", "replicas", "server s/req", "device J/req", "uplink B/req", metric],
            body,
        )
    )


def _num(value: Any) -> Any:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return value


def add_parser(sub: Any) -> None:
    p = sub.add_parser("plan", help="choose split, codec and replicas that meet a latency SLO")
    p.add_argument("file", help="scenario YAML with a sweep over splits, codecs and replicas")
    p.add_argument("--slo-s", type=float, required=True, metavar="S", help="latency SLO, seconds")
    p.add_argument("--metric", default="p95_latency_s", choices=["p95_latency_s", "p95_tpot_s"])
    p.add_argument(
        "--minimize",
        default="replicas",
        choices=["replicas", "server_s", "device_j", "uplink_bytes"],
    )
    p.add_argument(
        "--max-quality-loss",
        type=float,
        default=0.05,
        help="most 1 - agreement with the unsplit model a codec setting may lose (default 0.05)",
    )
    p.add_argument("--replicas", default=None, help="replica counts to search, e.g. 1,2,4,8")
    p.add_argument("--out", default=None, help="plan directory (default results/<name>/plan)")
    p.add_argument("--set", action="append", default=[], metavar="PATH=VALUE")
    p.add_argument("--exhaustive", action="store_true", help="simulate every point (the baseline)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_plan)
