"""The equal-budget study's order of work and its records: the judge first, then each variant trained and its
evaluation recorded before the next one trains (a run stopped mid-study keeps every row it finished); a kept
model holds the model files only."""

from __future__ import annotations

import json

import pytest

from benchmarks import study
from benchmarks.study_records import JUDGE_FOLDER, StudyRecords
from semflow.loading import model_folder, weights_hash
from training.run_folder import CHECKPOINT_PREFIX, LOG_FILE, SAMPLES_FOLDER, SUMMARY_FILE


@pytest.fixture
def quick_study(tmp_path, monkeypatch):
    """`study.main` with training, data and scoring replaced by stand-ins that log what ran, in order."""
    records = StudyRecords(tmp_path / "records")
    events = []

    def train_variant(name, steps, out, dataset, validation_steps=None):
        events.append(("train", name, sorted(p.name for p in records.path.glob("*.eval.json"))))
        (out / name).mkdir(parents=True, exist_ok=True)
        (out / name / SUMMARY_FILE).write_text(json.dumps({"steps": steps}))
        return out / name

    def keep_judge(run, *skip):
        events.append(("keep judge", run.name))
        (records.path / JUDGE_FOLDER).mkdir(parents=True)
        (records.path / JUDGE_FOLDER / SUMMARY_FILE).write_text("{}")

    def evaluate_variant(folder, *args):
        events.append(("evaluate", folder.name))
        return {"val_miou": 50.0}

    monkeypatch.setattr(study, "budgets", lambda names, *args, **kwargs: {n: {"steps": 3} for n in names})
    monkeypatch.setattr(study, "train_variant", train_variant)
    monkeypatch.setattr(records, "keep_judge", keep_judge)
    monkeypatch.setattr(study, "StudyRecords", lambda path: records)
    monkeypatch.setattr(study, "evaluate_variant", evaluate_variant)
    for loader in ("load_model", "load_split", "segmentation_scores"):
        monkeypatch.setattr(study, loader, lambda *args, **kwargs: None)
    monkeypatch.setattr(study, "labelled_pairs", lambda *args, **kwargs: [])

    def run(*argv):
        study.main(["--study", "pretrained", "--steps", "3", "--out", str(tmp_path / "runs"), "--no-table", *argv])
        return events

    run.events = events
    return run


def test_each_variant_is_recorded_before_the_next_one_trains(quick_study):
    events = quick_study("--variants", "pretrained", "pretrained-ce-segmenter", "pretrained-ce")

    assert events == [
        ("train", "pretrained-ce-segmenter", []),  # the judge first, though listed second
        ("keep judge", "pretrained-ce-segmenter"),
        ("train", "pretrained", []),
        ("evaluate", "pretrained"),
        ("evaluate", "pretrained-ce-segmenter"),
        ("train", "pretrained-ce", ["pretrained-ce-segmenter.eval.json", "pretrained.eval.json"]),
        ("evaluate", "pretrained-ce"),
    ]


def test_the_judge_is_loaded_by_a_path_that_names_no_machine(quick_study, tmp_path, monkeypatch):
    loaded = []
    monkeypatch.setattr(study, "load_model", lambda folder: loaded.append(folder))

    quick_study("--variants", "pretrained-ce-segmenter")

    judge = tmp_path / "records" / JUDGE_FOLDER  # its name_or_path goes into every record's judged cycle
    assert len(loaded) == 1 and not loaded[0].is_absolute() and loaded[0].resolve() == judge.resolve()


def test_keeping_an_untrained_variant_says_so(quick_study):
    with pytest.raises(SystemExit, match="--keep pretrained: .* holds no trained model"):
        quick_study("--variants", "pretrained-ce-segmenter", "--keep", "pretrained")
    assert quick_study.events == []  # said before the judge trained, not after the run's work


def test_a_kept_model_holds_the_model_files_only(tmp_path):
    run = tmp_path / "run"
    for file in [SUMMARY_FILE, "model_index.json", "unet/config.json", f"{CHECKPOINT_PREFIX}100/optimizer.bin",
                 f"{SAMPLES_FOLDER}/0.png", LOG_FILE, study.EVAL_FILE]:
        (run / file).parent.mkdir(parents=True, exist_ok=True)
        (run / file).write_text("{}")
    records = StudyRecords(tmp_path / "records")
    assert records.model("pretrained-ce") is None

    kept = records.keep_model("pretrained-ce", run, study.EVAL_FILE)

    assert kept == records.model("pretrained-ce")
    assert sorted(str(p.relative_to(kept)) for p in kept.rglob("*") if p.is_file()) == [
        "model_index.json", SUMMARY_FILE, "unet/config.json"]


