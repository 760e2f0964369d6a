"""Reading what people upload: images and masks from files, with size limits and plain-sentence errors."""

from __future__ import annotations

import os
import warnings

import numpy as np
import PIL.Image
import PIL.ImageOps

from semflow.images import pil_to_rgb
from semflow.labels import LabelSet

from .errors import InputError

MIN_SIDE = 8
MAX_PIXELS = int(os.environ.get("SEMFLOW_MAX_PIXELS", 40_000_000))
MAX_EDIT_SIDE = int(os.environ.get("SEMFLOW_MAX_EDIT_SIDE", 1024))


def open_image(path: str | os.PathLike | None, what: str = "image") -> PIL.Image.Image:
    """An upright RGB image from a file, or `InputError` saying what is wrong with it."""
    if path is None:
        raise InputError(f"Please upload an {what} first.")
    image = _open(path, what)
    try:
        return pil_to_rgb(image)
    except (OSError, ValueError) as error:
        raise InputError(f"The {what} could not be read ({error}).") from None


def open_mask(path: str | os.PathLike | None, labels: LabelSet, size: tuple[int, int] | None = None) -> np.ndarray:
    """Class ids from a mask file: an 'L' PNG of ids, or a colour preview in the model's display colours.

    Args:
        size: When given, (width, height) the mask must have.
    """
    if path is None:
        raise InputError("Please provide a mask (a class-id PNG or a colour preview) first.")
    image = _open(path, "mask")
    if size is not None and image.size != tuple(size):
        raise InputError(f"The mask is {image.width}x{image.height} but the image is {size[0]}x{size[1]}; "
                         f"they must be the same size.")
    if image.mode in ("L", "P", "I", "I;16"):
        ids = np.asarray(image).astype(np.int64)  # for "P", the palette index is the id
        invalid = ~labels.is_valid(ids)
        if invalid.any():
            bad = np.unique(ids[invalid])[:8].tolist()
            raise InputError(f"The mask has ids {bad} that are not classes of '{labels.name}' "
                             f"(0..{labels.num_classes - 1}" + ("" if labels.ignore_id is None else
                                                               f", or {labels.ignore_id} for unlabelled") + ").")
        return ids.astype(np.uint8)
    rgb = np.asarray(image.convert("RGB"))
    try:
        return labels.colors_to_ids(rgb, name="The mask")
    except ValueError as error:
        raise InputError(f"{error}. Paint with the palette's colours, or upload a class-id PNG.") from None


def _open(path: str | os.PathLike, what: str) -> PIL.Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PIL.Image.DecompressionBombWarning)
            image = PIL.Image.open(path)
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise InputError(f"The {what} is {width}x{height} pixels; the limit is {MAX_PIXELS // 1_000_000} "
                                 f"megapixels. Please downscale it.")
            image.load()
    except InputError:
        raise
    except (PIL.Image.DecompressionBombError, PIL.Image.DecompressionBombWarning):
        raise InputError(f"The {what} is too large to open safely; please downscale it.") from None
    except FileNotFoundError:
        raise InputError(f"The {what} file is missing; please upload it again.") from None
    except (PIL.UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise InputError(f"That file is not a readable {what} ({type(error).__name__}). Please upload a PNG or "
                         f"JPEG.") from None
    if min(image.size) < MIN_SIDE:
        raise InputError(f"The {what} is {image.width}x{image.height}; it must be at least {MIN_SIDE} pixels on "
                         f"each side.")
    return PIL.ImageOps.exif_transpose(image)


def fit_for_editing(image: PIL.Image.Image, max_side: int = MAX_EDIT_SIDE) -> tuple[PIL.Image.Image, str | None]:
    """Downscale an image whose longer side exceeds `max_side` for the editor; returns it and a notice (or None)."""
    longest = max(image.size)
    if longest <= max_side:
        return image, None
    scale = max_side / longest
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    notice = (f"The image is {image.width}x{image.height}; it was downscaled to {size[0]}x{size[1]} for editing. "
              f"Saved annotations use the downscaled size.")
    return image.resize(size, PIL.Image.Resampling.LANCZOS), notice
