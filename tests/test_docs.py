"""Every ```python block of README.md runs as written, so the documentation cannot drift from the
code. Each block runs in a fresh namespace inside a temporary working directory; a block that
reads a results directory gets a tiny replayed one made there first. Tracebacks name README.md
and its line. (The README's scenario YAML is checked by tests/scenarios/test_readme.py.)"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"

#: Blocks that take more than about 20 s on 2 cores, by id; they run with ``-m slow``. Measured:
#: generation-through-the-split 41 s (loads SmolLM2-135M, generates twice); codecs 6 s (first
#: torch and numba import), split-models 2 s, the rest under 1 s.
SLOW = {"generation-through-the-split"}


@dataclass(frozen=True)
class Block:
    """One ```python block: an id from the heading above it, its first line in the README."""

    name: str
    line: int
    code: str


def readme_blocks(text: str) -> list[Block]:
    """The ```python blocks of ``text`` in order (indented ones dedented), each named
    ``<slug of the heading above>[-<n>]``; ``#`` lines inside any fenced block are no headings."""
    blocks: list[Block] = []
    heading, fence, start = "top", "", 0
    code: list[str] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if fence:
            if stripped == "```":
                if fence == "python":
                    seen[heading] = seen.get(heading, 0) + 1
                    n = seen[heading]
                    name = heading if n == 1 else f"{heading}-{n}"
                    blocks.append(Block(name, start, textwrap.dedent("\n".join(code) + "\n")))
                fence = ""
            elif fence == "python":
                code.append(line)
        elif stripped.startswith("```"):
            fence, code, start = stripped[3:].strip() or "text", [], number + 1
        elif line.startswith("#"):
            heading = re.sub(r"[^a-z0-9]+", "-", line.lstrip("#").lower()).strip("-")
    assert not fence, f"README.md:{start - 1}: a ``` block is never closed"
    return blocks


def _llm_sweep(out: Path) -> None:
    """A replayed generate sweep over fleet size (no model runs, no Ray)."""
    from fleet.run.runner import run
    from tests.fleet.simkit import MODEL, scenario, write_generations

    profile = out.parent / "llm-profile"
    write_generations(profile)
    s = scenario(
        profile,
        name="llm-fleet-scaling",
        requests_per_device=2,
        model={"name": MODEL, "task": "generate", "seq_len": 8, "max_new_tokens": 3, "inputs": 2},
        fleet0={"arrivals": {"kind": "poisson", "rate_per_s": 1.0}},
        servers={"replicas": 1, "hardware": "l4"},
        ray={"parallel_sweep": False},
        sweep={"fleet[0].count": [1, 4]},
    )
    run(s, out, quiet=True)


#: Results directories the README's blocks read, and how to make a tiny one.
RESULTS: dict[str, Callable[[Path], None]] = {"results/llm-fleet-scaling": _llm_sweep}


def _params() -> list[object]:
    marks = {name: [pytest.mark.slow] for name in SLOW}
    return [
        pytest.param(block, id=block.name, marks=marks.get(block.name, []))
        for block in readme_blocks(README.read_text(encoding="utf-8"))
    ]


def test_blocks_are_found_and_named() -> None:
    text = "# A b\n```python\nx = 1\n```\n```bash\n# no heading\n```\n  ```python\n  y = 2\n  ```\n"
    assert readme_blocks(text) == [Block("a-b", 3, "x = 1\n"), Block("a-b-2", 9, "y = 2\n")]


@pytest.mark.parametrize("block", _params())
def test_readme_python_block_runs(
    block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for path, make in RESULTS.items():
        if path in block.code:
            make(tmp_path / path)
    # padded so that line numbers in a traceback are the README's
    code = compile("\n" * (block.line - 1) + block.code, str(README), "exec")
    exec(code, {"__name__": "__readme__"})
