"""Finite perturbation (Eq. 14): uniform noise of amplitude β added to anchor images before encoding."""

from __future__ import annotations

import torch

from .anchors import AnchorSpec
from .limits import check_perturbation
from .noise import Generators, draw


def check_beta(beta: float, spec: AnchorSpec) -> float:
    """β for the anchors `spec`: ``0 <= β < s/2`` in 0..255 units, so that a perturbed mask still decodes to its
    classes (the rule is `semflow.limits.check_perturbation`'s).

    Raises:
        InvalidInput: β is not a number, not finite, negative or too large; the message says the bound.
    """
    return check_perturbation(beta, spec.s)


def perturb(
    x_mask: torch.Tensor,
    beta: float,
    spec: AnchorSpec,
    generator: Generators = None,
) -> torch.Tensor:
    """M' = M + ε, ε ~ U(−β, β) per pixel and channel (Eq. 14).

    Args:
        x_mask: (B, 3, H, W) anchor image in model units.
        beta: Amplitude in 0..255 units, ``β < s/2``.
        generator: One generator for the batch, or one per batch element (reproducible per element). Noise is
            drawn on the CPU, so a seed gives the same noise on every device.
    Returns:
        (B, 3, H, W) perturbed anchor image in model units.
    """
    beta = check_beta(beta, spec)
    if beta == 0.0:
        return x_mask
    u = draw(x_mask.shape, generator, "uniform", like=x_mask)
    epsilon = (2.0 * u - 1.0) * (beta / 127.5)  # ε ~ U(−β, β), in model units
    return x_mask + epsilon
