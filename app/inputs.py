"""Reading what people upload: images and masks from files, with size limits, notices and plain-sentence errors."""

from __future__ import annotations

import os

import numpy as np
import PIL.Image

from semflow import limits
from semflow.images import read_image, read_mask
from semflow.labels import LabelSet

from .errors import InputError, sentence

SAVED_AT_THIS_SIZE = "Saved annotations use this size."


def open_image(path: str | os.PathLike | None, what: str = "image", notices: list[str] | None = None,
               max_pixels: int = limits.MAX_PIXELS) -> PIL.Image.Image:
    """An upright RGB image from a file, at the working size (`semflow.limits.WORKING_SIDE` on the longer side at
    most), or `InputError` saying what is wrong with it.

    Args:
        notices: When given, sentences for the person are appended to it: only the first frame of an animated GIF or
            a multi-page TIFF was used; the image was brought to the working size.
        max_pixels: Larger files are refused before they are decoded (the app's setting; at most the shared limit).
    """
    if path is None:
        raise InputError(f"Please upload an {what} first.")
    try:
        read = read_image(path, f"The {what}", max_pixels)
    except limits.InvalidInput as error:
        raise InputError(sentence(error)) from None
    if notices is not None:
        notices.extend(_with_size_note(read.notices, read.image.size != read.original_size))
    return read.image


def open_mask(path: str | os.PathLike | None, labels: LabelSet, size: tuple[int, int] | None = None,
              notices: list[str] | None = None, max_pixels: int = limits.MAX_PIXELS) -> np.ndarray:
    """Class ids from a mask file: an 'L' PNG of ids, a colour preview in the model's display colours, or a palette
    image (GIF, palette PNG) read by colour when its colours are the display colours, else by palette index.

    Args:
        size: When given, (width, height) the mask must have at the working size (the size `open_image` gives an
            image of the same size).
        notices: When given, sentences for the person are appended to it (the first frame was used, which reading
            of a palette image was used, the working size).
        max_pixels: As for `open_image`.
    """
    if path is None:
        raise InputError("Please provide a mask (a class-id PNG or a colour preview) first.")
    try:
        read = read_mask(path, labels, "The mask", max_pixels, size=size)
    except limits.InvalidInput as error:
        raise InputError(sentence(error)) from None
    if notices is not None:
        notices.extend(_with_size_note(read.notices, read.ids.shape[::-1] != read.original_size))
    return read.ids


def fit_for_editing(image: PIL.Image.Image, max_side: int = limits.WORKING_SIDE) -> tuple[PIL.Image.Image, str | None]:
    """Downscale an image whose longer side exceeds `max_side` for the editor; returns it and a notice (or None)."""
    size = limits.working_size(image.width, image.height, max_side)
    if size == image.size:
        return image, None
    notice = (f"The image is {image.width}x{image.height}; it was downscaled to {size[0]}x{size[1]} for editing. "
              f"{SAVED_AT_THIS_SIZE}")
    return image.resize(size, PIL.Image.Resampling.LANCZOS), notice


def _with_size_note(notices: tuple[str, ...], resized: bool) -> list[str]:
    return [*notices[:-1], f"{notices[-1]} {SAVED_AT_THIS_SIZE}"] if resized else list(notices)
