"""Many people on one queue at once, through the annotation side of the app: two server processes (each the
`workspace.Workspace` that `python app.py` holds, with 6 annotator and 2 reviewer threads, as a server's worker
threads serve 8 tabs) on one SQLite file, and on one PostgreSQL database, for a bounded time. Every claim, save,
submission and review is logged once acknowledged; the logs and the database must agree: no item held by two people
at once, no acknowledged save lost, every version kept in order, the counts equal to the items. A server killed with
SIGKILL in the middle loses nothing it acknowledged."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import random
import signal
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import sqlalchemy as sa

from app.settings import Settings
from app.store.database import close_databases, database_url, open_database
from app.store.schema import ACCEPTED, CountRow, ItemRow, ReviewRow, VersionRow
from app.work_queue import QUEUE_ORDER, SUBMITTED, ItemClaimed, open_queue

pytestmark = pytest.mark.slow

SIZE = (32, 24)
ANNOTATORS, REVIEWERS = 6, 2  # threads of each server process: 16 people over two servers


def write_frames(folder: Path, count: int) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        PIL.Image.fromarray(rng.integers(0, 256, (SIZE[1], SIZE[0], 3), dtype=np.uint8)).save(folder / f"f{i:03d}.png")
    return folder


def checksum(ids: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(ids, np.uint8).tobytes()).hexdigest()[:16]


class Log:
    """One person's log: a line per acknowledged step, written with one unbuffered write (a killed process keeps every
    line it wrote)."""

    def __init__(self, path: Path) -> None:
        self.descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def __call__(self, *fields) -> None:
        os.write(self.descriptor, (" ".join(str(f) for f in fields) + "\n").encode())


def annotator(workspace, person, log: Log, deadline: float, seed: int) -> None:
    """Open the next item (one's own held or rejected item first), save 1-3 versions of it, submit it; again."""
    rng = random.Random(seed)
    while time.time() < deadline:
        log("free", time.time())  # what one held is released by the next claim
        stop = workspace.open_queue("frames", None, person, QUEUE_ORDER)
        if stop.item is None:
            log("idle", time.time())
            time.sleep(0.05)
            continue
        log("claim", stop.item.id, time.time())
        for _ in range(rng.randint(1, 3)):
            ids = np.full((SIZE[1], SIZE[0]), rng.randint(0, 10), np.uint8)
            ids[: rng.randint(1, SIZE[1])] = rng.randint(0, 10)
            version = workspace.save("frames", None, person, stop.item.id, ids, seconds=1.0)
            log("save", stop.item.id, version.number, checksum(ids))
        log("free", time.time())
        workspace.submit("frames", None, person, stop.item.id)
        log("submit", stop.item.id)


def reviewer(workspace, person, log: Log, deadline: float, seed: int) -> None:
    """Open the next submitted item; accept it, correct it (a new version) or reject it with a comment; again."""
    rng = random.Random(seed)
    while time.time() < deadline:
        log("free", time.time())
        stop = workspace.open_queue("frames", None, person, QUEUE_ORDER, status=SUBMITTED)
        if stop.item is None:
            log("idle", time.time())
            time.sleep(0.05)
            continue
        log("claim", stop.item.id, time.time())
        choice = rng.random()
        if choice < 0.3:
            workspace.reject("frames", None, person, stop.item.id, "Fix the road.")
            log("reject", stop.item.id)
        elif choice < 0.5:
            ids = np.full((SIZE[1], SIZE[0]), rng.randint(0, 10), np.uint8)
            version = workspace.save("frames", None, person, stop.item.id, ids, review=True)
            log("save", stop.item.id, version.number, checksum(ids))
        else:
            workspace.accept("frames", None, person, stop.item.id)
            log("accept", stop.item.id)


def server(url: str, root: Path, queue_root: Path, name: str, seconds: float, logs: Path, go: Path) -> None:
    """One server process: a workspace on the shared database, 8 people in threads until the deadline."""
    from app.workspace import Person, Workspace

    close_databases()  # connections are never shared with the parent
    workspace = Workspace(Settings(annotations_dir=root, database_url=url, queue_root=queue_root,
                                   reviewers=("*",), cache_dir=logs / "cache"))
    workspace.queue("frames")
    (logs / f"{name}.ready").touch()
    while not go.exists():
        time.sleep(0.01)
    deadline = time.time() + seconds
    threads = []
    for k in range(ANNOTATORS + REVIEWERS):
        role = annotator if k < ANNOTATORS else reviewer
        who = f"{name}-{'annotator' if k < ANNOTATORS else 'reviewer'}-{k}"
        log = Log(logs / f"{who}.log")

        def run(role=role, who=who, log=log, k=k):
            try:
                role(workspace, Person(who, who), log, deadline, hash((name, k)) % 1000)
            except Exception as error:  # any failure is a finding: written down for the test to report
                log("error", type(error).__name__, str(error).replace("\n", " ")[:300])

        threads.append(threading.Thread(target=run))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def start_servers(url, tmp_path, frames, seconds, names=("one", "two")):
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    go = tmp_path / "go"
    context = multiprocessing.get_context("fork")  # a server's process; forking skips importing torch again
    processes = {name: context.Process(target=server, args=(url, tmp_path / "annotations", frames.parent, name,
                                                            seconds, logs, go)) for name in names}
    for process in processes.values():
        process.start()
    deadline = time.monotonic() + 120
    while not all((logs / f"{name}.ready").exists() for name in names) and time.monotonic() < deadline:
        time.sleep(0.02)
    go.touch()
    return processes, logs


def read_logs(logs: Path) -> dict[str, list[list[str]]]:
    return {path.stem: [line.split() for line in path.read_text().splitlines()] for path in logs.glob("*.log")}


def check(url: str, logs: dict[str, list[list[str]]], frames: Path, killed: tuple[str, ...] = ()) -> dict:
    """The logs against the database; returns the figures (items, versions, reviews, operations)."""
    errors = [(who, line) for who, lines in logs.items() for line in lines if line[0] == "error"]
    assert not errors, errors[:5]
    # no item held by two people at once: a hold runs from its claim to the person's next release point
    holds = defaultdict(list)
    for who, lines in logs.items():
        open_hold = None
        for line in lines:
            if line[0] == "claim":
                open_hold = (line[1], float(line[2]))
            elif line[0] == "free" and open_hold is not None:
                holds[open_hold[0]].append((open_hold[1], float(line[1]), who))
                open_hold = None
        if open_hold is not None:
            holds[open_hold[0]].append((open_hold[1], float("inf"), who))
    for item, spans in holds.items():
        held_until, holder = float("-inf"), None
        for start, end, who in sorted(spans):
            assert who == holder or start >= held_until, f"{item} held by {holder} and {who} at once"
            if end > held_until:
                held_until, holder = end, who
    queue = open_queue(frames, database=url, root=frames.parent / "annotations")
    database = open_database(url)
    with database.read("test") as s:
        versions = defaultdict(dict)
        for item, number, mask in s.execute(sa.select(ItemRow.key, VersionRow.number, VersionRow.mask)
                                            .join(ItemRow, ItemRow.id == VersionRow.item_id)
                                            .where(ItemRow.queue_id == queue.queue_id)):
            versions[item][number] = mask
        counts = dict(s.execute(sa.select(CountRow.status, CountRow.count)
                                .where(CountRow.queue_id == queue.queue_id)).all())
        statuses = dict(s.execute(sa.select(ItemRow.key, ItemRow.status)
                                  .where(ItemRow.queue_id == queue.queue_id)).all())
        currents = dict(s.execute(sa.select(ItemRow.key, ItemRow.current).where(ItemRow.queue_id ==
                                                                                 queue.queue_id)).all())
        reviews = s.scalar(sa.select(sa.func.count()).select_from(ReviewRow).where(ReviewRow.queue_id ==
                                                                                   queue.queue_id))
    from app.work_queue import _decode

    # no acknowledged save lost, with the very mask that was acknowledged
    acknowledged = [(line[1], int(line[2]), line[3]) for lines in logs.values() for line in lines
                    if line[0] == "save"]
    for item, number, digest in acknowledged:
        assert number in versions[item], f"acknowledged save {item} v{number} is missing"
        assert checksum(_decode(versions[item][number])) == digest, f"{item} v{number} holds another mask"
    # every version kept, numbered without a gap; unacknowledged ones only from a killed server, one per thread
    stored = sum(len(numbers) for numbers in versions.values())
    for item, numbers in versions.items():
        assert sorted(numbers) == list(range(1, len(numbers) + 1)) and currents[item] == max(numbers), item
    in_flight = stored - len(acknowledged)
    assert 0 <= in_flight <= len(killed) * (ANNOTATORS + REVIEWERS), (stored, len(acknowledged))
    assert counts == {status: list(statuses.values()).count(status) for status in counts}, "counts agree"
    operations = sum(1 for lines in logs.values() for line in lines if line[0] in ("claim", "save", "submit",
                                                                                  "accept", "reject"))
    by_server = {server: sum(1 for who, lines in logs.items() if who.startswith(server) for line in lines
                             if line[0] == "save") for server in ("one", "two")}
    return {"items": len(statuses), "versions": stored, "acknowledged saves": len(acknowledged),
            "acknowledged saves by server": by_server,
            "reviews": reviews, "accepted": counts.get(ACCEPTED, 0), "operations": operations,
            "in flight when killed": in_flight}


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_database(request, tmp_path):
    if request.param == "sqlite":
        yield database_url(tmp_path / "annotations")
        return
    from postgres_server import PostgresServer

    server = PostgresServer()
    try:
        yield server.url()
    finally:
        close_databases()
        server.close()


def test_two_servers_and_sixteen_people_never_share_an_item_nor_lose_a_save(tmp_path, shared_database):
    frames = write_frames(tmp_path / "frames", 150)
    open_queue(frames, database=shared_database, root=tmp_path / "annotations")
    close_databases()
    processes, logs = start_servers(shared_database, tmp_path, frames, seconds=20)
    for process in processes.values():
        process.join(timeout=240)
    assert all(process.exitcode == 0 for process in processes.values())
    figures = check(shared_database, read_logs(logs), frames)
    print(f"\n{shared_database.split(':')[0]}: {figures}")
    assert figures["acknowledged saves"] >= 20 and figures["reviews"] >= 5, figures
    assert figures["in flight when killed"] == 0


def test_a_server_killed_mid_save_loses_nothing_it_acknowledged(tmp_path, shared_database):
    frames = write_frames(tmp_path / "frames", 150)
    open_queue(frames, database=shared_database, root=tmp_path / "annotations")
    close_databases()
    processes, logs = start_servers(shared_database, tmp_path, frames, seconds=15)
    deadline = time.monotonic() + 60
    while sum(path.read_text().count("save ") for path in logs.glob("one-*.log")) < 15 and \
            time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(processes["one"].pid, signal.SIGKILL)  # in the middle of whatever its 8 threads are doing
    for process in processes.values():
        process.join(timeout=240)
    assert processes["one"].exitcode == -signal.SIGKILL and processes["two"].exitcode == 0
    figures = check(shared_database, read_logs(logs), frames, killed=("one",))
    print(f"\n{shared_database.split(':')[0]}, one server killed: {figures}")
    queue = open_queue(frames, database=shared_database, root=tmp_path / "annotations")
    try:
        queue.claim(next(item.id for item in queue.items), "after-the-kill")
    except ItemClaimed:
        pass  # still held by a thread of the killed server until its lease lapses
