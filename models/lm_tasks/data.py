"""The ``!function`` targets of the ``slicer_*`` task files: each ``custom_dataset`` returns the
split the harness evaluates as a ``datasets.Dataset``; the document processors are the harness's
own (hellaswag/utils.py, winogrande/preprocess_winogrande.py, lm-eval 0.4.13, MIT), copied so the
prompts stay exactly theirs."""

from __future__ import annotations

import re
from typing import Any

from models.benchmark_data import default_split, docs


def _dataset(task: str) -> dict[str, Any]:
    import datasets

    split = default_split(task)
    return {split: datasets.Dataset.from_list(docs(task, split))}


def hellaswag(**_: Any) -> dict[str, Any]:
    return _dataset("hellaswag")


def piqa(**_: Any) -> dict[str, Any]:
    return _dataset("piqa")


def arc_easy(**_: Any) -> dict[str, Any]:
    return _dataset("arc_easy")


def arc_challenge(**_: Any) -> dict[str, Any]:
    return _dataset("arc_challenge")


def winogrande(**_: Any) -> dict[str, Any]:
    return _dataset("winogrande")


def boolq(**_: Any) -> dict[str, Any]:
    return _dataset("boolq")


def lambada(**_: Any) -> dict[str, Any]:
    return _dataset("lambada")


def mmlu(**_: Any) -> dict[str, Any]:
    return _dataset("mmlu")


def lee(**_: Any) -> dict[str, Any]:
    """The 50 held-out Lee news documents, one ``text`` each (a perplexity task)."""
    import datasets

    from models.text import lee_documents

    return {"test": datasets.Dataset.from_list([{"text": d} for d in lee_documents("test")])}


# -- hellaswag/utils.py -------------------------------------------------------------------------
def _preprocess(text: str) -> str:
    text = text.strip()
    # NOTE: Brackets are artifacts of the WikiHow dataset portion of HellaSwag.
    text = text.replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    return text.replace("  ", " ")


def hellaswag_process_docs(dataset: Any) -> Any:
    def _process_doc(doc: dict[str, Any]) -> dict[str, Any]:
        ctx = doc["ctx_a"] + " " + doc["ctx_b"].capitalize()
        return {
            "query": _preprocess(doc["activity_label"] + ": " + ctx),
            "choices": [_preprocess(ending) for ending in doc["endings"]],
            "gold": int(doc["label"]),
        }

    return dataset.map(_process_doc)


# -- winogrande/preprocess_winogrande.py ---------------------------------------------------------
def winogrande_doc_to_text(doc: dict[str, Any]) -> int:
    answer_to_num = {"1": 0, "2": 1}
    return answer_to_num[doc["answer"]]


def winogrande_doc_to_target(doc: dict[str, Any]) -> str:
    idx = doc["sentence"].index("_") + 1
    return str(doc["sentence"][idx:].strip())


def winogrande_doc_to_choice(doc: dict[str, Any]) -> list[str]:
    idx = doc["sentence"].index("_")
    options = [doc["option1"], doc["option2"]]
    return [doc["sentence"][:idx] + opt for opt in options]
