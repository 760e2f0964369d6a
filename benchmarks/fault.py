"""Fault test of the annotation folder: forked child processes save through `AnnotationStore` and are killed with
SIGKILL at random moments; then the store recovers and the folder is checked. Prints figures; exits 1 if a check
fails. Linux / macOS (it forks).

    python -m benchmarks.fault [--kills 16] [--concurrency 2] [--max-delay 1.0] [--mid-write 0.5] [--size 640x480]
                               [--seed 0] [--root DIR] [--json]

Checks: every save a child acknowledged (its `save` returned) has its row and its exact image and mask; no temporary
file and no image or mask without a row is left after `recover()`; `datasets.load_dataset("imagefolder")` loads the
folder with one example per row.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import PIL.Image

from app.annotations import QUARANTINE, TEMP_SUFFIX, AnnotationStore
from semflow.annotation_layout import IMAGES_FOLDER as IMAGES
from semflow.annotation_layout import MASKS_FOLDER as MASKS

ACK = "ack"


@dataclass
class Figures:
    """What one fault run did and found."""

    kills: int
    concurrency: int
    kills_mid_write: int
    acknowledged: int
    rows: int
    lost: int
    torn: int
    temp_files_before_recovery: int
    orphans_before_recovery: int
    temp_files_removed: int
    reindexed: int
    quarantined: int
    temp_files_left: int
    orphans_left: int
    load_ok: bool
    loaded_rows: int
    seconds: float

    @property
    def passed(self) -> bool:
        return (self.lost == self.torn == self.temp_files_left == self.orphans_left == 0 and self.load_ok
                and self.loaded_rows == self.rows)


def content(key: str, size: tuple[int, int]) -> tuple[PIL.Image.Image, np.ndarray]:
    """The image and mask a child saves under `key` ("<child>-<n>"): the checker regenerates them to compare."""
    rng = np.random.default_rng([int(part) for part in key.split("-")])
    width, height = size
    y, x = np.mgrid[0:height, 0:width]
    slopes = rng.integers(1, 8, (3, 3))  # per channel: x slope, y slope, offset
    image = np.stack([(x * a + y * b + c) % 256 for a, b, c in slopes], -1).astype(np.uint8)
    blocks = rng.integers(0, 12, (-(-height // 16), -(-width // 16)), dtype=np.uint8)
    return PIL.Image.fromarray(image), np.kron(blocks, np.ones((16, 16), np.uint8))[:height, :width]


def child(root: Path, child_id: int, size: tuple[int, int], out: int) -> None:
    """Save annotations one after another until killed; write "ack <name>" to `out` once each save has returned."""
    store = AnnotationStore(root)
    for n in range(1_000_000):
        key = f"{child_id}-{n}"
        image, ids = content(key, size)
        saved = store.save(image, ids, {"annotator": f"fault-{child_id}", "source_file": f"{key}.png",
                                        "fault_key": key})
        os.write(out, f"{ACK} {saved.name}\n".encode())  # one write under PIPE_BUF: whole or not at all


class Saver:
    """A forked child process saving into the folder (forked, so it starts at once with everything imported), and
    the acknowledgements it has written."""

    def __init__(self, root: Path, child_id: int, size: tuple[int, int]) -> None:
        read_end, write_end = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the child: save until killed
            os.close(read_end)
            try:
                child(root, child_id, size, write_end)
            finally:
                os._exit(1)
        os.close(write_end)
        self.stream = os.fdopen(read_end, "r")
        self.acks: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.stream:
            word, _, name = line.strip().partition(" ")
            if word == ACK and line.endswith("\n"):
                self.acks.append(name)

    def kill(self) -> list[str]:
        """SIGKILL, then the names of the saves it acknowledged."""
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        self.reader.join()
        self.stream.close()
        return self.acks


def leftovers(root: Path, rows: list[dict]) -> tuple[list[Path], list[Path]]:
    """(temporary files, images and masks without a row) in the folder, outside the quarantine."""
    temp = [p for folder in (root, root / IMAGES, root / MASKS) for p in folder.glob(f".*{TEMP_SUFFIX}")]
    indexed = {row.get(key) for row in rows for key in ("file_name", "mask_file_name")}
    orphans = [p for sub in (IMAGES, MASKS) for p in (root / sub).glob("*.png") if f"{sub}/{p.name}" not in indexed]
    return temp, orphans


def torn_rows(root: Path, rows: list[dict], size: tuple[int, int]) -> int:
    """Rows whose image or mask is not exactly what the child saved under the row's key."""
    torn = 0
    for row in rows:
        try:
            image, ids = content(row["fault_key"], size)
            same = (np.array_equal(np.asarray(PIL.Image.open(root / row["file_name"])), np.asarray(image))
                    and np.array_equal(np.asarray(PIL.Image.open(root / row["mask_file_name"])), ids))
        except (OSError, KeyError):
            same = False
        torn += not same
    return torn


