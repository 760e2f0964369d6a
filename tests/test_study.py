"""The equal-budget study's order of work: the judge first, then each variant trained and its evaluation recorded
before the next one trains (a session that ends mid-study keeps every row it finished)."""

from __future__ import annotations

import json

from benchmarks import study
from benchmarks.study_records import JUDGE_FOLDER, StudyRecords
from training.run_folder import SUMMARY_FILE


def test_each_variant_is_recorded_before_the_next_one_trains(tmp_path, monkeypatch):
    records = StudyRecords(tmp_path / "records")
    events = []

    def train_variant(name, steps, out, dataset):
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
    for helper in ("load_model", "load_split", "segmentation_scores"):
        monkeypatch.setattr(study, helper, lambda *args, **kwargs: None)
    monkeypatch.setattr(study, "labelled_pairs", lambda *args, **kwargs: [])

    study.main(["--study", "pretrained", "--steps", "3", "--out", str(tmp_path / "runs"), "--no-table",
                "--variants", "pretrained", "pretrained-ce-segmenter", "pretrained-ce"])

    assert events == [
        ("train", "pretrained-ce-segmenter", []),  # the judge first, though listed second
        ("keep judge", "pretrained-ce-segmenter"),
        ("train", "pretrained", []),
        ("evaluate", "pretrained"),
        ("evaluate", "pretrained-ce-segmenter"),
        ("train", "pretrained-ce", ["pretrained-ce-segmenter.eval.json", "pretrained.eval.json"]),
        ("evaluate", "pretrained-ce"),
    ]
