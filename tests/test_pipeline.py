"""SemFlowPipeline: sizes and modes in, sizes out; reproducible seeds; save → load equality; clear errors."""

import io

import numpy as np
import PIL.Image
import pytest
import torch
from conftest import tiny_pipeline

from semflow import SemFlowPipeline, load_pipeline, loading

SIZES = [(1, 1), (17, 9), (33, 47), (64, 48)]  # (width, height), odd on purpose


def _rgb(width, height, seed=0):
    rng = np.random.default_rng(seed)
    return PIL.Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def _image_modes(width, height):
    rgb = _rgb(width, height)
    palette = rgb.convert("P")
    transparent = rgb.convert("P")
    transparent.info["transparency"] = 0
    wide = np.random.default_rng(1).integers(0, 65535, (height, width), dtype=np.uint16)
    return {
        "RGB": rgb, "RGBA": rgb.convert("RGBA"), "L": rgb.convert("L"), "LA": rgb.convert("LA"), "P": palette,
        "P+transparency": transparent, "1": rgb.convert("1"), "CMYK": rgb.convert("CMYK"),
        "YCbCr": rgb.convert("YCbCr"), "I;16": PIL.Image.fromarray(wide), "I": rgb.convert("I"),
        "F": PIL.Image.fromarray(np.asarray(rgb.convert("L"), np.float32) / 255.0),
        "numpy uint8": np.asarray(rgb), "numpy gray": np.asarray(rgb.convert("L")), "numpy uint16": wide,
        "numpy float": np.asarray(rgb, np.float32) / 255.0, "numpy RGBA": np.asarray(rgb.convert("RGBA")),
        "torch float": torch.from_numpy(np.asarray(rgb).copy()).permute(2, 0, 1).float() / 255.0,
        "torch uint8": torch.from_numpy(np.asarray(rgb).copy()).permute(2, 0, 1),
    }


@pytest.mark.parametrize("width,height", SIZES)
def test_segment_returns_one_map_per_image_at_its_size_for_every_mode(pipe, width, height):
    images = _image_modes(width, height)
    out = pipe.segment(list(images.values()), batch_size=5)
    assert len(out.ids) == len(images)
    for mode, labels in zip(images, out.ids):
        assert labels.shape == (height, width), mode
        assert labels.dtype == np.uint8 and labels.max() < pipe.labels.num_classes, mode


def test_segment_accepts_a_batch_tensor_and_applies_exif_orientation(pipe):
    batch = torch.rand(3, 3, 21, 13)
    assert [m.shape for m in pipe.segment(batch).ids] == [(21, 13)] * 3
    image = _rgb(30, 20)
    exif = image.getexif()
    exif[0x0112] = 6  # rotated: the upright image is 20 wide, 30 high
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif.tobytes())
    assert pipe.segment(PIL.Image.open(buffer)).ids[0].shape == (30, 20)


@pytest.mark.parametrize("width,height", SIZES)
def test_synthesize_returns_images_at_the_mask_size(pipe, width, height):
    ids = np.random.default_rng(0).integers(0, 12, (height, width))
    masks = [ids.astype(np.uint8), PIL.Image.fromarray(ids.astype(np.uint8)), torch.from_numpy(ids),
             PIL.Image.fromarray(ids.astype(np.uint16))]
    out = pipe.synthesize(masks, seed=3, num_images_per_mask=2)
    assert len(out.images) == 8 and out.seeds == [3, 4] * 4
    assert all(im.size == (width, height) and im.mode == "RGB" for im in out.images)


def test_seeds_reproduce_images_and_variants_differ(pipe):
    mask = np.random.default_rng(0).integers(0, 11, (20, 30))
    out = pipe.synthesize([mask, mask], seed=7, num_images_per_mask=2)
    a, b = (np.asarray(im) for im in out.images[:2])
    assert not np.array_equal(a, b)
    assert np.array_equal(a, np.asarray(out.images[2]))  # same mask, same seed
    alone = pipe.synthesize(mask, seed=8).images[0]
    assert np.array_equal(np.asarray(alone), b)  # variant 1 of seed 7 is seed 8
    fresh = pipe.synthesize(mask)
    assert len(fresh.seeds) == 1
    assert np.array_equal(np.asarray(pipe.synthesize(mask, seed=fresh.seeds[0]).images[0]),
                          np.asarray(fresh.images[0]))


