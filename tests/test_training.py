"""Training on `datasets`: smoke run, resume, fine-tuning on an annotation folder, evaluation, mocked Hub push."""

import json

import numpy as np
import PIL.Image
import pytest
import torch
from conftest import tiny_unet
from datasets_helpers import TINY_CONFIG, write_annotation_folder, write_hub_dataset
from hub_mock import RecordingHub
from safetensors import safe_open

from semflow import SemFlowPipeline
from training import evaluate, push, train
from training.config import load_config
from training.train import learning_rate_factor


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_hub_dataset(tmp_path_factory.mktemp("data") / "toy_streets")


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "tiny.json"
    path.write_text(json.dumps(TINY_CONFIG))
    return path


@pytest.fixture(scope="module")
def trained(dataset, config_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    train.main(["--dataset", str(dataset), "--output-dir", str(out), "--config", str(config_file), "--max-steps",
                "2"])
    return out


def _log(folder):
    return [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]


def test_smoke_run_writes_a_loadable_model_with_card_checkpoints_and_samples(trained):
    assert (trained / "model_index.json").is_file() and (trained / "checkpoint-2").is_dir()
    assert list((trained / "samples").glob("step-*.png"))
    log = _log(trained)
    assert [r["step"] for r in log] == [1, 2] and "val_miou" in log[-1] and np.isfinite(log[-1]["loss"])
    card = (trained / "README.md").read_text()
    assert "python -m training.train" in card and "cc-by-4.0" in card and "val" in card.lower()
    # the command's --config file is not shipped; the config beside the weights is that run's, as --config takes it
    assert "`train_config.json` beside the weights" in card
    saved = json.loads((trained / "train_config.json").read_text())
    assert load_config(trained / "train_config.json").to_dict() == saved
    pipe = SemFlowPipeline.from_pretrained(trained)
    assert pipe.labels.name == "toy_streets" and pipe.labels.ignore_id == 11 and pipe.resolution == (32, 48)


def test_resume_continues_the_step_count(dataset, config_file, tmp_path):
    out = tmp_path / "run"
    train.main(["--dataset", str(dataset), "--output-dir", str(out), "--config", str(config_file), "--max-steps",
                "2"])
    first = SemFlowPipeline.from_pretrained(out).unet.state_dict()
    train.main(["--dataset", str(dataset), "--output-dir", str(out), "--config", str(config_file), "--max-steps",
                "4", "--resume"])
    log = _log(out)
    assert [r["step"] for r in log] == [1, 2, 3, 4]
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["steps"] == 4 and [run["from_step"] for run in summary["runs"]] == [0, 2]
    assert "--resume" not in summary["runs"][0]["command"] and "--resume" in summary["runs"][1]["command"]
    before = json.loads((out / "checkpoint-2" / "step.json").read_text())["elapsed_s"]  # carried over on resume
    assert before > 0 and log[2]["elapsed_s"] >= round(before, 3) and summary["wall_clock_s"] >= log[-1]["elapsed_s"]
    assert "--resume" in (out / "README.md").read_text().split("## Training")[1]
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    config = load_config(config_file, max_steps=4)
    assert log[2]["lr"] == pytest.approx(config.learning_rate * learning_rate_factor(3, config))
    resumed = SemFlowPipeline.from_pretrained(out).unet.state_dict()
    assert any(not torch.equal(first[k], resumed[k]) for k in first)


def test_fine_tune_on_an_annotation_folder_keeps_the_label_set(trained, config_file, tmp_path):
    annotations = write_annotation_folder(tmp_path / "annotations")
    out = tmp_path / "finetuned"
    train.main(["--dataset", str(annotations), "--output-dir", str(out), "--config", str(config_file),
                "--init-from", str(trained), "--validation-split", "none", "--max-steps", "2", "--save-dtype",
                "fp16"])
    base, tuned = SemFlowPipeline.from_pretrained(trained), SemFlowPipeline.from_pretrained(out)
    assert tuned.labels == base.labels and tuned.anchor_spec == base.anchor_spec
    with safe_open(out / "unet" / "diffusion_pytorch_model.safetensors", "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}
    assert tuned.segment(np.zeros((30, 40, 3), np.uint8)).ids[0].shape == (30, 40)
    lineage = json.loads((out / "training_summary.json").read_text())["initialised_from"]
    assert (lineage["model"], lineage["steps"], lineage["initialised_from"]) == (str(trained), 2, None)
    card = (out / "README.md").read_text()
    assert "as it was then (2 steps" in card and "a fresh net before that; 4 optimiser steps" in card
    assert f"Before that, `{trained}` (the model this run started from) was trained with:" in card
    grandchild = train.init_lineage(str(out))  # what a run initialised from the fine-tuned model records
    assert (grandchild["steps"], grandchild["initialised_from"]["model"]) == (2, str(trained))


def test_fine_tune_to_a_label_set_that_does_not_fit_the_anchors_fails_clearly(trained, config_file, tmp_path):
    annotations = write_annotation_folder(tmp_path / "annotations", count=2)
    with pytest.raises(ValueError, match="does not fit the model's anchor grid"):
        train.main(["--dataset", str(annotations), "--output-dir", str(tmp_path / "o"), "--config",
                    str(config_file), "--init-from", str(trained), "--label-set", "coco-stuff",
                    "--validation-split", "none"])


def test_masks_with_ids_outside_the_label_set_fail_clearly(trained, config_file, tmp_path):
    annotations = write_annotation_folder(tmp_path / "annotations", count=2)
    PIL.Image.fromarray(np.full((30, 40), 40, np.uint8)).save(annotations / "masks" / "a0.png")
    with pytest.raises(ValueError, match=r"mask holds ids \[40\] outside the label set"):
        train.main(["--dataset", str(annotations), "--output-dir", str(tmp_path / "o"), "--config",
                    str(config_file), "--init-from", str(trained), "--validation-split", "none"])


def test_a_failing_run_still_leaves_its_process_group(dataset, config_file, tmp_path, monkeypatch):
    """Like a finished run, one that raises ends its accelerator (the process group a multi-process launch holds)."""
    ended = []
    monkeypatch.setattr(train.Accelerator, "end_training", lambda self: ended.append(self))
    monkeypatch.setattr(train, "loop", lambda run: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        train.main(["--dataset", str(dataset), "--output-dir", str(tmp_path / "o"), "--config", str(config_file)])
    assert len(ended) == 1


def test_save_then_load_reproduces_the_trained_pipeline(trained, tmp_path):
    from training.baselines import load_trained

    pipe = SemFlowPipeline.from_pretrained(trained)
    assert isinstance(load_trained(str(trained)), SemFlowPipeline)  # a SemFlow folder as a judge loads as itself
    pipe.save_pretrained(tmp_path / "copy")
    for config in [tmp_path / "copy" / "model_index.json", *(tmp_path / "copy").glob("*/config.json")]:
        assert "_name_or_path" not in json.loads(config.read_text()), f"{config.name} records where it was loaded from"
    copy = SemFlowPipeline.from_pretrained(tmp_path / "copy")
    image = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    assert np.array_equal(pipe.segment(image).ids[0], copy.segment(image).ids[0])
    mask = pipe.segment(image).ids[0]
    assert np.array_equal(np.asarray(pipe.synthesize(mask, seed=3).images[0]),
                          np.asarray(copy.synthesize(mask, seed=3).images[0]))


@pytest.mark.slow  # the real Inception net on CPU
def test_evaluate_refuses_a_judge_without_synthesis(trained, dataset, capsys):
    with pytest.raises(SystemExit):
        evaluate.main(["--model", str(trained), "--dataset", str(dataset), "--judge", str(trained)])
    assert "--judge scores the cycle of the synthesized images: add --synthesis" in capsys.readouterr().err


@pytest.mark.slow  # the real Inception net on CPU and FID's 2048x2048 matrix square root: 27-77 s here
def test_evaluate_writes_json_markdown_chart_and_updates_the_card(trained, dataset, tmp_path):
    results = evaluate.main(["--model", str(trained), "--dataset", str(dataset), "--steps", "1", "2",
                             "--synthesis", "--seeds", "0", "1", "--synthesis-steps", "2", "--out",
                             str(tmp_path / "eval"), "--update-card", "--judge", str(trained)])
    assert [(r["steps"], r["solver"]) for r in results["segmentation"]] == [(1, "euler"), (2, "euler")]
    row = results["segmentation"][0]
    assert 0 <= row["miou"] <= 100 and set(row["per_class_iou"]) == set(SemFlowPipeline.from_pretrained(
        trained).labels.class_names)
    synthesis = results["synthesis"]
    assert {"fid", "kid", "real_vs_real", "diversity", "cycle"} <= set(synthesis)
    assert np.isfinite(synthesis["fid"]) and synthesis["fid"] > 0 and np.isfinite(synthesis["kid"])
    assert 0 <= synthesis["cycle"]["miou"] <= 100 and synthesis["diversity"]["pixel_l1_between_seeds"] > 0
    assert synthesis["judged_cycle"]["miou"] == pytest.approx(synthesis["cycle"]["miou"]), "judged by itself"
    assert "The same cycle judged by" in results["markdown"]
    assert (tmp_path / "eval" / "iou_euler_1.png").is_file() and (tmp_path / "eval" / "evaluation.md").is_file()
    assert "synthesized vs real" in (trained / "README.md").read_text()


def test_evaluate_scores_the_held_out_drives_beside_the_same_drive(trained, tmp_path):
    dataset = write_hub_dataset(tmp_path / "drives", train=6, validation=4, drives=("0001TP", "0006R0"))
    results = evaluate.main(["--model", str(trained), "--dataset", str(dataset), "--steps", "1", "--held-out-drives",
                             "0006R0", "--out", str(tmp_path / "eval"), "--flip"])
    assert [r["solver"] for r in results["held_out"]["segmentation"]] == ["euler", "euler + flip"]
    assert results["images"] == 2 and results["held_out"] == {**results["held_out"], "drives": ["0006R0"],
                                                              "images": 5}  # 3 training + 2 validation frames
    same, held_out = results["segmentation"][0], results["held_out"]["segmentation"][0]
    assert 0 <= same["miou"] <= 100 and 0 <= held_out["miou"] <= 100 and held_out["steps"] == 1
    assert "| euler | 1 | " + f"{same['miou']:.2f} | {held_out['miou']:.2f} |" in results["markdown"]
    assert "drives it never trained on (`0006R0`: every labelled frame of them, 5 images)" in results["markdown"]
    assert (tmp_path / "eval" / "iou_euler_1_held_out.png").is_file()
    with pytest.raises(ValueError, match=r"held-out drive\(s\) \['Z'\] have no frame"):
        evaluate.main(["--model", str(trained), "--dataset", str(dataset), "--steps", "1", "--held-out-drives", "Z",
                       "--out", str(tmp_path / "eval")])


def test_push_uploads_the_model_folder_without_checkpoints(trained, monkeypatch):
    hub = RecordingHub(monkeypatch)
    assert push.main([str(trained), "acme/semflow-toy"]) == 0
    assert [(r["repo_id"], r["repo_type"], r["private"], r["exist_ok"]) for r in hub.repos] == [
        ("acme/semflow-toy", "model", None, True)]
    (upload,) = hub.uploads
    assert upload["repo_type"] == "model" and upload["repo_id"] == "acme/semflow-toy"
    assert {"README.md", "model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors"} <= set(
        upload["files"])
    assert not [f for f in upload["files"] if f.startswith(("checkpoint-", "samples/", "logs/"))]


def test_train_push_to_hub(dataset, config_file, tmp_path, monkeypatch):
    hub = RecordingHub(monkeypatch)
    train.main(["--dataset", str(dataset), "--output-dir", str(tmp_path / "run"), "--config", str(config_file),
                "--max-steps", "1", "--validation-split", "none", "--push-to-hub", "acme/pushed", "--private"])
    assert [(r["repo_id"], r["repo_type"], r["private"]) for r in hub.repos] == [("acme/pushed", "model", True)]
    assert "README.md" in hub.uploads[0]["files"]
    assert "python -m training.train" in hub.uploads[0]["contents"]["README.md"].decode()


def test_push_refuses_a_folder_that_is_not_a_model(tmp_path, capsys):
    assert push.main([str(tmp_path), "acme/x"]) == 2
    assert "not a saved pipeline" in capsys.readouterr().err


def test_symmetric_training_and_widening_a_paper_model(trained, dataset, config_file, tmp_path):
    out = train.main(["--dataset", str(dataset), "--output-dir", str(tmp_path / "symmetric"), "--config",
                      str(config_file), "--max-steps", "2", "--formulation", "symmetric", "--prediction", "data",
                      "--perturbation", "0"])
    pipe = SemFlowPipeline.from_pretrained(out)
    assert (pipe.config.formulation, pipe.config.prediction) == ("symmetric", "data")
    assert "SymmFlow" in (out / "README.md").read_text() and "data prediction" in (out / "README.md").read_text()
    assert pipe.segment(np.zeros((30, 40, 3), np.uint8)).ids[0].shape == (30, 40)
    widened = train.main(["--dataset", str(dataset), "--output-dir", str(tmp_path / "widened"), "--config",
                          str(config_file), "--max-steps", "1", "--init-from", str(trained), "--formulation",
                          "symmetric", "--validation-split", "none"])
    assert SemFlowPipeline.from_pretrained(widened).unet.config.in_channels == 2 * pipe.codec.latent_channels


@pytest.mark.parametrize("kind,task", [("cross-entropy", "segment"), ("conditional-flow", "synthesize")])
def test_study_baselines_train_and_do_their_one_task(dataset, config_file, tmp_path, kind, task):
    from training.baselines import Baseline, load_trained

    out = train.main(["--dataset", str(dataset), "--output-dir", str(tmp_path / kind), "--config", str(config_file),
                      "--max-steps", "2", "--formulation", kind])
    model = Baseline.from_pretrained(out)
    judge = load_trained(out)  # what evaluate's --judge and the study load: the baseline, not a pipeline
    assert isinstance(judge, Baseline) and judge.name_or_path == str(out) and judge.tasks == (task,)
    assert model.tasks == (task,) and not (out / "README.md").exists()  # a baseline is not a shipped model
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["steps"] == 2 and summary["seconds_per_step"] > 0
    if task == "segment":
        assert "val_miou" in summary["last_validation"]
        assert model.segment(np.zeros((30, 40, 3), np.uint8)).ids[0].shape == (30, 40)
        with pytest.raises(ValueError, match="cannot synthesize"):
            model.synthesize(np.zeros((30, 40), np.uint8))
        scored = evaluate.main(["--model", str(out), "--dataset", str(dataset), "--steps", "1", "--out",
                                str(tmp_path / "eval")])  # evaluate loads the folder as load_trained does
        assert scored["model"] == str(out) and 0 <= scored["segmentation"][0]["miou"] <= 100
        with pytest.raises(SystemExit, match="cross-entropy study baseline, which cannot synthesize; leave out"):
            evaluate.main(["--model", str(out), "--dataset", str(dataset), "--synthesis"])
        with pytest.raises(SystemExit, match="--update-card writes a SemFlow model's card"):
            evaluate.main(["--model", str(out), "--dataset", str(dataset), "--update-card"])
    else:
        images = model.synthesize(np.zeros((30, 40), np.uint8), seed=0, num_images_per_mask=2).images
        assert [im.size for im in images] == [(40, 30)] * 2 and images[0] != images[1]
        with pytest.raises(SystemExit, match="conditional-flow study baseline, which cannot segment"):
            evaluate.main(["--model", str(out), "--dataset", str(dataset)])


def test_evaluate_says_what_a_folder_without_a_model_lacks(dataset, tmp_path):
    with pytest.raises(SystemExit, match=r"holds neither a SemFlow model \(model_index.json\) nor a study baseline "
                                         r"\(baseline.json\)"):
        evaluate.main(["--model", str(tmp_path), "--dataset", str(dataset)])


@pytest.mark.parametrize("option", ["--validation-steps", "--checkpointing-steps", "--log-every"])
def test_every_so_many_steps_is_at_least_one(dataset, config_file, tmp_path, option):
    from training.config import ConfigError

    name = option[2:].replace("-", "_")
    with pytest.raises(ConfigError, match=f"{name} \\({option}\\) must be a whole number of optimizer steps, at "
                                          f"least 1, got 0"):
        train.main(["--dataset", str(dataset), "--output-dir", str(tmp_path / "o"), "--config", str(config_file),
                    option, "0"])
    assert not (tmp_path / "o").exists(), "refused before the run folder is made"


@pytest.mark.slow  # a process of its own
def test_the_training_command_says_a_bad_setting_in_a_sentence(dataset, config_file, tmp_path):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "training.train", "--dataset", str(dataset), "--output-dir",
                             str(tmp_path / "o"), "--config", str(config_file), "--validation-steps", "0"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.stderr.strip().endswith("to train without validation, give --validation-split none")


def test_a_dataset_folder_rewritten_in_place_loads_its_new_rows(tmp_path):
    from training.data import load_split

    folder = write_hub_dataset(tmp_path / "streets", train=3)
    assert len(load_split(str(folder), "train")) == 3
    write_hub_dataset(tmp_path / "streets", train=5)
    assert len(load_split(str(folder), "train")) == 5
    other = write_hub_dataset(tmp_path / "elsewhere" / "streets", train=4)  # same name, another folder
    assert len(load_split(str(other), "train")) == 4


def test_the_cycle_term_reads_the_estimated_image_with_a_frozen_segmenter(dataset, config_file, trained, tmp_path):
    out = tmp_path / "cycle"
    train.main(["--dataset", str(dataset), "--output-dir", str(out), "--config", str(config_file), "--max-steps", "1",
                "--init-from", str(trained), "--cycle-weight", "0.2", "--log-every", "1"])
    first = _log(out)[0]
    assert first["loss_cycle"] > 0
    assert first["loss"] == pytest.approx(first["loss_flow"] + 0.2 * first["loss_cycle"], rel=1e-5)
    with pytest.raises(ValueError, match="cycle_weight needs a trained segmenter: set cycle_segmenter"):
        train.main(["--dataset", str(dataset), "--output-dir", str(tmp_path / "o"), "--config", str(config_file),
                    "--max-steps", "1", "--cycle-weight", "0.2"])
    other = tmp_path / "other-classes"
    SemFlowPipeline.from_pretrained(trained).with_changes(label_set="cityscapes").save_pretrained(other)
    with pytest.raises(ValueError, match=f"the cycle segmenter {other} reads the classes"):
        train.main(["--dataset", str(dataset), "--output-dir", str(tmp_path / "o2"), "--config", str(config_file),
                    "--max-steps", "1", "--init-from", str(trained), "--cycle-weight", "0.2",
                    "--cycle-segmenter", str(other)])


def test_a_fresh_flow_net_starts_from_a_cross_entropy_segmenter(tmp_path):
    from training.baselines import Baseline
    from training.config import load_config
    from training.model import build_pipeline

    labels = SemFlowPipeline(tiny_unet(3), label_set="camvid", pixel_factor=1).labels
    small = {"decoder_channels": [16, 16, 16, 16, 16], "time_embedding_dim": 32}
    torch.manual_seed(0)
    segmenter = Baseline.build("cross-entropy", labels, 1, (64, 96), "encoder-unet", small)
    segmenter.save_pretrained(tmp_path / "segmenter")
    config = load_config(preset="camvid-pretrained", unet=small, resolution=[64, 96],
                         init_net_from=str(tmp_path / "segmenter"), dataset="unused")
    net = build_pipeline(config, labels).unet
    source, target = segmenter.unet.state_dict(), net.state_dict()
    assert torch.equal(target["trunk.blocks.3.depthwise.0.weight"], source["trunk.blocks.3.depthwise.0.weight"])
    assert torch.equal(target["blocks.2.conv1.weight"], source["blocks.2.conv1.weight"])
    stem = target["trunk.stem.0.weight"]
    assert torch.equal(stem[:, :3], source["trunk.stem.0.weight"]) and not stem[:, 3:].any()
    merge = target["merge.4.weight"]
    state_start = merge.shape[1] - net.config.in_channels * 4
    image_end = state_start + 3 * 4  # the image's channels, space-to-depth: the segmenter's whole input
    assert torch.equal(merge[:, :image_end], source["merge.4.weight"]) and not merge[:, image_end:].any()
    assert not target["conv_out.weight"].any() and not target["conv_out.bias"].any()
    classes = build_pipeline(load_config(preset="camvid-pretrained", unet=small, resolution=[64, 96], dataset="unused",
                                         mask_head="classes", init_net_from=str(tmp_path / "segmenter")), labels)
    head = classes.unet.state_dict()["conv_out.weight"]  # the segmenter's logits after the image's 3 channels (x4)
    assert torch.equal(head[12:], source["conv_out.weight"]) and not head[:12].any()
    from semflow.velocity import net_output

    image = torch.rand(1, 3, 64, 96) * 2 - 1  # at the image end, with noise in the mask channels: its logits exactly
    state = classes.formulation.segmentation_start(image, torch.Generator().manual_seed(0))
    with torch.no_grad():
        flow_logits = classes.read_output(net_output(classes.unet, state, classes.formulation.image_time))[1]
        segmenter_logits = net_output(segmenter.unet, image, 0.0)
    assert torch.allclose(flow_logits, segmenter_logits, atol=1e-4)
    grown = build_pipeline(load_config(preset="camvid-pretrained", resolution=[64, 96], dataset="unused",
                                       unet={**small, "extra_decoder_blocks": [1, 0, 2, 0, 1]}, mask_head="classes",
                                       init_net_from=str(tmp_path / "segmenter")), labels)
    assert list(grown.unet.config.extra_decoder_blocks) == [1, 0, 2, 0, 1]
    with torch.no_grad():  # more decoder blocks, still exactly the segmenter's logits at the image end
        grown_logits = grown.read_output(net_output(grown.unet, state, grown.formulation.image_time))[1]
    assert torch.allclose(grown_logits, segmenter_logits, atol=1e-4)
    with pytest.raises(ValueError, match=r"differs from the net to train in \['decoder_channels'\]"):
        build_pipeline(load_config(preset="camvid-pretrained", resolution=[64, 96],
                                   unet={**small, "decoder_channels": [24] * 5}, dataset="unused",
                                   init_net_from=str(tmp_path / "segmenter")), labels)



@pytest.fixture
def fresh_accelerator_state():
    """Accelerate keeps one state per process, set by the first run; a run in another precision needs it reset."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


def test_bf16_mixed_precision_trains_and_resumes(dataset, config_file, tmp_path, fresh_accelerator_state):
    """The GPU command's settings (bf16 autocast, a larger batch, --resume on an empty folder), here on the CPU."""
    out = tmp_path / "run"
    common = ["--dataset", str(dataset), "--output-dir", str(out), "--config", str(config_file),
              "--mixed-precision", "bf16", "--batch-size", "4", "--resume"]
    train.main([*common, "--max-steps", "2"])
    train.main([*common, "--max-steps", "3"])
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["steps"] == 3 and [run["from_step"] for run in summary["runs"]] == [0, 2]
    assert json.loads((out / "train_config.json").read_text())["mixed_precision"] == "bf16"
    assert np.isfinite(_log(out)[-1]["loss"])


def test_the_gpu_recipe_trains_a_segmenter_then_the_flow_from_it_in_bf16(dataset, tmp_path, fresh_accelerator_state):
    """The two runs of the GPU recipe (docs/training.md, "On a GPU"), here on the CPU with a tiny net: a cross-entropy
    segmenter on every labelled frame, then the flow with the classes mask head started from it, each in bf16 with a
    larger batch and resumed."""
    tiny = {**TINY_CONFIG, "resolution": [32, 64], "crop": [32, 64], "pixel_factor": 1, "net": "encoder-unet",
            "unet": {"decoder_channels": [16, 16, 16, 16, 8], "time_embedding_dim": 16}}
    segmenter, flow = tmp_path / "segmenter", tmp_path / "flow"
    (tmp_path / "segmenter.json").write_text(json.dumps({**tiny, "formulation": "cross-entropy"}))
    (tmp_path / "flow.json").write_text(json.dumps({
        **tiny, "formulation": "symmetric", "prediction": "data", "perturbation": 0.0, "mask_head": "classes",
        "cross_entropy_weight": 3.0, "perceptual_weight": 0.5, "image_end_probability": 0.5,
        "init_net_from": str(segmenter)}))
    common = ["--dataset", str(dataset), "--train-split", "train+validation", "--validation-split", "none",
              "--mixed-precision", "bf16", "--batch-size", "4", "--resume"]
    train.main([*common, "--output-dir", str(segmenter), "--config", str(tmp_path / "segmenter.json"),
                "--max-steps", "2"])
    train.main([*common, "--output-dir", str(flow), "--config", str(tmp_path / "flow.json"), "--max-steps", "1"])
    train.main([*common, "--output-dir", str(flow), "--config", str(tmp_path / "flow.json"), "--max-steps", "2"])
    summary = json.loads((flow / "training_summary.json").read_text())
    assert summary["steps"] == 2 and [run["from_step"] for run in summary["runs"]] == [0, 1]
    assert summary["train_rows"] == 9  # train + validation
    assert json.loads((flow / "train_config.json").read_text())["init_net_from"] == str(segmenter)
    assert summary["initialised_from"]["model"] == str(segmenter) and summary["initialised_from"]["steps"] == 2
    assert f"- **Net started from the cross-entropy segmenter**: `{segmenter}` as it was then (2 steps, " in \
        (flow / "README.md").read_text(), "the card says how the segmenter it started from was trained"
    model = SemFlowPipeline.from_pretrained(flow)
    assert model.config.mask_head == "classes" and np.isfinite(_log(flow)[-1]["loss"])
