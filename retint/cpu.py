"""What the CPU can do natively, read from /proc/cpuinfo (Linux) without importing torch.

Training (bf16 autocast) and the runtime (OpenVINO bf16) lower precision only
where the CPU computes bf16 in hardware: AMX or AVX512-BF16. Elsewhere bf16
is emulated, slower than fp32, and is never chosen automatically.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16")
# The flags that decide how fast the CPU runs the models: quoted with every figure.
SPEED_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16",
               "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8")


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The first processor's flags; empty where /proc/cpuinfo is not there."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The first processor's model name (and family/model numbers where given)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    fields: dict[str, str] = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    name = fields.get("model name", "unknown")
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    return name


def speed_flags() -> tuple[str, ...]:
    """Those of SPEED_FLAGS the CPU has."""
    flags = cpu_flags()
    return tuple(flag for flag in SPEED_FLAGS if flag in flags)


def native_bf16_flags() -> tuple[str, ...]:
    """Those of AMX-BF16 / AVX512-BF16 the CPU has (empty: bf16 would be emulated)."""
    flags = cpu_flags()
    return tuple(flag for flag in NATIVE_BF16_FLAGS if flag in flags)


def has_native_bf16() -> bool:
    """Whether the CPU does bf16 in hardware (AMX-BF16 or AVX512-BF16) rather than emulating it."""
    return bool(native_bf16_flags())
