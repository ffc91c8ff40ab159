"""Offline image inputs with stable ids: bundled photos, each seen through a few fixed views.

The photos ship with scikit-image (astronaut, coffee, chelsea, rocket, the left view of the
stereo motorcycle) and scikit-learn (``load_sample_images``: china, flower); nothing is fetched.
Each photo gives ``len(VIEWS)`` deterministic 224x224 crops (the standard ImageNet eval crop, its
mirror image, crops shifted to the left and right edges, a zoomed-in and a zoomed-out crop), so
input id ``photo_index * len(VIEWS) + view_index`` always names the same pixels. A model's
``Normalization`` then turns those pixels into its float32 input ``[3, 224, 224]``: the same id
gives the same tensor, bit for bit, on every call and every run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import overload

import numpy as np
import torch
from PIL import Image

from models.split import ModelError, Sample

CROP_SIZE = 224
RESIZE_SHORTER = 256  # the ImageNet eval transform: resize to 256, center crop 224


@dataclass(frozen=True)
class Normalization:
    """Per-channel ``(pixel / 255 - mean) / std`` on RGB pixels."""

    name: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


#: torchvision's ImageNet statistics (MobileNetV2 and most PyTorch-trained models).
IMAGENET = Normalization("imagenet", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
#: Inception-style ``(pixel - 127) / 128``, used by TensorFlow's edge models (EfficientNet-Lite).
INCEPTION_127 = Normalization("inception-127", (127 / 255,) * 3, (128 / 255,) * 3)


@dataclass(frozen=True)
class View:
    """A deterministic crop: resize the shorter side to ``resize``, cut ``CROP_SIZE`` square at
    horizontal position ``x`` (0 = left edge, 0.5 = centre, 1 = right edge), maybe mirror it."""

    name: str
    resize: int
    x: float = 0.5
    flip: bool = False


VIEWS: tuple[View, ...] = (
    View("center", RESIZE_SHORTER),
    View("flip", RESIZE_SHORTER, flip=True),
    View("left", RESIZE_SHORTER, x=0.0),
    View("right", RESIZE_SHORTER, x=1.0),
    View("zoom", 320),
    View("full", CROP_SIZE),
)


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from skimage import data

        if name == "motorcycle":  # the left view of the stereo pair
            left, _, _ = data.stereo_motorcycle()  # type: ignore[no-untyped-call]
            return np.asarray(left)
        return np.asarray(getattr(data, name)())

    return load


def _sklearn(stem: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_images

        bunch = load_sample_images()
        for filename, image in zip(bunch.filenames, bunch.images, strict=True):
            if Path(filename).stem == stem:
                return np.asarray(image)
        raise ModelError(f"scikit-learn's sample images lack {stem!r}; reinstall scikit-learn")

    return load


#: Photo name -> loader, in input-id order (append only: reordering changes every id).
PHOTOS: dict[str, Callable[[], np.ndarray]] = {
    "astronaut": _skimage("astronaut"),
    "coffee": _skimage("coffee"),
    "chelsea": _skimage("chelsea"),
    "rocket": _skimage("rocket"),
    "motorcycle": _skimage("motorcycle"),
    "china": _sklearn("china"),
    "flower": _sklearn("flower"),
}


def photo(name: str) -> np.ndarray:
    """The named photo as read-only RGB uint8 ``[H, W, 3]`` (cached)."""
    if not isinstance(name, str) or name not in PHOTOS:
        raise ModelError(f"unknown photo {name!r}; available: {list(PHOTOS)}")
    return _load_photo(name)


@cache
def _load_photo(name: str) -> np.ndarray:
    try:
        image = PHOTOS[name]()
    except ImportError as e:
        raise ModelError(
            f"photo {name!r} needs scikit-image and scikit-learn: "
            "`pip install scikit-image scikit-learn`"
        ) from e
    rgb = np.ascontiguousarray(image[..., :3], dtype=np.uint8)
    rgb.setflags(write=False)
    return rgb


def resize_shorter(image: Image.Image, size: int) -> Image.Image:
    """Resize (bilinear, antialiased) so the shorter side is ``size``, keeping the aspect."""
    w, h = image.size
    if w <= h:
        new_w, new_h = size, int(size * h / w)
    else:
        new_w, new_h = int(size * w / h), size
    return image.resize((new_w, new_h), Image.Resampling.BILINEAR)


def crop(image: Image.Image, size: int, x: float = 0.5, y: float = 0.5) -> Image.Image:
    """A ``size`` square at relative position (x, y); 0.5, 0.5 is torchvision's center crop."""
    w, h = image.size
    left = round((w - size) * x)
    top = round((h - size) * y)
    return image.crop((left, top, left + size, top + size))


