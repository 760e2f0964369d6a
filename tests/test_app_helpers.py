"""The app's parts: editor layers ↔ ids, snapping, overlays, exports, inputs, annotations, examples; the settings, the
service on a tiny model, the error policy and the page's callbacks, without a server."""

import json
import os
import re
from types import SimpleNamespace

import numpy as np
import PIL.Image
import pytest

from app.annotations import AnnotationStore
from app.editor import LAYER_ALPHA, PAINTED_ALPHA, ids_to_layer, layer_to_ids
from app.examples import draw_layouts, find_classes
from app.exports import save_gif, save_mask_files
from app.inputs import InputError, fit_for_editing, open_image, open_mask
from app.overlays import agreement, class_shares, legend_html, overlay
from semflow.labels import ADE20K, CAMVID, CELEBAMASK_HQ

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("labels", [CAMVID, CELEBAMASK_HQ, ADE20K], ids=lambda ls: ls.name)
def test_layer_round_trip_is_exact(labels):
    ids = RNG.integers(0, labels.num_classes, (23, 31))
    if labels.ignore_id is not None:
        ids[::5, ::3] = labels.ignore_id
    layer = ids_to_layer(ids, labels)
    assert layer.shape == (23, 31, 4) and set(np.unique(layer[..., 3])) <= {0, LAYER_ALPHA}
    assert np.array_equal(layer_to_ids(layer, labels), ids)


def _stroke_over(base_ids, stroke_class, labels, coverage):
    """Paint `stroke_class` over a layer with anti-aliased coverage (source-over, straight alpha, as a canvas)."""
    layer = ids_to_layer(base_ids, labels).astype(np.float64)
    colour = np.asarray(labels.colors[stroke_class], np.float64)
    a_src, a_dst = coverage[..., None], layer[..., 3:] / 255.0
    a_out = a_src + a_dst * (1 - a_src)
    rgb = (colour * a_src + layer[..., :3] * a_dst * (1 - a_src)) / np.maximum(a_out, 1e-9)
    return np.concatenate([np.round(rgb), np.round(a_out * 255)], -1).clip(0, 255).astype(np.uint8)


def test_anti_aliased_edges_snap_to_the_dominant_class():
    # Road under a Pavement stroke whose edge blends 0 → 1: a plain nearest-colour snap would give Fence (7) for
    # the middle of the blend; the blend-aware snap gives Road or Pavement only.
    base = np.full((1, 101), 3)
    coverage = np.linspace(0, 1, 101)[None]
    ids = layer_to_ids(_stroke_over(base, 4, CAMVID, coverage), CAMVID)
    assert set(np.unique(ids)) == {3, 4}
    a_dst = LAYER_ALPHA / 255
    stroke_share = coverage[0] / np.maximum(coverage[0] + a_dst * (1 - coverage[0]), 1e-9)  # of the blended colour
    assert (ids[0, stroke_share < 0.47] == 3).all() and (ids[0, stroke_share > 0.53] == 4).all()
    plain_nearest = np.argmin(((np.asarray(CAMVID.colors)[None] - np.array([94, 52, 175])) ** 2).sum(-1), axis=1)
    assert plain_nearest[0] == 7  # the trap the blend search avoids


def test_alpha_decides_what_was_painted():
    empty = np.full((1, 101), CAMVID.ignore_id)
    coverage = np.linspace(0, 1, 101)[None]
    ids = layer_to_ids(_stroke_over(empty, 8, CAMVID, coverage), CAMVID)
    painted = coverage[0] * 255 >= PAINTED_ALPHA - 0.5
    assert (ids[0, painted] == 8).all() and (ids[0, ~painted] == CAMVID.ignore_id).all()
    erased = ids_to_layer(np.full((2, 2), 5), CAMVID)
    erased[0, 0, 3] = 20  # eraser pass leaves a faint remainder
    assert layer_to_ids(erased, CAMVID)[0, 0] == CAMVID.ignore_id


def test_blank_layers_and_bad_layers():
    from app.editor import blank_background, marked_layer

    white = blank_background(5, 4)
    assert (layer_to_ids(marked_layer(white, np.full((4, 5), 3), CAMVID), CAMVID) == 3).all()
    assert (layer_to_ids(marked_layer(white, None, CAMVID), CAMVID) == CAMVID.ignore_id).all()
    assert (layer_to_ids(marked_layer(white, None, CELEBAMASK_HQ), CELEBAMASK_HQ) == 0).all()
    with pytest.raises(ValueError, match="RGB or RGBA uint8"):
        layer_to_ids(np.zeros((4, 5), np.uint8), CAMVID)


def test_overlay_legend_and_agreement():
    image = PIL.Image.new("RGB", (4, 2), (10, 20, 30))
    ids = np.array([[0, 0, 3, 11], [3, 3, 3, 11]])
    blended = np.asarray(overlay(image, ids, CAMVID, 1.0))
    assert tuple(blended[0, 0]) == CAMVID.colors[0] and tuple(blended[0, 3]) == (10, 20, 30)
    assert np.array_equal(np.asarray(overlay(image, ids, CAMVID, 0.0)), np.asarray(image))
    shares = class_shares(ids, CAMVID)
    assert [s[0] for s in shares] == ["Road", "Sky", "Unlabelled"] and sum(s[2] for s in shares) == pytest.approx(1)
    assert "Road" in legend_html(ids, CAMVID) and "50.0%" in legend_html(ids, CAMVID)
    assert "&lt;b&gt;" in legend_html(None, CAMVID.__class__("x", ("<b>",), ((1, 2, 3),)))
    assert agreement(ids, ids, CAMVID) == {"pixel_agreement": 100.0, "miou": 100.0}


def test_exports_round_trip(tmp_path):
    ids = RNG.integers(0, 12, (13, 17)).astype(np.uint8)
    ids_path, color_path = save_mask_files(ids, CAMVID, "../../evil name")
    assert os.path.basename(ids_path) == "evil_name_ids.png"
    assert PIL.Image.open(ids_path).mode == "L" and np.array_equal(np.asarray(PIL.Image.open(ids_path)), ids)
    assert np.array_equal(open_mask(color_path, CAMVID), ids)
    assert np.array_equal(open_mask(ids_path, CAMVID), ids)
    gif = save_gif([PIL.Image.new("RGB", (8, 8), (i * 20, 0, 0)) for i in range(3)])
    assert PIL.Image.open(gif).n_frames == 3


