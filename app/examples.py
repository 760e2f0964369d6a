"""The page's examples: four real street photos shipped with the app (CamVid validation frames, see the NOTICE beside
them), street layouts the project draws (masks to paint over and synthesize from), and (at run time only) frames from
a dataset the app is given (`SEMFLOW_EXAMPLES`)."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import PIL.Image
import PIL.ImageDraw

from semflow.labels import LabelSet

logger = logging.getLogger(__name__)

PHOTOS, PHOTOS_LABEL_SET = Path(__file__).resolve().parent / "example_photos", "camvid"
PHOTO_MASKS = PHOTOS / "masks"  # their true masks (class ids, "L"), for tests and the contact sheet
LAYOUT_PREFIX = "layout"  # drawn layouts' mask files

# Names a layout needs, with the alternatives other label sets use.
ROLES = {
    "sky": ("sky", "sky-other"),
    "building": ("building", "building-other", "house"),
    "road": ("road",),
    "pavement": ("pavement", "sidewalk"),
    "tree": ("tree", "vegetation"),
    "car": ("car",),
    "pole": ("pole", "streetlight"),
    "sign": ("signsymbol", "traffic sign", "signboard"),
    "person": ("pedestrian", "person"),
    "fence": ("fence",),
}


def find_classes(labels: LabelSet) -> dict[str, int]:
    """Role → class id for the roles this label set has (matched by name, case-insensitive)."""
    names = {name.lower(): index for index, name in enumerate(labels.class_names)}
    return {role: names[alias] for role, aliases in ROLES.items() for alias in aliases if alias in names}


def draw_layouts(labels: LabelSet, width: int = 480, height: int = 360) -> list[tuple[str, np.ndarray]]:
    """Street-scene layouts drawn with PIL: (title, (height, width) uint8 ids).

    Label sets without street classes get horizontal bands of their first classes instead.
    """
    c = find_classes(labels)
    if not {"sky", "building", "road"} <= set(c):
        bands = np.zeros((height, width), np.uint8)
        for k in range(min(4, labels.num_classes)):
            bands[k * height // 4 :] = k
        return [("Bands of the first classes", bands)]
    layouts = []
    for title, seed, cars, trees in (("Street with cars", 0, 3, 1), ("Tree-lined road", 1, 1, 4),
                                     ("Open road", 2, 2, 0)):
        rng = np.random.default_rng(seed)
        canvas = PIL.Image.new("L", (width, height), c["sky"])
        draw = PIL.ImageDraw.Draw(canvas)
        horizon = int(height * rng.uniform(0.42, 0.52))
        x = 0
        while x < width:  # a skyline of buildings
            w = int(rng.integers(width // 8, width // 4))
            top = int(rng.integers(height // 10, horizon - height // 12))
            draw.rectangle([x, top, x + w, horizon], fill=c["building"])
            x += w + int(rng.integers(0, width // 20))
        for _ in range(trees if "tree" in c else 0):
            cx, r = int(rng.integers(0, width)), int(rng.integers(height // 12, height // 6))
            draw.ellipse([cx - r, horizon - 2 * r, cx + r, horizon + r // 3], fill=c["tree"])
        draw.rectangle([0, horizon, width, height], fill=c["road"])
        if "pavement" in c:  # pavements outside road edges that converge on the horizon
            edge = int(height * rng.uniform(0.75, 0.9))
            draw.polygon([(0, horizon), (int(width * 0.42), horizon), (0, edge)], fill=c["pavement"])
            draw.polygon([(width, horizon), (int(width * 0.58), horizon), (width, edge)], fill=c["pavement"])
        if "fence" in c and seed == 2:
            draw.rectangle([0, horizon - height // 20, width // 3, horizon + 4], fill=c["fence"])
        for _ in range(2 if "pole" in c else 0):
            low, high = (width // 10, width // 4) if rng.random() < 0.5 else (3 * width // 4, 9 * width // 10)
            px = int(rng.integers(low, high))
            draw.rectangle([px, height // 5, px + max(2, width // 120), horizon + height // 6], fill=c["pole"])
            if "sign" in c:
                draw.rectangle([px - 8, height // 5, px + 10, height // 5 + 14], fill=c["sign"])
        for k in range(cars if "car" in c else 0):
            w = int(width * rng.uniform(0.14, 0.22))
            h = int(w * 0.55)
            cx = int(width * (0.35 + 0.3 * k / max(cars - 1, 1)) + rng.integers(-15, 15))
            bottom = int(horizon + (height - horizon) * rng.uniform(0.25, 0.6))
            draw.rounded_rectangle([cx - w // 2, bottom - h, cx + w // 2, bottom], radius=h // 4, fill=c["car"])
        if "person" in c and seed == 0:
            draw.rectangle([width // 6, horizon - 10, width // 6 + 8, horizon + 30], fill=c["person"])
        layouts.append((title, np.asarray(canvas, np.uint8)))
    return layouts


def photo_examples(labels: LabelSet) -> list[dict[str, str]]:
    """The shipped photos, each {"title", "image", "mask": ""}, for models of their label set (CamVid's)."""
    if labels.name != PHOTOS_LABEL_SET:
        return []
    return [{"title": f"CamVid {path.stem.removeprefix('camvid_')} (validation frame, CC BY-NC 4.0)",
             "image": str(path), "mask": ""} for path in sorted(PHOTOS.glob("*.png"))]


def build_examples(labels: LabelSet, cache: Path, dataset: str | None = None,
                   max_dataset_frames: int = 4) -> list[dict[str, str]]:
    """Example files, each {"title", "image", "mask"}: the shipped photos, the drawn layouts (mask only, written
    under `cache` per label set; nothing is synthesized, so the page starts at once), then frames of `dataset`
    (`SEMFLOW_EXAMPLES`) when that dataset is present."""
    folder = cache / "examples" / hashlib.sha1(json.dumps(labels.to_dict(), sort_keys=True).encode()).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    layouts = []
    for k, (title, ids) in enumerate(draw_layouts(labels)):
        mask_path = folder / f"{LAYOUT_PREFIX}{k}.png"
        if not mask_path.is_file():
            PIL.Image.fromarray(ids).save(mask_path)
        layouts.append({"title": title, "image": "", "mask": str(mask_path)})
    return photo_examples(labels) + layouts + dataset_examples(dataset, labels, folder, max_dataset_frames)


def photo_examples_of(examples: list[dict[str, str]]) -> list[dict[str, str]]:
    """The examples that are photos (they have an image file)."""
    return [e for e in examples if e["image"]]


def canvas_size(photos: list[dict[str, str]], resolution: tuple[int, int]) -> tuple[int, int]:
    """(width, height) of a new canvas: the example photos' frame size (CamVid's 480x360), else the model's
    resolution (height, width)."""
    if photos:
        with PIL.Image.open(photos[0]["image"]) as photo:
            return photo.size
    return resolution[1], resolution[0]


def layout_examples(examples: list[dict[str, str]]) -> list[dict[str, str]]:
    """The drawn layouts among `examples`."""
    return [e for e in examples if Path(e["mask"]).name.startswith(LAYOUT_PREFIX)]


def dataset_examples(source: str | None, labels: LabelSet, folder: Path, count: int) -> list[dict[str, str]]:
    """Frames of the dataset `source` (validation split, else the first), cached at run time only."""
    if not source or count <= 0:
        return []
    try:
        import datasets

        splits = datasets.load_dataset(source)
        split = splits["validation"] if "validation" in splits else next(iter(splits.values()))
    except Exception as error:  # a missing or unreadable dataset only means fewer examples
        logger.warning("SEMFLOW_EXAMPLES=%s could not be loaded: %s", source, error)
        return []
    examples = []
    for k in range(min(count, len(split))):
        row = split[k]
        image_path, mask_path = folder / f"dataset{k}_image.png", folder / f"dataset{k}_mask.png"
        row["image"].convert("RGB").save(image_path)
        mask = row.get("mask")
        if mask is not None and labels.is_valid(np.asarray(mask)).all():
            mask.save(mask_path)
        examples.append({"title": str(row.get("file_name", f"frame {k}")), "image": str(image_path),
                         "mask": str(mask_path) if mask_path.is_file() else ""})
    return examples
