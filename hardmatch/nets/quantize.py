"""int8 HardNet for CPU: ONNX Runtime static quantisation calibrated on real patches.

The recipe (run by ``tools/quantize_hardnet.py``, which writes the shipped
``hardnet-synth-int8.onnx`` and its sha256):

- calibration patches: 8192 real DoG patches of training images, a seeded draw, gathered by
  :mod:`hardmatch.features.int8_calibration` (above the detector and patch stages; this module, which
  :mod:`hardmatch.features.describe` uses, imports none of them);
- ``onnxruntime.quantization.quantize_static``: QDQ format, per-channel int8 weights with
  ``reduce_range`` (7-bit), uint8 activations, MinMax calibration, only the convolutions quantised
  (the per-patch normalisation and the final L2 normalisation stay float32).

``reduce_range`` is essential on CPUs without AVX-512 VNNI (like the 2-core AVX2 EPYC this was
measured on): there ONNX Runtime's u8 x s8 kernels add pairs of products in int16, which saturates
with full-range weights; without it the worst descriptor of BostonA's patches had cosine 0.65 to
fp32 (median 0.95), with it 0.994 (median 0.9986). uint8 weights instead avoid the saturation too
but ran slower than fp32. MinMax with a moving average of the per-batch ranges: 0.996 (median
0.9993), about as good. 99.99-percentile calibration clipped too much (median 0.986), and
quantising ReLU as well (so that ONNX Runtime fuses it) lost accuracy for little speed.

Quantising takes about 10 s (patches plus calibration), far more than int8 saves per image, so it
is done once by the tool and the result shipped, not redone at run time.

``hardnet-synth-v2`` (15.8M pairs, bf16 training) quantises less faithfully with MinMax: worst
BostonA/B descriptor cosine 0.898 (median 0.9967); with a moving average 0.938 (0.9984); with
99.999-percentile calibration 0.962 (0.9986), which is its recipe (:data:`CALIBRATION_METHODS`).
"""

from __future__ import annotations

import io
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

CALIBRATION_BATCH = 256
#: calibration method per HardNet weights (the rest: minmax); measured in the module docstring
CALIBRATION_METHODS = {"hardnet-synth-v2": "percentile"}


def calibration_method(weights: str) -> str:
    """The activation calibration of ``weights``' int8 recipe: ``minmax`` or ``percentile``."""
    return CALIBRATION_METHODS.get(str(weights).lower(), "minmax")


def onnx_model_bytes(net: torch.nn.Module, patch_size: int = 32, opset: int = 17) -> bytes:
    """A patch network (N, 1, P, P) -> (N, ...) exported to ONNX in memory, dynamic batch dimension."""
    buffer = io.BytesIO()
    example = torch.rand(2, 1, patch_size, patch_size) * 255
    with warnings.catch_warnings():  # tracer notes about the input-shape check
        warnings.simplefilter("ignore")
        torch.onnx.export(net.to(memory_format=torch.contiguous_format), (example,), buffer,
                          input_names=["patches"], output_names=["out"], opset_version=opset,
                          dynamic_axes={"patches": {0: "n"}, "out": {0: "n"}}, dynamo=False)
    return buffer.getvalue()


def quantize_int8(model_fp32: bytes, patches: np.ndarray, method: str = "minmax") -> bytes:
    """ONNX fp32 patch network + calibration patches (N, 1, P, P) -> int8 QDQ ONNX model bytes.

    ``method``: activation range calibration, ``minmax`` or ``percentile`` (99.999 %)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class _Batches(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(range(0, len(patches), CALIBRATION_BATCH))

        def get_next(self):
            start = next(self.batches, None)
            return None if start is None else {"patches": patches[start:start + CALIBRATION_BATCH]}

    with tempfile.TemporaryDirectory(prefix="hardmatch-quantize-") as tmp:
        fp32, pre, int8 = (Path(tmp) / name for name in ("fp32.onnx", "pre.onnx", "int8.onnx"))
        fp32.write_bytes(model_fp32)
        quant_pre_process(str(fp32), str(pre))
        quantize_static(str(pre), str(int8), _Batches(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, reduce_range=True,
                        op_types_to_quantize=["Conv"],
                        calibrate_method={"minmax": CalibrationMethod.MinMax,
                                          "percentile": CalibrationMethod.Percentile}[method])
        return int8.read_bytes()


def descriptor_agreement(ref1: np.ndarray, ref2: np.ndarray, new1: np.ndarray, new2: np.ndarray,
                         ratio: float) -> dict[str, float]:
    """How far descriptors of the same patches from two networks (e.g. int8 vs fp32) agree.

    ``ref1``/``new1`` (N, D) describe image 1's patches, ``ref2``/``new2`` (M, D) image 2's, all unit
    norm. Returns ``cosine_min`` / ``cosine_median`` (per descriptor, both images), ``nn_agreement``
    (fraction of image-1 descriptors whose nearest neighbour in image 2 is the same for both
    networks), ``matches`` (reference ratio-test matches at ``ratio``) and ``match_agreement``
    (the same fraction over those matches).
    """
    cosine = np.concatenate([(ref1 * new1).sum(1), (ref2 * new2).sum(1)])
    (nn_ref, ratio_ref), (nn_new, _) = _nearest(ref1, ref2), _nearest(new1, new2)
    matches = ratio_ref < ratio
    return {"cosine_min": float(cosine.min()), "cosine_median": float(np.median(cosine)),
            "nn_agreement": float(np.mean(nn_ref == nn_new)), "matches": int(matches.sum()),
            "match_agreement": float(np.mean(nn_ref[matches] == nn_new[matches])) if matches.any() else float("nan")}


def _nearest(desc1: np.ndarray, desc2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit descriptors (N, D), (M >= 2, D) -> index of each desc1's nearest neighbour in desc2 (N,) and
    the ratio of its distance to the second nearest's (N,)."""
    distances = np.sqrt(np.maximum(2 - 2 * desc1 @ desc2.T, 0))
    two = np.partition(distances, 1, axis=1)[:, :2]
    return np.argmin(distances, axis=1), two[:, 0] / np.maximum(two[:, 1], 1e-12)
