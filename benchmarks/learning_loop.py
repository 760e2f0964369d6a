"""A team on a drive the model never trained on: after k corrected frames (the true masks as corrections, saved and
accepted through the app's annotation store and exported with its dataset export), one learning job
(`training.learn`) of a fixed CPU budget; mIoU on the drive's remaining frames before and after, the simulated
annotator's seconds per frame (`benchmarks.annotator`) before and after, and segment latency while the job runs
against idle. Prints Markdown; asserts nothing.

    python -m benchmarks.learning_loop --model runs/study-drives/drive-ce1 [--drive 0006R0] [--k 10 25 50]
        [--minutes 10] [--annotator-frames 4] [--config SETTINGS.json] [--replay SHARE]
        [--out runs/learning-loop]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch

from app.settings import Settings
from app.workspace import Person, Workspace
from semflow import load_pipeline
from semflow.labels import LabelSet
from training.data import load_split
from training.scores import labelled_pairs, segmentation_scores
from training.splits import held_out_splits

from .annotator import Annotator, Timer, frame_indices
from .speed import timed

TEAM = Person("0" * 32, "team")  # the simulated annotator, who reviews too


def drive_frames(dataset: str, drive: str) -> datasets.Dataset:
    """Every labelled frame of `drive`, in the order the drive was shot (its file names)."""
    _, _, rows = held_out_splits(load_split(dataset, "train"), load_split(dataset, "validation"), [drive])
    return rows.select(np.argsort(rows["file_name"], kind="stable"))


def corrections(frames: datasets.Dataset, k: int, folder: Path, labels: LabelSet) -> Path:
    """The first `k` frames corrected by a simulated team through the app's store: the frames as a queue (their
    files, in the order the drive was shot), each frame's true mask saved as its correction and accepted by a
    reviewer, one after another; then the accepted items exported with the store's dataset export, whose `saved_at`
    column the job holds the latest back by. Returns the export's folder."""
    images = folder / "frames"
    images.mkdir(parents=True, exist_ok=True)
    truth = {}
    for index in range(k):
        row = frames[index]
        name = Path(row["file_name"]).stem
        row["image"].convert("RGB").save(images / f"{name}.png")
        truth[name] = np.asarray(row["mask"])
    settings = Settings(annotations_dir=folder / "annotations", queue_root=folder, cache_dir=folder / "cache",
                        reviewers=(TEAM.name,))
    workspace = Workspace(settings)
    location = str(images)
    for item in workspace.queue(location).items:
        workspace.claim(location, None, TEAM, item.id)
        workspace.save(location, None, TEAM, item.id, truth[item.name], started_from="the true mask")
        workspace.accept(location, None, TEAM, item.id)
    return workspace.write_dataset(location, None, labels, folder / "pairs", accepted_only=True).folder


def annotator_seconds(pipe: Any, frames: datasets.Dataset, count: int, max_seconds: float = 900.0) -> float:
    """Mean simulated seconds (fill tools allowed) to bring `pipe`'s masks of `count` frames to 95% agreement."""
    seconds, timer = [], Timer()
    for index in frame_indices(count, len(frames)):
        row = frames[index]
        photo, truth = np.asarray(row["image"].convert("RGB")), np.asarray(row["mask"])
        predicted = pipe.segment(row["image"]).ids[0]
        annotator = Annotator(photo, truth, pipe.labels.ignore_id, True, timer, max_seconds)
        seconds.append(annotator.run(predicted.copy(), 0.95, index).seconds)
    return statistics.mean(seconds)


