"""Exports: a mask as a class-id PNG ("L") and as a colour preview, and GIF animations of trajectories."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import PIL.Image

from semflow.filenames import safe_stem
from semflow.labels import LabelSet


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
