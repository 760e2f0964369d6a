"""Seeded noise: drawn on the CPU from one generator for a batch or one generator per element, so a seed gives the
same numbers on every device and for every batch position."""

from __future__ import annotations

import torch

Generators = torch.Generator | list[torch.Generator] | None
DISTRIBUTIONS = ("gaussian", "uniform")


def draw(shape: torch.Size | tuple[int, ...], generator: Generators = None, distribution: str = "gaussian",
         like: torch.Tensor | None = None) -> torch.Tensor:
    """Noise of `shape`: N(0, 1) (``"gaussian"``) or U(0, 1) (``"uniform"``).

    Args:
        generator: One generator for the whole batch, or one per batch element (``len == shape[0]``).
        like: When given, the result takes its device and dtype (the draw itself is float32 on the CPU).
    """
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got {distribution!r}")
    sample = torch.randn if distribution == "gaussian" else torch.rand
    shape = tuple(shape)
    if isinstance(generator, list):
        if len(generator) != shape[0]:
            raise ValueError(f"generator list has {len(generator)} entries for a batch of {shape[0]}")
        noise = torch.stack([sample(shape[1:], generator=g, dtype=torch.float32) for g in generator])
    else:
        noise = sample(shape, generator=generator, dtype=torch.float32)
    return noise if like is None else noise.to(device=like.device, dtype=like.dtype)
