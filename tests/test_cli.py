"""Command line: segment and synthesize files end to end on a tiny saved model; errors are one clear line."""

import subprocess
import sys

import numpy as np
import PIL.Image
import pytest
from conftest import tiny_pipeline
from image_files import bomb_png, frames_file

import semflow.__main__ as cli
from semflow.__main__ import main
from semflow.labels import CAMVID


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    tiny_pipeline().save_pretrained(folder)
    return folder


def test_segment_then_synthesize(model_dir, tmp_path, capsys):
    rng = np.random.default_rng(0)
    (tmp_path / "in").mkdir()
    PIL.Image.fromarray(rng.integers(0, 256, (21, 35, 3), dtype=np.uint8)).save(tmp_path / "in" / "street 1.png")
    PIL.Image.fromarray(rng.integers(0, 256, (9, 11), dtype=np.uint8)).save(tmp_path / "in" / "gray.jpg")
    assert main(["segment", str(tmp_path / "in" / "street 1.png"), str(tmp_path / "in" / "gray.jpg"),
                 "--out", str(tmp_path / "seg"), "--model", str(model_dir), "--steps", "2"]) == 0
    ids = PIL.Image.open(tmp_path / "seg" / "street_1.png")
    assert ids.mode == "L" and ids.size == (35, 21) and np.asarray(ids).max() < 11
    assert PIL.Image.open(tmp_path / "seg" / "street_1_color.png").mode == "RGB"
    assert PIL.Image.open(tmp_path / "seg" / "gray.png").size == (11, 9)

    assert main(["synthesize", str(tmp_path / "seg" / "street_1.png"), str(tmp_path / "seg" / "street_1_color.png"),
                 "--out", str(tmp_path / "syn"), "--model", str(model_dir), "--seeds", "0", "1", "2",
                 "--solver", "heun", "--steps", "2"]) == 0
    outputs = sorted(p.name for p in (tmp_path / "syn").iterdir())
    assert outputs == sorted(f"street_1{suffix}_seed{s}.png" for suffix in ("", "_color") for s in (0, 1, 2))
    # The id PNG and its colour preview are the same mask: same seed, same image.
    assert np.array_equal(np.asarray(PIL.Image.open(tmp_path / "syn" / "street_1_seed1.png")),
                          np.asarray(PIL.Image.open(tmp_path / "syn" / "street_1_color_seed1.png")))


def test_edit_keeps_the_photo_outside_the_edit(model_dir, tmp_path, capsys):
    photo = np.random.default_rng(1).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    PIL.Image.fromarray(photo).save(tmp_path / "photo.png")
    assert main(["segment", str(tmp_path / "photo.png"), "--out", str(tmp_path / "seg"), "--model",
                 str(model_dir)]) == 0
    mask = np.asarray(PIL.Image.open(tmp_path / "seg" / "photo.png")).copy()
    mask[2:8, 3:12] = (mask[2:8, 3:12] + 1) % 11
    PIL.Image.fromarray(mask).save(tmp_path / "edited.png")
    assert main(["edit", str(tmp_path / "photo.png"), str(tmp_path / "edited.png"), "--out", str(tmp_path / "ed"),
                 "--model", str(model_dir), "--seeds", "0", "1", "--margin", "1"]) == 0
    assert sorted(p.name for p in (tmp_path / "ed").iterdir()) == ["photo_edit_seed0.png", "photo_edit_seed1.png",
                                                                    "photo_region.png"]
    region = np.asarray(PIL.Image.open(tmp_path / "ed" / "photo_region.png")) > 0
    expected = np.zeros(mask.shape, bool)
    expected[1:9, 2:13] = True
    assert np.array_equal(region, expected)
    edited = np.asarray(PIL.Image.open(tmp_path / "ed" / "photo_edit_seed0.png"))
    assert np.array_equal(edited[~region], photo[~region])
    assert main(["edit", str(tmp_path / "photo.png"), str(tmp_path / "seg" / "photo.png"), "--out", str(tmp_path),
                 "--model", str(model_dir)]) == 2
    assert "nothing to edit" in capsys.readouterr().err
    PIL.Image.fromarray(mask[:, :-2]).save(tmp_path / "narrow.png")
    assert main(["edit", str(tmp_path / "photo.png"), str(tmp_path / "narrow.png"), "--out", str(tmp_path),
                 "--model", str(model_dir)]) == 2
    assert "they must be the same size" in capsys.readouterr().err


