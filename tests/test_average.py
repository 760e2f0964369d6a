"""Weight averaging (`training.average`): the mean by hand, the checks, the saved folder, its card and lineage."""

import json

import pytest
import torch
from conftest import tiny_pipeline

from semflow import SemFlowPipeline
from training import average, card
from training.card import total_hours, total_steps
from training.run_folder import CONFIG_FILE, SUMMARY_FILE


def _source(folder, seed, steps, **settings):
    """A saved tiny pipeline with the records a training run leaves beside it."""
    pipe = tiny_pipeline(seed=seed, **settings)
    pipe.save_pretrained(folder)
    (folder / CONFIG_FILE).write_text(json.dumps({"dataset": "toy_streets", "train_split": "train"}))
    (folder / SUMMARY_FILE).write_text(json.dumps({
        "command": f"python -m training.train --output-dir {folder.name} --max-steps {steps}", "steps": steps,
        "wall_clock_s": 36.0 * steps, "device": "cpu", "train_rows": 4, "data_license": "cc-by-4.0"}))
    return folder


def test_the_mean_is_the_weighted_sum_in_each_tensors_dtype():
    first = {"w": torch.tensor([1.0, 2.0], dtype=torch.float16), "n": torch.tensor(3)}
    second = {"w": torch.tensor([5.0, -2.0], dtype=torch.float16), "n": torch.tensor(3)}
    mean = average.average_state_dicts([first, second], [0.25, 0.75])
    assert mean["w"].dtype == torch.float16 and mean["w"].tolist() == [4.0, -1.0]  # 0.25·1 + 0.75·5, 0.25·2 − 0.75·2
    assert mean["n"].item() == 3


@pytest.mark.parametrize("second, message", [
    ({"w": torch.zeros(3), "n": torch.tensor(3)}, r"is \(3,\), model 1's \(2,\)"),
    ({"v": torch.zeros(2), "n": torch.tensor(3)}, "other tensors than model 1"),
    ({"w": torch.zeros(2), "n": torch.tensor(4)}, "integer buffer n differs"),
])
def test_nets_that_do_not_match_are_refused(second, message):
    with pytest.raises(ValueError, match=message):
        average.average_state_dicts([{"w": torch.zeros(2), "n": torch.tensor(3)}, second], [0.5, 0.5])


def test_weights_are_scaled_to_sum_to_one_and_must_be_positive():
    assert average.normalised([1, 3], 2) == [0.25, 0.75] and average.normalised(None, 4) == [0.25] * 4
    with pytest.raises(ValueError, match="one weight per model"):
        average.normalised([1.0], 2)
    with pytest.raises(ValueError, match="must be positive"):
        average.normalised([1.0, -0.5], 2)


def test_an_averaged_folder_loads_runs_and_tells_its_lineage(tmp_path):
    first, second = _source(tmp_path / "a", 0, 10), _source(tmp_path / "b", 1, 30)
    out = tmp_path / "soup"
    assert average.main([str(first), str(second), "--output-dir", str(out), "--weights", "1", "3"]) == 0
    pipe = SemFlowPipeline.from_pretrained(out)
    nets = [SemFlowPipeline.from_pretrained(folder).unet.state_dict() for folder in (first, second)]
    for name, tensor in pipe.unet.state_dict().items():
        if tensor.is_floating_point():
            torch.testing.assert_close(tensor, 0.25 * nets[0][name] + 0.75 * nets[1][name])
    assert pipe.segment(torch.rand(1, 3, 16, 24)).ids[0].shape == (16, 24)
    summary = json.loads((out / SUMMARY_FILE).read_text())
    assert [s["weight"] for s in summary["averaged_from"]] == [0.25, 0.75] and summary["steps"] == 0
    assert total_steps(summary) == 30 and total_hours(summary) == pytest.approx(0.3)
    config = json.loads((out / CONFIG_FILE).read_text())
    assert config["dataset"] == "toy_streets" and config["averaged_from"] == [str(first), str(second)]
    card = (out / "README.md").read_text()
    assert "weight average (`training.average`) of 2 trained models" in card
    assert "--max-steps 10" in card and "--max-steps 30" in card and "--weights 1 3" in card


def test_a_model_trained_from_an_average_counts_its_sources():
    child = {"steps": 5, "wall_clock_s": 3600.0, "initialised_from": {
        "model": "soup", "steps": 0, "averaged_from": [
            {"model": "a", "steps": 10, "wall_clock_s": 3600.0, "weight": 0.5},
            {"model": "b", "steps": 20, "wall_clock_s": 7200.0, "weight": 0.5,
             "initialised_from": {"model": "a", "steps": 10, "wall_clock_s": 3600.0}}]}}
    assert total_steps(child) == 5 + 30 and total_hours(child) == pytest.approx(1 + 3)
    told = card._ancestry(child, "soup")
    assert "`soup` as it was then (the weight average of `a`, `b`)" in told and "fresh net" not in told
    assert "35 optimiser steps and 4.00 h" in told


def test_ancestors_copied_into_one_model_folder_are_told_apart_by_their_run_folder():
    child = {"steps": 5, "wall_clock_s": 0.0, "initialised_from": {
        "model": "models/default", "steps": 20, "wall_clock_s": 3600.0, "device": "cpu",
        "command": "python -m training.train --output-dir runs/second --init-from models/default",
        "initialised_from": {"model": "models/default", "steps": 10, "wall_clock_s": 3600.0, "device": "cpu",
                             "command": "python -m training.train --output-dir=runs/first"}}}
    told = card._ancestry(child, "models/default")
    assert "`models/default` as it was then (trained in `runs/second`, 20 steps" in told
    assert "itself initialised from `models/default` as it was then (trained in `runs/first`, 10 steps" in told
    commands = card._lineage(child)
    assert "Before that, `models/default` (run `runs/second`, the model this run started from) was" in commands
    assert "Before that, `models/default` (run `runs/first`, the model `runs/second` started from) was" in commands


def test_models_that_differ_or_a_taken_folder_fail_with_a_sentence(tmp_path, capsys):
    first, second = _source(tmp_path / "a", 0, 10), _source(tmp_path / "b", 1, 10, perturbation=10.0)
    assert average.main([str(first), str(second), "--output-dir", str(tmp_path / "soup")]) == 2
    assert "model_index.json differs from" in capsys.readouterr().err
    third = _source(tmp_path / "c", 2, 10)
    (third / CONFIG_FILE).write_text(json.dumps({"dataset": "other_streets", "train_split": "train"}))
    with pytest.raises(ValueError, match="trained on other data"):
        average.average_models([str(first), str(third)], tmp_path / "soup")
    with pytest.raises(ValueError, match="already holds a model"):
        average.average_models([str(first), str(first)], first)
    with pytest.raises(ValueError, match="at least two models"):
        average.average_models([str(first)], tmp_path / "soup")
