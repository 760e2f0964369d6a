"""Flow math: x_t interpolates image (t=0) to mask (t=1), the target is their difference, weighted MSE, t sampling."""

import pytest
import torch

from semflow.flow import flow_loss, sample_t
from semflow.formulation import SemFlowFormulation

interpolate, target_velocity = SemFlowFormulation.path, SemFlowFormulation.path_velocity


def test_interpolation_endpoints_and_velocity():
    z_image, z_mask = torch.randn(2, 4, 3, 3), torch.randn(2, 4, 3, 3)
    assert torch.equal(interpolate(z_image, z_mask, torch.zeros(2)), z_image)
    assert torch.equal(interpolate(z_image, z_mask, torch.ones(2)), z_mask)
    x_half = interpolate(z_image, z_mask, torch.tensor([0.5, 0.25]))
    assert torch.allclose(x_half[1], 0.25 * z_mask[1] + 0.75 * z_image[1])
    assert torch.allclose(z_image + target_velocity(z_image, z_mask), z_mask)


def test_loss_is_mse_and_weights_select_positions():
    v, target = torch.zeros(1, 2, 2, 2), torch.ones(1, 2, 2, 2)
    target[..., 0, 0] = 3.0
    assert flow_loss(v, target).item() == pytest.approx((2 * 9 + 6 * 1) / 8)
    weight = torch.ones(1, 1, 2, 2)
    weight[..., 0, 0] = 0.0
    assert flow_loss(v, target, weight).item() == pytest.approx(1.0)


def test_t_sampling():
    g = torch.Generator().manual_seed(0)
    t = sample_t(10000, generator=g)
    assert 0 <= t.min() and t.max() < 1 and abs(t.mean() - 0.5) < 0.02
    t0 = sample_t(10000, zero_probability=0.3, generator=g)
    assert abs((t0 == 0).float().mean() - 0.3) < 0.02
    assert 0 < sample_t(100, "logit_normal", generator=g).min()
    with pytest.raises(ValueError, match="distribution"):
        sample_t(4, "beta")
