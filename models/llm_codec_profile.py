"""Calibrate ``slicer-llm`` profiles: per (model, split) statistics of the residual stream and
the tail's sensitivity, measured once on the Lee background corpus (disjoint from the held-out
``test`` text the benchmarks score on).

* **Rows**: ``head(window, split)`` over ``windows`` 128-token background windows.
* **Fisher**: for each window, tokens ``y_t`` are sampled from the model's own output at every
  position, and ``g = d/dh sum_t log p(y_t | h)`` is back-propagated through the whole tail,
  so a row's gradient includes its effect on every later position through attention. ``F`` is
  the mean of ``g_t g_t^T`` over positions after the first (the true Fisher, one sample a
  position), regularised as ``F + lam * tr(F) / d * I`` against sampling noise.
* **Transform** (``variant``): ``"fisher"``, the KLT of ``F^(1/2) (x - mean)`` (analysis
  ``U^T F^(1/2)``); ``"klt"``, the KLT of ``x - mean``; ``"diag"``, ``diag(F)^(1/2)`` per channel;
  ``"identity"``, the channels themselves.

The arrays are those of ``codec._llm_profile.Profile``; ``cli.llm_codec`` writes them as package
data. Scales are Laplace ML scales (mean absolute value) of the coefficients per row kind;
``rho`` is the per-coefficient least-squares AR(1) coefficient between consecutive rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from models.llm import LlamaSplit

VARIANTS = ("fisher", "klt", "diag", "identity")


@dataclass(frozen=True)
class SplitStatistics:
    """Calibration rows ``[windows, T, d]`` (float64) and the Fisher matrix ``[d, d]``."""

    model: str
    split: int
    rows: np.ndarray
    fisher: np.ndarray


def calibration_ids(lm: LlamaSplit, windows: int, seed: int = 0) -> torch.Tensor:
    """``windows`` background windows, drawn without replacement by ``seed``."""
    pool = lm.token_windows("background")
    pick = np.random.default_rng(seed).choice(
        len(pool), size=min(windows, len(pool)), replace=False
    )
    return torch.stack([pool[int(i)].x for i in pick])


def statistics(
    lm: LlamaSplit, split: int, windows: int = 32, batch: int = 8, *, fisher_samples: bool = True
) -> SplitStatistics:
    """Rows and Fisher at ``split`` (see the module docstring); ``fisher_samples=False`` skips
    the backward passes and leaves ``fisher`` zero (for the ``klt`` and ``identity`` variants)."""
    if not 1 <= split < lm.num_blocks:
        raise ValueError(f"split must be in 1..{lm.num_blocks - 1}, got {split}")
    ids = calibration_ids(lm, windows)
    with torch.no_grad():
        rows = lm.head(ids, split)
    d = rows.shape[-1]
    fisher = torch.zeros(d, d, dtype=torch.float64)
    gen = torch.Generator().manual_seed(split)
    run_with_grad = LlamaSplit._run.__wrapped__  # type: ignore[attr-defined]  # no_grad off
    for start in range(0, rows.shape[0] if fisher_samples else 0, batch):
        h = rows[start : start + batch].clone().requires_grad_(True)
        with torch.enable_grad():
            logp = torch.log_softmax(run_with_grad(lm, h, split, lm.num_blocks).float(), -1)
            probs = logp.detach().exp().reshape(-1, logp.shape[-1])
            y = torch.multinomial(probs, 1, generator=gen).reshape(logp.shape[:-1])
            (grad,) = torch.autograd.grad(logp.gather(-1, y[..., None]).sum(), h)
        g = grad[:, 1:].double().reshape(-1, d)
        fisher += g.T @ g
    fisher /= rows.shape[0] * (rows.shape[1] - 1)
    return SplitStatistics(lm.name, split, rows.double().numpy(), fisher.numpy())


def profile_arrays(
    stats: SplitStatistics, variant: str = "fisher", lam: float = 0.1
) -> dict[str, np.ndarray]:
    """The arrays of a ``codec._llm_profile.Profile`` of one transform ``variant`` (models does
    not import codec: ``Profile(f"{model}/{split}", **arrays)`` builds it)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    rows = stats.rows
    d = rows.shape[-1]
    later = rows[:, 1:].reshape(-1, d)
    mean = later.mean(0)
    first_mean = rows[:, 0].mean(0)
    analysis = _analysis(variant, later - mean, stats.fisher, lam)
    synthesis = np.linalg.inv(analysis)
    gain = np.linalg.norm(synthesis, axis=0)
    basis = (synthesis / gain).astype(np.float16)
    synthesis = basis.astype(np.float64) * gain  # what the codec will use
    analysis = np.linalg.inv(synthesis)
    z = (rows[:, 1:] - mean) @ analysis.T  # [windows, T - 1, d]
    z_first = (rows[:, 0] - first_mean) @ analysis.T
    cur, prev = z[:, 1:].reshape(-1, d), z[:, :-1].reshape(-1, d)
    rho = (cur * prev).sum(0) / np.maximum((prev * prev).sum(0), 1e-300)
    rho = np.clip(rho, -0.95, 0.95)
    return dict(
        mean=mean.astype(np.float32),
        first_mean=first_mean.astype(np.float32),
        basis=basis,
        gain=gain.astype(np.float32),
        scale=np.abs(z).reshape(-1, d).mean(0).astype(np.float32),
        first_scale=np.abs(z_first).mean(0).astype(np.float32),
        pred_scale=np.abs(cur - rho * prev).mean(0).astype(np.float32),
        rho=rho.astype(np.float32),
    )


def _analysis(variant: str, centred: np.ndarray, fisher: np.ndarray, lam: float) -> np.ndarray:
    d = centred.shape[1]
    regularised = fisher + lam * np.trace(fisher) / d * np.eye(d)
    if variant == "identity":
        return np.eye(d)
    if variant == "diag":
        return np.diag(np.sqrt(np.diag(regularised)))
    cov = centred.T @ centred / len(centred)
    if variant == "klt":
        _, vectors = np.linalg.eigh(cov)
        return np.asarray(vectors[:, ::-1].T)
    w, v = np.linalg.eigh(regularised)
    root = (v * np.sqrt(w)) @ v.T
    _, vectors = np.linalg.eigh(root @ cov @ root)
    return np.asarray(vectors[:, ::-1].T @ root)
