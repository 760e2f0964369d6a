"""The training terms beside the flow's MSE, against values worked out by hand: anchor cross-entropy, the perceptual
distance, the cycle term, the hinge losses, and each formulation's estimate of the clean ends."""

import math

import pytest
import torch
from conftest import tiny_pipeline, tiny_unet

from semflow import SemFlowPipeline
from semflow.anchors import AnchorSpec
from semflow.formulation import get_formulation
from semflow.labels import get_label_set
from training.adversarial import Critic, critic_hinge_loss, generator_hinge_loss
from training.cycle import CycleSegmentation
from training.objectives import PerceptualDistance, anchor_cross_entropy, anchor_logits


def test_anchor_logits_are_negative_squared_distances_over_the_temperature():
    spec = AnchorSpec(k=2, s=255.0)  # anchors (−1,−1,−1), (−1,−1,1), ... spacing 2 in model units
    x = torch.tensor([-1.0, -1.0, 0.0]).view(1, 3, 1, 1)  # halfway between classes 0 and 1
    logits = anchor_logits(x, 3, spec, temperature=0.25)[0, :, 0, 0]
    # d² = 1, 1, 5 (class 2 is (−1, 1, −1)); spacing² = 4, so logits = −d² / (0.25·4) = −d²
    assert logits.tolist() == pytest.approx([-1.0, -1.0, -5.0])


def test_anchor_cross_entropy_by_hand_and_ignored_pixels_excluded():
    labels, spec = get_label_set("camvid"), AnchorSpec.spread(11)  # k=3, spacing 1 in model units
    on_sky = torch.full((1, 3, 1, 2), -1.0)  # both pixels on class 0's anchor (−1, −1, −1)
    ids = torch.tensor([[[0, labels.ignore_id]]])
    logits = anchor_logits(on_sky, 11, spec)[0, :, 0, 0]
    expected = -logits[0] + torch.logsumexp(logits, 0)
    assert anchor_cross_entropy(on_sky, ids, labels, spec).item() == pytest.approx(expected.item())
    # the neighbours of (−1,−1,−1) among the 11 classes: 3 at distance 1 (logit −4), 3 at √2 (−8), 1 at √3 (−12),
    # and (0,0,0)-type farther ones; check the closed form of the two nearest shells
    assert logits.max().item() == 0.0 and sorted(logits.tolist(), reverse=True)[1:4] == [-4.0] * 3
    assert expected.item() > math.log1p(3 * math.exp(-4))


def test_perceptual_distance_by_hand():
    distance = PerceptualDistance(features=lambda x: [x], taps=1)
    x_hat = torch.tensor([3.0, 4.0]).view(1, 2, 1, 1)  # unit-normalised: (0.6, 0.8)
    x = torch.tensor([2.0, 0.0]).view(1, 2, 1, 1)  # (1, 0)
    assert distance(x_hat, x).item() == pytest.approx(0.4**2 + 0.8**2)
    assert distance(x, x).item() == 0.0


def test_perceptual_distance_on_imagenet_features_ranks_a_blur_below_noise():
    distance = PerceptualDistance()
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    blurred = torch.nn.functional.avg_pool2d(x, 3, 1, 1)
    assert distance(x, x).item() == pytest.approx(0.0, abs=1e-6) and 0 < distance(blurred, x) < distance(-x, x)


def test_hinge_losses_by_hand():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-3.0, 0.0])
    assert critic_hinge_loss(real, fake).item() == pytest.approx((0 + 0.5) / 2 + (0 + 1) / 2)
    assert generator_hinge_loss(fake).item() == pytest.approx(1.5)


