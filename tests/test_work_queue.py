"""The work queue: sources, stable names, status and progress, navigation, claims and leases under concurrent clients,
resume, review (submit, accept, correct, reject), history (every save a version, restore), items that cannot be read,
the per-annotator table, and operations whose statements do not depend on the queue's length."""

import functools
import multiprocessing
import signal
import threading
import time
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import sqlalchemy as sa

from app.errors import InputError
from app.queue_sources import open_source
from app.queue_words import STATUS_NAMES, counts_line, progress_line
from app.work_queue import (
    ACCEPTED,
    CORRECTED,
    PREANNOTATED,
    REJECTED,
    SUBMITTED,
    TODO,
    VANISHED,
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
    assert (tmp_path / "ann" / "annotations.db").is_file(), "the database lives in the annotation folder"
    write_images(photos, ["a.jpg", "0.png"], seed=1)
    again = open_queue(photos, root=tmp_path / "ann")
    names = {item.id: item.name for item in again.items}
    assert names["a.png"] == "a" and names["a.jpg"] == "a_jpg" and names["0.png"] == "0", "old names stay"
    assert again.status("city/x.png") == CORRECTED and [item.name for item, _ in again.corrected_masks()] == ["city/x"]
    assert [item.index for item in again.items] == list(range(8)) and again.next_id() == "0.png", "new positions"


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
    queue.set_prediction(ids[0], ids_for(1), confidence=0.9, model="tiny@1")
    queue.set_prediction(ids[1], ids_for(2), confidence=0.4)
    queue.save(ids[1], ids_for(5), "ann")
    queue.save(ids[2], ids_for(6), "ann")
    queue.submit(ids[2], "ann")
    queue.accept(ids[2], "rev")
    with pytest.raises(InputError, match="has no saved mask to submit"):
        queue.submit(ids[3], "ann")
    with pytest.raises(InputError, match="Only a saved or submitted item can be accepted"):
        queue.accept(ids[3], "rev")
    reopened = open_queue(tmp_path / "photos", root=tmp_path / "annotations")
    assert reopened.counts() == {TODO: 2, PREANNOTATED: 1, CORRECTED: 1, SUBMITTED: 0, ACCEPTED: 1, REJECTED: 0}
    assert reopened.counts() == {s: list(reopened.statuses().values()).count(s) for s in reopened.counts()}
    assert progress_line(reopened.progress()) == "2 / 5 corrected" and reopened.progress().fraction == 0.4
    first, second = reopened.open(ids[0]), reopened.open(ids[1])
    assert first.status == PREANNOTATED and first.confidence == 0.9 and first.corrected is None
    assert first.prediction_model == "tiny@1" and np.array_equal(first.mask, ids_for(1))
    assert np.array_equal(second.mask, ids_for(5)) and np.array_equal(second.predicted, ids_for(2))
    assert second.version == 1
    assert [item.id for item, _ in reopened.corrected_masks()] == ids[1:3]
    assert [item.id for item, _ in reopened.masks()] == [ids[2]], "exports take accepted items by default"
    queue.set_prediction(ids[1], ids_for(3), confidence=0.1)
    assert queue.status(ids[1]) == CORRECTED, "a new prediction never undoes a correction"
    assert counts_line(reopened.progress()) == "2 to do, 1 pre-annotated, 1 corrected, 1 accepted"


def test_navigation_next_previous_unfinished_and_worst_first(queue):
    ids = [item.id for item in queue.items]
    assert queue.next_id() == ids[0] and queue.next_id(ids[1]) == ids[2] and queue.next_id(ids[4]) is None
    assert queue.previous_id(ids[1]) == ids[0] and queue.previous_id(ids[0]) is None
    assert queue.previous_id() == ids[4]
    for i in (0, 3, 4):
        queue.save(ids[i], ids_for(1), "ann")
    assert queue.next_id(ids[2], unfinished=True) == ids[1], "wraps around past the finished ones"
    assert queue.previous_id(ids[1], unfinished=True) == ids[2]
    assert queue.next_id(ids[4], wrap=True) == ids[0]
    for i, confidence in zip(range(3), (0.5, None, 0.2)):
        if confidence is not None:
            queue.set_prediction(ids[i], ids_for(0), confidence)
    assert queue.order(WORST_FIRST) == [ids[2], ids[0], ids[1], ids[3], ids[4]]
    assert queue.next_id(sort=WORST_FIRST, unfinished=True) == ids[2]
    assert queue.next_id(ids[2], sort=WORST_FIRST, unfinished=True) == ids[1], "finished ones skipped"
    assert queue.next_id(status=CORRECTED) == ids[0] and queue.next_id(ids[0], status=CORRECTED) == ids[3]
    assert queue.previous_id(sort=WORST_FIRST, status=CORRECTED) == ids[4]
    with pytest.raises(ValueError, match="sort must be one of"):
        queue.order("best")


def test_a_claim_keeps_others_away_until_it_lapses_and_an_open_tab_renews_it(queue):
    ids = [item.id for item in queue.items]
    claim = queue.claim(ids[0], "a" * 32, "alice")
    assert claim.owner == "a" * 32 and claim.expires == queue.clock() + 60 and claim.who == "alice"
    with pytest.raises(ItemClaimed) as refused:
        queue.claim(ids[0], "bob")
    assert str(refused.value).startswith(f"The item {queue.items[0].name} is being annotated by alice now")
    assert "a" * 32 not in str(refused.value), "the other person by their name, never their key"
    assert queue.claim_next("bob").item.id == ids[1], "skips alice's item"
    with pytest.raises(ItemClaimed):
        queue.save(ids[0], ids_for(1), "bob")
    queue.clock.now += 50
    assert queue.renew(ids[0], "a" * 32).expires == queue.clock() + 60, "an open tab renews the lease"
    assert queue.renew(ids[0], "bob") is None, "only the holder renews"
    queue.clock.now += 50
    assert queue.claim_of(ids[0]).owner == "a" * 32, "renewed, it outlived its first lease"
    queue.clock.now += 11
    assert queue.claim_of(ids[0]) is None, "a lease lapses when nothing renews it (a closed tab)"
    assert queue.renew(ids[0], "a" * 32) is None
    assert queue.claim(ids[0], "bob").item.id == ids[0], "a lapsed claim is free"
    assert queue.claim_of(ids[1]) is None, "taking an item releases the owner's other claim"
    assert not queue.release(ids[0], "alice") and queue.claim_of(ids[0]).owner == "bob", "only the holder releases"
    assert queue.release(ids[0], "rita", anyone=True) and queue.claim_of(ids[0]) is None, "a reviewer releases any"
    queue.claim(ids[0], "bob")
    assert queue.resume("carol").item.id == ids[1]
    queue.claim(ids[3], "dave")
    assert queue.resume("dave").item.id == ids[3], "resume returns the item still held"
    assert [(c.item.id, c.owner) for c in queue.claims()] == [(ids[0], "bob"), (ids[1], "carol"), (ids[3], "dave")]
    assert queue.claim_next("erin", current=ids[1], unfinished=False, wrap=True).item.id == ids[2]


def test_review_accept_correct_reject_and_the_rejected_item_goes_back_to_its_annotator(queue):
    ids = [item.id for item in queue.items]
    queue.set_prediction(ids[0], ids_for(1), 0.5, model="tiny@1")
    queue.claim(ids[0], "k-ana", "ana")
    queue.save(ids[0], ids_for(2), "k-ana", "ana", started_from="tiny@1", seconds=12.5)
    queue.submit(ids[0], "k-ana", "ana")
    assert queue.status(ids[0]) == SUBMITTED and queue.claim_of(ids[0]) is None, "submitting lets reviewers in"
    with pytest.raises(InputError, match="already submitted"):
        queue.submit(ids[0], "k-ana")
    assert queue.next_id(status=SUBMITTED) == ids[0], "the reviewer's filter"
    assert queue.claim_next("k-rita", unfinished=False, status=SUBMITTED, name="rita").item.id == ids[0]
    with pytest.raises(InputError, match="needs a comment"):
        queue.reject(ids[0], "k-rita", "  ", "rita")
    queue.reject(ids[0], "k-rita", "The car is a bus.", "rita")
    opened = queue.open(ids[0])
    assert opened.status == REJECTED and opened.comment == "The car is a bus." and opened.annotator_name == "ana"
    queue.release(ids[0], "k-rita")
    assert queue.claim_next("k-ben", name="ben").item.id == ids[1], "another annotator is not given ana's item"
    assert queue.resume("k-ana", name="ana").item.id == ids[0], "back to its annotator"
    with pytest.raises(InputError, match="since it was rejected"):
        queue.submit(ids[0], "k-ana")
    queue.save(ids[0], ids_for(3), "k-ana", "ana", started_from="version 1", seconds=7.5)
    queue.submit(ids[0], "k-ana", "ana")
    queue.accept(ids[0], "k-rita", "rita")
    assert queue.status(ids[0]) == ACCEPTED and queue.open(ids[0]).comment is None
    # ben's item: the reviewer corrects a quarter of it, which is a new version, accepted
    queue.claim(ids[1], "k-ben", "ben")
    queue.save(ids[1], ids_for(4), "k-ben", "ben", seconds=30)
    queue.save(ids[1], ids_for(4), "k-ben", "ben", seconds=10)
    queue.submit(ids[1], "k-ben", "ben")
    fixed = ids_for(4)
    fixed[:, : SIZE[0] // 4] = 5
    queue.save(ids[1], fixed, "k-rita", "rita", review=True)
    assert queue.status(ids[1]) == ACCEPTED and np.array_equal(queue.open(ids[1]).corrected, fixed)
    decisions = [(r.decision, r.version, r.reviewer_name, r.annotator_name) for r in queue.reviews(ids[0])]
    assert decisions == [("reject", 1, "rita", "ana"), ("accept", 2, "rita", "ana")]
    (correction,) = queue.reviews(ids[1])
    assert correction.decision == "correct" and correction.agreement == pytest.approx(0.75, abs=0.01)
    table = {row.name: row for row in queue.annotators()}
    assert set(table) == {"ana", "ben"}, "the reviewer's correction is not annotator work"
    assert (table["ana"].done, table["ana"].rejected, table["ana"].median_seconds) == (1, 1, 20.0)
    assert table["ana"].agreement == 1.0 and table["ben"].agreement == pytest.approx(0.75, abs=0.01)
    assert table["ben"].median_seconds == 40.0, "seconds per item: the item's saves together"
    assert [item.id for item, _ in queue.masks()] == ids[:2]


def test_every_save_is_a_version_with_who_when_what_and_how_long_and_restoring_adds_one(queue):
    item = queue.items[0].id
    queue.set_prediction(item, ids_for(1), 0.4, model="symmetric-camvid@abc")
    first = queue.save(item, ids_for(2), "k1", "ana", started_from="symmetric-camvid@abc", seconds=31.0)
    queue.clock.now += 5
    queue.save(item, ids_for(3), "k1", "ana", started_from="version 1", seconds=4.0)
    restored = queue.restore(item, 1, "k2", "ben")
    history = queue.history(item)
    assert [(v.number, v.who, v.kind, v.started_from, v.seconds) for v in history] == [
        (1, "ana", "save", "symmetric-camvid@abc", 31.0), (2, "ana", "save", "version 1", 4.0),
        (3, "ben", "restore", "version 1", None)]
    assert history[0].created_at == first.created_at == 1_000_000.0 and history[1].created_at == 1_000_005.0
    assert restored.number == 3 and restored.note == "restored version 1"
    assert [int(queue.version_mask(item, n)[0, 0]) for n in (1, 2, 3)] == [2, 3, 2], "nothing is overwritten"
    assert np.array_equal(queue.open(item).corrected, ids_for(2)) and queue.open(item).version == 3
    with pytest.raises(InputError, match="has no version 9"):
        queue.version_mask(item, 9)
    with pytest.raises(InputError, match="by its number"):
        queue.restore(item, "latest", "k1")


def test_an_unreadable_or_vanished_item_is_marked_skipped_listed_and_back_once_repaired(tmp_path):
    photos = write_images(tmp_path / "photos", ["frame1.png", "frame2.png", "gone.png"])
    (photos / "fake.png").write_bytes(b"not a png at all")
    queue = open_queue(photos, root=tmp_path / "ann")
    assert [item.name for item in queue.items] == ["fake", "frame1", "frame2", "gone"]
    claim = queue.claim_next("ann")
    assert claim.item.name == "fake", "nothing is known about it before it is read"
    with pytest.raises(InputError, match="The item fake cannot be opened: The image fake is not a readable image"):
        queue.open(claim.item.id)
    assert queue.problem("fake.png").startswith("The image fake is not a readable image")
    assert queue.claim_next("ann").item.name == "frame1", "skipped from then on"
    assert queue.next_id(unfinished=True) == "frame1.png" and queue.previous_id("frame1.png", wrap=True) == "gone.png"
    seen = []
    assert queue.preannotate(lambda image: (seen.append(1), np.zeros((image.height, image.width), np.uint8))[1]) == 3
    assert queue.status("fake.png") == TODO and len(seen) == 3
    progress = queue.progress()
    assert progress.problems == 1 and progress.problem_items[0][0] == "fake"
    assert "1 to do, 3 pre-annotated, 1 skipped: fake (The image fake is not a readable" in counts_line(progress)
    for i in (1, 2):
        queue.save(f"frame{i}.png", ids_for(1), "ann")
    (photos / "gone.png").unlink()
    reopened = open_queue(photos, root=tmp_path / "ann")
    assert {item.id: why for item, why in reopened.problems()}["gone.png"] == VANISHED
    assert reopened.progress().problems == 2
    assert reopened.next_id(unfinished=True) is None, "nothing left to do but the skipped items"
    write_images(photos, ["fake.png", "gone.png"], seed=3)
    repaired = open_queue(photos, root=tmp_path / "ann")
    assert repaired.problem("fake.png") is None and repaired.problem("gone.png") is None
    assert repaired.progress().problems == 0 and repaired.next_id(unfinished=True) == "fake.png"


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
            f.write(f"saved {claim.item.id}\n")
            f.flush()


def start_worker(tmp_path: Path, owner: str, delay: float) -> multiprocessing.Process:
    """A forked process (real, separate connections and locks; forking skips re-importing torch)."""
    process = multiprocessing.get_context("fork").Process(
        target=work, args=(tmp_path / "photos", tmp_path / "ann", owner, tmp_path / "go", delay,
                           tmp_path / f"{owner}.log"))
    process.start()
    return process


@pytest.mark.slow
def test_concurrent_processes_never_get_the_same_item(tmp_path):
    write_images(tmp_path / "photos", [f"f{i:02d}.png" for i in range(40)])
    open_queue(tmp_path / "photos", root=tmp_path / "ann")  # the database made before the workers fork
    workers = [start_worker(tmp_path, f"p{n}", 0.02) for n in range(4)]  # 20 ms of work an item: all four take part
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"p{n}.ready").exists() for n in range(4)) and time.monotonic() < deadline:
        time.sleep(0.01)
    (tmp_path / "go").touch()
    for worker in workers:
        worker.join(timeout=300)
    assert all(worker.exitcode == 0 for worker in workers)
    logs = [[line for line in (tmp_path / f"p{n}.log").read_text().splitlines() if not line.startswith("saved")]
            for n in range(4)]
    assert sorted(item for log in logs for item in log) == [f"f{i:02d}.png" for i in range(40)], \
        "each item taken exactly once"
    assert sum(1 for log in logs if log) > 1, "the work was shared"
    assert open_queue(tmp_path / "photos", root=tmp_path / "ann").counts()[CORRECTED] == 40