def test_a_model_folder_is_scored_as_a_row_under_its_name(quick_study, tmp_path):
    long = tmp_path / "long"
    long.mkdir()
    (long / SUMMARY_FILE).write_text(json.dumps({"steps": 1000}))

    events = quick_study("--variants", "pretrained-ce-segmenter", "--model", f"long={long}")

    assert events[-1] == ("evaluate", "long")
    assert json.loads((tmp_path / "records" / "long.eval.json").read_text()) == {"val_miou": 50.0}


def test_a_model_row_without_a_model_says_so(quick_study, tmp_path):
    with pytest.raises(SystemExit, match=r"--model long=.*gone: no trained model there"):
        quick_study("--variants", "pretrained-ce-segmenter", "--model", f"long={tmp_path / 'gone'}")
    assert quick_study.events == []
    with pytest.raises(SystemExit):  # argparse: a variant's name is not a model row's
        quick_study("--model", f"pretrained={tmp_path}")


def test_a_shipped_row_is_evaluated_again_when_other_weights_ship_under_its_name(quick_study, tmp_path):
    records = tmp_path / "records"
    records.mkdir()
    (records / "shipped-symmetric.eval.json").write_text(json.dumps({"val_miou": 1.0, "weights": "sha256:earlier"}))

    events = quick_study("--variants", "pretrained-ce-segmenter", "--shipped", "symmetric")

    assert events[-1] == ("evaluate", "shipped-symmetric")
    recorded = json.loads((records / "shipped-symmetric.eval.json").read_text())
    assert recorded == {"val_miou": 50.0, "weights": weights_hash(model_folder("symmetric"))}
    quick_study("--variants", "pretrained-ce-segmenter", "--shipped", "symmetric")
    assert events.count(("evaluate", "shipped-symmetric")) == 1  # the same weights: the record stands


def test_a_variant_whose_model_is_gone_is_timed_on_its_architecture_untrained(quick_study, tmp_path, monkeypatch):
    records = tmp_path / "records"
    records.mkdir()
    for name in ("pretrained-ce-segmenter", "pretrained"):  # recorded by an earlier run, run folders gone
        (records / f"{name}.eval.json").write_text(json.dumps({"val_miou": 60.0, "training_run": {"steps": 3}}))
    timed = []

    def untrained_model(name, dataset):
        timed.append(name)
        return name

    monkeypatch.setattr(study, "untrained_model", untrained_model)
    monkeypatch.setattr(study, "latency", lambda model, image, mask: {"segment_s": 0.5, "synthesize_s": 2.0})
    monkeypatch.setattr(study, "labelled_pairs", lambda *args, **kwargs: [(None, None)])
    monkeypatch.setattr(study, "budgets", lambda names, *args, **kwargs: {
        n: {"steps": 3, "cpu_seconds_per_step": 2.0} for n in names})
    (records / JUDGE_FOLDER).mkdir()
    (records / JUDGE_FOLDER / SUMMARY_FILE).write_text("{}")

    table = study.main(["--study", "pretrained", "--steps", "3", "--out", str(tmp_path / "runs"), "--variants",
                        "pretrained-ce-segmenter", "pretrained"])["markdown"]

    assert timed == ["pretrained"]  # the judge's model is kept: timed as trained
    assert json.loads((records / "pretrained.eval.json").read_text())["latency"] == {
        "segment_s": 0.5, "synthesize_s": 2.0, "timed_on": study.UNTRAINED}
    assert "| 0.500 * | 2.00 * |" in table and "*: timed on an untrained net" in table


def test_an_untrained_variant_has_its_trained_architecture(tmp_path):
    from datasets_helpers import write_hub_dataset

    dataset = str(write_hub_dataset(tmp_path / "data"))
    model = study.untrained_model("pretrained", dataset)
    assert type(model.unet).__name__ == "EncoderUNet" and model.config.formulation == "symmetric"
    assert (model.config.segmentation_steps, model.config.synthesis_steps) == (1, 10)
    assert type(study.untrained_model("scratch", dataset).unet).__name__ == "UNet2DModel"
