"""Scoring loops shared by training, `training.evaluate` and the study: segmentation and cycle scores, sample grids."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import PIL.Image

from semflow import SemFlowPipeline
from semflow.metrics import confusion_matrix, iou_per_class, mean_iou, pixel_accuracy

from .data import decode_example, id_lookup


@dataclass
class SegmentationScores:
    """Scores from a confusion matrix accumulated at the ground truth's resolution."""

    matrix: np.ndarray
    seconds_per_image: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def miou(self) -> float:
        return 100.0 * mean_iou(self.matrix)

    @property
    def pixel_accuracy(self) -> float:
        return 100.0 * pixel_accuracy(self.matrix)

    def per_class(self, class_names: Iterable[str]) -> dict[str, float | None]:
        return {name: (None if np.isnan(v) else 100.0 * float(v))
                for name, v in zip(class_names, iou_per_class(self.matrix))}

    def as_dict(self, class_names: Iterable[str]) -> dict[str, Any]:
        return {"miou": self.miou, "pixel_accuracy": self.pixel_accuracy,
                "seconds_per_image": self.seconds_per_image, "per_class_iou": self.per_class(class_names),
                **self.extra}


def labelled_pairs(
    split: Any, image_column: str, mask_column: str, pipe: SemFlowPipeline, limit: int | None = None,
    label_map: dict | None = None,
) -> list[tuple[PIL.Image.Image, np.ndarray]]:
    """Up to `limit` (RGB image, (H, W) ids) pairs from a split, ids mapped and checked against the pipeline."""
    lookup = id_lookup(label_map)
    pairs = []
    for index, example in enumerate(split):
        if limit is not None and index >= limit:
            break
        image, ids = decode_example(example, image_column, mask_column, pipe.labels, lookup)
        pairs.append((PIL.Image.fromarray((image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)),
                      ids.numpy()))
    return pairs


def segmentation_scores(
    pipe: SemFlowPipeline, pairs: list[tuple[PIL.Image.Image, np.ndarray]], steps: int | None = None,
    solver: str | None = None, batch_size: int = 4, flip: bool = False,
) -> SegmentationScores:
    """Segment every image (with the left-right flip's test-time augmentation when `flip`) and compare with its
    ground truth at the ground truth's resolution."""
    labels = pipe.labels
    matrix = np.zeros((labels.num_classes, labels.num_classes + 1), np.int64)
    start = time.perf_counter()
    for first in range(0, len(pairs), batch_size):
        chunk = pairs[first : first + batch_size]
        predictions = pipe.segment([image for image, _ in chunk], num_inference_steps=steps, solver=solver,
                                   batch_size=batch_size, **({"flip": True} if flip else {})).ids
        for prediction, (_, target) in zip(predictions, chunk):
            matrix += confusion_matrix(prediction, target, labels.num_classes, labels.ignore_id)
    return SegmentationScores(matrix, (time.perf_counter() - start) / max(len(pairs), 1))


def cycle_scores(
    pipe: SemFlowPipeline, masks: list[np.ndarray], images: list[PIL.Image.Image], steps: int | None = None
) -> SegmentationScores:
    """Cycle consistency: segment synthesized images and compare with the masks they were made from."""
    return segmentation_scores(pipe, list(zip(images, masks)), steps=steps)


def sample_grid(
    pipe: SemFlowPipeline, pairs: list[tuple[PIL.Image.Image, np.ndarray]], seed: int = 0, thumb_width: int = 240
) -> PIL.Image.Image:
    """Rows of [image, ground truth, image → mask, ground truth → image] thumbnails (white where the model does not
    do that task)."""
    tasks = pipe.tasks
    blank = [PIL.Image.new("RGB", image.size, (255, 255, 255)) for image, _ in pairs]
    predictions = [PIL.Image.fromarray(pipe.labels.colorize(p)) for p in pipe.segment(
        [image for image, _ in pairs]).ids] if "segment" in tasks else blank
    synthesized = pipe.synthesize([ids for _, ids in pairs], seed=seed).images if "synthesize" in tasks else blank
    tiles = []
    for (image, ids), prediction, fake in zip(pairs, predictions, synthesized):
        row = [image, PIL.Image.fromarray(pipe.labels.colorize(ids)), prediction, fake]
        height = max(1, round(thumb_width * image.height / image.width))
        tiles.append([tile.convert("RGB").resize((thumb_width, height), PIL.Image.Resampling.BILINEAR)
                      for tile in row])
    width = thumb_width * 4
    grid = PIL.Image.new("RGB", (width, sum(row[0].height for row in tiles)), (255, 255, 255))
    top = 0
    for row in tiles:
        for column, tile in enumerate(row):
            grid.paste(tile, (column * thumb_width, top))
        top += row[0].height
    return grid