def test_the_critic_steps_only_its_own_weights_and_checkpoints():
    torch.manual_seed(0)
    critic = Critic(1e-3)
    real, fake, mask = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32, requires_grad=True), torch.rand(2, 3, 32, 32)
    critic.generator_loss(fake, mask).backward()
    assert fake.grad is not None and all(p.grad is None for p in critic.discriminator.parameters())
    before = [p.clone() for p in critic.discriminator.parameters()]
    critic.step(real, fake, mask)
    assert any(not torch.equal(a, b) for a, b in zip(before, critic.discriminator.parameters()))
    copy = Critic(1e-3)
    copy.load_state_dict(critic.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(copy.discriminator.parameters(), critic.discriminator.parameters()))


@pytest.mark.parametrize("name,prediction",
                         [("semflow", "velocity"), ("symmetric", "velocity"), ("symmetric", "data")])
def test_clean_ends_recover_the_training_pair(name, prediction):
    formulation = get_formulation(name, prediction)
    generator = torch.Generator().manual_seed(0)
    z_image, z_mask = torch.randn(3, 3, 4, 4, generator=generator), torch.randn(3, 3, 4, 4, generator=generator)
    t = torch.tensor([0.0, 0.3, 0.9])
    x_t, target = formulation.training_pair(z_image, z_mask, t, generator)
    image_end, mask_end = formulation.clean_ends(target, x_t, t)  # a net that outputs its target exactly
    assert torch.allclose(image_end, z_image, atol=1e-5) and torch.allclose(mask_end, z_mask, atol=1e-5)


def _silent(pipe):
    """`pipe` with a net whose output is zero everywhere (its last convolution zeroed)."""
    torch.nn.init.zeros_(pipe.unet.conv_out.weight), torch.nn.init.zeros_(pipe.unet.conv_out.bias)
    return pipe


def test_cycle_term_by_hand_in_the_paper_formulation():
    # velocity 0 at t=0: the one-step segmentation of x̂ is x̂ itself (z1 = x_t + (1−t)·v), so the term is the anchor
    # cross-entropy of x̂ clamped to [−1, 1]
    pipe = _silent(tiny_pipeline(pixel_factor=1))
    cycle = CycleSegmentation(pipe)
    on_sky = torch.full((1, 3, 16, 24), -1.0)
    beyond_sky = torch.full((1, 3, 16, 24), -3.0)  # clamped onto the sky anchor
    ids = torch.zeros(1, 16, 24, dtype=torch.long)
    ids[..., 12:] = 8  # sky on the left half (right), car on the right half (wrong)
    logits = anchor_logits(on_sky[..., :1, :1], 11, pipe.anchor_spec)[0, :, 0, 0]
    expected = ((-logits[0] + torch.logsumexp(logits, 0)) + (-logits[8] + torch.logsumexp(logits, 0))) / 2
    assert cycle(on_sky, ids).item() == pytest.approx(expected.item(), rel=1e-5)
    assert cycle(beyond_sky, ids).item() == pytest.approx(expected.item(), rel=1e-5)


def test_cycle_term_moves_the_image_never_the_segmenter():
    pipe = SemFlowPipeline(tiny_unet(6), label_set="camvid", pixel_factor=1, resolution=(16, 24),
                           formulation="symmetric", prediction="data", perturbation=0.0)
    cycle = CycleSegmentation(pipe)
    x_hat = (torch.rand(2, 3, 16, 24) * 2 - 1).requires_grad_(True)
    torch.manual_seed(0)
    loss = cycle(x_hat, torch.randint(0, 11, (2, 16, 24)))
    loss.backward()
    assert x_hat.grad is not None and x_hat.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in pipe.unet.parameters())
    # data prediction of zero at t=1: the mask end is 0 in model units whatever the image, so the image cannot move it
    x_hat.grad = None
    _silent(pipe)  # the segmenter's net, zeroed in place
    ids = torch.zeros(1, 16, 24, dtype=torch.long)
    zero = cycle(x_hat[:1], ids)
    logits = anchor_logits(torch.zeros(1, 3, 1, 1), 11, pipe.anchor_spec)[0, :, 0, 0]
    assert zero.item() == pytest.approx((-logits[0] + torch.logsumexp(logits, 0)).item(), rel=1e-5)
