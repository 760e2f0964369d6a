"""Input conversion: image files, PIL / numpy / torch images and label maps → canonical tensors at the working size;
resizing to and from the model."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import PIL.ExifTags
import PIL.Image
import PIL.ImageOps
import torch
import torch.nn.functional as F

from . import limits
from .deprecation import renamed_function, renamed_keywords
from .labels import LabelSet
from .limits import InvalidInput, working_size

ImageInput = Any  # PIL.Image.Image | np.ndarray | torch.Tensor, or a list of them

_SHRINKABLE = ("RGB", "RGBA", "L", "LA", "I", "F", "I;16")  # modes PIL resizes with antialiasing as they are
_ROTATED = (5, 6, 7, 8)  # EXIF orientations that swap width and height


def as_list(inputs: Any, name: str) -> list[Any]:
    """One input or a list/tuple of inputs → a non-empty list; a 4-D array or tensor is split along its first axis."""
    if isinstance(inputs, (list, tuple)):
        if len(inputs) == 0:
            raise ValueError(f"{name} is an empty list")
        return list(inputs)
    if isinstance(inputs, (np.ndarray, torch.Tensor)) and inputs.ndim == 4:
        if inputs.shape[0] == 0:
            raise ValueError(f"{name} is an empty batch")
        return list(inputs)
    return [inputs]


def _check_size(height: int, width: int, name: str) -> None:
    if height < 1 or width < 1:
        raise ValueError(f"{name} is empty ({height}x{width})")
    limits.check_pixels(width, height, name)


def pil_to_rgb(image: PIL.Image.Image) -> PIL.Image.Image:
    """Upright 8-bit RGB: applies EXIF orientation, composites transparency over white, scales 16/32-bit and float."""
    image = PIL.ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        top = 1.0 if image.mode == "F" else (65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0)
        return PIL.Image.fromarray(np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8)).convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = PIL.Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return PIL.Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def rgb_at_working_size(image: PIL.Image.Image, max_side: int = limits.WORKING_SIDE,
                        size: tuple[int, int] | None = None) -> PIL.Image.Image:
    """`pil_to_rgb`, with an image whose longer side exceeds `max_side` first brought to `max_side` (LANCZOS after an
    integer box reduction, in the image's own mode where PIL can), so a big image is never converted at full size.

    Args:
        size: The upright (width, height) to bring it to instead, when known from elsewhere (a file decoded at a
            reduced scale is brought to the working size of its size in the file).
    """
    if size is None and max(image.size) <= max_side:
        return pil_to_rgb(image)
    if image.getexif().get(PIL.ExifTags.Base.Orientation, 1) != 1:
        image = PIL.ImageOps.exif_transpose(image)
    size = tuple(size or working_size(*image.size, max_side))
    if image.size == size:
        return pil_to_rgb(image)
    if image.mode not in _SHRINKABLE:  # palette, 1-bit, CMYK...: resize their colours, not their codes
        image = pil_to_rgb(image)
    return pil_to_rgb(image.resize(size, PIL.Image.Resampling.LANCZOS, reducing_gap=3.0))


def ids_at_working_size(ids: np.ndarray, max_side: int = limits.WORKING_SIDE) -> np.ndarray:
    """(H, W) class ids brought to `max_side` on the longer side by nearest-exact sampling (as `resize_ids`)."""
    height, width = ids.shape[:2]
    new_width, new_height = working_size(width, height, max_side)
    if (new_width, new_height) == (width, height):
        return ids
    rows = np.minimum(((np.arange(new_height) + 0.5) * (height / new_height)).astype(np.int64), height - 1)
    cols = np.minimum(((np.arange(new_width) + 0.5) * (width / new_width)).astype(np.int64), width - 1)
    return ids[rows][:, cols]


def input_size(image: Any) -> tuple[int, int]:
    """(height, width) of an image input as `to_image_tensor` reads it, before any resizing: upright for a PIL image
    with an EXIF orientation, (H, W) of an (H, W[, C]) array or a (C, H, W) / (H, W) tensor."""
    if isinstance(image, PIL.Image.Image):
        width, height = image.size
        rotated = image.getexif().get(PIL.ExifTags.Base.Orientation, 1) in _ROTATED
        return (width, height) if rotated else (height, width)
    shape = tuple(image.shape)
    return shape[-2:] if isinstance(image, torch.Tensor) else shape[:2]


def to_image_tensor(image: Any, name: str = "images") -> torch.Tensor:
    """One image → (3, H, W) float32 in [0, 1], at the working size.

    Accepts a PIL image of any mode; a numpy array (H, W), (H, W, 1|3|4) of uint8/uint16 or float in [0, 1];
    a torch tensor (3, H, W) / (1, H, W) / (H, W), uint8 or float in [0, 1]. An image whose longer side exceeds
    `limits.WORKING_SIDE` is brought to it first, before any full-size float conversion (`input_size` gives the size
    it had); smaller images are converted as they are.
    """
    if isinstance(image, PIL.Image.Image):
        _check_size(image.height, image.width, name)
        try:
            array = np.asarray(rgb_at_working_size(image))
        except (OSError, ValueError) as error:
            raise ValueError(f"{name}: the {image.mode} image could not be decoded to RGB ({error})") from error
        return torch.from_numpy(array.copy()).permute(2, 0, 1).float() / 255.0
    if isinstance(image, np.ndarray):
        return _array_to_tensor(image, name)
    if isinstance(image, torch.Tensor):
        tensor = image.detach().cpu()
        if tensor.dim() == 3:
            if tensor.shape[0] not in (1, 3, 4):
                raise ValueError(f"{name} tensors must be channels-first (C, H, W) with C in 1, 3, 4; "
                                 f"got {tuple(tensor.shape)}")
            tensor = tensor.permute(1, 2, 0)
        return _array_to_tensor(tensor.numpy(), name)
    raise TypeError(f"{name} must be PIL images, numpy arrays or torch tensors, got {type(image).__name__}")


def _array_to_tensor(array: np.ndarray, name: str) -> torch.Tensor:
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ValueError(f"{name} arrays must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); got {array.shape}")
    _check_size(array.shape[0], array.shape[1], name)
    if max(array.shape[:2]) > limits.WORKING_SIDE:
        array = _shrink_array(array)
    if array.dtype == np.uint8:
        values = array.astype(np.float32) / 255.0
    elif array.dtype == np.uint16:
        values = array.astype(np.float32) / 65535.0
    elif array.dtype == np.bool_:
        values = array.astype(np.float32)
    elif np.issubdtype(array.dtype, np.floating):
        values = array.astype(np.float32)
        if not np.isfinite(values).all() or values.min() < 0.0 or values.max() > 1.0:
            raise ValueError(f"{name} float arrays must hold finite values in [0, 1]")
    else:
        raise ValueError(f"{name} arrays must be uint8, uint16, bool or float in [0, 1]; got {array.dtype}")
    if values.shape[2] == 4:  # composite over white
        alpha = values[:, :, 3:]
        values = values[:, :, :3] * alpha + (1.0 - alpha)
    elif values.shape[2] == 1:
        values = np.repeat(values, 3, axis=2)
    return torch.from_numpy(np.ascontiguousarray(values)).permute(2, 0, 1)


def _shrink_array(array: np.ndarray) -> np.ndarray:
    """A big (H, W, C) array brought to the working size (antialiased bilinear) in its own type: 8-bit and boolean
    data as bytes, 16-bit and float through float32; an array refused at any size (bad type or values) is returned
    as it is, for the checks that follow to refuse."""
    if array.dtype == np.bool_:
        array = array.view(np.uint8) * np.uint8(255)
    if array.dtype == np.uint8:
        pixels = torch.from_numpy(np.require(array, requirements=["C", "W"]))
    elif array.dtype == np.uint16 or (np.issubdtype(array.dtype, np.floating) and np.isfinite(array).all()
                                      and array.min() >= 0.0 and array.max() <= 1.0):
        pixels = torch.from_numpy(np.require(array, np.float32, ["C", "W"]))
    else:
        return array
    width, height = working_size(array.shape[1], array.shape[0])
    small = F.interpolate(pixels.permute(2, 0, 1)[None], size=(height, width), mode="bilinear", align_corners=False,
                          antialias=True)[0].permute(1, 2, 0).numpy()
    if array.dtype == np.uint16:
        return np.clip(np.rint(small), 0, 65535).astype(np.uint16)
    return small if array.dtype == np.uint8 else np.clip(small, 0.0, 1.0)


@renamed_keywords(labels="ids")
def to_ids(ids: Any, name: str = "masks") -> np.ndarray:
    """One class-id map → (H, W) int64 array of ids, at its own size (training pairs it with its image; the app and
    the command line bring big mask files to the working size with `read_mask` first).

    Accepts a PIL image of mode L, P (palette index = id), I, I;16; a 2-D integer numpy array or torch tensor.
    Colour images are refused: class ids are not colours.
    """
    if isinstance(ids, PIL.Image.Image):
        _check_size(ids.height, ids.width, name)
        if ids.mode not in ("L", "P", "I", "I;16", "I;16B", "I;16L", "I;16N"):
            raise ValueError(f"{name} must be single-channel class ids (PIL mode L, P, I or I;16), got mode "
                             f"{ids.mode}; colour masks must be converted to ids first")
        try:
            array = np.asarray(ids)
        except OSError as error:
            raise ValueError(f"{name}: the image could not be decoded ({error})") from error
    elif isinstance(ids, torch.Tensor):
        array = ids.detach().cpu().numpy()
    elif isinstance(ids, np.ndarray):
        array = ids
    else:
        raise TypeError(f"{name} must be PIL images, numpy arrays or torch tensors, got {type(ids).__name__}")
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D (H, W) class ids, got shape {array.shape}")
    _check_size(array.shape[0], array.shape[1], name)
    if not (np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_):
        if np.issubdtype(array.dtype, np.floating) and np.isfinite(array).all() and (array == np.round(array)).all():
            array = array.astype(np.int64)
        else:
            raise ValueError(f"{name} must hold integer class ids, got dtype {array.dtype}")
    return array.astype(np.int64)


def resize_images(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Smooth resize of (B, C, H, W) to `size` = (height, width): antialiased bilinear (area-like when shrinking)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)


@renamed_keywords(labels="ids")
def resize_ids(ids: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Nearest-neighbour resize of (B, H, W) integer ids to `size` = (height, width)."""
    if tuple(ids.shape[-2:]) == tuple(size):
        return ids
    resized = F.interpolate(ids[:, None].float(), size=tuple(size), mode="nearest-exact")
    return resized[:, 0].to(ids.dtype)


def to_pil(x: torch.Tensor) -> PIL.Image.Image:
    """(3, H, W) in model units [-1, 1] → RGB PIL image."""
    array = ((x.float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return PIL.Image.fromarray(array)


# --- image files: limits checked before decoding, first frames, palette masks ---------------------------------------

@dataclass(frozen=True)
class ImageFile:
    """An image file read for the model.

    Attributes:
        image: Upright RGB, at the working size (`limits.WORKING_SIDE` on the longer side at most).
        original_size: (width, height) of the upright image in the file.
        notices: Sentences for the person: only the first frame was used, transparent pixels were flattened onto white,
            the image was brought to the working size.
    """

    image: PIL.Image.Image
    original_size: tuple[int, int]
    notices: tuple[str, ...] = ()


@dataclass(frozen=True)
class MaskFile:
    """A mask file read as class ids.

    Attributes:
        ids: (H, W) uint8 class ids of the label set, at the working size.
        original_size: (width, height) of the upright mask in the file.
        notices: Sentences for the person: the first frame was used, how a palette image was read, the working size.
    """

    ids: np.ndarray
    original_size: tuple[int, int]
    notices: tuple[str, ...] = ()


def read_image(path: str | os.PathLike, name: str, max_pixels: int = limits.MAX_PIXELS,
               max_side: int = limits.WORKING_SIDE) -> ImageFile:
    """Open an image file refusing, before decoding, what is over `max_pixels` or under `limits.MIN_SIDE` a side; use
    its first frame; bring it to `max_side` (a JPEG is decoded at a reduced scale when that is enough).

    Args:
        name: How messages call the file, e.g. ``"The image"`` or its path.
    Raises:
        InvalidInput: with a message naming `name`: missing, unreadable, too large, too small.
    """
    image, original_size, notices = _open_file(path, name, max_pixels, max_side)
    try:
        if is_transparent(image):
            notices.append(f"{name} has transparent pixels; they were flattened onto white, as the model sees them.")
        rgb = rgb_at_working_size(image, size=working_size(*original_size, max_side))
    except (OSError, ValueError) as error:
        raise InvalidInput(f"{name} could not be decoded ({error})") from None
    return ImageFile(rgb, original_size, tuple(notices) + _resized_notice(name, original_size, rgb.size))


def is_transparent(image: PIL.Image.Image) -> bool:
    """Whether any pixel of `image` is less than opaque (an alpha channel, or a palette or single colour marked
    transparent); `pil_to_rgb` flattens such pixels onto white."""
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        return image.getchannel("A").getextrema()[0] < 255
    if "transparency" in image.info:
        return image.convert("RGBA").getchannel("A").getextrema()[0] < 255
    return False


def read_mask(path: str | os.PathLike, labels: LabelSet, name: str, max_pixels: int = limits.MAX_PIXELS,
              max_side: int = limits.WORKING_SIDE, size: tuple[int, int] | None = None) -> MaskFile:
    """Class ids from a mask file (`mask_ids`), with `read_image`'s checks, first frame and working size.

    Args:
        size: When given, the (width, height) the mask must have at the working size (that of its image).
    """
    image, original_size, notices = _open_file(path, name, max_pixels, None)  # no reduced JPEG decoding: ids are exact
    if size is not None and working_size(*original_size, max_side) != tuple(size):
        raise InvalidInput(f"{name} is {original_size[0]}x{original_size[1]} but the image is {size[0]}x{size[1]}; "
                           f"they must be the same size")
    ids, reading = mask_ids(PIL.ImageOps.exif_transpose(image), labels, name)
    small = ids_at_working_size(ids, max_side)
    notices += [reading] if reading else []
    return MaskFile(small, original_size, tuple(notices) + _resized_notice(name, original_size, small.shape[::-1]))


def mask_ids(image: PIL.Image.Image, labels: LabelSet, name: str) -> tuple[np.ndarray, str | None]:
    """Class ids of a mask image, and which reading was used when it was not plain.

    "L" / "I" / "I;16": the values are the ids. "P" (GIF, palette PNG): by colour when every colour it uses is a
    display colour of `labels` (a colour preview saved as a palette image), else its palette indices are the ids.
    Other modes: by colour, which must be display colours exactly.

    Raises:
        InvalidInput: an id outside the label set, or a colour outside its palette.
    """
    reading = None
    if image.mode == "P":
        indices = np.asarray(image)
        used = np.unique(indices)
        palette = np.asarray(image.getpalette("RGB") or [], np.uint8).reshape(-1, 3)
        palette = np.concatenate([palette, np.zeros((256 - len(palette), 3), np.uint8)])[:256]
        colours = palette[used]
        display = set(labels.colors) | ({labels.ignore_color} if labels.ignore_id is not None else set())
        greys = (colours == used[:, None]).all()  # an "L" image converted to "P": its grey levels are the ids
        if not greys and all(tuple(int(v) for v in c) in display for c in colours):
            lookup = np.zeros(256, np.uint8)
            lookup[used] = labels.colors_to_ids(colours[None], name=name)[0]
            return lookup[indices], (f"{name} is a palette image in the display colours of '{labels.name}'; it was "
                                     f"read by colour.")
        reading = f"{name} is a palette image; its palette indices were read as class ids."
        ids = indices
    elif image.mode in ("L", "I", "I;16", "I;16B", "I;16L", "I;16N"):
        ids = np.asarray(image)
    else:
        try:
            return labels.colors_to_ids(np.asarray(image.convert("RGB")), name=name), None
        except ValueError as error:
            raise InvalidInput(f"{error}; paint with the label set's display colours, or use a class-id PNG "
                               f"(mode 'L')") from None
    ids = ids.astype(np.int64)
    try:
        labels.check_ids(ids, name)
    except ValueError as error:
        raise InvalidInput(str(error)) from None
    return ids.astype(np.uint8), reading


def check_image_file(path: str | os.PathLike, name: str, max_pixels: int = limits.MAX_PIXELS) -> None:
    """`read_image`'s refusals (missing, unreadable, too large, too small) from the file's header alone."""
    _open_file(path, name, max_pixels, None, decode=False)


def _open_file(path: str | os.PathLike, name: str, max_pixels: int, max_side: int | None,
               decode: bool = True) -> tuple[PIL.Image.Image, tuple[int, int], list[str]]:
    """The decoded first frame, the upright size in the file, and a notice when there were more frames."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PIL.Image.DecompressionBombWarning)
            image = PIL.Image.open(path)
            width, height = image.size
            limits.check_size(width, height, name, max_pixels)
            if not decode:
                image.close()
                return image, (width, height), []
            frames = getattr(image, "n_frames", 1)  # before decoding: counting frames may seek
            if max_side is not None and image.format == "JPEG":
                image.draft(None, working_size(width, height, max_side))  # decode at 1/2, 1/4 or 1/8 scale
            image.load()
            rotated = image.getexif().get(PIL.ExifTags.Base.Orientation, 1) in _ROTATED
    except InvalidInput:
        raise
    except (PIL.Image.DecompressionBombError, PIL.Image.DecompressionBombWarning):
        raise limits.too_large_to_open(name, PIL.Image.MAX_IMAGE_PIXELS, max_pixels) from None
    except FileNotFoundError:
        raise InvalidInput(f"{name} does not exist") from None
    except IsADirectoryError:
        raise InvalidInput(f"{name} is a folder, not an image file") from None
    except (PIL.UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as error:
        raise InvalidInput(f"{name} is not a readable image file ({type(error).__name__})") from None
    notices = [f"{name} has {frames} frames ({image.format or 'image'}); only the first frame was used."] if (
        frames > 1) else []
    return image, ((height, width) if rotated else (width, height)), notices


def _resized_notice(name: str, original: tuple[int, int], size: tuple[int, int]) -> tuple[str, ...]:
    if tuple(size) == tuple(original):
        return ()
    return (f"{name} is {original[0]}x{original[1]}; it was brought to {size[0]}x{size[1]}, the working size.",)


to_label_array = renamed_function("semflow.images.to_label_array", to_ids)
resize_labels = renamed_function("semflow.images.resize_labels", resize_ids)
