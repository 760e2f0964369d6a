"""Pre-annotation in batches and sharded over processes (`accelerate launch --multi_gpu --num_processes 2 -m
app.preannotate` on this CPU-only machine): every item predicted once, the same masks as one process, a killed run
resumed."""

from __future__ import annotations

import contextlib
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import PIL.Image
import psutil
import pytest
from launch_helpers import accelerate_launch, launch_command

from app import preannotate
from app.errors import InputError
from app.work_queue import PREANNOTATED, open_queue
from tests.conftest import tiny_pipeline

PROGRESS = re.compile(r"^(?:\[process (\d)/(\d)\] )?\[\d+/\d+\] (\S+)  \(", re.M)
FINAL = re.compile(r"^(?:\[process (\d)/\d\] )?pre-annotated (\d+) item\(s\) with ", re.M)


def write_frames(folder: Path, count: int, seed: int = 0, size: tuple[int, int] = (40, 30)) -> Path:
    """`count` noise photos of `size`, in sizes that vary by one pixel so no two batches look alike."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for i in range(count):
        shape = (size[1] + i % 3, size[0] + i % 2, 3)
        PIL.Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(folder / f"frame{i:03d}.png")
    return folder


def predictions(frames: Path, annotations: Path) -> dict[str, tuple[np.ndarray, float]]:
    """The stored pre-annotation and confidence of every item that has one, by name."""
    queue = open_queue(frames, root=annotations)
    stored = queue.predicted()
    return {item.name: (queue.open(item.id).predicted, queue.confidence(item.id))
            for item in queue.items if item.id in stored}


def test_a_batch_predicts_what_single_images_do():
    pipe = tiny_pipeline()
    rng = np.random.default_rng(1)
    images = [PIL.Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for h, w in
              ((30, 40), (17, 23), (64, 48))]
    batched = preannotate.predict_batch(pipe, images)
    alone = [preannotate.predictor(pipe)(image) for image in images]
    assert [ids.shape for ids, _ in batched] == [(30, 40), (17, 23), (64, 48)]
    for (ids, confidence), (ids_alone, confidence_alone) in zip(batched, alone):
        np.testing.assert_array_equal(ids, ids_alone)
        assert confidence == pytest.approx(confidence_alone, abs=1e-6) and 0.0 <= confidence <= 1.0
    assert len({ids.tobytes() for ids, _ in batched}) == 3, "each photo gets its own mask"


def test_batch_pre_annotation_decodes_each_photo_with_its_mirror_unless_told_not_to(tmp_path, monkeypatch):
    tiny_pipeline().save_pretrained(tmp_path / "model")
    frames = write_frames(tmp_path / "frames", 2)
    asked = []
    pipe = tiny_pipeline()
    segment = type(pipe).segment

    def recording(self, images, **kwargs):
        asked.append(kwargs.get("flip"))
        return segment(self, images, **kwargs)

    monkeypatch.setattr(type(pipe), "segment", recording)
    argv = [str(frames), "--model", str(tmp_path / "model"), "--annotations", str(tmp_path / "notes")]
    assert preannotate.main(argv) == 0 and set(asked) == {True}
    asked.clear()
    assert preannotate.main([*argv, "--overwrite", "--no-flip"]) == 0 and set(asked) == {False}
    image = PIL.Image.fromarray(np.random.default_rng(2).integers(0, 256, (30, 40, 3), dtype=np.uint8))
    [(flipped, _)], [(plain, _)] = preannotate.predict_batch(pipe, [image]), preannotate.predict_batch(pipe, [image],
                                                                                                       False)
    np.testing.assert_array_equal(flipped, segment(pipe, image, flip=True).ids[0])
    np.testing.assert_array_equal(plain, segment(pipe, image).ids[0])
    assert (flipped != plain).any(), "the mirror's mask end changes the decoding here"


def test_batches_store_every_item_once_and_an_unreadable_image_is_skipped(tmp_path, capsys):
    tiny_pipeline().save_pretrained(tmp_path / "model")
    frames = write_frames(tmp_path / "frames", 5)
    (frames / "frame002b.png").write_bytes(b"not a png at all")
    argv = [str(frames), "--model", str(tmp_path / "model"), "--annotations", str(tmp_path / "notes"),
            "--batch-size", "2"]
    assert preannotate.main(argv) == 1, "a skipped image makes the exit status 1"
    out, err = capsys.readouterr()
    assert re.search(r"skipped frame002b: .*frame002b", err), err
    assert FINAL.search(out).group(2) == "5" and "0 / 6 corrected" in out
    assert sorted(name for _, _, name in PROGRESS.findall(out)) == [f"frame{i:03d}" for i in range(5)]
    assert re.search(r"^5 item\(s\) in [\d.]+ s over 1 process\(es\), batch 2: [\d.]+ frames per second$", out, re.M)
    assert sorted(predictions(frames, tmp_path / "notes")) == [f"frame{i:03d}" for i in range(5)]
    assert preannotate.main(argv) == 1, "the unreadable image is still there"
    out, err = capsys.readouterr()
    assert "pre-annotated 0 item(s)" in out and "frame002b" in err, "listed again, not read again"
    with pytest.raises(SystemExit):
        preannotate.main([*argv, "--batch-size", "0"])
    assert "must be a positive whole number, got 0" in capsys.readouterr().err


def test_an_item_stored_since_the_listing_is_not_predicted_again(tmp_path, monkeypatch, capsys):
    """The app's "Pre-annotate all" (or a second launch) stored an item while this run was on its first batch."""
    tiny_pipeline().save_pretrained(tmp_path / "model")
    frames = write_frames(tmp_path / "frames", 4)
    notes = tmp_path / "notes"
    predicted = []
    real = preannotate.predict_batch

    def predict_batch(pipe, images, flip):
        if not predicted:  # meanwhile, someone else pre-annotates the last frame
            queue = open_queue(frames, root=notes)
            width, height = queue.source.image(queue.items[-1]).size
            queue.set_prediction(queue.items[-1].id, np.zeros((height, width), np.uint8), 0.25)
        predicted.extend(image.size for image in images)
        return real(pipe, images, flip)

    monkeypatch.setattr(preannotate, "predict_batch", predict_batch)
    argv = [str(frames), "--model", str(tmp_path / "model"), "--annotations", str(notes), "--batch-size", "2"]
    assert preannotate.main(argv) == 0
    assert FINAL.search(capsys.readouterr().out).group(2) == "3" and len(predicted) == 3
    stored = predictions(frames, notes)
    assert stored["frame003"][1] == 0.25 and not stored["frame003"][0].any(), "the other writer's mask is kept"


