"""A queue's accepted items as a Hugging Face dataset: `image` and `mask` columns with the masks' own ids, the label
set in id2label.json (read back as the same label set), one folder per queue, loaded by `datasets.load_dataset` and
trained on by `training.train --dataset <folder>` as it is; pushed to a Hub dataset repo replacing only its queue's
folder."""

from __future__ import annotations

import json
import zipfile

import datasets
import numpy as np
import PIL.Image
import pytest
from datasets_helpers import TINY_CONFIG, street

from app.dataset_export import DATA_DIR, id2label, push_dataset, write_dataset, zip_dataset
from app.errors import InputError
from app.work_queue import DONE, open_queue
from semflow import SemFlowPipeline
from semflow.labels import CAMVID, LabelSet


@pytest.fixture
def queue(tmp_path):
    """Four toy street frames, their true masks saved; two accepted, one only saved, one untouched."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "streets"
    folder.mkdir()
    masks = {}
    for k in range(4):
        image, ids = street(rng)
        PIL.Image.fromarray(image).save(folder / f"drive_{k}.png")
        masks[f"drive_{k}.png"] = ids
    queue = open_queue(folder, root=tmp_path / "annotations")
    for k in range(3):
        queue.save(f"drive_{k}.png", masks[f"drive_{k}.png"], "ann", "ana")
    for k in range(2):
        queue.submit(f"drive_{k}.png", "ann")
        queue.accept(f"drive_{k}.png", "rev", "rita")
    queue.true_masks = masks
    return queue


def test_the_label_set_round_trips_through_id2label(tmp_path):
    (tmp_path / "id2label.json").write_text(json.dumps(id2label(CAMVID)))
    again = LabelSet.from_id2label(tmp_path / "id2label.json", name=CAMVID.name)
    assert again == CAMVID


def test_accepted_items_load_as_a_dataset_with_their_masks(queue, tmp_path):
    exported = write_dataset(queue, CAMVID, tmp_path / "dataset")
    assert exported.rows == 2 and exported.subfolder == "streets"
    assert (tmp_path / "dataset" / DATA_DIR / "streets" / "metadata.jsonl").is_file()
    loaded = datasets.load_dataset(str(tmp_path / "dataset"), split="train", cache_dir=str(tmp_path / "hf"))
    assert sorted(loaded["item"]) == ["drive_0.png", "drive_1.png"], "accepted items only"
    assert set(loaded.column_names) >= {"image", "mask", "annotator", "version", "queue", "saved_at"}
    for row in loaded:
        assert np.array_equal(np.asarray(row["mask"]), queue.true_masks[row["item"]]), "the mask's own ids"
        assert row["mask"].mode == "L" and row["annotator"] == "ana"
    everything = write_dataset(queue, CAMVID, tmp_path / "all", statuses=DONE)
    assert everything.rows == 3
    archive = zip_dataset(everything, tmp_path / "all.zip")
    with zipfile.ZipFile(archive) as z:
        assert {"id2label.json", "README.md", "data/streets/metadata.jsonl", "data/streets/masks/drive_2.png"} <= \
            set(z.namelist())


def test_an_export_is_what_a_learning_job_takes(queue, tmp_path):
    from training.learn import held_back_split

    write_dataset(queue, CAMVID, tmp_path / "dataset", statuses=DONE)
    rows = datasets.load_dataset(str(tmp_path / "dataset"), split="train", cache_dir=str(tmp_path / "hf"))
    assert len(sorted(rows["saved_at"])) == 3, "when each version was saved: what a job orders by"
    assert len(set(rows["saved_at"])) == 3, "saves within one second keep their own times (and order)"
    with pytest.raises(ValueError, match="learning needs at least 10 corrected items"):
        held_back_split(rows)  # three items: the job says how many more it needs


def test_an_export_is_trainable_as_it_is(queue, tmp_path):
    from training import train

    write_dataset(queue, CAMVID, tmp_path / "dataset")
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY_CONFIG))
    out = tmp_path / "run"
    train.main(["--dataset", str(tmp_path / "dataset"), "--output-dir", str(out), "--config", str(config),
                "--validation-split", "none", "--max-steps", "2"])
    pipe = SemFlowPipeline.from_pretrained(out)
    assert pipe.labels.class_names == CAMVID.class_names and pipe.labels.ignore_id == CAMVID.ignore_id, \
        "the label set came from the export's id2label.json"


def test_masks_outside_the_label_set_and_an_empty_export_are_refused(queue, tmp_path):
    bad = np.full((30, 40), 200, np.uint8)
    queue.save("drive_3.png", bad, "ann")
    queue.submit("drive_3.png", "ann")
    queue.accept("drive_3.png", "rev")
    with pytest.raises(InputError, match="The item drive_3 cannot be exported with the label set camvid"):
        write_dataset(queue, CAMVID, tmp_path / "dataset")
    empty = open_queue(queue.source.folder, root=tmp_path / "elsewhere")
    with pytest.raises(InputError, match="No item of this queue is accepted yet"):
        write_dataset(empty, CAMVID, tmp_path / "empty")


def test_a_push_replaces_its_queues_folder_only(queue, tmp_path, monkeypatch):
    from hub_mock import RecordingHub

    hub = RecordingHub(monkeypatch)
    exported = write_dataset(queue, CAMVID, tmp_path / "dataset")
    push_dataset(exported, "acme/streets", token="hf_x")
    (upload,) = hub.uploads
    assert hub.repos[0]["repo_type"] == "dataset" and upload["repo_type"] == "dataset"
    assert "data/streets/metadata.jsonl" in upload["files"] and "id2label.json" in upload["files"]
    rows = [json.loads(line) for line in upload["contents"]["data/streets/metadata.jsonl"].decode().splitlines()]
    assert [row["item"] for row in rows] == ["drive_0.png", "drive_1.png"]
    assert upload["commit_message"] == "Accepted items of streets (2 pairs)"
    assert upload["delete_patterns"] == ["data/streets/**"], "the queue's earlier push goes, other queues' stay"
