"""Pre-annotate a whole work queue from the command line: every item without a prediction is segmented once, with its
mean confidence, so that opening it in the app is instant and the queue can be sorted worst first.

    python -m app.preannotate SOURCE [--split train] [--model semflow] [--annotations DIR] [--overwrite]

SOURCE is what the app opens as a queue: a folder of images, an `imagefolder`, a dataset folder or a Hub dataset id.
The queue's state is the app's (`$SEMFLOW_ANNOTATIONS_DIR`, or --annotations), so the app shows the progress at once.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import PIL.Image

from semflow.loading import load_model

from .errors import UserError
from .queue_words import progress_line
from .work_queue import open_queue


def predictor(pipe):
    """Photo → (class ids at its size, mean decoding margin): the prediction a queue stores."""

    def predict(image: PIL.Image.Image) -> tuple[np.ndarray, float]:
        out = pipe.segment(image, return_confidence=True)
        return out.ids[0], float(np.mean(out.confidence[0]))

    return predict


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.preannotate", description=__doc__.splitlines()[0])
    parser.add_argument("source", help="folder of images, imagefolder, dataset folder or Hub dataset id")
    parser.add_argument("--split", default=None, help="dataset split (default: train)")
    parser.add_argument("--model", default=None, help="embedded model name, folder or Hub id (default: the app's)")
    parser.add_argument("--annotations", default=None, help="annotation folder (default: $SEMFLOW_ANNOTATIONS_DIR)")
    parser.add_argument("--overwrite", action="store_true", help="predict again items that have a prediction")
    args = parser.parse_args(argv)
    try:
        queue = open_queue(args.source, args.split, args.annotations)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    model = load_model(args.model)
    start = time.perf_counter()

    def report(done: int, total: int, item) -> None:
        print(f"[{done}/{total}] {item.name}  ({(time.perf_counter() - start) / done:.2f} s per item)", flush=True)

    count = queue.preannotate(predictor(model.pipe), progress=report, overwrite=args.overwrite)
    print(f"pre-annotated {count} item(s) with {model.name}; {progress_line(queue.progress())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
