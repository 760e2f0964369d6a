"""The contact sheet of the shipped models: four photos with their true masks (the example photos, or frames of one
drive, e.g. a drive the models never trained on), each model's one-step segmentation and two seeds synthesized from
the true mask, in one PNG, so anyone sees the quality without running anything.

    python -m benchmarks.contact_sheet [--models symmetric semflow FOLDER] [--drive 0006R0] [--out FILE]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import PIL.Image
import PIL.ImageDraw
import torch

from app.examples import PHOTO_MASKS, PHOTOS
from semflow.loading import EMBEDDED_MODELS, load_pipeline
from semflow.metrics import confusion_matrix, mean_iou

TILE = (240, 180)  # each picture at half the frames' 480x360
LABEL_HEIGHT = 22
SEEDS = (0, 1)


FRAMES = 4
DATASET = "../shared/datasets/camvid"


def frames(drive: str | None = None, dataset: str = DATASET) -> list[tuple[str, PIL.Image.Image, np.ndarray]]:
    """(name, photo, true ids) of the example photos, or of `FRAMES` frames spread over `drive`'s labelled frames."""
    if drive is None:
        return [(path.stem, PIL.Image.open(path).convert("RGB"), np.asarray(PIL.Image.open(PHOTO_MASKS / path.name)))
                for path in sorted(PHOTOS.glob("*.png"))]
    from training.data import load_split
    from training.splits import held_out_splits

    _, _, rows = held_out_splits(load_split(dataset, "train"), load_split(dataset, "validation"), [drive])
    picked = rows.select(range(0, len(rows), max(1, len(rows) // FRAMES))[:FRAMES])
    return [(Path(row["file_name"]).stem, row["image"].convert("RGB"), np.asarray(row["mask"])) for row in picked]


def tile(picture: PIL.Image.Image, caption: str) -> PIL.Image.Image:
    framed = PIL.Image.new("RGB", (TILE[0], TILE[1] + LABEL_HEIGHT), (255, 255, 255))
    framed.paste(picture.convert("RGB").resize(TILE, PIL.Image.Resampling.LANCZOS), (0, LABEL_HEIGHT))
    PIL.ImageDraw.Draw(framed).text((4, 4), caption, fill=(0, 0, 0))
    return framed


def model_rows(name: str, examples: list) -> tuple[list[list[PIL.Image.Image]], float]:
    """One row per example for model `name`: its segmentation (with the frame's mIoU) and the syntheses of the true
    mask; and the mIoU over the four frames."""
    pipe = load_pipeline(name, device="cpu")
    pipe.set_progress_bar_config(disable=True)
    labels, rows = pipe.labels, []
    total = np.zeros((labels.num_classes, labels.num_classes + 1), np.int64)
    for _, photo, ids in examples:
        predicted = pipe.segment(photo).ids[0]
        matrix = confusion_matrix(predicted, ids, labels.num_classes, labels.ignore_id)
        total += matrix
        synthesized = pipe.synthesize(ids, seed=SEEDS[0], num_images_per_mask=len(SEEDS)).images
        rows.append([tile(PIL.Image.fromarray(labels.colorize(predicted)),
                           f"{name}: segmented (1 step), mIoU {100 * mean_iou(matrix):.1f}"),
                     *[tile(image, f"{name}: from the true mask, seed {seed}")
                       for image, seed in zip(synthesized, SEEDS)]])
    return rows, 100 * mean_iou(total)


def contact_sheet(models: list[str], drive: str | None = None,
                  dataset: str = DATASET) -> tuple[PIL.Image.Image, dict[str, float]]:
    examples = frames(drive, dataset)
    labels = load_pipeline(models[0], device="cpu").labels
    columns = [[tile(photo, f"photo {stem.removeprefix('camvid_')}"),
                tile(PIL.Image.fromarray(labels.colorize(ids)), "true mask (CamVid)")]
               for stem, photo, ids in examples]
    scores = {}
    for name in models:
        rows, scores[name] = model_rows(name, examples)
        for row, tiles in zip(columns, rows):
            row.extend(tiles)
    width, height = TILE[0], TILE[1] + LABEL_HEIGHT
    sheet = PIL.Image.new("RGB", (width * len(columns[0]), height * len(columns)), (255, 255, 255))
    for r, row in enumerate(columns):
        for c, picture in enumerate(row):
            sheet.paste(picture, (c * width, r * height))
    return sheet, scores


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.contact_sheet", description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(EMBEDDED_MODELS), help="embedded names or folders")
    parser.add_argument("--drive", default=None, help="frames of this drive instead of the example photos")
    parser.add_argument("--dataset", default=DATASET, help="where --drive's frames come from")
    parser.add_argument("--out", type=Path, default=Path("docs/contact_sheet.png"))
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    sheet, scores = contact_sheet(args.models, args.drive, args.dataset)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, optimize=True)
    where = f"four frames of drive {args.drive}" if args.drive else "the four example photos"
    print(f"wrote {args.out}: " + ", ".join(f"{name} mIoU {miou:.1f} on {where}" for name, miou in scores.items()))
    return scores


if __name__ == "__main__":
    main()
