"""The ``hardmatch`` command line: thin wrappers over the Python API.

Exit codes: 0 success; 1 no geometric model found; 2 bad usage; 3 bad image; 4 weights problem;
5 dataset/file layout problem or an output that cannot be written; 130 interrupted (Ctrl-C).
Errors print one line on stderr, never a traceback.
"""

from __future__ import annotations

import functools
import json
import sys
from dataclasses import fields
from pathlib import Path

import click

from .twoview.config import PRESETS, field_kind, option_fields
from .datasets.registry import FORMATS
from .datasets.spec import GEOMETRIES
from .core.errors import HardmatchError, InterruptedByUser
from .evaluation.provenance import default_out_dir
from .scene.loop_consistency import ViewGraphConf
from .scene.wide_retry import WideRetryConf

_METAVARS = {"int": "INTEGER", "float": "NUMBER", "str": "TEXT"}


def pipeline_options(func=None, extra=()):
    """One CLI option per :class:`~hardmatch.config.PipelineConfig` field (the preset's default) and ``extra`` field.

    Values reach :class:`PipelineConfig` as text, which converts and checks them (one path for
    the CLI, the API and ``eval`` specs): a bad value is one line naming the option, exit 2.
    """
    if func is None:
        return functools.partial(pipeline_options, extra=extra)
    for f in reversed([*option_fields(), *extra]):
        flag = "--" + f.name.replace("_", "-")
        help_text = f.metadata["help"]
        choices = f.metadata.get("choices")
        base, optional = field_kind(f)
        if f.metadata.get("range"):
            help_text += f"; range {f.metadata['range']}"
        if optional:
            help_text += "; 'none' for the default"
        if base == "bool":
            option = click.option(f"{flag}/--no-{flag[2:]}", f.name, default=None, help=help_text)
        else:
            metavar = "[" + "|".join(choices) + "]" if choices else _METAVARS.get(base, "TEXT")
            option = click.option(flag, f.name, type=str, metavar=metavar, default=None, help=help_text,
                                  multiple=bool(f.metadata.get("repeatable")))
        func = option(func)
    func = click.option("--preset", default="default", type=click.Choice(sorted(PRESETS)), show_default=True,
                        help="named pipeline configuration; other options override it")(func)
    return func


def _pipeline_kwargs(kwargs: dict) -> dict:
    names = {f.name for f in option_fields()}
    return {k: v for k, v in kwargs.items() if k in names and v is not None and v != ()}


