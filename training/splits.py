"""Drive-held-out splits: which labelled frames may train a model and which score it, by the drive each frame's
file name names (CamVid's ``0006R0_f02340.png`` is drive ``0006R0``), so a model is chosen on a drive it never saw."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import datasets

DRIVE_COLUMN = "file_name"  # the column that names each frame's file, and so its drive
DRIVE_SEPARATOR = "_"  # a file name's drive is what comes before its first separator


def drive_of(file_name: str) -> str:
    """The drive a frame comes from: its file name's part before the first ``_`` (the whole stem when it has none)."""
    stem = str(file_name).replace("\\", "/").rsplit("/", 1)[-1]
    return stem.split(DRIVE_SEPARATOR, 1)[0] if DRIVE_SEPARATOR in stem else stem.rsplit(".", 1)[0]


def drives(split: datasets.Dataset, column: str = DRIVE_COLUMN) -> Counter:
    """Frames per drive in a split.

    Raises:
        ValueError: the split has no `column` to read drives from.
    """
    return Counter(drive_of(name) for name in _names(split, column))


def select_drives(split: datasets.Dataset, wanted: Iterable[str], keep: bool,
                  column: str = DRIVE_COLUMN) -> datasets.Dataset:
    """The rows of `split` from the drives in `wanted` (``keep=True``) or from every other drive (``keep=False``),
    in their order; the images are not decoded.

    Raises:
        ValueError: the split has no `column` to read drives from.
    """
    wanted = set(wanted)
    indices = [i for i, name in enumerate(_names(split, column)) if (drive_of(name) in wanted) == keep]
    return split.select(indices)


def _names(split: Any, column: str) -> list[str]:
    if not isinstance(split, datasets.Dataset):
        raise ValueError("held-out drives need a dataset loaded in full, not a streaming one")
    if column not in split.column_names:
        raise ValueError(f"held-out drives are read from the column '{column}', which the dataset does not have "
                         f"(columns: {split.column_names})")
    return split[column]


def held_out_splits(train: datasets.Dataset, validation: datasets.Dataset | None, held_out_drives: Iterable[str],
                    column: str = DRIVE_COLUMN) -> tuple[datasets.Dataset, datasets.Dataset | None, datasets.Dataset]:
    """(training rows, same-drive validation rows, held-out-drive rows) for `held_out_drives`: no frame of a held-out
    drive trains; the held-out rows are every labelled frame of those drives, from both splits; the same-drive
    validation rows are the validation split's other frames.

    Raises:
        ValueError: a held-out drive has no frame in either split (the names found are listed), or no training frame
            is left.
    """
    held_out = sorted(set(held_out_drives))
    found = drives(train, column) + (drives(validation, column) if validation is not None else Counter())
    missing = [drive for drive in held_out if drive not in found]
    if missing:
        raise ValueError(f"held-out drive(s) {missing} have no frame in the dataset; its drives are "
                         f"{dict(sorted(found.items()))}")
    parts = [select_drives(train, held_out, keep=True, column=column)]
    same_drive = None
    if validation is not None:
        parts.append(select_drives(validation, held_out, keep=True, column=column))
        same_drive = select_drives(validation, held_out, keep=False, column=column)
    training = select_drives(train, held_out, keep=False, column=column)
    if len(training) == 0:
        raise ValueError(f"holding out {held_out} leaves no frame to train on")
    return training, same_drive, datasets.concatenate_datasets(parts)
