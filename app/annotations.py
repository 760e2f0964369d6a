"""Photos saved one at a time with their masks: atomic saves of image + class-id mask + metadata row (an imagefolder in
the annotation folder, each row also in the annotation database), recovery after a crash, clear words when the disk or
the database cannot be written, and Hub pushes."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import os
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image
import PIL.PngImagePlugin
import sqlalchemy as sa

from semflow.annotation_layout import (
    FILE_KEYS,
    IMAGE_FILE_KEY,
    IMAGES_FOLDER,
    MASK_FILE_KEY,
    MASKS_FOLDER,
    METADATA_FILE,
)
from semflow.filenames import safe_stem
from semflow.hub import push_folder

from .storage import TEMP_SUFFIX, append_line, folder_lock, unlink_quietly, write_atomic, writing
from .store import legacy
from .store.database import Database, database_url, open_database
from .store.schema import SavedRow
from .text_fields import clean_value

logger = logging.getLogger(__name__)

LOCK = ".annotations.lock"
QUARANTINE = ".quarantine"  # hidden, so `load_dataset("imagefolder")` never reads what is moved there
ROW_CHUNK = "semflow-annotation"  # a PNG text chunk of every mask: its metadata row, for re-indexing after a crash


@dataclass(frozen=True)
class SavedAnnotation:
    """Where one saved annotation lives, and its metadata row."""

    name: str
    image_path: Path
    mask_path: Path
    row: dict[str, Any]


@dataclass(frozen=True)
class Recovery:
    """What `AnnotationStore.recover` found after an interrupted save, and what it did.

    Attributes:
        temp_files_removed: Partial temporary files removed (paths relative to the folder).
        reindexed: Names of complete image + mask pairs that had no metadata row and now have one.
        quarantined: Files of incomplete pairs moved under ``.quarantine/`` (paths relative to the folder).
        missing: ``file_name`` of rows whose image or mask is gone (reported, left as they are).
    """

    temp_files_removed: tuple[str, ...] = ()
    reindexed: tuple[str, ...] = ()
    quarantined: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.temp_files_removed or self.reindexed or self.quarantined)

    def summary(self) -> str | None:
        """One sentence for the log or the page; None when there was nothing to recover."""
        done = []
        if self.temp_files_removed:
            done.append(f"removed {_count(self.temp_files_removed, 'partial temporary file')}")
        if self.reindexed:
            done.append(f"re-indexed {_count(self.reindexed, 'complete annotation')} that had no metadata row")
        if self.quarantined:
            done.append(f"moved {_count(self.quarantined, 'file')} of incomplete annotations to {QUARANTINE}/")
        if self.missing:
            done.append(f"found {_count(self.missing, 'metadata row')} whose files are missing")
        if not done:
            return None
        return "Annotation folder recovered after an interrupted save: " + "; ".join(done) + "."


class AnnotationStore:
    """Photos saved one at a time with their masks: an imagefolder dataset that only grows, ``images/<name>.png``,
    ``masks/<name>.png`` (class ids, mode "L") and ``metadata.jsonl`` rows with ``file_name`` and ``mask_file_name``,
    each row also kept in the annotation database (which says what was pushed to the Hub).

    A save encodes both PNGs, then under the folder's file lock writes each file to a temporary name, flushes it to
    disk and renames it into place; then, in one database transaction, it adds the row and appends it to
    metadata.jsonl (one line: the cost of a save does not grow with the folder). A save that returned is durable; a
    crash leaves at most temporary files, an image/mask without a row, or a row missing from metadata.jsonl, which
    `recover` (called once when the app starts) repairs. ``datasets.load_dataset("imagefolder", data_dir=root)`` loads
    the folder with `image` and `mask` columns. Files get the mode the umask gives (0o666 & ~umask). A folder written
    before the database has its metadata.jsonl rows (and .pushed.json) imported on first use.

    A save or recovery that cannot write raises `StorageError` saying why (no space, read-only, not a folder,
    permission denied, a database that is busy, damaged or gone) and that earlier annotations are safe.
    """

    def __init__(self, root: str | os.PathLike, lock_timeout: float = 60.0, database: str | None = None) -> None:
        self.root = Path(root)
        self.lock = folder_lock(self.root / LOCK, lock_timeout)
        self.database_url = database_url(self.root, database)
        self.folder_key = str(self.root.resolve())  # the rows of this folder in a database several folders share
        self._imported = False

    @property
    def db(self) -> Database:
        return open_database(self.database_url)

    def save(self, image: PIL.Image.Image, ids: np.ndarray, metadata: dict[str, Any]) -> SavedAnnotation:
        """Write the image, its mask and one metadata row; returns once all three are durable.

        Args:
            image: The photo (saved as RGB PNG).
            ids: (H, W) class ids at the image's size (saved as an "L" PNG).
            metadata: Free-form fields (annotator, model, steps, source file...); strings are cleaned of control
                characters and capped in length; they never become paths.
        Raises:
            StorageError: the folder or the database cannot be written; nothing of this save is left behind.
        """
        ids = np.asarray(ids)
        if ids.ndim != 2 or ids.shape != (image.height, image.width):
            raise ValueError(f"mask {ids.shape[::-1]} and image {image.size} must have the same size")
        if ids.min() < 0 or ids.max() > 255:
            raise ValueError("mask ids must be in 0..255")
        name = f"{_timestamp()}-{safe_stem(metadata.get('source_file'), 'image', 40)}-{secrets.token_hex(4)}"
        row = {IMAGE_FILE_KEY: f"{IMAGES_FOLDER}/{name}.png", MASK_FILE_KEY: f"{MASKS_FOLDER}/{name}.png",
               **{key: clean_value(value) for key, value in metadata.items() if key not in FILE_KEYS}}
        files = {self.root / row[IMAGE_FILE_KEY]: _png(image.convert("RGB")),
                 self.root / row[MASK_FILE_KEY]: _png(PIL.Image.fromarray(ids.astype(np.uint8)), row)}
        what_failed = "This annotation was not saved"
        with self._writing(what_failed):
            self._import_rows()
            written: list[Path] = []
            try:
                for path, data in files.items():
                    write_atomic(path, data)
                    written.append(path)
                with self.db.write(what_failed) as session:
                    session.add(SavedRow(folder=self.folder_key, name=name, row=row, created_at=time.time()))
                    session.flush()
                    append_line(self.root / METADATA_FILE, json.dumps(row, ensure_ascii=False))
            except BaseException:
                for path in written:  # no orphan pair: the row was not stored, so neither are its files
                    unlink_quietly(path)
                raise
        paths = list(files)
        return SavedAnnotation(name, paths[0], paths[1], row)

    def rows(self) -> list[dict[str, Any]]:
        """All metadata rows, oldest first."""
        self._import_rows()
        with self.db.read("Reading the saved annotations failed") as session:
            return list(session.scalars(sa.select(SavedRow.row).where(SavedRow.folder == self.folder_key)
                                        .order_by(SavedRow.id)))

    def count(self) -> int:
        """How many annotations the folder holds."""
        self._import_rows()
        with self.db.read("Reading the saved annotations failed") as session:
            return session.scalar(sa.select(sa.func.count()).select_from(SavedRow)
                                  .where(SavedRow.folder == self.folder_key))

    def recover(self) -> Recovery:
        """Clean up after saves that were interrupted (a killed process, a power cut); call once at start-up.

        Removes partial temporary files; gives each complete image + mask pair that has no row its row (the row
        stored in the mask, else what its file names tell); moves incomplete or unreadable leftovers to
        ``.quarantine/``; rewrites metadata.jsonl from the database when the two disagree. Safe while other processes
        save (it holds the folder's lock).

        Raises:
            StorageError: the folder exists but cannot be written.
        """
        if not self.root.is_dir():
            return Recovery()
        with self._writing("The annotation folder could not be checked for leftovers of interrupted saves"):
            self._import_rows()
            return self._recover()

    def push(self, repo_id: str, token: str | None = None, private: bool | None = None) -> str | None:
        """Upload the rows not pushed before to a Hub dataset repo, in a new folder ``data/<push id>/`` with its own
        metadata.jsonl, so earlier pushes (from here or from other machines) are never overwritten.

        Returns:
            The commit URL, or None when there was nothing new.
        """
        with self.lock:
            self._import_rows()
            with self.db.read("Reading the saved annotations failed") as session:
                new = session.execute(sa.select(SavedRow.id, SavedRow.row).where(
                    SavedRow.folder == self.folder_key, SavedRow.pushed_at.is_(None)).order_by(SavedRow.id)).all()
            if not new:
                return None
            push_id = f"{_timestamp()}-{secrets.token_hex(4)}"
            with tempfile.TemporaryDirectory() as staging:
                for sub in (IMAGES_FOLDER, MASKS_FOLDER):
                    os.makedirs(os.path.join(staging, sub))
                for _, row in new:
                    for key in FILE_KEYS:
                        shutil.copyfile(self.root / row[key], os.path.join(staging, row[key]))
                with open(os.path.join(staging, METADATA_FILE), "w", encoding="utf-8") as f:
                    f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for _, row in new)
                url = push_folder(staging, repo_id, repo_type="dataset", path_in_repo=f"data/{push_id}", token=token,
                                  private=private, commit_message=f"Add {len(new)} annotations ({push_id})")
            with self.db.write("Recording the push failed") as session:
                session.execute(sa.update(SavedRow).where(SavedRow.id.in_([i for i, _ in new]))
                                .values(pushed_at=time.time()))
        return url

    # --- internals ------------------------------------------------------------------------------------------------

    def _writing(self, what_failed: str):
        """The folders exist and the lock is held (`storage.writing`)."""
        return writing(self.lock, (self.root / IMAGES_FOLDER, self.root / MASKS_FOLDER), what_failed)

    def _import_rows(self) -> None:
        """Once per process: the rows of metadata.jsonl the database does not hold yet (a folder written before the
        database, or a save whose transaction did not finish after its line was written), with .pushed.json's
        record of what was pushed."""
        if self._imported:
            return
        rows = legacy.saved_rows(self.root)
        if rows:
            pushed, now = legacy.pushed_files(self.root), time.time()
            with self.db.write("Importing the saved annotations failed") as session:
                known = set(session.scalars(sa.select(SavedRow.name).where(SavedRow.folder == self.folder_key)))
                new = {}
                for row in rows:
                    name = Path(row[IMAGE_FILE_KEY]).stem
                    if name not in known and name not in new:
                        new[name] = {"folder": self.folder_key, "name": name, "row": row, "created_at": now,
                                     "pushed_at": now if row[IMAGE_FILE_KEY] in pushed else None}
                if new:  # another process importing at the same moment adds the same rows: each is kept once
                    session.connection().execute(self.db.insert(SavedRow).on_conflict_do_nothing(),
                                                 list(new.values()))
        self._imported = True

    def _recover(self) -> Recovery:
        removed = []
        for folder in (self.root, self.root / IMAGES_FOLDER, self.root / MASKS_FOLDER):
            for path in sorted(folder.glob(f".*{TEMP_SUFFIX}")):
                if path.is_file():
                    path.unlink()
                    removed.append(path.relative_to(self.root).as_posix())
        with self.db.read("Reading the saved annotations failed") as session:
            rows = list(session.scalars(sa.select(SavedRow.row).where(SavedRow.folder == self.folder_key)
                                        .order_by(SavedRow.id)))
        indexed = {row.get(key) for row in rows for key in FILE_KEYS}
        missing = tuple(row.get(IMAGE_FILE_KEY) for row in rows
                        if not all((self.root / str(row.get(key))).is_file() for key in FILE_KEYS))
        stems = sorted({path.stem for sub in (IMAGES_FOLDER, MASKS_FOLDER) for path in (self.root / sub).glob("*.png")
                        if f"{sub}/{path.name}" not in indexed})
        reindexed, quarantined, new_rows = [], [], []
        for stem in stems:
            row = self._complete_row(stem)
            if row is not None:
                new_rows.append(row)
                reindexed.append(stem)
                continue
            for sub in (IMAGES_FOLDER, MASKS_FOLDER):
                source = self.root / sub / f"{stem}.png"
                if source.is_file():
                    quarantined.append(_move_to_quarantine(self.root, source).relative_to(self.root).as_posix())
        if new_rows:
            with self.db.write("Re-indexing the saved annotations failed") as session:
                session.connection().execute(self.db.insert(SavedRow).on_conflict_do_nothing(), [
                    {"folder": self.folder_key, "name": Path(row[IMAGE_FILE_KEY]).stem, "row": row,
                     "created_at": time.time()} for row in new_rows])
            rows += new_rows
        listed = [row.get(IMAGE_FILE_KEY) for row in legacy.saved_rows(self.root)]
        if listed != [row.get(IMAGE_FILE_KEY) for row in rows] and (rows or listed):
            write_atomic(self.root / METADATA_FILE, "".join(json.dumps(row, ensure_ascii=False) + "\n"
                                                           for row in rows).encode())
        recovery = Recovery(tuple(removed), tuple(reindexed), tuple(quarantined), missing)
        if recovery.summary():
            logger.warning("%s (%s)", recovery.summary(), self.root)
        return recovery

    def _complete_row(self, stem: str) -> dict[str, Any] | None:
        """The metadata row of a complete pair (both files decode, the mask is an "L" PNG of the image's size), from
        the row the mask carries when it has one; None when the pair is incomplete."""
        row = {IMAGE_FILE_KEY: f"{IMAGES_FOLDER}/{stem}.png", MASK_FILE_KEY: f"{MASKS_FOLDER}/{stem}.png"}
        try:
            with PIL.Image.open(self.root / row[IMAGE_FILE_KEY]) as image, \
                    PIL.Image.open(self.root / row[MASK_FILE_KEY]) as mask:
                image.load()
                mask.load()
                if mask.mode != "L" or mask.size != image.size:
                    return None
                stored = mask.info.get(ROW_CHUNK)
        except (OSError, SyntaxError, ValueError, PIL.Image.DecompressionBombError):
            return None
        try:
            stored = json.loads(stored) if stored else {}
        except ValueError:
            stored = {}
        if not isinstance(stored, dict) or {k: stored.get(k) for k in row} != row:
            return row
        return stored


def _count(items: tuple[str, ...], noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def _timestamp() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")


def _png(image: PIL.Image.Image, row: dict[str, Any] | None = None) -> bytes:
    info = None
    if row is not None:
        info = PIL.PngImagePlugin.PngInfo()
        info.add_itxt(ROW_CHUNK, json.dumps(row, ensure_ascii=False))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def _move_to_quarantine(root: Path, source: Path) -> Path:
    """Move `source` to ``root/.quarantine/<images|masks>/`` under a name not taken there; returns its new path."""
    folder = root / QUARANTINE / source.parent.name
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / source.name
    while target.exists():
        target = folder / f"{source.stem}-{secrets.token_hex(2)}{source.suffix}"
    os.replace(source, target)
    return target
