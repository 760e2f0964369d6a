"""Tiny datasets the tests write themselves: a Hub-layout parquet dataset and an imagefolder annotation set."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import PIL.Image

TINY_CONFIG = {
    "resolution": [32, 48], "crop": [32, 48], "scale_range": [1.0, 1.2], "pixel_factor": 2,
    "unet": {"block_out_channels": [16, 16], "layers_per_block": 1, "down_block_types": ["DownBlock2D"] * 2,
             "up_block_types": ["UpBlock2D"] * 2, "norm_num_groups": 8, "add_attention": False},
    "batch_size": 2, "max_steps": 4, "checkpointing_steps": 2, "validation_steps": 2, "validation_images": 2,
    "sample_images": 2, "num_workers": 0, "warmup_steps": 1, "synthesis_steps": 2, "log_every": 1,
}


def street(rng: np.random.Generator, height: int = 30, width: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """A toy street scene: sky (0) over road (3) with a car (8) box; the image colours follow the ids."""
    ids = np.zeros((height, width), np.uint8)
    ids[height // 2 :] = 3
    top, left = rng.integers(height // 3, height // 2), rng.integers(0, width // 2)
    ids[top : top + height // 4, left : left + width // 4] = 8
    ids[0, 0] = 11  # one unlabelled pixel
    palette = np.array([[120, 160, 230]] + [[0, 0, 0]] * 2 + [[90, 90, 90]] + [[0, 0, 0]] * 4 + [[200, 30, 30]]
                       + [[0, 0, 0]] * 3, np.int64)
    image = np.clip(palette[ids] + rng.integers(-15, 16, (height, width, 3)), 0, 255).astype(np.uint8)
    return image, ids


def street_frames(folder: Path, count: int, height: int, width: int, seed: int = 5) -> dict[str, np.ndarray]:
    """`count` toy street frames written to `folder` as frameNN.png (a queue to annotate); their true masks by file
    name."""
    import PIL.Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    truth = {}
    for index in range(count):
        image, ids = street(rng, height, width)
        PIL.Image.fromarray(image).save(folder / f"frame{index:02d}.png")
        truth[f"frame{index:02d}.png"] = ids
    return truth


def write_hub_dataset(root: Path, train: int = 6, validation: int = 3, seed: int = 0,
                      drives: tuple[str, ...] = ()) -> Path:
    """A dataset folder in Hub dataset-repo layout (parquet shards, card with configs, id2label.json); with `drives`,
    the frames' file names name them in turn, as CamVid's do (``<drive>_<frame>.png``)."""
    import datasets

    rng = np.random.default_rng(seed)
    (root / "data").mkdir(parents=True, exist_ok=True)
    features = datasets.Features({"image": datasets.Image(), "mask": datasets.Image(),
                                  "file_name": datasets.Value("string")})
    for split, count in (("train", train), ("validation", validation)):
        rows: dict[str, list] = {"image": [], "mask": [], "file_name": []}
        for index in range(count):
            image, ids = street(rng)
            rows["image"].append(PIL.Image.fromarray(image))
            rows["mask"].append(PIL.Image.fromarray(ids))
            rows["file_name"].append(f"{drives[index % len(drives)]}_{split}{index:04d}.png" if drives
                                     else f"{split}_{index}.png")
        datasets.Dataset.from_dict(rows, features=features).to_parquet(
            str(root / "data" / f"{split}-00000-of-00001.parquet"))
    (root / "README.md").write_text(
        "---\nlicense: cc-by-4.0\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n"
        "    path: data/train-*\n  - split: validation\n    path: data/validation-*\n---\n# toy streets\n")
    names = ["Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car", "Pedestrian",
             "Bicyclist", "Unlabelled"]
    (root / "id2label.json").write_text(json.dumps({"ignore_index": 11, "id2label": dict(enumerate(names))}))
    return root


def write_annotation_folder(root: Path, count: int = 4, seed: int = 1) -> Path:
    """An imagefolder annotation set as the app saves it: images/, masks/ and metadata.jsonl."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(exist_ok=True)
    with open(root / "metadata.jsonl", "w", encoding="utf-8") as f:
        for index in range(count):
            image, ids = street(rng)
            PIL.Image.fromarray(image).save(root / "images" / f"a{index}.png")
            PIL.Image.fromarray(ids).save(root / "masks" / f"a{index}.png")
            f.write(json.dumps({"file_name": f"images/a{index}.png", "mask_file_name": f"masks/a{index}.png",
                                "annotator": "test"}) + "\n")
    return root


def tiny_street_model(root: Path, steps: int = 2) -> Path:
    """A tiny model (`TINY_CONFIG`) after `steps` steps on toy streets, saved as ``<root>/tiny-streets``: far from
    the streets after two steps, so that a short fine-tune on them does better."""
    from training import train

    dataset = write_hub_dataset(root / "toy_streets")
    config = root / "tiny.json"
    config.write_text(json.dumps(TINY_CONFIG))
    out = root / "tiny-streets"
    train.main(["--dataset", str(dataset), "--output-dir", str(out), "--config", str(config), "--max-steps",
                str(steps)])
    return out
