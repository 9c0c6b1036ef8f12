"""int8 HardNet (ONNX Runtime, CPU): agreement with fp32 on real patches, precision choice, shipped model checks.

The tolerances here are what ``precision="auto"`` would rely on to pick int8 on CPU (hardmatch.features.describe.AUTO_INT8).
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from hardmatch.nets import weights  # noqa: E402
from hardmatch.twoview.config import PipelineConfig  # noqa: E402
from hardmatch.features.describe import HardNetDescriptor  # noqa: E402
from hardmatch.core.errors import WeightsError  # noqa: E402
from hardmatch.matching.matchers import DEFAULT_RATIO  # noqa: E402
from hardmatch.nets.quantize import descriptor_agreement  # noqa: E402

from .conftest import need_shared  # noqa: E402

#: per-descriptor cosine similarity int8 vs fp32 on BostonA/B: every descriptor, and the median, per shipped
#: weights (measured: hardnet-synth 0.994 / 0.9986; hardnet-synth-v2 0.962 / 0.9986, see hardmatch/nets/quantize.py)
COSINE_BOUNDS = {"hardnet-synth": (0.98, 0.997), "hardnet-synth-v2": (0.95, 0.998)}
MIN_COSINE, MEDIAN_COSINE = COSINE_BOUNDS["hardnet-synth"]
#: nearest neighbour in the other image: fraction of descriptors whose int8 NN is the fp32 NN, over all
#: descriptors (most have no true match, so their NN is a near tie) and over the fp32 ratio-test matches
MIN_NN_AGREEMENT, MIN_MATCH_AGREEMENT = 0.90, 0.97


@pytest.fixture(scope="module")
def boston_patches():
    """Real patches (N, 1, 32, 32) of the default detector on BostonA and BostonB (1000 features each)."""
    from hardmatch.features.frames import FrameDetector
    from hardmatch.core.io import load_gray
    from hardmatch.features.patches import extract_patches

    folder = need_shared("data/homogr")
    detector = FrameDetector("dog", nfeatures=1000)
    out = []
    for name in ("BostonA.jpg", "BostonB.jpg"):
        gray = load_gray(folder / name)
        out.append(extract_patches(gray, detector(gray).lafs))
    return out


@pytest.mark.parametrize("name", sorted(COSINE_BOUNDS))
def test_int8_descriptors_agree_with_fp32_on_real_patches(boston_patches, name):
    min_cosine, median_cosine = COSINE_BOUNDS[name]
    fp32 = HardNetDescriptor(name, device="cpu", precision="fp32")
    int8 = HardNetDescriptor(name, device="cpu", precision="int8")
    assert (fp32.precision, int8.precision) == ("fp32", "int8")
    (a32, b32), (a8, b8) = ([describe(p) for p in boston_patches] for describe in (fp32, int8))
    assert a8.shape == a32.shape and a8.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a8, axis=1), 1.0, atol=1e-4)
    agreement = descriptor_agreement(a32, b32, a8, b8, DEFAULT_RATIO)
    assert agreement["cosine_min"] > min_cosine and agreement["cosine_median"] > median_cosine, agreement
    assert not np.allclose(a8, a32, atol=1e-5)  # it really is another network
    assert agreement["nn_agreement"] > MIN_NN_AGREEMENT, agreement
    assert agreement["matches"] > 50 and agreement["match_agreement"] > MIN_MATCH_AGREEMENT, agreement


def test_auto_precision_follows_auto_int8_on_cpu_onnxruntime_and_is_fp32_otherwise(monkeypatch):
    from hardmatch.features import describe

    assert HardNetDescriptor(device="cpu").precision == ("int8" if describe.AUTO_INT8 else "fp32")
    monkeypatch.setattr(describe, "AUTO_INT8", True)
    assert HardNetDescriptor(device="cpu").precision == "int8"
    assert HardNetDescriptor(device="cpu", backend="torch").precision == "fp32"


def test_int8_where_it_cannot_run_is_a_clear_error():
    with pytest.raises(ValueError, match="onnxruntime backend only"):
        HardNetDescriptor(device="cpu", backend="torch", precision="int8")
    with pytest.raises(ValueError, match="precision: expected one of"):
        PipelineConfig(precision="fp16")


def test_int8_without_a_shipped_model_names_the_tool(tmp_path):
    import torch

    from hardmatch.nets.hardnet import HardNet

    path = tmp_path / "mine.pth"
    torch.save(HardNet().state_dict(), path)
    with pytest.raises(ValueError, match="quantize_hardnet.py"):
        HardNetDescriptor(path, device="cpu", precision="int8")
    assert HardNetDescriptor(path, device="cpu").precision == "fp32"  # auto falls back


def test_corrupt_int8_model_is_refused(tmp_path, monkeypatch):
    spec = weights.REGISTRY[weights.INT8_MODELS["hardnet-synth"]]
    shipped, _ = weights.resolve(spec.name)
    for file in shipped.parent.iterdir():
        shutil.copy(file, tmp_path / file.name)
    corrupt = tmp_path / spec.filename
    corrupt.write_bytes(corrupt.read_bytes()[:-1] + b"\0")
    monkeypatch.setattr(weights, "MODELS_DIR", tmp_path)
    with pytest.raises(WeightsError, match="sha256"):
        weights.load_onnx_model(spec.name)


def test_quantize_recipe_on_real_patches_gives_agreeing_int8_model(boston_patches):
    """The recipe of tools/quantize_hardnet.py on a small real calibration set: int8, close to fp32, repeatable."""
    import onnx

    from hardmatch.nets.runner import PatchNetRunner
    from hardmatch.nets.quantize import onnx_model_bytes, quantize_int8

    net = weights.load_hardnet("hardnet-synth")  # the MinMax recipe of MIN_COSINE / MEDIAN_COSINE
    calibration, test = boston_patches[0][:512].astype(np.float32), boston_patches[1]
    model = quantize_int8(onnx_model_bytes(net), calibration)
    assert model == quantize_int8(onnx_model_bytes(net), calibration)  # deterministic
    ops = {node.op_type for node in onnx.load_from_string(model).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    int8 = PatchNetRunner(net, "cpu", "onnxruntime", onnx_model=model)(test)
    fp32 = PatchNetRunner(net, "cpu", "onnxruntime")(test)
    assert np.median((int8 * fp32).sum(1)) > MEDIAN_COSINE
