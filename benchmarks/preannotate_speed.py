"""Pre-annotation throughput on this machine: frames per second of `python -m app.preannotate` over a folder of
CamVid validation frames, for 1 process (1 and 2 threads) and 2 processes of 1 thread (`accelerate launch --multi_gpu
--num_processes 2`), at batch 1 and at the best batch; and, in one process, what batching, channels-last weights,
decoding each frame with its mirror (the command's default) and (with --compile) `torch.compile` do to the forward
passes; with --queue-items, what storing a prediction costs in queues of those lengths. Prints Markdown tables;
asserts nothing.

    python -m benchmarks.preannotate_speed [--frames 16] [--batches 1 2 4 8] [--model symmetric] [--compile]
                                           [--queue-items 1000 20000] [--only-storage] [--no-flip]

The command-line figures are the command's own last line (items over the seconds between the processes' start and end
barriers: the model is loaded, the items listed and split before the clock starts); each configuration writes its own
annotation folder in a temporary folder, so every run predicts every frame.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import PIL.Image
import torch

from app.preannotate import DEFAULT_BATCH_SIZE, predict_batch
from semflow import load_pipeline
from tests.launch_helpers import launch_command

THROUGHPUT = re.compile(r"over (\d+) process\(es\), batch (\d+): ([\d.]+) frames per second")


def write_frames(dataset: str, count: int, folder: Path) -> Path:
    """The first `count` validation frames of `dataset` as PNG files."""
    import datasets

    split = datasets.load_dataset(dataset, split="validation")
    folder.mkdir(parents=True, exist_ok=True)
    for row in range(min(count, len(split))):
        split[row]["image"].convert("RGB").save(folder / f"frame{row:03d}.png")
    return folder


def command_line(frames: Path, annotations: Path, processes: int, threads: int, batch: int,
                 model: str | None, flip: bool) -> float:
    """Frames per second of one run of the command (the figure it prints)."""
    args = [str(frames), "--annotations", str(annotations), "--batch-size", str(batch)] + ([] if flip else
                                                                                          ["--no-flip"])
    if model:
        args += ["--model", model]
    if processes > 1:  # the tests' `accelerate launch --multi_gpu` command, on a rendezvous port of theirs
        command, env = launch_command(processes, "app.preannotate", *args)
    else:
        command, env = [sys.executable, "-m", "app.preannotate", *args], {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    env["OMP_NUM_THREADS"] = str(threads)
    run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=3600)
    found = THROUGHPUT.search(run.stdout)
    if run.returncode != 0 or found is None:
        raise RuntimeError(f"{' '.join(command)} failed ({run.returncode}):\n{run.stdout[-2000:]}\n"
                           f"{run.stderr[-2000:]}")
    return float(found.group(3))


def in_process(pipe, images: list[PIL.Image.Image], batch: int, repeats: int = 1, flip: bool = False) -> float:
    """Frames per second of `predict_batch` over `images` in batches of `batch` (after one warm-up batch), each frame
    segmented once (or with its mirror: `flip`)."""
    predict_batch(pipe, images[:batch], flip)
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        for first in range(0, len(images), batch):
            predict_batch(pipe, images[first : first + batch], flip)
        best = max(best, len(images) / (time.perf_counter() - start))
    return best


def storing(items: int, batch: int, folder: Path, stores: int = 40) -> float:
    """Milliseconds per item of storing `stores` predictions in a queue of `items` (tiny images: only the storage
    counts), `batch` items per `set_predictions` (one transaction each)."""
    from app.work_queue import open_queue

    images = folder / f"images-{items}"
    if not images.is_dir():
        images.mkdir(parents=True)
        tiny = PIL.Image.new("RGB", (8, 8))
        for i in range(items):
            tiny.save(images / f"{i:07d}.png")
    queue = open_queue(images, root=folder / f"annotations-{items}-{batch}")
    ids = np.zeros((8, 8), np.uint8)
    start = time.perf_counter()
    for first in range(0, stores, batch):
        queue.set_predictions([(item.id, ids, 0.5, (8, 8)) for item in queue.items[first : first + batch]])
    return (time.perf_counter() - start) / stores * 1000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.preannotate_speed",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="../shared/datasets/camvid")
    parser.add_argument("--frames", type=int, default=16, help="validation frames to pre-annotate in each run")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--model", default=None, help="model name, folder or Hub id (default: the app's)")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (minutes of compiling)")
    parser.add_argument("--queue-items", type=int, nargs="*", default=[],
                        help="also time storing predictions in queues of these lengths (batch 1 and the best batch)")
    parser.add_argument("--only-storage", action="store_true", help="time only the storing (--queue-items)")
    parser.add_argument("--no-flip", dest="flip", action="store_false",
                        help="run the command with --no-flip (each frame segmented once)")
    args = parser.parse_args(argv)
    if args.only_storage:
        with tempfile.TemporaryDirectory(prefix="preannotate-speed-") as scratch:
            print_storage(args.queue_items, sorted(set(args.batches)), Path(scratch))
        return
    with tempfile.TemporaryDirectory(prefix="preannotate-speed-") as scratch:
        frames = write_frames(args.dataset, args.frames, Path(scratch) / "frames")
        images = [PIL.Image.open(path).convert("RGB") for path in sorted(frames.glob("*.png"))]
        count = len(images)

        # in one process, one thread: what batching, the memory format and compiling do to the forward passes
        torch.set_num_threads(1)
        pipe = load_pipeline(args.model, device="cpu")
        variants = {f"batch {b}": in_process(pipe, images, b) for b in args.batches}
        best_batch = max(args.batches, key=lambda b: variants[f"batch {b}"])
        pipe.unet.to(memory_format=torch.channels_last)
        variants[f"batch {best_batch}, channels-last"] = in_process(pipe, images, best_batch)
        pipe.unet.to(memory_format=torch.contiguous_format)
        variants[f"batch {best_batch}, each frame and its mirror (pre-annotation's default)"] = in_process(
            pipe, images, best_batch, flip=True)
        if args.compile:
            start = time.perf_counter()
            pipe.unet = torch.compile(pipe.unet)
            predict_batch(pipe, images[:best_batch])
            compiling = time.perf_counter() - start
            variants[f"batch {best_batch}, torch.compile ({compiling:.0f} s to compile)"] = in_process(
                pipe, images, best_batch)
        del pipe

        # the command itself: processes x threads, batch 1 and the best batch
        runs = {}
        for processes, threads in ((1, 1), (1, 2), (2, 1)):
            for batch in sorted({1, best_batch}):
                name = f"{processes}-{threads}-{batch}"
                runs[processes, threads, batch] = command_line(frames, Path(scratch) / name, processes, threads,
                                                               batch, args.model, args.flip)
                print(f"{processes} process(es) x {threads} thread(s), batch {batch}: "
                      f"{runs[processes, threads, batch]:.2f} frames/s", flush=True)

    command = "python -m benchmarks.preannotate_speed " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"\n`{command}` on {os.cpu_count()} CPU cores, {count} CamVid validation frames (480x360), model "
          f"{args.model or 'the app default'}, torch {torch.__version__}; the command "
          f"{'with each frame and its mirror' if args.flip else 'with --no-flip'}:\n")
    print("| in one process, 1 thread | frames / s |\n| --- | --- |")
    for name, fps in variants.items():
        print(f"| {name} | {fps:.2f} |")
    batches = sorted({1, best_batch})
    print("\n| `python -m app.preannotate` | " + " | ".join(f"batch {b}" for b in batches) + " |\n| --- |"
          + " --- |" * len(batches))
    for processes, threads in ((1, 1), (1, 2), (2, 1)):
        launch = "accelerate launch --multi_gpu, " if processes > 1 else ""
        cells = " | ".join(f"{runs[processes, threads, batch]:.2f}" for batch in batches)
        print(f"| {launch}{processes} process(es) x {threads} thread(s) | {cells} |")
    print(f"\nThe command's default batch is {DEFAULT_BATCH_SIZE}; the best batch here was {best_batch}.")
    if args.queue_items:
        with tempfile.TemporaryDirectory(prefix="preannotate-speed-") as scratch:
            print_storage(args.queue_items, sorted({1, best_batch}), Path(scratch))


def print_storage(lengths: list[int], batches: list[int], folder: Path) -> None:
    print("\n| queue length | " + " | ".join(f"ms per stored item, batch {b}" for b in batches) + " |")
    print("| --- |" + " --- |" * len(batches))
    for items in lengths:
        print(f"| {items} | " + " | ".join(f"{storing(items, b, folder):.0f}" for b in batches) + " |", flush=True)


if __name__ == "__main__":
    main()
