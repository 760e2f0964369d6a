"""Hugging Face Hub boundary: resolve `ORG/NAME[@revision]` or a folder to a local snapshot, and upload folders."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from huggingface_hub import HfApi, snapshot_download

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


@dataclass(frozen=True)
class ModelRef:
    """A model reference: a local folder, or a Hub repo id with an optional revision."""

    repo_id_or_path: str
    revision: str | None = None

    @property
    def is_local(self) -> bool:
        return os.path.isdir(self.repo_id_or_path)

    def __str__(self) -> str:
        return self.repo_id_or_path + (f"@{self.revision}" if self.revision else "")


def parse_model_ref(model: str | os.PathLike) -> ModelRef:
    """``"org/name@rev"`` → ``ModelRef("org/name", "rev")``; an existing folder is kept as it is.

    Raises:
        ValueError: neither an existing folder nor a well-formed Hub repo id.
    """
    text = os.fspath(model)
    if os.path.isdir(text):
        return ModelRef(text)
    repo_id, _, revision = text.partition("@")
    if not _REPO_ID.match(repo_id) or ".." in repo_id or (revision == "" and text.endswith("@")):
        raise ValueError(f"model '{text}' is neither an existing folder nor a Hub repo id like 'org/name[@revision]'")
    return ModelRef(repo_id, revision or None)


def resolve_model(model: str | os.PathLike, revision: str | None = None) -> str:
    """A local folder holding the model: the folder itself, or the Hub snapshot (from the HF cache when offline).

    With ``HF_HUB_OFFLINE=1`` nothing is downloaded; a repo that is not in the cache raises the Hub library's
    error (`huggingface_hub.errors.LocalEntryNotFoundError`).
    """
    ref = parse_model_ref(model)
    if ref.is_local:
        return ref.repo_id_or_path
    return snapshot_download(ref.repo_id_or_path, revision=revision or ref.revision, repo_type="model")


def push_folder(
    folder: str | os.PathLike,
    repo_id: str,
    repo_type: str = "model",
    path_in_repo: str | None = None,
    token: str | None = None,
    private: bool | None = None,
    commit_message: str = "Upload with SemFlow",
    ignore_patterns: list[str] | None = None,
    delete_patterns: list[str] | None = None,
) -> str:
    """Create the repo if needed and upload `folder` (to `path_in_repo` inside it), in one commit that also removes the
    repo's files matching `delete_patterns` that the folder does not hold. Returns the commit URL."""
    if not _REPO_ID.match(repo_id):
        raise ValueError(f"repo_id '{repo_id}' is not of the form 'org/name'")
    if not os.path.isdir(folder):
        raise ValueError(f"folder '{folder}' does not exist")
    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
    commit = api.upload_folder(
        repo_id=repo_id,
        repo_type=repo_type,
        folder_path=os.fspath(folder),
        path_in_repo=path_in_repo,
        commit_message=commit_message,
        ignore_patterns=ignore_patterns,
        **({"delete_patterns": delete_patterns} if delete_patterns else {}),
    )
    return str(getattr(commit, "commit_url", commit))
