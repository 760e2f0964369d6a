"""Learning from a team's corrections: one fine-tuning job on an annotation set's corrected pairs except a held-back
share of the latest, which scores the model in use and the new one; the new one becomes the workspace's next model
version only when it is better there. Progress, cancel and resume for a page that runs the job in its own process.

    python -m training.learn --annotations DATASET --workspace DIR [--model M] [--minutes 10] [--job NAME] [--resume]
        [--replay 1.0] [--config FILE]

Beside the corrections, the job replays as many frames of the data the model in use trained on (where that data is on
this machine), so that a few frames of one drive do not make it forget what they do not show.
"""

from __future__ import annotations

import argparse
import errno
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
import torch

from semflow import learning_job
from semflow.learning_job import CANCEL_FILE, STATUS_FILE  # noqa: F401  (the job folder's names, for its readers)
from semflow.loading import resolve_source
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
from .splits import select_drives

HELD_BACK_SHARE, MIN_HELD_BACK, MIN_TRAINING = 0.2, 5, 5
ORDER_COLUMN = "saved_at"  # when each pair was saved (ISO 8601): the latest are held back
SPLIT_FILE, RUN_FOLDER = "split.json", "run"
# What a job keeps of the model's own recipe: its terms and formulation; these change for a short fine-tune on few
# frames (the cycle term's frozen segmenter would double a step's cost).
FINE_TUNE = {"learning_rate": 2e-4, "warmup_steps": 10, "min_learning_rate_ratio": 0.1, "cycle_weight": 0.0,
             "adversarial_weight": 0.0, "held_out_drives": [], "validation_split": None, "save_best": False,
             "checkpointing_steps": 25, "checkpoints_total_limit": 1, "log_every": 5, "sample_images": 0,
             "num_workers": 0, "batch_size": 4}
REPLAY_SHARE = 1.0  # frames of the model in use's own training data replayed per corrected training item: a fine-tune
# on a few frames of one drive otherwise forgets what they do not show (a class absent from them)
SECONDS_PER_STEP_GUESS = 1.5  # sets the schedule's length before a step is timed (a step of 4 frames took 1.2-1.4 s
# on 2 CPU cores, beside a server segmenting); the time budget ends the run
PROGRESS_SECONDS = 1.0  # how often a training job writes its step, loss and time left into its status
BUSY_EXIT, FAILED_EXIT = 3, 2  # the exit status of a job refused (another one runs) and of one that failed


class JobRunning(RuntimeError):
    """Another job of the workspace runs now (one job per workspace)."""


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


def replay_rows(recipe: dict[str, Any], count: int, seed: int = 0) -> datasets.Dataset | None:
    """`count` frames (or all there are, if fewer) drawn from the data a model trained on, as its `recipe` (its
    ``train_config.json``) names it: the dataset and split, less the held-out drives, as ``image`` and ``mask`` rows
    (for a version a job made: that job's corrections and replayed frames); None where that data is not on this
    machine (a Space, another computer) or maps its labels (``label_map``)."""
    dataset = recipe.get("dataset")
    if not count or not dataset or recipe.get("label_map") or recipe.get("streaming") or not os.path.exists(dataset):
        return None
    try:
        rows = load_split(dataset, recipe.get("train_split") or "train", recipe.get("dataset_config"))
        if recipe.get("held_out_drives"):
            rows = select_drives(rows, recipe["held_out_drives"], keep=False)
        columns = {recipe.get("image_column") or "image": "image", recipe.get("mask_column") or "mask": "mask"}
        rows = rows.select_columns(list(columns)).rename_columns({k: v for k, v in columns.items() if k != v})
    except (OSError, ValueError) as error:
        print(f"no replay: the training data of the model in use does not load ({failure(error)})", file=sys.stderr)
        return None
    return rows.shuffle(seed=seed).select(range(min(count, len(rows))))


def with_replay(training: datasets.Dataset, replay: datasets.Dataset | None) -> datasets.Dataset:
    """The corrected training rows followed by the replayed ones (their other columns empty)."""
    if replay is None or len(replay) == 0:
        return training
    replay = replay.cast_column("image", training.features["image"]).cast_column("mask", training.features["mask"])
    for name in training.column_names:
        if name not in replay.column_names:
            replay = replay.add_column(name, [None] * len(replay), feature=training.features[name])
    return datasets.concatenate_datasets([training, replay.select_columns(training.column_names)])


class Job(learning_job.Job):
    """One learning job's folder (`semflow.learning_job.Job`: status, cancel flag) with its run (checkpoints, log),
    data and split."""

    def __init__(self, folder: str | os.PathLike) -> None:
        super().__init__(folder)
        self.run = RunFolder(self.folder / RUN_FOLDER)


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


