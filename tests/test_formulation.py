"""The two formulations: SymmFlow's path and targets by hand, both tasks in both formulations, save/load keeps the
formulation, old models load as the paper's, and a paper model widens into the symmetric one."""

import json

import numpy as np
import pytest
import torch
from conftest import tiny_pipeline, tiny_unet

from semflow import SemFlowPipeline
from semflow.anchors import decode_anchors
from semflow.formulation import SymmetricFormulation, get_formulation
from semflow.velocity import net_output
from training.model import reformulate


def symmetric_interpolate(x, y, xi_x, xi_y, t):
    return SymmetricFormulation.image_path(x, xi_x, t), SymmetricFormulation.mask_path(y, xi_y, t)


def symmetric_target_velocity(x, y, xi_x, xi_y):
    return SymmetricFormulation.image_velocity(x, xi_x), SymmetricFormulation.mask_velocity(y, xi_y)


def test_symmetric_path_and_targets_by_hand():
    x, y = torch.tensor([[2.0]]), torch.tensor([[-1.0]])
    xi_x, xi_y = torch.tensor([[0.5]]), torch.tensor([[3.0]])
    x_t, y_t = symmetric_interpolate(x, y, xi_x, xi_y, torch.tensor([0.25]))
    assert x_t.item() == pytest.approx(0.75 * 0.5 + 0.25 * 2.0)  # (1−t)·ξ_x + t·x
    assert y_t.item() == pytest.approx(0.75 * -1.0 + 0.25 * 3.0)  # (1−t)·y + t·ξ_y
    v_x, v_y = symmetric_target_velocity(x, y, xi_x, xi_y)
    assert (v_x.item(), v_y.item()) == (1.5, 4.0)  # (x − ξ_x, ξ_y − y)
    ends = [symmetric_interpolate(x, y, xi_x, xi_y, torch.tensor([t])) for t in (0.0, 1.0)]
    assert [(a.item(), b.item()) for a, b in ends] == [(0.5, -1.0), (2.0, 3.0)]  # t=0: (ξ_x, y); t=1: (x, ξ_y)


def test_training_pairs_of_both_formulations():
    z_image, z_mask = torch.randn(3, 2, 4, 4), torch.randn(3, 2, 4, 4)
    t = torch.tensor([0.0, 0.5, 1.0])
    paper = get_formulation("semflow")
    x_t, target = paper.training_pair(z_image, z_mask, t)
    assert torch.equal(x_t[0], z_image[0]) and torch.equal(x_t[2], z_mask[2]) and torch.equal(target, z_mask - z_image)
    symmetric = get_formulation("symmetric")
    x_t, target = symmetric.training_pair(z_image, z_mask, t, torch.Generator().manual_seed(0))
    generator = torch.Generator().manual_seed(0)
    xi_x, xi_y = torch.randn(z_image.shape, generator=generator), torch.randn(z_mask.shape, generator=generator)
    assert x_t.shape == (3, 4, 4, 4) and torch.allclose(target, torch.cat([z_image - xi_x, xi_y - z_mask], 1))
    assert torch.allclose(x_t[2], torch.cat([z_image[2], xi_y[2]]))  # the image end: (x, ξ_y)
    assert torch.allclose(x_t[0], torch.cat([xi_x[0], z_mask[0]]))  # the mask end: (ξ_x, y)
    distance = torch.tensor([0.0, 0.3])
    assert torch.equal(paper.time_from_image_end(distance), distance)
    assert torch.allclose(symmetric.time_from_image_end(distance), torch.tensor([1.0, 0.7]))
    with pytest.raises(ValueError, match="formulation must be one of"):
        get_formulation("diffusion")


def symmetric_pipeline(seed: int = 0) -> SemFlowPipeline:
    pipe = SemFlowPipeline(tiny_unet(24, seed=seed), label_set="camvid", pixel_factor=2, resolution=(16, 24),
                           synthesis_steps=3, formulation="symmetric")
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.mark.parametrize("make", [tiny_pipeline, symmetric_pipeline])
def test_one_step_segmentation_and_multi_step_synthesis_in_both_formulations(make):
    pipe = make()
    image = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    out = pipe.segment(image)
    assert out.nfe == 1 and out.ids[0].shape == (30, 40) and out.ids[0].max() < 11
    assert np.array_equal(out.ids[0], pipe.segment(image).ids[0])  # the symmetric noise is seeded
    synthesized = pipe.synthesize(out.ids[0], seed=4, num_images_per_mask=2, return_trajectory=True)
    assert synthesized.nfe == 3 and [im.size for im in synthesized.images] == [(40, 30)] * 2
    assert len(synthesized.trajectory[0]) == 4
    assert not np.array_equal(np.asarray(synthesized.images[0]), np.asarray(synthesized.images[1]))
    again = pipe.synthesize(out.ids[0], seed=5).images[0]
    assert np.array_equal(np.asarray(again), np.asarray(synthesized.images[1]))


