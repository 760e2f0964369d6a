"""Flow-matching math: the paths between images and masks and their velocities (SemFlow's and the symmetric one),
the loss, and t sampling."""

from __future__ import annotations

import math

import torch

T_SAMPLING = ("uniform", "logit_normal")


def interpolate(z_image: torch.Tensor, z_mask: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """x_t = t·z1 + (1−t)·z0 with z0 the image and z1 the mask; `t` has shape (B,)."""
    t = t.view(-1, *([1] * (z_image.dim() - 1))).to(z_image.dtype)
    return t * z_mask + (1.0 - t) * z_image


def target_velocity(z_image: torch.Tensor, z_mask: torch.Tensor) -> torch.Tensor:
    """v = z1 − z0: the constant velocity of the straight path from image to mask."""
    return z_mask - z_image


def symmetric_interpolate(
    z_image: torch.Tensor, z_mask: torch.Tensor, noise_image: torch.Tensor, noise_mask: torch.Tensor, t: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """SymmFlow: x_t = (1−t)·ξ_x + t·x and y_t = (1−t)·y + t·ξ_y; the image is clean at t=1, the mask at t=0."""
    t = t.view(-1, *([1] * (z_image.dim() - 1))).to(z_image.dtype)
    return (1.0 - t) * noise_image + t * z_image, (1.0 - t) * z_mask + t * noise_mask


def symmetric_target_velocity(
    z_image: torch.Tensor, z_mask: torch.Tensor, noise_image: torch.Tensor, noise_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """SymmFlow: (dx/dt, dy/dt) = (x − ξ_x, ξ_y − y), the constant velocities of both straight paths."""
    return z_image - noise_image, noise_mask - z_mask


def flow_loss(velocity: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """MSE between predicted and target velocity, optionally weighted per element.

    Args:
        velocity, target: (B, C, h, w).
        weight: Broadcastable to `velocity` (e.g. (B, 1, h, w) per-position weights); the loss is the weighted
            mean ``Σ w·(v − v*)² / Σ w``, so weights set relative importance, not the loss scale.
    """
    squared_error = (velocity.float() - target.float()) ** 2
    if weight is None:
        return squared_error.mean()
    weight = weight.float().expand_as(squared_error)
    return (weight * squared_error).sum() / weight.sum().clamp_min(1e-12)


def sample_t(
    batch_size: int,
    distribution: str = "uniform",
    t0_probability: float = 0.0,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Draw training times in [0, 1].

    Args:
        distribution: ``"uniform"`` (t ~ U(0,1), the paper) or ``"logit_normal"`` (t = σ(n), n ~ N(0,1)).
        t0_probability: Probability of replacing a draw by exactly t=0; training draws the distance from the image
            end this way (`Formulation.time_from_image_end`), so that one-step segmentation's start is trained on;
            0 keeps the paper's distribution.
    Returns:
        (batch_size,) float32 tensor.
    """
    if distribution == "uniform":
        t = torch.rand(batch_size, generator=generator)
    elif distribution == "logit_normal":
        t = torch.sigmoid(torch.randn(batch_size, generator=generator))
    else:
        raise ValueError(f"t distribution must be one of {T_SAMPLING}, got {distribution!r}")
    if not 0.0 <= t0_probability <= 1.0 or math.isnan(t0_probability):
        raise ValueError(f"t0_probability must be in [0, 1], got {t0_probability}")
    if t0_probability > 0:
        at_zero = torch.rand(batch_size, generator=generator) < t0_probability
        t = torch.where(at_zero, torch.zeros_like(t), t)
    return t.to(device)
