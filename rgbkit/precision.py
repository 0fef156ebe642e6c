"""Which number format the networks compute in: float32, or bfloat16 where the CPU has it.

Why: CPUs with native bfloat16 (Intel AMX / AVX512-BF16, recent AMD) run
these small convolutions about twice as fast in bfloat16 (``torch.autocast``:
convolutions and matrix products in bfloat16, accumulations, batch norm and
the loss in float32). The cost is rounding: an ensemble's mean age moves by
about 0.1% (median; a few per cent at most), far inside its own spread.
Without native support bfloat16 is emulated and slower, so "auto" is float32
there, and float32 stays the default of ``Ensemble.predict``; the catalog and
training ask for "auto".
"""
from __future__ import annotations

import contextlib
import os
from functools import lru_cache

__all__ = ["PRECISIONS", "cpu_has_bf16", "native_bf16", "resolve_precision", "autocast"]

PRECISIONS = ("auto", "float32", "bfloat16")


@lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """True when this CPU's flags list native bfloat16 (AMX or AVX512-BF16); Linux only, no torch import."""
    try:
        with open("/proc/cpuinfo") as fh:
            flags = next((line for line in fh if line.startswith("flags")), "").split()
    except OSError:
        return False
    return bool({"amx_bf16", "avx512_bf16"} & set(flags))


@lru_cache(maxsize=1)
def native_bf16() -> bool:
    """True when this CPU computes bfloat16 natively and torch's oneDNN can use it."""
    if not cpu_has_bf16():
        return False
    import torch

    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(precision: str | None, device="cpu", check_torch: bool = True) -> str:
    """"float32" or "bfloat16" for a requested precision ("auto": bfloat16 on a CPU that has it).

    ``RGBKIT_PRECISION`` overrides "auto" (e.g. ``float32`` for bit-stable reruns).
    ``check_torch=False`` decides "auto" from the CPU flags alone (no torch import).
    """
    p = (precision or "auto").lower()
    if p == "auto":
        p = os.environ.get("RGBKIT_PRECISION", "auto").lower() or "auto"
        if p not in PRECISIONS:
            raise ValueError(f"RGBKIT_PRECISION={p!r}: use one of {', '.join(PRECISIONS)}")
    if p not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if p == "auto":
        on_cpu = str(device).split(":")[0] == "cpu"
        return "bfloat16" if on_cpu and (native_bf16() if check_torch else cpu_has_bf16()) else "float32"
    return p


def autocast(precision: str, device="cpu"):
    """A context that runs the networks in ``precision`` ("float32": no change)."""
    if precision == "float32":
        return contextlib.nullcontext()
    import torch

    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
