"""Photometric augmentation of training images (other cameras, other light): brightness, contrast, saturation, hue,
gamma, white balance, blur and sensor noise, each drawn per image."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

# RGB → YIQ: hue is a rotation of the (I, Q) chroma plane.
_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)
_LUMA = _RGB_TO_YIQ[0]


@dataclass(frozen=True)
class Photometric:
    """Random photometric changes; every amplitude 0 (the default) switches its change off.

    Attributes:
        probability: Chance that an image is changed at all (the rest stay as shot).
        brightness: Multiply by U(1−b, 1+b).
        contrast: Scale the deviation from the image's mean luma by U(1−c, 1+c).
        saturation: Scale the deviation from each pixel's luma by U(1−s, 1+s).
        hue: Rotate the chroma plane by U(−h, h) turns.
        gamma: Raise to the power exp(U(−g, g)).
        white_balance: Multiply each channel by its own U(1−w, 1+w).
        blur: Chance of a Gaussian blur with σ ~ U(0.3, 1.5) pixels.
        noise: Add N(0, σ²) per pixel with σ ~ U(0, n) (0..1 units).
    """

    probability: float = 1.0
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    hue: float = 0.0
    gamma: float = 0.0
    white_balance: float = 0.0
    blur: float = 0.0
    noise: float = 0.0

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> Photometric:
        """From a config mapping; unknown keys are refused with their names."""
        values = dict(values or {})
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"unknown photometric augmentation keys {unknown}")
        return cls(**values)

    @property
    def enabled(self) -> bool:
        return self.probability > 0 and any(getattr(self, f.name) for f in dataclasses.fields(self)
                                            if f.name != "probability")

    def __call__(self, image: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """(3, H, W) image in [0, 1] → the changed image in [0, 1]."""
        if not self.enabled or rng.random() >= self.probability:
            return image
        x = image.float()
        if self.gamma:
            x = x.clamp_min(0).pow(math.exp(rng.uniform(-self.gamma, self.gamma)))
        if self.brightness:
            x = x * rng.uniform(1 - self.brightness, 1 + self.brightness)
        if self.contrast:
            mean = torch.einsum("c,chw->", _LUMA, x) / x[0].numel()
            x = mean + (x - mean) * rng.uniform(1 - self.contrast, 1 + self.contrast)
        if self.saturation:
            luma = torch.einsum("c,chw->hw", _LUMA, x)[None]
            x = luma + (x - luma) * rng.uniform(1 - self.saturation, 1 + self.saturation)
        if self.hue:
            angle = 2 * math.pi * rng.uniform(-self.hue, self.hue)
            rotation = torch.tensor([[1.0, 0.0, 0.0], [0.0, math.cos(angle), -math.sin(angle)],
                                     [0.0, math.sin(angle), math.cos(angle)]])
            x = torch.einsum("ij,jhw->ihw", _YIQ_TO_RGB @ rotation @ _RGB_TO_YIQ, x)
        if self.white_balance:
            gains = torch.tensor(rng.uniform(1 - self.white_balance, 1 + self.white_balance, 3), dtype=x.dtype)
            x = x * gains[:, None, None]
        if self.blur and rng.random() < self.blur:
            x = gaussian_blur(x, rng.uniform(0.3, 1.5))
        if self.noise:
            sigma = rng.uniform(0, self.noise)
            x = x + sigma * torch.from_numpy(rng.standard_normal(x.shape).astype(np.float32))
        return x.clamp(0, 1)


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of a (C, H, W) image (reflect padding, kernel radius ⌈3σ⌉)."""
    radius = max(1, math.ceil(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=image.dtype)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    channels = image.shape[0]
    x = F.pad(image[None], (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    x = F.conv2d(x, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)
    return x[0]
