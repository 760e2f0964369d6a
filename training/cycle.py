"""A cycle term for synthesis: the net's estimate of the clean image, segmented in one step by a frozen trained model,
scored by the cross-entropy of its decoded anchors against the mask it was synthesized from."""

from __future__ import annotations

import torch

from semflow import SemFlowPipeline
from semflow.velocity import net_output

from .objectives import anchor_cross_entropy


class CycleSegmentation(torch.nn.Module):
    """CycleGAN's cycle consistency (Zhu et al. 2017) for the one ODE: mask → estimated image x̂ → one-step
    segmentation by a frozen `segmenter` → cross-entropy against the true ids. The segmenter is frozen, so only the
    image can move to be read as its mask; it is a trained SemFlow model (by default the run's init model), never the
    study's judge.

    Args:
        segmenter: A trained pipeline whose one-step segmentation reads the estimated images; its net is frozen.
    """

    def __init__(self, segmenter: SemFlowPipeline) -> None:
        super().__init__()
        self.net = segmenter.unet.float().requires_grad_(False).eval()
        self.segmenter = segmenter

    def forward(self, x_hat: torch.Tensor, ids: torch.Tensor,
                class_weights: torch.Tensor | None = None) -> torch.Tensor:
        """x_hat: (B, 3, H, W) estimated images in model units; ids: (B, H, W) class ids (or the ignore id)."""
        pipe = self.segmenter
        formulation, codec = pipe.formulation, pipe.codec
        state = formulation.segmentation_start(codec.encode(x_hat.clamp(-1.0, 1.0)))  # (x̂, ξ_y), or x̂ itself
        output, _ = pipe.read_output(net_output(self.net, state, formulation.image_time, pipe.prompt_embedding))
        _, z_mask = formulation.clean_ends(output, state, torch.full((x_hat.shape[0],), formulation.image_time,
                                                                  device=x_hat.device))
        return anchor_cross_entropy(codec.decode(z_mask), ids, pipe.labels, pipe.anchor_spec, class_weights)