def test_inputs_reject_clearly(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="not a readable image"):
        open_image(tmp_path / "notes.txt")
    PIL.Image.new("RGB", (1, 1)).save(tmp_path / "dot.png")
    with pytest.raises(InputError, match="at least 8 pixels"):
        open_image(tmp_path / "dot.png")
    with pytest.raises(InputError, match="upload an image"):
        open_image(None)
    PIL.Image.new("CMYK", (20, 10)).save(tmp_path / "cmyk.jpg")
    assert open_image(tmp_path / "cmyk.jpg").mode == "RGB"
    PIL.Image.fromarray(np.full((10, 20), 40, np.uint8)).save(tmp_path / "bad_ids.png")
    with pytest.raises(InputError, match=r"ids \[40\]"):
        open_mask(tmp_path / "bad_ids.png", CAMVID)
    PIL.Image.new("RGB", (20, 10), (1, 2, 3)).save(tmp_path / "off_palette.png")
    with pytest.raises(InputError, match="outside the 'camvid' palette"):
        open_mask(tmp_path / "off_palette.png", CAMVID)
    with pytest.raises(InputError, match="same size"):
        open_mask(tmp_path / "bad_ids.png", CAMVID, size=(30, 10))
    big, notice = fit_for_editing(PIL.Image.new("RGB", (3000, 1000)), max_side=1024)
    assert big.size == (1024, 341) and "downscaled" in notice
    assert fit_for_editing(PIL.Image.new("RGB", (300, 100)))[1] is None


def test_huge_images_are_refused_before_decoding(decompression_bomb):
    with pytest.raises(InputError, match="too large|megapixels"):
        open_image(decompression_bomb)


def test_annotations_are_saved_atomically_and_load_with_datasets(tmp_path):
    store = AnnotationStore(tmp_path / "ann")
    image = PIL.Image.fromarray(RNG.integers(0, 255, (10, 12, 3), dtype=np.uint8))
    ids = RNG.integers(0, 12, (10, 12))
    hostile = {"annotator": "../../etc/passwd\x00\nDROP", "source_file": "../../../tmp/x/../evil\\..\\name.png",
               "model": "m"}
    saved = store.save(image, ids, hostile)
    store.save(image, ids, {"annotator": "b", "source_file": None})
    assert saved.image_path.parent == tmp_path / "ann" / "images" and ".." not in saved.name
    assert re.fullmatch(r"\d{8}T\d{6}-name-[0-9a-f]{8}", saved.name)
    assert {p.parent for p in (tmp_path / "ann").rglob("*.png")} == {tmp_path / "ann" / "images",
                                                                     tmp_path / "ann" / "masks"}
    assert not list((tmp_path / "ann").rglob("*.tmp"))
    rows = store.rows()
    assert len(rows) == 2 and rows[0]["annotator"] == "../../etc/passwdDROP"
    import datasets

    loaded = datasets.load_dataset("imagefolder", data_dir=str(tmp_path / "ann"), split="train")
    assert len(loaded) == 2 and set(loaded.column_names) >= {"image", "mask", "annotator"}
    masks = sorted(np.asarray(row["mask"]).tobytes() for row in loaded)
    assert masks == sorted([ids.astype(np.uint8).tobytes()] * 2)
    with pytest.raises(ValueError, match="same size"):
        store.save(image, ids[:5], {})


def test_a_crash_mid_save_leaves_earlier_rows_intact(tmp_path, monkeypatch):
    store = AnnotationStore(tmp_path / "ann")
    image = PIL.Image.new("RGB", (8, 8))
    store.save(image, np.zeros((8, 8), np.uint8), {"annotator": "first"})
    import app.annotations as module

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(module.os, "replace", crash)
    with pytest.raises(OSError):
        store.save(image, np.ones((8, 8), np.uint8), {"annotator": "second"})
    monkeypatch.undo()
    assert [r["annotator"] for r in store.rows()] == ["first"]
    assert not list((tmp_path / "ann").rglob("*.tmp"))
    text = (tmp_path / "ann" / "metadata.jsonl").read_text()
    assert all(json.loads(line) for line in text.splitlines())


def test_layouts_use_street_classes():
    assert set(find_classes(CAMVID)) >= {"sky", "building", "road", "car", "pavement"}
    for title, ids in draw_layouts(CAMVID):
        assert ids.shape == (360, 480) and CAMVID.is_valid(ids).all()
        assert {0, 1, 3} <= set(np.unique(ids).tolist()), title
    (title, bands), = draw_layouts(CELEBAMASK_HQ)
    assert set(np.unique(bands)) == {0, 1, 2, 3}


# --- settings, service, error policy, callbacks (a tiny seeded model; no server) -------------------------------------

import logging  # noqa: E402
from pathlib import Path  # noqa: E402

import gradio as gr  # noqa: E402
from conftest import tiny_pipeline  # noqa: E402

