"""HardNet network: kornia-compatible parameters, unit-norm output, input checks."""

import numpy as np
import pytest
import torch

from hardmatch.nets.hardnet import HardNet


def test_state_dict_keys_and_shapes_equal_kornia():
    kf = pytest.importorskip("kornia.feature")
    ours = {k: tuple(v.shape) for k, v in HardNet().state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in kf.HardNet(pretrained=False).state_dict().items()}
    assert ours == theirs


def test_kornia_weights_load_and_give_the_same_descriptors():
    kf = pytest.importorskip("kornia.feature")
    torch.manual_seed(0)
    theirs = kf.HardNet(pretrained=False).eval()
    for module in theirs.modules():  # non-trivial running statistics
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    ours = HardNet().eval()
    ours.load_state_dict(theirs.state_dict())
    x = torch.rand(6, 1, 32, 32) * 255
    with torch.no_grad():
        assert torch.allclose(ours(x), theirs(x), atol=1e-4)


def test_output_is_unit_norm_and_contrast_invariant():
    net = HardNet().eval()
    x = torch.rand(5, 1, 32, 32)
    with torch.no_grad():
        d = net(x)
        d2 = net(3.0 * x + 40.0)
    assert d.shape == (5, 128)
    assert torch.allclose(d.norm(dim=1), torch.ones(5), atol=1e-5)
    assert torch.allclose(d, d2, atol=1e-4)


def test_wrong_shape_is_rejected():
    with pytest.raises(ValueError, match="32, 32"):
        HardNet()(torch.rand(2, 1, 64, 64))


def test_onnxruntime_backend_gives_the_torch_descriptors():
    pytest.importorskip("onnxruntime")
    from hardmatch.features.describe import HardNetDescriptor

    patches = np.random.default_rng(0).uniform(0, 255, (300, 1, 32, 32)).astype(np.float32)
    torch_desc = HardNetDescriptor(device="cpu", backend="torch", batch_size=128)(patches)
    ort = HardNetDescriptor(device="cpu", backend="onnxruntime", batch_size=128, precision="fp32")
    assert ort.backend == "onnxruntime"
    np.testing.assert_allclose(ort(patches), torch_desc, atol=1e-4)
    assert ort(patches[:0]).shape == (0, 128)
