"""The app's learning loop for the model it serves: a queue's corrected items exported through the store and learned
from by `python -m training.learn` in a process of its own (below the server's priority on the CPU, on the GPU where
there is one), read back through its job folder (`semflow.learning_job`): progress, cancel, resume, one job per
workspace; the versions it promotes (`semflow.model_versions`), which the app serves, rolls back and pushes to the
Hub; and, once another model serves, the queue's unfinished items pre-annotated again by `python -m app.preannotate
--refresh` (under `accelerate launch` where several processes are configured)."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semflow import learning_job
from semflow.filenames import safe_stem
from semflow.hub import push_folder
from semflow.labels import LabelSet
from semflow.loading import EMBEDDED_MODELS, default_device, requested_model, resolve_source
from semflow.model_versions import ModelVersions

from .errors import InputError
from .fields import number
from .model import ROOT
from .settings import Settings
from .storage import storage_error
from .workspace import Person, Workspace, hub_call

logger = logging.getLogger(__name__)

LEARNING_FOLDER = "learning"  # under the annotation folder: a workspace of versions and jobs per base model
CORRECTIONS_FOLDER, LOGS_FOLDER = "corrections", "logs"  # each job's data (kept: what its version learned from), logs
REFRESH_FILE, REFRESHED_FLAG = "refresh.json", "refreshed"  # the latest pre-annotation again; a job's, once started
DEFAULT_MINUTES, MAX_MINUTES = 10.0, 24 * 60.0  # a job's training time budget: the page's default and its limit
POLL_SECONDS = 2.0  # how often an open page reads a running job's progress
BUSY_EXIT = 3  # `training.learn`'s exit status when another job of the workspace runs
TRAINING_CODE = ROOT / "training" / "learn.py"  # a checkout of the project has it; a built Space does not
FIGURES = {"new_miou", "current_miou", "gain", "held_back_items"}  # what a promotion records of its scoring
_ITEM_LINE = re.compile(r"\[(\d+)/(\d+)\] ")  # app.preannotate's line per item


@dataclass(frozen=True)
class LearningView:
    """The learning loop as the page shows it.

    Attributes:
        text: The latest job (or the one starting), the model in use and the queue's pre-annotation again, in
            Markdown.
        active: A job or a pre-annotation is at work: the page keeps reading.
        served: The version in use (None: the base model), and `phase`, the latest job's.
    """

    text: str
    active: bool
    served: str | None
    phase: str | None = None


def workspace_folder(annotations_dir: Path, base: str) -> Path:
    """The learning workspace of the base model `base` (an embedded model's name, a Hub id or a folder) in the
    annotation folder: ``learning/<name>``, so that versions of one model never serve for another."""
    if base in EMBEDDED_MODELS:
        name = base
    elif Path(base).expanduser().exists():
        path = str(Path(base).expanduser().resolve())
        name = f"{safe_stem(Path(path).name, 'model', 60)}-{hashlib.sha1(path.encode()).hexdigest()[:8]}"
    else:
        name = safe_stem(base.replace("/", "--").replace("@", "--"), "model", 100)
    return Path(annotations_dir).expanduser().resolve() / LEARNING_FOLDER / name


def model_argument(base: str) -> str:
    """The base model as a job's ``--model`` (a folder by its absolute path: the job runs in the project's folder)."""
    path = Path(base).expanduser()
    return str(path.resolve()) if base not in EMBEDDED_MODELS and path.exists() else base


class Learning:
    """The learning loop of one app process for the model it serves (`Settings.model`, the base): its workspace under
    the annotation folder, the job and pre-annotation processes this process started, and what the page does with
    them. Several app servers on one annotation folder share the workspace: the lock a running job holds keeps it to
    one job, and each server reads the same files."""

    def __init__(self, settings: Settings, workspace: Workspace, base: str | None = None) -> None:
        self.settings, self.workspace = settings, workspace
        self.base = requested_model(base if base is not None else settings.model)
        self.folder = workspace_folder(settings.annotations_dir, self.base)
        self.versions = ModelVersions(self.folder)
        self._lock = threading.Lock()
        self._job: tuple[str, subprocess.Popen, float] | None = None  # the job this process started, and when
        self._exits: dict[str, tuple[int, str]] = {}  # jobs of this process that ended without a status: code, why
        self._refresh: subprocess.Popen | None = None

    @functools.cached_property
    def base_name(self) -> str:
        """The base model as the page names it (the name its versions record): an embedded model's, a Hub id, a
        folder's name (never its path)."""
        if self.versions.base:
            return self.versions.base
        try:
            return resolve_source(self.base).name
        except Exception:  # not resolvable now (a Hub id not in the cache): as given, a folder by its name
            return Path(self.base).name if Path(self.base).expanduser().exists() else self.base

    # --- what a person may do ---------------------------------------------------------------------------------------

    def start(self, location: Any, split: Any, labels: LabelSet, person: Person, accepted_only: bool,
              minutes: Any) -> str:
        """Export the queue's accepted items (every corrected one without `accepted_only`) and start a job on them in
        its own process; returns what happened, in words.

        Raises:
            InputError: learning is not possible here, not allowed to `person`, a job runs already, the minutes are
                out of range, or there is nothing to learn from; `StorageError` when the export cannot be written.
        """
        self._require(person)
        minutes = self._minutes(minutes)
        with self._lock:
            self._refuse_while_busy("start another")
            name = time.strftime("job-%Y%m%d-%H%M%S")
            while (self.folder / learning_job.JOBS_FOLDER / name).exists():
                name += "x"
            data = self.folder / CORRECTIONS_FOLDER / name
            queue = self.workspace.queue(location, split)
            try:
                exported = self.workspace.write_dataset(location, split, labels, data, accepted_only)
                origin = {"queue": queue.source.key, "location": location.strip(), "split": (split or "").strip(),
                          "title": queue.source.title, "items": exported.rows, "accepted_only": accepted_only,
                          "by": person.name, "started": time.time()}
                (data.parent / f"{name}.json").write_text(json.dumps(origin, indent=2))
            except OSError as error:
                shutil.rmtree(data, ignore_errors=True)
                raise storage_error(error, "Exporting the corrections for learning failed") from error
            self._spawn(name, data, minutes, resume=False)
        which = "accepted" if accepted_only else "corrected"
        return (f"Started learning from the {exported.rows} {which} item(s) of {queue.source.title}, in a process of "
                f"its own ({minutes:g} training minutes); the model in use keeps serving meanwhile.")

    def resume(self, person: Person) -> str:
        """Go on with the latest job (cancelled, stopped or failed) from its last checkpoint."""
        self._require(person)
        with self._lock:
            self._refuse_while_busy("resume one")
            job = learning_job.latest_job(self.folder)
            status = job.status() if job is not None else {}
            if job is None or status.get("phase") in (learning_job.PROMOTED, learning_job.REFUSED):
                raise InputError("There is no learning job to resume: start one with **Learn from the corrections**.")
            data = Path(status.get("annotations") or self.folder / CORRECTIONS_FOLDER / job.name)
            if not data.is_dir():
                raise InputError(f"The corrections the job {job.name} learned from are gone ({data.name}); start a "
                                 f"new job instead.")
            self._spawn(job.name, data, float(status.get("minutes") or DEFAULT_MINUTES), resume=True)
        return f"Resuming the learning job {job.name} from its last checkpoint."

    def cancel(self, person: Person) -> str:
        """Ask the running job to stop after its current step (its checkpoint kept, for resume)."""
        self._require(person)
        job = learning_job.latest_job(self.folder)
        if job is None or not self._at_work(job):
            raise InputError("No learning job is running.")
        job.cancel()
        return "Cancelling the learning job after its current step; the model in use keeps serving."

    def roll_back(self, person: Person) -> str:
        """Serve the version the current one replaced (or the base model), and pre-annotate the queue it learned from
        again with it."""
        self._require(person)
        with self._lock:
            self._refuse_while_busy("roll back")
            current = self.versions.current
            if current is None:
                raise InputError("The base model is in use: there is no earlier version to roll back to.")
            entry = self.versions.entry(current) or {}
            served = self.versions.roll_back()
        self._start_refresh(entry.get("job"), served)
        return f"Rolled back from {current} to {served or 'the base model'}."

    def push(self, visitor_token: str | None) -> str:
        """Push the version in use to `SEMFLOW_MODEL_REPO` as a model repo (the folder alone loads as a pipeline);
        returns what happened, in words."""
        repo = self.settings.model_repo
        token = self.workspace.push_token(visitor_token, repo, "SEMFLOW_MODEL_REPO")
        current = self.versions.current
        if current is None:
            raise InputError("The base model is in use: there is no learned version to push yet.")
        entry = self.versions.entry(current) or {}
        message = f"{current} of {self.base_name}, learned from corrections"
        if "gain" in entry:
            message += f" ({entry['gain']:+} mIoU on {entry.get('held_back_items')} held-back items)"
        hub_call(lambda: push_folder(self.versions.folder / current, repo, repo_type="model", token=token,
                                     commit_message=message), repo, f"The version {current} is still here")
        return f"Pushed {current} to the model repo `{repo}`: `hf download {repo}` fetches it."

    # --- what the page reads ----------------------------------------------------------------------------------------

    def view(self) -> LearningView:
        """The latest job, the model in use and the pre-annotation again, in words; a new version seen for the first
        time starts its pre-annotation of the queue it learned from (`follow`)."""
        self.follow()
        job = learning_job.latest_job(self.folder)
        own = self._job
        lines, active, phase = [], False, None
        if own is not None and own[1].poll() is None and (
                job is None or job.name != own[0] or job.status().get("updated", 0) < own[2]):
            lines.append(f"⏳ Starting the learning job {own[0]} …")  # its process has not written its status yet
            active = True
        elif own is not None and own[0] in self._exits and (job is None or job.name != own[0]):
            lines.append(f"⚠️ {self._exits[own[0]][1]}")
        elif job is not None:
            status = job.status()
            phase = status.get("phase")
            line, active = self._job_line(job, status)
            lines.append(line)
        active = active or self._busy()
        refresh, refreshing = self._refresh_line()
        served = self.versions.current
        lines.append(self._served_line(served))
        if refresh:
            lines.append(refresh)
        return LearningView("\n\n".join(lines), active or refreshing, served, phase)

    def follow(self) -> None:
        """After a promotion (by this process or another), pre-annotate the queue it learned from again with the new
        version, once; a pre-annotation that a restart interrupted goes on."""
        job = learning_job.latest_job(self.folder)
        if job is not None:
            status = job.status()
            version = status.get("version")
            if status.get("phase") == learning_job.PROMOTED and version == self.versions.current:
                try:
                    (job.folder / REFRESHED_FLAG).open("x").close()  # once, whichever server sees it first
                except FileExistsError:
                    pass
                else:
                    self._start_refresh(job.name, version)
                    return
        record = self._refresh_record()
        if record and "ended" not in record and not self._refreshing() and not _alive(record.get("pid")):
            self._start_refresh(record.get("job"), record.get("version"), again=True)

    # --- internals --------------------------------------------------------------------------------------------------

    def _require(self, person: Person) -> None:
        if not TRAINING_CODE.is_file():
            raise InputError("Learning needs the project's training code beside the app (a checkout of the project, "
                             "not a built Space).")
        if self.settings.reviewers:
            self.workspace.require_reviewer(person)

    def _minutes(self, minutes: Any) -> float:
        value = float(number(minutes, "Training minutes"))
        if not 0 < value <= MAX_MINUTES:
            raise InputError(f"Training minutes must be above 0 and at most {MAX_MINUTES:g}, got {value:g}.")
        return value

    def _at_work(self, job: learning_job.Job) -> bool:
        """Whether `job` is at work: its process holds the workspace's lock, or this process started it a moment
        ago."""
        own = self._job
        return learning_job.running(self.folder) or (own is not None and own[0] == job.name and own[1].poll() is None)

    def _busy(self) -> bool:
        """Whether a job of the workspace is at work: its process holds the lock, or this process started one that
        has not ended yet (it has not written its end since it started)."""
        if learning_job.running(self.folder):
            return True
        own = self._job
        if own is None or own[1].poll() is not None:
            return False
        job = learning_job.latest_job(self.folder)
        status = job.status() if job is not None and job.name == own[0] else {}
        return not (status.get("updated", 0) >= own[2] and status.get("phase") in learning_job.ENDED)

    def _refuse_while_busy(self, what: str) -> None:
        if self._busy():
            job = learning_job.latest_job(self.folder)
            name = f" ({job.name})" if job is not None else ""
            raise InputError(f"A learning job{name} is running in this workspace: wait for it to end, or cancel it, "
                             f"before you {what}.")

    def _spawn(self, name: str, data: Path, minutes: float, resume: bool) -> None:
        command = [sys.executable, "-m", "training.learn", "--annotations", str(data), "--workspace",
                   str(self.folder), "--model", model_argument(self.base), "--minutes", f"{minutes:g}", "--job", name]
        if self.settings.learn_config is not None:
            command += ["--config", str(self.settings.learn_config)]
        if resume:
            command.append("--resume")
        process = self._popen(command, self.folder / LOGS_FOLDER / f"{name}.log")
        self._job = (name, process, time.time())
        self._exits.pop(name, None)
        threading.Thread(target=self._wait_job, args=(name, process), daemon=True).start()

    def _wait_job(self, name: str, process: subprocess.Popen) -> None:
        """When the job's process ends: its exit kept where the job could not say it, then `follow` (a promotion's
        pre-annotation starts without waiting for a page to look)."""
        code = process.wait()
        if code == BUSY_EXIT:
            self._exits[name] = (code, "Another learning job runs in this workspace: wait for it to end, or cancel "
                                       "it.")
        elif code != 0:
            why = _last_line(self.folder / LOGS_FOLDER / f"{name}.log")
            why = f": {why}" if why else ""
            self._exits[name] = (code, f"The learning job {name} stopped (exit status {code}){why}. The model in use "
                                       f"keeps serving.")
        try:
            self.follow()
        except Exception:  # the page's next look follows again
            logger.exception("following the learning job %s", name)

    def _popen(self, command: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
        """`command` in a process of its own session (it outlives a restart of the app), in the project's folder,
        its output in `log`."""
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            return subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                                    start_new_session=True)

    def _preannotate_env(self) -> dict[str, str]:
        """The app's database for the pre-annotation (by the environment: a URL may hold a password, which a command
        line would show to anyone on the machine); one thread per process where several share the CPU."""
        env = {"SEMFLOW_DATABASE_URL": self.settings.database_url} if self.settings.database_url else {}
        if self.settings.preannotate_processes > 1 and default_device().type == "cpu":
            env["OMP_NUM_THREADS"] = "1"
        return env

    def _job_line(self, job: learning_job.Job, status: dict[str, Any]) -> tuple[str, bool]:
        """The job in words, and whether it is at work."""
        phase, name = status.get("phase"), job.name
        replayed = (f", with {status['replayed']} frames of the data the model learned from"
                    if status.get("replayed") else "")
        items = (f" ({status['training']} corrected items to train on{replayed}, {status['held_back']} held back to "
                 f"check the result)") if "training" in status and "held_back" in status else ""
        if phase in learning_job.AT_WORK:
            if not self._at_work(job):
                at = f" at step {status['step']}" if status.get("step") else ""
                return (f"⚠️ The learning job {name} stopped{at} without finishing: its process ended (killed, or the "
                        f"app or the machine restarted). The model in use keeps serving; **Resume the job** goes on "
                        f"from its last checkpoint."), False
            if phase == learning_job.PREPARING:
                return f"⏳ Learning job {name}: preparing the corrected items …", True
            if phase == learning_job.SCORING:
                return (f"⏳ Learning job {name}: scoring the model in use and the new one on the "
                        f"{status.get('held_back', '')} held-back items …"), True
            if "step" not in status:
                return f"⏳ Learning job {name}: training{items} …", True
            left = f", about {_duration(status['seconds_left'])} left" if "seconds_left" in status else ""
            cancelling = " Cancelling after this step …" if job.cancelled else ""
            return (f"⏳ Learning job {name}: training, step {status['step']} of at most "
                    f"{status.get('max_steps', '?')}, loss {status.get('loss', float('nan')):.4f}{left}{items}."
                    f"{cancelling}"), True
        message = status.get("message") or ""
        if phase == learning_job.PROMOTED:
            return f"✅ Learning job {name}: {_sentence(message)} The page serves {status.get('version')} now.", False
        if phase == learning_job.REFUSED:
            return f"Learning job {name}: {_sentence(message)}", False
        if phase == learning_job.CANCELLED:
            return f"Learning job {name}: {_sentence(message)}", False
        if phase == learning_job.FAILED:
            return (f"⚠️ The learning job {name} failed: {_sentence(message)} The model in use keeps serving."), False
        return f"Learning job {name}: {phase}.", False

    def _served_line(self, served: str | None) -> str:
        if served is None:
            count = len(self.versions.versions())
            earlier = f" ({count} learned version(s) kept; none serves)" if count else ""
            return f"In use: the base model `{self.base_name}`{earlier}."
        entry = self.versions.entry(served) or {}
        figures = (f": {entry['new_miou']} mIoU on its {entry['held_back_items']} held-back items against "
                   f"{entry['current_miou']} ({entry['gain']:+})") if FIGURES <= entry.keys() else ""
        return (f"In use: **{served}**, learned from corrections, of `{self.base_name}`{figures}, "
                f"promoted {_when(entry.get('promoted_at'))}. **Roll back** serves the one it replaced "
                f"({entry.get('replaces') or 'the base model'}).")

    # --- the queue pre-annotated again ------------------------------------------------------------------------------

    def _start_refresh(self, job: str | None, version: str | None, again: bool = False) -> None:
        """Pre-annotate again the unfinished items of the queue that `job` learned from, with the model in use now
        (`version`, or the base model): `python -m app.preannotate --refresh` in a process of its own."""
        origin = self._origin(job)
        if origin is None:
            return
        model = str(self.versions.folder / version) if version else model_argument(self.base)
        command = self._preannotate_command() + [origin["location"], "--refresh", "--model", model, "--annotations",
                                                 str(Path(self.settings.annotations_dir).expanduser().resolve())]
        if origin.get("split"):
            command += ["--split", origin["split"]]
        try:
            items = len(self.workspace.queue(origin["location"], origin.get("split")).unfinished())
        except Exception as error:  # the queue's source is gone: nothing to pre-annotate
            logger.warning("pre-annotating %s again: %r", origin["location"], error)
            return
        log = self.folder / LOGS_FOLDER / f"refresh-{version or 'base'}-{int(time.time())}.log"
        with self._lock:
            if self._refreshing():
                self._refresh.terminate()  # an older model's pre-annotation gives way to the model in use now
            process = self._popen(command, log, self._preannotate_env())
            self._refresh = process
            record = {"job": job, "version": version, "queue": origin.get("title"), "location": origin["location"],
                      "split": origin.get("split"), "items": items, "log": str(log), "pid": process.pid,
                      "started": time.time(), **({"again": True} if again else {})}
            self._write_refresh(record)
        threading.Thread(target=self._wait_refresh, args=(process, record), daemon=True).start()

    def _wait_refresh(self, process: subprocess.Popen, record: dict[str, Any]) -> None:
        code = process.wait()
        current = self._refresh_record()
        if current.get("pid") == record["pid"]:
            self._write_refresh({**current, "ended": time.time(), "returncode": code})

    def _preannotate_command(self) -> list[str]:
        """`python -m app.preannotate`, or under `accelerate launch` for several processes; below the server's
        priority on the CPU."""
        processes = self.settings.preannotate_processes
        if processes > 1:
            command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes",
                       str(processes), "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                       "--main_process_port", str(_free_port()), "-m", "app.preannotate"]
        else:
            command = [sys.executable, "-m", "app.preannotate"]
        if default_device().type == "cpu" and shutil.which("nice"):
            command = ["nice", "-n", "10", *command]
        return command

    def _refresh_line(self) -> tuple[str | None, bool]:
        """The pre-annotation again in words, and whether it is at work."""
        record = self._refresh_record()
        if not record:
            return None, False
        model = record.get("version") or "the base model"
        queue, items = record.get("queue") or record.get("location"), record.get("items", 0)
        if "ended" in record:
            if record.get("returncode") in (0, 1):
                return (f"Pre-annotated the {items} unfinished item(s) of {queue} again with {model}: worst first "
                        f"follows their new confidences."), False
            why = _last_line(Path(record.get("log", "")))
            return (f"⚠️ Pre-annotating {queue} again with {model} stopped (exit status {record.get('returncode')})"
                    f"{': ' + why if why else ''}; what it stored stays."), False
        done = _items_done(Path(record.get("log", "")))
        return f"⏳ Pre-annotating the {items} unfinished item(s) of {queue} again with {model}: {done} done …", True

    def _refreshing(self) -> bool:
        return self._refresh is not None and self._refresh.poll() is None

    def _refresh_record(self) -> dict[str, Any]:
        try:
            return json.loads((self.folder / REFRESH_FILE).read_text())
        except (OSError, ValueError):
            return {}

    def _write_refresh(self, record: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / (REFRESH_FILE + ".tmp")
        tmp.write_text(json.dumps(record, indent=2))
        os.replace(tmp, self.folder / REFRESH_FILE)

    def _origin(self, job: str | None) -> dict[str, Any] | None:
        """Which queue `job` learned from (what `start` recorded beside its data), or None."""
        if not job:
            return None
        try:
            return json.loads((self.folder / CORRECTIONS_FOLDER / f"{job}.json").read_text())
        except (OSError, ValueError):
            return None


def _free_port() -> int:
    """A local port nothing listens on now: where the processes of a launch meet."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _alive(pid: Any) -> bool:
    """Whether the process `pid` runs (not a zombie) and is a pre-annotation: a pid the system gave another program
    since is not taken for it."""
    if not isinstance(pid, int):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z" and b"app.preannotate" in cmdline


def _last_line(log: Path) -> str:
    """The last line of a process's log that says something (a progress bar's lines left out)."""
    try:
        with open(log, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 8192))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [line.strip() for line in re.split(r"[\r\n]+", text) if line.strip() and "it/s" not in line
             and "s/it" not in line and not line.startswith(("Traceback", "File "))]
    return lines[-1][:300] if lines else ""


def _items_done(log: Path) -> int:
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return 0
    return len(_ITEM_LINE.findall(text))


def _duration(seconds: Any) -> str:
    seconds = max(0, int(float(seconds)))
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"


def _when(text: Any) -> str:
    try:
        return dt.datetime.fromisoformat(str(text)).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return str(text)


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."