import app.callbacks as cb  # noqa: E402
from app.callbacks import MASK_TO_IMAGE  # noqa: E402
from app.errors import UserError  # noqa: E402
from app.service import MAX_VARIANTS, Studio, Studios  # noqa: E402
from app.settings import VARIABLES, Settings, SettingsError  # noqa: E402
from app.views import Work  # noqa: E402
from semflow.limits import MAX_PIXELS, MIN_SIDE, InvalidInput  # noqa: E402
from semflow.loading import LoadedModel  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def test_settings_from_the_environment():
    defaults = Settings.from_env({})
    assert defaults.concurrency == 1 and defaults.queue_size == 64 and defaults.max_upload_mb == 25
    assert defaults.max_pixels == MAX_PIXELS and defaults.annotations_repo is None and not defaults.can_push
    settings = Settings.from_env({"SEMFLOW_ANNOTATIONS_DIR": "/data/ann", "SEMFLOW_CONCURRENCY": " 3 ",
                                  "SEMFLOW_ANNOTATIONS_REPO": "acme/streets", "HF_TOKEN": "hf_secret",
                                  "SEMFLOW_PUSH_WITH_SERVER_TOKEN": "yes", "SEMFLOW_CACHE": "/tmp/c",
                                  "SEMFLOW_MAX_EDIT_SIDE": "512", "SEMFLOW_EXAMPLES": "org/frames"})
    assert settings.annotations_dir == Path("/data/ann") and settings.concurrency == 3
    assert settings.annotations_repo == "acme/streets" and settings.push_with_server_token and settings.can_push
    assert settings.max_edit_side == 512 and settings.examples == "org/frames" and settings.cache_dir == Path("/tmp/c")
    assert "hf_secret" not in repr(settings)
    assert not Settings.from_env({"SEMFLOW_ANNOTATIONS_REPO": "acme/streets"}).can_push  # no identity to push with
    assert Settings.from_env({"SEMFLOW_ANNOTATIONS_REPO": "acme/streets", "OAUTH_CLIENT_ID": "x"}).can_push


@pytest.mark.parametrize("name,value,message", [
    ("SEMFLOW_CONCURRENCY", "abc", "SEMFLOW_CONCURRENCY must be a whole number"),
    ("SEMFLOW_CONCURRENCY", "0", "SEMFLOW_CONCURRENCY must be at least 1"),
    ("SEMFLOW_QUEUE_SIZE", "2.5", "SEMFLOW_QUEUE_SIZE must be a whole number"),
    ("SEMFLOW_MAX_UPLOAD_MB", "nan", "SEMFLOW_MAX_UPLOAD_MB must be a whole number"),
    ("SEMFLOW_MAX_PIXELS", str(MAX_PIXELS + 1), "SEMFLOW_MAX_PIXELS must be between"),
    ("SEMFLOW_MAX_EDIT_SIDE", "4", "SEMFLOW_MAX_EDIT_SIDE must be at least 8"),
    ("SEMFLOW_ANNOTATIONS_REPO", "not a repo", "must be a Hub dataset id"),
    ("SEMFLOW_ANNOTATIONS_REPO", "acme/streets@main", "must be a Hub dataset id"),
    ("SEMFLOW_PUSH_WITH_SERVER_TOKEN", "maybe", "must be 1 or 0"),
])
def test_malformed_settings_are_refused_by_name(name, value, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({name: value})


def test_the_docs_document_every_variable_in_one_table():
    page = (ROOT / "docs" / "serving.md").read_text(encoding="utf-8")
    table = [line for line in page.splitlines() if line.startswith("| `")]
    for name in VARIABLES:
        assert sum(line.startswith(f"| `{name}` |") for line in table) == 1, name


@pytest.fixture
def studio(tmp_path):
    settings = Settings(annotations_dir=tmp_path / "ann", cache_dir=tmp_path / "cache",
                        annotations_repo="acme/streets", queue_root=tmp_path)
    return Studio(LoadedModel(tiny_pipeline(), "tiny-model", "sha256:0123456789abcdef"), settings)


def test_the_app_words_only_what_it_alone_knows(studio):
    """Empty fields and the app's own limits are the app's sentences; every other rule is the pipeline's
    (tests/test_validation.py)."""
    with pytest.raises(InputError, match="Seed is empty or not a number: type a whole number."):
        studio.synthesize(np.zeros((8, 8), np.uint8), seed=None)
    with pytest.raises(InputError, match="Seed must be a whole number, got 'abc'."):
        studio.synthesize(np.zeros((8, 8), np.uint8), seed="abc")
    with pytest.raises(InputError, match=f"Choose between 1 and {MAX_VARIANTS} variants, got {MAX_VARIANTS + 1}."):
        studio.check_variants(MAX_VARIANTS + 1)
    for value in (float("nan"), float("inf"), "abc", True):
        with pytest.raises((InputError, InvalidInput), match="(O|o)pacity must be"):
            studio.check_opacity(value)
    with pytest.raises(InputError, match="Opacity must be between 0 and 1, got 2."):
        studio.check_opacity(2)
    assert studio.check_variants("2") == 2 and studio.check_opacity("0.25") == 0.25
    assert studio.segment(PIL.Image.new("RGB", (24, 16)), steps=None)[1] == studio.pipe.config.segmentation_steps
    assert studio.segment(PIL.Image.new("RGB", (24, 16)), steps="2")[1] == 2, "text from a form, as a number"


def test_synthesis_round_trip_and_saved_provenance(studio):
    ids = RNG.integers(0, 11, (20, 28)).astype(np.uint8)
    result = studio.synthesize(ids, variants=2, seed=3, steps=2, solver="euler", trajectory=True)
    assert result.seeds == [3, 4] and len(result.images) == 2 and result.images[0].size == (28, 20)
    assert [set(check) for check in result.round_trip] == [{"pixel_agreement", "miou"}] * 2
    assert len(result.trajectory) >= 2 and studio.synthesize(ids, round_trip=False).round_trip == []
    image = PIL.Image.new("RGB", (28, 20))
    saved = studio.save(image, ids, " ann ", "street.png", 1)
    (row,) = studio.store.rows()
    assert row["file_name"] == f"images/{saved.name}.png" and studio.count() == 1
    assert row["model"] == "tiny-model" and row["model_revision"] == "sha256:0123456789abcdef"
    assert row["annotator"] == "ann" and row["segmentation_steps"] == 1 and row["image_source"] == "upload"
    with pytest.raises(InputError, match="no image to save"):
        studio.save(None, ids)
    with pytest.raises(InputError, match="The mask is 28x20 but the image is 10x10"):
        studio.save(PIL.Image.new("RGB", (10, 10)), ids)


def test_pushing_needs_an_identity(studio, monkeypatch):
    from app.workspace import Workspace

    def configured(settings: Settings) -> Studio:
        return Studio(studio.model, settings, Workspace(settings, studio.store))

    pushed = []
    monkeypatch.setattr(studio.store, "push", lambda repo, token=None: pushed.append((repo, token)) or "url")
    with pytest.raises(InputError, match="SEMFLOW_PUSH_WITH_SERVER_TOKEN"):
        studio.push(None)
    signed_in = configured(Settings(annotations_repo="acme/streets", oauth=True, hf_token="hf_server"))
    with pytest.raises(InputError, match="Sign in with Hugging Face"):
        signed_in.push(None)
    assert signed_in.push("hf_visitor").startswith("Pushed") and pushed == [("acme/streets", "hf_visitor")]
    operator = configured(Settings(annotations_repo="acme/streets", push_with_server_token=True,
                                   hf_token="hf_server"))
    operator.push(None)
    assert pushed[-1] == ("acme/streets", "hf_server")
    with pytest.raises(InputError, match="not set up"):
        configured(Settings(push_with_server_token=True)).push("hf_visitor")


def test_only_a_persons_mistakes_reach_the_browser_as_they_are(caplog):
    from app.failures import GENERIC, user_errors

    @user_errors
    def fails(error):
        raise error

    for error, shown in [(InputError("The file is empty."), "The file is empty."),
                         (InvalidInput("steps must be between 1 and 100, got 0"),
                          "Steps must be between 1 and 100, got 0."),
                         (UserError("No space left."), "No space left.")]:
        with pytest.raises(gr.Error) as caught:
            fails(error)
        assert caught.value.message == shown
    with caplog.at_level(logging.ERROR), pytest.raises(gr.Error) as caught:
        fails(ValueError("internal detail /srv/secret/path"))
    assert caught.value.message == GENERIC and "/srv/secret" not in caught.value.message
    assert "internal detail" in caplog.text and "Traceback" in caplog.text


@pytest.fixture
def page(studio):
    """The page's callbacks on the tiny studio."""
    from app.callbacks import Page
    from app.service import Studios

    return Page(Studios.of(studio))


def test_the_pages_callbacks_word_unusable_uploads(page, tmp_path, decompression_bomb):
    from app.session import Session

    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "empty.png").write_bytes(b"")
    for path, sentence in [(tmp_path / "notes.txt", "not a readable image"),
                           (tmp_path / "empty.png", "not a readable image"),
                           (decompression_bomb, "too large")]:
        with pytest.raises(gr.Error, match=sentence):
            page.load_image({"path": str(path), "orig_name": path.name}, Session())
    with pytest.raises(gr.Error, match="upload an image"):
        page.segment(Session(), 1, "euler", 0.5)
    with pytest.raises(gr.Error, match="identity"):
        page.push_annotations(None)


