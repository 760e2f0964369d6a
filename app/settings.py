"""The app's settings: every environment variable it reads, read once into one frozen `Settings`."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from semflow import limits
from semflow.hub import parse_model_ref
from semflow.loading import DEFAULT_MODEL, ENV_MODEL, env_model

# Written by `spaces/build.py` beside app.py: the Hub model a built Space serves when `$SEMFLOW_MODEL` is unset.
SPACE_FILE = "semflow_space.json"
SPACE_CONFIG = Path(__file__).resolve().parents[1] / SPACE_FILE
# Every variable the app takes, with its meaning: the table in docs/serving.md says the same (a test compares them).
VARIABLES = {
    ENV_MODEL: "model: an embedded model's name, a folder, or a Hub id `org/name[@revision]` (default: the "
               "embedded default)",
    "SEMFLOW_ANNOTATIONS_DIR": "annotation folder (default `./annotations`)",
    "SEMFLOW_ANNOTATIONS_REPO": "Hub dataset repo `org/name` that saved annotations can be pushed to (never "
                                "overwriting earlier pushes); a push needs an identity (next row)",
    "SEMFLOW_PUSH_WITH_SERVER_TOKEN": "`1` lets anyone who can open the page push with the server's own `HF_TOKEN` "
                                      "(default `0`: on a Space with `hf_oauth: true` each visitor signs in and "
                                      "pushes with their own Hugging Face account; elsewhere pushing is off)",
    "HF_TOKEN": "the server's Hub token: used for pushes only with `SEMFLOW_PUSH_WITH_SERVER_TOKEN=1`",
    "SEMFLOW_EXAMPLES": "a dataset (folder or Hub id) whose frames are offered as examples at run time",
    "SEMFLOW_CONCURRENCY": "model calls at once (default 1: one shared model slot)",
    "SEMFLOW_QUEUE_SIZE": "requests that may wait in the queue (default 64)",
    "SEMFLOW_MAX_UPLOAD_MB": "largest upload in MB (default 25)",
    "SEMFLOW_MAX_PIXELS": f"largest image or mask in pixels (default and most {limits.MAX_PIXELS})",
    "SEMFLOW_MAX_EDIT_SIDE": f"longer side larger images are brought to for editing (default {limits.WORKING_SIDE})",
    "SEMFLOW_CACHE": "where generated examples are cached (default `~/.cache/semflow-studio`)",
    "SEMFLOW_DATABASE_URL": "the annotation database: a SQLAlchemy URL such as "
                            "`postgresql+psycopg://user@host/annotations`, so that several app servers share their "
                            "queues (default: the SQLite file `annotations.db` in the annotation folder)",
    "SEMFLOW_REVIEWERS": "who may review queue items (accept, correct, reject, release anyone's claim): names "
                         "separated by commas, the signed-in Hugging Face names on a Space, else the names typed on "
                         "the page; `*` lets everyone review (default: nobody)",
    "SEMFLOW_DATASET_REPO": "Hub dataset repo `org/name` that a queue's accepted items can be pushed to as a dataset "
                            "(a folder per queue; needs an identity, as `SEMFLOW_ANNOTATIONS_REPO` does)",
    "SEMFLOW_QUEUE_ROOT": "the only folder whose sub-folders the page may open as work queues (default: the folder "
                          "the app starts in; relative paths are taken from it); Hub dataset ids are always allowed",
    "SEMFLOW_MODEL_REPO": "Hub model repo `org/name` that a model version learned from the corrections can be pushed "
                          "to (needs an identity, as `SEMFLOW_ANNOTATIONS_REPO` does)",
    "SEMFLOW_LEARN_CONFIG": "a JSON file of training settings over a learning job's own, e.g. "
                            "`{\"learning_rate\": 1e-4, \"batch_size\": 8}` (default: none)",
    "SEMFLOW_PREANNOTATE_PROCESSES": "processes that pre-annotate a queue again after a new model version (default "
                                     "1; more run under `accelerate launch --multi_gpu`, one per GPU where there are "
                                     "GPUs)",
}
TRUE, FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


class SettingsError(ValueError):
    """An environment variable has a value the app cannot use; the message names it and what it takes."""


@dataclass(frozen=True)
class Settings:
    """What the app was configured with (see `VARIABLES` for the variable behind each field).

    Attributes:
        model: The model to serve: `SEMFLOW_MODEL`, else a built Space's model (`SPACE_FILE`), else the embedded
            default's name; always a reference of its own, so that nothing reads the environment for it again.
        oauth: Whether visitors can sign in with Hugging Face (a Space with ``hf_oauth: true`` sets
            ``OAUTH_CLIENT_ID``); only then can a visitor push with their own account.
    """

    model: str = DEFAULT_MODEL
    annotations_dir: Path = field(default_factory=lambda: Path.cwd() / "annotations")
    annotations_repo: str | None = None
    push_with_server_token: bool = False
    hf_token: str | None = field(default=None, repr=False)
    oauth: bool = False
    examples: str | None = None
    concurrency: int = 1
    queue_size: int = 64
    max_upload_mb: int = 25
    max_pixels: int = limits.MAX_PIXELS
    max_edit_side: int = limits.WORKING_SIDE
    cache_dir: Path = field(default_factory=lambda: Path.home() / ".cache" / "semflow-studio")
    queue_root: Path = field(default_factory=Path.cwd)
    database_url: str | None = field(default=None, repr=False)
    reviewers: tuple[str, ...] = ()
    dataset_repo: str | None = None
    model_repo: str | None = None
    learn_config: Path | None = None
    preannotate_processes: int = 1

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, space_file: Path = SPACE_CONFIG) -> Settings:
        """Read the settings from `environ` (default: the process environment) and a built Space's `space_file`.

        Raises:
            SettingsError: a variable is malformed (not a whole number, out of range, not a repo id, not a yes/no).
        """
        env = os.environ if environ is None else environ
        defaults = cls()

        def text(name: str) -> str | None:
            return (env.get(name) or "").strip() or None

        def whole(name: str, default: int, low: int, high: int | None = None) -> int:
            value = text(name)
            if value is None:
                return default
            try:
                number = limits.whole_number(value, name)
            except limits.InvalidInput as error:
                raise SettingsError(str(error)) from None
            if number < low or (high is not None and number > high):
                bound = f"at least {low}" if high is None else f"between {low} and {high}"
                raise SettingsError(f"{name} must be {bound}, got {number}")
            return number

        def flag(name: str) -> bool:
            value = (env.get(name) or "").strip().lower()
            if value not in TRUE + FALSE:
                raise SettingsError(f"{name} must be 1 or 0 (yes or no), got {env.get(name)!r}")
            return value in TRUE

        def repo_id(name: str, kind: str = "dataset") -> str | None:
            repo = text(name)
            if repo is not None:
                try:
                    ref = parse_model_ref(repo)
                    valid = not ref.is_local and ref.revision is None
                except ValueError:
                    valid = False
                if not valid:
                    raise SettingsError(f"{name} must be a Hub {kind} id like 'org/name', got {repo!r}")
            return repo

        def database(name: str) -> str | None:
            url = text(name)
            if url is not None:
                from sqlalchemy.engine import make_url
                from sqlalchemy.exc import ArgumentError

                try:
                    backend = make_url(url).get_backend_name()
                except ArgumentError:
                    backend = None
                if backend not in ("sqlite", "postgresql"):
                    raise SettingsError(f"{name} must be a database URL like 'postgresql+psycopg://user@host/name' "
                                        f"or 'sqlite:////path/annotations.db'")
            return url

        def learn_config(name: str) -> Path | None:
            path = text(name)
            if path is None:
                return None
            try:
                settings = json.loads(Path(path).expanduser().read_text(encoding="utf-8"))
            except (OSError, ValueError) as error:
                raise SettingsError(f"{name} must name a readable JSON file of training settings, got {path!r} "
                                    f"({type(error).__name__})") from None
            if not isinstance(settings, dict):
                raise SettingsError(f"{name} must name a JSON file holding an object of training settings")
            return Path(path).expanduser().resolve()

        repo = repo_id("SEMFLOW_ANNOTATIONS_REPO")
        return cls(
            model=env_model(env) or space_model(space_file) or DEFAULT_MODEL,
            annotations_dir=Path(text("SEMFLOW_ANNOTATIONS_DIR") or defaults.annotations_dir),
            annotations_repo=repo,
            push_with_server_token=flag("SEMFLOW_PUSH_WITH_SERVER_TOKEN"),
            hf_token=text("HF_TOKEN"),
            oauth=text("OAUTH_CLIENT_ID") is not None,
            examples=text("SEMFLOW_EXAMPLES"),
            concurrency=whole("SEMFLOW_CONCURRENCY", defaults.concurrency, 1),
            queue_size=whole("SEMFLOW_QUEUE_SIZE", defaults.queue_size, 1),
            max_upload_mb=whole("SEMFLOW_MAX_UPLOAD_MB", defaults.max_upload_mb, 1),
            max_pixels=whole("SEMFLOW_MAX_PIXELS", defaults.max_pixels, limits.MIN_SIDE**2, limits.MAX_PIXELS),
            max_edit_side=whole("SEMFLOW_MAX_EDIT_SIDE", defaults.max_edit_side, limits.MIN_SIDE),
            cache_dir=Path(text("SEMFLOW_CACHE") or defaults.cache_dir).expanduser(),
            queue_root=Path(text("SEMFLOW_QUEUE_ROOT") or defaults.queue_root).expanduser(),
            database_url=database("SEMFLOW_DATABASE_URL"),
            reviewers=tuple(dict.fromkeys(name.strip() for name in (text("SEMFLOW_REVIEWERS") or "").split(",")
                                          if name.strip())),
            dataset_repo=repo_id("SEMFLOW_DATASET_REPO"),
            model_repo=repo_id("SEMFLOW_MODEL_REPO", "model"),
            learn_config=learn_config("SEMFLOW_LEARN_CONFIG"),
            preannotate_processes=whole("SEMFLOW_PREANNOTATE_PROCESSES", defaults.preannotate_processes, 1),
        )

    def is_reviewer(self, name: str | None) -> bool:
        """Whether `name` (a signed-in or typed name) may review."""
        return bool(name) and ("*" in self.reviewers or name in self.reviewers)

    @property
    def can_push(self) -> bool:
        """Whether pushing annotations is possible at all: a repo, and an identity to push with."""
        return self.annotations_repo is not None and (self.oauth or self.push_with_server_token)


def space_model(path: Path) -> str | None:
    """The model a built Space serves (its `SPACE_FILE`, beside app.py), or None where there is no such file.

    Raises:
        SettingsError: the file is there but does not name a model.
    """
    if not path.is_file():
        return None
    try:
        model = json.loads(path.read_text(encoding="utf-8")).get("model")
    except (ValueError, AttributeError, UnicodeDecodeError):
        model = None
    if not isinstance(model, str) or not model.strip():
        raise SettingsError(f"{path.name} must hold {{\"model\": \"org/name[@revision]\"}}")
    return model.strip()


@functools.cache
def get_settings() -> Settings:
    """The process's settings, read from the environment on first use."""
    return Settings.from_env()
