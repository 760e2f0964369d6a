"""Writing into the annotation folder, for every part of the app that does (saved annotations, the database, exports):
atomic file writes and appends, the folder's file locks, and an OSError worded as what a person can act on."""

from __future__ import annotations

import errno
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import filelock

from .errors import StorageError

logger = logging.getLogger(__name__)

TEMP_SUFFIX = ".tmp"  # temporary files are ".<final name>.<random>.tmp" beside their final name
LOCK_SECONDS = 60.0  # how long a write waits for another process's lock before it gives up with a sentence
SAFE = "Earlier annotations are safe."
_REASONS = {  # errno → what is wrong, in words a person can act on
    errno.ENOSPC: "there is no space left on the disk that holds the annotation folder",
    errno.EDQUOT: "the disk quota of the annotation folder is used up",
    errno.EROFS: "the annotation folder is on a read-only disk",
    errno.EACCES: "the server is not allowed to write to the annotation folder (permission denied)",
    errno.EPERM: "the server is not allowed to write to the annotation folder (permission denied)",
    errno.ENOTDIR: "the annotation folder's path (or a part of it) is a file, not a folder",
    errno.EEXIST: "the annotation folder's path (or a part of it) is a file, not a folder",
}


def folder_lock(path: str | os.PathLike, timeout: float = LOCK_SECONDS) -> filelock.FileLock:
    """The file lock at `path`, shared by every process (and thread) that writes under it."""
    return filelock.FileLock(str(path), timeout=timeout)


@contextmanager
def writing(lock: filelock.FileLock, folders: Iterable[Path], what_failed: str) -> Iterator[None]:
    """`folders` exist and `lock` is held; an OSError on the way (a lock that stays busy included) becomes a
    `StorageError` saying what failed, why, and that earlier annotations are safe. A `StorageError` (or any other
    `UserError`) raised inside passes unchanged."""
    try:
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
        with lock:
            yield
    except StorageError:
        raise
    except OSError as error:
        logger.warning("annotation folder: %s: %r", what_failed, error)
        raise storage_error(error, what_failed) from error


def storage_error(error: OSError, what_failed: str) -> StorageError:
    """`error` in words a person can act on: what failed, why, and that earlier annotations are safe."""
    if isinstance(error, filelock.Timeout):
        return StorageError(f"{what_failed}: the annotation folder is busy with other saves. {SAFE} Please try "
                            f"again in a moment.")
    reason = _REASONS.get(error.errno)
    if reason is None:
        reason = f"the annotation folder could not be written ({error.strerror or type(error).__name__})"
    return StorageError(f"{what_failed}: {reason}. {SAFE} Please ask whoever runs this server to fix it, then try "
                        f"again.")


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path` with the umask's mode, flush it to disk, then rename it over `path`:
    a reader sees the old file or the new one, never part of one."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(descriptor, "wb") as f:
            os.fchmod(f.fileno(), file_mode())
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        unlink_quietly(Path(temporary))
        raise
    try:  # the rename is done; make it durable too (a failure here loses nothing already written)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except OSError as error:
        logger.warning("could not flush the folder %s to disk: %r", path.parent, error)


def append_line(path: Path, line: str) -> None:
    """Append `line` and a newline to the file at `path` (made with the umask's mode) in one write, flushed to disk:
    the cost does not grow with the file. A crash may leave the last line torn; readers skip a line that is not
    whole, and recovery rewrites the file."""
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        os.write(descriptor, (line + "\n").encode("utf-8"))
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def file_mode() -> int:
    """0o666 less the process's umask: the mode `open()` would give a new file."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            umask = next(int(line.split()[1], 8) for line in status if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError):  # not Linux: read it by setting it (not thread-safe, rarely used)
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


def unlink_quietly(path: Path) -> None:
    """Remove `path` if it is there; a failure is logged (recovery at the next start removes what is left)."""
    try:
        path.unlink(missing_ok=True)
    except OSError as error:
        logger.warning("could not remove %s: %r", path, error)
