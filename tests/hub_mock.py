"""A stand-in for the Hub API at its boundary (HfApi.create_repo / upload_folder) that records what would be sent."""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import HfApi
from huggingface_hub.utils import filter_repo_objects


class RecordingHub:
    """Patches HfApi so nothing leaves the machine; `repos` and `uploads` record the calls."""

    def __init__(self, monkeypatch) -> None:
        self.repos: list[dict] = []
        self.uploads: list[dict] = []
        monkeypatch.setattr(HfApi, "create_repo", lambda api, *args, **kwargs: self.create_repo(*args, **kwargs))
        monkeypatch.setattr(HfApi, "upload_folder", lambda api, *args, **kwargs: self.upload_folder(*args, **kwargs))

    def create_repo(self, repo_id, repo_type=None, private=None, exist_ok=False, space_sdk=None, **kwargs):
        self.repos.append({"repo_id": repo_id, "repo_type": repo_type, "private": private, "exist_ok": exist_ok,
                           "space_sdk": space_sdk})
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, repo_id, folder_path, repo_type=None, path_in_repo=None, commit_message=None,
                      ignore_patterns=None, allow_patterns=None, **kwargs):
        root = Path(folder_path)
        files = [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()]
        kept = sorted(filter_repo_objects(files, allow_patterns=allow_patterns, ignore_patterns=ignore_patterns))
        contents = {name: (root / name).read_bytes() for name in kept if name.endswith((".md", ".json", ".jsonl"))}
        self.uploads.append({"repo_id": repo_id, "repo_type": repo_type, "path_in_repo": path_in_repo,
                             "files": kept, "contents": contents, "commit_message": commit_message,
                             "delete_patterns": kwargs.get("delete_patterns")})
        return f"https://huggingface.co/{repo_id}/commit/0123abc"
