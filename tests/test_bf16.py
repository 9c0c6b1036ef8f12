"""bf16 HardNet on CPU (torch under bfloat16 autocast): agreement with fp32, when it is chosen, clear errors
where it cannot run."""

from __future__ import annotations

import numpy as np
import pytest

from hardmatch.features import describe
from hardmatch.twoview.config import get_preset
from hardmatch.features.describe import HardNetDescriptor, bulk_precision
from hardmatch.features.frames import FrameDetector
from hardmatch.core.lazytorch import cpu_has_bf16
from hardmatch.twoview.on_demand import OnDemandMatcher
from hardmatch.features.patches import extract_patches

from .conftest import textured_image

need_bf16 = pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no bf16 instructions (AMX or AVX-512 BF16)")


@pytest.fixture(scope="module")
def patches() -> np.ndarray:
    """Patches (N, 1, 32, 32) of DoG frames on a real photo (a texture without shared/)."""
    gray = textured_image(640)
    return extract_patches(gray, FrameDetector("dog", nfeatures=800)(gray).lafs)


@need_bf16
def test_bf16_descriptors_agree_with_fp32(patches):
    fp32 = HardNetDescriptor(device="cpu", precision="fp32")(patches)
    runner = HardNetDescriptor(device="cpu", precision="bf16")
    assert (runner.precision, runner.backend) == ("bf16", "torch")
    bf16 = runner(patches)
    assert bf16.dtype == np.float32 and bf16.shape == fp32.shape
    assert np.allclose(np.linalg.norm(bf16, axis=1), 1.0, atol=1e-5)
    cosine = np.sum(fp32 * bf16, axis=1)
    # measured on BostonA's patches: 0.9984 at worst, 0.9992 at the 1st percentile, median 0.99995 (int8: 0.975)
    assert cosine.min() > 0.99 and np.quantile(cosine, 0.01) > 0.998 and np.median(cosine) > 0.9998
    # nearest neighbours between the two halves: the same for nearly all, and for all that pass a ratio test
    half = len(patches) // 2
    similarity_fp32, similarity_bf16 = fp32[:half] @ fp32[half:].T, bf16[:half] @ bf16[half:].T
    nn_fp32, nn_bf16 = np.argmax(similarity_fp32, axis=1), np.argmax(similarity_bf16, axis=1)
    distances = np.sqrt(np.maximum(2.0 - 2.0 * np.sort(similarity_fp32, axis=1)[:, ::-1][:, :2], 0.0))
    distinct = distances[:, 0] < 0.9 * distances[:, 1]
    assert np.mean(nn_fp32 == nn_bf16) > 0.93 and distinct.sum() > 10
    assert np.all(nn_fp32[distinct] == nn_bf16[distinct])


def test_bf16_where_it_cannot_run_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(describe, "cpu_has_bf16", lambda: False)
    with pytest.raises(ValueError, match="no bf16 instructions"):
        HardNetDescriptor(device="cpu", precision="bf16")
    monkeypatch.setattr(describe, "cpu_has_bf16", lambda: True)
    with pytest.raises(ValueError, match="torch backend only"):
        HardNetDescriptor(device="cpu", backend="onnxruntime", precision="bf16")


def test_bulk_precision_picks_bf16_only_where_the_cpu_has_it_and_nothing_else_was_asked(monkeypatch):
    monkeypatch.setattr(describe, "cpu_has_bf16", lambda: True)
    assert bulk_precision("auto", "auto", "cpu") == "bf16"
    assert bulk_precision("auto", "torch", "cpu") == "bf16"
    assert bulk_precision("auto", "onnxruntime", "cpu") == "auto"  # the user asked for ONNX Runtime
    assert bulk_precision("fp32", "auto", "cpu") == "fp32"
    assert bulk_precision("int8", "auto", "cpu") == "int8"
    monkeypatch.setattr(describe, "cpu_has_bf16", lambda: False)
    assert bulk_precision("auto", "auto", "cpu") == "auto"


def test_wide_describes_its_view_steps_in_bf16_and_its_first_step_as_configured(monkeypatch):
    monkeypatch.setattr(describe, "cpu_has_bf16", lambda: True)
    matcher = OnDemandMatcher(get_preset("wide").with_options(device="cpu"))
    base, *later = matcher.steps
    assert matcher.pipeline(base).descriptor.precision == "fp32"
    assert [matcher.pipeline(step).descriptor.precision for step in later] == ["bf16"] * len(later)
    fixed = OnDemandMatcher(get_preset("wide").with_options(device="cpu", precision="fp32"))
    assert {fixed.pipeline(step).descriptor.precision for step in fixed.steps} == {"fp32"}


@need_bf16
def test_device_path_runs_bf16_too(patches):
    """describe_tensor (the torch path) honours precision bf16 as the batched path does."""
    import torch

    runner = HardNetDescriptor(device="cpu", precision="bf16")
    on_device = runner.describe_tensor(torch.from_numpy(patches)).numpy()
    batched = runner(patches)
    assert np.sum(on_device * batched, axis=1).min() > 0.9999
    fp32 = HardNetDescriptor(device="cpu", backend="torch", precision="fp32").describe_tensor(torch.from_numpy(patches))
    assert not np.allclose(on_device, fp32.numpy(), atol=1e-6)  # it did not run in float32
