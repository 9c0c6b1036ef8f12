"""The device path of :mod:`hardmatch.features.dog`: SIFT's DoG extrema in plain torch (any device),
for the torch pipeline (:func:`detect_dog_torch`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..core import laf as laflib
from .detections import Detections
from .detector_constants import DEFAULT_MAGNIFICATION

#: SIFT's constants (Lowe 2004; OpenCV's defaults): levels per octave, base blur, assumed input blur.
_LEVELS, _SIGMA, _INPUT_BLUR, _BORDER = 3, 1.6, 0.5, 5
#: Orientation peaks within this fraction of the highest make extra frames (SIFT's rule).
SECONDARY_PEAK_RATIO = 0.8


def _dog_octaves(image, min_side: int = 24):
    """Yield, per octave, (DoG stack (1, S+2, h, w) in 0..255 units, octave index, factor to input px).

    The input (H, W) float tensor is doubled (bilinear) first, as SIFT does (octave -1); each
    octave's 6 Gaussian levels come from one batched separable convolution of its base.
    """
    from .scale_space import blur_stack

    base = F.interpolate(image.reshape(1, 1, *image.shape[-2:]), scale_factor=2.0, mode="bilinear",
                         align_corners=False)
    base = blur_stack(base, [(_SIGMA ** 2 - (2 * _INPUT_BLUR) ** 2) ** 0.5])
    sigmas = [_SIGMA * 2.0 ** (i / _LEVELS) for i in range(_LEVELS + 3)]
    extra = [0.0] + [(s ** 2 - _SIGMA ** 2) ** 0.5 for s in sigmas[1:]]
    octave = -1
    while min(base.shape[-2:]) >= min_side:
        levels = blur_stack(base, extra)  # (1, S+3, h, w): blur sigmas[i] in octave pixels
        yield levels[:, 1:] - levels[:, :-1], octave
        base = levels[:, _LEVELS:_LEVELS + 1, ::2, ::2]  # blur 2 * sigma0: sigma0 in the next octave
        octave += 1


def _refine_extrema(dog, layer, y, x, contrast_threshold: float, edge_threshold: float, max_steps: int = 5):
    """SIFT's sub-pixel refinement (up to ``max_steps`` Newton steps, moving to the neighbour pixel
    when the offset exceeds half a pixel), contrast and edge tests, vectorised over candidates.

    ``dog`` (S+2, h, w) in 0..255 units; ``layer``, ``y``, ``x`` (K,) int64. Returns the kept
    candidates' refined (x, y, layer) (K', 3) float64 and responses |D(offset)| (K',) in 0..1 units.
    """

    scale = 1.0 / 255.0
    num_layers, h, w = dog.shape
    alive = torch.ones_like(x, dtype=torch.bool)
    done = torch.zeros_like(alive)
    offset = torch.zeros((len(x), 3), dtype=torch.float64, device=dog.device)
    grad = torch.zeros_like(offset)
    hess = torch.zeros((len(x), 3, 3), dtype=torch.float64, device=dog.device)
    for _ in range(max_steps):
        todo = alive & ~done
        if not bool(todo.any()):
            break
        ll, yy, xx = layer[todo], y[todo], x[todo]
        d = lambda dl, dy, dx: dog[ll + dl, yy + dy, xx + dx].double()  # noqa: E731
        c = d(0, 0, 0)
        g = torch.stack([d(0, 0, 1) - d(0, 0, -1), d(0, 1, 0) - d(0, -1, 0), d(1, 0, 0) - d(-1, 0, 0)], 1) * 0.5 * scale
        dxx = (d(0, 0, 1) + d(0, 0, -1) - 2 * c) * scale
        dyy = (d(0, 1, 0) + d(0, -1, 0) - 2 * c) * scale
        dss = (d(1, 0, 0) + d(-1, 0, 0) - 2 * c) * scale
        dxy = (d(0, 1, 1) - d(0, 1, -1) - d(0, -1, 1) + d(0, -1, -1)) * 0.25 * scale
        dxs = (d(1, 0, 1) - d(1, 0, -1) - d(-1, 0, 1) + d(-1, 0, -1)) * 0.25 * scale
        dys = (d(1, 1, 0) - d(1, -1, 0) - d(-1, 1, 0) + d(-1, -1, 0)) * 0.25 * scale
        hs = torch.stack([torch.stack([dxx, dxy, dxs], 1), torch.stack([dxy, dyy, dys], 1),
                          torch.stack([dxs, dys, dss], 1)], 1)
        step, info = torch.linalg.solve_ex(hs, -g[:, :, None])
        step = step[:, :, 0]
        ok = (info == 0) & torch.isfinite(step).all(1) & (step.abs() < 1e6).all(1)
        idx = torch.nonzero(todo).squeeze(1)
        offset[idx], grad[idx], hess[idx] = step, g, hs
        converged = ok & (step.abs() < 0.5).all(1)
        done[idx[converged]] = True
        moving = ok & ~converged
        alive[idx[~ok]] = False
        move = torch.round(step[moving]).long()
        mi = idx[moving]
        x[mi] += move[:, 0]
        y[mi] += move[:, 1]
        layer[mi] += move[:, 2]
        inside = (layer[mi] >= 1) & (layer[mi] <= num_layers - 2) & (x[mi] >= _BORDER) & (x[mi] < w - _BORDER) \
            & (y[mi] >= _BORDER) & (y[mi] < h - _BORDER)
        alive[mi[~inside]] = False
    keep = alive & done
    idx = torch.nonzero(keep).squeeze(1)
    off, g, hs = offset[idx], grad[idx], hess[idx]
    value = dog[layer[idx], y[idx], x[idx]].double() * scale + 0.5 * (g * off).sum(1)
    trace = hs[:, 0, 0] + hs[:, 1, 1]
    det = hs[:, 0, 0] * hs[:, 1, 1] - hs[:, 0, 1] ** 2
    good = (value.abs() * _LEVELS >= contrast_threshold) & (det > 0) \
        & (trace ** 2 * edge_threshold < (edge_threshold + 1) ** 2 * det)
    idx, off, value = idx[good], off[good], value[good]
    refined = torch.stack([x[idx] + off[:, 0], y[idx] + off[:, 1], layer[idx] + off[:, 2]], 1)
    return refined, value.abs()


def _neighbourhood_max(stack):
    """Max over the 3x3x3 neighbourhood of every interior voxel of a (L, h, w) stack -> (L-2, h-2, w-2).

    Separable: the max of three shifted slices along x, then y, then the layers (elementwise
    kernels; ``max_pool3d`` / ``max_pool2d`` are many times slower on CPU)."""

    m = torch.maximum(torch.maximum(stack[:, :, :-2], stack[:, :, 1:-1]), stack[:, :, 2:])
    m = torch.maximum(torch.maximum(m[:, :-2], m[:, 1:-1]), m[:, 2:])
    return torch.maximum(torch.maximum(m[:-2], m[1:-1]), m[2:])


def detect_dog_torch(image, nfeatures: int = 8000, contrast_threshold: float = 0.04, edge_threshold: float = 10.0,
                     magnification: float = DEFAULT_MAGNIFICATION, oriented: bool = True, pyramid=None,
                     mask=None) -> Detections:
    """DoG frames of a gray image tensor (H, W) (0..255) on its device: :class:`Detections` of tensors.

    SIFT's detector (doubled input, 3 levels per octave, sigma 1.6, 3x3x3 extrema above half the
    contrast threshold, sub-pixel refinement, contrast and edge tests), in plain torch: two
    separable-convolution launches per octave, extrema by ``max_pool3d``, no per-keypoint Python.
    Positions are exact for the doubled image (OpenCV's halve the doubled coordinates, 0.25 px off).
    ``oriented``: one frame per orientation peak of the frame's patch within
    :data:`SECONDARY_PEAK_RATIO` of the highest (SIFT's rule, on the patch, see
    :func:`~hardmatch.features.orientation.gradient_orientation_peaks_torch`); else upright frames.
    The ``nfeatures`` strongest frames are kept (0: all), counting orientations, as OpenCV does.
    ``pyramid``: :func:`~hardmatch.features.patches_torch.build_pyramid_torch` of the image, for the orientation patches.
    ``mask`` (H, W) tensor: frames whose centre falls on zero are dropped.
    """

    from .orientation import gradient_orientation_peaks_torch
    from .patches_torch import extract_patches_torch

    device = image.device
    image = image.float()
    points, sigmas, responses, octaves = [], [], [], []
    threshold = 0.5 * contrast_threshold / _LEVELS * 255.0
    for dog, octave in _dog_octaves(image):
        stack = dog[0]  # (S+2, h, w)
        h, w = stack.shape[-2:]
        if h <= 2 * _BORDER or w <= 2 * _BORDER:
            break
        window = (slice(None), slice(_BORDER - 1, h - _BORDER - 1), slice(_BORDER - 1, w - _BORDER - 1))
        peak, trough = _neighbourhood_max(stack)[window], -_neighbourhood_max(-stack)[window]
        inner = stack[1:-1, _BORDER:h - _BORDER, _BORDER:w - _BORDER]
        is_ext = ((inner > threshold) & (inner >= peak)) | ((inner < -threshold) & (inner <= trough))
        layer, y, x = torch.nonzero(is_ext, as_tuple=True)
        if len(x) == 0:
            continue
        refined, response = _refine_extrema(stack, layer + 1, y + _BORDER, x + _BORDER, contrast_threshold,
                                            edge_threshold)
        factor = 2.0 ** octave  # octave pixel -> input pixel (octave -1 is the doubled image)
        points.append((refined[:, :2] + 0.5) * factor - 0.5)
        sigmas.append(_SIGMA * 2.0 ** (refined[:, 2] / _LEVELS) * factor)
        responses.append(response)
        octaves.append(torch.full_like(response, octave, dtype=torch.int64))
    if not points:
        empty = Detections.empty()
        return Detections(*(torch.from_numpy(a).to(device) for a in (empty.lafs, empty.responses, empty.octaves)))
    points, sigmas = torch.cat(points).float(), torch.cat(sigmas).float()
    responses, octaves = torch.cat(responses).float(), torch.cat(octaves)
    if mask is not None:
        mh, mw = mask.shape[-2:]
        xi = points[:, 0].round().long().clamp(0, mw - 1)
        yi = points[:, 1].round().long().clamp(0, mh - 1)
        on = mask.reshape(mh, mw)[yi, xi] > 0
        points, sigmas, responses, octaves = points[on], sigmas[on], responses[on], octaves[on]
    order = torch.argsort(responses, descending=True, stable=True)
    if nfeatures > 0:
        order = order[:nfeatures]  # orientation peaks add frames; at most nfeatures blobs need them
    lafs = laflib.upright_torch(points[order], magnification * sigmas[order])
    responses, octaves = responses[order], octaves[order]
    if oriented and len(lafs):
        frame, angles = gradient_orientation_peaks_torch(extract_patches_torch(image, lafs, pyramid=pyramid),
                                                         SECONDARY_PEAK_RATIO)
        lafs, responses, octaves = laflib.rotate_torch(lafs[frame], angles), responses[frame], octaves[frame]
        if nfeatures > 0:
            lafs, responses, octaves = lafs[:nfeatures], responses[:nfeatures], octaves[:nfeatures]
    return Detections(lafs, responses, octaves)
