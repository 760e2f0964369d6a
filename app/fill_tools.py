"""Correction tools on class-id masks: flood fill by photo colour, superpixel fill, and replace a class in a region;
a fill asked for on the page (`Fill`), and when it is large enough to be asked about first."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import scipy.ndimage

# Largest per-channel difference (0..255) from the clicked colour that still fills: the largest tolerance whose fills
# were at least 97% the clicked class on CamVid validation frames (97.5%; 24 gave 61%), `benchmarks.fill_tolerance`.
DEFAULT_TOLERANCE = 12
MAX_FILL_SHARE = 0.10  # a fill that would change more of the image than this is previewed and asked about first
DEFAULT_SUPERPIXELS = 400  # SLIC segments asked for per image (480x360: about 20x20-pixel superpixels)
DEFAULT_COMPACTNESS = 10.0  # SLIC's colour-versus-space balance; lower follows colour edges more closely
SUPERPIXEL_CACHE_SIZE = 8  # images whose superpixels stay in memory (one annotator works on one image at a time)

Point = tuple[int, int]  # (x, y) in pixels, as Gradio's select event gives a click
FLOOD, SUPERPIXEL, BOX = "flood", "superpixel", "box"  # the tools a `Fill` uses


def flood_region(image: np.ndarray, point: Point, tolerance: int = DEFAULT_TOLERANCE) -> np.ndarray:
    """The pixels edge-connected to `point` whose colour differs from the clicked colour by at most `tolerance` in
    every channel (the magic wand of GIMP and Photoshop); a boolean (H, W) map."""
    photo = _check_photo(image)
    x, y = _check_point(point, photo.shape[:2])
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, np.integer)) or not 0 <= tolerance <= 255:
        raise ValueError(f"tolerance must be a whole number in 0..255, got {tolerance!r}")
    difference = np.abs(photo.astype(np.int16) - photo[y, x].astype(np.int16)).max(axis=2)
    components, _ = scipy.ndimage.label(difference <= tolerance)
    return components == components[y, x]


def flood_fill(ids: np.ndarray, image: np.ndarray, point: Point, class_id: int,
               tolerance: int = DEFAULT_TOLERANCE) -> np.ndarray:
    """New class ids with the region of similar photo colour around `point` (see `flood_region`) set to
    `class_id`; `ids` is not modified."""
    ids = _check_ids(ids, np.shape(image)[:2])
    return _assign(ids, flood_region(image, point, tolerance), class_id)


_cache: OrderedDict[tuple, np.ndarray] = OrderedDict()
_cache_lock = threading.Lock()


def superpixels(image: np.ndarray, n_segments: int = DEFAULT_SUPERPIXELS,
                compactness: float = DEFAULT_COMPACTNESS) -> np.ndarray:
    """SLIC superpixels of the photo as an (H, W) int32 map of segment numbers (read-only), computed once per image
    and setting and kept for the last few images."""
    photo = _check_photo(image)
    key = (hashlib.blake2b(photo.tobytes(), digest_size=16).hexdigest(), photo.shape, int(n_segments),
           float(compactness))
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    from skimage.segmentation import slic

    segments = slic(photo, n_segments=int(n_segments), compactness=float(compactness), start_label=0,
                    channel_axis=-1).astype(np.int32)
    segments.setflags(write=False)
    with _cache_lock:
        _cache[key] = segments
        while len(_cache) > SUPERPIXEL_CACHE_SIZE:
            _cache.popitem(last=False)
    return segments


def superpixel_fill(ids: np.ndarray, image: np.ndarray, point: Point, class_id: int,
                    n_segments: int = DEFAULT_SUPERPIXELS, compactness: float = DEFAULT_COMPACTNESS) -> np.ndarray:
    """New class ids with the superpixel under `point` set to `class_id`; `ids` is not modified."""
    segments = superpixels(image, n_segments, compactness)
    ids = _check_ids(ids, segments.shape)
    x, y = _check_point(point, segments.shape)
    return _assign(ids, segments == segments[y, x], class_id)


def replace_in_region(ids: np.ndarray, region: np.ndarray, old_class: int, new_class: int) -> np.ndarray:
    """New class ids where the pixels of class `old_class` inside the drawn `region` (boolean (H, W)) become
    `new_class`; every other pixel keeps its class and `ids` is not modified."""
    ids = np.asarray(ids)
    region = np.asarray(region)
    if region.dtype != bool:
        raise ValueError(f"region must be a boolean (H, W) map, got {region.dtype}")
    ids = _check_ids(ids, region.shape)
    return _assign(ids, region & (ids == _check_class(old_class, "old_class")), new_class, "new_class")


def _assign(ids: np.ndarray, where: np.ndarray, class_id: int, name: str = "class_id") -> np.ndarray:
    result = ids.copy()
    result[where] = _check_class(class_id, name)
    return result


def _check_photo(image: np.ndarray) -> np.ndarray:
    photo = np.asarray(image)
    if photo.ndim != 3 or photo.shape[2] != 3 or photo.dtype != np.uint8 or 0 in photo.shape:
        raise ValueError(f"the photo must be an (H, W, 3) uint8 array, got {photo.shape} {photo.dtype}")
    return photo


def _check_ids(ids: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    ids = np.asarray(ids)
    if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"the mask must be an (H, W) array of class ids, got {ids.shape} {ids.dtype}")
    if ids.shape != tuple(shape):
        raise ValueError(f"the mask is {ids.shape[1]}x{ids.shape[0]} but the photo or region is "
                         f"{shape[1]}x{shape[0]}; they must be the same size")
    return ids


def _check_point(point: Point, shape: tuple[int, ...]) -> tuple[int, int]:
    try:
        x, y = (int(v) for v in point)
    except (TypeError, ValueError):
        raise ValueError(f"the point must be (x, y) pixel coordinates, got {point!r}") from None
    height, width = shape[:2]
    if not (0 <= x < width and 0 <= y < height):
        raise ValueError(f"the point ({x}, {y}) is outside the {width}x{height} image")
    return x, y


def _check_class(class_id: int, name: str) -> int:
    if isinstance(class_id, bool) or not isinstance(class_id, (int, np.integer)) or not 0 <= class_id <= 255:
        raise ValueError(f"{name} must be a class id in 0..255, got {class_id!r}")
    return int(class_id)


@dataclass(frozen=True)
class Fill:
    """One fill asked for on the page, kept until it is applied (a large one waits for a yes).

    Attributes:
        tool: `FLOOD` (the region of similar colour around `point`), `SUPERPIXEL` (the superpixel under it) or `BOX`
            (`replaced` becomes `class_id` inside the box from `corner` to `point`).
        tolerance: The flood fill's tolerance.
    """

    tool: str
    point: Point
    class_id: int
    tolerance: int = DEFAULT_TOLERANCE
    replaced: int | None = None
    corner: Point | None = None

    def apply(self, ids: np.ndarray, image: np.ndarray) -> np.ndarray:
        """New class ids with this fill made on `ids` over the photo `image`; `ids` is not modified."""
        if self.tool == FLOOD:
            return flood_fill(ids, image, self.point, self.class_id, self.tolerance)
        if self.tool == SUPERPIXEL:
            return superpixel_fill(ids, image, self.point, self.class_id)
        if self.tool == BOX and self.corner is not None and self.replaced is not None:
            (x0, y0), (x1, y1) = self.corner, self.point
            box = np.zeros(np.shape(ids), bool)
            box[min(y0, y1) : max(y0, y1) + 1, min(x0, x1) : max(x0, x1) + 1] = True
            return replace_in_region(ids, box, self.replaced, self.class_id)
        raise ValueError(f"not a complete fill: {self!r}")


def changed_share(before: np.ndarray, after: np.ndarray) -> float:
    """The share of the image whose class a fill changes."""
    return float((np.asarray(before) != np.asarray(after)).mean())


def asks_first(before: np.ndarray, after: np.ndarray) -> bool:
    """Whether a fill changes so much of the image (more than `MAX_FILL_SHARE`) that the page previews it and asks."""
    return changed_share(before, after) > MAX_FILL_SHARE
