"""The region a photo edit re-synthesizes: the changed pixels grown by a margin with a feathered edge (the whole photo
with a strength above 0), and where the photo is known at the net's resolution."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .limits import check_margin, check_strength


def feather(changed: torch.Tensor, margin: int) -> torch.Tensor:
    """(H, W) bool changed pixels → (H, W) float32 blend weights of the re-synthesized image over the photo: 1 on the
    changed pixels, falling by 1/(margin + 1) with each pixel of (chessboard) distance, 0 beyond `margin` pixels,
    where the photo is kept as it is."""
    weight = changed.float()[None, None]
    covered = weight
    for step in range(1, margin + 1):
        covered = F.max_pool2d(covered, 3, stride=1, padding=1)  # grown by one pixel
        weight = torch.maximum(weight, covered * (1.0 - step / (margin + 1)))
    return weight[0, 0]


def blend_weights(changed: Any, margin: Any, strength: Any) -> torch.Tensor:
    """(H, W) float32 weights of an edit's re-synthesized image over the photo: the `changed` pixels (H, W bool)
    `feather`ed by `margin` with `strength` 0; with a strength above 0, 1 everywhere (the rest of the photo is
    restyled too). Where they are 0 the edit keeps the photo's own pixels.

    Raises:
        InvalidInput: `margin` or `strength` is out of range (`semflow.limits`).
    """
    margin, strength = check_margin(margin), check_strength(strength)
    changed = torch.as_tensor(np.asarray(changed, dtype=bool))
    return torch.ones(changed.shape) if strength > 0 else feather(changed, margin)


def edit_region(changed: Any, margin: Any, strength: Any) -> np.ndarray:
    """(H, W) bool: the pixels an edit of the `changed` ones may alter (`SemFlowPipeline.edit`'s
    `EditOutput.region`), for showing before the edit is made."""
    return (blend_weights(changed, margin, strength) > 0).numpy()


def known_positions(region: torch.Tensor, resolution: tuple[int, int], downsample: int) -> torch.Tensor:
    """(1, 1, h, w) bool: the net's positions (the state at `resolution`, `downsample` pixels a position) that lie
    wholly outside `region` ((H, W) bool at the photo's size); the edit holds the photo there."""
    touched = F.interpolate(region.float()[None, None], size=tuple(resolution), mode="bilinear", align_corners=False)
    touched = F.max_pool2d((touched > 0).float(), 3, stride=1, padding=1)  # a pixel of slack for the resampling
    if downsample > 1:
        touched = F.max_pool2d(touched, downsample)
    return touched == 0