def reports_errors(func):
    """Turn :class:`HardmatchError` into a one-line message and its exit code; Ctrl-C into one line
    and exit 130 (as shells do); an OS error the library did not name (a file that cannot be
    written) into one line and exit 5."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except KeyboardInterrupt:
            _interrupted()
        except (HardmatchError, ValueError, TypeError, OSError) as exc:  # ValueError, TypeError: bad options
            code = exc.exit_code if isinstance(exc, HardmatchError) else 5 if isinstance(exc, OSError) else 2
            where = f"{exc.filename}: " if isinstance(exc, OSError) and exc.filename else ""
            click.echo(f"hardmatch: error: {where}{exc.strerror if where and exc.strerror else exc}", err=True)
            sys.exit(code)

    return wrapper


def _interrupted() -> None:
    """Ctrl-C: a second one while exiting is ignored, so the message stays the last line."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    click.echo("hardmatch: interrupted; what was written is kept (a rerun resumes where it can)", err=True)
    sys.exit(InterruptedByUser.exit_code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hardmatch")
def main():
    """hardmatch: local-feature matching with the HardNet descriptor."""


@main.command()
@click.argument("image1", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("image2", type=click.Path(dir_okay=False, path_type=Path))
@pipeline_options
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="write the result as JSON")
@click.option("--viz", "viz_path", type=click.Path(path_type=Path),
              help="draw the inlier matches side by side into this image file")
@reports_errors
def pair(image1, image2, preset, json_path, viz_path, **options):
    """Match IMAGE1 to IMAGE2 and verify a homography, fundamental or essential matrix (relative pose).

    Exit 0 when a model was found, 1 when not (the reason is printed), 3 for bad images.
    """
    from .core.files import check_writable, write_atomic
    from .twoview.api import build_matcher
    from .viz import check_image_output, draw_pair_result, write_image

    pipeline = build_matcher(preset, **_pipeline_kwargs(options))  # bad options fail before images are read
    if json_path is not None:  # and outputs that cannot be written, before the work (exit 5)
        check_writable(json_path, "JSON result")
    if viz_path is not None:
        check_image_output(viz_path)
    work1, work2 = pipeline.load(image1), pipeline.load(image2)  # working resolution; results in original pixels
    sources = ()
    if pipeline.config.geometry == "essential":
        pipeline, sources = _with_cameras(pipeline, (image1, image2), (work1, work2))
    result = pipeline.match_pair(work1, work2)
    result.intrinsics_source = sources or result.intrinsics_source
    for fallback in result.fallbacks:
        click.echo(f"hardmatch: notice: {fallback.notice()}", err=True)
    _print_pair(result)
    if json_path is not None:
        data = result.to_dict()
        data["image1"], data["image2"] = str(image1), str(image2)
        write_atomic(json_path, json.dumps(data, indent=1))
    if viz_path is not None:
        write_image(viz_path, draw_pair_result(result, work1, work2))
    if not result.success:
        click.echo(f"hardmatch: no model: {result.reason}", err=True)
        sys.exit(1)


def _print_pair(result) -> None:
    """``pair``'s report on stdout: counts, steps, stage times, the model (and R, t for essential)."""
    from .geometry.ransac import resolve_method

    c = result.config
    click.echo(f"features: {result.num_features[0]} / {result.num_features[1]}   "
               f"tentative matches ({result.step or c.matcher}): {result.num_matches}   inliers: {result.num_inliers}")
    if result.steps:  # matching on demand: what each step found
        click.echo("steps: " + " -> ".join(f"{s['step']} {s['inliers']} inliers ({s['seconds']:.1f} s)"
                                           for s in result.steps))
    click.echo("time: " + "  ".join(f"{k} {1000 * v:.0f} ms" for k, v in result.timings.items()))
    if result.success:
        click.echo(f"{c.geometry} ({resolve_method(c.geometry, c.ransac)}):")
        for row in result.model:
            click.echo("  " + "  ".join(f"{v: .6g}" for v in row))
    if result.success and result.R is not None:
        click.echo("R (camera 1 -> camera 2):")
        for row in result.R:
            click.echo("  " + "  ".join(f"{v: .6g}" for v in row))
        click.echo("t (unit): " + "  ".join(f"{v: .6g}" for v in result.t))


def _with_cameras(matcher, paths, works):
    """Geometry essential: :func:`hardmatch.twoview.api.with_cameras`, a notice for each camera not
    given. -> (matcher, sources; empty when all were given)."""
    from .twoview.api import with_cameras

    matcher, cameras = with_cameras(matcher, paths, [w.original_shape for w in works])
    for path, camera in ((p, c) for p, c in zip(paths, cameras) if c.source != "given"):
        click.echo(f"hardmatch: notice: {path}: intrinsics from {camera.source}: fx,fy,cx,cy = "
                   + ",".join(f"{v:.1f}" for v in camera.params), err=True)
    return matcher, () if all(c.source == "given" for c in cameras) else tuple(c.source for c in cameras)


@main.command()
@click.option("--images", multiple=True, type=click.Path(file_okay=False, path_type=Path),
              help="folder of images for synthetic pairs (repeatable)")
@click.option("--phototour", type=click.Path(file_okay=False, path_type=Path),
              help="PhotoTour folder (liberty/notredame/yosemite: patches*.bmp + info.txt)")
@click.option("--hpatches", type=click.Path(file_okay=False, path_type=Path),
              help="HPatches-release folder of sequence folders (ref.png, e1..t5.png)")
@click.option("--synth", multiple=True, metavar="NAME=VALUE",
              help="synthetic-source option (repeatable), e.g. jpeg_prob=0.3, shading_prob=0.5, occlusion_prob=0.3, "
                   "detector=dog+hessaff, scales=1,0.5 (hardmatch/train/synthetic.py)")
@click.option("--val-images", multiple=True, type=click.Path(file_okay=False, path_type=Path),
              help="held-out image folder: synthetic validation pairs (repeatable)")
@click.option("--val-phototour", type=click.Path(file_okay=False, path_type=Path),
              help="PhotoTour folder whose m50_100000_100000_0.txt pairs validate")
@click.option("--val-pairs", default=4000, show_default=True, help="number of synthetic validation pairs")
@click.option("--out", "out_dir", default="runs/hardnet", show_default=True, type=click.Path(path_type=Path))
@click.option("--steps", default=1000, show_default=True, help="optimiser steps (learning rate decays to 0 at the last)")
@click.option("--batch-size", default=512, show_default=True, help="pairs per batch (paper: up to 1024)")
@click.option("--lr", default=0.1, show_default=True)
@click.option("--loss", default="triplet_margin", show_default=True, type=click.Choice(["triplet_margin", "softmin", "contrastive"]))
@click.option("--sampling", default="hardest", show_default=True, type=click.Choice(["hardest", "random"]))
@click.option("--margin", default=1.0, show_default=True)
@click.option("--augment/--no-augment", default=True, show_default=True, help="flips, 90-degree rotations, small rotation/shift")
@click.option("--precision", default="auto", show_default=True, type=click.Choice(["auto", "fp32", "bf16", "fp16"]),
              help="autocast precision; auto: bf16 on CUDA, fp32 elsewhere")
@click.option("--device", default="auto", show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--val-every", default=100, show_default=True, help="validate every N steps")
@click.option("--checkpoint-every", default=50, show_default=True)
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="data-loading processes [default: min(cores - 1, 15) on CUDA, 1 elsewhere]")
@click.option("--log-every", type=click.IntRange(min=1), default=None,
              help="log interval in steps (the loss is read back from the device only then) [default: 20 on CUDA, 1 elsewhere]")
@click.option("--minutes", default=0.0, show_default=True, type=click.FloatRange(min=0),
              help="training-time budget: the lr decays to 0 over --steps or this many minutes, whichever ends first")
@click.option("--init-weights", default=None, help="start from these weights (registry name or path)")
@click.option("--tensorboard", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="also log loss, lr, pairs/s and validation FPR95 as TensorBoard scalars into this folder "
                   "(needs the tensorboard extra)")
@click.option("--resume", is_flag=True, help="continue from OUT/checkpoint.pth if it exists")
@click.option("--baselines/--no-baselines", default=True, show_default=True,
              help="also report SIFT and RootSIFT FPR95 on the validation pairs")
@reports_errors
def train(images, phototour, hpatches, synth, val_images, val_phototour, val_pairs, out_dir, resume, baselines,
          **options):
    """Train HardNet with the hardest-in-batch triplet margin loss.

    Writes OUT/checkpoint.pth (atomic, resumable), OUT/model.pth (state_dict), OUT/log.csv,
    OUT/summary.json and, with --tensorboard DIR, TensorBoard event files at the CSV's steps.
    Multi-process: torchrun --nproc_per_node K -m hardmatch.cli train ...
    """
    from .train.runlog import require_tensorboard
    from .train.sources import make_source_factory, make_validation
    from .train.trainer import TrainConfig, train as run_training

    if options["tensorboard"] is not None:
        require_tensorboard()  # one line, exit 2, before any data is read
        options["tensorboard"] = str(options["tensorboard"])
    make_source = make_source_factory(images=images, phototour=phototour, hpatches=hpatches, synth=synth)
    validation = make_validation(val_images=val_images, val_phototour=val_phototour, num_pairs=val_pairs)
    cfg = TrainConfig(out_dir=str(out_dir), **options)
    summary = run_training(cfg, make_source, validation=validation, resume=resume)
    if validation is not None and baselines and summary.get("rank", 0) == 0:
        from .train.validate import evaluate_baselines

        summary["baselines"] = {k: {"fpr95": v[0], "fdr95": v[1], "keypoint_size": v[2]}
                                for k, v in evaluate_baselines(validation).items()}
    summary["synth"] = list(synth)
    if summary.get("rank", 0) == 0:
        from .core.files import write_atomic

        write_atomic(out_dir / "summary.json", json.dumps(summary, indent=1))
        click.echo(json.dumps(summary))


@main.command()
@click.argument("patches_file", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("output", type=click.Path(path_type=Path))  # checked before the work (exit 5)
@click.option("--weights", default=None, help="descriptor weights: registry name or .pth path")
@click.option("--device", default="auto", show_default=True)
@reports_errors
def extract(patches_file, output, weights, device):
    """Describe an HPatches-format file (grayscale, width 65 or 32, N patches stacked vertically).

    Writes N lines of 128 space-separated numbers to OUTPUT.
    """
    import io

    import numpy as np

    from .core.files import check_writable, write_atomic
    from .datasets.patch_datasets import read_hpatches_file
    from .features.describe import HardNetDescriptor
    from .nets.weights import DEFAULT_DESCRIPTOR

    check_writable(output, "descriptors")
    patches = read_hpatches_file(patches_file, patch_size=32)
    descriptors = HardNetDescriptor(weights or DEFAULT_DESCRIPTOR, device=device)(patches)
    text = io.StringIO()
    np.savetxt(text, descriptors, fmt="%.6f", delimiter=" ")
    write_atomic(output, text.getvalue())
    click.echo(f"{len(descriptors)} descriptors -> {output}")


@main.command()
@click.argument("output", type=click.Path(path_type=Path))  # checked before the work (exit 5)
@click.option("--format", "fmt", type=click.Choice(["torchscript", "onnx"]), default=None,
              help="default: from OUTPUT's extension (.pt/.ts: torchscript, .onnx: onnx)")
@click.option("--weights", default=None, help="descriptor weights: registry name or .pth path")
@reports_errors
def export(output, fmt, weights):
    """Export the descriptor network (patches (N,1,32,32) -> descriptors (N,128)) to TorchScript or ONNX."""
    from .train.export import export_onnx, export_torchscript
    from .nets.weights import DEFAULT_DESCRIPTOR

    fmt = fmt or ("onnx" if output.suffix.lower() == ".onnx" else "torchscript")
    (export_onnx if fmt == "onnx" else export_torchscript)(weights or DEFAULT_DESCRIPTOR, output)
    click.echo(f"{fmt} model -> {output}")


@main.command("eval")
@click.argument("dataset", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True,
              help="dataset layout (auto: detected)")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="output folder  [default: eval-out/<dataset name>-<hash of its path>]")
@click.option("--pipeline", "pipelines", multiple=True, default=("default",), show_default=True,
              help="pipeline to evaluate, NAME or NAME:key=value,... (preset plus options); repeatable")
@click.option("--geometry", type=click.Choice(GEOMETRIES), default=None,
              help="estimate this model on every pair  [default: each pair's ground-truth geometry]")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="parallel processes (CPU cores are split between them)")
