"""Weights registry: a name resolves to a file shipped in the package (``hardmatch/models/``) or to a URL cached once.

Every file is loaded with ``torch.load(..., weights_only=True)`` (no pickled code runs) and, where
the registry knows its sha256, checked before loading. A ``--weights`` argument may be a registry
name or a path to a ``.pth`` file.

The shipped HardNet weights also come as ONNX models made from them by
``tools/quantize_hardnet.py``: fp32 (the same network, so ONNX Runtime needs neither torch nor an
export at start-up) and int8 (:func:`onnx_model_name`).

Downloaded files live in the torch hub cache, ``$TORCH_HOME/hub/checkpoints`` (kornia's location
too, so AffNet/OriNet files copied there serve both). Offline and not cached -> one
:class:`~hardmatch.core.errors.WeightsError` that says which file to put where.
"""

from __future__ import annotations

import hashlib
import os
import socket
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..core.errors import WeightsError


def _shipped_models_dir() -> Path:
    """``hardmatch/models/``, package data found through :mod:`importlib.resources` (editable, wheel or ``pip install .``)."""
    return Path(str(resources.files("hardmatch").joinpath("models")))


#: Folder of the weights the project ships (package data ``hardmatch/models/``); ``$HARDMATCH_MODELS`` overrides.
MODELS_DIR = Path(os.environ.get("HARDMATCH_MODELS") or _shipped_models_dir())


@dataclass(frozen=True)
class WeightSpec:
    """One registry entry."""

    name: str
    filename: str
    arch: str  # which network the state_dict fits: "hardnet", "affnet", "orinet"
    url: str | None = None  # None: shipped in hardmatch/models/
    sha256: str | None = None
    description: str = ""


_HARDNET_BASE = "https://github.com/DagnyT/hardnet/raw/master/pretrained"
_AFFNET_BASE = "https://github.com/ducha-aiki/affnet/raw/master/pretrained"

REGISTRY: dict[str, WeightSpec] = {spec.name: spec for spec in [
    WeightSpec("hardnet-synth", "hardnet-synth.pth", "hardnet",
               sha256=None,  # read from hardmatch/models/hardnet-synth.sha256 (known_sha256)
               description="HardNet trained by hardmatch on synthetic pairs (see hardmatch/models/hardnet-synth.md)"),
    WeightSpec("hardnet-synth-v2", "hardnet-synth-v2.pth", "hardnet",
               sha256=None,  # read from hardmatch/models/hardnet-synth-v2.sha256 (known_sha256)
               description="HardNet trained by hardmatch on 15.8M synthetic pairs on one GPU "
                           "(see hardmatch/models/hardnet-synth-v2.md)"),
    WeightSpec("hardnet++", "HardNet++.pth", "hardnet",
               url=f"{_HARDNET_BASE}/pretrained_all_datasets/HardNet++.pth",
               description="official HardNet++ (Liberty+NotreDame+Yosemite+HPatches), downloaded on first use"),
    WeightSpec("hardnetlib+", "checkpoint_liberty_with_aug.pth", "hardnet",
               url=f"{_HARDNET_BASE}/train_liberty_with_aug/checkpoint_liberty_with_aug.pth",
               description="official HardNet trained on Liberty with augmentation, downloaded on first use"),
    WeightSpec("affnet", "AffNet.pth", "affnet", url=f"{_AFFNET_BASE}/AffNet.pth",
               sha256="65c8bb2cf71e913818522d09dcc4262bcbcef5d756baa86a41f28526c2d61160",
               description="AffNet affine shape estimator (Mishkin et al., ECCV 2018)"),
    WeightSpec("orinet", "OriNet.pth", "orinet", url=f"{_AFFNET_BASE}/OriNet.pth",
               sha256="030e7964ae3e136d00431c7e11c6b67df40ad299f02ac384fee0f1c3fd1dcb30",
               description="OriNet orientation estimator (Mishkin et al., ECCV 2018)"),
    WeightSpec("hardnet-synth-v2-fp32", "hardnet-synth-v2-fp32.onnx", "hardnet-onnx",
               description="hardnet-synth-v2 as an fp32 ONNX model for ONNX Runtime on CPU (tools/quantize_hardnet.py)"),
    WeightSpec("hardnet-synth-int8", "hardnet-synth-int8.onnx", "hardnet-int8-onnx",
               description="hardnet-synth quantised to int8 for ONNX Runtime on CPU (tools/quantize_hardnet.py)"),
    WeightSpec("hardnet-synth-v2-int8", "hardnet-synth-v2-int8.onnx", "hardnet-int8-onnx",
               description="hardnet-synth-v2 quantised to int8 for ONNX Runtime on CPU (tools/quantize_hardnet.py)"),
]}

#: HardNet weights -> the registry entry of their int8 ONNX model (made by tools/quantize_hardnet.py).
INT8_MODELS = {"hardnet-synth": "hardnet-synth-int8", "hardnet-synth-v2": "hardnet-synth-v2-int8"}
#: HardNet weights -> the registry entry of the same network exported to fp32 ONNX (tools/quantize_hardnet.py);
#: shipped for the default only (5.3 MB each); other weights are exported in memory at start-up (about 0.3 s).
FP32_ONNX_MODELS = {"hardnet-synth-v2": "hardnet-synth-v2-fp32"}

#: The descriptor weights every command uses unless told otherwise.
DEFAULT_DESCRIPTOR = "hardnet-synth-v2"