def test_perturbation_zero_is_deterministic(pipe):
    mask = np.zeros((16, 24), np.uint8)
    a = pipe.synthesize(mask, perturbation=0, seed=1).images[0]
    b = pipe.synthesize(mask, perturbation=0, seed=2).images[0]
    assert np.array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("solver", ["euler", "heun", "rk45"])
def test_trajectories(pipe, solver):
    seg = pipe.segment(_rgb(20, 10), num_inference_steps=3, solver=solver, return_trajectory=True)
    assert len(seg.trajectory) == 1 and len(seg.trajectory[0]) == 4
    assert seg.trajectory[0][-1].size == (20, 10)
    syn = pipe.synthesize(np.zeros((10, 20), np.uint8), num_inference_steps=2, solver=solver,
                          return_trajectory=True, seed=0)
    assert len(syn.trajectory[0]) == 3 and syn.trajectory[0][0].size == (20, 10)
    assert np.array_equal(np.asarray(syn.trajectory[0][-1]), np.asarray(syn.images[0]))


def test_save_then_load_gives_identical_outputs(pipe, tmp_path):
    pipe.save_pretrained(tmp_path)
    assert (tmp_path / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    assert not list(tmp_path.rglob("*.bin"))
    loaded = SemFlowPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert loaded.config.label_set == pipe.config.label_set and loaded.resolution == pipe.resolution
    assert (loaded.anchor_spec, loaded.config.perturbation) == (pipe.anchor_spec, pipe.config.perturbation)
    image = _rgb(33, 17)
    assert np.array_equal(pipe.segment(image, num_inference_steps=2).ids[0],
                          loaded.segment(image, num_inference_steps=2).ids[0])
    mask = pipe.segment(image).ids[0]
    assert np.array_equal(np.asarray(pipe.synthesize(mask, seed=5).images[0]),
                          np.asarray(loaded.synthesize(mask, seed=5).images[0]))


def test_load_pipeline_env_and_missing_default(pipe, tmp_path, monkeypatch):
    pipe.save_pretrained(tmp_path / "model")
    monkeypatch.setenv("SEMFLOW_MODEL", str(tmp_path / "model"))
    assert load_pipeline().resolution == (16, 24)
    monkeypatch.delenv("SEMFLOW_MODEL")
    monkeypatch.setitem(loading.EMBEDDED_MODELS, loading.DEFAULT_MODEL, tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match="embedded default model is missing"):
        load_pipeline()
    with pytest.raises(ValueError, match="neither an existing folder nor a Hub repo id"):
        load_pipeline("no such/thing/here")


def test_progress_bar_can_be_disabled(capsys):
    noisy = tiny_pipeline()
    noisy.set_progress_bar_config(disable=False)
    noisy.segment(_rgb(8, 8), num_inference_steps=2)
    assert "2/2" in capsys.readouterr().err
    noisy.set_progress_bar_config(disable=True)
    noisy.segment(_rgb(8, 8), num_inference_steps=2)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("call,error,match", [
    (lambda p: p.segment("image.png"), TypeError, "images"),
    (lambda p: p.segment([]), ValueError, "images is an empty list"),
    (lambda p: p.segment(np.zeros((0, 5, 3), np.uint8)), ValueError, "images is empty"),
    (lambda p: p.segment(np.zeros((4, 4, 2), np.uint8)), ValueError, "images arrays"),
    (lambda p: p.segment(np.full((4, 4), 2.0)), ValueError, r"images float arrays .* \[0, 1\]"),
    (lambda p: p.segment(torch.zeros(5, 4, 3)), ValueError, "channels-first"),
    (lambda p: p.segment(np.zeros((4, 4, 3), np.uint8), solver="dpm"), ValueError, "solver"),
    (lambda p: p.segment(np.zeros((4, 4, 3), np.uint8), num_inference_steps=0), ValueError, "steps must be between 1"),
    (lambda p: p.synthesize(np.full((4, 4), 12)), ValueError, r"masks holds ids \[12\]"),
    (lambda p: p.synthesize(np.full((4, 4), -1)), ValueError, "masks holds ids"),
    (lambda p: p.synthesize(np.zeros((4, 4, 3), np.uint8)), ValueError, "masks must be 2-D"),
    (lambda p: p.synthesize(PIL.Image.new("RGB", (4, 4))), ValueError, "masks must be single-channel"),
    (lambda p: p.synthesize(np.full((4, 4), 0.5)), ValueError, "masks must hold integer"),
    (lambda p: p.synthesize(np.zeros((0, 4), np.uint8)), ValueError, "masks is empty"),
    (lambda p: p.synthesize(3), TypeError, "masks"),
    (lambda p: p.synthesize(np.zeros((4, 4), np.uint8), perturbation=64), ValueError,
     "perturbation β must be at least 0 and below"),
    (lambda p: p.synthesize(np.zeros((4, 4), np.uint8), solver="ddim"), ValueError, "solver"),
    (lambda p: p.synthesize(np.zeros((4, 4), np.uint8), num_images_per_mask=0), ValueError,
     "num_images_per_mask"),
    (lambda p: p.synthesize(np.zeros((4, 4), np.uint8), seed=1, generator=torch.Generator()), ValueError, "seed"),
    (lambda p: p.synthesize(np.zeros((4, 4), np.uint8), seed=-1), ValueError, "seed"),
    (lambda p: p.synthesize(np.zeros((4, 4), np.uint8), generator=[torch.Generator()] * 2), ValueError,
     "generator"),
])
def test_bad_inputs_raise_naming_the_argument(pipe, call, error, match):
    with pytest.raises(error, match=match):
        call(pipe)


def test_bad_construction_raises():
    from conftest import tiny_unet

    with pytest.raises(ValueError, match="channels"):
        SemFlowPipeline(tiny_unet(12), pixel_factor=1, resolution=(16, 24))
    with pytest.raises(ValueError, match="multiple of 4"):
        SemFlowPipeline(tiny_unet(12), pixel_factor=2, resolution=(18, 24))
    with pytest.raises(ValueError, match="perturbation"):
        SemFlowPipeline(tiny_unet(12), pixel_factor=2, perturbation=64.0)


def test_a_big_image_is_segmented_at_the_working_size_and_answered_at_its_own(pipe):
    from semflow.limits import WORKING_SIDE

    big = PIL.Image.fromarray(np.random.default_rng(0).integers(0, 256, (1500, 2 * WORKING_SIDE, 3), dtype=np.uint8))
    out = pipe.segment(big, return_confidence=True)
    assert out.ids[0].shape == (1500, 2 * WORKING_SIDE) and out.confidence[0].shape == (1500, 2 * WORKING_SIDE)


def test_segmentation_output_names_its_ids_ids_and_keeps_the_old_name(pipe):
    out = pipe.segment(PIL.Image.new("RGB", (24, 16), (90, 120, 40)))
    assert out.ids[0].shape == (16, 24) and out.ids[0].dtype == np.uint8 and out.labels is out.ids


def test_flip_test_time_augmentation_decodes_the_mean_of_the_two_mask_ends(pipe, monkeypatch):
    image = np.random.default_rng(0).integers(0, 255, (16, 24, 3), dtype=np.uint8)
    flipped = pipe.segment(image, flip=True).ids[0]
    # the mean of an image's and its mirror's mask ends is mirror-symmetric: the mirror gets the mirrored mask
    assert np.array_equal(pipe.segment(image[:, ::-1].copy(), flip=True).ids[0], flipped[:, ::-1])
    # by hand: the two mask ends as the pipeline decodes them, averaged, then the nearest anchor
    from semflow.anchors import nearest_anchors

    ends = []
    original = pipe.codec.decode
    monkeypatch.setattr(pipe.codec, "decode", lambda z: ends.append(original(z)) or original(z))
    pipe.segment(image, flip=True)
    both = ends[0].float()
    ids, _ = nearest_anchors((both[:1] + both[1:].flip(-1)) / 2, pipe.labels.num_classes, pipe.anchor_spec, None)
    assert np.array_equal(ids[0].numpy().astype(np.uint8), flipped)