@click.option("--no-resume", is_flag=True, help="recompute every row instead of reusing OUT/results.jsonl")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="only the first N pairs (quick checks)")
@click.option("--max-axis-angle", type=click.FloatRange(0, 180), default=60.0, show_default=True,
              help="Strecha scenes: only pairs whose optical axes differ by at most this many degrees "
                   "(calibrated pairs lists are used as listed)")
@click.option("--min-axis-angle", type=click.FloatRange(0, 180), default=0.0, show_default=True,
              help="Strecha scenes: only pairs whose optical axes differ by at least this many degrees "
                   "(e.g. 60 with --max-axis-angle 100: extreme non-planar pairs)")
@click.option("--reconstruct", "scene", is_flag=True,
              help="DATASET is a Strecha-layout scene (images/ + cameras/): reconstruct it with each --pipeline "
                   "and with COLMAP's SIFT pipeline, judged against the ground-truth cameras")
@click.option("--scheduler", default=None,
              help="with --reconstruct: features and matching on this Dask scheduler (tcp://HOST:PORT); "
                   "--workers N > 1 starts a local Dask cluster instead")
@click.option("--no-colmap", is_flag=True, help="with --reconstruct: skip the COLMAP SIFT baseline")
@click.option("--allow-outside-root", is_flag=True, envvar="HARDMATCH_ALLOW_OUTSIDE_ROOT",
              help="pairs files: read listed paths outside the file's folder (absolute, ../) instead of refusing "
                   "them (also: HARDMATCH_ALLOW_OUTSIDE_ROOT=1)")
