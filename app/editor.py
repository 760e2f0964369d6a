"""Editor layers ↔ label ids: draw a mask as an RGBA layer in display colours, read painted layers back as ids, and
the image editor's value (background + one mask layer)."""

from __future__ import annotations

from typing import Any

import numpy as np
import PIL.Image

from semflow.labels import LabelSet

from .errors import InputError

# Alpha of the mask layer shown over the photo. Painting with a brush makes pixels opaque; the eraser makes them
# transparent (= unlabelled). A pixel counts as labelled when its alpha is at least half the layer's.
LAYER_ALPHA = 170
PAINTED_ALPHA = LAYER_ALPHA // 2
MAX_BLEND_CANDIDATES = 24
COLOUR_TOLERANCE = 6  # per channel, 0..255: what the browser's canvas rounding can move a colour


def labels_to_layer(ids: np.ndarray, labels: LabelSet, alpha: int = LAYER_ALPHA) -> np.ndarray:
    """(H, W) ids → (H, W, 4) uint8 RGBA layer: display colour at `alpha`, the ignore id fully transparent."""
    ids = np.asarray(ids)
    rgba = np.zeros(ids.shape + (4,), np.uint8)
    labelled = (ids >= 0) & (ids < labels.num_classes)
    rgba[..., :3] = labels.colorize(np.where(labelled, ids, 0))
    rgba[..., 3] = np.where(labelled, alpha, 0)
    rgba[~labelled, :3] = 0
    return rgba


def layer_to_labels(layer: np.ndarray, labels: LabelSet, min_alpha: int = PAINTED_ALPHA) -> np.ndarray:
    """Read a painted RGBA layer back as class ids.

    Pixels with alpha below `min_alpha` are unlabelled (the ignore id; 0 for label sets without one). Opaque
    enough pixels take the class of their display colour (within `COLOUR_TOLERANCE`); anti-aliased edges, which
    blend two colours, take the class of the dominant colour of the blend (``p ≈ a·c_i + (1−a)·c_j``, class i
    when a ≥ 1/2), searched among the colours that appear unblended in the layer.

    Args:
        layer: (H, W, 4) uint8 RGBA, or (H, W, 3) RGB (treated as fully opaque).
    Returns:
        (H, W) uint8 ids.
    Raises:
        ValueError: not an RGB(A) uint8 array.
    """
    layer = np.asarray(layer)
    if layer.ndim != 3 or layer.shape[2] not in (3, 4) or layer.dtype != np.uint8:
        raise ValueError(f"the mask layer must be an RGB or RGBA uint8 image, got {layer.shape} {layer.dtype}")
    rgb = layer[..., :3].astype(np.int64)
    alpha = layer[..., 3] if layer.shape[2] == 4 else np.full(layer.shape[:2], 255, np.uint8)
    palette = np.asarray(labels.colors, np.int64)
    unlabelled = labels.ignore_id if labels.ignore_id is not None else 0
    ids = np.full(layer.shape[:2], unlabelled, np.uint8)
    painted = alpha >= min_alpha
    if not painted.any():
        return ids

    # Pixels within COLOUR_TOLERANCE of a palette colour (canvas rounding of semi-transparent pixels) are that class.
    nearest, distance = _nearest_colour(rgb[painted], palette)
    close = distance <= COLOUR_TOLERANCE
    painted_ids = np.where(close, nearest, 0)
    if (~close).any():
        present = np.unique(nearest[close]) if close.any() else np.arange(len(palette))
        if len(present) > MAX_BLEND_CANDIDATES:
            present = np.arange(len(palette))
        painted_ids[~close] = _dominant_of_blend(rgb[painted][~close].astype(np.float64), palette.astype(np.float64),
                                                 present)
    ids[painted] = painted_ids
    return ids


def _nearest_colour(pixels: np.ndarray, palette: np.ndarray, chunk: int = 1 << 16) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest palette colour and the largest per-channel difference to it, for (N, 3) pixels."""
    nearest = np.empty(len(pixels), np.int64)
    distance = np.empty(len(pixels), np.int64)
    for start in range(0, len(pixels), chunk):
        block = pixels[start : start + chunk, None, :] - palette[None]
        index = np.argmin((block**2).sum(-1), axis=1)
        nearest[start : start + chunk] = index
        distance[start : start + chunk] = np.abs(block[np.arange(len(index)), index]).max(-1)
    return nearest, distance


def _dominant_of_blend(pixels: np.ndarray, palette: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """For each pixel, the dominant colour of the best two-colour blend among `candidates` (or the nearest
    colour when there are too many candidates for pairs)."""
    colours = palette[candidates]
    nearest = np.argmin(((pixels[:, None, :] - palette[None]) ** 2).sum(-1), axis=1)
    if len(candidates) > MAX_BLEND_CANDIDATES or len(candidates) < 2:
        return nearest if len(candidates) != 1 else np.full(len(pixels), candidates[0])
    best_error = np.full(len(pixels), np.inf)
    best_class = nearest.copy()
    for i in range(len(colours)):
        for j in range(i + 1, len(colours)):
            direction = colours[i] - colours[j]
            # p ≈ c_j + a·(c_i − c_j): least-squares coverage a of colour i, clipped to [0, 1]
            coverage = np.clip(((pixels - colours[j]) @ direction) / max(direction @ direction, 1e-9), 0.0, 1.0)
            error = ((colours[j] + coverage[:, None] * direction - pixels) ** 2).sum(-1)
            better = error < best_error
            best_error[better] = error[better]
            best_class[better] = np.where(coverage[better] >= 0.5, candidates[i], candidates[j])
    return best_class


def blank_layer(height: int, width: int, class_id: int | None, labels: LabelSet) -> np.ndarray:
    """A layer filled with one class (or empty when `class_id` is None), for painting a layout from scratch."""
    if class_id is None:
        return np.zeros((height, width, 4), np.uint8)
    return labels_to_layer(np.full((height, width), class_id, np.int64), labels)


def editor_value(background: PIL.Image.Image, layer: np.ndarray | None = None) -> dict[str, Any]:
    """What `gr.ImageEditor` shows: `background` with one mask `layer` over it (empty when None)."""
    if layer is None:
        layer = np.zeros((background.height, background.width, 4), np.uint8)
    return {"background": background, "layers": [layer], "composite": None}


def blank_background(width: int, height: int) -> PIL.Image.Image:
    """The white background a layout is painted on."""
    return PIL.Image.new("RGB", (width, height), (255, 255, 255))


def mask_from_editor(value: dict[str, Any] | None, labels: LabelSet) -> np.ndarray:
    """The editor's painted mask layer as class ids (anti-aliased strokes snapped to the palette).

    Raises:
        InputError: the editor holds no mask layer, or one that cannot be read.
    """
    layers = [layer for layer in ((value or {}).get("layers") or []) if layer is not None]
    if not layers:
        raise InputError("The editor is empty: upload an image and segment it, or start a blank layout.")
    layer = np.asarray(layers[0])
    if layer.ndim != 3 or layer.shape[2] not in (3, 4):
        raise InputError("The mask layer could not be read; please segment again or start a blank layout.")
    return layer_to_labels(layer.astype(np.uint8), labels)
