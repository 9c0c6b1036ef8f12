"""Weights registry: shipped default, safe loading, sha256 checks, offline errors."""

import hashlib
import os
import pickle

import pytest
import torch

from hardmatch.nets import weights
from hardmatch.core.errors import WeightsError
from hardmatch.nets.hardnet import HardNet


def test_default_weights_are_shipped_verified_and_load():
    path, spec = weights.resolve(weights.DEFAULT_DESCRIPTOR)
    assert path.is_file() and spec.url is None
    assert weights.known_sha256(spec) == weights.sha256_of(path)
    net = weights.load_hardnet()
    assert isinstance(net, HardNet) and not net.training


def test_plain_path_and_wrapped_state_dict(tmp_path):
    sd = HardNet().state_dict()
    torch.save({"epoch": 3, "state_dict": sd}, tmp_path / "wrapped.pth")
    net = weights.load_hardnet(tmp_path / "wrapped.pth")
    assert torch.equal(net.features[0].weight, sd["features.0.weight"])


def test_pickled_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    with open(tmp_path / "evil.pth", "wb") as f:
        pickle.dump(Evil(), f)
    with pytest.raises(WeightsError, match="not a loadable weights file"):
        weights.load_state_dict(tmp_path / "evil.pth")
    assert not (tmp_path / "pwned").exists()


def test_sha256_mismatch_is_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cache = weights.hub_cache_dir()
    cache.mkdir(parents=True)
    torch.save(HardNet().state_dict(), cache / "X.pth")
    spec = weights.WeightSpec("x-test", "X.pth", "hardnet", url="https://example.invalid/X.pth", sha256="0" * 64)
    monkeypatch.setitem(weights.REGISTRY, "x-test", spec)
    with pytest.raises(WeightsError, match="sha256"):
        weights.load_state_dict("x-test")
    good = hashlib.sha256((cache / "X.pth").read_bytes()).hexdigest()
    monkeypatch.setitem(weights.REGISTRY, "x-test", weights.WeightSpec("x-test", "X.pth", "hardnet",
                                                                       url=spec.url, sha256=good))
    assert weights.load_state_dict("x-test")[1].name == "x-test"


def test_offline_not_cached_says_which_file_to_put_where(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def no_network(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(WeightsError) as info:
        weights.load_hardnet("hardnet++")
    message = str(info.value)
    assert "HardNet++.pth" in message and str(tmp_path) in message and "https://" in message


def test_unknown_name_and_wrong_architecture(tmp_path):
    with pytest.raises(WeightsError, match="neither a registry name"):
        weights.resolve("no-such-weights")
    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(WeightsError, match="not HardNet weights"):
        weights.load_hardnet(tmp_path / "other.pth")
