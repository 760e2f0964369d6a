"""An adversarial term for synthesis: a mask-conditioned discriminator (a patch discriminator as in pix2pix and SPADE,
or a projected one on frozen pretrained features) that scores the net's estimate of the clean image against real
photos, with hinge losses and its own optimizer."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

GROUPS = 8


class PatchDiscriminator(nn.Module):
    """(image, anchor mask) → a map of real/fake logits, one per overlapping patch (pix2pix's PatchGAN: three strided
    4x4 convolutions and two at stride 1, a 70x70-pixel receptive field at ``layers=3``)."""

    def __init__(self, in_channels: int = 6, width: int = 32, layers: int = 3) -> None:
        super().__init__()
        modules: list[nn.Module] = [nn.Conv2d(in_channels, width, 4, 2, 1), nn.LeakyReLU(0.2)]
        channels = width
        for index in range(1, layers + 1):
            out = width * 2 ** min(index, 3)
            modules += [nn.Conv2d(channels, out, 4, 2 if index < layers else 1, 1), nn.GroupNorm(GROUPS, out),
                        nn.LeakyReLU(0.2)]
            channels = out
        modules.append(nn.Conv2d(channels, 1, 4, 1, 1))
        self.layers = nn.Sequential(*modules)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.layers(torch.cat([image, mask], dim=1))


def critic_hinge_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """The discriminator's hinge loss: E[max(0, 1 − D(real))] + E[max(0, 1 + D(fake))]."""
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def generator_hinge_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The generator's side of the hinge game: −E[D(fake)]."""
    return -fake_logits.mean()


def _maps(logits: torch.Tensor | list[torch.Tensor]) -> list[torch.Tensor]:
    """A discriminator's logit maps: one (a patch discriminator) or one per feature tap (a projected one), whose
    losses add up (Projected GAN sums its discriminators)."""
    return logits if isinstance(logits, list) else [logits]


DISCRIMINATORS = ("patch", "projected")


class Critic:
    """The discriminator and its optimizer, stepped once per training step after the net's own step; its state goes
    into the run's checkpoints (`state_dict` / `load_state_dict`, as accelerate's `register_for_checkpointing` asks).
    """

    def __init__(self, learning_rate: float, device: torch.device | str = "cpu", in_channels: int = 6,
                 kind: str = "patch") -> None:
        if kind not in DISCRIMINATORS:
            raise ValueError(f"discriminator must be one of {DISCRIMINATORS}, got {kind!r}")
        if kind == "projected":
            from .projected_discriminator import ProjectedDiscriminator

            self.discriminator = ProjectedDiscriminator(mask_channels=in_channels - 3).to(device)
            trained = self.discriminator.trained_parameters()
        else:
            self.discriminator = PatchDiscriminator(in_channels).to(device)
            trained = list(self.discriminator.parameters())
        self.trained = self.discriminator  # what the optimizer steps: the discriminator, or its multi-process wrapper
        self.optimizer = torch.optim.AdamW(trained, lr=learning_rate, betas=(0.5, 0.999), weight_decay=0.0)

    def prepare(self, accelerator: Any) -> Critic:
        """Hand the discriminator and its optimizer to `accelerator` (gradients averaged over the processes)."""
        self.trained, self.optimizer = accelerator.prepare(self.discriminator, self.optimizer)
        return self

    def generator_loss(self, fake: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The net's adversarial term: gradients reach `fake`, not the discriminator (frozen until its `step`)."""
        self.discriminator.requires_grad_(False)
        return sum(generator_hinge_loss(logits) for logits in _maps(self.discriminator(fake, mask)))

    def step(self, real: torch.Tensor, fake: torch.Tensor, mask: torch.Tensor) -> float:
        """One discriminator update on real photos and the net's (detached) estimates, in one forward pass; returns
        its loss."""
        for group in self.optimizer.param_groups:  # what it trains (a projected one's feature net stays frozen)
            for parameter in group["params"]:
                parameter.requires_grad_(True)
        self.optimizer.zero_grad(set_to_none=True)
        maps = _maps(self.trained(torch.cat([real, fake.detach()]), torch.cat([mask, mask])))
        loss = sum(critic_hinge_loss(*logits.chunk(2)) for logits in maps)
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def state_dict(self) -> dict[str, Any]:
        return {"discriminator": self.discriminator.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.discriminator.load_state_dict(state["discriminator"])
        self.optimizer.load_state_dict(state["optimizer"])
