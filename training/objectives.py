"""Training terms beside the flow's MSE, on the net's estimate of the clean ends: cross-entropy of the decoded anchors
(segmentation) and a perceptual distance on frozen ImageNet features (synthesis)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from semflow.anchors import AnchorSpec, anchor_colors, to_model_units
from semflow.labels import LabelSet

# Logits are −d²/(τ·spacing²): at τ = 1/4 a pixel on its anchor has logit 0 and its neighbouring anchors −4.
ANCHOR_TEMPERATURE = 0.25


def anchor_logits(x_mask: torch.Tensor, num_classes: int, spec: AnchorSpec,
                  temperature: float = ANCHOR_TEMPERATURE) -> torch.Tensor:
    """Class logits of a (predicted) anchor image: the softmax over negative squared distances to the anchors,
    ``logit_c = −‖x − a_c‖² / (τ·spacing²)``, whose argmax is the paper's nearest-anchor decoding.

    Args:
        x_mask: (B, 3, H, W) in model units.
    Returns:
        (B, num_classes, H, W) float32.
    """
    anchors = to_model_units(anchor_colors(num_classes, spec)).to(device=x_mask.device, dtype=torch.float32)
    spacing = spec.s / 127.5
    distances = ((x_mask.float()[:, None] - anchors[None, :, :, None, None]) ** 2).sum(dim=2)
    return -distances / (temperature * spacing**2)


def anchor_cross_entropy(x_mask: torch.Tensor, ids: torch.Tensor, labels: LabelSet, spec: AnchorSpec,
                         class_weights: torch.Tensor | None = None,
                         temperature: float = ANCHOR_TEMPERATURE) -> torch.Tensor:
    """Cross-entropy of the anchor decoding against the true ids (ignored pixels excluded; `class_weights` as in
    `F.cross_entropy`)."""
    return class_cross_entropy(anchor_logits(x_mask, labels.num_classes, spec, temperature), ids, labels,
                               class_weights)


def class_cross_entropy(logits: torch.Tensor, ids: torch.Tensor, labels: LabelSet,
                        class_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy of (B, classes, H, W) logits against the true ids (ignored pixels excluded)."""
    ignore = labels.ignore_id if labels.ignore_id is not None else -100
    weight = None if class_weights is None else class_weights.to(logits.device)
    return F.cross_entropy(logits.float(), ids.long(), weight=weight, ignore_index=ignore)


class PerceptualDistance(torch.nn.Module):
    """LPIPS-style distance (Zhang et al. 2018, without its learned channel weights) on the frozen features of a
    pretrained trunk: at each tapped stride the features are unit-normalised over channels, and the squared
    difference, summed over channels and averaged over positions, is averaged over the taps.

    Args:
        features: images in [-1, 1] → list of (B, C_i, h_i, w_i) features; by default the ImageNet EfficientNet-Lite0
            trunk (strides 2-16), frozen.
    """

    def __init__(self, features: Callable[[torch.Tensor], list[torch.Tensor]] | None = None, taps: int = 4) -> None:
        super().__init__()
        if features is None:
            from semflow.efficientnet_lite import pretrained_trunk

            features = pretrained_trunk().requires_grad_(False).eval()
        self.features, self.taps = features, taps

    def forward(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = self.features(x)[: self.taps]
        distances = []
        for predicted, real in zip(self.features(x_hat)[: self.taps], target):
            difference = F.normalize(predicted.float(), dim=1, eps=1e-10) - F.normalize(real.float(), dim=1, eps=1e-10)
            distances.append((difference**2).sum(dim=1).mean())
        return torch.stack(distances).mean()
