"""Learning from a team's corrections: one fine-tuning job on an annotation set's corrected pairs except a held-back
share of the latest, which scores the model in use and the new one; the new one becomes the workspace's next model
version only when it is better there. Progress, cancel and resume for a page that runs the job in its own process.

    python -m training.learn --annotations DATASET --workspace DIR [--model M] [--minutes 10]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets

from semflow.loading import model_folder
from semflow.model_versions import ModelVersions

from .data import load_split
from .run_folder import (
    BEST_FOLDER,
    CHECKPOINT_PREFIX,
    CONFIG_FILE,
    EVAL_FOLDER,
    LOG_FILE,
    LOGS_FOLDER,
    SAMPLES_FOLDER,
    RunFolder,
)
from .scores import labelled_pairs, segmentation_scores

HELD_BACK_SHARE, MIN_HELD_BACK, MIN_TRAINING = 0.2, 5, 5
ORDER_COLUMN = "saved_at"  # when each pair was saved (ISO 8601): the latest are held back
STATUS_FILE, CANCEL_FILE, SPLIT_FILE = "status.json", "cancel", "split.json"
# What a job keeps of the model's own recipe: its terms and formulation; these change for a short fine-tune on few
# frames (the cycle term's frozen segmenter would double a step's cost).
FINE_TUNE = {"learning_rate": 5e-5, "warmup_steps": 10, "min_learning_rate_ratio": 0.1, "cycle_weight": 0.0,
             "adversarial_weight": 0.0, "held_out_drives": [], "validation_split": None, "save_best": False,
             "checkpointing_steps": 25, "checkpoints_total_limit": 1, "log_every": 5, "sample_images": 0,
             "num_workers": 0, "batch_size": 4}
SECONDS_PER_STEP_GUESS = 4.0  # sets the schedule's length before a step is timed; the time budget ends the run


@dataclass
class HeldBack:
    """The job's split of the corrected pairs: rows it trains on and the latest rows it never trains on."""

    training: datasets.Dataset
    held_back: datasets.Dataset


def held_back_split(rows: datasets.Dataset, share: float = HELD_BACK_SHARE, minimum: int = MIN_HELD_BACK,
                    min_training: int = MIN_TRAINING) -> HeldBack:
    """Hold back the latest `share` of `rows` (at least `minimum`) by their `ORDER_COLUMN` (their order when there is
    none); the rest trains.

    Raises:
        ValueError: fewer rows than `minimum` + `min_training` (the sentence says how many more are needed).
    """
    count = len(rows)
    held = max(minimum, math.ceil(share * count))
    if count - held < min_training:
        raise ValueError(f"learning needs at least {minimum + min_training} corrected items ({min_training} to train "
                         f"on and {minimum} held back to check the result); there are {count}")
    saved_at = list(rows[ORDER_COLUMN]) if ORDER_COLUMN in rows.column_names else None
    order = sorted(range(count), key=saved_at.__getitem__) if saved_at else list(range(count))
    return HeldBack(training=rows.select(order[: count - held]), held_back=rows.select(order[count - held :]))


