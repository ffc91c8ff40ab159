"""``models.profile`` and ``models.if_bytes`` agree with the models' own tensors."""

from __future__ import annotations

import pytest

import models
from models.split import ModelError


@pytest.fixture(scope="module")
def mobilenet() -> models.SplitModel:
    return models.load("mobilenetv2")


def test_profile_by_name_equals_block_profiles(mobilenet: models.SplitModel) -> None:
    assert models.profile("mobilenetv2", batch=2) == mobilenet.block_profiles(batch=2)
    assert len(models.profile(mobilenet)) == mobilenet.num_blocks


@pytest.mark.parametrize("split", [0, 1, 4, 7, 14, 19, 20])
def test_if_bytes_is_the_real_feature_size(mobilenet: models.SplitModel, split: int) -> None:
    x = mobilenet.samples()[0].x[None]
    assert models.if_bytes(mobilenet, split) == mobilenet.head(x, split).nbytes


def test_if_bytes_checks_the_split(mobilenet: models.SplitModel) -> None:
    with pytest.raises(ModelError, match=r"0\.\.20"):
        models.if_bytes(mobilenet, 21)