def load_rows(root: Path) -> int:
    """Examples `datasets.load_dataset("imagefolder")` finds in the folder (its cache in a temporary folder)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import datasets

    datasets.disable_progress_bars()
    with tempfile.TemporaryDirectory() as cache:
        loaded = datasets.load_dataset("imagefolder", data_dir=str(root), split="train", cache_dir=cache)
        assert {"image", "mask"} <= set(loaded.column_names)
        return sum(1 for example in loaded if example["image"] is not None and example["mask"] is not None)


def wait_for_a_write(root: Path, timeout: float = 5.0) -> bool:
    """Poll until some saver has a temporary file open (it is mid-write); False after `timeout` seconds."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if any(True for folder in (root, root / IMAGES, root / MASKS) for _ in folder.glob(f".*{TEMP_SUFFIX}")):
            return True
        time.sleep(0.0005)
    return False


def run(root: Path, kills: int = 16, concurrency: int = 2, max_delay: float = 1.0, size: tuple[int, int] = (640, 480),
        seed: int = 0, mid_write: float = 0.5) -> Figures:
    """Start savers (`concurrency` at a time), SIGKILL a random one after a random 0..`max_delay` s (for a share
    `mid_write` of the kills, then also as soon as some saver is mid-write) until `kills` were killed, recover the
    folder and check it."""
    start = time.perf_counter()
    rng = random.Random(seed)
    acknowledged: set[str] = set()
    running: list[Saver] = []
    started = targeted = 0
    try:
        for _ in range(kills):
            while len(running) < concurrency and started < kills:
                running.append(Saver(root, started, size))
                started += 1
            time.sleep(rng.uniform(0.0, max_delay))
            if rng.random() < mid_write:
                targeted += wait_for_a_write(root)
            acknowledged.update(running.pop(rng.randrange(len(running))).kill())
    finally:
        for saver in running:  # only when something above failed
            saver.kill()

    store = AnnotationStore(root)
    temp_before, orphans_before = leftovers(root, store.rows())
    recovery = store.recover()
    rows = store.rows()
    temp_after, orphans_after = leftovers(root, rows)
    indexed = {Path(row["file_name"]).stem for row in rows}
    try:
        loaded, load_ok = load_rows(root), True
    except Exception as error:  # any failure to load is what this test exists to catch
        print(f"load_dataset failed: {type(error).__name__}: {error}", file=sys.stderr)
        loaded, load_ok = 0, False
    return Figures(
        kills=kills, concurrency=concurrency, kills_mid_write=targeted, acknowledged=len(acknowledged), rows=len(rows),
        lost=len(acknowledged - indexed), torn=torn_rows(root, rows, size),
        temp_files_before_recovery=len(temp_before), orphans_before_recovery=len(orphans_before),
        temp_files_removed=len(recovery.temp_files_removed), reindexed=len(recovery.reindexed),
        quarantined=len(recovery.quarantined), temp_files_left=len(temp_after), orphans_left=len(orphans_after),
        load_ok=load_ok, loaded_rows=loaded, seconds=round(time.perf_counter() - start, 1))


def report(figures: Figures) -> str:
    f = figures
    return "\n".join([
        f"kill -9s                        {f.kills} ({f.concurrency} savers at a time; {f.kills_mid_write} sent while "
        f"a temporary file was open)",
        f"acknowledged saves              {f.acknowledged}",
        f"rows after recovery             {f.rows}",
        f"acknowledged saves lost         {f.lost}",
        f"rows not matching their save    {f.torn}",
        f"left by the kills               {f.temp_files_before_recovery} temporary files, "
        f"{f.orphans_before_recovery} images/masks without a row",
        f"recovery                        removed {f.temp_files_removed} temporary files, re-indexed {f.reindexed} "
        f"complete pairs, quarantined {f.quarantined} files",
        f"leftover temporary files        {f.temp_files_left}",
        f"orphan images/masks             {f.orphans_left}",
        f"quarantined (in {QUARANTINE}/)   {f.quarantined}",
        f"load_dataset('imagefolder')     {'OK' if f.load_ok else 'FAILED'}, {f.loaded_rows} examples",
        f"time                            {f.seconds} s",
        "PASS" if f.passed else "FAIL",
    ])


def _size(text: str) -> tuple[int, int]:
    width, _, height = text.partition("x")
    return int(width), int(height)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=16, help="savers started and killed with SIGKILL")
    parser.add_argument("--concurrency", type=int, default=2, help="savers running at the same time")
    parser.add_argument("--max-delay", type=float, default=1.0, help="longest wait before the next kill, in seconds")
    parser.add_argument("--size", type=_size, default=(640, 480), help="WIDTHxHEIGHT of the saved images")
    parser.add_argument("--mid-write", type=float, default=0.5,
                        help="share of the kills sent as soon as some saver is writing a file (the others at random)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill times and victims")
    parser.add_argument("--root", type=Path, default=None, help="annotation folder (default: a temporary folder, "
                                                                 "removed afterwards); must be new or empty")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line instead")
    args = parser.parse_args(argv)
    root = args.root or Path(tempfile.mkdtemp(prefix="semflow-fault-")) / "annotations"
    if root.exists() and any(root.iterdir()):
        parser.error(f"--root {root} is not empty")
    try:
        figures = run(root, args.kills, args.concurrency, args.max_delay, args.size, args.seed, args.mid_write)
    finally:
        if args.root is None:
            shutil.rmtree(root.parent, ignore_errors=True)
    print(json.dumps({**asdict(figures), "passed": figures.passed}) if args.json else report(figures))
    return 0 if figures.passed else 1


if __name__ == "__main__":
    sys.exit(main())
