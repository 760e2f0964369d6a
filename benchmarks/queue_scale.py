"""What a work queue's operations cost as it grows: milliseconds per save, claim, next and progress in queues of 100,
10 000 and 100 000 items, in the annotation database (SQLite in a temporary annotation folder by default, or
--database URL). Prints a Markdown table; asserts nothing.

    python -m benchmarks.queue_scale [--items 100 10000 100000] [--operations 100] [--database URL] [--out FILE]

Each queue is a source of N frames of CamVid's size (480x360; the four example photos of the app, cycled: only the
store is timed) opened as the app opens it, then pre-annotated in batches of 500 (the example masks, cycled, each with
its own confidence, so worst first has an order). Then `--operations` times, as annotators go: *claim* takes the next
unfinished item worst first (`claim_next`), *save* stores a corrected 480x360 mask as a new version (a PNG, a
transaction flushed to disk), *next* finds the next unfinished item after it (`next_id`), *progress* reads the counts.
Each row gives the median and the 95th percentile. Before measuring, the setup encodes the four masks once and reuses
the bytes (the setup's 100 000 PNG encodings would only take time), and waits until its writes are on the disk; the
timed saves encode every mask and flush every commit to disk.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import PIL.Image

from app import work_queue
from app.examples import PHOTOS
from app.queue_sources import QueueItem
from app.store.database import close_databases, database_url, open_database
from app.work_queue import WORST_FIRST, WorkQueue
from benchmarks.report import publish

SIZE = (480, 360)


class GeneratedFrames:
    """A queue source of `count` frames (`queue_sources.Source`): the example photos, cycled."""

    def __init__(self, count: int, key: str) -> None:
        self.items = [QueueItem(f"frame{i:07d}.png", f"frame{i:07d}", i) for i in range(count)]
        self.key, self.title = key, f"frames-{count}"
        self.photos = [PIL.Image.open(path).convert("RGB") for path in sorted(PHOTOS.glob("*.png"))]

    def image(self, item: QueueItem) -> PIL.Image.Image:
        return self.photos[item.index % len(self.photos)]


def example_masks() -> list[np.ndarray]:
    return [np.asarray(PIL.Image.open(path)) for path in sorted((PHOTOS / "masks").glob("*.png"))]


def settle(queue: WorkQueue) -> None:
    """Before timing: the setup's writes (hundreds of MB at 100 000 items) on the disk, so that the disk is not still
    flushing them while the operations are timed (a SQLite queue's write-ahead log folded into its file too)."""
    if queue.db.dialect == "sqlite":
        with queue.db.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    os.sync()


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return (time.perf_counter() - start) * 1000


def measure(count: int, operations: int, url: str, root: Path) -> dict:
    """Open a queue of `count` frames, pre-annotate it, then time `operations` claims, saves, nexts and progresses."""
    masks = example_masks()
    start = time.perf_counter()
    queue = WorkQueue(GeneratedFrames(count, f"benchmark:{count}:{time.time()}"), open_database(url), root)
    opened = time.perf_counter() - start
    encoded = {ids.tobytes(): work_queue._png(ids) for ids in masks}
    real_png = work_queue._png
    work_queue._png = lambda ids: encoded.get(ids.tobytes()) or real_png(ids)  # the setup's masks: encoded once
    try:
        rng = np.random.default_rng(0)
        start = time.perf_counter()
        for first in range(0, count, 500):
            queue.set_predictions([(item.id, masks[item.index % len(masks)], float(rng.uniform(0.3, 0.9)), SIZE)
                                   for item in queue.items[first : first + 500]], model="benchmark@0")
        preannotated = time.perf_counter() - start
    finally:
        work_queue._png = real_png
    settle(queue)
    times: dict[str, list[float]] = {"save": [], "claim": [], "next": [], "progress": []}
    current = None
    for k in range(operations):
        owner = f"annotator-{k % 16}"
        claims = []
        times["claim"].append(timed(lambda: claims.append(queue.claim_next(owner, current, sort=WORST_FIRST))))  # noqa: B023
        item = claims[0].item.id
        corrected = masks[k % len(masks)].copy()
        corrected[: 40 + k % 100, :] = 0  # a person's correction: every save's mask differs
        times["save"].append(timed(lambda: queue.save(item, corrected, owner, started_from="benchmark@0",  # noqa: B023
                                                      seconds=30.0)))
        times["next"].append(timed(lambda: queue.next_id(item, sort=WORST_FIRST, unfinished=True)))  # noqa: B023
        times["progress"].append(timed(queue.progress))
        current = item
    assert queue.progress().done == operations
    return {"items": count, "open_s": opened, "preannotate_s": preannotated,
            **{f"{name}_ms": statistics.median(values) for name, values in times.items()},
            **{f"{name}_p95_ms": float(np.percentile(values, 95)) for name, values in times.items()}}


def table(rows: list[dict], command: str, database: str) -> str:
    lines = [f"`{command}` ({database}; {rows[0]['operations']} operations of each kind per queue, milliseconds: "
             f"median / 95th percentile)", "",
             "| items | save | claim | next | progress | open the queue (s) | pre-annotate it (s) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        cells = [f"{row[f'{name}_ms']:.1f} / {row[f'{name}_p95_ms']:.1f}" for name in ("save", "claim", "next",
                                                                                          "progress")]
        lines.append(f"| {row['items']} | {' | '.join(cells)} | {row['open_s']:.1f} | {row['preannotate_s']:.1f} |")
    first, last = rows[0], rows[-1]
    lines += ["", f"save at {last['items']} items / at {first['items']}: "
                  f"{last['save_ms'] / first['save_ms']:.2f}x; claim {last['claim_ms'] / first['claim_ms']:.2f}x; "
                  f"next {last['next_ms'] / first['next_ms']:.2f}x; progress "
                  f"{last['progress_ms'] / first['progress_ms']:.2f}x"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.queue_scale", description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, nargs="+", default=[100, 10_000, 100_000])
    parser.add_argument("--operations", type=int, default=100, help="claims, saves, nexts and progresses per queue")
    parser.add_argument("--database", default=None, help="a database URL (default: SQLite in a temporary folder)")
    parser.add_argument("--out", type=Path, default=None, help="also write the results here as JSON")
    args = parser.parse_args(argv)
    if min(args.items) < args.operations:
        parser.error(f"--operations ({args.operations}) may not exceed the smallest queue ({min(args.items)})")
    command = "python -m benchmarks.queue_scale " + " ".join(argv if argv is not None else sys.argv[1:])
    rows = []
    with tempfile.TemporaryDirectory(prefix="queue-scale-") as scratch:
        for count in args.items:
            root = Path(scratch) / f"annotations-{count}"
            url = database_url(root, args.database)
            rows.append({**measure(count, args.operations, url, root), "operations": args.operations})
            print(f"{count} items: save {rows[-1]['save_ms']:.1f} ms, claim {rows[-1]['claim_ms']:.1f} ms, next "
                  f"{rows[-1]['next_ms']:.1f} ms, progress {rows[-1]['progress_ms']:.1f} ms", flush=True)
            close_databases()
    database = "PostgreSQL" if args.database and args.database.startswith("postgresql") else \
        "SQLite in the annotation folder"
    return publish({"rows": rows, "command": command, "markdown": table(rows, command.strip(), database)}, args.out)


if __name__ == "__main__":
    main()