def measure(model: str, frames: datasets.Dataset, k: int, minutes: float, out: Path,
            annotator_frames: int, config: Path | None = None, replay: float | None = None) -> dict[str, Any]:
    """One k: the job on the first k frames (corrected through the store), scored on the drive's frames after
    them."""
    remaining = frames.select(range(k, len(frames)))
    before = load_pipeline(model, device="cpu")
    before.set_progress_bar_config(disable=True)
    pairs = labelled_pairs(remaining, "image", "mask", before)
    shutil.rmtree(out / f"k{k}", ignore_errors=True)
    pairs_dir = corrections(frames, k, out / f"k{k}" / "team", before.labels)
    workspace = out / f"k{k}" / "workspace"
    command = [sys.executable, "-m", "training.learn", "--annotations", str(pairs_dir), "--workspace",
               str(workspace), "--model", model, "--minutes", str(minutes)]
    command += ["--config", str(config)] if config else []
    command += ["--replay", str(replay)] if replay is not None else []
    image = pairs[0][0]
    idle = timed(lambda: before.segment(image), 5, warmup=1)
    started = time.perf_counter()
    log = out / f"k{k}" / "job.log"  # a file, not a pipe: a pipe nobody reads while the job runs fills and stops it
    with log.open("w") as output:
        job = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, text=True)
    during = []
    while job.poll() is None:  # the page's segmenting, while the job trains beside it
        during += timed(lambda: before.segment(image), 1, warmup=0)
        time.sleep(2.0)
    output = log.read_text(errors="replace")
    job_s = time.perf_counter() - started
    status = json.loads((workspace / "jobs" / "job" / "status.json").read_text())
    after_folder = workspace / "jobs" / "job" / "run"
    after = load_pipeline(str(after_folder), device="cpu") if (after_folder / "model_index.json").is_file() else None
    result = {"k": k, "remaining_frames": len(pairs), "minutes": minutes, "job_wall_s": job_s,
              "job_phase": status["phase"], "job_message": status.get("message", output[-500:]),
              "held_back": status.get("held_back"), "miou_before": segmentation_scores(before, pairs, steps=1).miou,
              "segment_idle_s": statistics.median(idle),
              "segment_during_job_s": statistics.median(during) if during else None}
    if after is not None:
        after.set_progress_bar_config(disable=True)
        result["miou_after"] = segmentation_scores(after, pairs, steps=1).miou
    if annotator_frames:
        result["annotator_s_before"] = annotator_seconds(before, remaining, annotator_frames)
        if after is not None:
            result["annotator_s_after"] = annotator_seconds(after, remaining, annotator_frames)
    print(json.dumps(result), flush=True)
    return result


def to_markdown(rows: list[dict[str, Any]], drive: str, model: str, command: str) -> str:
    def cell(value: Any, digits: int = 1) -> str:
        return "–" if value is None else f"{value:.{digits}f}"

    lines = [f"A team on drive `{drive}`, which `{model}` never trained on: after k corrected frames, one learning "
             "job; mIoU on the drive's frames after the first k, before and after the job.", "",
             "| k corrected | job budget (min) | job wall (s) | job's decision | mIoU before | mIoU after | gain | "
             "annotator s / frame before → after | segment s idle / during the job |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        gain = r["miou_after"] - r["miou_before"] if "miou_after" in r else None
        lines.append(f"| {r['k']} | {r['minutes']:g} | {r['job_wall_s']:.0f} | {r['job_phase']} | "
                     f"{r['miou_before']:.1f} | {cell(r.get('miou_after'))} | {cell(gain)} | "
                     f"{cell(r.get('annotator_s_before'), 0)} → {cell(r.get('annotator_s_after'), 0)} | "
                     f"{r['segment_idle_s']:.3f} / {cell(r['segment_during_job_s'], 3)} |")
    lines += ["", "The job trains on the first k frames except the latest fifth (at least 5), held back to decide the "
                  "promotion; the figures here are on the frames after the first k, which no job saw.",
              "", f"Reproduce: `{command}`"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.learning_loop", description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a model folder trained without --drive")
    parser.add_argument("--dataset", default="../shared/datasets/camvid")
    parser.add_argument("--drive", default="0006R0")
    parser.add_argument("--k", type=int, nargs="+", default=[10, 25, 50])
    parser.add_argument("--minutes", type=float, default=10.0, help="each job's training time budget")
    parser.add_argument("--annotator-frames", type=int, default=4, help="frames the simulated annotator corrects")
    parser.add_argument("--config", type=Path, help="a JSON file of training settings over the job's own")
    parser.add_argument("--replay", type=float, help="the job's replay share (default: the job's own)")
    parser.add_argument("--out", type=Path, default=Path("runs/learning-loop"))
    args = parser.parse_args(argv)
    command = "python -m benchmarks.learning_loop " + " ".join(argv if argv is not None else sys.argv[1:])
    torch.set_num_threads(1)  # the page's server thread; the job has the other core
    trained_drives = json.loads((Path(args.model) / "train_config.json").read_text()).get("held_out_drives", [])
    if args.drive not in trained_drives:
        raise SystemExit(f"{args.model} was not trained with {args.drive} held out (its held-out drives: "
                         f"{trained_drives}); choose a model that never saw the drive")
    frames = drive_frames(args.dataset, args.drive)
    rows = [measure(args.model, frames, k, args.minutes, args.out, args.annotator_frames, args.config,
                    args.replay) for k in args.k]
    markdown = to_markdown(rows, args.drive, args.model, command)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "learning_loop.json").write_text(json.dumps({"command": command, "rows": rows,
                                                             "markdown": markdown}, indent=2))
    print(markdown)
    return rows


if __name__ == "__main__":
    main()
