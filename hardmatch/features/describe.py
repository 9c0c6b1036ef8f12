"""The HardNet descriptor: patches (N, 1, 32, 32) -> unit-norm descriptors (N, 128) float32, in batches.

It runs on the patch-network runner of :mod:`hardmatch.nets.runner`, with one of two backends:

- ``torch``: eager PyTorch in batches, channels-last on CPU (1.3-2x faster than the default
  layout for these small conv nets, measured), on CPU or CUDA;
- ``onnxruntime``: an ONNX model run by ONNX Runtime on CPU: 2.5x the throughput of eager
  PyTorch for HardNet on 2 CPU cores (``benchmarks/speed.py``), same outputs to 1e-6. The shipped
  HardNet weights come with their fp32 ONNX model (:func:`hardmatch.nets.weights.onnx_model_name`), so
  this path imports no torch at all (:mod:`hardmatch.core.lazytorch`); other networks and weights are
  exported once per process in memory (about 0.3 s), which needs the ``onnx`` package too
  (``pip install hardmatch[export]``); without it those run with ``torch``.

``auto`` picks ``onnxruntime`` on CPU when it is installed, else ``torch``.

HardNet also runs at lower precision on CPU (``precision``):

- ``bf16``: the torch network under bfloat16 autocast, renormalised in float32, on CPUs that
  multiply bf16 in hardware (Intel AMX, AVX-512 BF16; :func:`hardmatch.core.lazytorch.cpu_has_bf16`).
  On the 2-core AMX machine of 2026-12-02: 7700 patches/s against ONNX Runtime fp32's 3000 on real
  patches (4700 against 2600 on random ones); on BostonA/B's patches cosine to fp32 0.997 at worst,
  median 1.0000 (benchmarks/RESULTS.md, "HardNet in bf16 on CPU"). It imports torch (about 2 s), so
  only jobs that describe many patches choose it by themselves (:func:`bulk_precision`: ``wide``'s
  steps after the first);
- ``int8``: the shipped int8 ONNX model (made by ``tools/quantize_hardnet.py``, see
  :mod:`hardmatch.nets.quantize`) run by ONNX Runtime; 1.3x fp32 there, descriptors within cosine 0.97.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..core.lazytorch import cpu_has_bf16, device_name, device_type
from ..core.options import check_fields, check_not_empty, option
from ..nets.runner import (
    BACKENDS,
    DEVICE_BATCH,
    PatchNetRunner,
    cpu_memory_format,
    resolve_backend,
)
from ..nets.weights import (
    DEFAULT_DESCRIPTOR,
    INT8_MODELS,
    int8_model_name,
    load_hardnet,
    load_onnx_model,
    onnx_model_name,
)

if TYPE_CHECKING:
    import torch

PRECISIONS = ("auto", "fp32", "bf16", "int8")

#: Whether ``precision="auto"`` picks int8 on CPU (where the weights have an int8 model). Off: int8
#: descriptors agree with fp32 within the tolerance tests/test_int8.py checks and match every dev
#: pair fp32 matches through ``hardmatch eval`` (plus the noisy BruggeSquare), with the same held-out
#: FPR95; but on the EVD-like set ``wide`` with int8 reported a wrong homography as found where fp32
#: found the right one, so int8 stays opt-in (benchmarks/RESULTS.md,
#: "int8 HardNet").
AUTO_INT8 = False


def resolve_precision(precision: str, weights: str | os.PathLike, device: torch.device | str, backend: str) -> str:
    """``fp32``, ``bf16`` or ``int8`` for HardNet ``weights`` on ``device`` with ``backend`` (already resolved).

    bf16 runs only with the torch backend on a CPU that multiplies bf16 in hardware; int8 only as the
    shipped int8 ONNX model on CPU with ONNX Runtime; asking for either elsewhere raises
    ``ValueError`` naming why. ``auto``: int8 where it can run and :data:`AUTO_INT8`, else fp32 (on
    CUDA always fp32); jobs that want bf16 ask :func:`bulk_precision` first.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    on_cpu = device_type(str(device)) == "cpu"
    if precision == "bf16":
        if not on_cpu or backend != "torch":
            raise ValueError(f"precision bf16 runs on CPU with the torch backend only (device {device}, "
                             f"backend {backend})")
        if not cpu_has_bf16():
            raise ValueError("precision bf16: this CPU has no bf16 instructions (AMX or AVX-512 BF16), so bf16 "
                             "would be emulated and slower than fp32; use --precision fp32")
        return precision
    possible = on_cpu and backend == "onnxruntime" and int8_model_name(weights) is not None
    if precision == "auto":
        return "int8" if possible and AUTO_INT8 else "fp32"
    if precision == "int8" and not possible:
        if not on_cpu or backend != "onnxruntime":
            raise ValueError(f"precision int8 runs on CPU with the onnxruntime backend only (device {device}, "
                             f"backend {backend})")
        raise ValueError(f"precision int8: no int8 model for weights {str(weights)!r} (have: "
                         f"{', '.join(sorted(INT8_MODELS))}; make one with tools/quantize_hardnet.py)")
    return precision


