"""Offline image samples: enough of them, stable ids, views built as documented."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from models import images
from models.images import IMAGENET, INCEPTION_127, VIEWS, ImageSamples
from models.mobilenetv2 import imagenet_preprocess
from models.split import ModelError, Sample

# sha256 over every input id's uint8 crop, in id order. A change means some input id now shows
# different pixels (a reordered photo or view, or a new Pillow resampler): results keyed by
# input id would silently stop matching, so fix the cause rather than this digest.
PIXELS_SHA256 = "be0b996a739fccec3578de6d26376a45ac3c5d862b8f00546fa9640520a9caa8"


@pytest.fixture(scope="session")
def samples() -> ImageSamples:
    return ImageSamples()


def test_at_least_forty_samples_with_ids_in_order(samples: ImageSamples) -> None:
    assert len(samples) == len(images.PHOTOS) * len(VIEWS) >= 40
    items = list(samples)
    assert [s.input_id for s in items] == list(range(len(samples)))
    assert len({s.text for s in items}) == len(items)
    for s in items:
        assert isinstance(s, Sample)
        assert s.label is None
        assert s.x.dtype == torch.float32
        assert s.x.shape == (3, 224, 224)


def test_pixels_are_pinned() -> None:
    digest = hashlib.sha256()
    for i in range(len(ImageSamples())):
        digest.update(images.pixels(i).tobytes())
    assert digest.hexdigest() == PIXELS_SHA256


def test_same_id_same_tensor_and_edits_do_not_leak(samples: ImageSamples) -> None:
    first = samples[7].x
    again = ImageSamples()[7].x
    assert torch.equal(first, again)
    first.zero_()
    assert torch.equal(samples[7].x, again)
    with pytest.raises(ValueError):
        images.pixels(7)[0, 0, 0] = 1  # the cached crop is read-only


def test_center_view_is_the_imagenet_eval_transform(samples: ImageSamples) -> None:
    for name in ("chelsea", "astronaut", "china"):
        x = samples[ImageSamples.id_of(f"{name}/center")].x
        assert torch.equal(x, imagenet_preprocess(images.photo(name)))


def test_views_differ_as_described(samples: ImageSamples) -> None:
    center = samples[ImageSamples.id_of("coffee/center")].x
    flip = samples[ImageSamples.id_of("coffee/flip")].x
    assert torch.equal(flip, center.flip(-1))
    others = [samples[ImageSamples.id_of(f"coffee/{v.name}")].x for v in VIEWS[2:]]
    for x in others:
        assert not torch.equal(x, center)
    left, right = (images.pixels(ImageSamples.id_of(f"coffee/{v}")) for v in ("left", "right"))
    # coffee resized to 384x256: left and right crops share columns 160..223 of the left crop.
    assert np.array_equal(left[:, 160:], right[:, : 224 - 160])


def test_names_and_ids_round_trip() -> None:
    for i in range(len(ImageSamples())):
        assert ImageSamples.id_of(ImageSamples.name(i)) == i
    assert ImageSamples.name(ImageSamples.id_of("chelsea/center")) == "chelsea/center"


@pytest.mark.parametrize("bad", [-1, 10_000, 1.0, True, "3"])
def test_bad_ids_name_the_range(samples: ImageSamples, bad: object) -> None:
    with pytest.raises(ModelError, match="integer in 0"):
        samples[bad]  # type: ignore[index]


@pytest.mark.parametrize("bad", ["chelsea", "dog/center", "chelsea/sideways"])
def test_bad_names_list_photos_and_views(bad: str) -> None:
    with pytest.raises(ModelError, match="photo/view"):
        ImageSamples.id_of(bad)


def test_unknown_photo_lists_the_available_ones() -> None:
    with pytest.raises(ModelError, match="available"):
        images.photo("lena")


def test_slices_give_samples(samples: ImageSamples) -> None:
    part = samples[2:5]
    assert [s.input_id for s in part] == [2, 3, 4]


def test_normalizations() -> None:
    rgb = np.array([[[0, 127, 255]]], dtype=np.uint8)
    edge = images.normalize(rgb, INCEPTION_127).flatten()
    assert torch.allclose(edge, torch.tensor([-127 / 128, 0.0, 1.0]), atol=1e-6)
    imagenet = images.normalize(rgb, IMAGENET).flatten()
    expected = [
        (v / 255 - m) / s
        for v, m, s in zip((0, 127, 255), IMAGENET.mean, IMAGENET.std, strict=True)
    ]
    assert torch.allclose(imagenet, torch.tensor(expected), atol=1e-6)
    same = ImageSamples(INCEPTION_127)[0].x
    assert torch.allclose(same, images.normalize(images.pixels(0), INCEPTION_127))