@pytest.mark.slow
def test_a_killed_annotator_loses_no_acknowledged_save_and_resumes(tmp_path):
    write_images(tmp_path / "photos", [f"f{i:02d}.png" for i in range(40)])
    (tmp_path / "go").touch()
    open_queue(tmp_path / "photos", root=tmp_path / "ann")  # the database made before the worker forks
    worker = start_worker(tmp_path, "kim", 0.01)
    log = tmp_path / "kim.log"
    deadline = time.monotonic() + 120
    while (not log.exists() or log.read_text().count("saved") < 5) and time.monotonic() < deadline:
        time.sleep(0.005)
    worker.kill()
    worker.join(timeout=30)
    assert worker.exitcode == -signal.SIGKILL
    acknowledged = {line.split()[1] for line in log.read_text().splitlines() if line.startswith("saved ")}
    reopened = open_queue(tmp_path / "photos", root=tmp_path / "ann")
    corrected = {i for i, s in reopened.statuses().items() if s == CORRECTED}
    assert 5 <= len(acknowledged) and acknowledged <= corrected and len(corrected) < 40
    assert reopened.counts()[CORRECTED] == len(corrected), "the counts agree with the items"
    assert all(len(reopened.history(i)) == 1 for i in corrected)
    resumed = reopened.resume("kim")
    assert resumed.item.id in {reopened.next_id(unfinished=True)} | {c.item.id for c in reopened.claims()}


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
    assert queue.predicted() == {item.id for item in queue.items}
    assert queue.predicted([queue.items[0].id]) == {queue.items[0].id}


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
    with pytest.raises(InputError, match="finite number"):
        queue.set_prediction(queue.items[0].id, ids_for(0), float("nan"))


