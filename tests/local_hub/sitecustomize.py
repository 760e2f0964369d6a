"""A local Hub for the app servers of the browser tests (put on their PYTHONPATH, Python loads this at start-up): when
``SEMFLOW_TEST_LOCAL_HUB`` names a folder, `huggingface_hub`'s repo creation and folder uploads land there, each repo
under ``<folder>/<type>s/<org>/<name>/`` as the Hub would hold it after the commit (its ``delete_patterns`` applied),
with a line per commit in its ``.commits.log``. Nothing leaves the machine; the test reads the repo back with
`datasets.load_dataset`."""

from __future__ import annotations

import os

_FOLDER = os.environ.get("SEMFLOW_TEST_LOCAL_HUB")

if _FOLDER:
    import fnmatch
    import json
    import shutil
    from pathlib import Path

    from huggingface_hub import HfApi

    def _repo(repo_id: str, repo_type: str | None) -> Path:
        return Path(_FOLDER) / f"{repo_type or 'model'}s" / repo_id

    def create_repo(self, repo_id, *args, repo_type=None, exist_ok=False, **kwargs):
        _repo(repo_id, repo_type).mkdir(parents=True, exist_ok=True)
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, *args, repo_id=None, folder_path=None, repo_type=None, path_in_repo=None,
                      commit_message=None, delete_patterns=None, **kwargs):
        repo = _repo(repo_id, repo_type)
        repo.mkdir(parents=True, exist_ok=True)
        source = Path(folder_path)
        uploaded = {(Path(path_in_repo or "") / p.relative_to(source)).as_posix()
                    for p in source.rglob("*") if p.is_file()}
        for pattern in ([delete_patterns] if isinstance(delete_patterns, str) else delete_patterns or []):
            for path in [p for p in repo.rglob("*") if p.is_file() and p.name != ".commits.log"]:
                name = path.relative_to(repo).as_posix()
                if fnmatch.fnmatch(name, pattern) and name not in uploaded:
                    path.unlink()
        shutil.copytree(source, repo / (path_in_repo or ""), dirs_exist_ok=True)
        with open(repo / ".commits.log", "a", encoding="utf-8") as log:
            log.write(json.dumps({"message": commit_message, "files": sorted(uploaded)}) + "\n")
        return f"https://huggingface.co/{repo_id}/commit/local"

    HfApi.create_repo = create_repo
    HfApi.upload_folder = upload_folder
