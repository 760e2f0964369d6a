"""Learning jobs as the app runs them, each `python -m training.learn` in a process of its own, on a tiny seeded model
and a queue of toy street frames whose corrections go through the store: a promotion (served at once, the queue's
unfinished items pre-annotated again by it, rolled back), a refusal with its figures, cancel and resume, one job per
workspace (a restarted app sees the running job), and a job killed with SIGKILL (the page says it stopped, the model in
use keeps serving, resume goes on from its checkpoint)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
from datasets_helpers import street_frames, tiny_street_model

from app.errors import InputError
from app.learning import Learning
from app.service import Studios
from app.settings import Settings
from app.workspace import Person
from semflow import learning_job
from semflow.model_versions import ModelVersions
from training.run_folder import RunFolder

pytestmark = pytest.mark.slow

RITA = Person("r" * 32, "rita")
FRAMES, ACCEPTED = 14, 11  # 11 corrected and accepted (6 to train on, 5 held back), 3 left to do
STEPS = 200  # a cancelled or killed job's length: some seconds, so that it stops part-way


@pytest.fixture(scope="module")
def base_model(tmp_path_factory):
    return tiny_street_model(tmp_path_factory.mktemp("base"))


def team(tmp_path: Path, base_model: Path, **learn) -> tuple[Studios, str, dict[str, np.ndarray]]:
    """An app process's studios on `base_model` (jobs take `learn` over their settings: a learning rate a tiny model
    learns from in seconds), a queue of toy frames, and the frames' true masks."""
    folder = tmp_path / "frames"
    truth = {Path(name).stem: ids for name, ids in street_frames(folder, FRAMES, 60, 80).items()}
    config = tmp_path / "learn.json"
    config.write_text(json.dumps({"learning_rate": 5e-3, "max_steps": 40, "checkpointing_steps": 1, **learn}))
    settings = Settings(model=str(base_model), annotations_dir=tmp_path / "annotations", cache_dir=tmp_path / "cache",
                        queue_root=tmp_path, reviewers=("rita",), learn_config=config)
    return Studios(settings), str(folder), truth


def correct(studios: Studios, location: str, masks: dict[str, np.ndarray], count: int = ACCEPTED) -> None:
    """A reviewer corrects the first `count` items with `masks` and accepts them, through the store."""
    workspace = studios.workspace
    for item in workspace.queue(location).items[:count]:
        workspace.claim(location, None, RITA, item.id)
        workspace.save(location, None, RITA, item.id, masks[item.name], started_from="test", seconds=5.0)
        workspace.accept(location, None, RITA, item.id)