@reports_errors
def eval_command(dataset, fmt, out_dir, pipelines, geometry, workers, no_resume, limit, max_axis_angle, min_axis_angle,
                 scene, scheduler, no_colmap, allow_outside_root):
    """Evaluate pipelines on every pair of a two-view DATASET in its native layout.

    Writes OUT/results.jsonl (one row per pipeline and pair, appended as rows finish; a re-run
    resumes from it), OUT/results.csv, OUT/summary.md, OUT/summary.json and OUT/summary.png,
    and prints the summary table. Exit 5 for a dataset layout problem, 2 for a bad --pipeline.

    Calibrated pairs (Strecha scenes, calibrated pairs lists) are judged by the relative pose
    against the true cameras: per pair the rotation and translation-direction errors, per
    pipeline pose mAA@5/10/20 and the wrong poses reported as found (error > 10 degrees); a
    fundamental matrix is turned into a pose with the true K, geometry essential uses the true K.

    With --reconstruct: OUT/reconstruction.md and OUT/reconstruction.json (registered views,
    rotation and position errors after a similarity alignment, pair mAA@10, seconds, time ratio
    against COLMAP SIFT) and one folder per run; always recomputed (the times are compared).
    """
    if scene:
        if fmt != "auto" or geometry is not None or limit is not None:
            raise HardmatchError("--reconstruct takes a scene folder; --format, --geometry and --limit do not apply")
        return _eval_reconstruct(dataset, out_dir, pipelines, scheduler, workers, colmap=not no_colmap)
    if scheduler is not None or no_colmap:
        raise HardmatchError("--scheduler and --no-colmap apply to --reconstruct only (two-view eval: --workers)")

    from .datasets.registry import detect_format, read_dataset
    from .datasets.strecha import read_strecha_pairs
    from .evaluation.evaluate import evaluate
    from .evaluation.specs import parse_pipeline_specs
    from .evaluation.store import SUMMARY_MD

    specs = parse_pipeline_specs(pipelines)
    if (detect_format(dataset) if fmt == "auto" else fmt) == "strecha":
        pairs = read_strecha_pairs(dataset, None, max_axis_angle, min_axis_angle)
    else:
        pairs = read_dataset(dataset, fmt, allow_outside_root=allow_outside_root,
                             warn=lambda line: click.echo(f"hardmatch: warning: {line}", err=True))
    pairs = pairs[:limit] if limit is not None else pairs
    resolved = dataset.resolve()
    name = resolved.stem if resolved.is_file() else resolved.name
    out_dir = out_dir if out_dir is not None else default_out_dir(resolved)  # one folder per dataset
    evaluate(pairs, specs, out_dir, workers=workers, resume=not no_resume, progress=True, dataset_name=name,
             dataset_root=resolved, geometry=geometry)
    click.echo((out_dir / SUMMARY_MD).read_text().rstrip())
    click.echo(f"\nresults: {out_dir}/ (results.jsonl, results.csv, summary.md, summary.json, summary.png)")


