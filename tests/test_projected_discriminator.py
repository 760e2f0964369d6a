"""The projected discriminator: fixed random projections of frozen features, trained heads, hinge losses summed over
its taps, by hand; the generator's gradient reaches the image through the frozen features."""

import pytest
import torch

from training.adversarial import Critic, critic_hinge_loss, generator_hinge_loss
from training.projected_discriminator import ProjectedDiscriminator


def _two_scales(x):
    """A stand-in feature net: the image and its 2x2 average, as two taps."""
    return [x, torch.nn.functional.avg_pool2d(x, 2)]


def test_each_tap_reads_its_fixed_projection_and_the_mask_at_its_resolution():
    torch.manual_seed(0)
    discriminator = ProjectedDiscriminator(_two_scales, taps=(0, 1), projected_channels=2, width=8, seed=3)
    image, mask = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    logits = discriminator(image, mask)
    assert [tuple(x.shape) for x in logits] == [(1, 1, 8, 8), (1, 1, 4, 4)]
    projection = discriminator.projection_1  # P_1·f_1 by hand, joined by the mask's 2x2 average
    by_hand = torch.einsum("oc,bchw->bohw", projection[:, :, 0, 0], _two_scales(image)[1])
    joined = torch.cat([by_hand, torch.nn.functional.avg_pool2d(mask, 2)], dim=1)
    assert torch.allclose(logits[1], discriminator.heads[1](joined), atol=1e-6)
    again = ProjectedDiscriminator(_two_scales, taps=(0, 1), projected_channels=2, width=8, seed=3)
    assert torch.equal(again.projection_0, discriminator.projection_0)  # drawn from the seed, not trained
    assert "projection_0" in discriminator.state_dict() and not any(
        name.startswith("projection") for name, _ in discriminator.named_parameters())


def test_the_critic_sums_hinge_losses_over_taps_and_trains_only_its_heads():
    torch.manual_seed(0)
    critic = Critic(1e-3, in_channels=6, kind="projected")
    discriminator = critic.discriminator
    real, mask = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1
    fake = (torch.rand(2, 3, 64, 64) * 2 - 1).requires_grad_(True)
    with torch.no_grad():
        maps = discriminator(fake, mask)
        real_maps = discriminator(real, mask)
    expected_generator = sum(generator_hinge_loss(m) for m in maps)
    assert len(maps) == 4 and critic.generator_loss(fake, mask).item() == pytest.approx(expected_generator.item(),
                                                                                         rel=1e-5)
    critic.generator_loss(fake, mask).backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0  # through the frozen features to the image
    assert all(p.grad is None for p in discriminator.parameters())
    expected_critic = sum(critic_hinge_loss(r, f) for r, f in zip(real_maps, maps))
    frozen = [p.clone() for p in discriminator.features.parameters()]
    heads = [p.clone() for p in discriminator.heads.parameters()]
    assert critic.step(real, fake, mask) == pytest.approx(expected_critic.item(), rel=1e-5)
    assert all(torch.equal(a, b) for a, b in zip(frozen, discriminator.features.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(heads, discriminator.heads.parameters()))
    assert not any(p.requires_grad for p in discriminator.features.parameters())


def test_an_unknown_discriminator_is_refused():
    with pytest.raises(ValueError, match=r"discriminator must be one of \('patch', 'projected'\), got 'oasis'"):
        Critic(1e-3, kind="oasis")
