"""Pair augmentation on the training device: one affine grid per patch, one ``grid_sample`` per batch.

Each pair gets the same random horizontal flip and the same number of 90-degree turns on both
patches; the positive is then turned by a small random angle and shifted by a small random offset
(about its centre, border pixels repeated). Flip and turns are composed with the small motion into
one 2x3 matrix per patch (in ``affine_grid``'s normalised coordinates: output point ``u`` samples
the input at ``theta @ [u, 1]``), so the whole batch is resampled by a single ``grid_sample`` on
whatever device the patches live on. Exact flips and turns stay exact: their matrices hold only
0 and +-1, which map pixel centres onto pixel centres, so bilinear sampling copies pixels.

Random draws, in this order, from ``generator``: flip (n,), turns (n,), angle (n,), shift (n, 2);
the generator must live on the patches' device.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

#: sampling matrices (2, 2) of one counter-clockwise ``torch.rot90`` turn and of ``flip(-1)``,
#: acting on normalised (x, y) coordinates: rot90 output (x, y) reads input (-y, x); flip reads (-x, y)
_TURN = torch.tensor([[0.0, -1.0], [1.0, 0.0]])
_FLIP = torch.tensor([[-1.0, 0.0], [0.0, 1.0]])


@functools.lru_cache(maxsize=8)
def _constants(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(turn powers (4, 2, 2), [identity, flip] (2, 2, 2)) on ``device``, copied there once: a
    host-to-device copy from ordinary memory waits for the GPU, which a training step must not do."""
    powers = torch.stack([torch.linalg.matrix_power(_TURN, k) for k in range(4)])
    mirrors = torch.stack([torch.eye(2), _FLIP])
    return powers.to(device), mirrors.to(device)


def flip_turn_matrices(flip: torch.Tensor, turns: torch.Tensor) -> torch.Tensor:
    """Sampling matrices (n, 2, 2) of ``rot90(flip(x) if flip else x, turns)``.

    flip: (n,) bool; turns: (n,) int in 0..3.
    """
    powers, mirrors = _constants(flip.device)
    # rot90(flip(p))(u) = flip(p)(R u) = p(M R u)
    return mirrors[flip.long()] @ powers[turns.long()]


def augment_pairs(anchors: torch.Tensor, positives: torch.Tensor, generator: torch.Generator,
                  max_rotation_deg: float = 10.0, max_shift_px: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Augmented copies of a batch of pairs.

    anchors, positives: (n, 1, P, P) float on one device (the generator's) -> two (n, 1, P, P) float.
    ``max_rotation_deg``: the positive's extra turn is uniform in +-this; ``max_shift_px``: its
    shift is uniform in +-this many pixels along each axis.
    """
    n, _, size, _ = anchors.shape
    device = anchors.device
    flip = torch.rand(n, generator=generator, device=device) < 0.5
    turns = torch.randint(0, 4, (n,), generator=generator, device=device)
    base = flip_turn_matrices(flip, turns).to(anchors.dtype)  # (n, 2, 2)
    ang = (torch.rand(n, generator=generator, device=device) * 2 - 1) * math.radians(max_rotation_deg)
    shift = (torch.rand(n, 2, generator=generator, device=device) * 2 - 1) * (2.0 * max_shift_px / size)
    cos, sin = torch.cos(ang), torch.sin(ang)
    small = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], 1).to(anchors.dtype)
    theta = torch.zeros(2 * n, 2, 3, dtype=anchors.dtype, device=device)
    theta[:n, :, :2] = base
    # flip/turn applied first, then the small motion: p'(u) = q(A u + s) with q(v) = p(T v) -> p(T A u + T s)
    theta[n:, :, :2] = base @ small
    theta[n:, :, 2] = (base @ shift.to(anchors.dtype)[:, :, None])[:, :, 0]
    both = torch.cat([anchors, positives])
    grid = F.affine_grid(theta, list(both.shape), align_corners=False)
    out = F.grid_sample(both, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out[:n], out[n:]
