"""App helpers without Gradio: editor layers ↔ ids, snapping, overlays, exports, inputs, annotations, examples."""

import json
import os
import re

import numpy as np
import PIL.Image
import pytest

from app.annotations import AnnotationStore
from app.editor import LAYER_ALPHA, PAINTED_ALPHA, blank_layer, labels_to_layer, layer_to_labels
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
    layer = labels_to_layer(ids, labels)
    assert layer.shape == (23, 31, 4) and set(np.unique(layer[..., 3])) <= {0, LAYER_ALPHA}
    assert np.array_equal(layer_to_labels(layer, labels), ids)


def _stroke_over(base_ids, stroke_class, labels, coverage):
    """Paint `stroke_class` over a layer with anti-aliased coverage (source-over, straight alpha, as a canvas)."""
    layer = labels_to_layer(base_ids, labels).astype(np.float64)
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
    ids = layer_to_labels(_stroke_over(base, 4, CAMVID, coverage), CAMVID)
    assert set(np.unique(ids)) == {3, 4}
    a_dst = LAYER_ALPHA / 255
    stroke_share = coverage[0] / np.maximum(coverage[0] + a_dst * (1 - coverage[0]), 1e-9)  # of the blended colour
    assert (ids[0, stroke_share < 0.47] == 3).all() and (ids[0, stroke_share > 0.53] == 4).all()
    plain_nearest = np.argmin(((np.asarray(CAMVID.colors)[None] - np.array([94, 52, 175])) ** 2).sum(-1), axis=1)
    assert plain_nearest[0] == 7  # the trap the blend search avoids


def test_alpha_decides_what_was_painted():
    empty = np.full((1, 101), CAMVID.ignore_id)
    coverage = np.linspace(0, 1, 101)[None]
    ids = layer_to_labels(_stroke_over(empty, 8, CAMVID, coverage), CAMVID)
    painted = coverage[0] * 255 >= PAINTED_ALPHA - 0.5
    assert (ids[0, painted] == 8).all() and (ids[0, ~painted] == CAMVID.ignore_id).all()
    erased = labels_to_layer(np.full((2, 2), 5), CAMVID)
    erased[0, 0, 3] = 20  # eraser pass leaves a faint remainder
    assert layer_to_labels(erased, CAMVID)[0, 0] == CAMVID.ignore_id


def test_blank_layers_and_bad_layers():
    assert (layer_to_labels(blank_layer(4, 5, 3, CAMVID), CAMVID) == 3).all()
    assert (layer_to_labels(blank_layer(4, 5, None, CAMVID), CAMVID) == CAMVID.ignore_id).all()
    assert (layer_to_labels(blank_layer(4, 5, None, CELEBAMASK_HQ), CELEBAMASK_HQ) == 0).all()
    with pytest.raises(ValueError, match="RGB or RGBA uint8"):
        layer_to_labels(np.zeros((4, 5), np.uint8), CAMVID)


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


def test_huge_images_are_refused_before_decoding(tmp_path):
    path = tmp_path / "huge.png"
    PIL.Image.new("L", (20000, 20000)).save(path, optimize=False)
    with pytest.raises(InputError, match="too large|megapixels"):
        open_image(path)


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