def test_the_pages_callbacks_segment_synthesize_and_save(page, studio, tmp_path):
    from app.editor import layer_to_ids
    from app.session import Session

    PIL.Image.fromarray(RNG.integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(tmp_path / "street.png")
    loaded = page.load_image({"path": str(tmp_path / "street.png"), "orig_name": "street.png"}, Session())
    session, editor, status = loaded.session, loaded.editor, loaded.status
    assert session.source == "street.png" and "40x30" in status
    assert (layer_to_ids(editor["layers"][0], studio.labels) == studio.labels.ignore_id).all()
    assert loaded == Work(session, editor, status).cleared(studio.labels), "everything of earlier work blanked"
    segmented = page.segment(session, 1, "euler", 0.5)
    session, overlay_image, editor, status = segmented.session, segmented.overlay_view, segmented.editor, \
        segmented.status
    assert session.ids.shape == (30, 40) and session.steps == 1 and overlay_image.size == (40, 30)
    assert status.startswith("Segmented in 1 step(s); mean confidence ")
    assert session.confidence.shape == (30, 40) and 0 <= session.confidence.min() <= session.confidence.max() <= 1
    heat = page.update_overlay(editor, session, 1.0, True)
    assert heat.size == (40, 30) and np.asarray(heat).tobytes() != np.asarray(overlay_image).tobytes()
    assert np.array_equal(layer_to_ids(editor["layers"][0], studio.labels), session.ids)
    synthesized = page.synthesize(editor, session, 2, 0, 5.0, 2, "euler", True, MASK_TO_IMAGE)
    report, gif, images = synthesized.round_trip, synthesized.trajectory, synthesized.synthesized
    assert len(images) == 2 and report.count("| 0 |") + report.count("| 1 |") == 2 and gif
    assert "images made by `tiny-model`" in report and "made by `tiny-model`" in synthesized.trajectory_caption
    assert [caption for _, caption in synthesized.gallery] == ["seed 0 · tiny-model", "seed 1 · tiny-model"]
    assert not hasattr(synthesized, "session"), "a synthesis never writes back the session it started with"
    saved = page.save_annotation(editor, session, "me", images)
    message, ids_path, voc_path = saved.save_status, saved.mask_ids_file, saved.mask_voc_file
    assert PIL.Image.open(voc_path).mode == "P"
    assert message.startswith("Saved") and np.array_equal(np.asarray(PIL.Image.open(ids_path)), session.ids)
    blank = page.blank_layout(64, 80, "Road", session)
    session, editor, photo = blank.session, blank.editor, blank.image
    downloads = [blank.mask_ids_file, blank.mask_color_file, blank.mask_voc_file]
    assert (blank.overlay_view, blank.gallery, blank.round_trip, blank.trajectory, blank.save_status, downloads) == \
        (None, [], "", None, "", [None] * 3)
    assert photo is None, "a layout empties the Image box"
    assert session.image is None and (layer_to_ids(editor["layers"][0], studio.labels) == 3).all()
    with pytest.raises(gr.Error, match="no image to save"):
        page.save_annotation(editor, session, "me")
    assert blank.synthesized == (), "the images of earlier work are not saved with a new layout"
    painted = page.synthesize(editor, session, 1, 0, 5.0, 2, "euler", False, MASK_TO_IMAGE).synthesized
    assert page.save_annotation(editor, session, "me", painted).save_status.startswith("Saved"), \
        "a painted layout is saved with the first image synthesized from it"
    with pytest.raises(gr.Error, match=f"A blank layout must be between {MIN_SIDE} and 1024 pixels on each side"):
        page.blank_layout(MIN_SIDE - 1, 80, "Road", session)
    with pytest.raises(gr.Error, match="Width is empty or not a number: type a whole number."):
        page.blank_layout(None, 80, "Road", session)


def test_uploads_and_blank_layouts_share_one_size_rule(page, tmp_path):
    from app.session import Session

    for side in (MIN_SIDE, 32):
        PIL.Image.new("RGB", (side, side), (90, 120, 40)).save(tmp_path / f"{side}.png")
        assert page.load_image({"path": str(tmp_path / f"{side}.png")}, Session()).session.image.size == (side, side)
        assert page.blank_layout(side, side, "Road", Session()).session.background.size == (side, side)
    PIL.Image.new("RGB", (MIN_SIDE - 1, 32)).save(tmp_path / "thin.png")
    with pytest.raises(gr.Error, match=f"it must be at least {MIN_SIDE} pixels on each side"):
        page.load_image({"path": str(tmp_path / "thin.png")}, Session())
    with pytest.raises(gr.Error, match=f"between {MIN_SIDE} and 1024 pixels on each side"):
        page.blank_layout(MIN_SIDE - 1, 32, "Road", Session())


def test_a_transparent_upload_is_said_to_be_flattened_onto_white(page, tmp_path):
    from app.session import Session

    rgba = np.zeros((30, 40, 4), np.uint8)
    rgba[..., 0], rgba[:, :20, 3] = 200, 255  # the right half transparent
    PIL.Image.fromarray(rgba).save(tmp_path / "cut-out.png")
    loaded = page.load_image({"path": str(tmp_path / "cut-out.png")}, Session())
    assert "has transparent pixels; they were flattened onto white" in loaded.status
    assert tuple(np.asarray(loaded.session.image)[0, 30]) == (255, 255, 255)
    PIL.Image.new("RGBA", (40, 30), (1, 2, 3, 255)).save(tmp_path / "opaque.png")
    assert "transparent" not in page.load_image({"path": str(tmp_path / "opaque.png")}, Session()).status


def test_results_go_with_the_mask_they_were_made_from(page, studio, tmp_path):
    from app.session import Session

    PIL.Image.fromarray(RNG.integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(tmp_path / "street.png")
    session = page.segment(page.load_image({"path": str(tmp_path / "street.png")}, Session()).session, 1, "euler",
                           0.5).session
    ids = session.ids.copy()
    ids[4:10, 5:12] = (ids[4:10, 5:12] + 1) % 11
    edited = page.edit_photo(ids_editor(session, ids, studio), session, 1, 0, 5.0, 2, "euler", 2, 0.0)
    assert edited.gallery and "Round trip on the" in edited.round_trip
    again = page.segment(session, 1, "euler", 0.5).updates()
    assert (again["gallery"], again["round_trip"], again["trajectory"], again["synthesized"]) == ([], "", None, ()), \
        "a new segmentation takes the previous edit's images and round trip off the page"
    assert page.restore_image(session) is session.image and page.restore_image(Session()) is None, \
        "after an upload that could not be opened, the Image box shows what the editor works on"


def ids_editor(session, ids, studio):
    from app.editor import editor_value

    return editor_value(session.image, ids, studio.labels)


def test_the_guard_refuses_the_pages_events_by_name_and_lets_the_page_call_them_by_index():
    from starlette.testclient import TestClient

    from app.api import guard

    with gr.Blocks() as demo:
        text, out = gr.Textbox(), gr.Textbox()
        gr.Button().click(lambda x: "page:" + x, text, out, api_name="ui_echo", api_visibility="private", queue=False)
        gr.Button().click(lambda x: "api:" + x, text, out, api_name="echo", queue=False)
    app = gr.routes.App.create_app(demo, app_kwargs={"middleware": [guard(demo)]})
    page_index = next(fn._id for fn in demo.fns.values() if fn.api_name == "ui_echo")
    with TestClient(app) as client:
        for route in ("call", "call/v2", "run", "api"):
            response = client.post(f"/gradio_api/{route}/ui_echo", json={"data": ["x"]})
            assert response.status_code == 404 and "no API endpoint" in response.text, route
        assert client.post("/gradio_api/run/echo", json={"data": ["x"]}).json()["data"] == ["api:x"]
        by_index = client.post("/gradio_api/run/predict", json={"data": ["x"], "fn_index": page_index})
        assert by_index.json()["data"] == ["page:x"]


def test_the_pixel_limit_setting_applies_to_uploads(studio, tmp_path):
    PIL.Image.new("RGB", (100, 100)).save(tmp_path / "photo.png")
    PIL.Image.new("L", (100, 100)).save(tmp_path / "mask.png")
    small = Studio(studio.model, Settings(max_pixels=5000), studio.store)
    assert studio.open_photo(tmp_path / "photo.png").size == (100, 100)
    with pytest.raises(InputError, match="megapixels"):
        small.open_photo(tmp_path / "photo.png")
    with pytest.raises(InputError, match="megapixels"):
        small.open_for_editing(tmp_path / "photo.png")
    with pytest.raises(InputError, match="megapixels"):
        small.open_mask(tmp_path / "mask.png")


@pytest.fixture
def embedded_models(monkeypatch, tmp_path):
    """The app's studios on the embedded models (no SEMFLOW_MODEL), their own annotation folder."""
    monkeypatch.delenv("SEMFLOW_MODEL", raising=False)
    return Studios(Settings(annotations_dir=tmp_path / "annotations", cache_dir=tmp_path / "cache"))


def test_a_tab_picks_the_papers_model_beside_the_default_and_keeps_it(embedded_models, tmp_path):
    from app.callbacks import Page
    from app.session import Session

    callbacks = Page(embedded_models)
    assert embedded_models.choices() == ["symmetric", "semflow"], "the default first"
    chosen = callbacks.choose_model("semflow", Session())
    session, info, beta, seg_steps = chosen.session, chosen.model_info, chosen.beta, chosen.seg_steps
    seg_solver, syn_steps, syn_solver = chosen.seg_solver, chosen.syn_steps, chosen.syn_solver
    assert session.model == "semflow" and "(semflow formulation)" in info
    assert beta["visible"] is True and seg_steps["value"] == 1, "the paper's model synthesizes with a β"
    assert beta["value"] == 40 and beta["maximum"] < 127.5 / 2 and "trained with 40" in beta["label"]
    assert (seg_solver["value"], syn_steps["value"], syn_solver["value"]) == ("euler", 10, "euler")
    back = callbacks.choose_model("symmetric", session).beta
    assert back["visible"] is False and back["value"] == 0, "the default model's β is its own, not the last one's"
    PIL.Image.fromarray(RNG.integers(0, 255, (36, 48, 3), dtype=np.uint8)).save(tmp_path / "street.png")
    session = callbacks.load_image({"path": str(tmp_path / "street.png")}, session).session
    assert session.model == "semflow" and session.image is not None
    session = callbacks.segment(session, 1, "euler", 0.5).session
    assert session.ids.shape == (36, 48)
    from app.editor import editor_value

    labels = embedded_models.get("semflow").labels
    callbacks.save_annotation(editor_value(session.image, session.ids, labels), session, "me")
    (row,) = embedded_models.get().store.rows()
    assert row["model"] == "semflow-camvid (embedded)" and row["model_revision"].startswith("sha256:")
    with pytest.raises(gr.Error, match="Unknown model 'nope'; choose one of symmetric, semflow"):
        callbacks.choose_model("nope", Session())


def test_examples_are_real_photos_and_drawn_layouts_made_without_the_model(tmp_path):
    from app.examples import PHOTOS, build_examples, canvas_size, layout_examples, photo_examples_of
    from semflow.labels import get_label_set

    examples = build_examples(get_label_set("camvid"), tmp_path)
    photos = photo_examples_of(examples)
    assert len(photos) == 4 and all("CamVid" in e["title"] and not e["mask"] for e in photos)
    assert (PHOTOS / "NOTICE.md").is_file() and "CC BY-NC 4.0" in (PHOTOS / "NOTICE.md").read_text()
    layouts = layout_examples(examples)
    assert len(layouts) == 3 and all(not e["image"] for e in layouts)
    assert np.asarray(PIL.Image.open(layouts[0]["mask"])).max() < 11
    assert canvas_size(photos, (352, 480)) == (480, 360)
    other = build_examples(get_label_set("celebamask-hq"), tmp_path)
    assert not photo_examples_of(other) and canvas_size(photo_examples_of(other), (32, 48)) == (48, 32)


def test_the_pages_work_queue_opens_preannotates_saves_exports_and_resumes(page, studio, tmp_path):
    import zipfile

    from app.editor import editor_value, layer_to_ids
    from app.queue_words import STATUS_NAMES
    from app.session import Session
    from app.work_queue import CORRECTED, PREANNOTATED, QUEUE_ORDER

    frames = tmp_path / "frames"
    frames.mkdir()
    for name in ["a.png", "b.png", "c.png"]:
        PIL.Image.fromarray(RNG.integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(frames / name)
    opened = page.open_queue(str(frames), "", QUEUE_ORDER, Session())
    session, editor, line, photo = opened.session, opened.editor, opened.queue_status, opened.image
    assert session.item == "a.png" and session.owner and "Item 1 of 3: **a**" in line and "0 / 3 corrected" in line
    blank = Work(session).cleared(studio.labels)
    assert opened.overlay_view.size == (30, 20) and all(getattr(opened, name) == getattr(blank, name) for name in (
        "legend", "gallery", "round_trip", "trajectory", "save_status", "mask_ids_file", "mask_color_file",
        "mask_voc_file"))
    assert photo is session.image, "the Image box shows the queue item, as the editor does"
    seen = []
    line = page.preannotate_queue(session, progress=lambda done, desc: seen.append(done))
    assert "Pre-annotated 3 item(s)" in line and seen[-1] == (3, 3) and "3 pre-annotated" in line
    moved = page.queue_move(1, False)(QUEUE_ORDER, session)
    session, editor, line = moved.session, moved.editor, moved.queue_status
    assert session.item == "b.png" and f"({STATUS_NAMES[PREANNOTATED]}, mean confidence 0." in line
    assert (layer_to_ids(editor["layers"][0], studio.labels) != studio.labels.ignore_id).all()
    ids = np.full((20, 30), 3, np.uint8)
    saved = page.save_to_queue(editor_value(session.image, ids, studio.labels), session)
    line, session = saved.queue_status, saved.session
    assert "Saved the mask of **b** as version 1" in line and "1 / 3 corrected" in line
    assert "| 1 |" in saved.history and session.started_from == "version 1", "the history shows the new version"
    with zipfile.ZipFile(page.export_queue(cb.EXPORT_CVAT, False, session).queue_export["value"]) as archive:
        assert "SegmentationClass/b.png" in archive.namelist()
    # a new tab (a restart): the same folder's queue, its progress kept; "Next unfinished" skips the corrected item
    reopened = page.open_queue(str(frames), "", QUEUE_ORDER, Session())
    other, line = reopened.session, reopened.queue_status
    assert other.owner != session.owner and "1 / 3 corrected" in line
    moved = page.queue_move(1, True)(QUEUE_ORDER, other.replace(item="a.png"))
    other, line = moved.session, moved.queue_status
    assert other.item == "c.png" and f"({STATUS_NAMES[CORRECTED]})" not in line
    with pytest.warns(UserWarning, match="Open a queue first"):
        assert page.save_to_queue(editor, Session()).queue_status.startswith("⚠️ Open a queue first")
    with pytest.warns(UserWarning, match="outside the app's queue folder"):
        refused = page.open_queue(str(tmp_path.parent), "", QUEUE_ORDER, Session())
    assert refused.queue_status == (f"⚠️ That folder is outside the app's queue folder: only the folders inside "
                                    f"`{tmp_path.name}` (the app's queue folder, SEMFLOW_QUEUE_ROOT), such as frames "
                                    f"can be opened as a queue; a Hub dataset id works from anywhere."), \
        "the rule says which folders, by name (never the server's full path)"
    line = page.open_queue("frames", "", QUEUE_ORDER, Session()).queue_status  # taken from the queue root
    assert "1 / 3 corrected" in line


def test_on_a_space_with_sign_in_only_a_signed_in_visitor_works_on_a_queue(page, studio, tmp_path, monkeypatch):
    import dataclasses

    from app.session import Session
    from app.work_queue import QUEUE_ORDER

    monkeypatch.setattr(studio.workspace, "settings", dataclasses.replace(studio.settings, oauth=True))
    monkeypatch.setattr(page.studios, "settings", dataclasses.replace(studio.settings, oauth=True))
    (tmp_path / "frames").mkdir()
    PIL.Image.new("RGB", (8, 8)).save(tmp_path / "frames" / "a.png")
    with pytest.warns(UserWarning, match="Sign in with Hugging Face first"):
        assert "Sign in with Hugging Face first" in page.open_queue("frames", "", QUEUE_ORDER, Session()).queue_status
    session = page.open_queue("frames", "", QUEUE_ORDER, Session(), profile=SimpleNamespace(username="alice")).session
    assert session.owner == "alice" and session.item == "a.png"
    with pytest.warns(UserWarning, match="Sign in with Hugging Face first"):
        assert "Sign in with Hugging Face first" in page.save_to_queue(None, session).queue_status


def _layer_of(payload: dict) -> np.ndarray:
    """The layer a fill sends to the page's editor script."""
    import base64
    import io

    header, data = payload["layer"].split(",", 1)
    assert header == "data:image/png;base64"
    return np.asarray(PIL.Image.open(io.BytesIO(base64.b64decode(data))))


def test_a_click_on_the_segmentation_fills_the_editors_mask_and_a_large_fill_asks_first(page, studio):
    from app.editor import editor_value, layer_to_ids, mark_agreement
    from app.session import Session

    photo = np.zeros((20, 30, 3), np.uint8)
    photo[:, 15:] = 200  # two flat halves, a small square in the right one
    photo[2:6, 20:24] = 90
    image = PIL.Image.fromarray(photo)
    session = Session(image=image, background=image, ids=np.zeros((20, 30), np.uint8))
    editor = editor_value(session.image, session.ids, studio.labels)

    filled_view = page.fill_at(editor, session, cb.FLOOD, "Road", None, 10, 0.5, False,
                               SimpleNamespace(index=[21, 3]))  # the square: 16 pixels
    session, payload, view, note, button = (filled_view.session, filled_view.fill_layer, filled_view.overlay_view,
                                            filled_view.fill_status, filled_view.apply_fill)
    layer = _layer_of(payload)
    filled = layer_to_ids(layer, studio.labels)
    assert (payload["width"], payload["height"]) == (30, 20) and mark_agreement(layer, image) == (1.0, 600)
    assert (filled[2:6, 20:24] == 3).all() and (filled == 3).sum() == 16 and view.size == (30, 20)
    assert note.startswith("Flood-filled the region at (21, 3) with Road (2.7% of the image changed; undo")
    assert button["visible"] is False and np.array_equal(session.ids, filled)

    editor = editor_value(session.image, filled, studio.labels)
    click = SimpleNamespace(index=[17, 15])  # the rest of the right half: 284 pixels, 47% of the image
    asked = page.fill_at(editor, session, cb.FLOOD, "Car", None, 10, 0.5, False, click)
    waiting, payload, preview, note, button = asked.session, asked.fill_layer, asked.overlay_view, \
        asked.fill_status, asked.apply_fill
    assert payload is None and button["visible"] is True and waiting.fill is not None
    assert note.startswith("This fill at (17, 15) would change 47.3% of the image (more than 10%)")
    assert "lower the tolerance" in note
    shown = np.asarray(preview).astype(int)
    assert shown[10, 5].sum() < 0.5 * np.asarray(overlay(image, filled, studio.labels, 0.5))[10, 5].sum()
    applied_view = page.apply_fill(editor, waiting, 0.5, False)
    session, payload, note, button = applied_view.session, applied_view.fill_layer, applied_view.fill_status, \
        applied_view.apply_fill
    applied = layer_to_ids(_layer_of(payload), studio.labels)
    assert (applied[:, 15:][filled[:, 15:] != 3] == 8).all() and (applied[:, :15] == 0).all()
    assert session.fill is None and button["visible"] is False and "47.3% of the image changed" in note
    with pytest.raises(gr.Error, match="There is no fill waiting"):
        page.apply_fill(editor, session, 0.5, False)

    unchanged = page.fill_at(editor, session, "off", "Road", None, 10, 0.5, False, click)
    assert unchanged.updates() == {"fill_layer": None}, "the session and the views stay as they are"
    with pytest.raises(gr.Error, match="Choose the class"):
        page.fill_at(editor, session, cb.SUPERPIXEL, None, None, 10, 0.5, False, click)
    # the box tool: the first corner is marked on the view; Road → Car inside the box from (18, 2) to (25, 9) only
    corner = page.fill_at(editor, session, cb.REPLACE, "Car", "Road", 10, 0.5, False, SimpleNamespace(index=[18, 2]))
    session, payload, view, note = corner.session, corner.fill_layer, corner.overlay_view, corner.fill_status
    assert session.corner == (18, 2) and "opposite corner" in note and payload is None
    assert tuple(np.asarray(view)[2, 18 + 3]) == (255, 255, 0), "no mark at the first corner"
    box = page.fill_at(editor, session, cb.REPLACE, "Car", "Sky", 10, 0.5, False, SimpleNamespace(index=[25, 9]))
    session, payload, note = box.session, box.fill_layer, box.fill_status
    replaced = layer_to_ids(_layer_of(payload), studio.labels)
    assert (replaced[2:10, 18:26] != 0).all() and session.corner is None and note.startswith("Replaced Sky with Car")
    assert (replaced[2:6, 20:24] == 3).all(), "the box replaces only the class asked for"


def test_the_legend_follows_the_mask_in_the_editor(page, studio):
    from app.editor import editor_value
    from app.session import Session

    image = PIL.Image.fromarray(RNG.integers(0, 255, (20, 30, 3), dtype=np.uint8))
    prediction = np.zeros((20, 30), np.uint8)
    session = Session(image=image, background=image, ids=prediction, prediction=prediction,
                      confidence=np.full((20, 30), 0.8, np.float32))
    legend = cb.legend_of(session, prediction, studio.labels)
    assert "100.0%" in legend and "Corrected by hand: 0.0%" in legend
    painted = prediction.copy()
    painted[:10] = 8
    followed = page.mask_changed(editor_value(image, painted, studio.labels), session, 0.5, False)
    view, legend = followed.overlay_view, followed.legend
    assert view.size == (30, 20) and (np.asarray(view) == np.asarray(overlay(image, painted, studio.labels,
                                                                            0.5))).all()
    assert "Car" in legend and "50.0%" in legend and "Corrected by hand: 50.0% of the image." in legend
    assert "Mean confidence where the model&#x27;s mask stands: 0.80." in legend


def test_a_tab_claims_queue_items_under_its_browsers_id_and_worst_first_reaches_every_unfinished_item(page, studio,
                                                                                                      tmp_path):
    from app.session import Session
    from app.work_queue import QUEUE_ORDER, WORST_FIRST

    started = page.start_tab(None, Session())
    browser_id, session = started.browser_id, started.session
    assert cb.ANNOTATOR_ID.fullmatch(browser_id) and session.owner == browser_id
    again = page.start_tab(browser_id, Session())
    assert again.browser_id == browser_id and again.session.owner == browser_id, "the browser's id is kept"
    assert page.start_tab("../not an id", Session()).browser_id != "../not an id"

    frames = tmp_path / "frames"
    frames.mkdir()
    for name in "abcde":
        PIL.Image.fromarray(RNG.integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(frames / f"{name}.png")
    session = page.open_queue(str(frames), "", QUEUE_ORDER, session).session
    queue = studio.workspace.queue(str(frames))
    for name, confidence in zip("abcde", (0.9, 0.3, 0.7, 0.1, 0.5)):
        queue.set_prediction(f"{name}.png", np.zeros((20, 30), np.uint8), confidence)
    queue.save("d.png", np.zeros((20, 30), np.uint8), browser_id)  # the least confident one is finished
    reload = page.start_tab(browser_id, Session()).session
    reopened = page.open_queue(str(frames), "", QUEUE_ORDER, reload)
    reload, line = reopened.session, reopened.queue_status
    assert reload.item == "a.png" and "Item 1 of 5" in line, "a reload resumes the item its browser holds"
    reordered = page.reorder_queue(WORST_FIRST, session)
    session, line = reordered.session, reordered.queue_status
    assert session.item == "b.png" and "mean confidence 0.30" in line, "worst first: the least confident unfinished"
    assert "Order: worst first." in line, "the order by its name, not its code"
    seen = [session.item]
    for _ in range(5):
        session = page.queue_move(1, False)(WORST_FIRST, session).session
        seen.append(session.item)
    assert seen == ["b.png", "e.png", "c.png", "a.png", "d.png", "b.png"], "Next goes round every item, worst first"
    assert set(seen) >= {"a.png", "b.png", "c.png", "e.png"}
    other = Session(owner="f" * 32)
    other = page.open_queue(str(frames), "", WORST_FIRST, other).session
    assert other.item == "e.png", "another browser skips the item this one holds"
    for name in "abce":
        queue.save(f"{name}.png", np.zeros((20, 30), np.uint8), other.owner if name == "e" else browser_id)
    stay = page.queue_move(1, True)(WORST_FIRST, session)
    assert stay.session is session and "No other item to open" in stay.queue_status and set(stay.updates()) == {
        "session", "queue_status"}, "nothing left: the editor and the views stay as they are"
    idle = page.reorder_queue(WORST_FIRST, Session())
    assert idle.session.queue is None and set(idle.updates()) == {"session"}


def test_a_built_spaces_model_is_read_by_the_app_not_the_core(tmp_path, monkeypatch):
    import inspect

    import semflow.loading
    from app.settings import SPACE_FILE, space_model
    from semflow.loading import DEFAULT_MODEL

    space = tmp_path / SPACE_FILE
    assert Settings.from_env({}, space_file=space).model == DEFAULT_MODEL, "no Space file: the embedded default"
    space.write_text('{"model": "acme/streets@v1"}')
    assert Settings.from_env({}, space_file=space).model == "acme/streets@v1"
    assert Settings.from_env({"SEMFLOW_MODEL": "semflow"}, space_file=space).model == "semflow", "the variable first"
    space.write_text("[1, 2]")
    with pytest.raises(SettingsError, match=f"{SPACE_FILE} must hold"):
        space_model(space)
    assert SPACE_FILE not in inspect.getsource(semflow.loading), "the core knows nothing of Spaces"


def test_the_zero_gpu_decorator_comes_from_the_hugging_face_package_even_from_the_repo_root(tmp_path, monkeypatch):
    import importlib
    import sys

    import app.model as model

    package = tmp_path / "site" / "spaces"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("def GPU(fn=None, **kwargs):\n    return fn\n")
    shadow = importlib.util.module_from_spec(importlib.machinery.ModuleSpec("spaces", None, is_package=True))
    shadow.__path__ = [str(ROOT / "spaces")]  # what `import spaces` gives from the repo root: this project's folder
    monkeypatch.setitem(sys.modules, "spaces", shadow)
    monkeypatch.setattr(sys, "path", [str(ROOT), *sys.path, str(tmp_path / "site")])
    found = model.hugging_face_spaces()
    assert found is not None and found.__file__ == str(package / "__init__.py") and callable(found.GPU)
    monkeypatch.setitem(sys.modules, "spaces", shadow)
    monkeypatch.setattr(sys, "path", [str(ROOT), *(p for p in sys.path if p != str(tmp_path / "site"))])
    assert model.hugging_face_spaces() is None, "not installed: the app's own no-op decorator"
