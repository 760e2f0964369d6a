"""A learning job's folder as the job (`training.learn`) writes it and a page reads it: its status (phase, progress,
figures, why it stopped), the cancel flag, and the workspace's lock that one running job holds for as long as its
process lives, so that a workspace runs one job at a time and a job whose process died is told from a running one."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # not on POSIX: no lock, so a dead job's process is not told from a running one
    fcntl = None

JOBS_FOLDER = "jobs"
STATUS_FILE, CANCEL_FILE, LOCK_FILE = "status.json", "cancel", "running.lock"
PREPARING, TRAINING, SCORING = "preparing", "training", "scoring"  # a job at work
PROMOTED, REFUSED, CANCELLED, FAILED = "promoted", "refused", "cancelled", "failed"  # a job that ended
AT_WORK = (PREPARING, TRAINING, SCORING)
ENDED = (PROMOTED, REFUSED, CANCELLED, FAILED)
PROGRESS_FIELDS = ("step", "max_steps", "loss", "seconds_left")  # what a training step updates


class Job:
    """One job's folder, ``<workspace>/jobs/<name>/``: ``status.json`` and the ``cancel`` flag (what the job keeps
    beside them, its data, run and checkpoints, is the job's own)."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)

    @property
    def name(self) -> str:
        return self.folder.name

    def status(self) -> dict[str, Any]:
        """The job's phase and figures as it last wrote them (``{"phase": "not started"}`` before it wrote any)."""
        try:
            return json.loads((self.folder / STATUS_FILE).read_text())
        except FileNotFoundError:
            return {"phase": "not started"}
        except ValueError:  # never half-written (replaced whole), but a copied or damaged folder may hold anything
            return {"phase": "not started", "message": "its status file cannot be read"}

    def set_status(self, phase: str, fresh: bool = False, **fields: Any) -> None:
        """Write the job's status, whole or not at all: `fields` over the earlier ones (with `fresh`, over none), the
        progress of a step only while training."""
        self.folder.mkdir(parents=True, exist_ok=True)
        previous = {} if fresh else self.status()
        if phase != TRAINING:
            previous = {k: v for k, v in previous.items() if k not in ("seconds_left",)}
        status = {**previous, **fields, "phase": phase, "updated": time.time()}
        tmp = self.folder / (STATUS_FILE + ".tmp")
        tmp.write_text(json.dumps(status, indent=2))
        os.replace(tmp, self.folder / STATUS_FILE)

    def cancel(self) -> None:
        """Ask the job to stop after its current step; the model in use keeps serving."""
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / CANCEL_FILE).touch()

    @property
    def cancelled(self) -> bool:
        return (self.folder / CANCEL_FILE).is_file()

    def clear_cancel(self) -> None:
        (self.folder / CANCEL_FILE).unlink(missing_ok=True)


class WorkspaceLock:
    """The lock a workspace's running job holds (``<workspace>/jobs/running.lock``, an advisory ``flock``): the
    operating system lets it go when the process ends, however it ends (``kill -9`` included)."""

    def __init__(self, workspace: str | os.PathLike) -> None:
        self.path = Path(workspace) / JOBS_FOLDER / LOCK_FILE
        self._file = None

    def acquire(self) -> bool:
        """Take the lock for this process; False when another process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")
        if fcntl is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                return False
        self._file = handle
        return True

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing lets the lock go
            self._file = None

    def held(self) -> bool:
        """Whether a process (another one, or this one through another `WorkspaceLock`) holds the lock now."""
        if fcntl is None or not self.path.is_file():
            return False
        with open(self.path, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def jobs(workspace: str | os.PathLike) -> list[Job]:
    """The workspace's jobs, the latest started first."""
    folder = Path(workspace) / JOBS_FOLDER
    found = [Job(path) for path in folder.iterdir() if path.is_dir()] if folder.is_dir() else []
    return sorted(found, key=_started, reverse=True)


def latest_job(workspace: str | os.PathLike) -> Job | None:
    found = jobs(workspace)
    return found[0] if found else None


def running(workspace: str | os.PathLike) -> bool:
    """Whether a job of the workspace runs now (its process holds the workspace's lock)."""
    return WorkspaceLock(workspace).held()


def _started(job: Job) -> float:
    started = job.status().get("started")
    if isinstance(started, (int, float)):
        return float(started)
    try:
        return job.folder.stat().st_mtime
    except OSError:
        return 0.0
