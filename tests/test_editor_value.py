"""The mask editor's value and its geometry: what goes in comes back exactly; strokes and the eraser are read as they
were painted; a mask read back shifted (as Gradio's editor placed it after a larger image), scaled, of another size or
from another photo is refused with a sentence, and the page's saves write nothing from it."""

import numpy as np
import PIL.Image
import pytest

from app.editor import (
    LAYER_ALPHA,
    MIN_MARK_AGREEMENT,
    blank_background,
    editor_value,
    layer_to_ids,
    mark_agreement,
    marked_layer,
    mask_from_editor,
)
from app.errors import InputError
from semflow.labels import CAMVID

RNG = np.random.default_rng(3)


def street(width: int = 480, height: int = 360) -> PIL.Image.Image:
    return PIL.Image.fromarray(RNG.integers(0, 256, (height, width, 3), dtype=np.uint8))


def blobs(height: int = 360, width: int = 480) -> np.ndarray:
    """A street-like mask: sky, buildings, road bands with cars, and some unlabelled pixels."""
    ids = np.zeros((height, width), np.uint8)
    ids[height // 4 :] = 1
    ids[height // 2 :] = 3
    ids[height // 2 : height // 2 + 40, width // 4 : width // 2] = 8
    ids[:10, :20] = CAMVID.ignore_id
    return ids


def returned(value: dict, layer: np.ndarray | None = None) -> dict:
    """The value as the browser sends it back: numpy background (RGB) and layer (RGBA)."""
    background = value["background"]
    return {"background": np.asarray(background.convert("RGB") if hasattr(background, "convert") else background),
            "layers": [value["layers"][0] if layer is None else layer], "composite": None}


def placed_like_gradio_after_a_larger_image(layer: np.ndarray, old_size: tuple[int, int]) -> np.ndarray:
    """Gradio's editor before the fix: the layer centred in a texture of the old (larger) size, read back cropped to
    the photo's size."""
    height, width = layer.shape[:2]
    texture = np.zeros((old_size[1], old_size[0], 4), np.uint8)
    dy, dx = (old_size[1] - height) // 2, (old_size[0] - width) // 2
    texture[dy : dy + height, dx : dx + width] = layer
    return texture[:height, :width]


def test_what_goes_into_the_editor_comes_back_exactly():
    photo, ids = street(), blobs()
    value = editor_value(photo, ids, CAMVID)
    assert value["layers"][0].shape == (360, 480, 4)
    assert np.array_equal(mask_from_editor(returned(value), photo, CAMVID), ids)
    empty = editor_value(photo, None, CAMVID)
    assert (mask_from_editor(returned(empty), photo, CAMVID) == CAMVID.ignore_id).all()
    with pytest.raises(ValueError, match="the mask is 40x30 but the editor's background is 480x360"):
        editor_value(photo, np.zeros((30, 40), np.uint8), CAMVID)


def test_the_placement_mark_is_invisible_and_leaves_the_classes_alone():
    photo, ids = street(), blobs()
    layer = marked_layer(photo, ids, CAMVID)
    labelled = ids != CAMVID.ignore_id
    assert set(np.unique(layer[labelled, 3])) == {LAYER_ALPHA, LAYER_ALPHA + 1}
    assert set(np.unique(layer[~labelled, 3])) == {1, 2} and (layer[~labelled, :3] == 0).all()
    assert np.array_equal(layer[labelled, :3], CAMVID.colorize(ids)[labelled])
    assert 0.45 < (layer[labelled, 3] == LAYER_ALPHA).mean() < 0.55, "one bit a pixel, half of them set"
    other = marked_layer(street(), ids, CAMVID)
    assert (other[..., 3] == layer[..., 3]).mean() < 0.6, "another photo, another pattern"


def test_strokes_and_the_eraser_are_read_as_painted_and_keep_the_mask_in_place():
    photo, ids = street(), blobs()
    layer = marked_layer(photo, ids, CAMVID)
    layer[200:230, 100:300] = (*CAMVID.colors[10], 255)  # an opaque Bicyclist stroke
    layer[20:40, 300:400] = 0  # erased
    expected = ids.copy()
    expected[200:230, 100:300] = 10
    expected[20:40, 300:400] = CAMVID.ignore_id
    value = {"background": np.asarray(photo), "layers": [layer], "composite": None}
    assert np.array_equal(mask_from_editor(value, photo, CAMVID), expected)
    everywhere = np.full_like(layer, 255)
    everywhere[..., :3] = CAMVID.colors[4]
    assert (mask_from_editor(returned(value, everywhere), photo, CAMVID) == 4).all(), "painted over: nothing to judge"


@pytest.mark.parametrize("shift", [(16, 76), (1, 0), (0, 1)])
def test_a_shifted_mask_is_refused(shift):
    photo, ids = street(), blobs()
    value = editor_value(photo, ids, CAMVID)
    layer = value["layers"][0]
    moved = np.zeros_like(layer)
    dx, dy = shift
    moved[dy:, dx:] = layer[: layer.shape[0] - dy, : layer.shape[1] - dx]
    agreement, _ = mark_agreement(moved, photo)
    assert agreement < MIN_MARK_AGREEMENT
    with pytest.raises(InputError, match="does not line up with its photo"):
        mask_from_editor(returned(value, moved), photo, CAMVID)


def test_the_mask_gradio_centred_after_a_larger_image_is_refused():
    photo, ids = street(), blobs()
    value = editor_value(photo, ids, CAMVID)
    shifted = placed_like_gradio_after_a_larger_image(value["layers"][0], (512, 512))
    with pytest.raises(InputError, match=r"not used \(nothing was saved\)"):
        mask_from_editor(returned(value, shifted), photo, CAMVID)


def test_a_scaled_mask_another_size_or_another_photo_is_refused():
    photo, ids = street(), blobs()
    value = editor_value(photo, ids, CAMVID)
    layer = value["layers"][0]
    scaled = np.asarray(PIL.Image.fromarray(layer).resize((504, 378), PIL.Image.Resampling.NEAREST))[:360, :480]
    with pytest.raises(InputError, match="does not line up"):
        mask_from_editor(returned(value, scaled), photo, CAMVID)
    big = marked_layer(street(512, 512), blobs(512, 512), CAMVID)
    with pytest.raises(InputError, match="The editor's mask is 512x512 but its photo is 480x360, so it was not used"):
        mask_from_editor(returned(value, big), photo, CAMVID)
    with pytest.raises(InputError, match="is 512x512 but its photo is 480x360"):
        mask_from_editor({"background": np.zeros((512, 512, 3), np.uint8), "layers": [layer]}, photo, CAMVID)
    with pytest.raises(InputError, match="does not line up"):
        mask_from_editor(returned(value), street(), CAMVID)
    with pytest.raises(InputError, match="The editor is empty"):
        mask_from_editor(returned(value), None, CAMVID)


def test_a_layout_on_its_white_canvas_comes_back_in_place():
    canvas, ids = blank_background(480, 360), blobs()
    value = editor_value(canvas, ids, CAMVID)
    assert np.array_equal(mask_from_editor(returned(value), blank_background(480, 360), CAMVID), ids)
    assert np.array_equal(layer_to_ids(value["layers"][0], CAMVID), ids)


@pytest.fixture
def page(tmp_path):
    """The page's callbacks on a tiny studio with its own annotation folder."""
    from conftest import tiny_pipeline

    from app.callbacks import Page
    from app.service import Studio, Studios
    from app.settings import Settings
    from semflow.loading import LoadedModel

    studio = Studio(LoadedModel(tiny_pipeline(), "tiny-model", "sha256:0"),
                    Settings(annotations_dir=tmp_path / "ann", cache_dir=tmp_path / "cache", queue_root=tmp_path))
    return Page(Studios.of(studio)), studio


def test_the_page_saves_nothing_from_a_misplaced_mask(page, tmp_path):
    import gradio as gr

    from app.callbacks import MASK_TO_IMAGE
    from app.session import Session
    from app.views import KEEP
    from app.work_queue import QUEUE_ORDER

    callbacks, studio = page
    street(480, 360).save(tmp_path / "street.png")
    loaded = callbacks.load_image({"path": str(tmp_path / "street.png")}, Session())
    segmented = callbacks.segment(loaded.session, 1, "euler", 0.5)
    session, value = segmented.session, segmented.editor
    shifted = placed_like_gradio_after_a_larger_image(value["layers"][0], (512, 512))
    refusal = r"does not line up with its photo \(the browser shifted or scaled it\), so it was not used \(nothing was"
    with pytest.raises(gr.Error, match=refusal):
        callbacks.save_annotation(returned(value, shifted), session, "me")
    assert studio.store.rows() == [] and not (tmp_path / "ann" / "masks").exists()
    message = callbacks.save_annotation(returned(value), session, "me").save_status
    assert message.startswith("Saved") and len(studio.store.rows()) == 1

    frames = tmp_path / "frames"
    frames.mkdir()
    street(480, 360).save(frames / "a.png")
    opened = callbacks.open_queue(str(frames), "", QUEUE_ORDER, session)
    session, value = opened.session, opened.editor
    shifted = placed_like_gradio_after_a_larger_image(value["layers"][0], (512, 512))
    with pytest.warns(UserWarning, match="does not line up"):
        refused = callbacks.save_to_queue(returned(value, shifted), session)
    assert "does not line up" in refused.queue_status and refused.session is KEEP, "said in the queue's status line"
    assert studio.workspace.queue(str(frames)).history("a.png") == [], "nothing was saved"
    with pytest.raises(gr.Error, match="does not line up"):
        callbacks.synthesize(returned(value, shifted), session, 1, 0, None, 1, "euler", False, MASK_TO_IMAGE)
