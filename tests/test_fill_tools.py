"""Fill tools on synthetic photos: exact flood regions, superpixel fills and their cache, replace-in-region."""

import numpy as np
import pytest

from app import fill_tools
from app.fill_tools import flood_fill, flood_region, replace_in_region, superpixel_fill, superpixels

RED, BLUE, DARK_RED = (200, 30, 30), (30, 30, 200), (190, 40, 25)


def blocks() -> np.ndarray:
    """A 20x30 photo: red left half, blue right half with an isolated red square (rows 5..9, cols 20..24)."""
    photo = np.zeros((20, 30, 3), np.uint8)
    photo[:, :15] = RED
    photo[:, 15:] = BLUE
    photo[5:10, 20:25] = RED
    return photo


def test_flood_fills_exactly_the_connected_region_of_similar_colour():
    photo = blocks()
    ids = np.full((20, 30), 3, np.uint8)
    before = ids.copy()
    filled = flood_fill(ids, photo, (2, 7), class_id=8)
    expected = np.full((20, 30), 3, np.uint8)
    expected[:, :15] = 8  # not the red square: it is not connected
    assert np.array_equal(filled, expected)
    assert np.array_equal(ids, before), "the input mask must not change"
    square = flood_region(photo, (22, 7))
    assert square.sum() == 25 and square[5:10, 20:25].all()


def test_tolerance_decides_which_close_colours_join():
    photo = blocks()
    photo[:, 10:15] = DARK_RED  # at most 10 from RED in every channel
    assert flood_region(photo, (0, 0), tolerance=8).sum() == 20 * 10
    assert flood_region(photo, (0, 0), tolerance=10).sum() == 20 * 15
    assert flood_region(photo, (0, 0), tolerance=0).sum() == 20 * 10


def test_flood_does_not_leak_through_diagonal_touches():
    photo = np.zeros((4, 4, 3), np.uint8)
    photo[[0, 1, 2, 3], [0, 1, 2, 3]] = 255  # a white diagonal on black
    region = flood_region(photo, (0, 0), tolerance=0)
    assert region.sum() == 1 and region[0, 0]


def test_superpixel_fill_sets_exactly_the_clicked_superpixel():
    rng = np.random.default_rng(0)
    photo = np.zeros((60, 80, 3), np.uint8)
    photo[:30, :40], photo[:30, 40:], photo[30:, :40], photo[30:, 40:] = RED, BLUE, (30, 200, 30), (220, 220, 40)
    photo = np.clip(photo.astype(int) + rng.integers(-5, 6, photo.shape), 0, 255).astype(np.uint8)
    segments = superpixels(photo, n_segments=12)
    assert segments.shape == (60, 80) and len(np.unique(segments)) > 4
    ids = np.zeros((60, 80), np.uint8)
    filled = superpixel_fill(ids, photo, (10, 10), class_id=5, n_segments=12)
    clicked = segments == segments[10, 10]
    assert np.array_equal(filled == 5, clicked) and ids.max() == 0
    assert not clicked[30:].any() and not clicked[:, 40:].any(), "a superpixel stays inside its flat quadrant"


def test_superpixels_are_computed_once_per_image(monkeypatch):
    import skimage.segmentation

    calls = []
    real = skimage.segmentation.slic
    monkeypatch.setattr(skimage.segmentation, "slic", lambda *a, **k: calls.append(1) or real(*a, **k))
    photo = np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    first = superpixels(photo, n_segments=7)
    again = superpixels(photo.copy(), n_segments=7)
    assert again is first and len(calls) == 1 and not first.flags.writeable
    superpixels(photo, n_segments=9)
    assert len(calls) == 2, "another setting is another entry"
    for seed in range(fill_tools.SUPERPIXEL_CACHE_SIZE + 1):
        superpixels(np.full((8, 8, 3), seed, np.uint8), n_segments=4)
    assert len(fill_tools._cache) == fill_tools.SUPERPIXEL_CACHE_SIZE


def test_replace_changes_only_the_old_class_inside_the_region():
    ids = np.array([[1, 1, 2, 2],
                    [1, 3, 2, 1],
                    [1, 1, 1, 1]], np.uint8)
    region = np.zeros((3, 4), bool)
    region[:2, 1:4] = True
    result = replace_in_region(ids, region, old_class=1, new_class=7)
    assert result.tolist() == [[1, 7, 2, 2],
                               [1, 3, 2, 7],
                               [1, 1, 1, 1]]
    assert ids[0, 1] == 1 and result.dtype == ids.dtype


@pytest.mark.parametrize("call, message", [
    (lambda: flood_fill(np.zeros((20, 30), np.uint8), blocks(), (30, 0), 1), "outside the 30x20 image"),
    (lambda: flood_fill(np.zeros((20, 29), np.uint8), blocks(), (0, 0), 1), "same size"),
    (lambda: flood_fill(np.zeros((20, 30), np.uint8), blocks(), (0, 0), 256), "class id in 0..255"),
    (lambda: flood_region(blocks(), (0, 0), tolerance=300), "tolerance"),
    (lambda: flood_region(blocks()[..., 0], (0, 0)), "(H, W, 3) uint8"),
    (lambda: replace_in_region(np.zeros((2, 2), np.uint8), np.ones((2, 2)), 0, 1), "boolean"),
    (lambda: replace_in_region(np.zeros((2, 2), np.float32), np.ones((2, 2), bool), 0, 1), "class ids"),
])
def test_bad_input_is_refused_with_a_sentence(call, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()


def test_a_fill_asked_for_on_the_page_applies_its_tool_and_a_large_one_asks_first():
    from app.fill_tools import BOX, FLOOD, MAX_FILL_SHARE, SUPERPIXEL, Fill, asks_first, changed_share

    photo = blocks()
    ids = np.full((20, 30), 3, np.uint8)
    flood = Fill(FLOOD, (2, 7), 8, tolerance=0)
    assert np.array_equal(flood.apply(ids, photo), flood_fill(ids, photo, (2, 7), 8, 0))
    square = Fill(FLOOD, (22, 7), 8).apply(ids, photo)
    assert changed_share(ids, square) == 25 / 600 and not asks_first(ids, square)
    half = flood.apply(ids, photo)
    assert changed_share(ids, half) == 0.5 > MAX_FILL_SHARE and asks_first(ids, half)
    assert np.array_equal(Fill(SUPERPIXEL, (2, 7), 8).apply(ids, photo), superpixel_fill(ids, photo, (2, 7), 8))
    box = Fill(BOX, (4, 3), 8, replaced=3, corner=(1, 1)).apply(ids, photo)
    assert (box[1:4, 1:5] == 8).all() and (box == 8).sum() == 12
    with pytest.raises(ValueError, match="not a complete fill"):
        Fill(BOX, (4, 3), 8).apply(ids, photo)