def test_a_batch_of_predictions_is_one_transaction(tmp_path, monkeypatch):
    frames = write_frames(tmp_path / "frames", 5)
    queue = open_queue(frames, root=tmp_path / "notes")
    sizes = [queue.source.image(item).size for item in queue.items]
    batch = [(item.id, np.full((h, w), i, np.uint8), 0.1 * i, (w, h))
             for i, (item, (w, h)) in enumerate(zip(queue.items[:4], sizes))]
    bad = (queue.items[4].id, np.zeros((3, 3), np.uint8), 0.5, sizes[4])
    with pytest.raises(InputError, match="same size"):
        queue.set_predictions([*batch, bad])
    assert predictions(frames, tmp_path / "notes") == {}, "a bad mask in a batch stores nothing"
    real_count = queue._count

    def fails_midway(session, changes):
        raise OSError(5, "Input/output error")  # after the predictions' rows, before the statuses' counts

    monkeypatch.setattr(queue, "_count", fails_midway)
    with pytest.raises(OSError):
        queue.set_predictions(batch)
    assert predictions(frames, tmp_path / "notes") == {}, "a batch that failed midway stores nothing"
    monkeypatch.setattr(queue, "_count", real_count)
    queue.set_predictions(batch)
    stored = predictions(frames, tmp_path / "notes")
    assert sorted(stored) == [item.name for item in queue.items[:4]]
    assert all((stored[item.name][0] == i).all() and stored[item.name][1] == pytest.approx(0.1 * i)
               for i, item in enumerate(queue.items[:4]))
    assert open_queue(frames, root=tmp_path / "notes").counts()[PREANNOTATED] == 4


