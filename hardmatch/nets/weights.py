"""Weights registry: a name resolves to a file shipped in the package (``hardmatch/models/``) or to a URL cached once.

Every file is loaded with ``torch.load(..., weights_only=True)`` (no pickled code runs) and, where
the registry knows its sha256, checked before loading. The hashes of the shipped files are kept
here, in the package's code (:data:`SHIPPED_SHA256`), never read from the folder the weights lie in:
a hash beside a file proves only that the copy is complete, since whoever can replace the file can
replace the hash too. A ``--weights`` argument may be a registry name or a path to a ``.pth`` file;
a plain path with ``<file>.sha256`` beside it is checked against it (a corrupt or partial copy is
refused), which says nothing about where the file came from.

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


#: sha256 of every file shipped in ``hardmatch/models/``: the trusted copy (the ``.sha256`` files beside
#: them are for people and tools; tests/test_weights.py checks both agree with the files).
SHIPPED_SHA256 = {
    "hardnet-synth.pth": "ff4ee8c09a0e65270a0bea8e289bf5e46458a49e80bafc28f006a2c3070b4f1d",
    "hardnet-synth-v2.pth": "ca6ba9ad1a6781665cf95b6f480586ddadd9cfd04573ce01d971c84b072e62c9",
    "hardnet-synth-v2-fp32.onnx": "6acc7c99c29e05512125a402db8765847c9e7b692218a9bb064c65a46a2f3f1d",
    "hardnet-synth-int8.onnx": "88800f0d0e16db145c604caf6f6a87395097acf4c29934b0647e2bf32fa5ed30",
    "hardnet-synth-v2-int8.onnx": "1b5a100f32f134f4df87cff7762440776d0e32fa5087a3a4fcbb407c4d13d954",
}


@dataclass(frozen=True)
class WeightSpec:
    """One registry entry."""

    name: str
    filename: str
    arch: str  # which network the state_dict fits: "hardnet", "affnet", "orinet"
    url: str | None = None  # None: shipped in hardmatch/models/
    sha256: str | None = None  # None for a shipped file: SHIPPED_SHA256[filename]
    description: str = ""

    def __post_init__(self) -> None:
        if self.url is None and self.sha256 is None:
            object.__setattr__(self, "sha256", SHIPPED_SHA256[self.filename])


_HARDNET_BASE = "https://github.com/DagnyT/hardnet/raw/master/pretrained"
_AFFNET_BASE = "https://github.com/ducha-aiki/affnet/raw/master/pretrained"

REGISTRY: dict[str, WeightSpec] = {spec.name: spec for spec in [
    WeightSpec("hardnet-synth", "hardnet-synth.pth", "hardnet",
               description="HardNet trained by hardmatch on synthetic pairs (see hardmatch/models/hardnet-synth.md)"),
    WeightSpec("hardnet-synth-v2", "hardnet-synth-v2.pth", "hardnet",
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
    """The registry's sha256 for ``spec`` (kept in this module for shipped files, never read beside them)."""
    return spec.sha256


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
        if path.suffix.lower() == ".onnx":
            raise WeightsError(f"{path}: no such file (and {_ONNX_IS_NOT_WEIGHTS})")
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
    """Raise :class:`WeightsError` when the registry knows ``spec``'s sha256 and ``path`` does not have it;
    a plain path (``spec`` None) is checked against a ``.sha256`` file beside it, if any (:func:`verify_sidecar`)."""
    if spec is None:
        verify_sidecar(path)
        return
    expected = known_sha256(spec)
    if expected is not None:
        actual = sha256_of(path)
        if actual != expected:
            raise WeightsError(f"weights '{spec.name}' at {path}: sha256 {actual[:16]}... does not match the registry's "
                               f"{expected[:16]}... (corrupt or replaced file; delete it and retry)")


def sidecar_of(path: Path) -> Path | None:
    """The ``.sha256`` file beside a user's weights file (``NAME.sha256`` or ``NAME.pth.sha256``), or None."""
    for side in (path.with_suffix(".sha256"), path.with_name(path.name + ".sha256")):
        if side.is_file():
            return side
    return None


def verify_sidecar(path: Path) -> None:
    """Refuse ``path`` when a ``.sha256`` beside it names another hash: the copy is corrupt or partial.

    A matching hash from the same folder proves only that the file is whole, not where it came from
    (whoever replaced the file could replace the hash): it never makes a file trusted."""
    side = sidecar_of(path)
    if side is None:
        return
    fields = side.read_text(errors="replace").split()
    expected = fields[0].lower() if fields else ""
    actual = sha256_of(path)
    if actual != expected:
        raise WeightsError(f"{path}: sha256 {actual[:16]}... does not match {side.name} ({expected[:16] or 'empty'}...): "
                           f"a corrupt or partial copy")


_ONNX_IS_NOT_WEIGHTS = ".onnx is an exported model; --weights takes a .pth state dict or a registry name"


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


def load_tensors_only(path: Path, what: str, advice: str = ""):
    """``torch.load(path, weights_only=True)`` (no pickled code runs); anything it refuses or cannot
    read is one :class:`WeightsError` line: "PATH: refused, not WHAT (why)ADVICE"."""
    import pickle
    import warnings

    import torch

    try:
        with warnings.catch_warnings():  # torch warns about foreign pickle protocols before refusing
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError for pickled code, RuntimeError/EOFError for broken files
        why = ("it holds pickled objects other than tensors; nothing in it was run"
               if isinstance(exc, pickle.UnpicklingError) else
               f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:80]}")
        raise WeightsError(f"{path}: refused, not {what} ({why}){advice}") from None


def load_state_dict(name_or_path: str | os.PathLike, download: bool = True) -> tuple[dict, WeightSpec | None, Path]:
    """Resolve, verify (sha256 where known) and safely load a state_dict.

    Accepts files holding a bare state_dict or a dict with a ``'state_dict'`` (official HardNet,
    AffNet, OriNet checkpoints) or ``'model'`` key. Returns (state_dict, spec or None, path).
    """
    import torch

    path, spec = resolve(name_or_path, download=download)
    if path.suffix.lower() == ".onnx":
        raise WeightsError(f"{path}: {_ONNX_IS_NOT_WEIGHTS}")
    verify_sha256(path, spec)
    obj = load_tensors_only(path, "a loadable weights file")
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
