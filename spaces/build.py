"""Assemble an uploadable Hugging Face Space folder (app.py, app/, semflow/, card, requirements), and push it.

    python spaces/build.py --model ORG/NAME[@revision] --out DIR [--push ORG/SPACE] [--private]

Run as a script: this folder has no __init__.py so that `import spaces` keeps meaning the Hugging Face package.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPACE = Path(__file__).resolve().parent
DEFAULT_HUB_MODEL = "semflow-studio/semflow-camvid-small"
COPIED = ["app.py", "app", "semflow"]
SKIPPED = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")


def build(model: str, out: Path) -> Path:
    """Write the Space folder for `model` (``org/name`` or ``org/name@revision``) into `out` (replaced)."""
    sys.path.insert(0, str(ROOT))
    from app.settings import SPACE_FILE  # the app serves its model when SEMFLOW_MODEL is unset
    from semflow.hub import parse_model_ref

    ref = parse_model_ref(model)
    if ref.is_local:
        raise ValueError(f"--model must be a Hub repo id (the Space downloads it), not the folder '{model}'")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, out / name, ignore=SKIPPED)
        else:
            shutil.copy2(source, out / name)
    shutil.copy2(SPACE / "requirements.txt", out / "requirements.txt")
    card = (SPACE / "README.md").read_text(encoding="utf-8").replace(DEFAULT_HUB_MODEL, ref.repo_id_or_path)
    (out / "README.md").write_text(card, encoding="utf-8")
    (out / SPACE_FILE).write_text(json.dumps({"model": str(ref)}, indent=2) + "\n")
    return out


def push(folder: Path, space_id: str, private: bool | None = None, token: str | None = None) -> str:
    """Create the Space (Gradio SDK) if needed and upload the folder.

    Not `semflow.hub.push_folder` yet: the Hub creates a Space only with its SDK (`space_sdk`), which push_folder
    does not pass on to `create_repo`."""
    from huggingface_hub import HfApi

    if not re.fullmatch(r"[\w.\-]+/[\w.\-]+", space_id):
        raise ValueError(f"--push takes ORG/SPACE, got '{space_id}'")
    api = HfApi(token=token)
    api.create_repo(space_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
    commit = api.upload_folder(repo_id=space_id, repo_type="space", folder_path=str(folder),
                               commit_message="Update SemFlow Studio")
    return str(getattr(commit, "commit_url", commit))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python spaces/build.py", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_HUB_MODEL, help="Hub model the Space serves (org/name[@revision])")
    parser.add_argument("--out", required=True, type=Path, help="output folder (replaced)")
    parser.add_argument("--push", default=None, metavar="ORG/SPACE", help="upload the folder to this Space")
    parser.add_argument("--private", action="store_true")
    args = parser.parse_args(argv)
    try:
        folder = build(args.model, args.out)
        print(f"built {folder}")
        if args.push:
            print(push(folder, args.push, private=args.private or None))
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