def test_a_full_disk_stops_the_run_with_a_sentence_and_keeps_what_is_stored(tmp_path, monkeypatch, capsys):
    from store_faults import fill_sqlite

    from app.store.database import close_databases, database_url, open_database

    tiny_pipeline().save_pretrained(tmp_path / "model")
    frames = write_frames(tmp_path / "frames", 4, size=(480, 360))  # predictions of several pages each
    real = preannotate.predict_batch
    calls = []

    def predict_batch(pipe, images, flip):
        calls.append(len(images))
        if len(calls) == 2:  # the disk fills up after the first batch
            fill_sqlite(open_database(database_url(tmp_path / "notes")))
        return real(pipe, images, flip)

    monkeypatch.setattr(preannotate, "predict_batch", predict_batch)
    argv = [str(frames), "--model", str(tmp_path / "model"), "--annotations", str(tmp_path / "notes"),
            "--batch-size", "2"]
    assert preannotate.main(argv) == 2
    err = capsys.readouterr().err
    assert "no space left on the disk" in err and "Earlier annotations are safe" in err and "Traceback" not in err
    close_databases()  # the disk has room again
    monkeypatch.setattr(preannotate, "predict_batch", real)
    assert sorted(predictions(frames, tmp_path / "notes")) == ["frame000", "frame001"], "the first batch stays"
    assert preannotate.main(argv) == 0 and FINAL.search(capsys.readouterr().out).group(2) == "2"


def test_bad_source_or_model_gets_a_sentence(tmp_path, capsys):
    write_frames(tmp_path / "frames", 1)
    assert preannotate.main([str(tmp_path / "nowhere")]) == 2
    assert "There is no folder" in capsys.readouterr().err
    assert preannotate.main([str(tmp_path / "frames"), "--model", str(tmp_path / "no-model"),
                             "--annotations", str(tmp_path / "notes")]) == 2
    assert "error: could not load the model" in capsys.readouterr().err


class RecordingState:
    """One process's `PartialState` that records whether its process group was left."""

    device, num_processes, process_index, is_main_process = "cpu", 1, 0, True
    destroyed = False

    def wait_for_everyone(self):
        pass

    def split_between_processes(self, items):
        return contextlib.nullcontext(items)

    def destroy_process_group(self):
        self.destroyed = True


