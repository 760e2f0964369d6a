"""A queue's accepted items as a Hugging Face dataset: an imagefolder (``image`` and ``mask`` columns, class ids as
"L" PNGs) under ``data/<queue>/``, ``id2label.json`` for its label set and a dataset card; `datasets.load_dataset`
loads the folder and `python -m training.train --dataset <folder>` trains on it as it is. Written to a folder, zipped
for download, or pushed to a Hub dataset repo (each queue's folder replaced by its next push, the rest kept)."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL.Image

from semflow.annotation_layout import IMAGE_FILE_KEY, IMAGES_FOLDER, MASK_FILE_KEY, MASKS_FOLDER, METADATA_FILE
from semflow.filenames import safe_stem
from semflow.hub import push_folder
from semflow.labels import LabelSet

from .errors import InputError
from .storage import write_atomic
from .work_queue import ACCEPTED, WorkQueue

DATA_DIR = "data"  # each queue's rows in data/<queue>/ (one metadata.jsonl per queue)
ID2LABEL_FILE, CARD_FILE = "id2label.json", "README.md"
SAVED_AT = "%Y-%m-%dT%H:%M:%S.%fZ"  # when the row's version was saved, UTC, to the microsecond: saves within one
# second keep their order, by which a learning job holds the latest back


@dataclass(frozen=True)
class ExportedDataset:
    """A dataset written by `write_dataset`: its folder, the queue's sub-folder in it and how many pairs it holds."""

    folder: Path
    subfolder: str
    rows: int


def id2label(labels: LabelSet) -> dict:
    """The label set as a dataset's ``id2label.json`` (`semflow.labels.LabelSet.from_id2label` reads it back): names
    by id, the unlabelled id as ``ignore_index``, and the display colours."""
    names = {str(i): name for i, name in enumerate(labels.class_names)}
    palette = [list(color) for color in labels.colors]
    data = {"id2label": names, "palette": palette}
    if labels.ignore_id is not None:
        names[str(labels.ignore_id)] = labels.ignore_name
        palette += [[0, 0, 0]] * (labels.ignore_id - len(palette)) + [list(labels.ignore_color)]
        data["ignore_index"] = labels.ignore_id
    return data


def queue_folder_name(queue: WorkQueue) -> str:
    """The queue's sub-folder of a dataset: its title as a file name."""
    return safe_stem(queue.source.title, "queue", 60)


def write_dataset(queue: WorkQueue, labels: LabelSet, folder: str | os.PathLike,
                  statuses: Sequence[str] = (ACCEPTED,)) -> ExportedDataset:
    """Write the items of `statuses` (default: accepted) as a dataset into `folder` (this queue's earlier export there
    is replaced, other queues' stay); items whose image cannot be read are skipped (and marked in the queue).

    Raises:
        InputError: the queue has no item of those statuses, or a mask holds ids outside the label set.
    """
    folder = Path(folder)
    name = queue_folder_name(queue)
    base = folder / DATA_DIR / name
    shutil.rmtree(base, ignore_errors=True)
    rows = []
    for entry in queue.entries(statuses):
        try:
            labels.check_labels(entry.ids, f"mask of {entry.item.name}")
        except ValueError as error:
            raise InputError(f"The item {entry.item.name} cannot be exported with the label set {labels.name}: "
                             f"{error}.") from None
        image = queue.read_image(entry.item.id)
        if image is None:
            continue
        row = {IMAGE_FILE_KEY: f"{IMAGES_FOLDER}/{entry.item.name}.png",
               MASK_FILE_KEY: f"{MASKS_FOLDER}/{entry.item.name}.png", "queue": queue.source.title,
               "item": entry.item.id, "status": entry.status, "version": entry.version,
               "annotator": entry.annotator, "label_set": labels.name,
               "saved_at": dt.datetime.fromtimestamp(entry.saved_at, dt.timezone.utc).strftime(SAVED_AT)}
        for key, picture in ((IMAGE_FILE_KEY, image.convert("RGB")),
                             (MASK_FILE_KEY, PIL.Image.fromarray(entry.ids.astype(np.uint8)))):
            path = base / row[key]
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, _png(picture))
        rows.append(row)
    if not rows:
        from .queue_words import STATUS_NAMES

        words = " or ".join(STATUS_NAMES[status] for status in statuses)
        raise InputError(f"No item of this queue is {words} yet, so there is nothing to export.")
    write_atomic(base / METADATA_FILE, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode())
    write_atomic(folder / ID2LABEL_FILE, json.dumps(id2label(labels), indent=1).encode())
    write_atomic(folder / CARD_FILE, card(labels).encode())
    return ExportedDataset(folder, name, len(rows))


def card(labels: LabelSet) -> str:
    """The dataset card: what the folder holds and how to load and train on it."""
    classes = ", ".join(labels.class_names)
    if labels.ignore_id is not None:
        classes += f"; {labels.ignore_id} = {labels.ignore_name} (unlabelled)"
    return f"""---
tags:
- semantic-segmentation
- semflow-studio
---
# Annotated with SemFlow Studio

Images with semantic masks corrected and accepted in SemFlow Studio's work queues, one folder per queue under
`data/<queue>/` (`metadata.jsonl` names each pair's files and says which queue item, version and annotator it is, and
when that version was saved: `saved_at`).

- `image`: the photo (RGB PNG)
- `mask`: its class ids (mode "L" PNG, at the photo's size)
- label set `{labels.name}` (`id2label.json`): {classes}

```python
import datasets
ds = datasets.load_dataset("path/or/org/name", split="train")
```

Train or fine-tune on it:
`python -m training.train --dataset <this folder or repo> --init-from semflow --preset finetune`.
"""


def zip_dataset(exported: ExportedDataset, path: str | os.PathLike) -> Path:
    """The dataset folder as a zip archive (written to a temporary file, then renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(descriptor)
    try:
        with zipfile.ZipFile(temporary, "w", zipfile.ZIP_STORED) as archive:  # PNGs are compressed already
            for file in sorted(exported.folder.rglob("*")):
                if file.is_file():
                    archive.write(file, file.relative_to(exported.folder).as_posix())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def push_dataset(exported: ExportedDataset, repo_id: str, token: str | None = None,
                 private: bool | None = None) -> str:
    """Upload the dataset to a Hub dataset repo in one commit: the queue's folder replaces its earlier push (other
    queues' folders stay), with id2label.json and the card. Returns the commit URL."""
    return push_folder(exported.folder, repo_id, repo_type="dataset", token=token, private=private,
                       commit_message=f"Accepted items of {exported.subfolder} ({exported.rows} pairs)",
                       delete_patterns=[f"{DATA_DIR}/{exported.subfolder}/**"])


def _png(image: PIL.Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
