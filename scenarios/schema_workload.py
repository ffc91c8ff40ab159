"""The workload of a scenario: the split model (``ModelSpec``: task, sequence length, prompts,
tokens generated) and the codec that carries its IF (``CodecSpec``, a ``codec.get_codec``
config).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from scenarios.schema_base import FieldError, Strict


class CodecSpec(BaseModel):
    """A codec config as ``codec.get_codec`` takes it: ``id`` plus that codec's parameters.
    A bare string is the codec's id with its defaults (``codec: slicer``)."""

    model_config = ConfigDict(extra="allow", frozen=True, strict=True)

    id: str = Field(description="codec id, e.g. fp16, blockwise8, rans, slicer (see README)")

    @model_validator(mode="before")
    @classmethod
    def _bare_id(cls, data: Any) -> Any:
        return {"id": data} if isinstance(data, str) else data

    def config(self) -> dict[str, Any]:
        """The plain dict for ``codec.get_codec``."""
        return {"id": self.id, **(self.model_extra or {})}


DEFAULT_NEW_TOKENS = 32


class ModelSpec(Strict):
    name: str = Field(description="a model from `slicer models`, e.g. smollm2-135m")
    task: Literal["infer", "generate"] = Field(
        default="infer",
        description="infer: one forward pass through head and tail per request; generate: a "
        "causal LM generates max_new_tokens greedy tokens per request, one IF per token",
    )
    seq_len: int = Field(
        default=64,
        ge=1,
        le=8192,
        description="tokens per request (language models); the prompt length for generate",
    )
    inputs: int | None = Field(
        default=None, ge=1, description="distinct real inputs cycled through (default: all samples)"
    )
    max_new_tokens: int | None = Field(
        default=None,
        ge=1,
        le=4096,
        description=f"tokens generated per request (task: generate; default {DEFAULT_NEW_TOKENS})",
    )
    prompts: Literal["lee-background", "lee-test"] = Field(
        default="lee-background",
        description="causal LMs: the text inputs and generation prompts are windows of: "
        "lee-background (300 news documents) or lee-test (the 50 held-out ones)",
    )

    @model_validator(mode="before")
    @classmethod
    def _new_tokens(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if data.get("task") == "generate" and data.get("max_new_tokens") is None:
            return {**data, "max_new_tokens": DEFAULT_NEW_TOKENS}
        if data.get("task", "infer") != "generate" and data.get("max_new_tokens") is not None:
            raise FieldError(
                ("max_new_tokens",), "max_new_tokens applies to task: generate; remove it"
            )
        return data

    @property
    def new_tokens(self) -> int:
        """Tokens per generated sequence (0 for task: infer)."""
        return self.max_new_tokens or 0
