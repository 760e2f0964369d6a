"""The work queue: sources, stable names, status and progress, navigation, claims under concurrent clients, resume."""

import json
import multiprocessing
import signal
import threading
import time
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from app.errors import InputError, UserError
from app.queue_sources import open_source
from app.queue_words import STATUS_NAMES, counts_line, progress_line
from app.work_queue import (
    CORRECTED,
    PREANNOTATED,
    REVIEWED,
    TODO,
    WORST_FIRST,
    ItemClaimed,
    WorkQueue,
    open_queue,
)
from tests.datasets_helpers import write_annotation_folder, write_hub_dataset

SIZE = (12, 10)  # width, height of the generated images


def write_images(folder: Path, names: list[str], seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        PIL.Image.fromarray(rng.integers(0, 256, (SIZE[1], SIZE[0], 3), dtype=np.uint8)).save(path)
    return folder


def ids_for(value: int) -> np.ndarray:
    return np.full((SIZE[1], SIZE[0]), value, np.uint8)


@pytest.fixture
def datasets_cache(tmp_path, monkeypatch):
    """`datasets` caches what it loads: keep that cache in the test's folder."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets-cache")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def queue(tmp_path) -> WorkQueue:
    write_images(tmp_path / "photos", [f"f{i}.png" for i in range(5)])
    return open_queue(tmp_path / "photos", root=tmp_path / "annotations", claim_seconds=60, clock=Clock())


def test_folder_items_are_named_after_their_images_and_keep_their_names(tmp_path):
    photos = write_images(tmp_path / "photos", ["a.png", "city/x.png", "town/x.png", "b.jpg", "b.png",
                                                ".hidden/z.png", "v1.2/c.png"])
    (photos / "notes.txt").write_text("not an image")
    queue = open_queue(photos, root=tmp_path / "ann")
    assert [(item.id, item.name) for item in queue.items] == [
        ("a.png", "a"), ("b.jpg", "b_jpg"), ("b.png", "b_png"), ("city/x.png", "city/x"), ("town/x.png", "town/x"),
        ("v1.2/c.png", "v1.2/c")]
    queue.save("city/x.png", ids_for(3), "ann")
    assert queue.mask_path("city/x.png") == queue.folder / "masks" / "city" / "x.png"
    write_images(photos, ["a.jpg", "0.png"], seed=1)
    again = open_queue(photos, root=tmp_path / "ann")
    names = {item.id: item.name for item in again.items}
    assert names["a.png"] == "a" and names["a.jpg"] == "a_jpg" and names["0.png"] == "0", "old names stay"
    assert again.status("city/x.png") == CORRECTED and again.folder == queue.folder


@pytest.mark.usefixtures("datasets_cache")
def test_an_imagefolder_queues_its_images_not_its_masks(tmp_path):
    folder = write_annotation_folder(tmp_path / "set", count=3)
    queue = open_queue(folder, root=tmp_path / "ann")
    assert [(item.id, item.name) for item in queue.items] == [(f"train/images/a{i}.png", f"a{i}") for i in range(3)]
    assert queue.open("train/images/a1.png").image.size == (40, 30)


@pytest.mark.usefixtures("datasets_cache")
def test_a_dataset_in_hub_layout_opens_by_split_offline(tmp_path):
    folder = write_hub_dataset(tmp_path / "hub", train=4, validation=3)
    queue = open_queue(folder, split="validation", root=tmp_path / "ann")
    assert [item.id for item in queue.items] == [f"validation/validation_{i}.png" for i in range(3)]
    assert [item.name for item in queue.items] == [f"validation_{i}" for i in range(3)]
    assert np.asarray(queue.open("validation/validation_2.png").image).shape == (30, 40, 3)
    assert len(open_queue(folder, root=tmp_path / "ann")) == 4, "train by default, a queue of its own"
    with pytest.raises(InputError, match="split 'test'"):
        open_source(folder, split="test")


def test_status_progress_and_stored_masks_survive_a_restart(queue, tmp_path):
    ids = [item.id for item in queue.items]
    assert progress_line(queue.progress()) == "0 / 5 corrected" and queue.counts()[TODO] == 5
    queue.set_prediction(ids[0], ids_for(1), confidence=0.9)
    queue.set_prediction(ids[1], ids_for(2), confidence=0.4)
    queue.save(ids[1], ids_for(5), "ann")
    queue.save(ids[2], ids_for(6), "ann")
    queue.mark_reviewed(ids[2], "rev")
    with pytest.raises(InputError, match="no corrected mask"):
        queue.mark_reviewed(ids[3], "rev")
    reopened = open_queue(tmp_path / "photos", root=tmp_path / "annotations")
    assert reopened.counts() == {TODO: 2, PREANNOTATED: 1, CORRECTED: 1, REVIEWED: 1}
    assert progress_line(reopened.progress()) == "2 / 5 corrected" and reopened.progress().fraction == 0.4
    first, second = reopened.open(ids[0]), reopened.open(ids[1])
    assert first.status == PREANNOTATED and first.confidence == 0.9 and first.corrected is None
    assert np.array_equal(first.mask, ids_for(1))
    assert np.array_equal(second.mask, ids_for(5)) and np.array_equal(second.predicted, ids_for(2))
    assert [item.id for item, _ in reopened.corrected_masks()] == ids[1:3]
    queue.set_prediction(ids[1], ids_for(3), confidence=0.1)
    assert queue.status(ids[1]) == CORRECTED, "a new prediction never undoes a correction"


def test_the_state_file_holds_codes_and_one_written_with_display_names_still_loads(queue, tmp_path):
    ids = [item.id for item in queue.items]
    queue.set_prediction(ids[0], ids_for(1), confidence=0.5)
    queue.save(ids[1], ids_for(2), "ann")
    state_path = queue.folder / "state.json"
    records = json.loads(state_path.read_text())["items"]
    assert {records[i]["status"] for i in ids} == {TODO, PREANNOTATED, CORRECTED}
    assert {TODO, PREANNOTATED} == {"todo", "preannotated"}, "codes, not the words the page shows"
    state = json.loads(state_path.read_text())
    for item_id, former in zip(ids, ("pre-annotated", "corrected", "to do", "to do", "to do")):
        state["items"][item_id]["status"] = former  # as the app wrote it before
    state_path.write_text(json.dumps(state))
    reopened = open_queue(tmp_path / "photos", root=tmp_path / "annotations")
    assert reopened.counts() == {TODO: 3, PREANNOTATED: 1, CORRECTED: 1, REVIEWED: 0}
    assert json.loads(state_path.read_text())["items"][ids[2]]["status"] == TODO
    assert counts_line(reopened.progress()) == "3 to do, 1 pre-annotated, 1 corrected"
    assert STATUS_NAMES[PREANNOTATED] == "pre-annotated"


def test_navigation_next_previous_unfinished_and_worst_first(queue):
    ids = [item.id for item in queue.items]
    assert queue.next_id() == ids[0] and queue.next_id(ids[1]) == ids[2] and queue.next_id(ids[4]) is None
    assert queue.previous_id(ids[1]) == ids[0] and queue.previous_id(ids[0]) is None
    assert queue.previous_id() == ids[4]
    for i in (0, 3, 4):
        queue.save(ids[i], ids_for(1), "ann")
    assert queue.next_id(ids[2], unfinished=True) == ids[1], "wraps around past the finished ones"
    assert queue.previous_id(ids[1], unfinished=True) == ids[2]
    for i, confidence in zip(range(3), (0.5, None, 0.2)):
        if confidence is not None:
            queue.set_prediction(ids[i], ids_for(0), confidence)
    assert queue.order(WORST_FIRST) == [ids[2], ids[0], ids[1], ids[3], ids[4]]
    assert queue.next_id(sort=WORST_FIRST, unfinished=True) == ids[2]
    with pytest.raises(ValueError, match="sort must be one of"):
        queue.order("best")


def test_a_claim_keeps_others_away_until_it_expires(queue):
    ids = [item.id for item in queue.items]
    claim = queue.claim(ids[0], "alice")
    assert claim.owner == "alice" and claim.expires == queue.clock() + 60
    with pytest.raises(ItemClaimed, match="being annotated by alice"):
        queue.claim(ids[0], "bob")
    assert queue.claim_next("bob").item.id == ids[1], "skips alice's item"
    with pytest.raises(ItemClaimed):
        queue.save(ids[0], ids_for(1), "bob")
    assert queue.claim_of(ids[0]).owner == "alice"
    queue.clock.now += 61
    assert queue.claim_of(ids[0]) is None
    assert queue.claim(ids[0], "bob").item.id == ids[0], "an expired claim is free"
    assert queue.claim_of(ids[1]) is None, "taking an item releases the owner's other claim"
    queue.release(ids[0], "alice")
    assert queue.claim_of(ids[0]).owner == "bob", "only the holder releases"
    queue.release(ids[0], "bob")
    assert queue.claim_of(ids[0]) is None
    assert queue.resume("carol").item.id == ids[0]
    queue.claim(ids[3], "dave")
    assert queue.resume("dave").item.id == ids[3], "resume returns the item still held"


def drain(queue: WorkQueue, owner: str, taken: list[str]) -> None:
    """Claim the next unfinished item and save it, until none is left."""
    while (claim := queue.claim_next(owner)) is not None:
        taken.append(claim.item.id)
        queue.save(claim.item.id, ids_for(len(taken) % 7), owner)


def test_concurrent_threads_never_get_the_same_item(tmp_path):
    photos = write_images(tmp_path / "photos", [f"f{i:02d}.png" for i in range(24)])
    shared = open_queue(photos, root=tmp_path / "ann")  # one object used by three threads, as a server's workers do
    queues = [shared] * 3 + [open_queue(photos, root=tmp_path / "ann") for _ in range(3)]
    taken: dict[str, list[str]] = {f"t{n}": [] for n in range(6)}
    threads = [threading.Thread(target=drain, args=(q, owner, taken[owner])) for q, owner in zip(queues, taken)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    everything = [item for items in taken.values() for item in items]
    assert sorted(everything) == sorted(item.id for item in queues[0].items), "each item taken exactly once"
    assert queues[0].counts()[CORRECTED] == 24


def work(photos: Path, root: Path, owner: str, go: Path, delay: float, log: Path) -> None:
    """A separate annotator process: say it is ready, wait for `go`, then claim, log and save items until none left."""
    queue = open_queue(photos, root=root)
    log.with_suffix(".ready").touch()
    while not go.exists():
        time.sleep(0.005)
    with open(log, "w") as f:
        while (claim := queue.claim_next(owner)) is not None:
            f.write(claim.item.id + "\n")
            f.flush()
            time.sleep(delay)
            queue.save(claim.item.id, ids_for(1), owner)


def start_worker(tmp_path: Path, owner: str, delay: float) -> multiprocessing.Process:
    """A forked process (real, separate file handles and locks; forking skips re-importing torch)."""
    process = multiprocessing.get_context("fork").Process(
        target=work, args=(tmp_path / "photos", tmp_path / "ann", owner, tmp_path / "go", delay,
                           tmp_path / f"{owner}.log"))
    process.start()
    return process


@pytest.mark.slow
def test_concurrent_processes_never_get_the_same_item(tmp_path):
    write_images(tmp_path / "photos", [f"f{i:02d}.png" for i in range(40)])
    workers = [start_worker(tmp_path, f"p{n}", 0.02) for n in range(4)]  # 20 ms of work an item: all four take part
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"p{n}.ready").exists() for n in range(4)) and time.monotonic() < deadline:
        time.sleep(0.01)
    (tmp_path / "go").touch()
    for worker in workers:
        worker.join(timeout=300)
    assert all(worker.exitcode == 0 for worker in workers)
    logs = [(tmp_path / f"p{n}.log").read_text().split() for n in range(4)]
    assert sorted(item for log in logs for item in log) == [f"f{i:02d}.png" for i in range(40)], \
        "each item taken exactly once"
    assert sum(1 for log in logs if log) > 1, "the work was shared"
    assert open_queue(tmp_path / "photos", root=tmp_path / "ann").counts()[CORRECTED] == 40


@pytest.mark.slow
def test_a_killed_annotator_loses_no_saved_mask_and_resumes(tmp_path):
    write_images(tmp_path / "photos", [f"f{i:02d}.png" for i in range(40)])
    (tmp_path / "go").touch()
    queue = open_queue(tmp_path / "photos", root=tmp_path / "ann")
    worker = start_worker(tmp_path, "kim", 0.01)
    deadline = time.monotonic() + 120
    while len(list((queue.folder / "masks").glob("*.png"))) < 5 and time.monotonic() < deadline:
        time.sleep(0.005)
    worker.kill()
    worker.join(timeout=30)
    assert worker.exitcode == -signal.SIGKILL
    reopened = open_queue(tmp_path / "photos", root=tmp_path / "ann")
    saved = sorted(path.name for path in (reopened.folder / "masks").glob("*.png"))
    assert 5 <= len(saved) < 40
    assert reopened.counts()[CORRECTED] == len(saved)
    assert sorted(reopened.mask_path(i).name for i, s in reopened.statuses().items() if s == CORRECTED) == saved
    resumed = reopened.resume("kim")
    assert resumed.item.id == reopened.next_id(unfinished=True), "kim resumes at the first unfinished item"
    json.loads((reopened.folder / "state.json").read_text())


def test_files_written_before_a_kill_are_reconciled(queue, tmp_path):
    ids = [item.id for item in queue.items]
    queue.set_prediction(ids[0], ids_for(1), confidence=0.25)
    state_path = queue.folder / "state.json"
    state = json.loads(state_path.read_text())
    state["items"] = {}  # as if killed after the files were renamed into place but before the state was
    state_path.write_text(json.dumps(state))
    queue.mask_path(ids[1]).parent.mkdir(parents=True, exist_ok=True)
    PIL.Image.fromarray(ids_for(4)).save(queue.mask_path(ids[1]))
    reopened = open_queue(tmp_path / "photos", root=tmp_path / "annotations")
    assert reopened.status(ids[0]) == PREANNOTATED and reopened.confidence(ids[0]) == 0.25
    assert reopened.status(ids[1]) == CORRECTED
    state_path.write_text("{broken")
    with pytest.raises(UserError, match="is damaged"):
        reopened.counts()


def test_preannotate_stores_predictions_once_and_reports_progress(queue):
    seen = []

    def predict(image):
        seen.append(image.size)
        return np.full((image.height, image.width), 2, np.uint8), 0.5 + len(seen) / 10

    progress = []
    assert queue.preannotate(predict, progress=lambda done, total, item: progress.append((done, total))) == 5
    assert progress[-1] == (5, 5) and seen == [SIZE] * 5
    assert queue.counts()[PREANNOTATED] == 5 and queue.confidence(queue.items[4].id) == 1.0
    assert queue.preannotate(predict) == 0, "nothing left to pre-annotate"
    assert queue.preannotate(predict, overwrite=True, should_stop=lambda: len(seen) >= 7) == 2
    with pytest.raises(InputError, match="same size"):
        queue.preannotate(lambda image: np.zeros((3, 3), np.uint8), overwrite=True)


@pytest.mark.usefixtures("datasets_cache")
def test_bad_requests_get_a_sentence(queue, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no images"):
        open_queue(tmp_path / "empty", root=tmp_path / "ann")
    with pytest.raises(InputError, match="There is no folder"):
        open_source(str(tmp_path / "missing" / "deeper" / "x"))
    with pytest.raises(InputError, match="no item"):
        queue.open("nope.png")
    with pytest.raises(InputError, match="your name"):
        queue.claim(queue.items[0].id, "  ")
    with pytest.raises(InputError, match="12x10"):
        queue.save(queue.items[0].id, np.zeros((4, 4), np.uint8), "ann")


def test_preannotate_cli_predicts_every_item_once_and_the_queue_sees_it(tmp_path, capsys):
    from app import preannotate
    from tests.conftest import tiny_pipeline

    tiny_pipeline().save_pretrained(tmp_path / "model")
    write_images(tmp_path / "frames", ["a.png", "b.png", "c.png"])
    argv = [str(tmp_path / "frames"), "--model", str(tmp_path / "model"), "--annotations", str(tmp_path / "notes")]
    assert preannotate.main(argv) == 0
    out = capsys.readouterr().out
    assert "[3/3]" in out and "pre-annotated 3 item(s)" in out and "0 / 3 corrected" in out
    queue = open_queue(tmp_path / "frames", root=tmp_path / "notes")
    assert set(queue.statuses().values()) == {PREANNOTATED}
    assert all(0.0 <= queue.confidence(item.id) <= 1.0 for item in queue.items)
    assert queue.open(queue.items[0].id).mask.shape == (SIZE[1], SIZE[0])
    assert preannotate.main(argv) == 0 and "pre-annotated 0 item(s)" in capsys.readouterr().out
    assert preannotate.main([str(tmp_path / "nowhere")]) == 2
    assert "There is no folder" in capsys.readouterr().err
