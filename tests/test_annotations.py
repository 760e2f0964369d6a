"""The annotation folder: recovery after a crash (temp files, orphans, quarantine), no orphan when the metadata write
fails, plain words when the folder cannot be written, file modes from the umask."""

import errno
import json
import os
import re
import stat

import filelock
import numpy as np
import PIL.Image
import pytest
import sqlalchemy as sa

import app.annotations as annotations
from app.annotations import LOCK, QUARANTINE, ROW_CHUNK, AnnotationStore, Recovery
from app.errors import StorageError, UserError
from app.store.database import DATABASE_FILE
from app.store.schema import SavedRow
from semflow.annotation_layout import METADATA_FILE as METADATA

RNG = np.random.default_rng(0)


def _pair(height=10, width=12):
    image = PIL.Image.fromarray(RNG.integers(0, 256, (height, width, 3), dtype=np.uint8))
    return image, RNG.integers(0, 12, (height, width)).astype(np.uint8)


def _files(root):
    """Every file under root except the lock and the database, as relative paths."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.is_file() and p.name != LOCK and not p.name.startswith(DATABASE_FILE))


def test_masks_carry_their_row_and_saves_leave_nothing_else(tmp_path):
    store = AnnotationStore(tmp_path / "ann")
    saved = store.save(*_pair(), {"annotator": "ana", "source_file": "street.png"})
    assert json.loads(PIL.Image.open(saved.mask_path).info[ROW_CHUNK]) == saved.row == store.rows()[0]
    assert _files(tmp_path / "ann") == sorted([METADATA, f"images/{saved.name}.png", f"masks/{saved.name}.png"])
    assert store.recover() == Recovery() and Recovery().summary() is None


def test_recover_removes_temp_files_reindexes_complete_pairs_and_quarantines_the_rest(tmp_path):
    root = tmp_path / "ann"
    store = AnnotationStore(root)
    kept = store.save(*_pair(), {"annotator": "kept"})
    unindexed = store.save(*_pair(), {"annotator": "killed before its row", "steps": 3})
    # A crash between the mask's rename and the row's transaction: the pair exists, its row does not.
    with store.db.write("test") as session:
        session.execute(sa.delete(SavedRow).where(SavedRow.name == unindexed.name))
    (root / METADATA).write_text(json.dumps(kept.row) + "\n")
    # Partial temporary files of each step, including a partial metadata rewrite.
    for partial in ("images/.x.png.a1b2.tmp", "masks/.x.png.c3d4.tmp", f".{METADATA}.e5f6.tmp"):
        (root / partial).write_bytes(b"\x89PNG partial")
    # A complete pair written by an older version (no row inside the mask).
    image, ids = _pair()
    image.save(root / "images" / "old.png")
    PIL.Image.fromarray(ids).save(root / "masks" / "old.png")
    # Incomplete leftovers: an image without its mask, a mask without its image, a torn image with its mask.
    image.save(root / "images" / "alone.png")
    PIL.Image.fromarray(ids).save(root / "masks" / "lonely.png")
    (root / "images" / "torn.png").write_bytes((root / "images" / "old.png").read_bytes()[:60])
    PIL.Image.fromarray(ids).save(root / "masks" / "torn.png")

    recovery = AnnotationStore(root).recover()

    assert sorted(recovery.temp_files_removed) == sorted(
        ["images/.x.png.a1b2.tmp", "masks/.x.png.c3d4.tmp", f".{METADATA}.e5f6.tmp"])
    assert sorted(recovery.reindexed) == sorted([unindexed.name, "old"])
    assert sorted(recovery.quarantined) == sorted(f"{QUARANTINE}/{p}" for p in (
        "images/alone.png", "masks/lonely.png", "images/torn.png", "masks/torn.png"))
    assert recovery.missing == ()
    assert recovery.summary() == ("Annotation folder recovered after an interrupted save: removed 3 partial temporary "
                                  "files; re-indexed 2 complete annotations that had no metadata row; moved 4 files "
                                  f"of incomplete annotations to {QUARANTINE}/.")
    rows = store.rows()
    assert rows[0] == kept.row and unindexed.row in rows  # the row the mask carried, whole
    assert {"file_name": "images/old.png", "mask_file_name": "masks/old.png"} in rows and len(rows) == 3
    indexed = {row[key] for row in rows for key in ("file_name", "mask_file_name")}
    assert {f for f in _files(root) if not f.startswith(QUARANTINE)} == indexed | {METADATA}
    assert store.recover() == Recovery()  # nothing left to do

    import datasets

    loaded = datasets.load_dataset("imagefolder", data_dir=str(root), split="train", cache_dir=str(tmp_path / "hf"))
    assert len(loaded) == 3 and set(loaded.column_names) >= {"image", "mask", "annotator"}


def test_rows_whose_files_are_gone_are_reported(tmp_path):
    store = AnnotationStore(tmp_path / "ann")
    saved = store.save(*_pair(), {})
    saved.mask_path.unlink()
    assert store.recover().missing == (saved.row["file_name"],)


@pytest.mark.parametrize("failing", ["mask", METADATA])
def test_a_full_disk_mid_save_leaves_no_orphan_and_says_so(tmp_path, monkeypatch, failing):
    store = AnnotationStore(tmp_path / "ann")
    first = store.save(*_pair(), {"annotator": "first"})
    before = _files(tmp_path / "ann")
    write = annotations.write_atomic

    def full_disk(path, data):
        if path.name == METADATA if failing == METADATA else path.parent.name == "masks":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        write(path, data)

    def full_disk_append(path, line):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(annotations, "write_atomic", full_disk)
    if failing == METADATA:  # a row is appended to metadata.jsonl, in the database's transaction
        monkeypatch.setattr(annotations, "append_line", full_disk_append)
    with pytest.raises(StorageError) as raised:
        store.save(*_pair(), {"annotator": "second"})
    assert "no space left" in str(raised.value) and "Earlier annotations are safe" in str(raised.value)
    assert isinstance(raised.value, UserError)
    monkeypatch.undo()
    assert _files(tmp_path / "ann") == before and store.rows() == [first.row]
    assert store.recover() == Recovery()


@pytest.mark.parametrize("code,words", [
    (errno.ENOSPC, "no space left on the disk"),
    (errno.EDQUOT, "disk quota"),
    (errno.EROFS, "read-only disk"),
    (errno.EACCES, "permission denied"),
    (errno.EPERM, "permission denied"),
    (errno.EIO, "could not be written (Input/output error)"),
])
def test_writes_that_fail_say_why(tmp_path, monkeypatch, code, words):
    store = AnnotationStore(tmp_path / "ann")
    store.save(*_pair(), {})
    before = _files(tmp_path / "ann")

    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(annotations.tempfile, "mkstemp", refuse)
    expected = f"This annotation was not saved: .*{re.escape(words)}.*Earlier annotations are safe"
    with pytest.raises(StorageError, match=expected):
        store.save(*_pair(), {})
    monkeypatch.undo()
    assert _files(tmp_path / "ann") == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_named(tmp_path):
    store = AnnotationStore(tmp_path / "ann")
    store.save(*_pair(), {})
    for folder in (store.root, store.root / "images", store.root / "masks"):
        folder.chmod(0o555)
    try:
        with pytest.raises(StorageError, match="permission denied.*Earlier annotations are safe"):
            store.save(*_pair(), {})
    finally:
        for folder in (store.root, store.root / "images", store.root / "masks"):
            folder.chmod(0o755)
    assert len(store.rows()) == 1


def test_a_folder_path_that_is_a_file_is_named(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    for root in (tmp_path / "file", tmp_path / "file" / "ann"):
        with pytest.raises(StorageError, match="is a file, not a folder. Earlier annotations are safe"):
            AnnotationStore(root).save(*_pair(), {})
        assert AnnotationStore(root).recover() == Recovery()
    (tmp_path / "ann").mkdir()
    (tmp_path / "ann" / "masks").write_text("a file where the masks folder should be")
    with pytest.raises(StorageError, match="is a file, not a folder"):
        AnnotationStore(tmp_path / "ann").save(*_pair(), {})


def test_a_busy_folder_says_try_again(tmp_path):
    store = AnnotationStore(tmp_path / "ann", lock_timeout=0.05)
    store.save(*_pair(), {})
    with filelock.FileLock(str(store.root / LOCK)):  # another process in the middle of a long save
        with pytest.raises(StorageError, match="busy with other saves.*try again"):
            store.save(*_pair(), {})
    assert len(store.rows()) == 1


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_saved_files_get_the_umask_mode(tmp_path, umask):
    previous = os.umask(umask)
    try:
        saved = AnnotationStore(tmp_path / "ann").save(*_pair(), {})
    finally:
        os.umask(previous)
    for path in (saved.image_path, saved.mask_path, tmp_path / "ann" / METADATA):
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path


def test_training_reads_the_columns_the_app_writes(tmp_path):
    from semflow.annotation_layout import IMAGE_COLUMN, MASK_COLUMN
    from training.config import TrainConfig
    from training.data import load_split

    store = AnnotationStore(tmp_path / "annotations")
    store.save(PIL.Image.new("RGB", (8, 6)), np.full((6, 8), 3, np.uint8), {"annotator": "me"})
    config = TrainConfig()
    assert (config.image_column, config.mask_column) == (IMAGE_COLUMN, MASK_COLUMN)
    split = load_split(str(tmp_path / "annotations"), "train")  # as `training.train --dataset annotations` does
    assert {IMAGE_COLUMN, MASK_COLUMN} <= set(split.column_names)
    assert np.asarray(split[0][config.mask_column]).max() == 3
