"""k nearest neighbours for FGINN (k = 10) at the sizes of MODS's dense view steps: hardmatch's
matcher against the selection it replaced (``np.argpartition`` per row), and the distance block size.

    python benchmarks/matching_neighbours.py                 # 10k x 28k descriptors, as hard_06's last step
    python benchmarks/matching_neighbours.py --rows 4000 --columns 8000

Descriptors are random unit vectors with a planted true match for half of the rows (timing does not
depend on the values much). Both selections must return the same neighbours; the script says so.
Each variant runs in a fresh process, so the first touch of new memory (slow on some virtual
machines) is counted as a real run would count it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np

VARIANTS = ("hardmatch", "argpartition", "hardmatch-256MB-blocks")


def descriptors(rows: int, columns: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    d2 = rng.standard_normal((columns, 128)).astype(np.float32)
    d2 /= np.linalg.norm(d2, axis=1, keepdims=True)
    d1 = rng.standard_normal((rows, 128)).astype(np.float32)
    planted = rng.choice(columns, rows // 2, replace=False)
    d1[: rows // 2] = d2[planted] + 0.3 * d1[: rows // 2] / np.sqrt(128)
    d1 /= np.linalg.norm(d1, axis=1, keepdims=True)
    return d1, d2


def argpartition_nearest(d1: np.ndarray, d2: np.ndarray, k: int, block: int) -> tuple[np.ndarray, np.ndarray]:
    """The selection before stop 23: a full distance block per 4096 rows, ``np.argpartition`` per row."""
    sq2 = np.einsum("ij,ij->i", d2, d2)
    idx, dist = np.empty((len(d1), k), np.int64), np.empty((len(d1), k), np.float32)
    for start in range(0, len(d1), block):
        b = d1[start:start + block]
        sq = b @ d2.T
        sq *= -2.0
        sq += sq2[None, :]
        sq += np.einsum("ij,ij->i", b, b)[:, None]
        part = np.argpartition(sq, k - 1, axis=1)[:, :k]
        values = np.take_along_axis(sq, part, axis=1)
        order = np.argsort(values, axis=1, kind="stable")
        idx[start:start + len(b)] = np.take_along_axis(part, order, axis=1)
        dist[start:start + len(b)] = np.sqrt(np.maximum(np.take_along_axis(values, order, axis=1), 0.0))
    return idx, dist


def run_variant(variant: str, rows: int, columns: int, k: int) -> dict:
    from hardmatch.matching import matchers as matchlib

    d1, d2 = descriptors(rows, columns)
    t0 = time.perf_counter()
    if variant == "argpartition":
        block = matchlib.bounded_block(4096, columns) * 4  # the 256 MB blocks it ran with
        idx, _ = argpartition_nearest(d1, d2, k, block)
    else:
        if variant == "hardmatch-256MB-blocks":
            matchlib.MATCH_BLOCK_BYTES = 256 * 2 ** 20
        idx, _ = matchlib.nearest_k(d1, d2, k)
    seconds = time.perf_counter() - t0
    return {"variant": variant, "seconds": round(seconds, 3), "checksum": int(idx[:, 0].sum() + 7 * idx[:, -1].sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10695)
    parser.add_argument("--columns", type=int, default=28407)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)  # one variant, in this process
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.rows, args.columns, args.k)))
        return
    results = []
    for variant in VARIANTS:
        out = subprocess.run([sys.executable, __file__, "--variant", variant, "--rows", str(args.rows),
                              "--columns", str(args.columns), "--k", str(args.k)],
                             capture_output=True, text=True, check=True)
        results.append(json.loads(out.stdout))
    base = results[0]["seconds"]
    print(f"{args.rows} x {args.columns} descriptors, k = {args.k}")
    for r in results:
        print(f"  {r['variant']:24s} {r['seconds']:7.2f} s  ({r['seconds'] / base:.2f}x hardmatch)")
    same = len({r["checksum"] for r in results}) == 1
    print("same neighbours: " + ("yes" if same else "NO"))


if __name__ == "__main__":
    main()
