"""A projected discriminator for synthesis (Projected GAN, Sauer et al. NeurIPS 2021): small trained heads judge the
features of a frozen pretrained net (EfficientNet-Lite, as in the paper) through fixed random projections, which
works with little data where a discriminator on pixels overfits."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

GROUPS = 8
FEATURE_TAPS = (1, 2, 3, 4)  # the frozen net's features at strides 4, 8, 16, 32 (its list from stride 2)
PROBE_SIDE = 64  # a probe image's side, to read each tap's channels


class ProjectedDiscriminator(nn.Module):
    """(image, anchor mask) → one map of real/fake logits per tap of a frozen feature net.

    At each tap the frozen features f pass a fixed random 1x1 projection P (cross-channel mixing: drawn once from
    `seed`, never trained, saved with the discriminator), are joined by the anchor mask resized to the tap, and a
    small trained head of two convolutions reads them: D_i(x, m) = head_i([P_i·f_i(x), m↓]).

    Args:
        features: images in [-1, 1] → list of (B, C_i, h_i, w_i); by default the ImageNet EfficientNet-Lite0 trunk,
            frozen.
        taps: Which of the feature list's entries are judged.
        projected_channels: Channels after each fixed projection.
        width: Channels of each trained head.
        mask_channels: Channels of the anchor mask (3).
        seed: Draws the fixed projections.
    """

    def __init__(self, features: Callable[[torch.Tensor], list[torch.Tensor]] | None = None,
                 taps: Sequence[int] = FEATURE_TAPS, projected_channels: int = 64, width: int = 64,
                 mask_channels: int = 3, seed: int = 0) -> None:
        super().__init__()
        if features is None:
            from semflow.efficientnet_lite import pretrained_trunk

            features = pretrained_trunk()
        if isinstance(features, nn.Module):
            features.requires_grad_(False).eval()
        self.features, self.taps = features, tuple(taps)
        with torch.no_grad():
            probe = self.features(torch.zeros(1, 3, PROBE_SIDE, PROBE_SIDE))
        generator = torch.Generator().manual_seed(seed)
        for index, tap in enumerate(self.taps):  # fixed: buffers, not parameters
            channels = probe[tap].shape[1]
            projection = torch.randn(projected_channels, channels, 1, 1, generator=generator) / channels**0.5
            self.register_buffer(f"projection_{index}", projection)
        self.heads = nn.ModuleList(nn.Sequential(
            nn.Conv2d(projected_channels + mask_channels, width, 3, padding=1), nn.GroupNorm(GROUPS, width),
            nn.LeakyReLU(0.2), nn.Conv2d(width, 1, 1)) for _ in self.taps)

    def train(self, mode: bool = True) -> ProjectedDiscriminator:
        super().train(mode)
        if isinstance(self.features, nn.Module):
            self.features.eval()  # frozen: its batch norms keep ImageNet's statistics
        return self

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        features = self.features(image)
        logits = []
        for index, (tap, head) in enumerate(zip(self.taps, self.heads)):
            projected = F.conv2d(features[tap].float(), getattr(self, f"projection_{index}"))  # P_i·f_i(x)
            resized = F.interpolate(mask.float(), size=projected.shape[-2:], mode="area")  # m↓
            logits.append(head(torch.cat([projected, resized], dim=1)))
        return logits

    def trained_parameters(self) -> list[nn.Parameter]:
        """The heads' weights: all the discriminator's optimizer moves."""
        return list(self.heads.parameters())
