"""Mask exports (class-id PNG, colour preview, Pascal-VOC palette PNG, CVAT "Segmentation mask 1.1" zip) and GIFs."""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import PIL.Image

from semflow.filenames import safe_stem
from semflow.labels import LabelSet, voc_colormap


def export_dir() -> Path:
    """A per-process temporary folder for files handed to the browser."""
    folder = Path(tempfile.gettempdir()) / f"semflow-studio-{os.getpid()}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def save_mask_files(ids: np.ndarray, labels: LabelSet, stem: str = "mask") -> tuple[str, str]:
    """Write the ids PNG and the colour preview PNG; returns their paths (unique per call)."""
    folder = Path(tempfile.mkdtemp(dir=export_dir()))
    stem = safe_stem(stem, "mask")
    ids_path, color_path = folder / f"{stem}_ids.png", folder / f"{stem}_color.png"
    PIL.Image.fromarray(np.asarray(ids, np.uint8)).save(ids_path)
    PIL.Image.fromarray(labels.colorize(ids)).save(color_path)
    return str(ids_path), str(color_path)


def save_gif(frames: list[PIL.Image.Image], stem: str = "trajectory", frame_ms: int = 250) -> str:
    """An animated GIF of `frames` (the last one held longer); returns its path."""
    if not frames:
        raise ValueError("no frames to animate")
    path = Path(tempfile.mkdtemp(dir=export_dir())) / f"{safe_stem(stem, 'trajectory')}.gif"
    durations = [frame_ms] * (len(frames) - 1) + [frame_ms * 6]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=durations, loop=0)
    return str(path)


VOC_VOID = 255  # Pascal VOC's "void" index: unlabelled pixels and object borders
CVAT_BACKGROUND = "background"  # CVAT's label at index 0 (black) for pixels without an annotation
CVAT_LABELMAP = "labelmap.txt"
CVAT_CLASS_DIR = "SegmentationClass"
CVAT_OBJECT_DIR = "SegmentationObject"
CVAT_SUBSET_FILE = "ImageSets/Segmentation/default.txt"


def voc_palette_image(ids: np.ndarray, labels: LabelSet) -> PIL.Image.Image:
    """A Pascal-VOC mask: a palette image (mode "P") whose index is the class id and whose palette holds the label
    set's display colours; the ignore id becomes VOC's 255 "void", coloured with the ignore colour."""
    ids = _check_mask(ids, labels)
    indices = ids.astype(np.uint8)
    palette = labels.palette()
    if labels.ignore_id is not None:
        indices[ids == labels.ignore_id] = VOC_VOID
        palette[VOC_VOID] = labels.ignore_color
    return _palette_image(indices, palette)


def save_voc_mask(ids: np.ndarray, labels: LabelSet, stem: str = "mask") -> str:
    """Write `voc_palette_image` as ``<stem>_voc.png``; returns its path (unique per call)."""
    path = Path(tempfile.mkdtemp(dir=export_dir())) / f"{safe_stem(stem, 'mask')}_voc.png"
    voc_palette_image(ids, labels).save(path)
    return str(path)


