"""The annotation folder: atomic saves of image + class-id mask + metadata row (imagefolder layout), and Hub pushes."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image
from filelock import FileLock

from semflow.filenames import safe_stem
from semflow.hub import push_folder

METADATA = "metadata.jsonl"
PUSHED = ".pushed.json"
LOCK = ".annotations.lock"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def default_root() -> Path:
    """`$SEMFLOW_ANNOTATIONS_DIR`, else ./annotations under the working directory."""
    return Path(os.environ.get("SEMFLOW_ANNOTATIONS_DIR") or Path.cwd() / "annotations")


@dataclass(frozen=True)
class SavedAnnotation:
    """Where one saved annotation lives, and its metadata row."""

    name: str
    image_path: Path
    mask_path: Path
    row: dict[str, Any]


class AnnotationStore:
    """An imagefolder dataset that only grows: ``images/<name>.png``, ``masks/<name>.png`` (class ids, mode "L")
    and ``metadata.jsonl`` rows with ``file_name`` and ``mask_file_name``.

    Every file is written to a temporary name and renamed into place, and the metadata file is rewritten whole
    under a lock, so concurrent savers and a crash mid-save never lose or corrupt a row already acknowledged.
    ``datasets.load_dataset("imagefolder", data_dir=root)`` loads it with `image` and `mask` columns.
    """

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()
        self.lock = FileLock(str(self.root / LOCK), timeout=60)

    def save(self, image: PIL.Image.Image, ids: np.ndarray, metadata: dict[str, Any]) -> SavedAnnotation:
        """Write the image, its mask and one metadata row; returns once all three are durable.

        Args:
            image: The photo (saved as RGB PNG).
            ids: (H, W) class ids at the image's size (saved as an "L" PNG).
            metadata: Free-form fields (annotator, model, steps, source file...); strings are cleaned of control
                characters and capped in length; they never become paths.
        """
        ids = np.asarray(ids)
        if ids.ndim != 2 or ids.shape != (image.height, image.width):
            raise ValueError(f"mask {ids.shape[::-1]} and image {image.size} must have the same size")
        if ids.min() < 0 or ids.max() > 255:
            raise ValueError("mask ids must be in 0..255")
        for folder in (self.root / "images", self.root / "masks"):
            folder.mkdir(parents=True, exist_ok=True)
        name = (f"{dt.datetime.now(dt.timezone.utc).strftime('%Y%m%dT%H%M%S')}-"
                f"{safe_stem(metadata.get('source_file'), 'image', 40)}-{secrets.token_hex(4)}")
        image_path, mask_path = self.root / "images" / f"{name}.png", self.root / "masks" / f"{name}.png"
        _write_atomic(image_path, _png(image.convert("RGB")))
        _write_atomic(mask_path, _png(PIL.Image.fromarray(ids.astype(np.uint8))))
        row = {"file_name": f"images/{name}.png", "mask_file_name": f"masks/{name}.png",
               **{key: _clean(value) for key, value in metadata.items() if key not in ("file_name", "mask_file_name")}}
        with self.lock:
            existing = (self.root / METADATA).read_bytes() if (self.root / METADATA).is_file() else b""
            if existing and not existing.endswith(b"\n"):
                existing += b"\n"
            _write_atomic(self.root / METADATA, existing + (json.dumps(row, ensure_ascii=False) + "\n").encode())
        return SavedAnnotation(name, image_path, mask_path, row)

    def rows(self) -> list[dict[str, Any]]:
        """All metadata rows, oldest first."""
        path = self.root / METADATA
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def push(self, repo_id: str, token: str | None = None, private: bool | None = None) -> str | None:
        """Upload the rows not pushed before to a Hub dataset repo, in a new folder ``data/<push id>/`` with its own
        metadata.jsonl, so earlier pushes (from here or from other machines) are never overwritten.

        Returns:
            The commit URL, or None when there was nothing new.
        """
        with self.lock:
            pushed = set(json.loads((self.root / PUSHED).read_text())) if (self.root / PUSHED).is_file() else set()
            new = [row for row in self.rows() if row["file_name"] not in pushed]
            if not new:
                return None
            push_id = f"{dt.datetime.now(dt.timezone.utc).strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(4)}"
            with tempfile.TemporaryDirectory() as staging:
                for sub in ("images", "masks"):
                    os.makedirs(os.path.join(staging, sub))
                for row in new:
                    for key in ("file_name", "mask_file_name"):
                        shutil.copyfile(self.root / row[key], os.path.join(staging, row[key]))
                with open(os.path.join(staging, METADATA), "w", encoding="utf-8") as f:
                    f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in new)
                url = push_folder(staging, repo_id, repo_type="dataset", path_in_repo=f"data/{push_id}", token=token,
                                  private=private, commit_message=f"Add {len(new)} annotations ({push_id})")
            _write_atomic(self.root / PUSHED, json.dumps(sorted(pushed | {r["file_name"] for r in new})).encode())
        return url


def _clean(value: Any, limit: int = 200) -> Any:
    if isinstance(value, str):
        return _CONTROL.sub("", value).strip()[:limit]
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return _clean(str(value), limit)


def _png(image: PIL.Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, flush it to disk, then rename it over `path`."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
