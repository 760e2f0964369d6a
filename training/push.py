"""Publishing: `python -m training.push DIR ORG/NAME` uploads a saved model folder (with its model card) to the Hub."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from semflow import SemFlowPipeline
from semflow.hub import push_folder

from .run_folder import PUSH_IGNORE


def push_model(folder: str | os.PathLike, repo_id: str, token: str | None = None, private: bool | None = None,
               commit_message: str = "Upload SemFlow model") -> str:
    """Upload a pipeline folder (model_index.json, weights, configs, README.md card) to a model repo.

    Raises:
        ValueError: the folder is not a saved SemFlow pipeline, or has no model card.
    """
    folder = Path(folder)
    if not (folder / SemFlowPipeline.config_name).is_file():
        raise ValueError(f"{folder} is not a saved pipeline (no {SemFlowPipeline.config_name})")
    if not (folder / "README.md").is_file():
        raise ValueError(f"{folder} has no README.md model card; write one (training.card) before publishing")
    return push_folder(folder, repo_id, repo_type="model", token=token or os.environ.get("HF_TOKEN"),
                       private=private, commit_message=commit_message, ignore_patterns=PUSH_IGNORE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.push", description=__doc__)
    parser.add_argument("folder", help="a saved SemFlow pipeline folder (e.g. a training --output-dir)")
    parser.add_argument("repo_id", help="ORG/NAME of the model repo (created if missing)")
    parser.add_argument("--private", action="store_true")
    parser.add_argument("--message", default="Upload SemFlow model")
    args = parser.parse_args(argv)
    try:
        url = push_model(args.folder, args.repo_id, private=args.private or None, commit_message=args.message)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