def job_config(recipe: dict[str, Any], minutes: float) -> dict[str, Any]:
    """The fine-tune's config: the model's own `recipe` (its ``train_config.json``) with `FINE_TUNE` over it."""
    keep = ("formulation", "prediction", "cross_entropy_weight", "perceptual_weight", "class_balanced_loss",
            "class_weight_power", "image_end_probability", "photometric", "crop", "scale_range", "hflip",
            "encoder_learning_rate_ratio", "ema_decay", "t_distribution")
    steps = max(1, int(60 * minutes / SECONDS_PER_STEP_GUESS))
    return {**{key: recipe[key] for key in keep if key in recipe}, **FINE_TUNE, "max_minutes": minutes,
            "max_steps": steps, "validation_steps": steps}


def learn(annotations: str, workspace: str | os.PathLike, model: str | None = None, minutes: float = 10.0,
          job_name: str = "job", resume: bool = False, overrides: dict[str, Any] | None = None,
          replay_share: float = REPLAY_SHARE) -> dict[str, Any]:
    """Run (or resume) one learning job of `workspace`: it fine-tunes the model in use (the workspace's current
    version; before the first, `model`: the base model, default the default model); returns its final status
    (promoted, refused or cancelled). `overrides` go over the job's config. While it runs it holds the workspace's
    lock; a job that raises is recorded as failed, with why.

    Raises:
        JobRunning: another job of the workspace runs now (nothing of it is touched).
        ValueError: too few corrected items, or `model` is not the workspace's base model.
    """
    versions = ModelVersions(workspace)
    lock = learning_job.WorkspaceLock(versions.root)
    if not lock.acquire():
        raise JobRunning(f"another learning job runs in the workspace {versions.root} now; wait for it to end, or "
                         f"cancel it")
    job = Job(versions.root / learning_job.JOBS_FOLDER / job_name)
    try:
        return _learn(job, versions, annotations, model, minutes, resume, overrides, replay_share)
    except Exception as error:
        try:
            job.set_status(learning_job.FAILED, message=failure(error))
        except OSError:  # a full disk may refuse the status too; the lock going says the job stopped
            pass
        raise
    finally:
        lock.release()


def _learn(job: Job, versions: ModelVersions, annotations: str, model: str | None, minutes: float, resume: bool,
           overrides: dict[str, Any] | None, replay_share: float) -> dict[str, Any]:
    from .train import build_parser, finish, loop, setup

    base = resolve_source(model)
    if versions.base is not None and base.name != versions.base and (model is not None or versions.current is None):
        raise ValueError(f"this workspace holds versions of {versions.base}, not of {base.name}: name that model "
                         f"(--model) or use another workspace")
    current = versions.current_folder() or base.folder
    if not resume:
        shutil.rmtree(job.folder, ignore_errors=True)
    started = {} if resume and job.status().get("started") else {"started": time.time()}
    job.set_status(learning_job.PREPARING, fresh=not resume, **started, pid=os.getpid(), model=str(current),
                   base=base.name, minutes=minutes, annotations=str(annotations),
                   **({"resumed": time.time()} if resume else {}))
    rows = load_split(annotations, "train")
    split = held_back_split(rows)
    recipe = RunFolder(current).read(CONFIG_FILE) or {}  # the model in use's train_config.json
    replay = replay_rows(recipe, math.ceil(replay_share * len(split.training)))
    replayed = 0 if replay is None else len(replay)
    id2label = Path(annotations) / "id2label.json"
    data = write_dataset(HeldBack(with_replay(split.training, replay), split.held_back), job.folder / "data",
                         id2label if id2label.is_file() else None)
    (job.folder / SPLIT_FILE).write_text(json.dumps(
        {"training": len(split.training), "held_back": len(split.held_back), "replayed": replayed,
         "held_back_saved_at": [str(when) for when in split.held_back[ORDER_COLUMN]]
         if ORDER_COLUMN in split.held_back.column_names else None}))
    config = {**job_config(recipe, minutes), **(overrides or {})}
    (job.folder / "config.json").write_text(json.dumps(config))
    argv = ["--dataset", str(data), "--output-dir", str(job.run.path), "--config", str(job.folder / "config.json"),
            "--init-from", str(current), "--preset", "finetune"] + (["--resume"] if resume and job.run.checkpoints()
                                                                    else [])
    command = "python -m training.train " + " ".join(shlex.quote(a) for a in argv)
    job.set_status(learning_job.TRAINING, training=len(split.training), held_back=len(split.held_back),
                   replayed=replayed)
    run = setup(build_parser().parse_args(argv), command)
    run.stop = lambda: job.cancelled
    run.on_step = _progress(job, config["max_steps"], 60 * minutes)
    try:
        loop(run)
        if job.cancelled:
            job.set_status(learning_job.CANCELLED, step=run.step, message=(
                f"cancelled at step {run.step}; the model in use keeps serving (resume goes on from there)"))
            return job.status()
        finish(run, build_parser().parse_args(argv), command)
    finally:
        run.accelerator.end_training()
    job.set_status(learning_job.SCORING, step=run.step)
    return promote_if_better(job, versions, current, split, base=base.name, data=str(annotations))


