"""Exported TorchScript and ONNX descriptors agree with the eager model."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from hardmatch.nets.weights import load_hardnet


@pytest.fixture(scope="module")
def patches():
    return (torch.rand(16, 1, 32, 32) * 255).float()


def test_torchscript_matches_eager(tmp_path, patches):
    out = tmp_path / "hardnet.pt"
    proc = subprocess.run([sys.executable, "-m", "hardmatch.cli", "export", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    scripted = torch.jit.load(str(out))
    with torch.no_grad():
        assert torch.allclose(scripted(patches), load_hardnet()(patches), atol=1e-4)
        assert scripted(patches[:3]).shape == (3, 128)


def test_onnx_matches_eager(tmp_path, patches):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    out = tmp_path / "hardnet.onnx"
    proc = subprocess.run([sys.executable, "-m", "hardmatch.cli", "export", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(None, {"patches": patches.numpy()})[0]
    with torch.no_grad():
        expected = load_hardnet()(patches).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4)
