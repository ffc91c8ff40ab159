"""One floating-point code path for every test run, whatever x86 CPU runs it.

torch picks its vectorised kernels (ATen), its BLAS paths (MKL) and its oneDNN kernels by the
CPU's instruction set, and AVX-512 and AVX2 round differently: a real model's IF then differs
in its last bits, SLICER's setting search may land on another setting, and the golden digests
of the scenarios that run real models (``tests/scenarios/golden.py``) differ from the recorded
ones on another machine. Every x86-64 machine that runs these tests has AVX2, so the tests run
on AVX2 code paths, with MKL's conditional numerical reproducibility, and with the digests
recorded that way. The variables are read when torch first dispatches, so they are set here,
before any test imports torch; Ray workers the tests start inherit them.
"""

from __future__ import annotations

import os

PINNED_NUMERICS = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "MKL_CBWR": "AVX2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
}
os.environ.update(PINNED_NUMERICS)


def pytest_report_header() -> str:
    """The pinned code paths, in pytest's header, so a run's log says how it computed."""
    import torch

    pinned = ", ".join(f"{k}={v}" for k, v in PINNED_NUMERICS.items())
    return f"numerics: {pinned}; torch CPU capability {torch.backends.cpu.get_cpu_capability()}"
