"""Check the names a scenario takes from other packages, and the files it names.

``check(scenario)`` raises one ``ScenarioError`` listing every problem, each at its field path:
a model that ``models.available()`` lacks, a split beyond the model's blocks, hardware missing
from the catalog or on the wrong side (fleet groups need device entries, servers need server
entries; ``any`` entries fit both), a dtype the hardware has no peak for, a codec config that
``codec.get_codec`` refuses, and trace, arrival or replay files that do not exist. A sweep's
points are checked instead of the scenario they come from (a sweep may replace a name in every
point); a problem only some points have says which points.

The schema cannot check these without importing torch; this module imports ``models`` and
``codec`` inside ``check``. Split ranges come from ``models.load_shape`` (a pretrained model's
``synthetic:`` twin builds no weights), once per model per call; nothing is cached between
calls. Whether a weights package is installed shows when a real run loads the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fleet.run.check_files import FileChecks
from scenarios.errors import Problem, ScenarioError
from scenarios.schema import CodecSpec, LinkSpec, Scenario, TraceArrivals
from scenarios.sweep import capped, expand, points_text


class _Names:
    """What one ``check`` call looked up, so that sweep points reuse it."""

    def __init__(self) -> None:
        import codec
        import models
        from models.hardware import catalog

        self.codec = codec
        self.models = models
        self.model_names = [info.name for info in models.available()]
        self.hardware = catalog()
        self.blocks: dict[str, int | str] = {}  # model name -> num_blocks, or why it failed
        self.tasks: dict[str, str] = {}  # model name -> its task (causal-lm, ...)
        self.codecs: dict[str, str | None] = {}  # config repr -> why it failed, or None
        self.costs: dict[str | None, Any] = {}  # codec cost file -> CodecTimes, or why not
        self.files = FileChecks()  # traces and replay profiles, read once per call

    def num_blocks(self, name: str) -> int | str:
        if name not in self.blocks:
            try:
                shape = self.models.load_shape(name)
                self.blocks[name] = shape.num_blocks
                self.tasks[name] = shape.task
            except (self.models.ModelError, OSError, ImportError) as exc:
                self.blocks[name] = f"cannot load model {name!r}: {exc}"
        return self.blocks[name]

    def codec_problem(self, spec: CodecSpec) -> str | None:
        key = repr(spec.config())
        if key not in self.codecs:
            try:
                self.codec.get_codec(spec.config())
                self.codecs[key] = None
            except (ValueError, TypeError) as exc:  # CodecError is a ValueError
                self.codecs[key] = str(exc)
        return self.codecs[key]

    def codec_times(self, path: str | None) -> Any:
        """The codec cost fits in ``path`` (None: the bundled ones), or why they cannot be
        read."""
        from models.codec_time import CodecTimes

        if path not in self.costs:
            try:
                self.costs[path] = CodecTimes.read(path)
            except ValueError as exc:
                self.costs[path] = str(exc)
        return self.costs[path]

    def codec_cost_problem(self, times: Any, spec: CodecSpec) -> str | None:
        """Why ``spec`` has no codec time in ``times`` (its own problems are reported apart)."""
        from server.engine.jobs import full_codec_key

        if self.codec_problem(spec) is not None:
            return None
        try:
            times.resolve(full_codec_key(spec.config()))
        except ValueError as exc:
            return str(exc)
        return None


def check(scenario: Scenario) -> None:
    """Raise ``ScenarioError`` listing every unknown name and missing file in ``scenario``."""
    names = _Names()
    specs = expand(scenario)  # without a sweep: the scenario itself
    points: dict[tuple[str, str], list[int]] = {}  # (path, message) -> points that have it
    for spec in specs:
        for problem in _problems(spec.scenario, names):
            points.setdefault((problem.path, problem.message), []).append(spec.index)
    problems: list[Problem] = []
    for (path, message), indices in points.items():
        if len(indices) < len(specs):
            message = f"{points_text(indices, [specs[i].params for i in indices])}: {message}"
        problems.append(Problem(path, message))
    if problems:
        raise ScenarioError(capped(problems))


def _problems(scenario: Scenario, names: _Names) -> list[Problem]:
    problems, blocks = _model(scenario, names)
    times = names.codec_times(scenario.codec_costs)
    if isinstance(times, str):  # the cost file itself is wrong: said once, at its field
        problems.append(Problem("codec_costs", times))
    problems += _codec(scenario.codec, "codec", names, times)
    for i in range(len(scenario.fleet)):
        problems += _group(scenario, i, blocks, names)
    for i, cell in enumerate(scenario.network.cells):
        problems += _link_files(cell.uplink, f"network.cells[{i}].uplink", names)
        problems += _link_files(cell.downlink, f"network.cells[{i}].downlink", names)
    servers = scenario.servers
    problems += _hardware(servers.hardware, servers.dtype, "servers", "server", names)
    if scenario.replay_from is not None and not Path(scenario.replay_from).exists():
        problems.append(Problem("replay_from", f"not found: {_shown(scenario.replay_from)}"))
    else:
        problems += _replay(scenario, names)
    return problems


def _model(scenario: Scenario, names: _Names) -> tuple[list[Problem], int | str | None]:
    """Problems of ``model``, and its number of blocks (an error text, or None if unknown)."""
    problems: list[Problem] = []
    model = scenario.model.name
    if model not in names.model_names:
        available = ", ".join(names.model_names)
        problems.append(Problem("model.name", f"unknown model {model!r}; available: {available}"))
        return problems, None
    blocks = names.num_blocks(model)
    if isinstance(blocks, str):
        problems.append(Problem("model.name", blocks))
        return problems, blocks
    task = names.tasks.get(model)
    if scenario.model.task == "generate" and task != "causal-lm":
        problems.append(
            Problem(
                "model.task",
                f"generate needs a causal language model; {model} is a "
                f"{task} model (use task: infer)",
            )
        )
    prompts = scenario.model.prompts
    if prompts != "lee-background" and task != "causal-lm":
        problems.append(
            Problem(
                "model.prompts",
                f"prompts choose a causal language model's text; {model} is a {task} model, "
                f"which reads its own samples (remove prompts: {prompts})",
            )
        )
    return problems, blocks


def _group(scenario: Scenario, i: int, blocks: int | str | None, names: _Names) -> list[Problem]:
    """Problems of ``fleet[i]``: its split against the model, hardware, codec and files."""
    problems: list[Problem] = []
    group, where, model = scenario.fleet[i], f"fleet[{i}]", scenario.model.name
    if scenario.model.task == "generate" and isinstance(blocks, int) and group.split >= blocks:
        problems.append(
            Problem(
                f"{where}.split",
                f"task: generate needs a server tail: use a split within 0..{blocks - 1} "
                f"({model} has {blocks} blocks), got {group.split}",
            )
        )
    elif isinstance(blocks, int) and group.split > blocks:
        problems.append(
            Problem(
                f"{where}.split",
                f"must be within 0..{blocks} ({model} has {blocks} blocks), got {group.split}",
            )
        )
    problems += _hardware(group.hardware, group.dtype, where, "device", names)
    if group.codec is not None:
        times = names.codec_times(scenario.codec_costs)
        problems += _codec(group.codec, f"{where}.codec", names, times)
        problems += _llm_profile(group.codec, f"{where}.codec.profile", model, group.split)
    else:  # the scenario's codec carries this group's IF
        problems += _llm_profile(scenario.codec, "codec.profile", model, group.split)
    if isinstance(group.arrivals, TraceArrivals):
        missing = _file(group.arrivals.path, f"{where}.arrivals.path", "arrival trace")
        why = names.files.arrival_trace_problem(group.arrivals.path) if not missing else None
        problems += missing + ([Problem(f"{where}.arrivals.path", why)] if why else [])
    problems += _link_files(group.uplink, f"{where}.uplink", names)
    problems += _link_files(group.downlink, f"{where}.downlink", names)
    return problems


def _hardware(name: str, dtype: str, where: str, side: str, names: _Names) -> list[Problem]:
    from models.hardware import HardwareError

    fits = [n for n, spec in names.hardware.items() if spec.kind in (side, "any")]
    role = "fleet groups need a device entry" if side == "device" else "servers need a server entry"
    spec = names.hardware.get(name)
    if spec is None:
        return [
            Problem(f"{where}.hardware", f"unknown hardware {name!r}; {role}: {', '.join(fits)}")
        ]
    if spec.kind not in (side, "any"):
        message = f"{name!r} is a {spec.kind} entry; {role}: {', '.join(fits)}"
        return [Problem(f"{where}.hardware", message)]
    try:
        spec.peak(dtype)
    except HardwareError as exc:
        return [Problem(f"{where}.dtype", str(exc))]
    return []


def _codec(spec: CodecSpec, where: str, names: _Names, times: Any) -> list[Problem]:
    """A codec config no codec accepts, or (``times``: readable cost fits) one without a
    codec time."""
    why = names.codec_problem(spec)
    if why is None and not isinstance(times, str):
        why = names.codec_cost_problem(times, spec)
    return [] if why is None else [Problem(where, why)]


def _llm_profile(spec: CodecSpec, where: str, model: str, split: int) -> list[Problem]:
    """A ``slicer-llm`` codec is calibrated for one (model, split): its ``profile`` must name the
    group's own, else the stream would be coded in another model's transform."""
    config = spec.config()
    if config.get("id") != "slicer-llm":
        return []
    want = f"{model}/{split}"
    got = config.get("profile")
    if got == want:
        return []
    found = "is missing (the default is smollm2-135m/16)" if got is None else f"is {got!r}"
    return [
        Problem(
            where,
            f"slicer-llm needs the profile of this group's model and split, {want!r}; it {found} "
            f"(make one with `slicer calibrate-llm-codec --model {model} --splits {split}`)",
        )
    ]


def _link_files(link: LinkSpec | None, where: str, names: _Names) -> list[Problem]:
    """A link's trace: its file exists and parses, its synthetic preset is known."""
    if link is None or link.trace is None:
        return []
    if link.trace.startswith("file:"):
        missing = _file(link.trace.removeprefix("file:"), f"{where}.trace", "bandwidth trace")
        if missing:
            return missing
    why = names.files.trace_problem(link)
    return [] if why is None else [Problem(f"{where}.trace", why)]