def wait(learning: Learning, done, timeout: float = 420.0, what: str = "the learning loop") -> str:
    """Read the page's view until `done(view)`; its text."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        view = learning.view()
        if done(view):
            return view.text
        time.sleep(0.5)
    raise AssertionError(f"{what} did not get there in {timeout} s: {learning.view().text}\n\n"
                         f"{_logs(learning)}")


def idle(view) -> bool:
    return not view.active


def training_step(learning: Learning, at_least: int = 2):
    def reached(view) -> bool:
        job = learning_job.latest_job(learning.folder)
        return job is not None and job.status().get("step", 0) >= at_least and \
            job.status().get("phase") == learning_job.TRAINING
    return reached


def latest(learning: Learning) -> dict:
    return learning_job.latest_job(learning.folder).status()


def predicted_by(studios: Studios, location: str) -> dict[str, str | None]:
    queue = studios.workspace.queue(location)
    return {item.name: queue.open(item.id).prediction_model for item in queue.items}


def _logs(learning: Learning) -> str:
    logs = sorted((learning.folder / "logs").glob("*.log")) if (learning.folder / "logs").is_dir() else []
    return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-2000:]}" for log in logs)


def test_a_better_model_is_promoted_served_and_pre_annotates_the_rest_then_rolls_back(tmp_path, base_model):
    studios, location, truth = team(tmp_path, base_model)
    base = studios.get()
    base.preannotate(location, None)
    correct(studios, location, truth)
    learning = studios.learning
    note = learning.start(location, None, base.labels, RITA, True, 2)
    assert note.startswith("Started learning from the 11 accepted item(s) of frames")
    text = wait(learning, idle)
    status = latest(learning)
    assert status["phase"] == learning_job.PROMOTED, text
    assert status["training"] == 6 and status["held_back"] == 5 and status["gain"] > 0
    assert f"✅ Learning job {learning_job.latest_job(learning.folder).name}: Promoted v1: " in text
    served = studios.get()
    assert served.model.name == "tiny-streets v1" and served is not base
    assert "Pre-annotated the 3 unfinished item(s) of frames again with v1: worst first follows their new " \
           "confidences." in text
    by = predicted_by(studios, location)
    assert {by[f"frame{i:02d}"] for i in range(ACCEPTED, FRAMES)} == {served.identity}
    assert {by[f"frame{i:02d}"] for i in range(ACCEPTED)} == {base.identity}, "finished items keep theirs"
    ids, _, _ = served.segment(PIL.Image.open(Path(location) / "frame13.png"))
    assert ids.shape == (60, 80), "the new version segments on the page"

    assert learning.roll_back(RITA) == "Rolled back from v1 to the base model."
    assert studios.get().model.name == "tiny-streets"
    wait(learning, idle, what="the pre-annotation with the base model")
    by = predicted_by(studios, location)
    assert {by[f"frame{i:02d}"] for i in range(ACCEPTED, FRAMES)} == {studios.get().identity}


def test_a_new_model_that_is_not_better_on_the_held_back_items_is_refused_with_its_figures(tmp_path, base_model):
    studios, location, truth = team(tmp_path, base_model)
    base = studios.get()
    queue = studios.workspace.queue(location)
    held_back = [item.name for item in queue.items[ACCEPTED - 5 : ACCEPTED]]  # the five saved last
    masks = dict(truth)
    images = [PIL.Image.open(Path(location) / f"{name}.png").convert("RGB") for name in held_back]
    for first in range(0, 5, 4):  # as the job scores them: one step, in batches of four
        out = base.pipe.segment(images[first : first + 4], num_inference_steps=1, batch_size=4)
        masks.update(zip(held_back[first : first + 4], out.ids))
    correct(studios, location, masks)  # the reviewer kept the model's own masks on the latest items
    studios.learning.start(location, None, base.labels, RITA, True, 2)
    text = wait(studios.learning, idle)
    status = latest(studios.learning)
    assert status["phase"] == learning_job.REFUSED, text
    assert status["current_miou"] > 99 and status["gain"] <= 0
    assert (f"Kept the model in use: the new one scores {status['new_miou']:.1f} mIoU on the 5 held-back items "
            f"against {status['current_miou']:.1f} ({status['gain']:+.1f}).") in text
    assert studios.get() is base and ModelVersions(studios.learning.folder).current is None


def test_a_job_is_cancelled_then_resumed_and_a_workspace_runs_one_job_at_a_time(tmp_path, base_model):
    studios, location, truth = team(tmp_path, base_model, max_steps=STEPS)
    correct(studios, location, truth)
    base, learning = studios.get(), studios.learning
    learning.start(location, None, base.labels, RITA, True, 10)
    text = wait(learning, training_step(learning), what="training")
    os.kill(latest(learning)["pid"], signal.SIGSTOP)  # held at its step while the page is read, so it cannot finish
    assert "⏳ Learning job" in text and ", loss " in text
    assert " left (6 corrected items to train on, with 6 frames of the data the model learned from, 5 held back" in \
        text, "the base model's training frames replayed beside them"
    with pytest.raises(InputError, match="is running in this workspace: wait for it to end, or cancel it, before you "
                                         "start another"):
        learning.start(location, None, base.labels, RITA, True, 10)
    restarted = Studios(studios.settings)  # the app restarted while the job runs: it shows it, and it stays one job
    assert "⏳ Learning job" in restarted.learning.view().text and restarted.learning.view().active
    with pytest.raises(InputError, match="is running in this workspace"):
        restarted.learning.start(location, None, base.labels, RITA, True, 10)
    assert learning.cancel(RITA).startswith("Cancelling the learning job after its current step")
    os.kill(latest(learning)["pid"], signal.SIGCONT)
    text = wait(learning, idle)
    status = latest(learning)
    assert status["phase"] == learning_job.CANCELLED, text
    stopped_at = status["step"]
    assert stopped_at < STEPS and f"Cancelled at step {stopped_at}; the model in use keeps serving" in text
    assert studios.get() is base
    assert learning.resume(RITA).startswith("Resuming the learning job")
    text = wait(learning, idle)
    status = latest(learning)
    assert status["phase"] in (learning_job.PROMOTED, learning_job.REFUSED), text
    job = learning_job.latest_job(learning.folder)
    summary = json.loads((job.folder / "run" / "training_summary.json").read_text())
    assert [run["from_step"] for run in summary["runs"]] == [0, stopped_at] and summary["steps"] == STEPS


def test_a_killed_job_is_said_to_have_stopped_the_model_keeps_serving_and_resume_goes_on(tmp_path, base_model):
    studios, location, truth = team(tmp_path, base_model, max_steps=STEPS)
    correct(studios, location, truth)
    base, learning = studios.get(), studios.learning
    learning.start(location, None, base.labels, RITA, True, 10)
    wait(learning, training_step(learning, 3), what="training")
    status = latest(learning)
    os.kill(status["pid"], signal.SIGKILL)
    text = wait(learning, idle, timeout=60, what="the killed job's end")
    job = learning_job.latest_job(learning.folder)
    killed_at = job.status()["step"]
    assert "⚠️ The learning job" in text and " stopped at step " in text and "without finishing: its process ended " \
        "(killed, or the app or the machine restarted). The model in use keeps serving" in text
    assert not learning_job.running(learning.folder), "the lock went with the process"
    assert studios.get() is base
    ids, _, _ = studios.get().segment(PIL.Image.open(Path(location) / "frame13.png"))
    assert ids.shape == (60, 80), "segmenting goes on with the model in use"
    # the whole checkpoints: a kill while one was saved leaves it part-saved, and resume starts before it
    whole = [int(p.name.split("-")[1]) for p in RunFolder(job.folder / "run").checkpoints()]
    assert whole and killed_at >= 3
    learning.resume(RITA)
    text = wait(learning, idle)
    assert latest(learning)["phase"] in (learning_job.PROMOTED, learning_job.REFUSED), text
    summary = json.loads((job.folder / "run" / "training_summary.json").read_text())
    assert summary["runs"][-1]["from_step"] == whole[-1], "resumed from the newest whole checkpoint"
    assert summary["steps"] == STEPS
