"""The ``hardmatch`` command line: thin wrappers over the Python API.

Exit codes: 0 success; 1 no geometric model found; 2 bad usage; 3 bad image; 4 weights problem;
5 dataset/file layout problem. Errors print one line on stderr, never a traceback.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click

from .config import PRESETS, option_fields
from .errors import HardmatchError

_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "float | None": float}


def pipeline_options(func):
    """Add one CLI option per :class:`~hardmatch.config.PipelineConfig` field (defaults come from the preset)."""
    for f in reversed(option_fields()):
        flag = "--" + f.name.replace("_", "-")
        help_text = f.metadata["help"]
        choices = f.metadata.get("choices")
        kind = _TYPES.get(str(f.type), str)
        if kind is bool:
            option = click.option(f"{flag}/--no-{flag[2:]}", f.name, default=None, help=help_text)
        elif choices:
            option = click.option(flag, f.name, type=click.Choice(choices), default=None, help=help_text)
        else:
            option = click.option(flag, f.name, type=kind, default=None, help=help_text)
        func = option(func)
    func = click.option("--preset", default="default", type=click.Choice(sorted(PRESETS)), show_default=True,
                        help="named pipeline configuration; other options override it")(func)
    return func


def _pipeline_kwargs(kwargs: dict) -> dict:
    names = {f.name for f in option_fields()}
    return {k: v for k, v in kwargs.items() if k in names and v is not None}


def reports_errors(func):
    """Turn :class:`HardmatchError` into a one-line message and its exit code."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except HardmatchError as exc:
            click.echo(f"hardmatch: error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except (ValueError, TypeError) as exc:  # bad option combinations reported by the API
            click.echo(f"hardmatch: error: {exc}", err=True)
            sys.exit(2)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hardmatch")
def main():
    """hardmatch: local-feature matching with the HardNet descriptor."""


@main.command()
@click.argument("image1", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("image2", type=click.Path(dir_okay=False, path_type=Path))
@pipeline_options
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="write the result as JSON")
@click.option("--viz", "viz_path", type=click.Path(dir_okay=False, path_type=Path),
              help="draw the inlier matches side by side into this image file")
@reports_errors
def pair(image1, image2, preset, json_path, viz_path, **options):
    """Match IMAGE1 to IMAGE2 and verify a homography or fundamental matrix.

    Exit 0 when a model was found, 1 when not (the reason is printed), 3 for bad images.
    """
    from .io import load_gray
    from .pipeline import Pipeline

    gray1 = load_gray(image1)
    gray2 = load_gray(image2)
    pipeline = Pipeline(preset, **_pipeline_kwargs(options))
    result = pipeline.match_pair(gray1, gray2)
    c = result.config
    t = result.timings
    click.echo(f"features: {result.num_features[0]} / {result.num_features[1]}   "
               f"tentative matches ({c.matcher}): {result.num_matches}   inliers: {result.num_inliers}")
    stage_times = "  ".join(f"{k} {1000 * v:.0f} ms" for k, v in t.items())
    click.echo(f"time: {stage_times}")
    if result.success:
        click.echo(f"{c.geometry} ({c.ransac}):")
        for row in result.model:
            click.echo("  " + "  ".join(f"{v: .6g}" for v in row))
    if json_path is not None:
        data = result.to_dict()
        data["image1"], data["image2"] = str(image1), str(image2)
        json_path.write_text(json.dumps(data, indent=1))
    if viz_path is not None:
        import cv2

        from .viz import draw_matches

        p1, p2 = result.inlier_points
        if not cv2.imwrite(str(viz_path), draw_matches(gray1, gray2, p1, p2)):
            raise HardmatchError(f"{viz_path}: cannot write image (unknown extension or unwritable folder)")
    if not result.success:
        click.echo(f"hardmatch: no model: {result.reason}", err=True)
        sys.exit(1)


def main_entry():  # pragma: no cover - console script alias
    main()


if __name__ == "__main__":  # pragma: no cover
    main()