def statements(queue: WorkQueue, action) -> list[str]:
    """The SQL statements `action` sends to the queue's database."""
    sent: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        sent.append(statement)

    sa.event.listen(queue.db.engine, "before_cursor_execute", record)
    try:
        action()
    finally:
        sa.event.remove(queue.db.engine, "before_cursor_execute", record)
    return sent


def test_save_claim_next_and_progress_touch_only_their_own_rows(tmp_path):
    """The same statements at 20 and 400 items, and SQLite reads each through an index (no scan of a whole table)."""
    plans = {}
    for count in (20, 400):
        photos = write_images(tmp_path / f"photos{count}", [f"f{i:03d}.png" for i in range(count)])
        queue = open_queue(photos, root=tmp_path / f"ann{count}")
        queue.set_predictions([(item.id, ids_for(1), (i * 37 % count) / count, SIZE)
                               for i, item in enumerate(queue.items)])
        for item in queue.items[: count // 2]:
            queue.save(item.id, ids_for(2), "other")
        middle = queue.items[count // 2].id
        actions = [lambda q, m: q.claim_next("ann", current=m, sort=WORST_FIRST), lambda q, m: q.claim(m, "ann"),
                   lambda q, m: q.save(m, ids_for(3), "ann", seconds=1.0),
                   lambda q, m: q.next_id(m, unfinished=True), lambda q, m: q.progress()]
        sent = [statement for action in actions
                for statement in statements(queue, functools.partial(action, queue, middle))]
        plans[count] = sent
        with queue.db.engine.connect() as connection:
            for statement in set(sent):
                if statement.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE")):
                    plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}",
                                                      tuple([0] * statement.count("?"))).fetchall()
                    scans = [row[-1] for row in plan if row[-1].startswith("SCAN") and "USING" not in row[-1]]
                    assert not scans, f"{statement}: {scans}"
    assert plans[20] == plans[400], "the statements do not depend on the queue's length"


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
    opened = queue.open(queue.items[0].id)
    assert opened.mask.shape == (SIZE[1], SIZE[0]) and opened.prediction_model.startswith("model")
    assert preannotate.main(argv) == 0 and "pre-annotated 0 item(s)" in capsys.readouterr().out
    assert preannotate.main([str(tmp_path / "nowhere")]) == 2
    assert "There is no folder" in capsys.readouterr().err
    assert STATUS_NAMES[PREANNOTATED] == "pre-annotated"
