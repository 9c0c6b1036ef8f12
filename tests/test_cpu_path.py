"""The default CPU path: HardNet from the shipped fp32 ONNX model, and a pair matched without torch.

Importing torch costs about 1.35 s per process on a 2-core machine; the CPU path (OpenCV, ONNX
Runtime, numpy) does not need it (hardmatch/core/lazytorch.py).
"""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from hardmatch.features.describe import HardNetDescriptor  # noqa: E402
from hardmatch.core.lazytorch import gpu_driver_present  # noqa: E402
from hardmatch.nets.weights import DEFAULT_DESCRIPTOR, FP32_ONNX_MODELS  # noqa: E402


def _texture(size: int = 480, seed: int = 0) -> np.ndarray:
    """A gray uint8 (size, size) image with blobs and edges at several scales."""
    rng = np.random.default_rng(seed)
    image = np.zeros((size, size), np.float32)
    for sigma in (1.5, 4.0, 10.0):
        image += cv2.GaussianBlur(rng.normal(0, 1, (size, size)).astype(np.float32), (0, 0), sigma) * sigma
    image = (image - image.min()) / (image.max() - image.min()) * 255
    return image.astype(np.uint8)


def test_default_weights_ship_an_fp32_onnx_model():
    assert DEFAULT_DESCRIPTOR in FP32_ONNX_MODELS


def test_shipped_fp32_onnx_model_is_the_pth_network():
    """Same descriptors as the torch network from the .pth, and the torch network is not even loaded."""
    onnx = HardNetDescriptor(DEFAULT_DESCRIPTOR, device="cpu", backend="onnxruntime", precision="fp32")
    assert onnx.runner._net is None  # served by the shipped model alone
    rng = np.random.default_rng(0)
    patches = np.concatenate([rng.uniform(0, 255, (64, 1, 32, 32)),
                              cv2.resize(_texture(), (32, 32 * 64), interpolation=cv2.INTER_AREA)
                              .reshape(64, 1, 32, 32)]).astype(np.float32)
    torch_net = HardNetDescriptor(DEFAULT_DESCRIPTOR, device="cpu", backend="torch", precision="fp32")
    np.testing.assert_allclose(onnx(patches), torch_net(patches), atol=2e-5)
    assert onnx.net is not None and onnx.runner._net is not None  # loaded on demand


@pytest.mark.skipif(gpu_driver_present(), reason="with a GPU driver, device auto asks torch whether CUDA works")
def test_cpu_pair_imports_neither_torch_nor_scipy(tmp_path):
    """A pair through the public API on the default CPU path: a right homography, no torch, no scipy.spatial."""
    image = _texture()
    h_true = np.array([[0.95, 0.08, 12.0], [-0.07, 0.97, 20.0], [2e-5, 1e-5, 1.0]])
    warped = cv2.warpPerspective(image, h_true, image.shape[::-1], borderMode=cv2.BORDER_REFLECT)
    cv2.imwrite(str(tmp_path / "a.png"), image)
    cv2.imwrite(str(tmp_path / "b.png"), warped)
    script = (
        "import json, sys\n"
        "from hardmatch import match_pair\n"
        f"r = match_pair({str(tmp_path / 'a.png')!r}, {str(tmp_path / 'b.png')!r}, geometry='homography', "
        "nfeatures=1500)\n"
        "print(json.dumps({'H': None if r.H is None else r.H.tolist(), 'torch': 'torch' in sys.modules, "
        "'scipy': 'scipy.spatial' in sys.modules, 'reason': r.reason}))\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["H"] is not None, out["reason"]
    corners = np.array([[0, 0, 1], [479, 0, 1], [479, 479, 1], [0, 479, 1]], float).T
    mapped, truth = np.array(out["H"]) @ corners, h_true @ corners
    error = np.linalg.norm(mapped[:2] / mapped[2] - truth[:2] / truth[2], axis=0).max()
    assert error < 2.0, error
    assert not out["torch"] and not out["scipy"], out


def test_shipped_model_needs_onnx_runtime_only(monkeypatch, tmp_path):
    """Without the ``onnx`` package (the exporter's), the shipped model still runs in ONNX Runtime;
    weights that would need an export fall back to torch under ``auto``."""
    import torch

    from hardmatch.nets.hardnet import HardNet

    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx -> ImportError
    assert HardNetDescriptor(DEFAULT_DESCRIPTOR, device="cpu").backend == "onnxruntime"
    path = tmp_path / "mine.pth"
    torch.save(HardNet().state_dict(), path)
    assert HardNetDescriptor(path, device="cpu").backend == "torch"


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
def test_cuda_asked_for_without_cuda_is_one_clear_error(tmp_path):
    """--device cuda on a machine without CUDA: one line naming the reason, exit 2, no traceback."""
    cv2.imwrite(str(tmp_path / "a.png"), _texture(200))
    proc = subprocess.run([sys.executable, "-m", "hardmatch.cli", "pair", str(tmp_path / "a.png"),
                           str(tmp_path / "a.png"), "--device", "cuda"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "CUDA is not available" in proc.stderr
