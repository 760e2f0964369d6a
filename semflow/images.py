"""Input conversion: PIL / numpy / torch images and label maps → canonical tensors; resizing to and from the model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import PIL.Image
import PIL.ImageOps
import torch
import torch.nn.functional as F

ImageInput = Any  # PIL.Image.Image | np.ndarray | torch.Tensor, or a list of them

MAX_PIXELS = 8192 * 8192


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
    if height * width > MAX_PIXELS:
        raise ValueError(f"{name} is {width}x{height}, more than the {MAX_PIXELS} pixels this pipeline accepts")


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


def to_image_tensor(image: Any, name: str = "images") -> torch.Tensor:
    """One image → (3, H, W) float32 in [0, 1].

    Accepts a PIL image of any mode; a numpy array (H, W), (H, W, 1|3|4) of uint8/uint16 or float in [0, 1];
    a torch tensor (3, H, W) / (1, H, W) / (H, W), uint8 or float in [0, 1].
    """
    if isinstance(image, PIL.Image.Image):
        _check_size(image.height, image.width, name)
        try:
            array = np.asarray(pil_to_rgb(image))
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


def to_label_array(labels: Any, name: str = "labels") -> np.ndarray:
    """One label map → (H, W) int64 array of ids.

    Accepts a PIL image of mode L, P (palette index = id), I, I;16; a 2-D integer numpy array or torch tensor.
    Colour images are refused: class ids are not colours.
    """
    if isinstance(labels, PIL.Image.Image):
        _check_size(labels.height, labels.width, name)
        if labels.mode not in ("L", "P", "I", "I;16", "I;16B", "I;16L", "I;16N"):
            raise ValueError(f"{name} must be single-channel class ids (PIL mode L, P, I or I;16), got mode "
                             f"{labels.mode}; colour masks must be converted to ids first")
        try:
            array = np.asarray(labels)
        except OSError as error:
            raise ValueError(f"{name}: the image could not be decoded ({error})") from error
    elif isinstance(labels, torch.Tensor):
        array = labels.detach().cpu().numpy()
    elif isinstance(labels, np.ndarray):
        array = labels
    else:
        raise TypeError(f"{name} must be PIL images, numpy arrays or torch tensors, got {type(labels).__name__}")
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


def resize_labels(labels: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Nearest-neighbour resize of (B, H, W) integer ids to `size` = (height, width)."""
    if tuple(labels.shape[-2:]) == tuple(size):
        return labels
    resized = F.interpolate(labels[:, None].float(), size=tuple(size), mode="nearest-exact")
    return resized[:, 0].to(labels.dtype)


def to_pil(x: torch.Tensor) -> PIL.Image.Image:
    """(3, H, W) in model units [-1, 1] → RGB PIL image."""
    array = ((x.float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return PIL.Image.fromarray(array)
