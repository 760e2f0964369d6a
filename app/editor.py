"""The mask editor's value, the one place that makes and reads it: the background (the photo, or a white canvas for a
layout) with one mask layer of the same size, drawn in display colours and marked so that the server can tell whether
the layer it reads back still sits where it put it; and painted layers read back as class ids."""

from __future__ import annotations

import base64
import hashlib
import io
from typing import Any

import numpy as np
import PIL.Image

from semflow.deprecation import renamed_function
from semflow.labels import LabelSet

from .errors import InputError

# Alpha of the mask layer shown over the photo. Painting with a brush makes pixels opaque; the eraser makes them
# transparent (= unlabelled). A pixel counts as labelled when its alpha is at least half the layer's.
LAYER_ALPHA = 170
PAINTED_ALPHA = LAYER_ALPHA // 2
MAX_BLEND_CANDIDATES = 24
COLOUR_TOLERANCE = 6  # per channel, 0..255: what the browser's canvas rounding can move a colour
# The placement mark: every pixel the server draws carries one bit of a pattern drawn from its photo in the lowest step
# of its alpha (labelled LAYER_ALPHA + bit, unlabelled UNLABELLED_ALPHA + bit: invisible, and read as before). The
# browser keeps alpha exactly (checked in Chromium at device pixel ratios 1, 1.5 and 2); brush strokes make pixels
# opaque and the eraser clears them, so what is left unpainted still shows the pattern where it was drawn. A layer read
# back shifted, scaled or from another photo agrees with the pattern on about half of its marked pixels.
UNLABELLED_ALPHA = 1
MIN_MARKED = 64  # marked pixels needed to judge the placement (fewer: painted over almost everywhere)
MIN_MARK_AGREEMENT = 0.95  # share of the marked pixels that must agree with the pattern


def ids_to_layer(ids: np.ndarray, labels: LabelSet, alpha: int = LAYER_ALPHA) -> np.ndarray:
    """(H, W) ids → (H, W, 4) uint8 RGBA layer: display colour at `alpha`, the ignore id fully transparent."""
    ids = np.asarray(ids)
    rgba = np.zeros(ids.shape + (4,), np.uint8)
    labelled = (ids >= 0) & (ids < labels.num_classes)
    rgba[..., :3] = labels.colorize(np.where(labelled, ids, 0))
    rgba[..., 3] = np.where(labelled, alpha, 0)
    rgba[~labelled, :3] = 0
    return rgba


def layer_to_ids(layer: np.ndarray, labels: LabelSet, min_alpha: int = PAINTED_ALPHA) -> np.ndarray:
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


def placement_marks(background: PIL.Image.Image) -> np.ndarray:
    """The (H, W) pattern of 0/1 bits a layer over `background` is marked with, drawn from the photo's pixels (another
    photo, another pattern)."""
    photo = np.ascontiguousarray(np.asarray(background.convert("RGB")))
    digest = hashlib.blake2b(photo.tobytes() + repr(photo.shape).encode(), digest_size=8).digest()
    return np.random.default_rng(int.from_bytes(digest, "little")).integers(0, 2, photo.shape[:2], dtype=np.uint8)


def marked_layer(background: PIL.Image.Image, ids: np.ndarray | None, labels: LabelSet) -> np.ndarray:
    """The mask layer over `background`: `ids` (all unlabelled for None) in display colours, every pixel carrying its
    placement mark. The only way a layer is made for the editor (its value, and the fills the page applies).

    Raises:
        ValueError: `ids` is not the background's size (a bug: the callers bring masks to their photo's size).
    """
    size = (background.height, background.width)
    ids = np.full(size, -1, np.int64) if ids is None else np.asarray(ids)
    if ids.shape != size:
        raise ValueError(f"the mask is {ids.shape[1]}x{ids.shape[0]} but the editor's background is "
                         f"{background.width}x{background.height}")
    layer = ids_to_layer(ids, labels)
    marks = placement_marks(background)
    layer[..., 3] = np.where(layer[..., 3] > 0, LAYER_ALPHA, UNLABELLED_ALPHA) + marks
    return layer


