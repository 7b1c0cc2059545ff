"""What the CPU can do natively, read from /proc/cpuinfo (Linux) without importing torch.

Training (bf16 autocast) and the runtime (OpenVINO bf16) lower precision only
where the CPU computes bf16 in hardware: AMX or AVX512-BF16. Elsewhere bf16
is emulated, slower than fp32, and is never chosen automatically.

`cpu_flags` is the one place retint reads the CPU's flags. The environment
variable RETINT_CPU_HIDE_FLAGS (flags separated by commas or spaces, e.g.
`avx512_bf16,amx_bf16`) hides flags from it, so that every choice made from
them (auto's backend, OpenVINO's precision, the export's bf16 gate, training's
autocast) is the one a CPU without them makes: how the tests check, on a
machine with AVX512-BF16, the path every other x86-64 CPU takes. It hides
flags from retint's choices only; the libraries still use the instructions
the CPU has.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16")
# The flags that decide how fast the CPU runs the models: quoted with every figure.
SPEED_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16",
               "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8")


HIDE_FLAGS_VARIABLE = "RETINT_CPU_HIDE_FLAGS"
NATIVE_BF16_HIDDEN = ",".join(NATIVE_BF16_FLAGS)  # the value that gives any CPU the path of one without bf16


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The first processor's flags, less those RETINT_CPU_HIDE_FLAGS names (read once per
    process); empty where /proc/cpuinfo is not there."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return frozenset(line.split(":", 1)[1].split()) - hidden_flags()
    return frozenset()


def hidden_flags() -> frozenset[str]:
    """The flags RETINT_CPU_HIDE_FLAGS hides (see the module doc)."""
    return frozenset(os.environ.get(HIDE_FLAGS_VARIABLE, "").replace(",", " ").split())


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


def without_native_bf16() -> str:
    """Why this CPU's choices are those of one without native bf16, as a clause for a reason."""
    hidden = [flag for flag in NATIVE_BF16_FLAGS if flag in hidden_flags()]
    if hidden:
        return f"this CPU's {'/'.join(hidden)} is hidden by {HIDE_FLAGS_VARIABLE}"
    return "this CPU has no AMX or AVX512-BF16"

