"""Official checkpoint import, end to end on a tiny randomly initialised SD1.5-shaped stand-in."""

import json

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from semflow import SemFlowPipeline
from semflow.convert_official import OFFICIAL_PERTURBATION, load_official_state_dict, main


@pytest.fixture(scope="module")
def sd_base(tmp_path_factory):
    """An SD1.5 folder layout (unet, vae, text_encoder, tokenizer) with tiny random weights."""
    base = tmp_path_factory.mktemp("sd15")
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, block_out_channels=(16, 32), layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=24, attention_head_dim=4, norm_num_groups=8)
    unet.save_pretrained(base / "unet")
    AutoencoderKL(block_out_channels=(8, 8), down_block_types=("DownEncoderBlock2D",) * 2,
                  up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=4,
                  scaling_factor=0.18215).save_pretrained(base / "vae")
    CLIPTextModel(CLIPTextConfig(vocab_size=10, hidden_size=24, intermediate_size=32, num_hidden_layers=1,
                                 num_attention_heads=4, max_position_embeddings=77, bos_token_id=0,
                                 eos_token_id=1, pad_token_id=1)).save_pretrained(base / "text_encoder")
    (base / "tok").mkdir()
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1, "a</w>": 2, "b</w>": 3}
    (base / "tok" / "vocab.json").write_text(json.dumps(vocab))
    (base / "tok" / "merges.txt").write_text("#version: 0.2\n")
    CLIPTokenizer(str(base / "tok" / "vocab.json"), str(base / "tok" / "merges.txt"),
                  model_max_length=77).save_pretrained(base / "tokenizer")
    (base / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    # The "official" checkpoint: the UNet fine-tuned (here: perturbed) and saved as a DeepSpeed-style state dict.
    with torch.no_grad():
        for p in unet.parameters():
            p.add_(0.01)
    return base, unet


@pytest.mark.parametrize("wrap", ["plain", "module"])
def test_import_runs_end_to_end(sd_base, tmp_path, wrap):
    base, unet = sd_base
    state = unet.state_dict()
    if wrap == "module":
        state = {"module": {f"module.{k}": v for k, v in state.items()}}
    torch.save(state, tmp_path / "face.pt")
    out = tmp_path / "converted"
    assert main(["--unet", str(tmp_path / "face.pt"), "--base", str(base), "--labels", "celebamask-hq",
                 "--resolution", "32", "--out", str(out)]) == 0
    assert (out / "README.md").is_file() and (out / "prompt_embedding" / "config.json").is_file()
    assert not list(out.rglob("*.bin")) and not list(out.rglob("*.pt"))

    pipe = SemFlowPipeline.from_pretrained(out)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.labels.name == "celebamask-hq" and pipe.labels.num_classes == 19
    assert (pipe.anchor_spec.k, pipe.anchor_spec.s) == (6, 50.0)
    assert pipe.config.perturbation == pytest.approx(OFFICIAL_PERTURBATION) == pytest.approx(6.375)
    assert (pipe.config.synthesis_steps, pipe.config.segmentation_steps, pipe.config.solver) == (25, 25, "euler")
    for key, value in unet.state_dict().items():
        assert torch.equal(pipe.unet.state_dict()[key], value), key

    text_encoder = CLIPTextModel.from_pretrained(base / "text_encoder")
    tokenizer = CLIPTokenizer.from_pretrained(base / "tokenizer")
    ids = tokenizer("", padding="max_length", max_length=77, return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.allclose(pipe.prompt_embedding.embedding, text_encoder(ids)[0])

    image = np.random.default_rng(0).integers(0, 256, (37, 29, 3), dtype=np.uint8)
    labels = pipe.segment(image, num_inference_steps=2).ids[0]
    assert labels.shape == (37, 29) and labels.max() < 19
    synthesized = pipe.synthesize(labels, num_inference_steps=2, seed=0).images[0]
    assert synthesized.size == (29, 37)


def test_mismatched_checkpoint_is_refused(sd_base, tmp_path, capsys):
    base, unet = sd_base
    state = dict(unet.state_dict())
    state.pop(next(iter(state)))
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "bad.pt")
    assert main(["--unet", str(tmp_path / "bad.pt"), "--base", str(base), "--out", str(tmp_path / "o")]) == 2
    assert "1 missing keys" in capsys.readouterr().err


def test_checkpoint_must_be_a_state_dict(tmp_path):
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="state dict"):
        load_official_state_dict(tmp_path / "list.pt")
