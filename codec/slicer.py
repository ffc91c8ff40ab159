"""SLICER: asymmetric top-K filtering, magnitude splitting and adaptive bit quantisation.

Our reconstruction of the three stages from the paper's description (its text beyond the abstract
is not available; every choice below is ours):

* **Rows.** The distortion budget holds per row by default (``granularity="row"``): rows are the
  slices along the first axis (tokens of ``[tokens, d]``, channels of ``[C, H, W]``); tensors of
  fewer than 2 dims are one row. ``granularity="tensor"`` treats the whole tensor as one row.
* **ATKF.** Per row and per sign, keep the ``keep`` fraction of that sign's entries with the
  largest magnitude (separate thresholds for positives and negatives); all others become 0.
  The thresholds come from one sort per row. The threshold is rounded down onto a log grid of
  1/8 octave, so a few more entries may survive than the fraction says. ``keep="auto"`` tries a
  ladder of fractions per row and keeps the one with the fewest estimated bits under the budget.
  A fixed ``keep`` is raised for a row whose dropped energy alone would eat half its budget.
* **MS.** The survivors of each sign are cut by magnitude into ``blocks`` groups of (nearly)
  equal cardinality. Cuts sit on the same 1/8-octave log grid, so each cut is a small integer
  and a block's range is exactly ``[cut_j, cut_j+1]``.
* **ABQ.** Each block gets a bitwidth 0..8 and is quantised uniformly over its range with
  ``2**b`` cells, reconstructed at cell centres. Bits are allocated by greedy marginal return
  (each step adds a bit to the block with the largest quantisation step, which is the block
  with the largest distortion drop per bit), warm-started from the water-filling solution,
  until the row's NMSE, sparsification error included, is within ``max_nmse``. The realised
  error is then checked exactly on the decoded values and bits are added until every row holds
  its budget. A row that 8 bits per block cannot satisfy is stored verbatim (float16 if that
  meets the budget, else float32). With ``bits_per_element`` the same machinery runs under the
  tightest uniform budget whose payload fits the rate.
* **Entropy coding** (rANS, ``codec.entropy``): the kept mask per row with a Bernoulli model at
  the row's kept fraction (quantised to 1/64), the signs of survivors, block ids (uniform, or
  their histogram when that is smaller) and the codes of each (sign, block, bitwidth) group
  with a truncated geometric model (one 6-bit decay level per group) or its empirical
  histogram, whichever is smaller. Per-row side information (cuts, bitwidths, mask levels) is
  itself rANS coded with a histogram or a fixed universal model, whichever is smaller, so a
  one-token payload carries no histograms.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from codec import _slicer_fused, bitstream
from codec._slicer_plan import KEEP_LADDER, Setting, plan_rows, verify
from codec._slicer_read import read
from codec._slicer_write import write
from codec.base import Codec, check_choice, check_finite, check_number, prepare
from codec.errors import CodecError
from codec.registry import register

#: ``keep="auto"``: candidate shares of a row's budget that the dropped entries may use.
AUTO_DROP_SHARES = (0.2, 0.35, 0.5, 0.65, 0.8, 0.9)
#: With a fixed ``keep``, a row keeps more where dropping would use more than this share.
FIXED_DROP_SHARE = 0.5
AUTO_BLOCKS = (1, 2, 4)
AUTO_SAMPLE_ROWS = 16
AUTO_SAMPLE_ELEMENTS = 16384


@register
class Slicer(Codec):
    """SLICER codec; see the module docstring for every design choice."""

    codec_id = "slicer"
    numeric_id = 10

    def __init__(
        self,
        max_nmse: float | None = 0.01,
        bits_per_element: float | None = None,
        keep: float | str = "auto",
        keep_pos: float | None = None,
        keep_neg: float | None = None,
        blocks: int | str = "auto",
        granularity: str = "row",
    ) -> None:
        cid = self.codec_id
        self.max_nmse: float | None = None
        self.bits_per_element: float | None = None
        if bits_per_element is not None:
            self.bits_per_element = float(
                check_number(cid, "bits_per_element", bits_per_element, 0.05, 32.0)
            )
        elif max_nmse is None:
            raise CodecError("slicer: set max_nmse (a distortion budget) or bits_per_element")
        else:
            self.max_nmse = float(check_number(cid, "max_nmse", max_nmse, 1e-8, 1.0))
        if keep != "auto":
            keep = float(check_number(cid, "keep", keep, 1e-4, 1.0))
        self.keep: float | str = keep
        self.keep_pos = _optional_fraction(cid, "keep_pos", keep_pos)
        self.keep_neg = _optional_fraction(cid, "keep_neg", keep_neg)
        if keep == "auto" and (keep_pos is None) != (keep_neg is None):
            raise CodecError(
                "slicer: keep_pos and keep_neg go together with keep='auto'; set both, "
                "or set a numeric keep for the other sign"
            )
        if blocks != "auto":
            blocks = int(check_number(cid, "blocks", blocks, 1, 16, integer=True))
        self.blocks: int | str = blocks
        self.granularity = check_choice(cid, "granularity", granularity, ("row", "tensor"))

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"id": self.codec_id}
        if self.bits_per_element is not None:
            config.update(max_nmse=None, bits_per_element=self.bits_per_element)
        else:
            config["max_nmse"] = self.max_nmse
        config.update(keep=self.keep, blocks=self.blocks, granularity=self.granularity)
        if self.keep_pos is not None:
            config["keep_pos"] = self.keep_pos
        if self.keep_neg is not None:
            config["keep_neg"] = self.keep_neg
        return config

    # -- encoding ---------------------------------------------------------------------------
    def _rows(self, values: np.ndarray) -> np.ndarray:
        if self.granularity == "tensor" or values.ndim < 2:
            return values.reshape(1, -1)
        return values.reshape(values.shape[0], -1)

    def _encode_body(self, values: np.ndarray, dtype: str) -> bytes:
        if values.size == 0:
            return b""
        rows = self._rows(values)
        if self.max_nmse is not None:
            return self._encode_rows(rows, self.max_nmse, dtype)
        assert self.bits_per_element is not None
        container = len(bitstream.pack(self.numeric_id, dtype, values.shape, b""))
        target_bytes = self.bits_per_element * values.size / 8 - container
        lo, hi = -8.0, 0.0  # log10 of the nmse budget
        best = self._encode_rows(rows, 1.0, dtype)
        for _ in range(12):
            mid = (lo + hi) / 2
            body = self._encode_rows(rows, 10.0**mid, dtype)
            if len(body) <= target_bytes:
                best, hi = body, mid
            else:
                lo = mid
        return best

    def analyze(self, x: Any) -> dict[str, Any]:
        """Where the bytes of one encode go (for benchmarks): the chosen setting, side
        information, coded streams and their empirical-entropy limit. Budget mode only."""
        if self.max_nmse is None:
            raise CodecError("slicer.analyze works with max_nmse, not bits_per_element")
        prepared = prepare(x)
        check_finite(prepared.values, self.codec_id)
        rows = self._rows(prepared.values)
        setting = self._choose_setting(rows, self.max_nmse, prepared.dtype)
        report: dict[str, Any] = {
            "keep_pos": setting.keep_pos,
            "keep_neg": setting.keep_neg,
            "blocks": setting.blocks,
            "drop_share": setting.drop_share,
        }
        self._encode_with(rows, self.max_nmse, prepared.dtype, setting, report)
        return report

    # -- a setting fixed once per sequence (``codec.stream``) -----------------------------------
    def choose_setting(self, values: np.ndarray, dtype: str) -> Setting:
        """The setting one encode of ``values`` (prepared float32, non-empty) would use: the
        auto search of ``_encode_body``, run once. Budget mode (``max_nmse``) only."""
        max_nmse = self._budget("choose_setting")
        if values.size == 0:
            raise CodecError("slicer.choose_setting needs a non-empty tensor to calibrate on")
        return self._choose_setting(self._rows(values), max_nmse, dtype)

    def encode_body_with(self, values: np.ndarray, dtype: str, setting: Setting) -> bytes:
        """The payload body of ``values`` with a fixed ``setting`` (no search); every row still
        meets ``max_nmse`` (verified on the decoded values). Budget mode only."""
        max_nmse = self._budget("encode_body_with")
        if values.size == 0:
            return b""
        return self._encode_with(self._rows(values), max_nmse, dtype, setting)

    def _budget(self, caller: str) -> float:
        if self.max_nmse is None:
            raise CodecError(
                f"slicer.{caller} works with max_nmse, not bits_per_element: a rate target is "
                "met by searching the budget per payload; set max_nmse instead"
            )
        return self.max_nmse

    def _encode_rows(self, rows: np.ndarray, nmse: float, dtype: str) -> bytes:
        setting = self._choose_setting(rows, nmse, dtype)
        return self._encode_with(rows, nmse, dtype, setting)

    def _encode_with(
        self,
        rows: np.ndarray,
        nmse: float,
        dtype: str,
        setting: Setting,
        report: dict[str, Any] | None = None,
    ) -> bytes:
        if report is None and dtype == "float32":  # one compiled call where it can
            body = _slicer_fused.encode(rows, nmse, setting, self.granularity)
            if body is not None:
                return body
        plan = plan_rows(rows, nmse, setting)
        verify(rows, plan, nmse, dtype)
        return write(rows, plan, self.granularity, report)

    def _choose_setting(self, rows: np.ndarray, nmse: float, dtype: str) -> Setting:
        """Fixed parameters as given; ``auto`` ones by the smallest payload on a sample of rows."""
        fixed_keep = self.keep != "auto" or self.keep_pos is not None
        kp = self.keep_pos if self.keep_pos is not None else self.keep
        kn = self.keep_neg if self.keep_neg is not None else self.keep
        if fixed_keep and self.blocks != "auto":
            return Setting(float(kp), float(kn), int(self.blocks), FIXED_DROP_SHARE)
        sample = _sample_rows(rows)
        sizes: dict[Setting, int] = {}

        def size(setting: Setting) -> int:
            if setting not in sizes:
                sizes[setting] = len(self._encode_with(sample, nmse, dtype, setting))
            return sizes[setting]

        block_options = AUTO_BLOCKS if self.blocks == "auto" else (int(self.blocks),)
        if fixed_keep:
            options = (Setting(float(kp), float(kn), b, FIXED_DROP_SHARE) for b in block_options)
            return min(options, key=size)
        low = KEEP_LADDER[-1]
        nb = 2 if 2 in block_options else block_options[0]
        share = min(AUTO_DROP_SHARES, key=lambda d: size(Setting(low, low, nb, d)))
        return min((Setting(low, low, b, share) for b in block_options), key=size)

    # -- decoding -----------------------------------------------------------------------------
    def _decode_body(self, body: memoryview, shape: tuple[int, ...], dtype: str) -> np.ndarray:
        return read(body, shape)


def _sample_rows(rows: np.ndarray) -> np.ndarray:
    """Evenly spaced rows, at most AUTO_SAMPLE_ROWS of them and about AUTO_SAMPLE_ELEMENTS
    values (a strided slice of the rows when even two rows are longer)."""
    n_rows, n = rows.shape
    wanted = min(AUTO_SAMPLE_ROWS, max(2, AUTO_SAMPLE_ELEMENTS // max(n, 1)))
    if n_rows > wanted:
        rows = rows[np.linspace(0, n_rows - 1, wanted).round().astype(np.int64)]
        n_rows = wanted
    if n_rows * n > 2 * AUTO_SAMPLE_ELEMENTS:
        stride = -(-n_rows * n // AUTO_SAMPLE_ELEMENTS)
        return np.ascontiguousarray(rows[:, ::stride])
    return rows


def _optional_fraction(codec_id: str, name: str, value: float | None) -> float | None:
    return None if value is None else float(check_number(codec_id, name, value, 1e-4, 1.0))
