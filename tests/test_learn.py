"""Learning from corrections: the held-back split (the latest items, never trained on), promotion and refusal on
them, versions and roll-back, cancel and resume, on tiny seeded nets."""

import json

import datasets
import numpy as np
import PIL.Image
import pytest
from datasets_helpers import TINY_CONFIG, street, write_hub_dataset

from semflow.model_versions import ModelVersions
from training import learn, train
from training.data import load_split


@pytest.fixture(scope="module")
def base_model(tmp_path_factory):
    dataset = write_hub_dataset(tmp_path_factory.mktemp("data") / "toy_streets")
    config = tmp_path_factory.mktemp("config") / "tiny.json"
    config.write_text(json.dumps(TINY_CONFIG))
    out = tmp_path_factory.mktemp("base")
    train.main(["--dataset", str(dataset), "--output-dir", str(out), "--config", str(config), "--max-steps", "2"])
    return out


def corrected_pairs(folder, count=12, seed=3):
    """A dataset folder of corrected pairs as the store exports them, saved one minute apart in shuffled order."""
    rng = np.random.default_rng(seed)
    rows = {"image": [], "mask": [], "saved_at": []}
    for index in rng.permutation(count):
        image, ids = street(rng)
        rows["image"].append(PIL.Image.fromarray(image))
        rows["mask"].append(PIL.Image.fromarray(ids))
        rows["saved_at"].append(f"2026-01-01T10:{index:02d}:00+00:00")
    features = datasets.Features({"image": datasets.Image(), "mask": datasets.Image(),
                                  "saved_at": datasets.Value("string")})
    (folder / "data").mkdir(parents=True)
    datasets.Dataset.from_dict(rows, features=features).to_parquet(str(folder / "data" / "train-00000.parquet"))
    return folder


def test_the_latest_share_is_held_back_and_never_trained_on(tmp_path):
    rows = load_split(str(corrected_pairs(tmp_path / "pairs", count=12)), "train")
    split = learn.held_back_split(rows)
    assert len(split.held_back) == 5 and len(split.training) == 7  # 20% of 12 is 3, but at least 5
    assert sorted(split.held_back["saved_at"]) == sorted(rows["saved_at"])[-5:]
    assert max(split.training["saved_at"]) < min(split.held_back["saved_at"])
    big = learn.held_back_split(datasets.Dataset.from_dict({"saved_at": [f"{i:03d}" for i in range(40)]}))
    assert big.held_back["saved_at"] == [f"{i:03d}" for i in range(32, 40)]  # 20% of 40


def test_too_few_items_get_a_sentence():
    with pytest.raises(ValueError, match="learning needs at least 10 corrected items .* there are 9"):
        learn.held_back_split(datasets.Dataset.from_dict({"saved_at": list("abcdefghi")}))


def test_a_job_trains_without_the_held_back_items_and_promotes_only_a_better_model(base_model, tmp_path,
                                                                                    monkeypatch):
    pairs = corrected_pairs(tmp_path / "pairs")
    workspace = tmp_path / "workspace"
    scored = iter([40.0, 47.5])  # the model in use, then the new one, on the held-back items
    monkeypatch.setattr(learn, "segmentation_scores", lambda pipe, pairs, steps: type("S", (), {"miou": next(scored)}))
    status = learn.learn(str(pairs), workspace, model=str(base_model), minutes=0.001)
    assert status["phase"] == "promoted" and status["version"] == "v1" and status["gain"] == 7.5
    assert "promoted v1: 47.5 mIoU on the 5 held-back items against 40.0 (+7.5)" == status["message"]
    job = learn.Job(workspace / "jobs" / "job")
    assert [r["step"] for r in job.run.log() if "loss" in r] == [1]  # a 0.06 s budget ends the run at its first step
    trained = load_split(str(job.folder / "data"), "train")["saved_at"]
    trained_on, replayed = [when for when in trained if when is not None], trained.count(None)
    held_back = load_split(str(job.folder / "data"), "validation")["saved_at"]
    assert len(trained_on) == 7 and not set(trained_on) & set(held_back) and max(trained_on) < min(held_back)
    assert replayed == 6 == json.loads((job.folder / "split.json").read_text())["replayed"], \
        "beside the 7 corrected items, the base model's 6 training frames (all it has) replayed"
    versions = ModelVersions(workspace)
    assert versions.current == "v1" and (workspace / "models" / "v1" / "model_index.json").is_file()
    assert not list((workspace / "models" / "v1").glob("checkpoint-*"))
    card = (workspace / "models" / "v1" / "README.md").read_text()
    assert "## Promotion" in card and "gain: 7.5" in card and "python -m training.train" in card

    scored = iter([47.5, 47.5])  # no better: refused, v1 keeps serving
    refused = learn.learn(str(pairs), workspace, minutes=0.001, job_name="second")
    assert refused["phase"] == "refused" and versions.current == "v1"
    assert "kept the model in use: the new one scores 47.5 mIoU on the 5 held-back items against 47.5" in (
        refused["message"])
    assert json.loads((workspace / "jobs" / "second" / "config.json").read_text())["max_minutes"] == 0.001
    assert versions.roll_back() is None and versions.current is None
    with pytest.raises(ValueError, match="the base model is in use"):
        versions.roll_back()