def _replay(scenario: Scenario, names: _Names) -> list[Problem]:
    """``replay_from``: it exists, and its profiles answer every group's (split, codec)."""
    path = scenario.replay_from
    if scenario.mode != "replay" or path is None:
        return []
    if Path(path).suffix.lower() in (".yaml", ".yml"):
        return []  # a calibration scenario: fleet.run.calibration checks what it records
    if not Path(path).exists():
        return [Problem("replay_from", f"not found: {_shown(path)}")]
    oracle = names.files.replay(path)
    if isinstance(oracle, str):
        return [Problem("replay_from", oracle)]
    problems: list[Problem] = []
    for group in scenario.fleet:
        spec = scenario.codec_for(group)
        if names.codec_problem(spec) is not None:
            continue  # reported as a codec problem
        why = names.files.replay_gap(oracle, scenario, group.split, spec.config())
        if why is not None:
            problems.append(Problem("replay_from", why))
    return problems


def _file(path: str, where: str, what: str) -> list[Problem]:
    if Path(path).is_file():
        return []
    return [Problem(where, f"{what} file not found: {_shown(path)}")]


def _shown(path: str) -> str:
    """The path, and where a relative one was looked for."""
    if Path(path).is_absolute():
        return path
    return f"{path} (looked for in {Path.cwd()}; load() makes paths relative to the file)"
