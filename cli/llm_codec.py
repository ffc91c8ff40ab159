"""``slicer calibrate-llm-codec``: compute ``slicer-llm`` profiles and write them as package data.

``slicer calibrate-llm-codec --model smollm2-135m --splits 4,16,28`` measures calibration rows
and the tail's Fisher matrix at each split (``models.llm_codec_profile``, Lee background text)
and writes ``codec/llm_profiles/<model>_<split>.npz``. The codec then resolves
``{"id": "slicer-llm", "profile": "smollm2-135m/16"}`` from that file on both ends.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from codec._llm_profile import Profile


def build_profile(model: str, split: int, windows: int, variant: str = "fisher") -> Profile:
    """Calibrate one split of ``model`` (loads the model; tens of seconds to minutes)."""
    import models
    from codec._llm_profile import Profile
    from models.llm import LlamaSplit
    from models.llm_codec_profile import profile_arrays, statistics

    lm = models.load(model)
    if not isinstance(lm, LlamaSplit):
        raise SystemExit(f"{model} is not a causal LM; slicer-llm profiles need one")
    stats = statistics(lm, split, windows=windows)
    return Profile(f"{model}/{split}", **profile_arrays(stats, variant))


def cmd_calibrate_llm_codec(args: argparse.Namespace) -> int:
    import torch

    from codec._llm_profile import PROFILE_DIR, file_name

    torch.set_num_threads(args.threads)
    out_dir = Path(args.out) if args.out else PROFILE_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    for split in (int(s) for s in str(args.splits).split(",")):
        started = time.perf_counter()
        profile = build_profile(args.model, split, args.windows)
        path = out_dir / file_name(profile.name)
        data = profile.to_bytes()
        path.write_bytes(data)
        print(
            f"{profile.name}: {len(data) / 1e3:.0f} kB -> {path} (digest "
            f"{profile.digest.hex()}, {time.perf_counter() - started:.0f} s)",
            flush=True,
        )
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "calibrate-llm-codec",
        help="compute slicer-llm profiles (mean, transform, scales) for a causal LM's splits",
    )
    p.add_argument("--model", required=True, help="a causal LM, e.g. smollm2-135m")
    p.add_argument("--splits", required=True, help="comma-separated split points, e.g. 4,16,28")
    p.add_argument("--windows", type=int, default=32, help="128-token calibration windows")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--out", default=None, help="folder (default: the codec's package data)")
    p.set_defaults(func=cmd_calibrate_llm_codec)