def test_symmetric_segmentation_is_one_euler_step_from_the_image_end():
    pipe = symmetric_pipeline()
    image = torch.rand(1, 3, 16, 24)
    z_image = pipe.codec.encode(image * 2 - 1)
    xi_y = torch.randn(z_image.shape, generator=torch.Generator().manual_seed(7))
    state = torch.cat([z_image, xi_y], 1)
    y_0 = xi_y - net_output(pipe.unet, state, 1.0)[:, z_image.shape[1]:]  # y_0 = y_1 + (0 − 1)·v_y
    ids = decode_anchors(pipe.codec.decode(y_0), pipe.labels.num_classes, pipe.anchor_spec)[0].numpy()
    assert np.array_equal(pipe.segment(image, seed=7).ids[0], ids)


def test_save_then_load_keeps_the_formulation(tmp_path):
    pipe = symmetric_pipeline()
    pipe.save_pretrained(tmp_path / "symmetric")
    loaded = SemFlowPipeline.from_pretrained(tmp_path / "symmetric")
    assert loaded.config.formulation == "symmetric" and loaded.formulation.name == "symmetric"
    mask = np.zeros((16, 24), np.uint8)
    assert np.array_equal(np.asarray(pipe.synthesize(mask, seed=1).images[0]),
                          np.asarray(loaded.synthesize(mask, seed=1).images[0]))


def test_a_model_saved_before_formulations_existed_loads_as_the_papers(tmp_path):
    tiny_pipeline().save_pretrained(tmp_path / "old")
    index = json.loads((tmp_path / "old" / "model_index.json").read_text())
    del index["formulation"]
    (tmp_path / "old" / "model_index.json").write_text(json.dumps(index))
    loaded = SemFlowPipeline.from_pretrained(tmp_path / "old")
    assert loaded.config.formulation == "semflow" and loaded.formulation.name == "semflow"


def test_the_state_channels_must_match_the_formulation():
    with pytest.raises(ValueError, match="symmetric formulation with the anchors mask head works with 24 in / 24 out"):
        SemFlowPipeline(tiny_unet(12), pixel_factor=2, resolution=(16, 24), formulation="symmetric")
    with pytest.raises(ValueError, match="unknown pipeline settings"):
        tiny_pipeline().with_changes(colour="red")


def test_a_paper_model_widens_into_the_symmetric_formulation():
    paper = tiny_pipeline()
    widened = reformulate(paper, "symmetric", "velocity", perturbation=0.0)
    assert widened.config.formulation == "symmetric" and widened.config.perturbation == 0.0
    old, new = paper.unet.state_dict(), widened.unet.state_dict()
    assert torch.equal(new["conv_in.weight"][:, :12], old["conv_in.weight"])
    assert not new["conv_in.weight"][:, 12:].any() and not new["conv_out.weight"].any()
    assert all(torch.equal(new[k], old[k]) for k in old if not k.startswith(("conv_in.weight", "conv_out.")))
    assert widened.segment(np.zeros((16, 24, 3), np.uint8)).ids[0].shape == (16, 24)
    assert reformulate(widened, "symmetric", "velocity", 0.0) is widened
    with pytest.raises(ValueError, match="can only be fine-tuned as it is"):
        reformulate(widened, "semflow", "velocity", 0.0)
    assert reformulate(paper, "symmetric", "data", 0.0).config.prediction == "data"


def test_data_prediction_turns_clean_ends_into_velocities():
    data = get_formulation("symmetric", "data")
    x, y, xi_x, xi_y = (torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(k)) for k in range(4))
    t = torch.tensor([0.25, 0.75])
    x_t, y_t = symmetric_interpolate(x, y, xi_x, xi_y, t)
    state = torch.cat([x_t, y_t], 1)
    velocity = data.velocity(torch.cat([x, y], 1), state, t)  # a perfect prediction of the clean ends
    assert torch.allclose(velocity, torch.cat(symmetric_target_velocity(x, y, xi_x, xi_y), 1), atol=1e-5)
    pair_state, target = data.training_pair(x, y, t, torch.Generator().manual_seed(0))
    assert torch.equal(target, torch.cat([x, y], 1))
    with pytest.raises(ValueError, match="predicts the velocity"):
        get_formulation("semflow", "data")
    with pytest.raises(ValueError, match="prediction must be one of"):
        get_formulation("symmetric", "noise")


def test_one_step_segmentation_with_data_prediction_is_the_predicted_mask():
    pipe = symmetric_pipeline().with_changes(prediction="data")
    image = torch.rand(1, 3, 16, 24)
    z_image = pipe.codec.encode(image * 2 - 1)
    xi_y = torch.randn(z_image.shape, generator=torch.Generator().manual_seed(3))
    y_hat = net_output(pipe.unet, torch.cat([z_image, xi_y], 1), 1.0)[:, z_image.shape[1]:]
    ids = decode_anchors(pipe.codec.decode(y_hat), pipe.labels.num_classes, pipe.anchor_spec)[0].numpy()
    assert np.array_equal(pipe.segment(image, seed=3).ids[0], ids)