def hub_cache_dir() -> Path:
    """``$TORCH_HOME/hub/checkpoints`` (torch's default when unset: ``~/.cache/torch``)."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def known_sha256(spec: WeightSpec) -> str | None:
    """The registry's sha256 for ``spec``; shipped files carry theirs in ``<file>.sha256`` beside them."""
    if spec.sha256:
        return spec.sha256
    if spec.url is None:
        side = MODELS_DIR / (Path(spec.filename).stem + ".sha256")
        if side.is_file():
            return side.read_text().split()[0].strip().lower()
    return None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve(name_or_path: str | os.PathLike, download: bool = True) -> tuple[Path, WeightSpec | None]:
    """Registry name or file path -> (local file, registry entry or None for a plain path)."""
    key = str(name_or_path)
    spec = REGISTRY.get(key.lower())
    if spec is None:
        path = Path(key).expanduser()
        if path.is_file():
            return path, None
        names = ", ".join(sorted(REGISTRY))
        raise WeightsError(f"weights '{key}': neither a registry name ({names}) nor an existing file")
    if spec.url is None:
        path = MODELS_DIR / spec.filename
        if not path.is_file():
            raise WeightsError(f"weights '{spec.name}': shipped file {path} is missing (a broken install? reinstall hardmatch, or point $HARDMATCH_MODELS at a folder holding it)")
        return path, spec
    path = hub_cache_dir() / spec.filename
    if not path.is_file():
        if not download or offline():
            why = " ($HARDMATCH_OFFLINE is set)" if download else ""
            raise WeightsError(f"weights '{spec.name}' are not cached{why}: download {spec.url} and put it at {path}")
        _download(spec, path)
    return path, spec


def offline() -> bool:
    """``$HARDMATCH_OFFLINE`` set to 1/true/yes: never try to download, fail at once when not cached."""
    return os.environ.get("HARDMATCH_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


#: Seconds a download may wait for the server at a time (a blocked network fails instead of hanging).
DOWNLOAD_TIMEOUT = 30.0


def _download(spec: WeightSpec, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    import torch

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT)  # torch.hub's urlopen takes no timeout of its own
    try:
        torch.hub.download_url_to_file(spec.url, str(path), progress=False)
    except Exception as exc:  # network errors come in many types
        path.unlink(missing_ok=True)
        raise WeightsError(f"weights '{spec.name}' are not cached and could not be downloaded "
                           f"({type(exc).__name__}): download {spec.url} and put it at {path}") from None
    finally:
        socket.setdefaulttimeout(previous)


def verify_sha256(path: Path, spec: WeightSpec | None) -> None:
    """Raise :class:`WeightsError` when the registry knows ``spec``'s sha256 and ``path`` does not have it."""
    expected = known_sha256(spec) if spec is not None else None
    if expected is not None:
        actual = sha256_of(path)
        if actual != expected:
            raise WeightsError(f"weights '{spec.name}' at {path}: sha256 {actual[:16]}... does not match the registry's "
                               f"{expected[:16]}... (corrupt or replaced file; delete it and retry)")


def onnx_model_name(weights: str | os.PathLike, precision: str) -> str | None:
    """The registry name of the ``fp32`` or ``int8`` ONNX model made from HardNet ``weights``, or None."""
    models = {"fp32": FP32_ONNX_MODELS, "int8": INT8_MODELS}[precision]
    return models.get(str(weights).lower())


def int8_model_name(weights: str | os.PathLike) -> str | None:
    """The registry name of the int8 ONNX model made from HardNet ``weights``, or None when there is none."""
    return onnx_model_name(weights, "int8")


def load_onnx_model(name: str) -> bytes:
    """A shipped ONNX model of the registry (e.g. ``hardnet-synth-int8``), sha256-checked, as bytes."""
    path, spec = resolve(name, download=False)
    if spec is None or not spec.filename.endswith(".onnx"):
        raise WeightsError(f"'{name}' is not an ONNX model of the registry")
    verify_sha256(path, spec)
    return path.read_bytes()


def load_state_dict(name_or_path: str | os.PathLike, download: bool = True) -> tuple[dict, WeightSpec | None, Path]:
    """Resolve, verify (sha256 where known) and safely load a state_dict.

    Accepts files holding a bare state_dict or a dict with a ``'state_dict'`` (official HardNet,
    AffNet, OriNet checkpoints) or ``'model'`` key. Returns (state_dict, spec or None, path).
    """
    import torch

    path, spec = resolve(name_or_path, download=download)
    verify_sha256(path, spec)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"{path}: not a loadable weights file ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})") from None
    if isinstance(obj, dict):
        for key in ("state_dict", "model"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path}: does not hold a state_dict of tensors")
    return obj, spec, path


def load_hardnet(name_or_path: str | os.PathLike = DEFAULT_DESCRIPTOR, download: bool = True):
    """A :class:`~hardmatch.nets.HardNet` in eval mode with the given weights."""
    from .hardnet import HardNet

    state, spec, path = load_state_dict(name_or_path, download=download)
    if spec is not None and spec.arch != "hardnet":
        raise WeightsError(f"weights '{spec.name}' are for {spec.arch}, not a HardNet descriptor")
    net = HardNet()
    state = {k.removeprefix("module."): v for k, v in state.items()}
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise WeightsError(f"{path}: not HardNet weights (missing {len(missing)} keys, e.g. {missing[:1]}; "
                           f"unexpected {len(unexpected)}, e.g. {unexpected[:1]})")
    return net.eval()
