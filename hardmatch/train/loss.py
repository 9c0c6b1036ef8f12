"""The HardNet loss and the variants the paper ablates (Table 2), behind one function.

For n matching pairs (anchors a_i, positives p_i), ``D[i, j] = ||a_i - p_j||``. For each pair the
closest non-matching descriptor is looked for in its row (``min_{j != i} D[i, j]``: another positive
closest to the anchor) and in its column (``min_{k != i} D[k, i]``: another anchor closest to the
positive), and the harder (smaller) of the two is the negative:

    hardest:  L = mean_i max(0, margin + D[i, i] - min(min_{j!=i} D[i, j], min_{k!=i} D[k, i]))

Variants (``sampling`` x ``loss``):
- ``sampling="hardest"``: the negative above (HardNet); ``"random"``: a random non-matching
  positive per anchor (the paper's "random" baseline).
- ``loss="triplet_margin"`` (default, margin 1); ``"softmin"``: ``-log softmax`` over the positive
  and the negative distances, the smooth version; ``"contrastive"``: ``D[i,i]^2 + max(0, m - neg)^2``.

At most one pair per 3D point (or per source keypoint) in a batch is the sampler's job: when two
pairs show the same point, the "non-matching" descriptor may be a true match, the loss pushes a
true match away and its gradient fights the positive term. It stays finite and bounded (distances
of unit vectors are at most 2), training gets noisier; ``labels`` masks such pairs out of the
negative search when given.
"""

from __future__ import annotations

import torch

LOSSES = ("triplet_margin", "softmin", "contrastive")
SAMPLINGS = ("hardest", "random")


def distance_matrix(anchors: torch.Tensor, positives: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """L2 distances (n, n) between rows of anchors (n, d) and positives (n, d)."""
    sq = (anchors * anchors).sum(1, keepdim=True) + (positives * positives).sum(1)[None, :] - 2.0 * anchors @ positives.T
    return torch.sqrt(sq.clamp_min(0.0) + eps)


def hardnet_loss(anchors: torch.Tensor, positives: torch.Tensor, margin: float = 1.0, loss: str = "triplet_margin",
                 sampling: str = "hardest", labels: torch.Tensor | None = None) -> torch.Tensor:
    """Mean loss over the n pairs. anchors, positives: (n, d) unit-norm; labels: optional (n,) point ids."""
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
    n = anchors.shape[0]
    if n < 2:
        raise ValueError("the HardNet loss needs at least 2 pairs in a batch")
    dist = distance_matrix(anchors, positives)
    pos = torch.diagonal(dist)
    not_negative = torch.eye(n, dtype=torch.bool, device=dist.device)
    if labels is not None:
        not_negative = not_negative | (labels[:, None] == labels[None, :])
    # distances that may not serve as negatives are pushed out of reach of min()
    masked = dist.masked_fill(not_negative, 10.0)
    if sampling == "hardest":
        neg = torch.minimum(masked.min(dim=1).values, masked.min(dim=0).values)
    else:
        weights = (~not_negative).float() + 1e-12
        pick = torch.multinomial(weights, 1).squeeze(1)
        neg = dist[torch.arange(n, device=dist.device), pick]
    if loss == "triplet_margin":
        per_pair = torch.clamp(margin + pos - neg, min=0.0)
    elif loss == "softmin":
        per_pair = -torch.log_softmax(torch.stack([-pos, -neg], dim=1), dim=1)[:, 0]
    else:
        per_pair = pos.pow(2) + torch.clamp(margin - neg, min=0.0).pow(2)
    return per_pair.mean()
