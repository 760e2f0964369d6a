"""Segmentation data from Hugging Face `datasets`: loading, label sets, id mapping, joint random crop/flip/resize."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import datasets
import numpy as np
import PIL.Image
import torch
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError

from semflow.folders import content_fingerprint
from semflow.images import pil_to_rgb, resize_ids, resize_images, to_ids
from semflow.labels import LabelSet, get_label_set

from .photometric import Photometric


def load_split(
    dataset: str, split: str, config_name: str | None = None, streaming: bool = False
) -> datasets.Dataset | datasets.IterableDataset:
    """`datasets.load_dataset` for a Hub id or a local folder (Hub layout or imagefolder), one split.

    Raises:
        ValueError: the split does not exist (lists the ones that do).
    """
    # `datasets` names the cache of a local folder after the folder's and its files' names alone: a folder rewritten
    # in place, or another folder of the same name, would load the rows cached before
    cache_dir = os.path.join(datasets.config.HF_DATASETS_CACHE, "local", content_fingerprint(dataset)) \
        if os.path.isdir(dataset) else None
    try:
        return datasets.load_dataset(dataset, config_name, split=split, streaming=streaming, cache_dir=cache_dir)
    except ValueError as error:
        if "split" in str(error).lower() or "Unknown split" in str(error):
            raise ValueError(f"dataset '{dataset}' has no split '{split}': {error}") from error
        raise


def dataset_label_set(dataset: str) -> LabelSet | None:
    """The label set a dataset describes in its ``id2label.json`` (local folder or Hub dataset repo), if any."""
    if os.path.isdir(dataset):
        path = os.path.join(dataset, "id2label.json")
        return LabelSet.from_id2label(path) if os.path.isfile(path) else None
    try:
        path = hf_hub_download(dataset, "id2label.json", repo_type="dataset")
    except (EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError, OSError):
        return None
    return LabelSet.from_id2label(path, name=dataset.rsplit("/", 1)[-1])


def resolve_label_set(requested: str | dict | None, dataset: str, init_labels: LabelSet | None) -> LabelSet:
    """Label set of a run: the one asked for, else the initial model's, else the dataset's ``id2label.json``."""
    if requested is not None:
        return get_label_set(requested)
    if init_labels is not None:
        return init_labels
    found = dataset_label_set(dataset)
    if found is None:
        raise ValueError(f"dataset '{dataset}' has no id2label.json; pass --label-set (a built-in name or a json)")
    return found


def id_lookup(label_map: dict[Any, int] | None) -> np.ndarray:
    """A 65536-entry lookup table applying `label_map` (dataset id → model id); identity elsewhere."""
    table = np.arange(65536, dtype=np.int64)
    for source, target in (label_map or {}).items():
        table[int(source)] = int(target)
    return table


def decode_example(
    example: dict[str, Any], image_column: str, mask_column: str, labels: LabelSet, lookup: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor]:
    """One row → ((3, H, W) float image in [0, 1], (H, W) int64 ids), ids mapped and checked against `labels`."""
    for column in (image_column, mask_column):
        if column not in example:
            raise ValueError(f"column '{column}' not in the dataset (columns: {sorted(example)})")
    image = example[image_column]
    mask = example[mask_column]
    if not isinstance(image, PIL.Image.Image) or not isinstance(mask, PIL.Image.Image):
        raise ValueError(f"columns '{image_column}' and '{mask_column}' must be images")
    ids = lookup[to_ids(mask, mask_column)]
    labels.check_ids(ids, mask_column)
    rgb = np.asarray(pil_to_rgb(image))
    if rgb.shape[:2] != ids.shape:
        raise ValueError(f"image {rgb.shape[1]}x{rgb.shape[0]} and mask {ids.shape[1]}x{ids.shape[0]} differ in size")
    return torch.from_numpy(rgb.copy()).permute(2, 0, 1).float() / 255.0, torch.from_numpy(ids)


def random_crop_flip(
    image: torch.Tensor,
    ids: torch.Tensor,
    resolution: tuple[int, int],
    crop: tuple[int, int],
    scale_range: tuple[float, float],
    hflip: bool,
    rng: np.random.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Joint augmentation: resize to ``resolution × s`` (s ~ U(scale_range); smooth for the image, nearest for
    ids), take a random `crop`, flip left-right with probability 1/2."""
    scale = rng.uniform(*scale_range)
    size = (max(crop[0], round(resolution[0] * scale)), max(crop[1], round(resolution[1] * scale)))
    image = resize_images(image[None], size)[0]
    ids = resize_ids(ids[None], size)[0]
    top = int(rng.integers(0, size[0] - crop[0] + 1))
    left = int(rng.integers(0, size[1] - crop[1] + 1))
    image = image[:, top : top + crop[0], left : left + crop[1]]
    ids = ids[top : top + crop[0], left : left + crop[1]]
    if hflip and rng.random() < 0.5:
        image, ids = image.flip(-1), ids.flip(-1)
    return image.contiguous(), ids.contiguous()


