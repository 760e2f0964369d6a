"""Finite perturbation (Eq. 14): β < s/2 enforced, uniform within ±β, reproducible from a seed, labels unchanged."""

import pytest
import torch

from semflow.anchors import AnchorSpec, decode_anchors, encode_anchors
from semflow.limits import InvalidInput
from semflow.perturbation import check_beta, perturb

SPEC = AnchorSpec.official()  # s = 50 → β < 25


def test_beta_bound():
    assert check_beta(0, SPEC) == 0.0
    assert check_beta(24.99, SPEC) == 24.99
    for beta in (25, 30, -1):
        with pytest.raises(InvalidInput, match=r"perturbation β must be at least 0 and below 25 \(half the anchor "
                                               r"spacing s = 50\), got"):
            check_beta(beta, SPEC)
    with pytest.raises(InvalidInput, match="perturbation β must be a finite number, got nan"):
        check_beta(float("nan"), SPEC)
    with pytest.raises(InvalidInput, match="perturbation β must be a number, got '5'"):
        check_beta("5", SPEC)


def test_noise_is_uniform_within_beta_and_keeps_labels():
    ids = torch.randint(0, 40, (2, 64, 64), generator=torch.Generator().manual_seed(0))
    x_mask = encode_anchors(ids, 40, SPEC)
    x_noisy = perturb(x_mask, 24.0, SPEC, torch.Generator().manual_seed(1))
    epsilon = (x_noisy - x_mask) * 127.5
    assert epsilon.abs().max() <= 24.0 + 1e-4
    assert epsilon.abs().max() > 23.0 and abs(epsilon.mean()) < 0.5
    assert abs(epsilon.std() - 24.0 / 3**0.5) < 0.5  # std of U(−β, β) is β/√3
    assert torch.equal(decode_anchors(x_noisy, 40, SPEC), ids)


def test_seeded_noise_is_reproducible_per_element():
    x_mask = torch.zeros(3, 3, 8, 8)
    a = perturb(x_mask, 10.0, SPEC, [torch.Generator().manual_seed(s) for s in (5, 6, 7)])
    b = perturb(x_mask[1:2], 10.0, SPEC, [torch.Generator().manual_seed(6)])
    assert torch.equal(a[1:2], b)
    assert not torch.equal(a[0], a[1])
    assert torch.equal(perturb(x_mask, 0.0, SPEC), x_mask)