def bulk_precision(precision: str, backend: str, device: str) -> str:
    """The precision a job that describes many patches (10^5 and more) runs: ``bf16`` where ``precision``
    is ``auto``, the device the CPU, the backend auto or torch and the CPU multiplies bf16 in hardware
    (1.8x ONNX Runtime fp32 there, descriptors within cosine 0.998 of fp32; torch's import, about 2 s,
    is paid back after about 12k patches); otherwise ``precision`` unchanged."""
    if precision == "auto" and backend in ("auto", "torch") and device_type(device_name(device)) == "cpu" \
            and cpu_has_bf16():
        return "bf16"
    return precision


class HardNetDescriptor:
    """HardNet with its weights, on a device, backend and precision, described in batches.

    ``weights``: registry name or path (see :mod:`hardmatch.nets.weights`). ``batch_size`` bounds peak
    memory (about 1.3 MB of activations per patch on CPU in float32); 256 is the fastest on CPU.
    ``precision``: ``fp32``, ``bf16`` (CPU with bf16 instructions; torch, which ``backend="auto"``
    then means), ``int8`` (CPU, ONNX Runtime, weights with a shipped int8 model) or ``auto`` (see
    :func:`resolve_precision`); the one in use is ``self.precision``.

    With ONNX Runtime and weights that ship an ONNX model of that precision, the model is loaded
    (sha256-checked) instead of the ``.pth``, and torch is not imported; :attr:`net` loads the
    torch network when something needs it (the device path).
    """

    def __init__(self, weights: str | os.PathLike = DEFAULT_DESCRIPTOR, device: str = "auto",
                 batch_size: int = 256, backend: str = "auto", precision: str = "auto") -> None:
        name = device_name(device)
        shipped = onnx_model_name(weights, "int8" if precision == "int8" else "fp32") is not None
        if precision == "bf16" and backend == "auto":
            backend = "torch"
        resolved_backend = resolve_backend(backend, name, need_exporter=not shipped)
        self.precision = resolve_precision(precision, weights, name, resolved_backend)
        shipped_onnx = onnx_model_name(weights, self.precision) if resolved_backend == "onnxruntime" else None
        onnx_model = load_onnx_model(shipped_onnx) if shipped_onnx is not None else None
        net = None if onnx_model is not None else load_hardnet(weights)
        self.runner = PatchNetRunner(net, name, resolved_backend, batch_size, onnx_model=onnx_model,
                                     load_net=lambda: load_hardnet(weights), bf16=self.precision == "bf16")

    @property
    def backend(self) -> str:
        return self.runner.backend

    @property
    def device(self) -> torch.device:
        """The torch device the network runs on (imports torch)."""
        return self.runner.device

    @property
    def net(self) -> torch.nn.Module:
        """The torch HardNet on :attr:`device` (loaded on first use when an ONNX model serves the CPU path)."""
        return self.runner.net

    def describe_tensor(self, patches: torch.Tensor, half: bool | None = None,
                        batch_size: int | None = None) -> torch.Tensor:
        """Device path: patches (N, 1, 32, 32) tensor -> descriptors (N, 128) float32 unit-norm tensor on
        :attr:`device`, with no copy to the host (the torch network, whatever :attr:`backend` says).

        ``half`` (default: on CUDA) runs the network under float16 autocast, precision ``bf16`` under
        bfloat16 autocast; the output is renormalised in float32. ``batch_size`` defaults to
        :data:`DEVICE_BATCH` on CUDA (large batches are what keep a GPU busy), to the configured batch
        size elsewhere.
        """
        import torch

        device, net = self.device, self.net
        half = device.type == "cuda" if half is None else half
        bf16 = self.precision == "bf16"  # CPU only (resolve_precision), as in the batched path
        autocast_dtype = torch.bfloat16 if bf16 else torch.float16
        if batch_size is None:
            on_cuda = device.type == "cuda"
            batch_size = max(self.runner.batch_size, DEVICE_BATCH) if on_cuda else self.runner.batch_size
        memory_format = cpu_memory_format(device)
        outputs = []
        with torch.inference_mode():
            for start in range(0, patches.shape[0], batch_size):
                batch = patches[start:start + batch_size].to(device, torch.float32)
                batch = batch.contiguous(memory_format=memory_format)
                with torch.autocast(device.type, dtype=autocast_dtype, enabled=half or bf16):
                    out = net(batch)
                outputs.append(torch.nn.functional.normalize(out.float(), dim=1))
        if not outputs:
            return torch.zeros((0, 128), dtype=torch.float32, device=device)
        return torch.cat(outputs)

    def __call__(self, patches: np.ndarray | torch.Tensor) -> np.ndarray:
        """Patches (N, 1, 32, 32), any intensity scale -> descriptors (N, 128) float32, unit L2 norm."""
        if len(patches) == 0:
            return np.zeros((0, 128), dtype=np.float32)
        descriptors = self.runner(patches)
        if self.precision == "bf16":  # unit length again in float32 (the network normalised in bfloat16)
            descriptors /= np.maximum(np.linalg.norm(descriptors, axis=1, keepdims=True), 1e-12)
        return descriptors