def render(image: Image.Image | np.ndarray, view: View) -> np.ndarray:
    """The view's RGB uint8 crop ``[CROP_SIZE, CROP_SIZE, 3]`` of an image."""
    pil = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
    pil = crop(resize_shorter(pil.convert("RGB"), view.resize), CROP_SIZE, x=view.x)
    if view.flip:
        pil = pil.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return np.asarray(pil, dtype=np.uint8)


def normalize(rgb: np.ndarray, norm: Normalization = IMAGENET) -> torch.Tensor:
    """RGB uint8 ``[H, W, 3]`` -> float32 ``[3, H, W]``, ``(rgb / 255 - mean) / std``."""
    x = torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0).permute(2, 0, 1)
    mean = torch.tensor(norm.mean).view(3, 1, 1)
    std = torch.tensor(norm.std).view(3, 1, 1)
    return ((x - mean) / std).contiguous()


def pixels(input_id: int) -> np.ndarray:
    """Read-only RGB uint8 ``[224, 224, 3]`` crop that input id ``input_id`` shows (cached)."""
    return _render(*_photo_view(input_id))


@cache
def _render(photo_name: str, view: View) -> np.ndarray:
    rgb = render(photo(photo_name), view)
    rgb.setflags(write=False)
    return rgb


def _photo_view(input_id: int) -> tuple[str, View]:
    n = len(PHOTOS) * len(VIEWS)
    if isinstance(input_id, bool) or not isinstance(input_id, int) or not 0 <= input_id < n:
        raise ModelError(f"image input id must be an integer in 0..{n - 1}, got {input_id!r}")
    return list(PHOTOS)[input_id // len(VIEWS)], VIEWS[input_id % len(VIEWS)]


class ImageSamples(Sequence[Sample]):
    """Every photo in every view, as ``Sample(input_id, x, None, "photo/view")``. Pixels are
    cached; each access builds a fresh tensor, so a caller's in-place edit never leaks."""

    def __init__(self, norm: Normalization = IMAGENET) -> None:
        self.norm = norm

    def __len__(self) -> int:
        return len(PHOTOS) * len(VIEWS)

    @overload
    def __getitem__(self, index: int) -> Sample: ...

    @overload
    def __getitem__(self, index: slice) -> list[Sample]: ...

    def __getitem__(self, index: int | slice) -> Sample | list[Sample]:
        if isinstance(index, slice):
            return [self[i] for i in range(len(self))[index]]
        return Sample(index, normalize(pixels(index), self.norm), None, self.name(index))

    def __iter__(self) -> Iterator[Sample]:
        return (self[i] for i in range(len(self)))

    @staticmethod
    def name(input_id: int) -> str:
        """``"photo/view"`` of an input id, e.g. ``"chelsea/center"``."""
        photo_name, view = _photo_view(input_id)
        return f"{photo_name}/{view.name}"

    @staticmethod
    def id_of(name: str) -> int:
        """The input id of ``"photo/view"``."""
        photo_name, _, view_name = name.partition("/")
        views = [v.name for v in VIEWS]
        if photo_name not in PHOTOS or view_name not in views:
            raise ModelError(
                f"unknown image sample {name!r}: use 'photo/view' with photo in "
                f"{list(PHOTOS)} and view in {views}"
            )
        return list(PHOTOS).index(photo_name) * len(VIEWS) + views.index(view_name)
