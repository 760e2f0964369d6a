"""`SemFlowPipeline.edit`: outside the region the photo's own pixels, the region from the changed pixels and the
margin, both formulations, seeds, strength, and bad input worded as sentences."""

import numpy as np
import pytest
import torch
from conftest import tiny_pipeline, tiny_unet

from semflow import SemFlowPipeline
from semflow.limits import InvalidInput
from semflow.regions import edit_region, feather, known_positions


def _photo(height=20, width=30, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def symmetric_pipeline():
    pipe = SemFlowPipeline(tiny_unet(24), pixel_factor=2, resolution=(16, 24), synthesis_steps=3,
                           formulation="symmetric", prediction="data")
    pipe.set_progress_bar_config(disable=True)
    return pipe


PIPELINES = {"semflow": tiny_pipeline, "symmetric": symmetric_pipeline}


def test_feather_by_hand():
    changed = torch.zeros(1, 7, dtype=torch.bool)
    changed[0, 3] = True
    assert feather(changed, 2)[0].tolist() == pytest.approx([0, 1 / 3, 2 / 3, 1, 2 / 3, 1 / 3, 0])
    assert torch.equal(feather(changed, 0), changed.float())


def test_known_positions_leave_out_every_position_the_region_touches():
    region = torch.zeros(8, 8, dtype=torch.bool)
    region[0, 0] = True
    known = known_positions(region, (8, 8), 2)[0, 0]
    assert known.shape == (4, 4) and not known[0, 0] and known[2:, 2:].all()


@pytest.mark.parametrize("name", list(PIPELINES))
def test_outside_the_region_the_photo_is_returned_unchanged(name):
    pipe = PIPELINES[name]()
    photo = _photo()
    mask = pipe.segment(photo).ids[0].copy()
    mask[5:10, 8:16] = (mask[5:10, 8:16] + 1) % pipe.labels.num_classes  # change every pixel of a block
    out = pipe.edit(photo, mask, margin=2, seed=0, num_images=2)
    expected = np.zeros(mask.shape, bool)
    expected[5:10, 8:16] = True
    assert np.array_equal(out.changed, expected)
    grown = np.zeros(mask.shape, bool)
    grown[3:12, 6:18] = True  # two pixels of margin
    assert np.array_equal(out.region, grown)
    for image in out.images:
        edited = np.asarray(image)
        assert edited.shape == photo.shape and np.array_equal(edited[~out.region], photo[~out.region])
        assert not np.array_equal(edited[out.changed], photo[out.changed])
    assert out.seeds == [0, 1] and not np.array_equal(np.asarray(out.images[0]), np.asarray(out.images[1]))
    again = pipe.edit(photo, mask, margin=2, seed=1)
    assert np.array_equal(np.asarray(again.images[0]), np.asarray(out.images[1]))  # a seed reproduces its variant


def test_explicit_changed_pixels_and_strength():
    pipe = tiny_pipeline()
    photo = _photo()
    ids = pipe.segment(photo).ids[0]
    changed = np.zeros(ids.shape, bool)
    changed[0:4, 0:4] = True
    out = pipe.edit(photo, ids, changed=changed, margin=0, seed=3)
    assert np.array_equal(out.changed, changed) and np.array_equal(out.region, changed)
    assert np.array_equal(np.asarray(out.images[0])[~changed], photo[~changed])
    restyled = pipe.edit(photo, ids, changed=changed, margin=0, seed=3, strength=0.5)
    assert restyled.region.all() and not np.array_equal(np.asarray(restyled.images[0])[~changed], photo[~changed])
    grown = pipe.edit(photo, ids, changed=changed, margin=2, seed=3)
    assert np.array_equal(grown.region, edit_region(changed, 2, 0.0)), "the region the page shows before an edit"
    assert grown.region.sum() > changed.sum() and np.array_equal(grown.changed, changed)


def test_bad_input_gets_a_sentence():
    pipe = tiny_pipeline()
    photo = _photo()
    mask = pipe.segment(photo).ids[0]
    with pytest.raises(InvalidInput, match="the mask is 29x20 but the photo is 30x20"):
        pipe.edit(photo, mask[:, :-1])
    with pytest.raises(InvalidInput, match="nothing to edit"):
        pipe.edit(photo, mask)
    with pytest.raises(InvalidInput, match="nothing to edit"):
        pipe.edit(photo, mask, changed=np.zeros(mask.shape, bool))
    unknown = mask.copy()
    unknown[0, 0] = 200
    with pytest.raises(ValueError, match="200"):
        pipe.edit(photo, unknown)
    changed = mask.copy()
    changed[0, 0] = (changed[0, 0] + 1) % 11
    with pytest.raises(InvalidInput, match="margin must be between 0 and 128"):
        pipe.edit(photo, changed, margin=500)
    with pytest.raises(InvalidInput, match="strength must be a number between 0"):
        pipe.edit(photo, changed, strength=1.5)
