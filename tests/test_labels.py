"""Label sets: built-ins are consistent, dict and id2label round trips, colour ↔ id conversion."""

import json

import numpy as np
import pytest

from semflow.labels import BUILTIN_LABEL_SETS, CAMVID, LabelSet, get_label_set
from semflow.limits import InvalidInput

EXPECTED_SIZES = {"camvid": (11, 11), "cityscapes": (19, 255), "celebamask-hq": (19, None),
                  "coco-stuff": (171, 255), "ade20k": (150, 255)}


@pytest.mark.parametrize("name", sorted(EXPECTED_SIZES))
def test_builtin_sizes_and_round_trip(name):
    labels = get_label_set(name)
    assert (labels.num_classes, labels.ignore_id) == EXPECTED_SIZES[name]
    assert len(set(labels.class_names)) == labels.num_classes
    assert len(set(labels.colors)) == labels.num_classes
    assert LabelSet.from_dict(labels.to_dict()) == labels
    assert get_label_set(labels.to_dict()) == labels


def test_names_are_case_and_underscore_insensitive():
    assert get_label_set("CelebAMask_HQ") is BUILTIN_LABEL_SETS["celebamask-hq"]


def test_camvid_matches_the_shared_dataset_card(tmp_path):
    path = tmp_path / "id2label.json"
    path.write_text(json.dumps({
        "ignore_index": 11,
        "id2label": {str(i): n for i, n in enumerate(CAMVID.class_names + ("Unlabelled",))},
        "palette": [list(c) for c in CAMVID.colors] + [[0, 0, 0]],
    }))
    assert LabelSet.from_id2label(path, name="camvid") == CAMVID


def test_bad_label_sets_raise():
    with pytest.raises(ValueError, match="collides"):
        LabelSet("x", ("a", "b"), ((0, 0, 0), (1, 1, 1)), ignore_id=1)
    with pytest.raises(ValueError, match="colors"):
        LabelSet("x", ("a", "b"), ((0, 0, 0),))
    with pytest.raises(ValueError, match="not built in"):
        get_label_set("pascal")
    with pytest.raises(TypeError):
        get_label_set(3)


def test_check_ids_names_argument_and_ids():
    CAMVID.check_ids(np.array([[0, 10, 11]]))
    with pytest.raises(InvalidInput, match=r"the mask holds ids \[12, 200\]"):
        CAMVID.check_ids(np.array([[0, 12, 200]]))
    with pytest.raises(InvalidInput, match=r"masks holds ids \[12, 200\]"):
        CAMVID.check_ids(np.array([[0, 12, 200]]), "masks")


def test_colors_to_ids_exact_and_unknown_colours():
    ids = np.array([[0, 3, 11], [10, 8, 1]])
    rgb = CAMVID.colorize(ids)
    assert (CAMVID.colors_to_ids(rgb) == ids).all()
    rgb[0, 0] = (1, 2, 3)
    with pytest.raises(ValueError, match=r"1 colours outside .* \(1,2,3\)"):
        CAMVID.colors_to_ids(rgb)
