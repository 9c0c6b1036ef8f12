"""Batched inference of the patch networks: HardNet descriptors, and the runner AffNet/OriNet share.

Two backends run a network on patches (N, 1, 32, 32):

- ``torch``: eager PyTorch in batches, channels-last on CPU (1.3-2x faster than the default
  layout for these small conv nets, measured), on CPU or CUDA;
- ``onnxruntime``: the network exported once per process to ONNX (in memory, about 0.4 s) and
  run by ONNX Runtime on CPU: 2.5x the throughput of eager PyTorch for HardNet on 2 CPU cores
  (``benchmarks/speed.py``), same outputs to 1e-6. Needs ``pip install onnxruntime onnx``.

``auto`` picks ``onnxruntime`` on CPU when it is installed, else ``torch``.
"""

from __future__ import annotations

import io
import os
import warnings

import numpy as np
import torch

from .errors import HardmatchError
from .weights import DEFAULT_DESCRIPTOR, load_hardnet

BACKENDS = ("auto", "torch", "onnxruntime")
#: Patches per HardNet batch on CUDA in the device path (throughput still grows up to ~32k on an H100).
DEVICE_BATCH = 8192


def pick_device(device: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; otherwise ``torch.device(device)``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def cpu_memory_format(device: torch.device) -> torch.memory_format:
    """Channels-last on CPU (1.3-2x faster for these small conv nets, measured), default elsewhere."""
    return torch.channels_last if device.type == "cpu" else torch.contiguous_format


def onnxruntime_available() -> bool:
    try:
        import onnx  # noqa: F401  (the exporter needs it)
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


@torch.inference_mode()
def run_in_batches(net: torch.nn.Module, patches: np.ndarray | torch.Tensor, batch_size: int,
                   device: torch.device | str = "cpu") -> torch.Tensor:
    """``net`` on patches (N, 1, P, P) in batches of ``batch_size`` -> its outputs concatenated (N, ...) on CPU.

    The network must already sit on ``device`` in :func:`cpu_memory_format`.
    """
    device = torch.device(device)
    memory_format = cpu_memory_format(device)
    patches = torch.as_tensor(np.ascontiguousarray(patches) if isinstance(patches, np.ndarray) else patches,
                              dtype=torch.float32)
    outputs = []
    for start in range(0, patches.shape[0], batch_size):
        batch = patches[start:start + batch_size].to(device, non_blocking=True)
        outputs.append(net(batch.contiguous(memory_format=memory_format)).float().cpu())
    if not outputs:
        return torch.zeros((0,))
    return torch.cat(outputs)


class PatchNetRunner:
    """A patch network with a backend: ``runner(patches (N, 1, P, P)) -> outputs (N, ...)`` float32 numpy.

    ``net`` is an eval-mode ``torch.nn.Module``; ``device`` ``auto|cpu|cuda|...``; ``backend`` one of
    :data:`BACKENDS`.
    """

    def __init__(self, net: torch.nn.Module, device: str = "auto", backend: str = "auto", batch_size: int = 256,
                 patch_size: int = 32) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        self.device = pick_device(device)
        if backend == "auto":
            backend = "onnxruntime" if self.device.type == "cpu" and onnxruntime_available() else "torch"
        if backend == "onnxruntime":
            if self.device.type != "cpu":
                raise ValueError("the onnxruntime backend runs on CPU only; use --backend torch for CUDA")
            if not onnxruntime_available():
                raise HardmatchError("the onnxruntime backend needs: pip install onnxruntime onnx")
        self.backend = backend
        self.batch_size = int(batch_size)
        self.net = net.eval().to(self.device, memory_format=cpu_memory_format(self.device))
        self._session = self._onnx_session(patch_size) if backend == "onnxruntime" else None

    def _onnx_session(self, patch_size: int):
        import onnxruntime

        buffer = io.BytesIO()
        example = torch.rand(2, 1, patch_size, patch_size) * 255
        with warnings.catch_warnings():  # tracer notes about the input-shape check
            warnings.simplefilter("ignore")
            torch.onnx.export(self.net.to(memory_format=torch.contiguous_format), (example,), buffer,
                              input_names=["patches"], output_names=["out"], opset_version=17,
                              dynamic_axes={"patches": {0: "n"}, "out": {0: "n"}}, dynamo=False)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        return onnxruntime.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])

    def __call__(self, patches: np.ndarray | torch.Tensor) -> np.ndarray:
        if self._session is None:
            return run_in_batches(self.net, patches, self.batch_size, self.device).numpy()
        patches = np.ascontiguousarray(patches.numpy() if isinstance(patches, torch.Tensor) else patches,
                                       dtype=np.float32)
        outputs = [self._session.run(None, {"patches": patches[start:start + self.batch_size]})[0]
                   for start in range(0, len(patches), self.batch_size)]
        return np.concatenate(outputs).astype(np.float32, copy=False)


class HardNetDescriptor:
    """HardNet with its weights, on a device and backend, described in batches.

    ``weights``: registry name or path (see :mod:`hardmatch.weights`). ``batch_size`` bounds peak
    memory (about 1.3 MB of activations per patch on CPU in float32); 256 is the fastest on CPU.
    """

    def __init__(self, weights: str | os.PathLike = DEFAULT_DESCRIPTOR, device: str = "auto",
                 batch_size: int = 256, backend: str = "auto") -> None:
        self.runner = PatchNetRunner(load_hardnet(weights), device, backend, batch_size)
        self.device = self.runner.device
        self.net = self.runner.net

    @property
    def backend(self) -> str:
        return self.runner.backend

    @torch.inference_mode()
    def describe_tensor(self, patches: torch.Tensor, half: bool | None = None,
                        batch_size: int | None = None) -> torch.Tensor:
        """Device path: patches (N, 1, 32, 32) tensor -> descriptors (N, 128) float32 unit-norm tensor on
        :attr:`device`, with no copy to the host (the torch network, whatever :attr:`backend` says).

        ``half`` (default: on CUDA) runs the network under float16 autocast; the output is
        renormalised in float32. ``batch_size`` defaults to :data:`DEVICE_BATCH` on CUDA (large
        batches are what keep a GPU busy), to the configured batch size elsewhere.
        """
        half = self.device.type == "cuda" if half is None else half
        if batch_size is None:
            on_cuda = self.device.type == "cuda"
            batch_size = max(self.runner.batch_size, DEVICE_BATCH) if on_cuda else self.runner.batch_size
        memory_format = cpu_memory_format(self.device)
        outputs = []
        for start in range(0, patches.shape[0], batch_size):
            batch = patches[start:start + batch_size].to(self.device, torch.float32)
            batch = batch.contiguous(memory_format=memory_format)
            with torch.autocast(self.device.type, dtype=torch.float16, enabled=half):
                out = self.net(batch)
            outputs.append(torch.nn.functional.normalize(out.float(), dim=1))
        if not outputs:
            return torch.zeros((0, 128), dtype=torch.float32, device=self.device)
        return torch.cat(outputs)

    def __call__(self, patches: np.ndarray | torch.Tensor) -> np.ndarray:
        """Patches (N, 1, 32, 32), any intensity scale -> descriptors (N, 128) float32, unit L2 norm."""
        if len(patches) == 0:
            return np.zeros((0, 128), dtype=np.float32)
        return self.runner(patches)
