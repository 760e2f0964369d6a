"""Editing a photo through its mask in the app, without a server: the studio's edit (the photo kept outside the region,
the round trip on the changed pixels, settings worded as sentences), the page's offer (only for a segmented photo whose
mask was changed, with the region it would change) and its "Edit this photo" event, on a tiny model."""

import gradio as gr
import numpy as np
import PIL.Image
import pytest
from conftest import tiny_pipeline

from app.callbacks import Page
from app.editor import editor_value
from app.errors import InputError
from app.service import EDIT_MARGIN, Studio, Studios
from app.session import Session
from app.settings import Settings
from semflow.limits import MAX_EDIT_MARGIN, InvalidInput
from semflow.loading import LoadedModel

RNG = np.random.default_rng(3)


@pytest.fixture
def studio(tmp_path):
    settings = Settings(annotations_dir=tmp_path / "ann", cache_dir=tmp_path / "cache", queue_root=tmp_path)
    return Studio(LoadedModel(tiny_pipeline(), "tiny-model", "sha256:0123456789abcdef"), settings)


@pytest.fixture
def segmented(studio, tmp_path):
    """A page on the tiny studio, a 40x30 photo loaded and segmented: (page, session, editor value)."""
    page = Page(Studios.of(studio))
    PIL.Image.fromarray(RNG.integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(tmp_path / "street.png")
    loaded = page.load_image({"path": str(tmp_path / "street.png"), "orig_name": "street.png"}, Session())
    done = page.segment(loaded.session, 1, "euler", 0.5)
    return page, done.session, done.editor


def _painted(session: Session, class_id: int, box=(slice(4, 10), slice(5, 12))) -> np.ndarray:
    ids = session.prediction.copy()
    ids[box] = class_id
    assert (ids != session.prediction).any(), "the stroke must change something"
    return ids


def _other_class(session: Session, box=(slice(4, 10), slice(5, 12))) -> int:
    """A class that none of the box's pixels has in the prediction: painting it there changes every one of them."""
    return next(c for c in range(11) if not (session.prediction[box] == c).any())


def test_the_studio_edits_only_the_changed_pixels_and_checks_the_round_trip_there(studio):
    photo = PIL.Image.fromarray(RNG.integers(0, 255, (30, 40, 3), dtype=np.uint8))
    prediction = studio.segment(photo, 1)[0]
    ids = prediction.copy()
    changed = np.zeros_like(ids, bool)
    changed[10:16, 20:28] = True
    ids[changed] = (prediction[changed] + 1) % 11
    result = studio.edit(photo, ids, changed, variants=2, seed=5, margin=3)
    assert result.seeds == [5, 6] and len(result.images) == 2 and len(result.round_trip) == 2
    assert np.array_equal(result.changed, changed)
    assert np.array_equal(result.region, studio.edit_region(changed, 3)), "the preview shows what the edit changes"
    assert result.region[7:19, 17:31].all() and not result.region[:6].any(), "the changed box grown by 3 pixels"
    for image in result.images:
        edited = np.asarray(image)
        assert image.size == photo.size
        assert np.array_equal(edited[~result.region], np.asarray(photo)[~result.region]), "the photo's own pixels"
        assert not np.array_equal(edited[changed], np.asarray(photo)[changed]), "the changed pixels re-synthesized"
    assert not np.array_equal(np.asarray(result.images[0]), np.asarray(result.images[1])), "seeds differ"
    again = studio.edit(photo, ids, changed, variants=1, seed=6, margin=3)
    assert np.array_equal(np.asarray(again.images[0]), np.asarray(result.images[1])), "a seed reproduces its edit"
    expected = [studio.pipe.segment(image).ids[0][changed] for image in result.images]
    for check, segmentation in zip(result.round_trip, expected):
        agreement = 100.0 * np.mean(segmentation == ids[changed])
        assert check["pixel_agreement"] == pytest.approx(agreement), "scored on the changed pixels only"
    restyled = studio.edit(photo, ids, changed, margin=3, strength=0.5, round_trip=False)
    assert restyled.region.all() and restyled.round_trip == []
    assert np.array_equal(studio.edit_region(changed, 3, 0.5), restyled.region), "with a strength: the whole photo"


def test_the_studio_words_bad_edit_settings_and_an_edit_of_nothing(studio):
    photo = PIL.Image.fromarray(RNG.integers(0, 255, (30, 40, 3), dtype=np.uint8))
    ids = studio.segment(photo, 1)[0]
    changed = np.zeros_like(ids, bool)
    changed[0, 0] = True
    for margin, sentence in [(MAX_EDIT_MARGIN + 1, f"margin must be between 0 and {MAX_EDIT_MARGIN}"),
                             (2.5, "margin must be a whole number"), ("wide", "Margin must be a whole number")]:
        with pytest.raises((InvalidInput, InputError), match=sentence):
            studio.edit(photo, ids, changed, margin=margin)
    for strength, sentence in [(1.5, "strength must be a number between 0"), ("abc", "Strength must be a number"),
                               (float("nan"), "strength must be a number between 0")]:
        with pytest.raises((InvalidInput, InputError), match=sentence):
            studio.edit(photo, ids, changed, strength=strength)
    with pytest.raises(InputError, match="Choose between 1 and 4 variants"):
        studio.edit(photo, ids, changed, variants=5)
    with pytest.raises(InvalidInput, match="nothing to edit"):
        studio.edit(photo, ids, np.zeros_like(changed))
    with pytest.raises(InvalidInput, match="the mask is 40x29 but the photo is 40x30"):
        studio.edit(photo, ids[1:], None)


def test_the_page_offers_the_edit_only_once_a_segmented_photos_mask_changed(segmented, studio):
    page, session, editor = segmented
    image = session.image
    unchanged = page.mask_changed(editor, session, 0.5, False, EDIT_MARGIN, 0.0)
    assert unchanged.edit_button == gr.update(visible=False) and unchanged.edit_region is None
    ids = _painted(session, _other_class(session))
    followed = page.mask_changed(editor_value(image, ids, studio.labels), session, 0.5, False, 2, 0.0)
    assert followed.edit_button == gr.update(visible=True) and followed.edit_options == gr.update(visible=True)
    shown = np.asarray(followed.edit_region)
    region = studio.edit_region(ids != session.prediction, 2)
    assert shown.shape == (30, 40, 3) and region[2:12, 3:14].all() and not region[14:].any()
    assert np.array_equal(shown[~region], (0.45 * np.asarray(image, np.float32)[~region]).astype(np.uint8)), \
        "outside the region the photo is dimmed"
    wider = page.edit_preview(editor_value(image, ids, studio.labels), session, 6, 0.0).edit_region
    assert (np.asarray(wider) != shown).any(), "the preview follows the margin"
    restyled = page.edit_preview(editor_value(image, ids, studio.labels), session, 2, 0.3).edit_region
    assert np.array_equal(np.asarray(restyled)[1:-1, 1:-1], np.asarray(image)[1:-1, 1:-1]), \
        "with a strength the whole photo changes"
    again = page.segment(session, 1, "euler", 0.5)
    assert again.edit_button == gr.update(visible=False) and again.edit_region is None, "a new segmentation"
    blank = page.blank_layout(64, 80, "Road", session)
    assert blank.edit_button == gr.update(visible=False), "new work takes the offer back"
    painted = np.full((80, 64), 3, np.uint8)
    painted[:10] = 8
    layout = page.mask_changed(editor_value(blank.session.background, painted, studio.labels), blank.session, 0.5,
                               False, EDIT_MARGIN, 0.0)
    assert layout.edit_button == gr.update(visible=False), "a layout painted from scratch has no photo to edit"


def test_edit_this_photo_keeps_the_photo_outside_the_region_and_reports_the_round_trip_there(segmented, studio):
    page, session, editor = segmented
    box = (slice(4, 10), slice(5, 12))
    ids = _painted(session, _other_class(session, box), box)
    value = editor_value(session.image, ids, studio.labels)
    edited = page.edit_photo(value, session, 2, 7, 5.0, 2, "euler", 3, 0.0)
    (first, caption), (second, _) = edited.gallery
    assert caption == "edit, seed 7 · tiny-model" and first.size == session.image.size
    region = studio.edit_region(ids != session.prediction, 3)
    photo = np.asarray(session.image)
    for image in (first, second):
        assert np.array_equal(np.asarray(image)[~region], photo[~region]), "far from the stroke: the photo's pixels"
        assert not np.array_equal(np.asarray(image)[box], photo[box]), "the stroke's area changed"
    report = edited.round_trip
    assert report.startswith("Round trip on the 42 changed pixels, 3.5% of the photo (segment each edited photo, "
                             "compare with the mask there), images made by `tiny-model`:")
    assert report.count("| 7 |") + report.count("| 8 |") == 2 and edited.trajectory is None
    assert "session" not in edited.updates() and "synthesized" not in edited.updates(), \
        "an edit leaves the tab's work as it is (the photo stays the one to save)"
    with pytest.raises(gr.Error, match="Nothing to edit: the mask equals the photo's own segmentation"):
        page.edit_photo(editor, session, 1, 0, 5.0, 2, "euler", 3, 0.0)
    with pytest.raises(gr.Error, match="Margin must be between 0 and"):
        page.edit_photo(value, session, 1, 0, 5.0, 2, "euler", MAX_EDIT_MARGIN + 1, 0.0)
    blank = page.blank_layout(64, 80, "Road", session)
    with pytest.raises(gr.Error, match="Edit this photo works on a segmented photo"):
        page.edit_photo(blank.editor, blank.session, 1, 0, 5.0, 2, "euler", 3, 0.0)


def test_the_page_has_the_edit_hidden_until_offered_and_a_public_edit_endpoint(studio):
    from app.api import public_endpoints
    from app.ui import EDIT_ID, build_demo

    demo = build_demo(Studios.of(studio))
    assert public_endpoints(demo) == {"segment", "synthesize", "edit", "save_annotation", "model_info"}
    button = next(block for block in demo.blocks.values() if getattr(block, "elem_id", None) == EDIT_ID)
    assert button.value == "Edit this photo" and button.visible is False
    synthesize = [block for block in demo.blocks.values() if getattr(block, "value", None) == "Synthesize"]
    assert len(synthesize) == 1 and synthesize[0].visible is not False, "Synthesize stays, for layouts"