def _eval_reconstruct(scene: Path, out_dir, pipelines, scheduler, workers: int, colmap: bool) -> None:
    """``eval --reconstruct``: :func:`hardmatch.scene.versus_colmap.evaluate_reconstruction` with the table printed."""
    from .evaluation.specs import parse_pipeline_specs
    from .scene.versus_colmap import RESULTS_MD, evaluate_reconstruction
    from .scene.executor import make_executor

    specs = parse_pipeline_specs(pipelines)
    out_dir = out_dir if out_dir is not None else default_out_dir(scene)  # one folder per scene, as two-view eval
    echo_err = functools.partial(click.echo, err=True)
    with make_executor(scheduler=scheduler, workers=workers if workers > 1 else None) as executor:
        evaluate_reconstruction(scene, [(s.label, s.config) for s in specs], out_dir, executor=executor,
                                colmap=colmap, bar=_stage_bar, warn=echo_err, log=echo_err)
    click.echo((out_dir / RESULTS_MD).read_text().rstrip())
    click.echo(f"\nresults: {out_dir}/ (reconstruction.md, reconstruction.json, a folder per run)")


def _stage_bar(label: str, length: int):
    """A progress bar on stderr (a terminal only) for one reconstruct stage: a context manager yielding ``advance(n)``."""
    import contextlib

    @contextlib.contextmanager
    def bar():
        if not sys.stderr.isatty():  # logs and pipes get the summary line, not the bar's label
            yield lambda n=1: None
            return
        with click.progressbar(length=length, label=f"{label:<9}", file=sys.stderr, show_pos=True) as b:
            yield lambda n=1: b.update(n)

    return bar()


