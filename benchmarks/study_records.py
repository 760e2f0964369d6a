"""What a study keeps across runs, committed beside the code (run folders under runs/ are not committed): each
variant's budget and evaluation, the study's judge and the models a later run trains on, so that a study finished
over several runs, on several machines, keeps one budget per variant, one judge and every row it has measured."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from training.run_folder import (
    BEST_FOLDER,
    CHECKPOINT_PREFIX,
    EVAL_FOLDER,
    LOG_FILE,
    LOGS_FOLDER,
    SAMPLES_FOLDER,
    SUMMARY_FILE,
)

RECORDS = Path(__file__).with_name("records")  # one folder per study
JUDGE_FOLDER = "judge"  # the judge's model files (no checkpoints, logs or samples)


class StudyRecords:
    """The committed records of one study: ``<name>.budget.json``, ``<name>.eval.json``, ``judge/`` and the
    models kept to train on (``<name>/``)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def _read(self, file: str) -> dict[str, Any] | None:
        path = self.path / file
        return json.loads(path.read_text()) if path.is_file() else None

    def _write(self, file: str, record: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / file).write_text(json.dumps(record, indent=2) + "\n")

    def budget(self, name: str) -> dict[str, Any] | None:
        return self._read(f"{name}.budget.json")

    def write_budget(self, name: str, budget: dict[str, Any]) -> None:
        self._write(f"{name}.budget.json", budget)

    def evaluation(self, name: str) -> dict[str, Any] | None:
        return self._read(f"{name}.eval.json")

    def write_evaluation(self, name: str, evaluation: dict[str, Any]) -> None:
        self._write(f"{name}.eval.json", evaluation)

    def model(self, name: str) -> Path | None:
        """A kept model's folder (``<name>/``), when one was kept."""
        folder = self.path / name
        return folder if (folder / SUMMARY_FILE).is_file() else None

    def keep_model(self, name: str, run: Path, *skip: str) -> Path:
        """Copy a trained model (not its checkpoints, logs, samples or the files named in `skip`) into the records as
        ``<name>/``: the judge, or a variant a later run goes on training (``--init-from``)."""
        folder = self.path / name
        shutil.rmtree(folder, ignore_errors=True)
        skipped = shutil.ignore_patterns(f"{CHECKPOINT_PREFIX}*", LOGS_FOLDER, SAMPLES_FOLDER, LOG_FILE, EVAL_FOLDER,
                                         BEST_FOLDER, *skip)
        shutil.copytree(run, folder, ignore=skipped)
        return folder

    @property
    def judge(self) -> Path | None:
        """The kept judge's model folder, when one was kept."""
        return self.model(JUDGE_FOLDER)

    def keep_judge(self, run: Path, *skip: str) -> Path:
        """Keep the study's judge, which every later run scores the cycle column with."""
        return self.keep_model(JUDGE_FOLDER, run, *skip)
