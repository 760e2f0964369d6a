"""The learning loop as the app sees it, in process, on tiny seeded models and job folders written as a job writes
them (the jobs themselves run in tests/test_learning_jobs.py): a running job's progress and a dead one's, promotion and
refusal with their figures, a failure's reason, one job per workspace, what a start exports and runs, the configured
model served as the version in use and rolled back, a version pushed as a model repo, the queue's unfinished items
pre-annotated again by the new model only."""

from __future__ import annotations

import errno
import json
import sys
import time
from pathlib import Path

import datasets
import numpy as np
import PIL.Image
import pytest

from app import preannotate
from app.callbacks import Page
from app.errors import InputError
from app.info import model_info, model_info_markdown
from app.learning import Learning, workspace_folder
from app.service import Studios
from app.session import Session
from app.settings import Settings, SettingsError
from app.work_queue import CORRECTED, PREANNOTATED, open_queue
from app.workspace import Person
from semflow import learning_job
from semflow.loading import load_model
from semflow.model_versions import ModelVersions
from tests.conftest import tiny_pipeline

RITA, BEN = Person("r" * 32, "rita"), Person("b" * 32, "ben")


@pytest.fixture
def models(tmp_path) -> dict[str, Path]:
    """Two saved tiny pipelines: the base model and another (what a job would have trained)."""
    folders = {}
    for name, seed in (("base", 0), ("trained", 1)):
        folders[name] = tmp_path / "models" / name
        tiny_pipeline(seed=seed).save_pretrained(folders[name])
    return folders