@main.command()
@click.argument("images", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@pipeline_options(extra=(*fields(ViewGraphConf), *fields(WideRetryConf)))
@click.option("--pairs", "pairs_spec", default="exhaustive", show_default=True,
              help="pairs to match: exhaustive, sequential:K (each image with the next K), retrieval:K (the K most "
                   "similar by VLAD of the HardNet descriptors), or a file of 'name0 name1' lines")
@click.option("--camera-mode", type=click.Choice(["auto", "per-image", "single"]), default="auto", show_default=True,
              help="auto: one camera per image, then one shared camera with its principal point refined when "
                   "the first model shows one camera (same size, focal lengths within 3 %); per-image; "
                   "single: one shared by all (same size)")
@click.option("--scheduler", default=None, help="run features and matching on this Dask scheduler (tcp://HOST:PORT)")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="run features and matching on a local Dask cluster of N processes")
@click.option("--remap", is_flag=True, help="run the mapper again even when nothing upstream changed")
@reports_errors
def reconstruct(images, out, preset, pairs_spec, camera_mode, scheduler, workers, remap, **options):
    """Reconstruct the images of folder IMAGES (structure from motion) into folder OUT.

    Writes OUT/features.h5 and OUT/matches.h5 (hloc's layout), OUT/pairs.txt, OUT/database.db
    (COLMAP), OUT/sparse/N/ (COLMAP binary model), OUT/points.ply and OUT/summary.json. A re-run
    resumes: written features and matches are kept. --intrinsics fx,fy,cx,cy (pixel centres at
    integers) fixes one known camera for all images; otherwise EXIF focal length or COLMAP's prior.
    Exit 0 with a model, 1 without, 2 bad options, 3 fewer than two readable images, 5 a folder
    that is missing, empty or holds one image.
    """
    from .twoview.pipeline import Pipeline
    from .scene.executor import make_executor
    from .scene.reconstruct import reconstruct as run, summary_line

    kwargs = _pipeline_kwargs(options)
    intrinsics = kwargs.pop("intrinsics", None)  # the scene's cameras, not a pair's
    intrinsics = "/".join(intrinsics) if isinstance(intrinsics, tuple) else intrinsics
    config = Pipeline(preset, **kwargs).config  # bad options fail before any work
    with make_executor(scheduler=scheduler, workers=workers) as executor:
        summary = run(images, out, config, pairs=pairs_spec, camera_mode=camera_mode, intrinsics=intrinsics,
                      executor=executor, bar=_stage_bar, warn=lambda line: click.echo(line, err=True),
                      force_mapping=remap, view_graph=ViewGraphConf.from_options(options),
                      wide_retry=WideRetryConf.from_options(options))
    click.echo(summary_line(summary))
    click.echo(f"model: {summary['model']['model']}  points: {out / 'points.ply'}  summary: {out / 'summary.json'}")


def main_entry():  # pragma: no cover - console script alias
    main()


if __name__ == "__main__":  # pragma: no cover
    main()
