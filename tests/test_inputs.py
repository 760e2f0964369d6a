"""Reading uploads and pipeline inputs: first frames said so, palette masks read by colour when they are colour
previews, big images brought to the working size before any full-size float conversion, normal sizes unchanged."""

import io
import tracemalloc

import numpy as np
import PIL.Image
import pytest
import torch
from conftest import tiny_pipeline
from image_files import frames_file

from app.errors import InputError
from app.inputs import open_image, open_mask
from semflow.images import ids_at_working_size, input_size, pil_to_rgb, read_image, to_image_tensor, to_label_array
from semflow.labels import CAMVID
from semflow.limits import WORKING_SIDE

RNG = np.random.default_rng(0)
IDS = np.repeat(np.array([[0, 3, 8, 11, 4]], np.uint8), 9, axis=0).repeat(3, axis=1)  # 9x15: four classes + ignore


def _noise(height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _picture(height, width):
    """Smooth gradients with sharp stripes: quick to encode at any size, with detail a bad resize would alias."""
    x, y = np.arange(width), np.arange(height)[:, None]
    stripes = (((x // 7) % 2).astype(np.uint8)[None] ^ ((y // 5) % 2).astype(np.uint8)) * np.uint8(255)
    return np.stack([np.broadcast_to((x * 255 // width).astype(np.uint8), stripes.shape),
                     np.broadcast_to((y * 255 // height).astype(np.uint8), stripes.shape), stripes], -1)


@pytest.mark.parametrize("suffix,kind", [(".gif", "GIF"), (".tiff", "TIFF")])
def test_multi_frame_files_use_the_first_frame_and_say_so(tmp_path, suffix, kind):
    frames = [np.full((12, 16, 3), value, np.uint8) for value in (30, 150, 240)]
    path = frames_file(tmp_path / f"many{suffix}", frames)
    notices = []
    image = open_image(path, notices=notices)
    assert np.array_equal(np.asarray(image), frames[0])
    assert notices == [f"The image has 3 frames ({kind}); only the first frame was used."]
    single = tmp_path / f"one{suffix}"
    PIL.Image.fromarray(frames[1]).save(single)
    notices = []
    assert np.array_equal(np.asarray(open_image(single, notices=notices)), frames[1]) and notices == []
    assert np.array_equal(np.asarray(open_image(path)), frames[0])  # existing callers: no notices argument


def test_a_gif_mask_in_display_colours_is_read_by_colour(tmp_path):
    path = frames_file(tmp_path / "mask.gif", [CAMVID.colorize(IDS), CAMVID.colorize(IDS[::-1, ::-1])])
    indices = np.asarray(PIL.Image.open(path))
    assert not np.array_equal(indices, IDS)  # the GIF's palette order is not the class order: indices are not ids
    notices = []
    assert np.array_equal(open_mask(path, CAMVID, notices=notices), IDS)
    assert notices == ["The mask has 2 frames (GIF); only the first frame was used.",
                       "The mask is a palette image in the display colours of 'camvid'; it was read by colour."]


def test_palette_images_not_in_display_colours_keep_indices_as_ids(tmp_path):
    mask = PIL.Image.fromarray(IDS, "L").convert("P")  # an ids image converted to palette: grey levels
    mask.save(tmp_path / "grey.png")
    notices = []
    assert np.array_equal(open_mask(tmp_path / "grey.png", CAMVID, notices=notices), IDS)
    assert notices == ["The mask is a palette image; its palette indices were read as class ids."]
    other = PIL.Image.fromarray(IDS, "P")
    other.putpalette([value for i in range(256) for value in (i * 7 % 256, 5, 200)])  # colours of no label set
    other.save(tmp_path / "other.png")
    assert np.array_equal(open_mask(tmp_path / "other.png", CAMVID), IDS)
    PIL.Image.fromarray(IDS).save(tmp_path / "ids.png")
    notices = []
    assert np.array_equal(open_mask(tmp_path / "ids.png", CAMVID, notices=notices), IDS) and notices == []
    bad = PIL.Image.fromarray(np.full((9, 15), 40, np.uint8), "P")
    bad.putpalette([7, 8, 9] * 256)
    bad.save(tmp_path / "bad.png")
    with pytest.raises(InputError, match=r"holds ids \[40\]"):
        open_mask(tmp_path / "bad.png", CAMVID)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_big_uploads_come_at_the_working_size_with_their_mask(tmp_path, suffix):
    PIL.Image.fromarray(_picture(2001, 3001)).save(tmp_path / f"big{suffix}")  # JPEG: decoded at a reduced scale
    PIL.Image.fromarray(_picture(2001, 3001)[..., 2] // 255 * 8).save(tmp_path / "big_ids.png")
    notices = []
    image = open_image(tmp_path / f"big{suffix}", notices=notices)
    assert image.size == (1024, 683) and image.mode == "RGB"
    assert notices == ["The image is 3001x2001; it was brought to 1024x683, the working size. Saved annotations "
                       "use this size."]
    ids = open_mask(tmp_path / "big_ids.png", CAMVID, size=image.size)
    assert ids.shape == (683, 1024)
    with pytest.raises(InputError, match="The mask is 3001x2001 but the image is 1024x600; they must be the same"):
        open_mask(tmp_path / "big_ids.png", CAMVID, size=(1024, 600))


def test_normal_sizes_are_converted_as_before():
    image = PIL.Image.fromarray(_noise(480, 640))
    before = torch.from_numpy(np.asarray(pil_to_rgb(image)).copy()).permute(2, 0, 1).float() / 255.0
    assert torch.equal(to_image_tensor(image), before)
    assert torch.equal(to_image_tensor(np.asarray(image)), before)
    side = PIL.Image.fromarray(_noise(WORKING_SIDE, 700))
    assert to_image_tensor(side).shape == (3, WORKING_SIDE, 700)
    labels = RNG.integers(0, 12, (480, 640))
    assert np.array_equal(to_label_array(labels), labels)


def test_big_pipeline_inputs_never_become_full_size_arrays():
    big = PIL.Image.fromarray(_picture(3000, 4500))  # 13.5 megapixels: 40 MB as uint8, 162 MB as float32
    tracemalloc.start()
    try:
        tensor = to_image_tensor(big)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert tensor.shape == (3, 683, 1024) and peak < 10e6  # numpy arrays are traced: none at full size
    array = np.asarray(big)
    from_array = to_image_tensor(array)
    assert from_array.shape == (3, 683, 1024) and (from_array - tensor)[:2].abs().max() < 0.02  # smooth channels
    floats = np.asarray(big.resize((1500, 1000)), np.float32) / 255
    assert to_image_tensor(floats).shape == (3, 683, 1024) and to_image_tensor(floats).max() <= 1.0
    assert to_image_tensor(np.ones((1000, 1500), bool)).min() == 1.0
    assert input_size(big) == input_size(array) == (3000, 4500)
    assert input_size(torch.zeros(3, 3000, 4500)) == (3000, 4500)
    labels = np.zeros((3000, 4500), np.uint8)
    labels[:, 2250:] = 5
    small = ids_at_working_size(labels)
    assert small.shape == (683, 1024) and set(np.unique(small)) == {0, 5} and small[0, 511] == 0 and small[0, 512] == 5
    assert to_label_array(labels).shape == (3000, 4500)  # training pairs label maps with full-size images


def test_the_pipeline_never_converts_a_big_image_at_full_size(monkeypatch):
    import semflow.images

    pipe = tiny_pipeline()
    seen = []
    convert = semflow.images.pil_to_rgb
    monkeypatch.setattr(semflow.images, "pil_to_rgb", lambda image: seen.append(image.size) or convert(image))
    pipe.segment(PIL.Image.fromarray(_picture(1200, 2400)))
    assert seen == [(1024, 512)]


def test_read_image_accepts_file_objects_and_names_what_is_wrong(tmp_path):
    buffer = io.BytesIO()
    PIL.Image.fromarray(_noise(20, 30)).save(buffer, format="PNG")
    assert read_image(io.BytesIO(buffer.getvalue()), "The photo").image.size == (30, 20)
    with pytest.raises(ValueError, match="The photo is not a readable image file"):
        read_image(io.BytesIO(b"not an image"), "The photo")
    with pytest.raises(ValueError, match="The photo does not exist"):
        read_image(tmp_path / "nothing.png", "The photo")
    with pytest.raises(ValueError, match="The photo is a folder"):
        read_image(tmp_path, "The photo")
