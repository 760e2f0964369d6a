"""Flow matching's loss and its training-time sampling (each formulation's paths and velocities are its own, in
`semflow.formulation`)."""

from __future__ import annotations

import math

import torch

T_SAMPLING = ("uniform", "logit_normal")


def flow_loss(output: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """MSE between the net's output and its target (a velocity, or the clean ends), optionally weighted per element.

    Args:
        output, target: (B, C, h, w).
        weight: Broadcastable to `output` (e.g. (B, 1, h, w) per-position weights); the loss is the weighted
            mean ``Σ w·(v − v*)² / Σ w``, so weights set relative importance, not the loss scale.
    """
    squared_error = (output.float() - target.float()) ** 2
    if weight is None:
        return squared_error.mean()
    weight = weight.float().expand_as(squared_error)
    return (weight * squared_error).sum() / weight.sum().clamp_min(1e-12)


def sample_t(
    batch_size: int,
    distribution: str = "uniform",
    zero_probability: float = 0.0,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Draw training times in [0, 1].

    Args:
        distribution: ``"uniform"`` (t ~ U(0,1), the paper) or ``"logit_normal"`` (t = σ(n), n ~ N(0,1)).
        zero_probability: Probability of replacing a draw by exactly 0; training draws the distance from the image
            end this way (`Formulation.training_times`), so that one-step segmentation's start is trained on; 0 keeps
            the paper's distribution.
    Returns:
        (batch_size,) float32 tensor.
    """
    if distribution == "uniform":
        t = torch.rand(batch_size, generator=generator)
    elif distribution == "logit_normal":
        t = torch.sigmoid(torch.randn(batch_size, generator=generator))
    else:
        raise ValueError(f"t distribution must be one of {T_SAMPLING}, got {distribution!r}")
    if not 0.0 <= zero_probability <= 1.0 or math.isnan(zero_probability):
        raise ValueError(f"zero_probability must be in [0, 1], got {zero_probability}")
    if zero_probability > 0:
        at_zero = torch.rand(batch_size, generator=generator) < zero_probability
        t = torch.where(at_zero, torch.zeros_like(t), t)
    return t.to(device)