def test_every_exit_leaves_the_process_group(tmp_path, monkeypatch, capsys):
    """A gloo group left to the interpreter's exit aborts a worker now and then (SIGABRT after the work is done):
    the run leaves it on success, on an error status and on an exception."""
    tiny_pipeline().save_pretrained(tmp_path / "model")
    frames = write_frames(tmp_path / "frames", 2)
    argv = [str(frames), "--model", str(tmp_path / "model"), "--annotations", str(tmp_path / "notes")]
    states = []
    monkeypatch.setattr(preannotate, "process_state", lambda: states.append(RecordingState()) or states[-1])
    assert preannotate.main(argv) == 0
    assert preannotate.main([str(tmp_path / "nowhere")]) == 2
    monkeypatch.setattr(preannotate, "predict_batch", lambda pipe, images, flip: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        preannotate.main([*argv, "--overwrite"])
    capsys.readouterr()
    assert [state.destroyed for state in states] == [True, True, True]


@pytest.mark.slow  # two processes through torchrun
def test_two_processes_predict_every_item_once_and_equal_one_process(tmp_path, capsys):
    tiny_pipeline().save_pretrained(tmp_path / "model")
    frames = write_frames(tmp_path / "frames", 9)
    common = [str(frames), "--model", str(tmp_path / "model"), "--batch-size", "2"]
    assert preannotate.main([*common, "--annotations", str(tmp_path / "one")]) == 0
    one = predictions(frames, tmp_path / "one")
    run = accelerate_launch(2, "app.preannotate", *common, "--annotations", str(tmp_path / "two"))
    assert run.returncode == 0, run.stderr[-3000:]
    progress = PROGRESS.findall(run.stdout)
    names = [name for _, _, name in progress]
    assert sorted(names) == sorted(one) and len(names) == 9, "every item predicted exactly once"
    by_process = {int(index): int(count) for index, count in FINAL.findall(run.stdout)}
    assert by_process == {1: 5, 2: 4}, "each process counts only its own items"
    assert all({n for i, _, n in progress if i == str(p)} for p in (1, 2)), "both processes predicted"
    assert re.search(r"^9 item\(s\) in [\d.]+ s over 2 process\(es\)", run.stdout, re.M), run.stdout
    two = predictions(frames, tmp_path / "two")
    assert sorted(two) == sorted(one)
    for name, (ids, confidence) in one.items():
        np.testing.assert_array_equal(two[name][0], ids, err_msg=name)
        assert two[name][1] == pytest.approx(confidence, abs=1e-6)
    assert set(open_queue(frames, root=tmp_path / "two").statuses().values()) == {PREANNOTATED}


@pytest.mark.slow  # two processes through torchrun, both loading one dataset into a cache neither has yet
def test_two_processes_share_a_dataset_queue(tmp_path, monkeypatch):
    from datasets_helpers import write_hub_dataset

    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "datasets-cache"))
    tiny_pipeline().save_pretrained(tmp_path / "model")
    streets = write_hub_dataset(tmp_path / "streets", train=7)
    run = accelerate_launch(2, "app.preannotate", str(streets), "--split", "train", "--model", str(tmp_path / "model"),
                            "--annotations", str(tmp_path / "notes"), "--batch-size", "2")
    assert run.returncode == 0, run.stderr[-3000:]
    names = [name for _, _, name in PROGRESS.findall(run.stdout)]
    assert sorted(names) == [f"train_{i}" for i in range(7)], "every row predicted exactly once"
    assert {int(index): int(count) for index, count in FINAL.findall(run.stdout)} == {1: 4, 2: 3}
    queue = open_queue(streets, "train", tmp_path / "notes")
    assert queue.counts()[PREANNOTATED] == 7 and queue.predicted() == {item.id for item in queue.items}


def kill_tree(process: subprocess.Popen) -> None:
    """SIGKILL the launcher and every process under it (the workers first), as a machine that loses power would."""
    launcher = psutil.Process(process.pid)
    for child in launcher.children(recursive=True):
        child.kill()
    launcher.kill()
    process.wait(timeout=60)


@pytest.mark.slow  # two processes through torchrun, killed, then launched again
def test_a_killed_sharded_run_resumes_where_it_stopped(tmp_path):
    """The embedded default model (slow enough at one thread to be stopped halfway), killed once a few items are
    stored; the second launch predicts only the rest."""
    frames = write_frames(tmp_path / "frames", 16)
    notes = tmp_path / "notes"
    args = ["app.preannotate", str(frames), "--annotations", str(notes), "--batch-size", "1"]
    command, env = launch_command(2, *args)
    app_view = open_queue(frames, root=notes)  # what a running app holds: it sees the progress as the run goes
    with open(tmp_path / "first.log", "w") as log:
        first = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while app_view.counts()[PREANNOTATED] < 3 and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        kill_tree(first)
    before = predictions(frames, notes)
    assert 3 <= len(before) < 16, f"not stopped midway ({len(before)} stored):\n{(tmp_path / 'first.log').read_text()}"
    run = accelerate_launch(2, *args)
    assert run.returncode == 0, run.stderr[-3000:]
    names = [name for _, _, name in PROGRESS.findall(run.stdout)]
    assert sorted(names) == sorted(set(names)) and not set(names) & set(before), "nothing predicted twice"
    assert sum(int(count) for _, count in FINAL.findall(run.stdout)) == 16 - len(before)
    after = predictions(frames, notes)
    assert len(after) == 16 and set(app_view.statuses().values()) == {PREANNOTATED}
    for name, (ids, confidence) in before.items():  # what the killed run stored stays
        np.testing.assert_array_equal(after[name][0], ids)
        assert after[name][1] == confidence
