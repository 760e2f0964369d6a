"""Folders written before the database import on first opening, nothing lost: a queue's statuses (the page's old words
and "reviewed" included), names, confidences, pre-annotations, corrected masks (each a first version), live claims;
photos saved one at a time with what was pushed. The old files stay as they were, and a second opening adds
nothing."""

import json

import numpy as np
import PIL.Image
import pytest
from legacy_folders import legacy_queue, mark_pushed, save_photo

from app.annotations import AnnotationStore
from app.queue_sources import open_source
from app.store.legacy import IMPORTED_FILE
from app.work_queue import ACCEPTED, CORRECTED, PREANNOTATED, TODO, open_queue

SIZE = (12, 10)


def ids_for(value: int) -> np.ndarray:
    return np.full((SIZE[1], SIZE[0]), value, np.uint8)


@pytest.fixture
def old_folder(tmp_path):
    """Frames, and an annotation folder the folder-based store wrote for them: one queue, three saved photos."""
    rng = np.random.default_rng(0)
    frames = tmp_path / "frames"
    for name in ["a.png", "b.png", "c.png", "d.png", "e.png", "f.png", "city/x.png", "town/x.png"]:
        (frames / name).parent.mkdir(parents=True, exist_ok=True)
        PIL.Image.fromarray(rng.integers(0, 256, (SIZE[1], SIZE[0], 3), dtype=np.uint8)).save(frames / name)
    source = open_source(frames)
    annotations = tmp_path / "annotations"
    queue = legacy_queue(annotations, source.key, source.title, [item.id for item in source.items],
                         [item.name for item in source.items])
    queue.predict("a.png", ids_for(1), 0.9)
    queue.predict("b.png", ids_for(2), 0.25)
    queue.save("b.png", ids_for(3), "ann", when=1_800_000_100.0)
    queue.save("c.png", ids_for(4), "ann")
    queue.save("c.png", ids_for(4), "rev", status="reviewed")
    queue.save("city/x.png", ids_for(5), "zed")
    queue.records["d.png"] = {"status": "pre-annotated", "confidence": 0.5}  # a display name, from before codes
    queue.predict("d.png", ids_for(6), 0.5)
    queue.records["e.png"] = {"status": "to do"}
    queue.claim("a.png", "0123456789abcdef0123456789abcdef", 4_000_000_000.0)  # live for decades
    queue.claim("e.png", "someone", 1.0)  # long lapsed
    queue.write()
    photos = []
    for k in range(3):
        image = PIL.Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8))
        photos.append(save_photo(annotations, f"20260101T00000{k}-photo-{k:08x}", image, ids_for(k)[:6, :8],
                                 {"annotator": f"ann{k}", "model": "symmetric-camvid", "source_file": f"p{k}.png"}))
    mark_pushed(annotations, photos[:2])
    return frames, annotations, queue.folder, photos


def _snapshot(folder):
    return {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def test_an_old_queue_imports_with_nothing_lost(old_folder):
    frames, annotations, folder, _ = old_folder
    before = _snapshot(folder)
    queue = open_queue(frames, root=annotations)
    assert [(item.id, item.name) for item in queue.items] == [
        ("a.png", "a"), ("b.png", "b"), ("c.png", "c"), ("city/x.png", "city/x"), ("d.png", "d"), ("e.png", "e"),
        ("f.png", "f"), ("town/x.png", "town/x")]
    assert queue.statuses() == {"a.png": PREANNOTATED, "b.png": CORRECTED, "c.png": ACCEPTED, "city/x.png": CORRECTED,
                                "d.png": PREANNOTATED, "e.png": TODO, "f.png": TODO, "town/x.png": TODO}
    assert queue.counts()[CORRECTED] == 2 and queue.progress().done == 3 and queue.progress().total == 8
    assert [queue.confidence(i) for i in ("a.png", "b.png", "d.png", "e.png")] == [0.9, 0.25, 0.5, None]
    for item_id, value in (("b.png", 3), ("c.png", 4), ("city/x.png", 5)):
        (version,) = queue.history(item_id)
        assert version.kind == "import" and np.array_equal(queue.version_mask(item_id, 1), ids_for(value))
    assert queue.history("b.png")[0].author == "ann" and queue.history("b.png")[0].created_at == 1_800_000_100.0
    assert queue.history("c.png")[0].author == "rev"
    opened = queue.open("b.png")
    assert np.array_equal(opened.predicted, ids_for(2)) and np.array_equal(opened.corrected, ids_for(3))
    assert queue.claim_of("a.png").owner == "0123456789abcdef0123456789abcdef" and queue.claim_of("e.png") is None
    assert queue.next_id(sort="worst_first", unfinished=True) == "d.png", "a is claimed, not finished: 0.5 first"
    assert (folder / IMPORTED_FILE).is_file()
    assert {p: b for p, b in _snapshot(folder).items() if p.name != IMPORTED_FILE} == before, "old files untouched"
    again = open_queue(frames, root=annotations)
    assert [len(again.history(i)) for i in ("b.png", "c.png")] == [1, 1] and again.counts() == queue.counts()


def test_old_saved_photos_import_with_what_was_pushed(old_folder, monkeypatch):
    from hub_mock import RecordingHub

    _, annotations, _, photos = old_folder
    metadata = (annotations / "metadata.jsonl").read_bytes()
    store = AnnotationStore(annotations)
    assert store.rows() == photos and store.count() == 3
    assert (annotations / "metadata.jsonl").read_bytes() == metadata
    hub = RecordingHub(monkeypatch)
    assert store.push("acme/streets")
    (upload,) = hub.uploads
    rows = [json.loads(line) for line in upload["contents"]["metadata.jsonl"].decode().splitlines()]
    assert rows == photos[2:], "the photos pushed before are not pushed again"
    assert store.recover().summary() is None
    new = store.save(PIL.Image.new("RGB", (8, 6)), ids_for(7)[:6, :8], {"annotator": "new"})
    lines = (annotations / "metadata.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [*photos, new.row], "appended after the old rows"
    assert AnnotationStore(annotations).count() == 4


def test_a_damaged_old_state_file_still_imports_the_masks(old_folder):
    frames, annotations, folder, _ = old_folder
    (folder / "state.json").write_text("{broken")
    queue = open_queue(frames, root=annotations)
    assert queue.status("b.png") == CORRECTED and np.array_equal(queue.open("b.png").corrected, ids_for(3))
    assert queue.status("c.png") == CORRECTED, "without its record, a mask is a correction"
    assert queue.status("a.png") == PREANNOTATED and queue.confidence("a.png") == 0.9, "from the PNG's chunk"
