"""Drive-held-out splits: no frame of a held-out drive reaches training, and the run is scored (and chosen) on it."""

import json

import datasets
import pytest
from datasets_helpers import TINY_CONFIG, write_hub_dataset

from training import train
from training.data import load_split
from training.splits import drive_of, drives, held_out_splits


def _split(names):
    return datasets.Dataset.from_dict({"file_name": names, "index": list(range(len(names)))})


def test_a_frame_names_its_drive_by_the_part_before_the_first_underscore():
    assert drive_of("0006R0_f02340.png") == "0006R0"
    assert drive_of("images/Seq05VD_f00030.png") == "Seq05VD"
    assert drive_of("frame.png") == "frame"


def test_held_out_drives_take_every_labelled_frame_of_them_and_train_on_none():
    train_split = _split(["A_1.png", "B_1.png", "C_1.png", "B_2.png", "A_2.png"])
    validation = _split(["A_3.png", "B_3.png", "A_4.png"])
    training, same_drive, held_out = held_out_splits(train_split, validation, ["B"])
    assert training["file_name"] == ["A_1.png", "C_1.png", "A_2.png"]
    assert same_drive["file_name"] == ["A_3.png", "A_4.png"]
    assert held_out["file_name"] == ["B_1.png", "B_2.png", "B_3.png"]
    assert drives(training) == {"A": 2, "C": 1}


def test_held_out_drives_without_a_validation_split_come_from_training_rows():
    training, same_drive, held_out = held_out_splits(_split(["A_1.png", "B_1.png"]), None, ["A"])
    assert training["file_name"] == ["B_1.png"] and same_drive is None and held_out["file_name"] == ["A_1.png"]


@pytest.mark.parametrize("held_out,message", [(["Z"], r"\['Z'\] have no frame in the dataset; its drives are "
                                                      r"\{'A': 1, 'B': 1\}"),
                                              (["A", "B"], "leaves no frame to train on")])
def test_a_held_out_drive_that_is_not_there_or_leaves_nothing_to_train_is_refused(held_out, message):
    with pytest.raises(ValueError, match=message):
        held_out_splits(_split(["A_1.png", "B_1.png"]), None, held_out)


def test_a_dataset_without_file_names_cannot_hold_drives_out():
    with pytest.raises(ValueError, match="the column 'file_name', which the dataset does not have"):
        held_out_splits(datasets.Dataset.from_dict({"image": [1, 2]}), None, ["A"])


def test_a_training_run_never_sees_a_held_out_frame_and_is_chosen_on_them(tmp_path, monkeypatch):
    dataset = write_hub_dataset(tmp_path / "drives", train=6, validation=4, drives=("0001TP", "0006R0"))
    seen = []

    class Recording(train.SegmentationStream):
        def _epoch(self, epoch, shard, shards):
            for example in super()._epoch(epoch, shard, shards):
                seen.append(example["file_name"])
                yield example

    monkeypatch.setattr(train, "SegmentationStream", Recording)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**TINY_CONFIG, "held_out_drives": ["0006R0"], "save_best": True}))
    out = tmp_path / "run"
    train.main(["--dataset", str(dataset), "--output-dir", str(out), "--config", str(config), "--max-steps", "4"])
    assert seen and {drive_of(name) for name in seen} == {"0001TP"}
    assert len(set(seen)) == 3  # every training frame of the other drive, and only those
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    validations = [record for record in log if "held_out_miou" in record]
    assert [record["step"] for record in validations] == [2, 4] and all("val_miou" in r for r in validations)
    best = json.loads((out / "best" / "best.json").read_text())
    assert set(best) == {"step", "held_out_miou"}
    assert best["held_out_miou"] == max(record["held_out_miou"] for record in validations)
    names = [name for split in ("train", "validation") for name in load_split(str(dataset), split)["file_name"]]
    held_out = [name for name in names if drive_of(name) == "0006R0"]
    assert len(held_out) == 5 and not set(held_out) & set(seen)
    card = (out / "README.md").read_text()
    assert "without the frames of drive `0006R0`, held out to choose the model on, 3 rows)" in card
    assert f"on the held-out drives 0006R0: mIoU {validations[-1]['held_out_miou']}" in card