class Job:
    """One learning job's folder: its run (checkpoints, log), its split, its status and the cancel flag."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.run = RunFolder(self.folder / "run")

    def status(self) -> dict[str, Any]:
        """The job's phase and figures, with the training log's latest step, loss and the time left."""
        path = self.folder / STATUS_FILE
        status = json.loads(path.read_text()) if path.is_file() else {"phase": "not started"}
        log = [r for r in self.run.log() if "loss" in r]
        if log and status.get("phase") == "training":
            latest = log[-1]
            spent, budget = latest.get("train_s", 0.0), 60 * status.get("minutes", 0.0)
            status |= {"step": latest["step"], "loss": latest["loss"], "seconds_left": max(0.0, budget - spent)}
        return status

    def set_status(self, phase: str, **fields: Any) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        previous = self.status() if (self.folder / STATUS_FILE).is_file() else {}
        status = {**{k: v for k, v in previous.items() if k not in ("step", "loss", "seconds_left")},
                  **fields, "phase": phase, "updated": time.time()}
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


def write_dataset(split: HeldBack, folder: Path, id2label: Path | None) -> Path:
    """The split as a dataset folder `training.train` loads (``train`` and ``validation`` parquet shards)."""
    (folder / "data").mkdir(parents=True, exist_ok=True)
    for name, rows in (("train", split.training), ("validation", split.held_back)):
        rows.to_parquet(str(folder / "data" / f"{name}-00000-of-00001.parquet"))
    (folder / "README.md").write_text(
        "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n    path: data/train-*\n"
        "  - split: validation\n    path: data/validation-*\n---\nA learning job's corrected pairs.\n")
    if id2label is not None:
        shutil.copy(id2label, folder / "id2label.json")
    return folder


def job_config(model: Path, minutes: float) -> dict[str, Any]:
    """The fine-tune's config: the model's own recipe (its ``train_config.json``) with `FINE_TUNE` over it."""
    recipe = RunFolder(model).read(CONFIG_FILE) or {}
    keep = ("formulation", "prediction", "cross_entropy_weight", "perceptual_weight", "class_balanced_loss",
            "class_weight_power", "image_end_probability", "photometric", "crop", "scale_range", "hflip",
            "encoder_learning_rate_ratio", "ema_decay", "t_distribution")
    steps = max(1, int(60 * minutes / SECONDS_PER_STEP_GUESS))
    return {**{key: recipe[key] for key in keep if key in recipe}, **FINE_TUNE, "max_minutes": minutes,
            "max_steps": steps, "validation_steps": steps}


def learn(annotations: str, workspace: str | os.PathLike, model: str | None = None, minutes: float = 10.0,
          job_name: str = "job", resume: bool = False, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run (or resume) one learning job from `model` (default: the workspace's version in use, else the default
    model); returns its final status (promoted, refused or cancelled). `overrides` go over the job's config."""
    from .train import build_parser, finish, loop, setup

    versions = ModelVersions(workspace)
    current = Path(model_folder(model)) if model else versions.current_folder() or model_folder(None)
    job = Job(versions.root / "jobs" / job_name)
    if not resume:
        shutil.rmtree(job.folder, ignore_errors=True)
    job.set_status("preparing", model=str(current), minutes=minutes, annotations=str(annotations))
    rows = load_split(annotations, "train")
    split = held_back_split(rows)
    id2label = Path(annotations) / "id2label.json"
    data = write_dataset(split, job.folder / "data", id2label if id2label.is_file() else None)
    (job.folder / SPLIT_FILE).write_text(json.dumps(
        {"training": len(split.training), "held_back": len(split.held_back),
         "held_back_saved_at": list(split.held_back[ORDER_COLUMN])
         if ORDER_COLUMN in split.held_back.column_names else None}))
    config = job.folder / "config.json"
    config.write_text(json.dumps({**job_config(current, minutes), **(overrides or {})}))
    argv = ["--dataset", str(data), "--output-dir", str(job.run.path), "--config", str(config), "--init-from",
            str(current), "--preset", "finetune"] + (["--resume"] if resume and job.run.checkpoints() else [])
    command = "python -m training.train " + " ".join(shlex.quote(a) for a in argv)
    job.set_status("training", training=len(split.training), held_back=len(split.held_back))
    run = setup(build_parser().parse_args(argv), command)
    run.stop = lambda: job.cancelled
    try:
        loop(run)
        if job.cancelled:
            job.set_status("cancelled", message="cancelled; the model in use keeps serving")
            return job.status()
        finish(run, build_parser().parse_args(argv), command)
    finally:
        run.accelerator.end_training()
    job.set_status("scoring")
    return promote_if_better(job, versions, current, split)


def promote_if_better(job: Job, versions: ModelVersions, current: Path, split: HeldBack) -> dict[str, Any]:
    """Score the model in use and the new one on the held-back rows; the new one becomes the next version only when
    its mIoU there is higher."""
    from semflow import load_pipeline

    scores = {}
    for name, folder in (("current", current), ("new", job.run.path)):
        pipe = load_pipeline(str(folder), device="cpu")
        pairs = labelled_pairs(split.held_back, "image", "mask", pipe)
        scores[name] = segmentation_scores(pipe, pairs, steps=1).miou
    gain = scores["new"] - scores["current"]
    figures = {"held_back_items": len(split.held_back), "training_items": len(split.training),
               "current_miou": round(scores["current"], 2), "new_miou": round(scores["new"], 2),
               "gain": round(gain, 2)}
    (job.folder / "scores.json").write_text(json.dumps(figures, indent=2))
    if gain <= 0:
        job.set_status("refused", **figures, message=(
            f"kept the model in use: the new one scores {scores['new']:.1f} mIoU on the {len(split.held_back)} "
            f"held-back items against {scores['current']:.1f} ({gain:+.1f})"))
        return job.status()
    version = versions.promote(job.run.path, {**figures, "started_from": str(current)},
                               ignore=(f"{CHECKPOINT_PREFIX}*", LOGS_FOLDER, SAMPLES_FOLDER, LOG_FILE, EVAL_FOLDER,
                                       BEST_FOLDER))
    job.set_status("promoted", **figures, version=version, message=(
        f"promoted {version}: {scores['new']:.1f} mIoU on the {len(split.held_back)} held-back items against "
        f"{scores['current']:.1f} ({gain:+.1f})"))
    return job.status()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m training.learn", description=__doc__.splitlines()[0])
    parser.add_argument("--annotations", required=True,
                        help="the corrected pairs: a dataset folder (image, mask and, to hold the latest back, "
                             f"{ORDER_COLUMN} columns), as the annotation store exports them")
    parser.add_argument("--workspace", required=True, help="where the model versions and jobs live")
    parser.add_argument("--model", default=None, help="the model in use (default: the workspace's current version)")
    parser.add_argument("--minutes", type=float, default=10.0, help="training time budget")
    parser.add_argument("--job", default="job", help="the job's name in the workspace")
    parser.add_argument("--resume", action="store_true", help="go on from the job's newest checkpoint")
    args = parser.parse_args(argv)
    if os.name == "posix" and not os.environ.get("CUDA_VISIBLE_DEVICES"):
        os.nice(10)  # on the CPU, below the server that shares it
    try:
        status = learn(args.annotations, args.workspace, args.model, args.minutes, args.job, args.resume)
    except (ValueError, FileNotFoundError) as error:
        print(f"learning failed: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    print(status.get("message", status["phase"]))
    return status


if __name__ == "__main__":
    main()