def _progress(job: Job, max_steps: int, budget_s: float):
    """What the loop tells after each step: the step, its loss and the time left (the budget's, or the steps' at
    their pace so far, whichever ends first), written into the job's status at most every `PROGRESS_SECONDS`."""
    written = [0.0]

    def on_step(step: int, loss: float, train_s: float) -> None:
        now = time.monotonic()
        if now - written[0] < PROGRESS_SECONDS and step < max_steps:
            return
        written[0] = now
        left = min(max(0.0, budget_s - train_s), max(0, max_steps - step) * train_s / max(step, 1))
        job.set_status(learning_job.TRAINING, step=step, max_steps=max_steps, loss=round(float(loss), 5),
                       seconds_left=round(left, 1))

    return on_step


def failure(error: BaseException) -> str:
    """Why a job failed, in a sentence: a full disk says so and what to do; a person's mistake is its own sentence."""
    text = str(error).strip()
    if (isinstance(error, OSError) and error.errno == errno.ENOSPC) or "No space left on device" in text:
        where = f" (writing {error.filename})" if isinstance(error, OSError) and error.filename else ""
        return f"the disk is full{where}: free some space, then resume the job"
    if isinstance(error, (ValueError, FileNotFoundError)):
        return text or type(error).__name__
    return f"{type(error).__name__}: {(text.splitlines() or [''])[0][:300]}"


def promote_if_better(job: Job, versions: ModelVersions, current: Path, split: HeldBack, base: str | None = None,
                      data: str | None = None) -> dict[str, Any]:
    """Score the model in use and the new one on the held-back rows; the new one becomes the next version (of `base`,
    trained on `data`) only when its mIoU there is higher."""
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
    if not (math.isfinite(scores["current"]) and math.isfinite(scores["new"])):
        job.set_status(learning_job.REFUSED, **figures, message=(
            f"kept the model in use: the {len(split.held_back)} held-back items have no labelled pixel to score the "
            f"models on"))
        return job.status()
    if gain <= 0:
        job.set_status(learning_job.REFUSED, **figures, message=(
            f"kept the model in use: the new one scores {scores['new']:.1f} mIoU on the {len(split.held_back)} "
            f"held-back items against {scores['current']:.1f} ({gain:+.1f})"))
        return job.status()
    version = versions.promote(job.run.path, {**figures, "started_from": str(current), "job": job.name,
                                              **({"data": data} if data else {})},
                               ignore=(f"{CHECKPOINT_PREFIX}*", LOGS_FOLDER, SAMPLES_FOLDER, LOG_FILE, EVAL_FOLDER,
                                       BEST_FOLDER), base=base)
    job.set_status(learning_job.PROMOTED, **figures, version=version, message=(
        f"promoted {version}: {scores['new']:.1f} mIoU on the {len(split.held_back)} held-back items against "
        f"{scores['current']:.1f} ({gain:+.1f})"))
    return job.status()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m training.learn", description=__doc__.splitlines()[0])
    parser.add_argument("--annotations", required=True,
                        help="the corrected pairs: a dataset folder (image, mask and, to hold the latest back, "
                             f"{ORDER_COLUMN} columns), as the annotation store exports them")
    parser.add_argument("--workspace", required=True, help="where the model versions and jobs live")
    parser.add_argument("--model", default=None,
                        help="the base model: what the job starts from before the workspace's first version (then "
                             "the version in use); default: the default model")
    parser.add_argument("--minutes", type=float, default=10.0, help="training time budget")
    parser.add_argument("--job", default="job", help="the job's name in the workspace")
    parser.add_argument("--resume", action="store_true",
                        help="go on from the job's newest checkpoint (a cancelled job too: its cancel flag goes)")
    parser.add_argument("--replay", type=float, default=REPLAY_SHARE,
                        help="frames of the model's own training data (where it is on this machine) trained on per "
                             "corrected item, against forgetting; 0: none")
    parser.add_argument("--config", type=Path, default=None,
                        help="a JSON file of training settings over the job's own, e.g. {\"learning_rate\": 1e-4}")
    args = parser.parse_args(argv)
    if os.name == "posix" and not torch.cuda.is_available():
        os.nice(10)  # on the CPU, below the server that shares it
    try:
        overrides = json.loads(args.config.read_text()) if args.config else None
        if args.resume:
            Job(Path(args.workspace) / learning_job.JOBS_FOLDER / args.job).clear_cancel()
        status = learn(args.annotations, args.workspace, args.model, args.minutes, args.job, args.resume, overrides,
                       args.replay)
    except JobRunning as error:
        print(f"learning refused: {error}", file=sys.stderr)
        raise SystemExit(BUSY_EXIT) from None
    except (ValueError, OSError) as error:
        print(f"learning failed: {failure(error)}", file=sys.stderr)
        raise SystemExit(FAILED_EXIT) from None
    print(status.get("message", status["phase"]))
    return status


if __name__ == "__main__":
    main()
