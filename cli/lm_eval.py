"""``python -m cli.lm_eval run --model slicer --model_args '{"model": "smollm2-135m", "split":
16, "codec": {"id": "slicer", "max_nmse": 0.01}}' --tasks slicer_piqa``: lm-evaluation-harness's
own command line with our model registered as ``slicer`` and our ``slicer_*`` task files on its
include path.

The plain ``lm_eval`` command cannot see the model: lm-eval 0.4.13 finds models only in its
built-in ``MODEL_MAPPING`` or in classes registered by code already imported (it reads no
entry points), so this wrapper imports and registers first. ``--model_args`` takes the harness's
JSON form (a nested codec config needs it) or ``model=smollm2-135m,split=16`` with ``codec`` as
a JSON string. Without ``split`` the model is unsplit.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from lm_eval.api.registry import register_model

from models.harness import DEFAULT_MAX_LENGTH, SplitLM


@register_model("slicer")
class SlicerLM(SplitLM):
    """``SplitLM`` built from the harness's model arguments (names, not objects)."""

    def __init__(
        self,
        model: str = "smollm2-135m",
        split: int | None = None,
        codec: Any = None,
        max_length: int | None = None,
        **harness: Any,  # batch_size, device, ...: the harness passes them to every model
    ) -> None:
        import codec as codecs
        import models

        config = json.loads(codec) if isinstance(codec, str) else codec
        chosen = codecs.get_codec(config) if config is not None else None
        length = DEFAULT_MAX_LENGTH if max_length is None else int(max_length)
        split_at = None if split is None else int(split)
        super().__init__(models.load(model), split_at, chosen, max_length=length)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the harness's CLI with ``slicer`` registered and our tasks included."""
    from lm_eval.__main__ import cli_evaluate

    from models.lm_tasks import TASKS_DIR

    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "run" and "--include_path" not in args:
        args += ["--include_path", str(TASKS_DIR)]
    sys.argv = ["lm_eval", *args]
    cli_evaluate()


if __name__ == "__main__":
    main()
