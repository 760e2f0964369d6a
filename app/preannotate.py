"""Pre-annotate a whole work queue from the command line, in one process or sharded over several: every item without a
prediction is segmented once (with its mirror, unless --no-flip), in batches, with its mean confidence, so that opening
it in the app is instant and the queue can be sorted worst first.

    python -m app.preannotate SOURCE [--split train] [--model semflow] [--annotations DIR] [--database URL]
                                     [--overwrite | --refresh] [--batch-size 4] [--no-flip]
    accelerate launch --multi_gpu --num_processes N -m app.preannotate SOURCE ...

SOURCE is what the app opens as a queue: a folder of images, an `imagefolder`, a dataset folder or a Hub dataset id.
The queue's state is the app's (the annotation database: `$SEMFLOW_DATABASE_URL`, else the SQLite file in the
annotation folder, `$SEMFLOW_ANNOTATIONS_DIR` or --annotations), so the app shows the progress at once; an image that
cannot be read is marked there (the app lists it) and skipped.
Under `accelerate launch` the items still to do are split between the processes (on GPUs one per device; on a machine
without CUDA the processes join one CPU group); each stores its own items as it goes, so a killed run resumes where it
stopped and ends with its own count.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import numpy as np
import PIL.Image
from accelerate import PartialState
from accelerate.utils import gather_object

from semflow.loading import cpu_process_group, load_model

from .errors import StorageError, UserError
from .model import model_identity
from .queue_words import progress_line
from .settings import get_settings
from .work_queue import open_queue

DEFAULT_BATCH_SIZE = 4  # images per forward pass: measured with benchmarks/preannotate_speed.py (docs/scale.md)
FLIP = True  # each photo decoded with its mirror (test-time augmentation): twice the compute, a better mask to correct


def predict_batch(pipe, images: Sequence[PIL.Image.Image], flip: bool = FLIP) -> list[tuple[np.ndarray, float]]:
    """Photos → (class ids at each photo's size, mean decoding margin) each, in one forward pass: what a queue stores.
    With `flip`, each photo's mask is the decoding of the mean of its own and its mirror's (the page segments one
    photo without it, at half the latency). A photo's result does not depend on the others in its batch."""
    out = pipe.segment(list(images), batch_size=max(1, len(images)), return_confidence=True, flip=flip)
    return [(ids, float(np.mean(margin))) for ids, margin in zip(out.ids, out.confidence)]


def predictor(pipe):
    """Photo → (class ids at its size, mean decoding margin): the prediction a queue stores."""

    def predict(image: PIL.Image.Image) -> tuple[np.ndarray, float]:
        return predict_batch(pipe, [image])[0]

    return predict


def process_state() -> PartialState:
    """This process's place among those `accelerate launch` started (one process, alone, without it)."""
    return PartialState(cpu=cpu_process_group())


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.preannotate", description=__doc__.splitlines()[0])
    parser.add_argument("source", help="folder of images, imagefolder, dataset folder or Hub dataset id")
    parser.add_argument("--split", default=None, help="dataset split (default: train)")
    parser.add_argument("--model", default=None, help="embedded model name, folder or Hub id (default: the app's)")
    parser.add_argument("--annotations", default=None, help="annotation folder (default: $SEMFLOW_ANNOTATIONS_DIR)")
    parser.add_argument("--database", default=None,
                        help="annotation database URL (default: $SEMFLOW_DATABASE_URL, else the SQLite file in the "
                             "annotation folder)")
    again = parser.add_mutually_exclusive_group()
    again.add_argument("--overwrite", action="store_true", help="predict again items that have a prediction")
    again.add_argument("--refresh", action="store_true",
                       help="predict again the unfinished items whose prediction another model made (after a new "
                            "model version); finished items keep theirs")
    parser.add_argument("--batch-size", type=positive, default=DEFAULT_BATCH_SIZE,
                        help=f"images per forward pass in each process (default {DEFAULT_BATCH_SIZE})")
    parser.add_argument("--no-flip", dest="flip", action="store_false",
                        help="segment each image once, not also its mirror (twice the speed, a slightly worse mask)")
    args = parser.parse_args(argv)
    state = process_state()
    try:
        return preannotate(args, state)
    finally:  # a gloo group left to the interpreter's exit aborts the process (SIGABRT) now and then
        state.destroy_process_group()


def preannotate(args: argparse.Namespace, state: PartialState) -> int:
    """Predict this process's share of the queue's items without a prediction; the exit status."""
    who = f"[process {state.process_index + 1}/{state.num_processes}] " if state.num_processes > 1 else ""
    try:
        settings = get_settings()
        queue = open_queue(args.source, args.split, args.annotations or settings.annotations_dir,
                           args.database or settings.database_url)
    except UserError as error:  # every process opens the same source, so every process stops here
        print(f"{who}error: {error}", file=sys.stderr)
        return 2
    try:
        model = load_model(args.model, device=state.device)
    except Exception as error:  # a missing folder, a Hub id not in the cache, broken weights
        print(f"{who}error: could not load the model {args.model or '(default)'}: {error}", file=sys.stderr)
        return 2

    identity = model_identity(model)
    done_before = set() if args.overwrite else queue.predicted(model=identity if args.refresh else None)
    skipped_before = {item.id for item, _ in queue.problems() if item.index >= 0}  # still in the source
    pending = [item for item in queue.items if item.id not in done_before and item.id not in skipped_before]
    if args.refresh:
        unfinished = set(queue.unfinished())
        pending = [item for item in pending if item.id in unfinished]
    state.wait_for_everyone()  # every process has listed the items to do before any stores one: the same list
    with state.split_between_processes(pending) as mine:
        mine = list(mine)
    start = time.perf_counter()
    done, skipped = 0, 0
    for first in range(0, len(mine), args.batch_size):
        # an item stored since the listing (the app's "Pre-annotate all", another launch) is not predicted again
        batch, images = [], []
        chunk = mine[first : first + args.batch_size]
        stored = set() if args.overwrite else queue.predicted([item.id for item in chunk],
                                                              model=identity if args.refresh else None)
        for item in chunk:
            if item.id in stored:
                continue
            image = queue.read_image(item.id)
            if image is None:  # unreadable: marked in the queue (the app lists it), said here; the rest goes on
                skipped += 1
                print(f"{who}skipped {item.name}: {queue.problem(item.id)}", file=sys.stderr, flush=True)
                continue
            images.append(image)
            batch.append(item)
        results = predict_batch(model.pipe, images, args.flip) if images else []
        try:  # the batch in one transaction: all of it is stored, or none
            queue.set_predictions([(item.id, ids, confidence, image.size)
                                   for item, image, (ids, confidence) in zip(batch, images, results)], identity)
        except StorageError as error:  # a full or read-only disk: what is stored stays, a relaunch goes on from it
            print(f"{who}error: {error}", file=sys.stderr, flush=True)
            return 2
        for item in batch:
            done += 1
            print(f"{who}[{done}/{len(mine)}] {item.name}  ({(time.perf_counter() - start) / done:.2f} s per item)",
                  flush=True)
    if skipped_before and state.is_main_process:
        names = sorted(queue.item(item_id).name for item_id in skipped_before)
        print(f"{who}skipped {len(names)} item(s) marked before as unreadable: {', '.join(names[:10])}"
              + (" …" if len(names) > 10 else ""), file=sys.stderr, flush=True)
    print(f"{who}pre-annotated {done} item(s) with {model.name}; {progress_line(queue.progress())}", flush=True)
    state.wait_for_everyone()
    elapsed = time.perf_counter() - start
    total = sum(gather_object([done])) if state.num_processes > 1 else done
    if state.is_main_process and total:
        print(f"{total} item(s) in {elapsed:.1f} s over {state.num_processes} process(es), batch {args.batch_size}: "
              f"{total / elapsed:.2f} frames per second", flush=True)
    return 1 if skipped or skipped_before else 0


if __name__ == "__main__":
    sys.exit(main())