def frames(folder: Path, count: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        PIL.Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(folder / f"f{index}.png")
    return folder


def studios_on(tmp_path: Path, model: Path, **settings) -> Studios:
    return Studios(Settings(model=str(model), annotations_dir=tmp_path / "ann", cache_dir=tmp_path / "cache",
                            queue_root=tmp_path, **settings))


def promote(learning: Learning, trained: Path, **figures) -> str:
    figures = {"held_back_items": 5, "training_items": 7, "current_miou": 40.0, "new_miou": 47.5, "gain": 7.5,
               **figures}
    return learning.versions.promote(trained, figures, base=learning.base_name)


def job_status(learning: Learning, name: str, phase: str, **fields) -> learning_job.Job:
    job = learning_job.Job(learning.folder / learning_job.JOBS_FOLDER / name)
    job.set_status(phase, fresh=True, started=time.time(), **fields)
    return job


def test_a_running_job_shows_its_progress_and_a_job_whose_process_died_says_it_stopped(tmp_path, models):
    learning = studios_on(tmp_path, models["base"]).learning
    job_status(learning, "job-1", learning_job.TRAINING, step=3, max_steps=15, loss=0.1234, seconds_left=75,
               training=7, held_back=5)
    lock = learning_job.WorkspaceLock(learning.folder)  # what the job's process holds while it lives
    assert lock.acquire()
    try:
        view = learning.view()
        assert view.active and view.phase == learning_job.TRAINING
        assert ("⏳ Learning job job-1: training, step 3 of at most 15, loss 0.1234, about 1 min 15 s left (7 "
                "corrected items to train on, 5 held back to check the result).") in view.text
        assert "In use: the base model `base`." in view.text
        job_status(learning, "job-1", learning_job.TRAINING, step=3, max_steps=15, loss=0.1, training=7, held_back=5,
                   replayed=7)
        assert "(7 corrected items to train on, with 7 frames of the data the model learned from, 5 held back to " \
            "check the result)." in learning.view().text
        frames(tmp_path / "frames", 2)
        with pytest.raises(InputError, match=r"A learning job \(job-1\) is running in this workspace: wait for it to "
                                             r"end, or cancel it, before you start another"):
            learning.start(str(tmp_path / "frames"), None, tiny_pipeline().labels, RITA, True, 1)
        with pytest.raises(InputError, match="before you roll back"):
            learning.roll_back(RITA)
        assert learning.cancel(RITA).startswith("Cancelling the learning job after its current step")
        assert "Cancelling after this step" in learning.view().text
    finally:
        lock.release()  # the process ends (kill -9 lets the lock go the same way)
    view = learning.view()
    assert not view.active
    assert ("⚠️ The learning job job-1 stopped at step 3 without finishing: its process ended (killed, or the app or "
            "the machine restarted). The model in use keeps serving; **Resume the job** goes on from its last "
            "checkpoint.") in view.text
    with pytest.raises(InputError, match="The corrections the job job-1 learned from are gone"):
        learning.resume(RITA)  # nothing to resume it on: said, not attempted


def test_promotion_refusal_and_failure_are_said_with_their_figures(tmp_path, models):
    learning = studios_on(tmp_path, models["base"]).learning
    assert learning.view().text == "In use: the base model `base`."
    promote(learning, models["trained"])
    job_status(learning, "job-1", learning_job.PROMOTED, version="v1", message=(
        "promoted v1: 47.5 mIoU on the 5 held-back items against 40.0 (+7.5)"))
    text = learning.view().text
    assert "✅ Learning job job-1: Promoted v1: 47.5 mIoU on the 5 held-back items against 40.0 (+7.5). The page " \
           "serves v1 now." in text
    assert "In use: **v1**, learned from corrections, of `base`: 47.5 mIoU on its 5 held-back items against 40.0 " \
           "(+7.5), promoted " in text and "**Roll back** serves the one it replaced (the base model)." in text
    time.sleep(0.01)
    job_status(learning, "job-2", learning_job.REFUSED, message=(
        "kept the model in use: the new one scores 46.0 mIoU on the 5 held-back items against 47.5 (-1.5)"))
    assert "Learning job job-2: Kept the model in use: the new one scores 46.0 mIoU on the 5 held-back items " \
           "against 47.5 (-1.5)." in learning.view().text
    time.sleep(0.01)
    from training.learn import failure

    disk_full = failure(OSError(errno.ENOSPC, "No space left on device", "/ws/jobs/job-3/run/checkpoint-25"))
    assert disk_full == ("the disk is full (writing /ws/jobs/job-3/run/checkpoint-25): free some space, then resume "
                         "the job")
    assert failure(RuntimeError("[enforce fail at inline_container.cc:595] . PytorchStreamWriter failed writing "
                                "file data/0: file write failed: No space left on device")).startswith(
        "the disk is full")
    job_status(learning, "job-3", learning_job.FAILED, message=disk_full)
    assert "⚠️ The learning job job-3 failed: The disk is full (writing /ws/jobs/job-3/run/checkpoint-25): free some " \
           "space, then resume the job. The model in use keeps serving." in learning.view().text


def test_the_configured_model_serves_the_version_in_use_and_one_click_rolls_back(tmp_path, models):
    studios = studios_on(tmp_path, models["base"], reviewers=("rita",))
    page = Page(studios)
    base = studios.get()
    assert base.model.name == "base" and base.model.version is None and studios.choices()[0] == "base"
    promote(studios.learning, models["trained"], started_from=str(models["base"]), data=str(tmp_path / "ann"))
    served = studios.get()
    assert served is not base and served.model.name == "base v1" and served.model.version["gain"] == 7.5
    assert studios.get("base") is served, "a tab that chose the configured model by name gets the version in use"
    assert studios.choices()[0] == "base", "the choice keeps its name across versions"
    assert served.identity.startswith("base v1@sha256:"), "what saved work records as the model it started from"
    info = model_info_markdown(served.model)
    assert "**Learned version** v1 of `base`, fine-tuned on 7 corrected items; 47.5 mIoU on the 5 latest ones, " \
           "held back, against 40.0 for the model it replaced (+7.5); promoted " in info
    described = model_info(served.model)  # /model_info
    assert described["model"] == "base v1" and described["version"]["gain"] == 7.5
    assert "started_from" not in described["version"] and "data" not in described["version"], "no server path"
    session = Session()
    assert page.learning_tick(session).model_info == info, "the page shows the model in use once nothing runs"
    with pytest.raises(InputError, match=r"Only reviewers may do that, and the name typed in \*Your name\* \(ben\) is "
                                         r"not one of them"):
        studios.learning.roll_back(BEN)
    assert studios.learning.roll_back(RITA) == "Rolled back from v1 to the base model."
    assert studios.get().model.name == "base" and ModelVersions(studios.learning.folder).current is None
    with pytest.raises(InputError, match="The base model is in use: there is no earlier version to roll back to."):
        studios.learning.roll_back(RITA)
    other = studios_on(tmp_path, models["trained"])
    assert other.learning.folder != studios.learning.folder and other.get().model.version is None, \
        "another base model has a workspace of its own: versions of one never serve for another"


def test_a_version_that_cannot_be_loaded_leaves_the_base_serving_with_a_notice(tmp_path, models):
    studios = studios_on(tmp_path, models["base"])
    version = promote(studios.learning, models["trained"])
    (studios.learning.versions.folder / version / "model_index.json").unlink()  # damaged by hand
    loaded = studios.get().model
    assert loaded.name == "base" and "Could not load the learned version v1" in loaded.notice
    assert studios.choices()[0] == "base"


def test_a_start_exports_the_queue_through_the_store_and_runs_the_job_in_its_own_process(tmp_path, models,
                                                                                          monkeypatch):
    studios = studios_on(tmp_path, models["base"], learn_config=tmp_path / "learn.json")
    (tmp_path / "learn.json").write_text(json.dumps({"learning_rate": 1e-3}))
    learning, workspace, labels = studios.learning, studios.workspace, studios.get().labels
    location = str(frames(tmp_path / "frames", 4))
    with pytest.raises(InputError, match="No item of this queue is accepted yet"):
        learning.start(location, None, labels, RITA, True, 1)
    with pytest.raises(InputError, match="Training minutes must be above 0 and at most 1440, got 0"):
        learning.start(location, None, labels, RITA, True, "0")
    queue = workspace.queue(location)
    for item in queue.items[:3]:
        workspace.claim(location, None, RITA, item.id)
        workspace.save(location, None, RITA, item.id, np.full((20, 30), 3, np.uint8))
    started = []

    def popen(command, log, env=None):  # the job as it would start, without running it
        started.append(command)
        import subprocess

        return subprocess.Popen([sys.executable, "-c", "pass"])

    monkeypatch.setattr(learning, "_popen", popen)
    note = learning.start(location, None, labels, RITA, False, 2.5)
    assert note == ("Started learning from the 3 corrected item(s) of frames, in a process of its own (2.5 training "
                    "minutes); the model in use keeps serving meanwhile.")
    (command,) = started
    assert command[:3] == [sys.executable, "-m", "training.learn"]
    args = dict(zip(command[3::2], command[4::2]))
    assert args["--workspace"] == str(learning.folder) and args["--model"] == str(models["base"].resolve())
    assert args["--minutes"] == "2.5" and args["--config"] == str((tmp_path / "learn.json").resolve())
    rows = datasets.load_dataset(args["--annotations"], split="train", cache_dir=str(tmp_path / "hf"))
    assert len(rows) == 3 and set(rows["status"]) == {CORRECTED} and "saved_at" in rows.column_names
    origin = json.loads(Path(args["--annotations"] + ".json").read_text())
    assert origin["location"] == location and origin["items"] == 3 and origin["by"] == "rita"
    assert args["--annotations"].startswith(str(learning.folder / "corrections" / args["--job"]))


def test_the_queue_is_pre_annotated_again_by_the_new_model_only_where_work_remains(tmp_path, models, capsys):
    location = str(frames(tmp_path / "frames", 4))
    ann = str(tmp_path / "ann")
    assert preannotate.main([location, "--model", str(models["base"]), "--annotations", ann]) == 0
    queue = open_queue(location, None, ann)
    finished = queue.items[0].id
    queue.claim(finished, RITA.key)
    queue.save(finished, np.full((20, 30), 3, np.uint8), RITA.key)
    assert preannotate.main([location, "--model", str(models["trained"]), "--annotations", ann, "--refresh"]) == 0
    by = {item.id: queue.open(item.id).prediction_model for item in queue.items}
    trained = load_model(str(models["trained"]))
    assert by[finished].startswith("base@") and queue.status(finished) == CORRECTED, "finished work keeps its own"
    assert all(by[item.id] == f"trained@{trained.revision}" for item in queue.items[1:])
    assert {queue.status(item.id) for item in queue.items[1:]} == {PREANNOTATED}
    expected = preannotate.predict_batch(trained.pipe, [queue.read_image(item.id) for item in queue.items[1:]])
    assert [queue.confidence(item.id) for item in queue.items[1:]] == pytest.approx([c for _, c in expected])
    unfinished = sorted(queue.items[1:], key=lambda item: queue.confidence(item.id))
    assert [i for i in queue.order("worst_first") if i != finished] == [item.id for item in unfinished], \
        "worst first follows them"
    capsys.readouterr()
    assert preannotate.main([location, "--model", str(models["trained"]), "--annotations", ann, "--refresh"]) == 0
    assert "pre-annotated 0 item(s) with trained" in capsys.readouterr().out, "a second run has nothing left to do"


def test_a_version_is_pushed_as_a_model_repo_that_loads_as_it_is(tmp_path, models, monkeypatch):
    from hub_mock import RecordingHub

    hub = RecordingHub(monkeypatch)
    studios = studios_on(tmp_path, models["base"], model_repo="acme/streets-model")
    with pytest.raises(InputError, match="Pushing needs an identity"):
        studios.learning.push(None)
    studios = studios_on(tmp_path, models["base"], model_repo="acme/streets-model", push_with_server_token=True)
    with pytest.raises(InputError, match="The base model is in use: there is no learned version to push yet."):
        studios.learning.push(None)
    promote(studios.learning, models["trained"])
    assert studios.learning.push("hf_visitor") == ("Pushed v1 to the model repo `acme/streets-model`: `hf download "
                                                   "acme/streets-model` fetches it.")
    (upload,) = hub.uploads
    assert hub.repos[0]["repo_type"] == "model" and upload["repo_type"] == "model"
    assert {"model_index.json", "README.md"} <= set(upload["files"])
    assert "## Promotion" in upload["contents"]["README.md"].decode()
    assert upload["commit_message"] == "v1 of base, learned from corrections (+7.5 mIoU on 5 held-back items)"


def test_the_learning_panel_is_on_the_page_and_private(tmp_path, models):
    from app.ui import build_demo

    studios = studios_on(tmp_path, models["base"])
    demo = build_demo(studios)
    names = {d["api_name"]: d for d in demo.config["dependencies"]}
    for name in ("ui_start_learning", "ui_cancel_learning", "ui_resume_learning", "ui_roll_back_model",
                 "ui_learning_tick"):
        assert names[name]["api_visibility"] == "private", name
    started = Page(studios).start_tab(None, Session())
    assert started.learn_status == "In use: the base model `base`." and started.model_info.startswith("**Model**")


def test_learning_settings_are_checked_by_name(tmp_path):
    with pytest.raises(SettingsError, match="SEMFLOW_LEARN_CONFIG must name a readable JSON file"):
        Settings.from_env({"SEMFLOW_LEARN_CONFIG": str(tmp_path / "missing.json")})
    (tmp_path / "list.json").write_text("[1]")
    with pytest.raises(SettingsError, match="SEMFLOW_LEARN_CONFIG must name a JSON file holding an object"):
        Settings.from_env({"SEMFLOW_LEARN_CONFIG": str(tmp_path / "list.json")})
    with pytest.raises(SettingsError, match="SEMFLOW_PREANNOTATE_PROCESSES must be at least 1, got 0"):
        Settings.from_env({"SEMFLOW_PREANNOTATE_PROCESSES": "0"})
    with pytest.raises(SettingsError, match="SEMFLOW_MODEL_REPO must be a Hub model id like 'org/name'"):
        Settings.from_env({"SEMFLOW_MODEL_REPO": "streets"})


def test_several_pre_annotating_processes_run_under_accelerate_launch(tmp_path):
    settings = Settings(annotations_dir=tmp_path / "ann", preannotate_processes=2)
    command = Learning(settings, Studios(settings).workspace, "symmetric")._preannotate_command()
    launch = command.index("accelerate.commands.launch")
    assert command[launch + 1 : launch + 4] == ["--multi_gpu", "--num_processes", "2"]
    assert command[-2:] == ["-m", "app.preannotate"]
    assert workspace_folder(tmp_path, "symmetric") == tmp_path.resolve() / "learning" / "symmetric"
    assert workspace_folder(tmp_path, "acme/streets@v2").name == "acme--streets--v2"