def write_cvat_zip(masks: Iterable[tuple[str, np.ndarray]], labels: LabelSet, path: str | os.PathLike) -> Path:
    """A CVAT "Segmentation mask 1.1" archive of (name, class ids) pairs, as CVAT itself exports one.

    Layout: ``labelmap.txt`` (``name:r,g,b::`` per label, CVAT's ``background:0,0,0::`` first unless a class is so
    named), ``ImageSets/Segmentation/default.txt`` (the names), ``SegmentationClass/<name>.png`` (palette PNGs:
    index = line of the label map, palette = its colours) and ``SegmentationObject/<name>.png`` (one instance per
    class present, VOC instance colours, 0 = background). Unlabelled pixels (the ignore id) become background,
    which CVAT reads as "not annotated". Names may hold "/" for sub-folders. The archive is written to a temporary
    file and renamed into place.
    """
    names = [CVAT_BACKGROUND] if CVAT_BACKGROUND not in labels.class_names else []
    offset = len(names)
    entries = list(zip(names + list(labels.class_names), [(0, 0, 0)] * offset + list(labels.colors)))
    for name, _ in entries:
        if ":" in name or "\n" in name:
            raise ValueError(f"class name {name!r} cannot be written to a CVAT label map (no ':' or line breaks)")
    seen: dict[tuple[int, int, int], str] = {}
    for name, color in entries:
        if color in seen:
            raise ValueError(f"classes '{seen[color]}' and '{name}' share the colour {color}; CVAT tells labels apart "
                             f"by colour, so give each a distinct colour")
        seen[color] = name
    class_palette = np.zeros((256, 3), np.uint8)
    class_palette[: len(entries)] = [color for _, color in entries]
    lookup = np.zeros(256, np.uint8)
    lookup[: labels.num_classes] = np.arange(labels.num_classes) + offset
    object_palette = np.asarray(voc_colormap(256), np.uint8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(descriptor)
    written: list[str] = []
    try:
        with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, ids in masks:
                name = _archive_name(name)
                if name in written:
                    raise ValueError(f"two masks are named '{name}'; names must be unique")
                ids = _check_mask(ids, labels, f"mask '{name}'")
                if labels.ignore_id is not None and offset == 0 and (ids == labels.ignore_id).any():
                    raise ValueError(f"mask '{name}' has unlabelled pixels but the label set already has a class "
                                     f"named '{CVAT_BACKGROUND}', so CVAT has no label left for them")
                classes = lookup[ids.astype(np.uint8)]
                if labels.ignore_id is not None:
                    classes[ids == labels.ignore_id] = 0
                present = [int(c) for c in np.unique(classes) if c != 0]
                instances = np.zeros(256, np.uint8)
                instances[present] = np.arange(1, len(present) + 1)
                archive.writestr(f"{CVAT_CLASS_DIR}/{name}.png", _png_bytes(_palette_image(classes, class_palette)))
                archive.writestr(f"{CVAT_OBJECT_DIR}/{name}.png",
                                 _png_bytes(_palette_image(instances[classes], object_palette)))
                written.append(name)
            if not written:
                raise ValueError("there are no masks to export")
            archive.writestr(CVAT_LABELMAP, "# label:color_rgb:parts:actions\n" + "".join(
                f"{name}:{r},{g},{b}::\n" for name, (r, g, b) in entries))
            archive.writestr(CVAT_SUBSET_FILE, "".join(f"{name}\n" for name in written))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def save_cvat_zip(masks: Iterable[tuple[str, np.ndarray]], labels: LabelSet, stem: str = "annotations") -> str:
    """Write `write_cvat_zip` as ``<stem>_cvat.zip`` in a fresh export folder; returns its path."""
    folder = Path(tempfile.mkdtemp(dir=export_dir()))
    return str(write_cvat_zip(masks, labels, folder / f"{safe_stem(stem, 'annotations')}_cvat.zip"))


def _check_mask(ids: np.ndarray, labels: LabelSet, name: str = "mask") -> np.ndarray:
    ids = np.asarray(ids)
    if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"{name} must be an (H, W) array of class ids, got {ids.shape} {ids.dtype}")
    labels.check_ids(ids, name)
    return ids


def _archive_name(name: str) -> str:
    parts = str(name).replace("\\", "/").split("/")
    if any(part != safe_stem(part, "") for part in parts):
        raise ValueError(f"mask name {name!r} must be plain file stems (letters, digits, '.', '_', '-') joined by '/'")
    return "/".join(parts)


def _palette_image(indices: np.ndarray, palette: np.ndarray) -> PIL.Image.Image:
    image = PIL.Image.fromarray(np.asarray(indices, np.uint8))  # "L"; putpalette makes it "P"
    image.putpalette(np.asarray(palette, np.uint8).reshape(-1).tolist())
    return image


def _png_bytes(image: PIL.Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