def _check_device(value: str) -> None:
    if value not in ("auto", "cpu"):
        import torch

        try:
            torch.device(value)
        except (RuntimeError, ValueError):
            raise ValueError(f"expected auto, cpu, cuda, cuda:N or another torch device, got {value!r}") from None


@dataclass(frozen=True)
class DescriptorConf:
    """The descriptor stage: which descriptor, its weights, device, runtime, precision and batch."""

    descriptor: str = option("hardnet", "hardnet, or the OpenCV baselines sift / rootsift on the same frames",
                           ("hardnet", "sift", "rootsift"))
    weights: str = option(DEFAULT_DESCRIPTOR, "descriptor weights: registry name or .pth path", check=check_not_empty)
    device: str = option("auto", "torch device for the descriptor: auto, cpu, cuda, cuda:1, ...", check=_check_device)
    backend: str = option("auto", "descriptor runtime: onnxruntime (CPU, 2.5x faster when installed), torch, or auto",
                        BACKENDS)
    precision: str = option("auto", "descriptor precision: fp32, bf16 (CPU with AMX or AVX-512 BF16, torch; 1.8x "
                                  "faster, descriptors within cosine 0.998 of fp32), int8 (CPU with onnxruntime "
                                  "and weights with a shipped int8 model; 1.3x faster, within cosine 0.97), or "
                                  "auto (fp32; bf16 in wide's view steps where the CPU has it)", PRECISIONS)
    batch_size: int = option(256, "patches per descriptor batch (256 is fastest on CPU, measured)", range="[1, inf)")

    def __post_init__(self) -> None:
        check_fields(self)