def test_a_cancelled_job_leaves_the_model_in_use_and_resumes_from_its_checkpoint(base_model, tmp_path):
    pairs = corrected_pairs(tmp_path / "pairs")
    workspace = tmp_path / "workspace"
    job = learn.Job(workspace / "jobs" / "job")
    job.cancel()
    status = learn.learn(str(pairs), workspace, model=str(base_model), minutes=10, resume=True,
                         overrides={"checkpointing_steps": 1})
    assert status["phase"] == "cancelled" and ModelVersions(workspace).current is None
    log = job.run.log()
    assert [r["step"] for r in log if "loss" in r] == [1] and job.run.checkpoints()
    (job.folder / learn.CANCEL_FILE).unlink()
    resumed = learn.learn(str(pairs), workspace, model=str(base_model), minutes=10, resume=True,
                          overrides={"checkpointing_steps": 1, "max_steps": 3})
    steps = [r["step"] for r in job.run.log() if "loss" in r]  # logged every 5 steps, and at each end
    summary = json.loads((job.run.path / "training_summary.json").read_text())
    assert resumed["phase"] in ("promoted", "refused") and steps == [1, 3]
    assert [run["from_step"] for run in summary["runs"]] == [0, 1] and summary["steps"] == 3


def test_one_job_per_workspace_and_a_job_that_raises_is_recorded_as_failed(base_model, tmp_path):
    from semflow.learning_job import WorkspaceLock

    pairs = corrected_pairs(tmp_path / "pairs")
    workspace = tmp_path / "workspace"
    running = WorkspaceLock(workspace)  # what a job's process holds while it runs
    assert running.acquire()
    try:
        with pytest.raises(learn.JobRunning, match="another learning job runs in the workspace"):
            learn.learn(str(pairs), workspace, model=str(base_model), minutes=0.001, job_name="second")
        assert not (workspace / "jobs" / "second").exists(), "a refused job writes nothing"
    finally:
        running.release()
    few = corrected_pairs(tmp_path / "few", count=6)
    with pytest.raises(ValueError, match="learning needs at least 10 corrected items"):
        learn.learn(str(few), workspace, model=str(base_model), minutes=0.001, job_name="few")
    status = learn.Job(workspace / "jobs" / "few").status()
    assert status["phase"] == "failed" and status["message"].startswith("learning needs at least 10 corrected items")
    assert status["pid"] > 0 and status["base"] == base_model.name


def test_held_back_items_without_a_labelled_pixel_refuse_the_new_model(base_model, tmp_path, monkeypatch):
    nan = type("S", (), {"miou": float("nan")})
    monkeypatch.setattr(learn, "segmentation_scores", lambda pipe, pairs, steps: nan)
    status = learn.learn(str(corrected_pairs(tmp_path / "pairs")), tmp_path / "workspace", model=str(base_model),
                         minutes=0.001)
    assert status["phase"] == "refused" and "have no labelled pixel" in status["message"]
    assert ModelVersions(tmp_path / "workspace").current is None


def test_a_checkpoint_a_killed_run_left_half_saved_is_not_resumed_from(tmp_path):
    from training.run_folder import RunFolder

    run = RunFolder(tmp_path / "run")
    for step in (12, 13):
        run.checkpoint(step).mkdir(parents=True)
        (run.checkpoint(step) / "model.safetensors").write_bytes(b"weights")
    run.write_checkpoint_state(12, {})  # step 13's step file never came: the process was killed while saving it
    assert run.checkpoints() == [run.checkpoint(12)]
    run.checkpoint(14).mkdir()
    run.write_checkpoint_state(14, {})
    run.prune_checkpoints(1)
    assert run.checkpoints() == [run.checkpoint(14)] and not run.checkpoint(13).exists()


def test_replay_draws_the_models_own_training_frames_without_its_held_out_drives(tmp_path):
    dataset = write_hub_dataset(tmp_path / "drives", train=8, validation=2, drives=("0001TP", "0006R0"))
    recipe = {"dataset": str(dataset), "train_split": "train", "held_out_drives": ["0006R0"]}
    everything = learn.replay_rows(recipe, 100)
    assert len(everything) == 4, "the 4 training frames of 0001TP; none of the held-out drive"
    assert len(learn.replay_rows(recipe, 3)) == 3
    training = load_split(str(dataset), "train")
    kept = [np.asarray(image).tobytes() for image, name in zip(training["image"], training["file_name"])
            if name.startswith("0001TP")]
    assert sorted(np.asarray(image).tobytes() for image in everything["image"]) == sorted(kept)
    assert learn.replay_rows({**recipe, "dataset": str(tmp_path / "elsewhere")}, 10) is None, "not on this machine"
    assert learn.replay_rows({**recipe, "label_map": {"1": 2}}, 10) is None
    assert learn.replay_rows(recipe, 0) is None
    corrected = load_split(str(corrected_pairs(tmp_path / "pairs")), "train")
    mixed = learn.with_replay(corrected, learn.replay_rows(recipe, 2))
    assert len(mixed) == len(corrected) + 2 and mixed.column_names == corrected.column_names
    assert mixed["saved_at"][-2:] == [None, None] and mixed["saved_at"][: len(corrected)] == corrected["saved_at"]
