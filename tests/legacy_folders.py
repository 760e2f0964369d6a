"""Annotation folders as the app wrote them before its database, to test their import: a work queue's ``state.json``,
``claims.json``, ``predictions/`` and ``masks/`` files under ``queues/<title>-<hash>/``, and photos saved one at a time
(``images/``, ``masks/``, ``metadata.jsonl``, ``.pushed.json``). The files are written byte for byte in the formats the
folder-based store wrote (its JSON layout, its PNG text chunks)."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import PIL.Image
import PIL.PngImagePlugin

from semflow.filenames import safe_stem

CONFIDENCE_KEY = "semflow-confidence"  # a stored prediction's mean confidence (PNG text chunk)
ROW_CHUNK = "semflow-annotation"  # a saved photo's mask: its metadata row (PNG iTXt chunk)


@dataclass
class LegacyQueue:
    """One queue's state as the folder-based store kept it: per item id its status record, its name, its masks."""

    folder: Path
    source_key: str
    names: dict[str, str] = field(default_factory=dict)
    records: dict[str, dict] = field(default_factory=dict)
    claims: dict[str, dict] = field(default_factory=dict)

    def predict(self, item_id: str, ids: np.ndarray, confidence: float | None) -> None:
        _write(self.folder / "predictions" / f"{self.names[item_id]}.png", _png(ids, confidence))
        record = self.records.setdefault(item_id, {"status": "todo"})
        record["confidence"] = confidence
        if record["status"] == "todo":
            record["status"] = "preannotated"

    def save(self, item_id: str, ids: np.ndarray, owner: str, status: str = "corrected",
             when: float = 1_800_000_000.0) -> None:
        _write(self.folder / "masks" / f"{self.names[item_id]}.png", _png(ids))
        self.records.setdefault(item_id, {}).update(
            status=status, by=owner, updated=dt.datetime.fromtimestamp(when, dt.timezone.utc).isoformat(
                timespec="seconds"))

    def claim(self, item_id: str, owner: str, expires: float) -> None:
        self.claims[item_id] = {"owner": owner, "expires": expires}

    def write(self) -> Path:
        """state.json and claims.json, compact, as the store wrote them."""
        state = {"source": self.source_key, "names": self.names, "items": self.records}
        for name, data in (("state.json", state), ("claims.json", self.claims)):
            _write(self.folder / name, json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode())
        return self.folder


def legacy_queue(annotations: Path, source_key: str, title: str, item_ids: list[str],
                 names: list[str]) -> LegacyQueue:
    """A queue's folder where the folder-based store kept it: ``queues/<title>-<first 10 hex of sha1(key)>``."""
    digest = hashlib.sha1(source_key.encode()).hexdigest()[:10]
    folder = annotations / "queues" / f"{safe_stem(title, 'queue', 40)}-{digest}"
    return LegacyQueue(folder, source_key, dict(zip(item_ids, names)),
                       {item_id: {"status": "todo"} for item_id in item_ids})


def save_photo(annotations: Path, name: str, image: PIL.Image.Image, ids: np.ndarray, metadata: dict) -> dict:
    """One photo saved as the folder-based store saved it: the image, the mask carrying its row, the row appended to
    the rows in metadata.jsonl. Returns the row."""
    row = {"file_name": f"images/{name}.png", "mask_file_name": f"masks/{name}.png", **metadata}
    _write(annotations / row["file_name"], _plain_png(image.convert("RGB")))
    _write(annotations / row["mask_file_name"], _plain_png(PIL.Image.fromarray(ids.astype(np.uint8)), row))
    with open(annotations / "metadata.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return row


def mark_pushed(annotations: Path, rows: list[dict]) -> None:
    """``.pushed.json``: the sorted file names of the rows pushed to the Hub."""
    (annotations / ".pushed.json").write_text(json.dumps(sorted(row["file_name"] for row in rows)))


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _png(ids: np.ndarray, confidence: float | None = None) -> bytes:
    info = PIL.PngImagePlugin.PngInfo()
    if confidence is not None:
        info.add_text(CONFIDENCE_KEY, repr(confidence))
    buffer = io.BytesIO()
    PIL.Image.fromarray(np.asarray(ids, np.uint8)).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def _plain_png(image: PIL.Image.Image, row: dict | None = None) -> bytes:
    info = None
    if row is not None:
        info = PIL.PngImagePlugin.PngInfo()
        info.add_itxt(ROW_CHUNK, json.dumps(row, ensure_ascii=False))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()
