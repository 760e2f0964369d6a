"""Exports other tools open: the VOC palette PNG and the CVAT "Segmentation mask 1.1" zip, reopened id by id."""

import io
import zipfile

import numpy as np
import PIL.Image
import pytest

from app.exports import VOC_VOID, save_cvat_zip, save_voc_mask, voc_palette_image, write_cvat_zip
from semflow.labels import ADE20K, CAMVID, CELEBAMASK_HQ, LabelSet

RNG = np.random.default_rng(0)


def random_ids(labels: LabelSet, shape=(24, 32)) -> np.ndarray:
    ids = RNG.integers(0, labels.num_classes, shape).astype(np.uint8)
    if labels.ignore_id is not None:
        ids[::4, ::5] = labels.ignore_id
    return ids


@pytest.mark.parametrize("labels", [CAMVID, ADE20K, CELEBAMASK_HQ], ids=lambda ls: ls.name)
def test_voc_palette_png_reopens_id_by_id(labels):
    ids = random_ids(labels)
    path = save_voc_mask(ids, labels, stem="frame 01.png")
    assert path.endswith("frame_01_voc.png")
    image = PIL.Image.open(path)
    assert image.mode == "P"
    indices = np.asarray(image)
    expected = ids.copy()
    if labels.ignore_id is not None:
        expected[ids == labels.ignore_id] = VOC_VOID
    assert np.array_equal(indices, expected)
    palette = np.asarray(image.getpalette(), np.uint8).reshape(-1, 3)
    assert np.array_equal(palette[: labels.num_classes], np.asarray(labels.colors, np.uint8))
    if labels.ignore_id is not None:
        assert tuple(palette[VOC_VOID]) == labels.ignore_color
    assert np.array_equal(np.asarray(image.convert("RGB")), labels.colorize(ids)), "colours are the display colours"


def read_cvat(path) -> tuple[list[tuple[str, tuple]], list[str], dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Label map, subset names and per name (class indices, class colours decoded to label-map lines, instances)."""
    with zipfile.ZipFile(path) as archive:
        lines = archive.read("labelmap.txt").decode().splitlines()
        assert lines[0].startswith("#")
        labelmap = []
        for line in lines[1:]:
            name, color, parts, actions = line.split(":")
            assert parts == actions == ""
            labelmap.append((name, tuple(int(v) for v in color.split(","))))
        names = archive.read("ImageSets/Segmentation/default.txt").decode().splitlines()
        masks = {}
        by_color = {color: index for index, (_, color) in enumerate(labelmap)}
        for name in names:
            image = PIL.Image.open(io.BytesIO(archive.read(f"SegmentationClass/{name}.png")))
            assert image.mode == "P"
            rgb = np.asarray(image.convert("RGB"))
            from_colors = np.vectorize(lambda r, g, b: by_color[(r, g, b)])(rgb[..., 0], rgb[..., 1], rgb[..., 2])
            instances = PIL.Image.open(io.BytesIO(archive.read(f"SegmentationObject/{name}.png")))
            assert instances.mode == "P"
            masks[name] = (np.asarray(image), from_colors, np.asarray(instances))
    return labelmap, names, masks


def test_cvat_zip_reopens_id_by_id(tmp_path):
    masks = {name: random_ids(CAMVID, (20 + i, 30)) for i, name in enumerate(["city/0001", "town/0001", "b"])}
    path = write_cvat_zip(masks.items(), CAMVID, tmp_path / "out" / "set.zip")
    labelmap, names, reopened = read_cvat(path)
    assert labelmap[0] == ("background", (0, 0, 0))
    assert labelmap[1:] == list(zip(CAMVID.class_names, CAMVID.colors))
    assert names == list(masks)
    for name, ids in masks.items():
        indices, from_colors, instances = reopened[name]
        expected = ids.astype(int) + 1
        expected[ids == CAMVID.ignore_id] = 0  # unlabelled → CVAT's background
        assert np.array_equal(indices, expected) and np.array_equal(from_colors, expected)
        assert np.array_equal(instances == 0, ids == CAMVID.ignore_id)
        for instance in np.unique(instances[instances > 0]):
            assert len(np.unique(indices[instances == instance])) == 1, "one instance holds one class"
        assert len(np.unique(instances)) == len(np.unique(indices)), "one instance per class present"
    assert list(tmp_path.joinpath("out").iterdir()) == [path], "no temporary file is left behind"


def test_cvat_zip_keeps_a_class_named_background():
    ids = random_ids(CELEBAMASK_HQ)
    path = save_cvat_zip([("face", ids)], CELEBAMASK_HQ, stem="faces")
    assert path.endswith("faces_cvat.zip")
    labelmap, _, reopened = read_cvat(path)
    assert [name for name, _ in labelmap] == list(CELEBAMASK_HQ.class_names)
    indices, from_colors, instances = reopened["face"]
    assert np.array_equal(indices, ids) and np.array_equal(from_colors, ids)
    assert np.array_equal(instances == 0, ids == 0)


@pytest.mark.parametrize("masks, labels, message", [
    ([("a", np.zeros((4, 4), np.uint8)), ("a", np.zeros((4, 4), np.uint8))], CAMVID, "two masks are named 'a'"),
    ([("../a", np.zeros((4, 4), np.uint8))], CAMVID, "plain file stems"),
    ([("a", np.full((4, 4), 12, np.uint8))], CAMVID, "outside the label set"),
    ([], CAMVID, "no masks to export"),
    ([("a", np.zeros((4, 4), np.uint8))], LabelSet("x", ("void", "car"), ((0, 0, 0), (9, 9, 9))), "share the colour"),
    ([("a", np.zeros((4, 4), np.uint8))], LabelSet("x", ("a:b",), ((1, 1, 1),)), "label map"),
])
def test_bad_cvat_exports_are_refused_and_leave_nothing(tmp_path, masks, labels, message):
    with pytest.raises(ValueError, match=message):
        write_cvat_zip(masks, labels, tmp_path / "set.zip")
    assert list(tmp_path.iterdir()) == []


def test_voc_refuses_ids_outside_the_label_set():
    with pytest.raises(ValueError, match="outside the label set"):
        voc_palette_image(np.full((3, 3), 40, np.uint8), CAMVID)
