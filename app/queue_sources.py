"""Where a work queue's images come from: a folder of images, an `imagefolder`, a dataset folder in Hub layout or a Hub
dataset id, each as items with stable ids and mask names made from their file names."""

from __future__ import annotations

import io
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import PIL.Image

from semflow.filenames import safe_stem

from .errors import InputError
from .inputs import open_image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
METADATA_FILES = ("metadata.jsonl", "metadata.csv", "metadata.parquet")  # what makes a folder an `imagefolder`
DEFAULT_SPLIT = "train"
_HUB_ID = re.compile(r"[\w.-]+(/[\w.-]+)?")


@dataclass(frozen=True)
class QueueItem:
    """One image of a queue.

    Attributes:
        id: Stable key: the file's path relative to the folder, or ``<split>/<file name or row>`` for a dataset row.
        name: Stem of its mask files, named after the source image (sub-folders joined by "/"): ``masks/<name>.png``.
            Unique in the queue: images with equal stems get their extension, then their position, appended.
        index: Position in the queue's natural order.
    """

    id: str
    name: str
    index: int


class Source(Protocol):
    """Where a queue's images come from."""

    items: list[QueueItem]
    key: str  # identifies the source across runs (absolute folder, dataset + split)
    title: str  # short human name, used in the queue's folder name

    def image(self, item: QueueItem) -> PIL.Image.Image: ...


class FolderSource:
    """The image files under a folder, recursively, in path order (hidden files and folders are skipped)."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder).resolve()
        paths = sorted(path.relative_to(self.folder).as_posix() for path in self.folder.rglob("*")
                       if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()
                       and not any(part.startswith(".") for part in path.relative_to(self.folder).parts))
        if not paths:
            raise InputError(f"The folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)}).")
        self.items = _items(paths, paths)
        self.key = f"folder:{self.folder}"
        self.title = self.folder.name

    def image(self, item: QueueItem) -> PIL.Image.Image:
        return open_image(self.folder / item.id, f"image {item.name}")


class DatasetSource:
    """The rows of one split of a `datasets` dataset, read one at a time from its (memory-mapped) cache."""

    def __init__(self, dataset: Any, key: str, title: str, split: str, relative_to: Path | None = None) -> None:
        import datasets

        columns = [name for name, feature in dataset.features.items() if isinstance(feature, datasets.Image)]
        if not columns:
            raise InputError(f"{title} ({split}) has no image column.")
        self.column = "image" if "image" in columns else columns[0]
        self.dataset = dataset.cast_column(self.column, datasets.Image(decode=False))
        if relative_to is not None:  # an imagefolder: each image is a file under its folder
            files = [_relative(path, relative_to) for path in self._paths()]
        elif "file_name" in dataset.column_names:
            files = [str(name) if name else None for name in dataset["file_name"]]
        else:
            files = [Path(path).name if path else None for path in self._paths()]
        if files and all(files) and len(set(files)) == len(files):
            ids = [f"{split}/{name}" for name in files]
        else:
            ids = [f"{split}/{row}" for row in range(len(files))]
            files = [name or f"{split}-{row:06d}" for row, name in enumerate(files)]
        if not ids:
            raise InputError(f"{title} ({split}) has no rows.")
        self.items = _items(ids, files)
        self.key = key
        self.title = f"{title}-{split}"

    def _paths(self) -> list[str | None]:
        """The image column's file paths, read from the Arrow table without loading the image bytes."""
        import pyarrow.compute

        return pyarrow.compute.struct_field(self.dataset.data.column(self.column), "path").to_pylist()

    def image(self, item: QueueItem) -> PIL.Image.Image:
        cell = self.dataset[item.index][self.column]
        return open_image(io.BytesIO(cell["bytes"]) if cell.get("bytes") else cell["path"], f"image {item.name}")


