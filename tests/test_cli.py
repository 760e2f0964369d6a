"""Command line: segment and synthesize files end to end on a tiny saved model; errors are one clear line."""

import subprocess
import sys

import numpy as np
import PIL.Image
import pytest
from conftest import tiny_pipeline

from semflow.__main__ import main


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


@pytest.mark.parametrize("module", ["semflow", "semflow.convert_official"])
def test_help(module):
    result = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "usage" in result.stdout
