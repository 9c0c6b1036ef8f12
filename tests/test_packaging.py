"""A real install: the wheel holds the shipped weights, and `hardmatch pair` works from it anywhere."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2

from hardmatch.nets.weights import DEFAULT_DESCRIPTOR

from .conftest import REPO, need_shared

SHIPPED = tuple(f"hardmatch/models/{name}" for name in (
    "hardnet-synth-v2.pth", "hardnet-synth-v2.sha256", "hardnet-synth-v2.md", "hardnet-synth-v2-int8.onnx",
    "hardnet-synth-v2-int8.sha256", "hardnet-synth-v2-fp32.onnx", "hardnet-synth-v2-fp32.sha256", "hardnet-synth.pth", "hardnet-synth.sha256", "hardnet-synth.md",
    "hardnet-synth-int8.onnx", "hardnet-synth-int8.sha256"))


def _pip(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "pip", *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def test_wheel_ships_weights_and_installed_cli_matches_a_pair(tmp_path):
    root = need_shared("data/homogr")
    # build from a copy of the sources so the checkout's build/ and egg-info are left alone
    src = tmp_path / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__",
                                                             "runs", "out", "eval-out", ".pytest_cache"))
    wheels = tmp_path / "wheels"
    built = _pip("wheel", ".", "--no-deps", "--no-build-isolation", "-q", "-w", wheels, cwd=src)
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("hardmatch-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert set(SHIPPED) <= names
        digest = hashlib.sha256(archive.read(SHIPPED[0])).hexdigest()
        assert archive.read(SHIPPED[1]).decode().split()[0] == digest

    target = tmp_path / "site"
    installed = _pip("install", "--no-deps", "--no-index", "--target", target, "-q", wheel)
    assert installed.returncode == 0, installed.stderr

    # two small real images, matched by the installed console script from an unrelated folder
    work = tmp_path / "elsewhere"
    work.mkdir()
    for name in ("BostonA.jpg", "BostonB.jpg"):
        img = cv2.imread(str(root / name), cv2.IMREAD_GRAYSCALE)
        cv2.imwrite(str(work / (name[:-4] + ".png")), cv2.resize(img, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA))
    env = {k: v for k, v in os.environ.items() if k not in ("HARDMATCH_MODELS", "PYTHONPATH")}
    # the installed copy first; other PYTHONPATH entries (dependencies installed by path) stay, the checkout goes
    others = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and Path(p).resolve() != REPO]
    env["PYTHONPATH"] = os.pathsep.join([str(target), *others])
    script = target / "bin" / "hardmatch"
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "hardmatch.cli"]
    proc = subprocess.run([*command, "pair", "BostonA.png", "BostonB.png", "--geometry", "homography",
                           "--nfeatures", "1000", "--json", "out.json"],
                          cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    data = json.loads((work / "out.json").read_text())
    assert data["num_inliers"] >= 15 and data["config"]["weights"] == DEFAULT_DESCRIPTOR == "hardnet-synth-v2"
    # and it was the installed copy that ran, with its own weights
    where = subprocess.run([sys.executable, "-c", "import hardmatch.nets.weights as w; print(w.MODELS_DIR)"],
                           cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert where.stdout.strip() == str(target / "hardmatch" / "models"), where.stderr


def test_hardmatch_models_overrides_the_shipped_folder(tmp_path):
    proc = subprocess.run([sys.executable, "-c", "import hardmatch.nets.weights as w; w.resolve('hardnet-synth')"],
                          env={**os.environ, "HARDMATCH_MODELS": str(tmp_path)}, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode != 0 and str(tmp_path) in proc.stderr and "is missing" in proc.stderr