def open_source(location: str | os.PathLike, split: str | None = None) -> Source:
    """A folder of images, an `imagefolder` (a folder with metadata.jsonl/csv/parquet), a dataset folder in Hub
    layout, or a Hub dataset id; `split` applies to the last three (default "train"). Hub datasets are read through
    `datasets`, which caches them."""
    path = Path(location).expanduser()
    split = split or DEFAULT_SPLIT
    if path.is_dir():
        folder = path.resolve()
        if any((folder / name).is_file() or any(folder.glob(f"*/{name}")) for name in METADATA_FILES):
            dataset = _load_dataset("imagefolder", split, data_dir=str(folder))
            return DatasetSource(dataset, f"imagefolder:{folder}:{split}", folder.name, split, relative_to=folder)
        try:
            return FolderSource(folder)
        except InputError as no_images:  # perhaps a dataset in Hub layout (parquet shards and a card)
            try:
                dataset = _load_dataset(str(folder), split)
            except InputError as error:
                raise InputError(f"{no_images} {error}") from None
        return DatasetSource(dataset, f"dataset:{folder}:{split}", folder.name, split)
    if path.exists():
        raise InputError(f"{location} is a file; open a folder of images, a dataset folder or a Hub dataset id.")
    if not _HUB_ID.fullmatch(str(location)):
        raise InputError(f"There is no folder {location}, and it is not a Hub dataset id (owner/name).")
    name = str(location)
    return DatasetSource(_load_dataset(name, split), f"dataset:{name}:{split}", name.rsplit("/", 1)[-1], split)


def takes_split(location: str | os.PathLike) -> bool:
    """Whether a split applies to `location` as `open_source` opens it: a Hub dataset id, an imagefolder or a dataset
    folder in Hub layout take one; a plain folder of images (any image file directly or further down) does not."""
    path = Path(location).expanduser()
    if not path.is_dir():
        return not path.exists()  # a Hub id (a file is no queue at all)
    if any((path / name).is_file() or any(path.glob(f"*/{name}")) for name in METADATA_FILES):
        return True
    images = (file for file in path.rglob("*") if file.suffix.lower() in IMAGE_SUFFIXES and file.is_file())
    return next(images, None) is None


def _load_dataset(location: str, split: str, **kwargs: Any) -> Any:
    import datasets

    try:
        return datasets.load_dataset(location, split=split, **kwargs)
    except (ValueError, FileNotFoundError, OSError) as error:
        raise InputError(f"Could not open the dataset {location} (split '{split}'): {error}") from None


def _items(ids: Sequence[str], files: Sequence[str]) -> list[QueueItem]:
    """Items named after their files: the path without its extension, below the folders all files share; equal
    names get the extension, then the position, appended."""
    parts = [file.replace("\\", "/").split("/") for file in files]
    shared = 0
    while all(len(p) > shared + 1 for p in parts) and len({p[shared] for p in parts}) == 1:
        shared += 1
    # safe_stem drops a short suffix after the last dot, so folders get a trailing dot to keep theirs
    names = ["/".join([safe_stem(f"{folder}.", "folder") for folder in p[shared:-1]] + [safe_stem(p[-1], "image")])
             for p in parts]
    for attempt in range(2):
        seen: dict[str, int] = {}
        for name in names:
            seen[name] = seen.get(name, 0) + 1
        for index, name in enumerate(names):
            if seen[name] > 1:
                suffix = Path(parts[index][-1]).suffix.lstrip(".").lower() if attempt == 0 else ""
                names[index] = f"{name}_{safe_stem(suffix + '.', str(index)) if suffix else index}"
    if len(set(names)) != len(names):
        raise InputError("Some images could not be given distinct mask names; rename them.")
    return [QueueItem(item_id, name, index) for index, (item_id, name) in enumerate(zip(ids, names))]


def _relative(path: str | None, folder: Path) -> str | None:
    if not path:
        return None
    try:
        return Path(path).resolve().relative_to(folder).as_posix()
    except ValueError:  # a metadata row naming a file outside the folder
        return Path(path).name
