"""Folders written before the database, read for their import: a work queue's ``state.json``, ``claims.json``,
``predictions/`` and ``masks/`` under ``queues/<title>-<hash>/``, and the photos saved one at a time
(``metadata.jsonl``, ``.pushed.json``). Nothing here changes or removes those files; an imported queue folder gets a
marker file."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image

from semflow.filenames import safe_stem

from .schema import ACCEPTED, CORRECTED, PREANNOTATED, TODO

logger = logging.getLogger(__name__)

QUEUES_DIR = "queues"
STATE_FILE, CLAIMS_FILE, IMPORTED_FILE = "state.json", "claims.json", "imported-into-database.json"
MASKS_DIR, PREDICTIONS_DIR = "masks", "predictions"
CONFIDENCE_KEY = "semflow-confidence"  # a stored prediction's mean confidence (PNG text chunk)
PUSHED_FILE = ".pushed.json"  # the file names of saved photos already pushed to the Hub
# Statuses as the folders held them: the page's words before codes were stored, and "reviewed" before review had
# decisions (a reviewed item was accepted).
FORMER_STATUSES = {"to do": TODO, "pre-annotated": PREANNOTATED, "reviewed": ACCEPTED}
FINISHED_BEFORE = (CORRECTED, ACCEPTED)


@dataclass
class QueueFolder:
    """What a queue folder held: each item's name, status record and claim, by item id."""

    folder: Path
    names: dict[str, str] = field(default_factory=dict)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    claims: dict[str, dict[str, Any]] = field(default_factory=dict)

    def mask(self, name: str) -> bytes | None:
        return _mask_bytes(self.folder / MASKS_DIR / f"{name}.png")

    def prediction(self, name: str) -> tuple[bytes, float | None] | None:
        path = self.folder / PREDICTIONS_DIR / f"{name}.png"
        data = _mask_bytes(path)
        if data is None:
            return None
        with PIL.Image.open(io.BytesIO(data)) as image:
            stored = getattr(image, "text", {}).get(CONFIDENCE_KEY)
        try:
            return data, float(stored) if stored is not None else None
        except ValueError:
            return data, None

    def status(self, item_id: str, name: str) -> str:
        """The item's status as the folder-based store reconciled it: a mask file makes it finished (corrected
        unless its record says accepted), a prediction file pre-annotated, else to do."""
        record = self.records.get(item_id, {})
        status = FORMER_STATUSES.get(record.get("status"), record.get("status", TODO))
        if (self.folder / MASKS_DIR / f"{name}.png").is_file():
            return status if status in FINISHED_BEFORE else CORRECTED
        if (self.folder / PREDICTIONS_DIR / f"{name}.png").is_file():
            return PREANNOTATED
        return TODO

    def updated(self, item_id: str, name: str) -> float | None:
        """When the item's mask was saved: its record's time, else the mask file's."""
        text = self.records.get(item_id, {}).get("updated")
        try:
            return dt.datetime.fromisoformat(text).timestamp() if text else None
        except (TypeError, ValueError):
            pass
        path = self.folder / MASKS_DIR / f"{name}.png"
        return path.stat().st_mtime if path.is_file() else None

    def mark_imported(self, into: str) -> None:
        """Leave a note in the folder that its content is now in the database `into` (the files stay)."""
        note = {"imported_into": into, "note": "This queue's state now lives in the annotation database; the files "
                                              "here are kept as they were and are no longer read."}
        try:
            (self.folder / IMPORTED_FILE).write_text(json.dumps(note, indent=1), encoding="utf-8")
        except OSError as error:  # a read-only folder: the import is done; it would only be looked at again
            logger.warning("could not mark %s as imported: %r", self.folder, error)


def queue_folder(root: Path, source_key: str, title: str) -> QueueFolder | None:
    """The folder where the folder-based store kept the queue of `source_key`, read, if it has state that was not
    imported yet. A damaged state file is logged and its masks and predictions are still imported."""
    digest = hashlib.sha1(source_key.encode()).hexdigest()[:10]
    folder = Path(root) / QUEUES_DIR / f"{safe_stem(title, 'queue', 40)}-{digest}"
    if not folder.is_dir() or (folder / IMPORTED_FILE).is_file():
        return None
    if not any((folder / name).exists() for name in (STATE_FILE, MASKS_DIR, PREDICTIONS_DIR)):
        return None
    state, claims = _read_json(folder / STATE_FILE), _read_json(folder / CLAIMS_FILE)
    names = state.get("names") if isinstance(state.get("names"), dict) else {}
    records = state.get("items") if isinstance(state.get("items"), dict) else {}
    return QueueFolder(folder, {str(k): str(v) for k, v in names.items()},
                       {str(k): v for k, v in records.items() if isinstance(v, dict)},
                       {str(k): v for k, v in claims.items() if isinstance(v, dict)})


def saved_rows(root: Path) -> list[dict[str, Any]]:
    """The rows of a metadata.jsonl written before the database (a torn last line is left out, with a warning)."""
    path = Path(root) / "metadata.jsonl"
    if not path.is_file():
        return []
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            logger.warning("%s: line %d is not a JSON row (a save interrupted?); left out", path, number)
            continue
        if isinstance(row, dict) and isinstance(row.get("file_name"), str):
            rows.append(row)
    return rows


def pushed_files(root: Path) -> set[str]:
    """The file names .pushed.json lists (photos pushed to the Hub before the database)."""
    names = _read_json(Path(root) / PUSHED_FILE, default=[])
    return {str(name) for name in names} if isinstance(names, list) else set()


def _read_json(path: Path, default: Any = None) -> Any:
    default = {} if default is None else default
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default
    except (ValueError, UnicodeDecodeError) as error:
        logger.warning("%s is damaged (%s); importing what the mask files hold", path, error)
        return default


def _mask_bytes(path: Path) -> bytes | None:
    """A mask file's PNG bytes, as an "L" PNG (re-encoded when stored in another mode); None when missing or
    unreadable (then logged; the file stays where it is)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        with PIL.Image.open(io.BytesIO(data)) as image:
            image.load()
            if image.mode == "L":
                return data
            buffer = io.BytesIO()
            PIL.Image.fromarray(np.asarray(image.convert("L"))).save(buffer, format="PNG")
            return buffer.getvalue()
    except (OSError, SyntaxError, ValueError) as error:
        logger.warning("%s is not a readable mask (%r); it is left where it is and not imported", path, error)
        return None
