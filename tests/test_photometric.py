"""Photometric augmentation: off by default, each change does what it says, values stay in [0, 1]."""

import numpy as np
import pytest
import torch

from training.photometric import Photometric, gaussian_blur


def _image() -> torch.Tensor:
    return torch.rand(3, 24, 32, generator=torch.Generator().manual_seed(0))


def test_default_is_the_identity_and_unknown_keys_are_refused():
    image = _image()
    assert not Photometric().enabled and torch.equal(Photometric()(image, np.random.default_rng(0)), image)
    assert torch.equal(Photometric(probability=0.0, brightness=0.5)(image, np.random.default_rng(0)), image)
    with pytest.raises(ValueError, match=r"unknown photometric augmentation keys \['exposure'\]"):
        Photometric.from_dict({"exposure": 1.0})


@pytest.mark.parametrize("change", ["brightness", "contrast", "saturation", "hue", "gamma", "white_balance", "noise"])
def test_each_change_changes_the_image_and_stays_in_range(change):
    image = _image()
    out = Photometric.from_dict({change: 0.3})(image, np.random.default_rng(1))
    assert out.shape == image.shape and 0 <= out.min() and out.max() <= 1 and not torch.allclose(out, image)


class LowestDraw:
    """A stand-in random generator: every draw is the lowest value of its range, and every chance happens."""

    def random(self) -> float:
        return 0.0

    def uniform(self, low, high, size=None):
        return low if size is None else np.full(size, low)


def test_saturation_one_at_its_lowest_gives_grey_and_a_hue_turn_keeps_luma():
    image = _image() * 0.2 + 0.4  # pale colours, so no change reaches the clamp at 0 or 1
    grey = Photometric(saturation=1.0)(image, LowestDraw())  # saturation factor 1 − 1 = 0
    luma = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
    assert torch.allclose(grey, (image * luma).sum(0, keepdim=True).expand_as(image), atol=1e-5)
    turned = Photometric(hue=0.25)(image, LowestDraw())  # a quarter turn of the chroma plane
    assert torch.allclose((turned * luma).sum(0), (image * luma).sum(0), atol=1e-4)
    assert not torch.allclose(turned, image, atol=1e-2)
    darker = Photometric(brightness=0.5)(image, LowestDraw())
    assert torch.allclose(darker, image * 0.5)


def test_blur_keeps_a_flat_image_and_smooths_an_edge():
    flat = torch.full((3, 10, 10), 0.4)
    assert torch.allclose(gaussian_blur(flat, 1.0), flat, atol=1e-6)
    edge = torch.zeros(1, 1, 12)
    edge[..., 6:] = 1.0
    blurred = gaussian_blur(edge.expand(1, 5, 12).contiguous(), 1.0)[0, 2]
    assert 0 < blurred[5] < 0.5 < blurred[6] < 1