def test_errors_are_one_line(model_dir, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not an image")
    assert main(["segment", str(tmp_path / "notes.txt"), "--out", str(tmp_path), "--model", str(model_dir)]) == 2
    assert "not a readable image" in capsys.readouterr().err
    PIL.Image.fromarray(np.full((8, 8), 40, np.uint8)).save(tmp_path / "bad.png")
    assert main(["synthesize", str(tmp_path / "bad.png"), "--out", str(tmp_path), "--model", str(model_dir)]) == 2
    assert "holds ids [40]" in capsys.readouterr().err
    PIL.Image.new("RGB", (8, 8), (1, 2, 3)).save(tmp_path / "odd.png")
    assert main(["synthesize", str(tmp_path / "odd.png"), "--out", str(tmp_path), "--model", str(model_dir)]) == 2
    assert "outside the 'camvid' palette" in capsys.readouterr().err


@pytest.mark.slow  # subprocesses
@pytest.mark.parametrize("module", ["semflow", "semflow.convert_official"])
def test_help(module):
    result = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "usage" in result.stdout


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    return bomb_png(tmp_path_factory.mktemp("bomb") / "bomb.png", 40000, 40000)  # 1.6 gigapixels, ~200 kB on disk


@pytest.mark.parametrize("command", ["segment", "synthesize"])
def test_decompression_bombs_and_tiny_images_get_one_line(model_dir, bomb, tmp_path, capsys, command):
    assert main([command, str(bomb), "--out", str(tmp_path / "out"), "--model", str(model_dir)]) == 2
    assert "too large to open safely; the limit is 40 megapixels" in _one_error_line(capsys)
    big = bomb_png(tmp_path / "big.png", 7000, 7000)  # 49 megapixels: under PIL's bomb limit, over ours
    assert main([command, str(big), "--out", str(tmp_path / "out"), "--model", str(model_dir)]) == 2
    assert "is 7000x7000 pixels; the limit is 40 megapixels" in _one_error_line(capsys)
    PIL.Image.new("L", (1, 1)).save(tmp_path / "dot.png")
    assert main([command, str(tmp_path / "dot.png"), "--out", str(tmp_path / "out"), "--model", str(model_dir)]) == 2
    assert "dot.png is 1x1; it must be at least 8 pixels on each side" in _one_error_line(capsys)
    assert main([command, str(tmp_path / "missing.png"), "--out", str(tmp_path / "out")]) == 2
    assert "missing.png does not exist" in _one_error_line(capsys)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("option,values,message", [
    ("--steps", ["1000000"], "--steps must be between 1 and 100, got 1000000"),
    ("--steps", ["0"], "--steps must be between 1 and 100, got 0"),
    ("--steps", ["abc"], "--steps must be a whole number, got 'abc'"),
    ("--steps", ["nan"], "--steps must be a whole number, got nan"),
    ("--seeds", ["-1"], "--seeds must be between 0 and 4294967295, got -1"),
    ("--seeds", [str(2**63)], f"--seeds must be between 0 and 4294967295, got {2**63}"),
    ("--seeds", [str(2**64)], f"--seeds must be between 0 and 4294967295, got {2**64}"),
    ("--seeds", ["1.5"], "--seeds must be a whole number, got 1.5"),
    ("--seeds", [str(s) for s in range(100)], "the number of --seeds must be between 1 and 16, got 100"),
])
def test_settings_are_refused_with_the_shared_limits(tmp_path, capsys, option, values, message):
    PIL.Image.new("L", (8, 8)).save(tmp_path / "mask.png")
    assert main(["synthesize", str(tmp_path / "mask.png"), "--out", str(tmp_path / "out"), option, *values]) == 2
    line = _one_error_line(capsys)
    assert line == f"error: {message}" and "num_images_per_mask" not in line
    if option == "--steps":
        assert main(["segment", str(tmp_path / "mask.png"), "--out", str(tmp_path / "out"), option, *values]) == 2
        assert _one_error_line(capsys) == f"error: {message}"


def test_long_runs_show_progress(model_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "PROGRESS_DELAY_S", 0.0)
    PIL.Image.new("RGB", (24, 16), (120, 60, 30)).save(tmp_path / "a.png")
    assert main(["segment", str(tmp_path / "a.png"), "--out", str(tmp_path / "out"), "--model", str(model_dir),
                 "--steps", "7"]) == 0
    err = capsys.readouterr().err
    assert "[1/1] a.png" in err and "7/7" in err


def test_big_images_run_at_the_working_size_and_masks_come_back_at_full_size(model_dir, tmp_path, capsys):
    PIL.Image.linear_gradient("L").resize((1100, 640)).convert("RGB").save(tmp_path / "wide.png")
    assert main(["segment", str(tmp_path / "wide.png"), "--out", str(tmp_path / "seg"), "--model", str(model_dir),
                 "--steps", "1"]) == 0
    assert "note: " in capsys.readouterr().err
    assert PIL.Image.open(tmp_path / "seg" / "wide.png").size == (1100, 640)
    assert PIL.Image.open(tmp_path / "seg" / "wide_color.png").size == (1100, 640)
    assert main(["synthesize", str(tmp_path / "seg" / "wide.png"), "--out", str(tmp_path / "syn"), "--model",
                 str(model_dir), "--steps", "1"]) == 0
    assert "brought to 1024x596, the working size" in capsys.readouterr().err
    assert PIL.Image.open(tmp_path / "syn" / "wide_seed0.png").size == (1024, 596)


def test_palette_gif_masks_are_read_by_colour_and_say_so(model_dir, tmp_path, capsys):
    ids = np.repeat(np.array([[0, 3, 8, 11]], np.uint8), 8, axis=0).repeat(4, axis=1)  # 8x16
    frames_file(tmp_path / "mask.gif", [CAMVID.colorize(ids), CAMVID.colorize(ids[:, ::-1])])
    assert PIL.Image.open(tmp_path / "mask.gif").mode == "P"
    assert main(["synthesize", str(tmp_path / "mask.gif"), "--out", str(tmp_path / "syn"), "--model", str(model_dir),
                 "--steps", "1"]) == 0
    err = capsys.readouterr().err
    assert "has 2 frames (GIF); only the first frame was used" in err and "it was read by colour" in err
