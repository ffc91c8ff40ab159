"""Seeded synthetic bandwidth traces: named presets with realistic variability.

Synthetic presets: per 1 s step, ln(rate) is a stationary Gaussian AR(1) process (median, spread
``sigma_ln``, correlation time ``tau_s``), times a two-state Markov fade process (mean gap, mean
length, rate factor; 0 = outage), capped at the technology's peak; seeded by (seed, preset name).
Per-second rates measured over 200 seeds x 600 s (Mbit/s; sources of the parameters: ``_PRESETS``):

==========  ===================  ======  =====================================================
preset      p10 / median / p90   zero    models
==========  ===================  ======  =====================================================
lte         0.80 / 2.9 / 9.4     3.4%    one phone's LTE uplink (Mahimahi LTE .up traces)
lte-down    2.7 / 7.9 / 22       1.3%    one phone's LTE downlink (Mahimahi LTE .down traces)
lte-cell    18 / 25 / 34         0       a whole 20 MHz LTE cell's uplink shared by its devices
3g          0.42 / 1.2 / 2.9     4.0%    one phone's 3G link (Norway HSDPA, Mahimahi UMTS/EVDO)
5g          4.4 / 27 / 116       0       one phone's 5G NSA link (ucc5g Cork downlink logs)
wifi        38 / 60 / 94         0       one device on a good 802.11ac link (assumed, no trace)
==========  ===================  ======  =====================================================
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np

from fleet.network.traces import Trace, TraceError


@dataclass(frozen=True)
class _Preset:
    description: str
    median_mbps: float  # median of the AR(1) part
    sigma_ln: float  # stationary std of ln(rate)
    tau_s: float  # correlation time of ln(rate)
    fade_gap_s: float  # mean time between fades (inf: none)
    fade_s: float  # mean fade length
    fade_factor: float  # rate multiplier in a fade (0: outage)
    peak_mbps: float  # physical cap


# Where the numbers come from (per-second rates of the real traces, measured for this module):
# lte: Mahimahi LTE .up medians 1.04 (AT&T driving), 1.56 (AT&T 2016), 5.65 (Verizon), 11.2
#   (T-Mobile), geometric mean 3.2; sd of ln(rate) 0.8-1.1; lag-1 s autocorrelation 0.44-0.90
#   (tau ~3 s); 0.7-11% of seconds deliver nothing (-> 2.5% outages); peak: LTE Cat-4 UE, 50.
# lte-down: Mahimahi LTE .down medians 4.3 (Verizon) and 13.9 (T-Mobile), sd ln 0.6-0.9.
# lte-cell: a 20 MHz LTE uplink at ~1.25 bit/s/Hz per cell (3GPP TR 36.912 / ITU-R M.2134 uplink
#   cell spectral efficiencies 0.7-1.4), slow load-driven swings, peak 75 (64QAM, one layer).
# 3g: Norway HSDPA median 1.4-1.6, sd ln 0.62, autocorrelation 0.91; Mahimahi UMTS/EVDO .up
#   medians 1.0-1.07, sd ln 0.8, autocorrelation 0.75, ~5% empty seconds; peak HSDPA 14.
# 5g: ucc5g downlink medians 8 (driving) and 29 (static), autocorrelation 0.55-0.66 (tau ~2 s),
#   8-18% near-empty seconds (fades fall back to 5% of the rate, i.e. LTE/HSPA).
# wifi: no WiFi trace in the shared data; an assumed good 802.11ac link, peak 400.
_PRESETS: dict[str, _Preset] = {
    "lte": _Preset("one phone's LTE uplink", 3.0, 0.9, 3.0, 60.0, 1.5, 0.0, 50.0),
    "lte-down": _Preset("one phone's LTE downlink", 8.0, 0.8, 3.0, 120.0, 1.0, 0.0, 150.0),
    "lte-cell": _Preset(
        "a whole 20 MHz LTE cell's uplink, shared by its devices",
        *(25.0, 0.25, 10.0, math.inf, 1.0, 1.0, 75.0),
    ),
    "3g": _Preset("one phone's 3G (HSPA/UMTS) link", 1.2, 0.7, 6.0, 60.0, 2.0, 0.0, 14.0),
    "5g": _Preset(
        "one phone's 5G NSA link, falling back in fades",
        *(30.0, 1.1, 2.0, 30.0, 2.0, 0.05, 1000.0),
    ),
    "wifi": _Preset("one device on a good 802.11ac link", 60.0, 0.35, 5.0, 120.0, 1.0, 0.1, 400.0),
}
PRESETS: dict[str, str] = {name: p.description for name, p in _PRESETS.items()}
SYNTHETIC_STEP_S = 1.0


def synthetic(name: str, seed: int, duration_s: float = 600.0) -> Trace:
    """A seeded synthetic trace of preset ``name`` (see ``PRESETS``), 1 s steps, looping."""
    preset = _PRESETS.get(name)
    if preset is None:
        raise TraceError(f"unknown synthetic trace {name!r}; presets: {', '.join(_PRESETS)}")
    if not (math.isfinite(duration_s) and duration_s >= SYNTHETIC_STEP_S):
        raise TraceError(f"synthetic trace duration_s must be >= 1 s, got {duration_s!r}")
    n = math.ceil(duration_s / SYNTHETIC_STEP_S)
    rng = np.random.default_rng([int(seed), zlib.crc32(name.encode())])
    phi = math.exp(-SYNTHETIC_STEP_S / preset.tau_s)
    noise = rng.standard_normal(n) * (preset.sigma_ln * math.sqrt(1.0 - phi * phi))
    noise[0] = rng.standard_normal() * preset.sigma_ln  # stationary start
    log_rate = noise.tolist()
    for k in range(1, n):
        log_rate[k] += phi * log_rate[k - 1]
    rate = preset.median_mbps * 1e6 * np.exp(np.array(log_rate))
    enter = 1.0 - math.exp(-SYNTHETIC_STEP_S / preset.fade_gap_s)
    leave = 1.0 - math.exp(-SYNTHETIC_STEP_S / preset.fade_s)
    draws = rng.random(n).tolist()
    fading = draws[0] < enter / (enter + leave)  # the chain's stationary share of fades
    in_fade = np.zeros(n, dtype=bool)
    for k in range(n):
        if k:
            fading = draws[k] >= leave if fading else draws[k] < enter
        in_fade[k] = fading
    rate[in_fade] *= preset.fade_factor
    np.minimum(rate, preset.peak_mbps * 1e6, out=rate)
    times = np.arange(n, dtype=np.float64) * SYNTHETIC_STEP_S
    return Trace(f"synthetic:{name}", times, rate, n * SYNTHETIC_STEP_S)
