"""Names kept for one release after a rename (class-id maps are `ids` / `masks`, `labels` is the `LabelSet`; an
edit's input pixels are `changed`, its grown output `region`): each still works and warns with the new name."""

import numpy as np
import PIL.Image
import pytest
import torch
from conftest import tiny_pipeline

from app.editor import ids_to_layer, labels_to_layer, layer_to_ids, layer_to_labels
from semflow.anchors import AnchorSpec, encode_anchors
from semflow.images import resize_ids, resize_labels, to_ids, to_label_array
from semflow.labels import CAMVID

IDS = np.random.default_rng(0).integers(0, 11, (16, 24)).astype(np.uint8)


def _same(a, b) -> bool:
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b, strict=True))


def test_the_pipelines_former_keywords_and_attribute():
    pipe = tiny_pipeline()
    with pytest.warns(DeprecationWarning, match=r"synthesize\(labels=...\) is deprecated .*: use masks="):
        old = pipe.synthesize(labels=IDS, seed=3).images
    assert _same(old, pipe.synthesize(IDS, seed=3).images)
    photo = pipe.synthesize(IDS, seed=1).images[0]
    changed = np.zeros(IDS.shape, bool)
    changed[2:6, 3:9] = True
    with pytest.warns(DeprecationWarning, match=r"edit\(mask=...\).*use ids=") as caught:
        old = pipe.edit(photo, mask=IDS, region=changed, margin=1, seed=2)
    assert any("edit(region=...)" in str(w.message) and "use changed=" in str(w.message) for w in caught)
    new = pipe.edit(photo, IDS, changed=changed, margin=1, seed=2)
    assert _same(old.images, new.images) and np.array_equal(old.region, new.region)
    with pytest.raises(TypeError, match="got both changed= and region="):
        pipe.edit(photo, IDS, changed=changed, region=changed)
    out = pipe.segment(photo)
    with pytest.warns(DeprecationWarning, match=r"SegmentationOutput.labels is deprecated .*: use .ids"):
        assert out.labels is out.ids


def test_the_former_function_names():
    with pytest.warns(DeprecationWarning, match="to_label_array is deprecated"):
        assert np.array_equal(to_label_array(IDS), to_ids(IDS))
    tensor = torch.from_numpy(IDS.astype(np.int64))[None]
    with pytest.warns(DeprecationWarning, match="resize_labels is deprecated"):
        assert torch.equal(resize_labels(tensor, (8, 12)), resize_ids(tensor, (8, 12)))
    with pytest.warns(DeprecationWarning, match="LabelSet.check_labels is deprecated"):
        CAMVID.check_labels(IDS)
    with pytest.warns(DeprecationWarning, match=r"is_valid\(labels=...\)"):
        assert CAMVID.is_valid(labels=IDS).all()
    with pytest.warns(DeprecationWarning, match=r"colorize\(labels=...\)"):
        assert np.array_equal(CAMVID.colorize(labels=IDS), CAMVID.colorize(IDS))
    with pytest.warns(DeprecationWarning, match=r"encode_anchors\(labels=...\)"):
        old = encode_anchors(labels=tensor, num_classes=11, spec=AnchorSpec.spread(11))
    assert torch.equal(old, encode_anchors(tensor, 11, AnchorSpec.spread(11)))
    from semflow.solvers import check_solver

    with pytest.warns(DeprecationWarning, match="semflow.solvers.check_solver is deprecated"):
        check_solver("heun", 3)
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="steps must be between 1 and"):
        check_solver("heun", 0)
    with pytest.warns(DeprecationWarning, match="labels_to_layer is deprecated"):
        layer = labels_to_layer(IDS, CAMVID)
    assert np.array_equal(layer, ids_to_layer(IDS, CAMVID))
    with pytest.warns(DeprecationWarning, match="layer_to_labels is deprecated"):
        assert np.array_equal(layer_to_labels(layer, CAMVID), layer_to_ids(layer, CAMVID))


def test_the_command_lines_former_option(tmp_path, capsys):
    from semflow.__main__ import main

    pipe = tiny_pipeline()
    pipe.save_pretrained(tmp_path / "model")
    photo = pipe.synthesize(IDS, seed=1).images[0]
    photo.save(tmp_path / "photo.png")
    PIL.Image.fromarray(IDS).save(tmp_path / "ids.png")
    changed = np.zeros(IDS.shape, np.uint8)
    changed[2:6, 3:9] = 255
    PIL.Image.fromarray(changed).save(tmp_path / "changed.png")
    for option, out in (("--region", "old"), ("--changed", "new")):
        assert main(["edit", str(tmp_path / "photo.png"), str(tmp_path / "ids.png"), option,
                     str(tmp_path / "changed.png"), "--margin", "0", "--out", str(tmp_path / out), "--model",
                     str(tmp_path / "model")]) == 0
        said = capsys.readouterr().err
        assert ("--region is deprecated" in said) == (option == "--region")
    for name in ("photo_edit_seed0.png", "photo_region.png"):
        assert _same([PIL.Image.open(tmp_path / "old" / name)], [PIL.Image.open(tmp_path / "new" / name)])
    assert np.array_equal(np.asarray(PIL.Image.open(tmp_path / "new" / "photo_region.png")) > 0, changed > 0)
