"""Time and peak memory of `hardmatch pair` on large photos (1 to 108 Mpx).

For each size, a dev photo (shared/data/homogr/BostonA.jpg) is upscaled to that many pixels with
a little noise, written as a JPEG (quality 90) beside a copy warped by a known mild homography,
and `python -m hardmatch.cli pair` matches the two in a fresh process. Its wall time, its peak
resident memory (``getrusage(RUSAGE_CHILDREN).ru_maxrss`` of a small wrapper process that runs
only it) and the error of the homography it reports (mean distance to the true one over the
original image, in original pixels) make one row. The images live in a temporary folder that is
deleted afterwards.

    python benchmarks/memory.py                       # 1, 10, 40, 108 Mpx, default --max-side
    python benchmarks/memory.py --sizes 108           # one size (run the big one alone)
    python benchmarks/memory.py --sizes 1 10 -- --max-side 0 --nfeatures 4000   # extra `pair` options

``memory_table(sizes_mpx)`` returns the markdown table (used by ``python -m benchmarks``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
#: image1 -> image2: 2 degrees of rotation, 3% zoom, a little perspective, a shift
H_TRUE = np.array([[1.03 * np.cos(0.035), -1.03 * np.sin(0.035), 0.0],
                   [1.03 * np.sin(0.035), 1.03 * np.cos(0.035), 0.0],
                   [0.0, 0.0, 1.0]])

# The wrapper runs the command as its only child and prints its wall time and peak RSS (kB on Linux).
_WRAPPER = """
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
seconds = time.perf_counter() - t0
peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"rc": proc.returncode, "seconds": seconds, "peak_kb": peak_kb, "stderr": proc.stderr[-2000:],
                  "stdout": proc.stdout[-2000:]}))
"""


def _shared_dir() -> Path:
    env = os.environ.get("HARDMATCH_SHARED")
    return Path(env) if env else REPO.parent / "shared"


def _scaled_homography(width: int, height: int) -> np.ndarray:
    """H_TRUE about the image centre, plus a perspective term that moves corners by ~1% of the width."""
    centre = np.array([[1.0, 0, width / 2], [0, 1.0, height / 2], [0, 0, 1.0]])
    perspective = np.array([[1.0, 0, 0], [0, 1.0, 0], [2e-2 / width, 1e-2 / height, 1.0]])
    shift = np.array([[1.0, 0, 0.01 * width], [0, 1.0, -0.01 * height], [0, 0, 1.0]])
    return shift @ centre @ perspective @ H_TRUE @ np.linalg.inv(centre)


def make_pair(source: Path, megapixels: float, folder: Path, seed: int = 0) -> tuple[Path, Path, np.ndarray]:
    """Write ``a.jpg`` (``source`` upscaled to ``megapixels``, colour, with noise) and ``b.jpg`` (``a`` warped by
    the returned homography (3, 3), image a -> image b) into ``folder``."""
    photo = cv2.imread(str(source), cv2.IMREAD_COLOR)
    if photo is None:
        raise SystemExit(f"memory.py: cannot read the dev image {source} (set HARDMATCH_SHARED)")
    aspect = photo.shape[1] / photo.shape[0]
    height = int(round(np.sqrt(megapixels * 1e6 / aspect)))
    width = int(round(height * aspect))
    image = cv2.resize(photo, (width, height), interpolation=cv2.INTER_CUBIC)
    rng = np.random.default_rng(seed)
    for row in range(0, height, 1024):  # noise band by band: no full-size float copy
        band = image[row:row + 1024]
        band[:] = np.clip(band + rng.normal(0, 3, band.shape).astype(np.float32), 0, 255).astype(np.uint8)
    h = _scaled_homography(width, height)
    a, b = folder / "a.jpg", folder / "b.jpg"
    cv2.imwrite(str(a), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    warped = cv2.warpPerspective(image, h, (width, height), flags=cv2.INTER_LINEAR)
    del image
    cv2.imwrite(str(b), warped, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return a, b, h


def _homography_error(h_est: np.ndarray, h_true: np.ndarray, width: int, height: int) -> float:
    xs, ys = np.meshgrid(np.linspace(0, width - 1, 20), np.linspace(0, height - 1, 20))
    pts = np.stack([xs.ravel(), ys.ravel()], 1)[None].astype(np.float64)
    return float(np.linalg.norm(cv2.perspectiveTransform(pts, h_est)[0] - cv2.perspectiveTransform(pts, h_true)[0],
                                axis=1).mean())


def measure(megapixels: float, pair_args: tuple = (), source: Path | None = None) -> dict:
    """One row: make the pair, run `hardmatch pair` on it in a fresh process, delete the images."""
    source = source or _shared_dir() / "data" / "homogr" / "BostonA.jpg"
    with tempfile.TemporaryDirectory(prefix="hardmatch-memory-") as tmp:
        folder = Path(tmp)
        a, b, h_true = make_pair(source, megapixels, folder)
        width, height = _jpeg_size(a)
        out = folder / "result.json"
        command = [sys.executable, "-m", "hardmatch.cli", "pair", str(a), str(b), "--geometry", "homography",
                   "--json", str(out), *pair_args]
        env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        wrapper = subprocess.run([sys.executable, "-c", _WRAPPER, *command], capture_output=True, text=True, env=env,
                                 check=True)
        run = json.loads(wrapper.stdout)
        row = {"megapixels": width * height / 1e6, "size": f"{width}x{height}", "seconds": run["seconds"],
               "peak_gb": run["peak_kb"] / 1024 ** 2, "rc": run["rc"], "inliers": None, "error_px": None}
        if out.is_file():
            data = json.loads(out.read_text())
            row["inliers"] = data["num_inliers"]
            if data["H"] is not None:
                row["error_px"] = _homography_error(np.asarray(data["H"]), h_true, width, height)
        if run["rc"] not in (0, 1):
            row["error"] = run["stderr"].strip().splitlines()[-1:] or [f"exit {run['rc']}"]
    return row


def _jpeg_size(path: Path) -> tuple[int, int] | None:
    sys.path.insert(0, str(REPO))  # this checkout's hardmatch, as the measured process uses
    from hardmatch.core.io import header_size

    return header_size(np.fromfile(str(path), np.uint8))


def memory_table(sizes_mpx=(1, 10, 40, 108), pair_args: tuple = ()) -> str:
    """Markdown table of time and peak memory of `hardmatch pair` per image size (one fresh process each)."""
    options = " ".join(pair_args) or "defaults"
    lines = [f"`hardmatch pair A.jpg B.jpg --geometry homography` ({options}); B = A under a known homography",
             "", "| image | size | time [s] | peak RSS [GB] | inliers | H error [px, original] |",
             "|---|---|---|---|---|---|"]
    for mpx in sizes_mpx:
        row = measure(mpx, tuple(pair_args))
        error = "-" if row["error_px"] is None else f"{row['error_px']:.2f}"
        note = f" ({row['error'][0]})" if row.get("error") else ""
        lines.append(f"| {row['megapixels']:.0f} Mpx | {row['size']} | {row['seconds']:.1f} | {row['peak_gb']:.2f} | "
                     f"{row['inliers']} | {error}{note} |")
        print(lines[-1], file=sys.stderr, flush=True)
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1, 10, 40, 108], help="image sizes in megapixels")
    parser.add_argument("pair_args", nargs="*", help="extra `hardmatch pair` options, after --")
    args = parser.parse_args(argv)
    print(memory_table(tuple(args.sizes), tuple(args.pair_args)))


if __name__ == "__main__":
    main()
