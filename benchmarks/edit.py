"""Photo edits through the mask, measured on validation frames: one class region replaced by another (Building → Tree,
Road → Pavement) or a car pasted from another frame's mask, edited with `pipe.edit` at several margins and strengths.

For each setting: (a) the largest 8-bit difference from the photo outside the region; (b) the mIoU, on the changed
pixels, of the edited photo's segmentation against the edited mask; (c) the seam: the mean absolute difference
between 4-neighbouring pixels across the region's border, over the same figure of the photo at that border (1: no
visible frame); (d) seconds per edit on 2 CPU threads.

    python -m benchmarks.edit [--model symmetric] [--frames 10] [--margins 0 8 16 32] [--strengths 0 0.3]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semflow.loading import load_pipeline
from semflow.metrics import confusion_matrix, mean_iou, pixel_accuracy
from training.data import load_split
from training.scores import labelled_pairs

BUILDING, ROAD, PAVEMENT, TREE, CAR = 1, 3, 4, 5, 8
MIN_CHANGED = 0.01  # an edit must change at least this share of the frame to count


def edits(ids: np.ndarray, donor: np.ndarray) -> dict[str, np.ndarray]:
    """The three edits of a frame's predicted ids (those that change at least `MIN_CHANGED` of it)."""
    building_to_tree = np.where(ids == BUILDING, TREE, ids)
    road_to_pavement = np.where(ids == ROAD, PAVEMENT, ids)
    pasted_car = np.where(donor == CAR, CAR, ids)
    candidates = {"Building → Tree": building_to_tree, "Road → Pavement": road_to_pavement,
                  "car pasted from another frame": pasted_car}
    return {name: edited for name, edited in candidates.items() if (edited != ids).mean() >= MIN_CHANGED}


def seam(edited: np.ndarray, photo: np.ndarray, region: np.ndarray) -> tuple[float, float]:
    """Mean |difference| of 4-neighbour pixel pairs across the border of `region`, in the edited image and in the
    photo (0..255 units, averaged over the channels)."""
    differences_edited, differences_photo = [], []
    for axis in (0, 1):
        inside = np.take(region, range(region.shape[axis] - 1), axis=axis)
        outside = np.take(region, range(1, region.shape[axis]), axis=axis)
        border = inside != outside
        for image, out in ((edited, differences_edited), (photo, differences_photo)):
            a = np.take(image, range(image.shape[axis] - 1), axis=axis).astype(np.float64)
            b = np.take(image, range(1, image.shape[axis]), axis=axis).astype(np.float64)
            out.append(np.abs(a - b).mean(-1)[border])
    return float(np.concatenate(differences_edited).mean()), float(np.concatenate(differences_photo).mean())


def measure(pipe, pairs: list, margins: list[int], strengths: list[float], seed: int = 0) -> list[dict[str, Any]]:
    labels, rows = pipe.labels, []
    cases = []
    for index, (photo, _) in enumerate(pairs):
        ids = pipe.segment(photo).ids[0]
        donor = pipe.segment(pairs[(index + len(pairs) // 2) % len(pairs)][0]).ids[0]
        cases += [(photo, ids, name, edited) for name, edited in edits(ids, donor).items()]
    for margin in margins:
        for strength in strengths:
            matrix = np.zeros((labels.num_classes, labels.num_classes + 1), np.int64)
            outside_max, seams, photo_seams, seconds = 0, [], [], []
            for photo, ids, _, edited in cases:
                start = time.perf_counter()
                out = pipe.edit(photo, edited, changed=edited != ids, margin=margin, strength=strength, seed=seed)
                seconds.append(time.perf_counter() - start)
                image, real = np.asarray(out.images[0]), np.asarray(photo)
                if not out.region.all():
                    outside_max = max(outside_max, int(np.abs(image.astype(int) - real)[~out.region].max()))
                    edited_seam, photo_seam = seam(image, real, out.region)
                    seams.append(edited_seam)
                    photo_seams.append(photo_seam)
                found = pipe.segment(out.images[0]).ids[0]
                matrix += confusion_matrix(np.where(out.changed, found, labels.ignore_id), np.where(
                    out.changed, edited, labels.ignore_id), labels.num_classes, labels.ignore_id)
            rows.append({"margin": margin, "strength": strength, "edits": len(cases),
                         "outside_max_abs_difference": outside_max if strength == 0 else None,
                         "region_agreement": 100 * pixel_accuracy(matrix), "region_miou": 100 * mean_iou(matrix),
                         "seam": float(np.mean(seams)) if seams else None,
                         "photo_seam": float(np.mean(photo_seams)) if photo_seams else None,
                         "seam_ratio": float(np.mean(seams) / np.mean(photo_seams)) if seams else None,
                         "seconds_per_edit": float(np.median(seconds))})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def to_markdown(rows: list[dict[str, Any]], model: str, frames: int, steps: int, command: str) -> str:
    def cell(value, digits=1):
        return "–" if value is None else f"{value:.{digits}f}"

    lines = [f"Edits of `{model}` ({steps} steps) on {frames} validation frames: Building → Tree, Road → Pavement and "
             f"a car pasted from another frame's mask, on the model's own segmentation ({rows[0]['edits']} edits).",
             "", "| margin px | strength | max 8-bit difference outside the region | changed pixels segmented as "
             "edited | mIoU on the changed pixels | seam (edited / photo) | seam ratio | s / edit |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        difference = row["outside_max_abs_difference"]
        outside = "– (restyled)" if difference is None else str(difference)
        lines.append(f"| {row['margin']} | {row['strength']:g} | {outside} | {cell(row['region_agreement'])}% | "
                     f"{cell(row['region_miou'])} | "
                     f"{cell(row['seam'])} / {cell(row['photo_seam'])} | {cell(row['seam_ratio'], 2)} | "
                     f"{cell(row['seconds_per_edit'], 2)} |")
    lines += ["", "Seam: mean absolute difference of neighbouring pixels across the region's border (0..255), in the "
                  "edited photo and in the photo itself at the same border; a ratio near 1 shows no frame. Seconds: "
                  "median per edit (one variant), 2 CPU threads.", "", f"Reproduce: `{command}`"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.edit", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="embedded name, folder or Hub id (default: the default model)")
    parser.add_argument("--dataset", default="../shared/datasets/camvid")
    parser.add_argument("--frames", type=int, default=10, help="validation frames, spread over the split")
    parser.add_argument("--margins", type=int, nargs="+", default=[0, 8, 16, 32])
    parser.add_argument("--strengths", type=float, nargs="+", default=[0.0, 0.3])
    parser.add_argument("--out", type=Path, default=Path("runs/edit"))
    args = parser.parse_args(argv)
    command = "python -m benchmarks.edit " + " ".join(argv if argv is not None else __import__("sys").argv[1:])
    torch.set_num_threads(2)
    pipe = load_pipeline(args.model, device="cpu")
    pipe.set_progress_bar_config(disable=True)
    pairs = labelled_pairs(load_split(args.dataset, "validation"), "image", "mask", pipe)
    pairs = pairs[:: max(1, len(pairs) // args.frames)][: args.frames]
    rows = measure(pipe, pairs, args.margins, args.strengths)
    markdown = to_markdown(rows, str(pipe.name_or_path), len(pairs), pipe.config.synthesis_steps, command)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "edit.json").write_text(json.dumps({"command": command, "rows": rows}, indent=2))
    (args.out / "edit.md").write_text(markdown + "\n")
    print(markdown)
    return rows


if __name__ == "__main__":
    main()
