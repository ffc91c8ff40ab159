"""What every scenario model shares: the strict, frozen base model, the name pattern, dtypes,
and ``FieldError``, the validators' verdict on one field.

``Strict`` forbids unknown keys, coerces nothing and rejects infinite and NaN numbers; every
model of the schema but ``CodecSpec`` (which carries codec parameters as extra keys) derives
from it.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=64)]
Dtype = Literal["fp32", "tf32", "fp16", "bf16", "fp8", "int8"]


class FieldError(ValueError):
    """A model validator's verdict on one field: ``loc`` is the field's path below the model
    (keys and list indices). pydantic reports it as a ``value_error`` at the model; the loader
    appends ``loc`` so that the problem names the field and its line."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


# no docstring: a model's docstring is its description in the scenario reference
class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)
