"""Training with several processes (`accelerate launch --multi_gpu --num_processes 2` on this CPU-only machine):
each process its own shard of the data, one model and one log written, checkpoints that resume."""

from __future__ import annotations

import json

import pytest
from datasets_helpers import TINY_CONFIG, write_hub_dataset
from launch_helpers import accelerate_launch

from semflow import SemFlowPipeline
from semflow.loading import cpu_process_group
from training.data import SegmentationStream, load_split
from training.train import process_batch


def test_processes_walk_disjoint_shards_of_each_epoch(tmp_path):
    split = load_split(str(write_hub_dataset(tmp_path / "streets", train=8)), "train")
    from semflow.labels import get_label_set

    seen = []
    for rank in range(2):
        stream = SegmentationStream(split, get_label_set("camvid"), "image", "mask", (32, 48), (32, 48), (1.0, 1.0),
                                    False, process_index=rank, num_processes=2)
        seen.append([round(image.sum().item(), 3) for _, (image, _ids) in zip(range(4), stream)])
    assert len(set(seen[0]) | set(seen[1])) == 8  # the 8 frames of epoch 0, each seen by one process


def test_several_processes_without_cuda_ask_for_one_cpu_group(monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert not cpu_process_group()  # one process keeps its device
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert cpu_process_group()
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    assert not cpu_process_group()  # on GPUs each process takes its own


def test_the_batch_is_shared_between_processes():
    assert process_batch(8, 2) == 4
    with pytest.raises(ValueError, match="batch_size 6 does not split evenly over 4 processes"):
        process_batch(6, 4)


@pytest.mark.slow  # two processes through torchrun, twice
def test_two_processes_train_save_one_model_and_resume(tmp_path):
    dataset = write_hub_dataset(tmp_path / "streets", train=8)
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({**TINY_CONFIG, "batch_size": 4}))
    out = tmp_path / "run"
    args = ["--dataset", str(dataset), "--output-dir", str(out), "--config", str(config)]
    first = accelerate_launch(2, "training.train", *args, "--max-steps", "2")
    assert first.returncode == 0, first.stderr[-3000:]
    second = accelerate_launch(2, "training.train", *args, "--max-steps", "4", "--resume")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resumed from" in second.stdout + second.stderr
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [record["step"] for record in log] == [1, 2, 3, 4]  # written by the main process alone
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["num_processes"] == 2 and summary["steps"] == 4 and [r["from_step"] for r in summary["runs"]] == [
        0, 2]
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    SemFlowPipeline.from_pretrained(out)  # the one final model loads


@pytest.mark.slow  # two processes through torchrun
def test_two_processes_refuse_a_bad_setting_in_a_sentence(tmp_path):
    dataset = write_hub_dataset(tmp_path / "streets", train=8)
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({**TINY_CONFIG, "batch_size": 4}))
    refused = accelerate_launch(2, "training.train", "--dataset", str(dataset), "--output-dir", str(tmp_path / "run"),
                                "--config", str(config), "--validation-steps", "0")
    output = refused.stdout + refused.stderr
    assert refused.returncode != 0 and "ZeroDivisionError" not in output, output[-3000:]
    assert output.count("error: validation_steps (--validation-steps) must be a whole number of optimizer steps, at "
                        "least 1, got 0") == 2, "each process says it, before any of them trains"
