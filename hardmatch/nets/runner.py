"""Batched inference of a patch network (HardNet, AffNet, OriNet): patches (N, 1, 32, 32) -> outputs (N, D).

Two backends:

- ``torch``: eager PyTorch in batches, channels-last on CPU (1.3-2x faster than the default
  layout for these small conv nets, measured), on CPU or CUDA;
- ``onnxruntime``: an ONNX model run by ONNX Runtime on CPU (2.5x the throughput of eager PyTorch
  for HardNet on 2 CPU cores, same outputs to 1e-6). Networks without a shipped ONNX model are
  exported once per process in memory (about 0.3 s), which needs the ``onnx`` package; without it
  they run with ``torch``.

``auto`` picks ``onnxruntime`` on CPU when it is installed, else ``torch``. The HardNet descriptor
built on this runner (precisions, weights) is :mod:`hardmatch.features.describe`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np

from ..core.errors import HardmatchError
from ..core.lazytorch import cpu_threads, device_name, device_type, is_tensor

if TYPE_CHECKING:
    import torch

BACKENDS = ("auto", "torch", "onnxruntime")
#: Patches per HardNet batch on CUDA in the device path (throughput still grows up to ~32k on an H100).
DEVICE_BATCH = 8192


def pick_device(device: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; otherwise ``torch.device(device)`` (imports torch;
    :func:`hardmatch.core.lazytorch.device_name` answers the same without it where no GPU driver is)."""
    import torch

    return torch.device(device_name(device))


def cpu_memory_format(device: torch.device) -> torch.memory_format:
    """Channels-last on CPU (1.3-2x faster for these small conv nets, measured), default elsewhere."""
    import torch

    return torch.channels_last if device.type == "cpu" else torch.contiguous_format


def onnxruntime_available(need_exporter: bool = True) -> bool:
    """Whether ONNX Runtime is installed, and (``need_exporter``: a network must be exported first) the
    ``onnx`` package torch's exporter needs; a shipped ONNX model needs ONNX Runtime alone."""
    try:
        import onnxruntime  # noqa: F401
        if need_exporter:
            import onnx  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_backend(backend: str, device: torch.device | str, need_exporter: bool = True) -> str:
    """``auto`` -> ``onnxruntime`` on CPU when installed (with ``onnx`` too when ``need_exporter``), else
    ``torch``; other names unchanged."""
    if backend == "auto":
        return "onnxruntime" if device_type(device) == "cpu" and onnxruntime_available(need_exporter) else "torch"
    return backend


def run_in_batches(net: torch.nn.Module, patches: np.ndarray | torch.Tensor, batch_size: int,
                   device: torch.device | str = "cpu", bf16: bool = False) -> torch.Tensor:
    """``net`` on patches (N, 1, P, P) in batches of ``batch_size`` -> its outputs concatenated (N, ...) on CPU,
    float32 (``bf16``: computed under bfloat16 autocast).

    The network must already sit on ``device`` in :func:`cpu_memory_format`.
    """
    import torch

    device = torch.device(device)
    memory_format = cpu_memory_format(device)
    patches = torch.as_tensor(np.ascontiguousarray(patches) if isinstance(patches, np.ndarray) else patches,
                              dtype=torch.float32)
    outputs = []
    with torch.inference_mode():
        for start in range(0, patches.shape[0], batch_size):
            batch = patches[start:start + batch_size].to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                output = net(batch.contiguous(memory_format=memory_format))
            outputs.append(output.float().cpu())
    if not outputs:
        return torch.zeros((0,))
    return torch.cat(outputs)


class PatchNetRunner:
    """A patch network with a backend: ``runner(patches (N, 1, P, P)) -> outputs (N, ...)`` float32 numpy.

    ``net`` is an eval-mode ``torch.nn.Module``, or None with ``load_net`` (a function that makes
    it) when the network may never be needed: with ``onnx_model`` (ONNX bytes the ``onnxruntime``
    backend runs instead of exporting ``net``, e.g. a shipped fp32 or int8 HardNet) the torch network
    is made only if something asks for :attr:`net`. ``device`` ``auto|cpu|cuda|...``; ``backend`` one
    of :data:`BACKENDS`; ``bf16``: the ``torch`` backend computes under bfloat16 autocast.
    """

    def __init__(self, net: torch.nn.Module | None, device: str = "auto", backend: str = "auto",
                 batch_size: int = 256, patch_size: int = 32, onnx_model: bytes | None = None,
                 load_net: Callable[[], torch.nn.Module] | None = None, bf16: bool = False) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if net is None and load_net is None:
            raise ValueError("PatchNetRunner needs a network or a function that loads it")
        self.device_name = device_name(device)
        backend = resolve_backend(backend, self.device_name, need_exporter=onnx_model is None)
        if backend == "onnxruntime":
            if device_type(self.device_name) != "cpu":
                raise ValueError("the onnxruntime backend runs on CPU only; use --backend torch for CUDA")
            if not onnxruntime_available(need_exporter=onnx_model is None):
                raise HardmatchError("the onnxruntime backend needs: pip install onnxruntime"
                                     + ("" if onnx_model is not None else " onnx"))
        if bf16 and backend != "torch":
            raise ValueError(f"bf16 runs with the torch backend only, got {backend}")
        self.backend = backend
        self.bf16 = bool(bf16)
        self.batch_size = int(batch_size)
        self._net, self._load_net, self._net_placed = net, load_net, False
        self._session = self._onnx_session(patch_size, onnx_model) if backend == "onnxruntime" else None

    @property
    def device(self) -> torch.device:
        """The torch device (imports torch)."""
        import torch

        return torch.device(self.device_name)

    @property
    def net(self) -> torch.nn.Module:
        """The torch network in eval mode on :attr:`device` (made by ``load_net`` on first use)."""
        if self._net is None:
            self._net = self._load_net()
        if not self._net_placed:
            self._net = self._net.eval().to(self.device, memory_format=cpu_memory_format(self.device))
            self._net_placed = True
        return self._net

    def _onnx_session(self, patch_size: int, onnx_model: bytes | None):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = cpu_threads()
        options.inter_op_num_threads = 1
        # ONNX Runtime's workers otherwise keep spinning after each batch, on the cores the numpy/OpenCV
        # work between batches needs (no measurable change on the hard_06 pair of 2026-12-02; it frees
        # the cores, results are the same)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if onnx_model is None:
            from .quantize import onnx_model_bytes

            onnx_model = onnx_model_bytes(self.net, patch_size)
        return onnxruntime.InferenceSession(onnx_model, options, providers=["CPUExecutionProvider"])

    def __call__(self, patches: np.ndarray | torch.Tensor) -> np.ndarray:
        if self._session is None:
            return run_in_batches(self.net, patches, self.batch_size, self.device, self.bf16).numpy()
        patches = np.ascontiguousarray(patches.numpy() if is_tensor(patches) else patches, dtype=np.float32)
        outputs = [self._session.run(None, {"patches": patches[start:start + self.batch_size]})[0]
                   for start in range(0, len(patches), self.batch_size)]
        return np.concatenate(outputs).astype(np.float32, copy=False)
