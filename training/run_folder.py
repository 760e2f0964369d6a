"""A training run's folder: the saved model at its top, and beside it the checkpoints, log, samples, best snapshot,
evaluation and summaries; every name in it is spelled here, but those of the records a model keeps beside its weights
(config, summary, evaluation, speed), which `semflow.description` reads and spells."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

# The model's records, named here too for the run folder's users (spelled in `semflow.description`).
from semflow.description import EVALUATION_FILE, SPEED_FILE, SUMMARY_FILE  # noqa: F401
from semflow.description import TRAIN_CONFIG_FILE as CONFIG_FILE  # noqa: F401

LOG_FILE = "log.jsonl"
CHECKPOINT_PREFIX = "checkpoint-"
CHECKPOINT_STATE = "step.json"
BEST_FOLDER, BEST_FILE = "best", "best.json"
SAMPLES_FOLDER, LOGS_FOLDER, EVAL_FOLDER = "samples", "logs", "eval"

# What a run folder holds beside the model that does not belong in a model repo.
PUSH_IGNORE = [f"{CHECKPOINT_PREFIX}*", f"{CHECKPOINT_PREFIX}*/**", f"{LOGS_FOLDER}/**", f"{SAMPLES_FOLDER}/**",
               LOG_FILE, f"{EVAL_FOLDER}/**", f"{BEST_FOLDER}/**"]


class RunFolder:
    """The folder a run writes (`--output-dir`), which is also the final model folder."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    # --- layout -----------------------------------------------------------------------------------------------------

    @property
    def logs(self) -> Path:
        return self.path / LOGS_FOLDER

    @property
    def best(self) -> Path:
        return self.path / BEST_FOLDER

    @property
    def eval(self) -> Path:
        return self.path / EVAL_FOLDER

    def sample_path(self, step: int) -> Path:
        (self.path / SAMPLES_FOLDER).mkdir(parents=True, exist_ok=True)
        return self.path / SAMPLES_FOLDER / f"step-{step:07d}.png"

    def samples(self) -> list[Path]:
        return sorted((self.path / SAMPLES_FOLDER).glob("step-*.png"))

    # --- checkpoints ------------------------------------------------------------------------------------------------

    def checkpoint(self, step: int) -> Path:
        return self.path / f"{CHECKPOINT_PREFIX}{step}"

    def checkpoints(self) -> list[Path]:
        """Whole checkpoint folders, oldest first: their step file is written last, so that a run killed while it
        saved one leaves a folder without it, which is not taken for a checkpoint."""
        return [p for p in self._checkpoint_folders() if (p / CHECKPOINT_STATE).is_file()]

    def _checkpoint_folders(self) -> list[Path]:
        found = [p for p in self.path.glob(f"{CHECKPOINT_PREFIX}*")
                 if p.is_dir() and p.name[len(CHECKPOINT_PREFIX):].isdigit()]
        return sorted(found, key=_step)

    def write_checkpoint_state(self, step: int, state: dict[str, Any]) -> None:
        """The step and the run's bookkeeping (wall clock, history) beside a checkpoint's weights."""
        (self.checkpoint(step) / CHECKPOINT_STATE).write_text(json.dumps({"step": step, **state}))

    def read_checkpoint_state(self, folder: Path) -> dict[str, Any]:
        return json.loads((folder / CHECKPOINT_STATE).read_text())

    def prune_checkpoints(self, keep: int) -> None:
        """Keep the newest `keep` checkpoints (all when `keep` <= 0), and no part-saved folder before the newest."""
        whole = self.checkpoints()
        if not whole:
            return
        old, newest = set(whole[:-keep] if keep > 0 else []), _step(whole[-1])
        for folder in self._checkpoint_folders():
            if folder in old or (folder not in whole and _step(folder) < newest):
                shutil.rmtree(folder, ignore_errors=True)

    # --- records ----------------------------------------------------------------------------------------------------

    def append_log(self, record: dict[str, Any]) -> None:
        with open(self.path / LOG_FILE, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def log(self) -> list[dict[str, Any]]:
        path = self.path / LOG_FILE
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []

    def read(self, name: str) -> dict[str, Any] | None:
        """A JSON record of the folder (`CONFIG_FILE`, `SUMMARY_FILE`, `EVALUATION_FILE`, `SPEED_FILE`), if any."""
        path = self.path / name
        return json.loads(path.read_text()) if path.is_file() else None

    def write(self, name: str, record: dict[str, Any]) -> Path:
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / name).write_text(json.dumps(record, indent=2))
        return self.path / name

    def best_record(self) -> dict[str, Any]:
        """The best validation so far (``{"step", "val_miou"}``), or {} before the first."""
        path = self.best / BEST_FILE
        return json.loads(path.read_text()) if path.is_file() else {}

    def save_best(self, model: Any, record: dict[str, Any]) -> None:
        """Snapshot `model` (a pipeline, or anything with ``save_pretrained``) as the best so far."""
        model.save_pretrained(self.best)
        (self.best / BEST_FILE).write_text(json.dumps(record))


def _step(checkpoint: Path) -> int:
    return int(checkpoint.name[len(CHECKPOINT_PREFIX):])
