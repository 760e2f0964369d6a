"""The classes mask head: the net gives class logits for the mask end, whose softmax weighs the anchors; by hand, in
segmentation, in training (its cross-entropy on the logits), saved and loaded, and started from a segmenter."""

import json

import numpy as np
import pytest
import torch
from diffusers import UNet2DModel

from semflow import SemFlowPipeline
from semflow.anchors import anchor_colors, to_model_units


def classes_pipeline(seed=0):
    torch.manual_seed(seed)
    unet = UNet2DModel(sample_size=(16, 24), in_channels=6, out_channels=3 + 11, block_out_channels=(16, 16),
                       layers_per_block=1, down_block_types=("DownBlock2D",) * 2, up_block_types=("UpBlock2D",) * 2,
                       norm_num_groups=8, add_attention=False).eval()
    pipe = SemFlowPipeline(unet, label_set="camvid", pixel_factor=1, resolution=(16, 24), formulation="symmetric",
                           prediction="data", mask_head="classes", synthesis_steps=2)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_the_mask_end_is_the_softmax_mean_of_the_anchors():
    pipe = classes_pipeline()
    output = torch.zeros(1, 14, 1, 2)
    output[0, :3] = 0.25  # the image's channels pass through
    output[0, 3 + 8, 0, 0] = 50.0  # all but certain: car
    output[0, 3 + 0, 0, 1] = output[0, 3 + 3, 0, 1] = 2.0  # sky or road, half and half (the rest e^-2 each)
    read, logits = pipe.read_output(output)
    anchors = to_model_units(anchor_colors(11, pipe.anchor_spec)).float()
    assert torch.equal(logits, output[:, 3:]) and torch.equal(read[0, :3], output[0, :3])
    assert torch.allclose(read[0, 3:, 0, 0], anchors[8], atol=1e-5)
    weights = torch.full((11,), np.exp(-2.0))
    weights[0] = weights[3] = 1.0
    expected = (weights[:, None] * anchors).sum(0) / weights.sum()
    assert torch.allclose(read[0, 3:, 0, 1], expected, atol=1e-5)


def test_segmentation_decodes_the_class_the_logits_choose():
    pipe = classes_pipeline()
    torch.nn.init.zeros_(pipe.unet.conv_out.weight)
    with torch.no_grad():
        pipe.unet.conv_out.bias.zero_()
        pipe.unet.conv_out.bias[3 + 5] = 30.0  # tree everywhere
    assert (pipe.segment(np.zeros((16, 24, 3), np.uint8)).ids[0] == 5).all()
    assert pipe.describe()["mask_head"] == "classes"


def test_segmentation_decodes_the_most_probable_class_where_the_mean_anchor_lies_nearest_another():
    pipe = classes_pipeline()
    anchors = to_model_units(anchor_colors(11, pipe.anchor_spec)).float()
    # sky 0.40, pole (two anchor steps from sky) 0.35, building (between them) 0.25: the mean anchor lies nearest
    # building's, the least probable of the three; the head decodes sky, 0.05 clear of pole
    probabilities = torch.zeros(11)
    probabilities[[0, 2, 1]] = torch.tensor([0.40, 0.35, 0.25])
    mean_anchor = probabilities @ anchors
    assert int(((anchors - mean_anchor) ** 2).sum(1).argmin()) == 1
    torch.nn.init.zeros_(pipe.unet.conv_out.weight)
    with torch.no_grad():
        pipe.unet.conv_out.bias.zero_()
        pipe.unet.conv_out.bias[3:] = (probabilities + 1e-12).log()  # logits whose softmax is these probabilities
    out = pipe.segment(np.zeros((16, 24, 3), np.uint8), return_confidence=True)
    assert (out.ids[0] == 0).all()
    assert np.allclose(out.confidence[0], 0.05, atol=1e-4)
    assert (pipe.segment(np.zeros((16, 24, 3), np.uint8), flip=True).ids[0] == 0).all()


def test_the_head_is_refused_where_the_mask_end_is_not_predicted_per_pixel():
    torch.manual_seed(0)
    unet = UNet2DModel(sample_size=(8, 12), in_channels=12, out_channels=12 + 11, block_out_channels=(16, 16),
                       layers_per_block=1, down_block_types=("DownBlock2D",) * 2, up_block_types=("UpBlock2D",) * 2,
                       norm_num_groups=8, add_attention=False)
    with pytest.raises(ValueError, match="the classes mask head needs the symmetric formulation with data prediction"):
        SemFlowPipeline(unet, pixel_factor=2, formulation="symmetric", prediction="data", mask_head="classes")
    with pytest.raises(ValueError, match=r"mask_head must be one of \('anchors', 'classes'\)"):
        SemFlowPipeline(unet, pixel_factor=2, formulation="symmetric", prediction="data", mask_head="logits")


def test_training_scores_the_logits_by_cross_entropy_and_the_model_saves_its_head(tmp_path):
    from datasets_helpers import TINY_CONFIG, write_hub_dataset

    from training import train

    dataset = write_hub_dataset(tmp_path / "data")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**TINY_CONFIG, "pixel_factor": 1, "formulation": "symmetric", "prediction": "data",
                                  "perturbation": 0.0, "mask_head": "classes", "cross_entropy_weight": 1.0}))
    out = tmp_path / "run"
    train.main(["--dataset", str(dataset), "--output-dir", str(out), "--config", str(config), "--max-steps", "2"])
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["loss_cross_entropy"]) for r in log if "loss" in r)
    pipe = SemFlowPipeline.from_pretrained(out)
    assert pipe.config.mask_head == "classes" and pipe.unet.config.out_channels == 3 + 11
    assert pipe.segment(np.zeros((30, 40, 3), np.uint8)).ids[0].shape == (30, 40)


def test_the_class_cross_entropy_by_hand():
    from training.objectives import class_cross_entropy

    labels = classes_pipeline().labels
    logits = torch.tensor([[2.0, 0.0] + [-30.0] * 9]).view(1, 11, 1, 1).repeat(1, 1, 1, 2)
    ids = torch.tensor([[[0, 11]]])  # the second pixel is ignored
    expected = -torch.log_softmax(logits[0, :, 0, 0], 0)[0]
    assert class_cross_entropy(logits, ids, labels).item() == pytest.approx(expected.item(), rel=1e-6)
