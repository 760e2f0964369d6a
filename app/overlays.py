"""Views of a mask: colour overlay on the photo, where the model is unsure, a fill's preview, the region an edit will
change, a box's first corner, the legend with each class's share, agreement between two masks."""

from __future__ import annotations

import html

import numpy as np
import PIL.Image
import PIL.ImageDraw

from semflow.labels import LabelSet
from semflow.metrics import confusion_matrix, mean_iou, pixel_accuracy

UNSURE_RGB = (255, 0, 0)  # the heat-map's colour for "not sure at all"
# The heat-map tints pixels below this decoding margin (0..1), the more the lower: on CamVid validation frames 25% of
# the default model's pixels are below it and 80% of its wrong ones (85% for `semflow`); above it 4% are wrong.
UNSURE_BELOW = 0.5
PREVIEW_DIM = 0.45  # how bright the pixels a previewed fill leaves alone stay
CORNER_RGB, CORNER_ARM = (255, 255, 0), 7  # the box tool's first-corner mark: colour, arm length in pixels
DEFAULT_OPACITY = 0.55  # of the mask over the photo, until the person moves the slider


def overlay(image: PIL.Image.Image, ids: np.ndarray, labels: LabelSet, opacity: float = 0.5) -> PIL.Image.Image:
    """The photo with the mask's display colours blended over it; unlabelled pixels stay as they are.

    Args:
        opacity: 0 (photo only) .. 1 (mask only).
    """
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be in [0, 1], got {opacity}")
    photo = np.asarray(image.convert("RGB"), np.float32)
    if photo.shape[:2] != ids.shape:
        raise ValueError(f"image {photo.shape[1]}x{photo.shape[0]} and mask {ids.shape[1]}x{ids.shape[0]} differ")
    colours = labels.colorize(ids).astype(np.float32)
    labelled = ((ids >= 0) & (ids < labels.num_classes))[..., None]
    blended = np.where(labelled, (1.0 - opacity) * photo + opacity * colours, photo)
    return PIL.Image.fromarray(np.clip(blended + 0.5, 0, 255).astype(np.uint8))


def unsure_overlay(image: PIL.Image.Image, confidence: np.ndarray, opacity: float = 0.5,
                   settled: np.ndarray | None = None) -> PIL.Image.Image:
    """Where the model is unsure, as a heat-map over the photo: red where the confidence (the decoding margin,
    `semflow.anchors.nearest_anchors`) is 0, fading to none at `UNSURE_BELOW` and above, so only the doubtful pixels
    are tinted (`unsure_scale_html` is its key).

    Args:
        opacity: 0 (photo only) .. 1 (full red where the confidence is 0).
        settled: Pixels no longer in doubt (corrected by hand), never tinted; (H, W) bool.
    """
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be in [0, 1], got {opacity}")
    photo = np.asarray(image.convert("RGB"), np.float32)
    if photo.shape[:2] != confidence.shape:
        raise ValueError(f"image {photo.shape[1]}x{photo.shape[0]} and confidence {confidence.shape[1]}x"
                         f"{confidence.shape[0]} differ")
    doubt = np.clip((UNSURE_BELOW - np.asarray(confidence, np.float32)) / UNSURE_BELOW, 0.0, 1.0)
    if settled is not None:
        doubt = np.where(settled, 0.0, doubt)
    alpha = opacity * doubt[..., None]
    blended = (1.0 - alpha) * photo + alpha * np.array(UNSURE_RGB, np.float32)
    return PIL.Image.fromarray(np.clip(blended + 0.5, 0, 255).astype(np.uint8))


def unsure_scale_html() -> str:
    """The heat-map's key: the tint from confidence 0 (full red) to `UNSURE_BELOW` (none)."""
    r, g, b = UNSURE_RGB
    return ("<div class='semflow-unsure-scale'><span>confidence 0</span><span style='flex:1;height:12px;margin:0 6px;"
            f"border:1px solid #888;background:linear-gradient(to right,rgb({r},{g},{b}),rgba({r},{g},{b},0))'>"
            f"</span><span>{UNSURE_BELOW:g} and above: no tint</span></div>")


