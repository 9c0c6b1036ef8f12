"""Export the descriptor to TorchScript and ONNX.

Both exported models take patches (N, 1, 32, 32) float32 in any intensity range (the per-patch
mean/std normalisation is part of the network) and return unit-norm descriptors (N, 128).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

import torch

from ..core.errors import HardmatchError, OutputError
from ..core.files import check_writable, temporary_path
from ..nets.weights import load_hardnet


@contextlib.contextmanager
def _written_atomically(out: Path) -> Iterator[Path]:
    """A unique temporary path for a writer that needs a path; renamed to ``out`` when the block ends
    without error, removed otherwise. ``out`` is checked before the work (:class:`OutputError`)."""
    check_writable(out, "exported model")
    try:
        with temporary_path(out) as temp:
            yield temp
            os.replace(temp, out)
    except OSError as exc:
        raise OutputError(f"{out}: cannot write the exported model: {exc.strerror or exc}") from None


def export_torchscript(weights: str | os.PathLike, out: Path) -> Path:
    """Trace HardNet with ``weights`` and save it as TorchScript (``torch.jit.load`` reads it)."""
    out = Path(out)
    with _written_atomically(out) as temp:
        net = load_hardnet(weights).eval()
        example = torch.rand(8, 1, 32, 32) * 255
        with torch.no_grad():
            scripted = torch.jit.trace(net, example)
        scripted.save(str(temp))
    return out


def export_onnx(weights: str | os.PathLike, out: Path, opset: int = 17) -> Path:
    """Save HardNet with ``weights`` as ONNX with a dynamic batch dimension (needs the ``onnx`` package)."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise HardmatchError("ONNX export needs the 'onnx' package: pip install onnx") from None
    out = Path(out)
    with _written_atomically(out) as temp:
        net = load_hardnet(weights).eval()
        example = torch.rand(8, 1, 32, 32) * 255
        torch.onnx.export(net, (example,), str(temp), input_names=["patches"], output_names=["descriptors"],
                          dynamic_axes={"patches": {0: "n"}, "descriptors": {0: "n"}}, opset_version=opset,
                          dynamo=False)
    return out
