"""Anchors (Eq. 7): exact encode → decode for every id of every built-in label set, official and spread grids."""

import pytest
import torch

from semflow.anchors import (
    AnchorSpec,
    anchor_colors,
    decode_anchors,
    encode_anchors,
    nearest_anchors,
    to_model_units,
    to_pixel_units,
)
from semflow.labels import BUILTIN_LABEL_SETS


def _all_ids(labels):
    ids = list(range(labels.num_classes)) + ([labels.ignore_id] if labels.ignore_id is not None else [])
    return torch.tensor(ids).view(1, 1, -1)


@pytest.mark.parametrize("name", sorted(BUILTIN_LABEL_SETS))
@pytest.mark.parametrize("grid", ["spread", "official"])
def test_round_trip_is_exact_for_every_id(name, grid):
    labels = BUILTIN_LABEL_SETS[name]
    spec = AnchorSpec.spread(labels.num_classes) if grid == "spread" else AnchorSpec.official()
    ids = _all_ids(labels)
    x_mask = encode_anchors(ids, labels.num_classes, spec, labels.ignore_id)
    assert x_mask.shape == (1, 3, 1, ids.shape[-1]) and x_mask.min() >= -1 and x_mask.max() <= 1
    decoded = decode_anchors(x_mask, labels.num_classes, spec, labels.ignore_id)
    assert torch.equal(decoded, ids)


def test_official_grid_is_eq7():
    colors = anchor_colors(216, AnchorSpec.official())
    c = 3 * 36 + 2 * 6 + 5  # c = m0·k² + m1·k + m2
    assert colors[c].tolist() == [150.0, 100.0, 250.0]
    assert colors[0].tolist() == [0.0, 0.0, 0.0]


def test_spread_grid_maximises_spacing_and_reserves_white():
    assert AnchorSpec.spread(11) == AnchorSpec(3, 127.5)
    assert AnchorSpec.spread(26) == AnchorSpec(3, 127.5)
    assert AnchorSpec.spread(27).k == 4  # 27 classes + white need 28 slots
    assert AnchorSpec.spread(171) == AnchorSpec(6, 51.0)
    spec = AnchorSpec.spread(26)
    assert not (anchor_colors(26, spec) == 255).all(dim=1).any()
    with pytest.raises(ValueError, match="do not fit"):
        anchor_colors(27, spec)


def test_ignored_pixels_are_white():
    x_mask = encode_anchors(torch.tensor([[[11]]]), 11, AnchorSpec.spread(11), ignore_id=11)
    assert to_pixel_units(x_mask).flatten().tolist() == [255.0, 255.0, 255.0]


def test_decoding_without_ignore_gives_nearest_class():
    spec = AnchorSpec.spread(11)
    white = torch.ones(1, 3, 2, 2)
    assert decode_anchors(white, 11, spec).max() < 11
    assert (decode_anchors(white, 11, spec, ignore_id=11) == 11).all()


def test_noisy_anchors_decode_to_their_class():
    spec = AnchorSpec.spread(19)
    ids = torch.randint(0, 19, (2, 9, 7), generator=torch.Generator().manual_seed(0))
    x_mask = encode_anchors(ids, 19, spec)
    noise = (torch.rand(x_mask.shape, generator=torch.Generator().manual_seed(1)) * 2 - 1) * (spec.s / 2 - 1) / 127.5
    assert torch.equal(decode_anchors(x_mask + noise, 19, spec), ids)


@pytest.mark.parametrize("bad", [[[[-1]]], [[[11]]], [[[255]]]])
def test_out_of_range_ids_raise(bad):
    with pytest.raises(ValueError, match="outside 0..10"):
        encode_anchors(torch.tensor(bad), 11, AnchorSpec.spread(11), ignore_id=None if bad == [[[11]]] else 11)


def test_bad_specs_and_shapes_raise():
    with pytest.raises(ValueError, match="k"):
        AnchorSpec(1, 10)
    with pytest.raises(ValueError, match="s"):
        AnchorSpec(6, 60)
    with pytest.raises(ValueError, match="integer tensor"):
        encode_anchors(torch.zeros(1, 2, 2), 3, AnchorSpec.spread(3))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        decode_anchors(torch.zeros(1, 4, 2, 2), 3, AnchorSpec.spread(3))


def test_decoding_margin_is_a_confidence():
    spec = AnchorSpec.spread(11)
    ids = torch.randint(0, 11, (2, 16, 16), generator=torch.Generator().manual_seed(0))
    clean = encode_anchors(ids, 11, spec)
    decoded, margin = nearest_anchors(clean, 11, spec)
    assert torch.equal(decoded, ids) and torch.all(margin == 1.0)
    noisy = clean + 0.5 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))
    assert nearest_anchors(noisy, 11, spec)[1].mean() < 0.8
    colours = to_model_units(anchor_colors(2, spec)).float()  # classes 0 and 1 are neighbours on the grid
    halfway = ((colours[0] + colours[1]) / 2).view(1, 3, 1, 1)
    assert nearest_anchors(halfway, 11, spec)[1].item() == pytest.approx(0.0, abs=1e-5)
