"""torch stays out of the CPU fast path: only code that runs torch imports it.

Importing torch costs about 1.35 s of a fresh process on a 2-core machine, more than everything
in ``hardmatch pair`` but HardNet itself. The default CPU path needs none of it: OpenCV detection
and patches, HardNet from the shipped ONNX model in ONNX Runtime, numpy matching, OpenCV and
pydegensac RANSAC. Modules therefore import torch inside the functions of the torch path (the
device path, AffNet/OriNet, training, custom weights), and the CPU path asks the two questions
below without importing it.
"""

from __future__ import annotations

import functools
import os
import sys


def is_tensor(value) -> bool:
    """Whether ``value`` is a torch tensor; never imports torch (no torch loaded: no tensor exists)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, getattr(torch, "Tensor", ()))


def gpu_driver_present() -> bool:
    """Whether this machine could run CUDA/ROCm at all: a loaded NVIDIA or AMD GPU driver (Linux), or a
    platform where that cannot be told cheaply (not Linux). False means torch would report no CUDA."""
    if not sys.platform.startswith("linux"):
        return True
    return any(os.path.exists(p) for p in ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/kfd"))


def device_name(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``; other names unchanged (``cpu``, ``cuda:1``).

    Imports torch only where a GPU driver is present (or torch is already loaded): without a
    driver ``torch.cuda.is_available()`` is False, so the answer is ``cpu`` at no cost. A CUDA
    device that torch cannot use raises ``ValueError`` with one line saying why.
    """
    if device != "auto":
        name = str(device)
        if device_type(name) == "cuda":
            _require_cuda(name)
        return name
    if "torch" not in sys.modules and not gpu_driver_present():
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _require_cuda(name: str) -> None:
    import torch

    if not torch.cuda.is_available():
        why = "torch was built without CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
        raise ValueError(f"device {name}: CUDA is not available ({why}, torch {torch.__version__}); "
                         f"use --device cpu or auto")
    index = torch.device(name).index
    if index is not None and index >= torch.cuda.device_count():
        raise ValueError(f"device {name}: only {torch.cuda.device_count()} CUDA device(s) visible")


def device_type(device: str) -> str:
    """``cuda:1`` -> ``cuda``; ``cpu`` -> ``cpu`` (what ``torch.device(name).type`` says)."""
    return str(device).split(":", 1)[0]


def cpu_threads() -> int:
    """Threads for CPU inference: torch's setting when torch is loaded (the user may have set it),
    else ``$OMP_NUM_THREADS``, else the CPUs this process may run on (what torch would use)."""
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "get_num_threads"):
        return int(torch.get_num_threads())
    try:
        requested = int(os.environ.get("OMP_NUM_THREADS", "0"))
    except ValueError:
        requested = 0
    if requested > 0:
        return requested
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


#: CPU flags of instructions that multiply bfloat16 in hardware (Intel AMX, AVX-512 BF16); without
#: them oneDNN emulates bf16 convolutions, slower than float32.
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux reports them (``/proc/cpuinfo``); empty where it cannot be read."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (:data:`BF16_CPU_FLAGS`); asked without torch."""
    return any(flag in cpu_flags() for flag in BF16_CPU_FLAGS)