def fill_preview(image: PIL.Image.Image, before: np.ndarray, after: np.ndarray, labels: LabelSet,
                 opacity: float = 0.5) -> PIL.Image.Image:
    """A fill not yet applied: the mask after it over the photo, the pixels it would change at full brightness and
    the rest dimmed."""
    shown = np.asarray(overlay(image, after, labels, opacity), np.float32)
    changed = (np.asarray(before) != np.asarray(after))[..., None]
    return PIL.Image.fromarray(np.where(changed, shown, PREVIEW_DIM * shown).astype(np.uint8))


def edit_region_view(image: PIL.Image.Image, region: np.ndarray) -> PIL.Image.Image:
    """What an edit will change: the photo at full brightness inside `region` ((H, W) bool), dimmed outside it as a
    fill's preview is, with the region's edge drawn in `CORNER_RGB`."""
    photo = np.asarray(image.convert("RGB"), np.float32)
    inside = np.asarray(region, bool)
    shown = np.where(inside[..., None], photo, PREVIEW_DIM * photo)
    padded = np.pad(inside, 1, mode="edge")
    interior = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    shown[inside & ~interior] = CORNER_RGB
    return PIL.Image.fromarray(shown.astype(np.uint8))


def mark_corner(view: PIL.Image.Image, point: tuple[int, int]) -> PIL.Image.Image:
    """`view` with a cross at `point` (x, y): where the box tool's first corner is."""
    marked = view.convert("RGB").copy()
    draw = PIL.ImageDraw.Draw(marked)
    x, y = point
    for colour, width in (((0, 0, 0), 3), (CORNER_RGB, 1)):
        draw.line([(x - CORNER_ARM, y), (x + CORNER_ARM, y)], fill=colour, width=width)
        draw.line([(x, y - CORNER_ARM), (x, y + CORNER_ARM)], fill=colour, width=width)
    return marked


def class_shares(ids: np.ndarray, labels: LabelSet) -> list[tuple[str, tuple[int, int, int], float]]:
    """(name, colour, share of the image) for every class present, largest first; unlabelled pixels last."""
    counts = np.bincount(np.asarray(ids, np.int64).ravel(), minlength=256)
    total = max(int(counts.sum()), 1)
    rows = [(labels.class_names[c], labels.colors[c], counts[c] / total) for c in range(labels.num_classes)
            if counts[c]]
    rows.sort(key=lambda row: -row[2])
    unlabelled = total - sum(int(counts[c]) for c in range(labels.num_classes))
    if unlabelled:
        rows.append((labels.ignore_name, labels.ignore_color, unlabelled / total))
    return rows


def legend_html(ids: np.ndarray | None, labels: LabelSet, note: str | None = None) -> str:
    """An HTML legend: colour swatch, class name and share of the image (all classes when `ids` is None), and under it
    `note` (plain text) when given."""
    if ids is None:
        rows = [(name, colour, None) for name, colour in zip(labels.class_names, labels.colors)]
    else:
        rows = class_shares(ids, labels)
    items = []
    for name, (r, g, b), share in rows:
        value = "" if share is None else f"<span style='float:right'>{100 * share:.1f}%</span>"
        items.append(
            f"<div style='display:flex;align-items:center;gap:6px;margin:2px 0'>"
            f"<span style='width:14px;height:14px;border:1px solid #888;background:rgb({r},{g},{b});"
            f"display:inline-block'></span><span style='flex:1'>{html.escape(name)}{value}</span></div>"
        )
    if note:
        items.append(f"<div class='semflow-legend-note'>{html.escape(note)}</div>")
    return "<div class='semflow-legend'>" + "".join(items) + "</div>"


def agreement(prediction: np.ndarray, target: np.ndarray, labels: LabelSet) -> dict[str, float]:
    """Pixel agreement and mIoU (in %) of `prediction` against `target`, ignoring the target's unlabelled pixels."""
    matrix = confusion_matrix(prediction, target, labels.num_classes, labels.ignore_id)
    return {"pixel_agreement": 100.0 * pixel_accuracy(matrix), "miou": 100.0 * mean_iou(matrix)}
