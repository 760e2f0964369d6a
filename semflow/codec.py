"""Codecs between pixels in model units and the space the velocity net sees: exact pixel codec or SD VAE."""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL


class Codec(Protocol):
    """Maps (B, 3, H, W) pixels in [-1, 1] to (B, latent_channels, H/downsample, W/downsample) and back."""

    latent_channels: int
    downsample: int

    def encode(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor: ...

    def decode(self, z: torch.Tensor) -> torch.Tensor: ...


class PixelCodec:
    """Exact, weightless codec: identity (``factor=1``) or space-to-depth by `factor`.

    Space-to-depth folds each ``factor × factor`` block of pixels into channels, so a fast net runs at
    ``1/factor`` of the resolution while every pixel stays visible. ``decode(encode(x)) == x`` bit for bit.
    """

    def __init__(self, factor: int = 1) -> None:
        if not isinstance(factor, int) or factor < 1:
            raise ValueError(f"pixel_factor must be a positive integer, got {factor!r}")
        self.factor = factor
        self.latent_channels = 3 * factor * factor
        self.downsample = factor

    def encode(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return F.pixel_unshuffle(x, self.factor) if self.factor > 1 else x

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(z, self.factor) if self.factor > 1 else z

    def __repr__(self) -> str:
        return f"PixelCodec(factor={self.factor})"


class VAECodec:
    """Stable Diffusion latent codec around a diffusers `AutoencoderKL`: ``z = scaling_factor · E(x)``.

    Encoding takes the posterior mode (deterministic) unless a generator is given, in which case it samples
    the posterior (as the official training does for images).
    """

    def __init__(self, vae: AutoencoderKL) -> None:
        self.vae = vae
        self.scaling_factor = float(vae.config.scaling_factor)
        self.latent_channels = int(vae.config.latent_channels)
        self.downsample = 2 ** (len(vae.config.block_out_channels) - 1)

    def encode(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x = x.to(device=self.vae.device, dtype=self.vae.dtype)
        posterior = self.vae.encode(x).latent_dist
        z = posterior.sample(generator) if generator is not None else posterior.mode()
        return z * self.scaling_factor

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        z = z.to(device=self.vae.device, dtype=self.vae.dtype)
        return self.vae.decode(z / self.scaling_factor).sample

    def __repr__(self) -> str:
        return f"VAECodec(scaling_factor={self.scaling_factor}, latent_channels={self.latent_channels})"
