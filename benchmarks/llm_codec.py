"""``slicer-llm`` against SLICER and fp16 on LLM hidden states: bits and teacher-forced agreement.

Run: ``python -m benchmarks.llm_codec [--models smollm2-135m,gemma-3-270m] [--prompts 16]
[--splits 4,16,28] [--bits 2.0,2.5,3.0] [--ablation smollm2-135m/16]``.

Per model and split, ``--prompts`` held-out prompts (the first 64 tokens of Lee *test* windows,
disjoint from the background text the profiles were calibrated on) are each followed by the
unsplit model's 32 greedy tokens. The device's IF goes up exactly as in
``server.engine.generate``: the prompt's 64 rows as one container with the stream set-up, then
31 stream frames. Reported:

* bits per value and per token: every byte (container, set-up, frames) over the 95 rows sent,
  and against fp16 (16 bits per value);
* teacher-forced top-1 agreement: the tail's argmax through the codec vs the unsplit model's
  greedy token, at the 32 generated positions of every prompt;
* frame encode + decode time of one ``[1, d]`` frame (median over frames; slicer-llm only).

The ablation switches each component off in turn at the same ``bits`` target: the Fisher
weighting (plain KLT), the transform (channels), the AR(1) prediction, the first-row model and
the deadzone; the ``klt`` and ``identity`` profiles are calibrated in memory on the same text.
"""

from __future__ import annotations

import argparse
import statistics as stats
import time
from typing import Any

import torch

import codec
from benchmarks.codec_rd import table
from server.engine.generate import reference_tokens

PROMPT_TOKENS, NEW_TOKENS = 64, 32
SPLITS = {"smollm2-135m": (4, 16, 28), "gemma-3-270m": (3, 10, 17)}


def prompts(lm: Any, count: int) -> list[torch.Tensor]:
    windows = lm.token_windows("test", PROMPT_TOKENS)
    step = max(1, len(windows) // count)
    return [windows[i].x for i in range(0, len(windows), step)][:count]


def measure(
    lm: Any, split: int, config: Any, cases: list[tuple[torch.Tensor, list[int]]]
) -> dict[str, Any]:
    """Bits per value, agreement and frame time of one codec config over the prompts."""
    sent_bytes, values, hits, frame_us = 0, 0, 0, []
    for prompt, reference in cases:
        ids = torch.cat([prompt, torch.tensor(reference[:-1], dtype=torch.int64)])
        with torch.inference_mode():
            h = lm.head(ids, split)
        values += h.numel()
        if config is None:
            rows = h.to(torch.float16).to(torch.float32)
            sent_bytes += 2 * h.numel()
        else:
            c = codec.get_codec(config)
            payload = c.encode(h[:PROMPT_TOKENS])
            encoder = codec.open_encoder(c, h[:PROMPT_TOKENS])
            decoder = codec.open_decoder(c, encoder.setup)
            sent_bytes += len(payload) + len(encoder.setup)
            out = [c.decode(payload)]
            for t in range(PROMPT_TOKENS, h.shape[0]):
                row = h[t : t + 1].numpy()
                started = time.perf_counter()
                frame = encoder.encode(row)
                out.append(decoder.decode(frame))
                frame_us.append(1e6 * (time.perf_counter() - started))
                sent_bytes += len(frame)
            rows = torch.cat(out)
        with torch.inference_mode():
            logits = lm.tail(rows, split)[PROMPT_TOKENS - 1 :]
        hits += int((logits.argmax(-1) == torch.tensor(reference)).sum())
    bits = 8 * sent_bytes / values
    width = int(lm.spec.hidden_size)
    return {
        "bits_per_value": bits,
        "bits_per_token": bits * width,
        "x_vs_fp16": 16.0 / bits,
        "agreement": hits / (NEW_TOKENS * len(cases)),
        "frame_us": stats.median(frame_us) if frame_us else None,
    }


def _row(label: str, r: dict[str, Any]) -> list[str]:
    us = "" if r["frame_us"] is None else f"{r['frame_us']:.0f}"
    return [
        label,
        f"{r['bits_per_value']:.2f}",
        f"{r['bits_per_token']:.0f}",
        f"{r['x_vs_fp16']:.1f}x",
        f"{r['agreement']:.3f}",
        us,
    ]


HEAD = ["codec", "bits/value", "bits/token", "vs fp16", "agreement", "frame enc+dec us"]


def ablation(
    lm: Any, split: int, bits: float, cases: list[tuple[torch.Tensor, list[int]]], windows: int
) -> list[list[str]]:
    from codec._llm_profile import Profile, register_profile
    from models.llm_codec_profile import profile_arrays, statistics

    base = {"id": "slicer-llm", "profile": f"{lm.name}/{split}", "bits": bits}
    plain = statistics(lm, split, windows=windows, fisher_samples=False)
    for variant in ("klt", "identity"):
        register_profile(Profile(f"{lm.name}:{variant}/{split}", **profile_arrays(plain, variant)))
    arms = [
        ("full", base),
        ("no Fisher weighting (plain KLT)", {**base, "profile": f"{lm.name}:klt/{split}"}),
        ("no transform (channels, mean only)", {**base, "profile": f"{lm.name}:identity/{split}"}),
        ("no AR(1) prediction", {**base, "predict": False}),
        ("no first-row model", {**base, "first_row": False}),
        ("no deadzone", {**base, "deadzone": 0.0}),
    ]
    return [_row(label, measure(lm, split, config, cases)) for label, config in arms]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default="smollm2-135m,gemma-3-270m")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--splits", default=None, help="comma-separated (default: the three)")
    parser.add_argument("--bits", default="2.0,2.5,3.0")
    parser.add_argument("--ablation", default="smollm2-135m/16", help="model/split, or none")
    parser.add_argument("--ablation-bits", type=float, default=2.5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    import models

    for name in args.models.split(","):
        lm: Any = models.load(name)
        cases = [(p, reference_tokens(lm, p, NEW_TOKENS)) for p in prompts(lm, args.prompts)]
        chosen = [int(s) for s in args.splits.split(",")] if args.splits else SPLITS[name]
        for split in chosen:
            rows = [_row("fp16", measure(lm, split, None, cases))]
            rows.append(
                _row(
                    "slicer max_nmse=1e-3",
                    measure(lm, split, {"id": "slicer", "max_nmse": 1e-3}, cases),
                )
            )
            for bits in (float(b) for b in args.bits.split(",")):
                config = {"id": "slicer-llm", "profile": f"{name}/{split}", "bits": bits}
                rows.append(_row(f"slicer-llm bits={bits}", measure(lm, split, config, cases)))
            print(f"\n{name} split {split} ({len(cases)} prompts x {NEW_TOKENS} tokens)")
            print(table(HEAD, rows), flush=True)
        if args.ablation.startswith(name + "/"):
            split = int(args.ablation.split("/")[1])
            print(f"\nablation: {name} split {split}, bits={args.ablation_bits}")
            print(table(HEAD, ablation(lm, split, args.ablation_bits, cases, 32)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