def editor_value(background: PIL.Image.Image, ids: np.ndarray | None, labels: LabelSet) -> dict[str, Any]:
    """What `gr.ImageEditor` shows: `background` with one mask layer of `ids` (`marked_layer`) over it. Every event
    that puts work into the editor builds its value here, so background and layer always have one size."""
    return {"background": background, "layers": [marked_layer(background, ids, labels)], "composite": None}


def fill_payload(background: PIL.Image.Image, ids: np.ndarray, labels: LabelSet) -> dict[str, Any]:
    """A fill's result as the page's editor script applies it (one step of the editor's own history): the whole new
    layer (`marked_layer`) as a PNG data URL, and its size."""
    buffer = io.BytesIO()
    PIL.Image.fromarray(marked_layer(background, ids, labels)).save(buffer, format="PNG")
    return {"layer": "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"),
            "width": background.width, "height": background.height}


def blank_background(width: int, height: int) -> PIL.Image.Image:
    """The white background a layout is painted on."""
    return PIL.Image.new("RGB", (width, height), (255, 255, 255))


def mark_agreement(layer: np.ndarray, background: PIL.Image.Image) -> tuple[float, int]:
    """(share of the layer's still-marked pixels that agree with `background`'s pattern, how many are marked)."""
    alpha = np.asarray(layer)[..., 3].astype(np.int16)
    labelled = (alpha == LAYER_ALPHA) | (alpha == LAYER_ALPHA + 1)
    unlabelled = (alpha == UNLABELLED_ALPHA) | (alpha == UNLABELLED_ALPHA + 1)
    marked = labelled | unlabelled
    count = int(marked.sum())
    if not count:
        return 1.0, 0
    bits = np.where(labelled, alpha - LAYER_ALPHA, alpha - UNLABELLED_ALPHA)
    return float((bits[marked] == placement_marks(background)[marked]).mean()), count


def mask_from_editor(value: dict[str, Any] | None, background: PIL.Image.Image | None, labels: LabelSet) -> np.ndarray:
    """The editor's painted mask layer as class ids (anti-aliased strokes snapped to the palette), after checking that
    it is the mask of `background` (the photo or canvas the tab put into the editor): the same size, and where the
    server put it (`mark_agreement`).

    Raises:
        InputError: the editor holds no mask, one that cannot be read, or one whose size or placement does not match
            its photo (nothing may be saved from it).
    """
    layers = [layer for layer in ((value or {}).get("layers") or []) if layer is not None]
    if not layers or background is None:
        raise InputError("The editor is empty: upload an image and segment it, or start a blank layout.")
    layer = np.asarray(layers[0])
    if layer.ndim != 3 or layer.shape[2] not in (3, 4):
        raise InputError("The mask layer could not be read; please segment again or start a blank layout.")
    shown = (value or {}).get("background")
    sizes = {(layer.shape[1], layer.shape[0])} | ({_size(shown)} if shown is not None else set())
    if sizes != {background.size}:
        width, height = next(size for size in sizes if size != background.size)
        raise InputError(f"The editor's mask is {width}x{height} but its photo is {background.width}x"
                         f"{background.height}, so it was not used (nothing was saved). Reload the page and open the "
                         f"image again.")
    layer = layer.astype(np.uint8)
    if layer.shape[2] == 4:
        agreement, marked = mark_agreement(layer, background)
        if marked >= MIN_MARKED and agreement < MIN_MARK_AGREEMENT:
            raise InputError("The editor's mask does not line up with its photo (the browser shifted or scaled it), "
                             "so it was not used (nothing was saved). Reload the page and open the image again.")
    return layer_to_ids(layer, labels)


def _size(image: Any) -> tuple[int, int]:
    """(width, height) of a PIL image or an (H, W[, C]) array."""
    if isinstance(image, PIL.Image.Image):
        return image.size
    shape = np.shape(image)
    return shape[1], shape[0]


# Their former names, kept for one release.
labels_to_layer = renamed_function("app.editor.labels_to_layer", ids_to_layer)
layer_to_labels = renamed_function("app.editor.layer_to_labels", layer_to_ids)