class SegmentationStream(torch.utils.data.IterableDataset):
    """Endless stream of augmented (image, ids) crops from a `datasets` split (in-memory or streaming): joint
    resize/crop/flip, then the photometric changes of the image.

    Every process of a run shuffles each epoch alike, and each of its data-loader workers walks its own shard of it
    (shard ``process_index · workers + worker`` of ``num_processes · workers``), so the processes of a multi-process
    run see disjoint data; randomness derives from (seed, epoch, shard), so a run is reproducible for a given number
    of processes and workers.
    """

    def __init__(
        self,
        split: datasets.Dataset | datasets.IterableDataset,
        labels: LabelSet,
        image_column: str,
        mask_column: str,
        resolution: tuple[int, int],
        crop: tuple[int, int],
        scale_range: tuple[float, float],
        hflip: bool,
        label_map: dict[Any, int] | None = None,
        seed: int = 0,
        start_epoch: int = 0,
        photometric: Photometric | None = None,
        process_index: int = 0,
        num_processes: int = 1,
    ) -> None:
        super().__init__()
        self.split, self.labels = split, labels
        self.process_index, self.num_processes = process_index, num_processes
        self.columns = (image_column, mask_column)
        self.geometry = (tuple(resolution), tuple(crop), tuple(scale_range), hflip)
        self.lookup = id_lookup(label_map)
        self.seed, self.start_epoch = seed, start_epoch
        self.photometric = photometric or Photometric()

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        shard, shards = self.process_index * workers + worker, self.num_processes * workers
        epoch = self.start_epoch
        while True:
            rng = np.random.default_rng([self.seed, epoch, shard])
            for example in self._epoch(epoch, shard, shards):
                image, ids = decode_example(example, *self.columns, self.labels, self.lookup)
                image, ids = random_crop_flip(image, ids, *self.geometry, rng)
                yield self.photometric(image, rng), ids
            epoch += 1

    def _epoch(self, epoch: int, shard: int, shards: int) -> Iterator[dict[str, Any]]:
        if isinstance(self.split, datasets.IterableDataset):
            stream = self.split.shuffle(seed=self.seed + epoch, buffer_size=256)
            for index, example in enumerate(stream):
                if index % shards == shard:
                    yield example
            return
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.split))
        for index in order[shard::shards]:
            yield self.split[int(index)]


def class_frequencies(
    split: datasets.Dataset, mask_column: str, labels: LabelSet, label_map: dict | None = None, limit: int = 500
) -> np.ndarray:
    """Pixel frequency of each class over (up to `limit` rows of) a split; ignored pixels are not counted."""
    lookup = id_lookup(label_map)
    counts = np.zeros(labels.num_classes, np.int64)
    for index in range(min(limit, len(split))):
        ids = lookup[to_ids(split[index][mask_column], mask_column)]
        counts += np.bincount(ids[(ids >= 0) & (ids < labels.num_classes)], minlength=labels.num_classes)
    return counts / max(counts.sum(), 1)


def median_frequency_weights(frequencies: np.ndarray, max_weight: float = 10.0) -> np.ndarray:
    """Median-frequency balancing (SegNet): w_c = median(f) / f_c, capped; absent classes get weight 1."""
    present = frequencies > 0
    weights = np.ones_like(frequencies, dtype=np.float64)
    weights[present] = np.median(frequencies[present]) / frequencies[present]
    return np.clip(weights, 1.0 / max_weight, max_weight)


def position_weights(ids: torch.Tensor, class_weights: torch.Tensor, num_classes: int,
                     size: tuple[int, int]) -> torch.Tensor:
    """Per-position loss weights: each pixel's class weight (1 for ignored pixels), averaged down to `size`.

    Args:
        ids: (B, H, W) class ids. class_weights: (num_classes,).
    Returns:
        (B, 1, *size) weights.
    """
    pixel_weight = class_weights.to(ids.device)[ids.clamp(0, num_classes - 1)]
    pixel_weight = torch.where(ids < num_classes, pixel_weight, torch.ones_like(pixel_weight))
    return torch.nn.functional.adaptive_avg_pool2d(pixel_weight[:, None], size)


def dataset_license(dataset: str) -> str | None:
    """The `license` field of a dataset card (local folder or Hub dataset repo), if it can be read."""
    from huggingface_hub import DatasetCard
    from huggingface_hub.errors import HfHubHTTPError

    source = os.path.join(dataset, "README.md") if os.path.isdir(dataset) else dataset
    try:
        card = DatasetCard.load(source, repo_type="dataset")
    except (OSError, ValueError, HfHubHTTPError, EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError):
        return None
    license_ = card.data.license
    return ", ".join(license_) if isinstance(license_, list) else license_
