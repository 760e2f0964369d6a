"""Bad days of the annotation database, each worded as a sentence that says earlier work is safe, with nothing lost: a
damaged database file, one that another program keeps locked, one moved away under the app, a PostgreSQL server that
goes away and comes back, and a full disk."""

from __future__ import annotations

import sqlite3

import numpy as np
import PIL.Image
import pytest
import sqlalchemy as sa
from store_faults import fill_sqlite

from app.annotations import AnnotationStore
from app.errors import StorageError
from app.store import database
from app.store.database import DATABASE_FILE, close_databases, database_url, open_database
from app.work_queue import CORRECTED, open_queue

pytestmark = pytest.mark.slow

SIZE = (12, 10)


@pytest.fixture(autouse=True)
def fresh_connections():
    close_databases()
    yield
    close_databases()


def write_frames(folder, count=3):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        PIL.Image.fromarray(rng.integers(0, 256, (SIZE[1], SIZE[0], 3), dtype=np.uint8)).save(folder / f"f{i}.png")
    return folder


def ids_for(value):
    return np.full((SIZE[1], SIZE[0]), value, np.uint8)


def test_a_damaged_database_file_is_named_and_left_as_it_is(tmp_path):
    from app.callbacks import Page
    from app.service import Studio, Studios
    from app.session import Session
    from app.settings import Settings
    from app.work_queue import QUEUE_ORDER
    from semflow.loading import LoadedModel
    from tests.conftest import tiny_pipeline

    frames = write_frames(tmp_path / "frames")
    root = tmp_path / "ann"
    root.mkdir()
    (root / DATABASE_FILE).write_bytes(b"this is not a database, it was overwritten " * 200)
    before = (root / DATABASE_FILE).read_bytes()
    with pytest.raises(StorageError) as raised:
        open_queue(frames, root=root)
    message = str(raised.value)
    assert message.startswith(f"Opening the annotation database failed: the annotation database {root.resolve()}")
    assert "the file is not a database" in message and "Nothing was written to it" in message
    with pytest.raises(StorageError, match="not a database"):
        AnnotationStore(root).save(PIL.Image.new("RGB", SIZE), ids_for(1), {})
    assert not list(root.glob("images/*.png")) and not list(root.glob("masks/*.png")), "no orphan files"
    settings = Settings(annotations_dir=root, cache_dir=tmp_path / "cache", queue_root=tmp_path)
    page = Page(Studios.of(Studio(LoadedModel(tiny_pipeline(), "tiny", "sha256:0"), settings)))
    with pytest.warns(UserWarning, match="not a database"):
        line = page.open_queue("frames", "", QUEUE_ORDER, Session(owner="a" * 32)).queue_status
    assert line.startswith("⚠️ Opening the annotation database failed") and "Traceback" not in line
    with pytest.raises(StorageError, match="not a database"):
        page.workspace.recover()  # what the app does at start: it logs the sentence and starts anyway
    assert (root / DATABASE_FILE).read_bytes() == before, "the damaged file is left for whoever repairs it"


def test_a_database_damaged_inside_says_so_on_the_next_write(tmp_path):
    frames = write_frames(tmp_path / "frames", 40)
    queue = open_queue(frames, root=tmp_path / "ann")
    queue.claim("f0.png", "ann")
    close_databases()
    path = tmp_path / "ann" / DATABASE_FILE
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = connection.execute("PRAGMA page_size").fetchone()[0]
        (root_page,) = connection.execute("SELECT rootpage FROM sqlite_master WHERE name = 'claims'").fetchone()
    data = bytearray(path.read_bytes())
    start = (root_page - 1) * page_size
    data[start : start + page_size] = b"\xff" * page_size  # the claims table's page turned to garbage
    path.write_bytes(bytes(data))
    queue = open_queue(frames, root=tmp_path / "ann")
    with pytest.raises(StorageError) as raised:
        queue.claim_next("ann")
    assert str(raised.value).startswith("Claiming the next item failed: the annotation database")
    assert "cannot be read: the database file is damaged. Nothing was written to it." in str(raised.value)


def test_a_database_locked_by_another_program_says_try_again_and_loses_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(database, "BUSY_SECONDS", 0.3)
    frames = write_frames(tmp_path / "frames")
    queue = open_queue(frames, root=tmp_path / "ann")
    queue.save("f0.png", ids_for(1), "ann")
    holder = sqlite3.connect(tmp_path / "ann" / DATABASE_FILE, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another program in the middle of a long write
    try:
        with pytest.raises(StorageError) as raised:
            queue.save("f1.png", ids_for(2), "ann")
        assert str(raised.value) == ("Saving the mask of f1 failed: the annotation database is busy (another program "
                                     "holds the database's lock for more than 0.3 s). Earlier annotations are safe. "
                                     "Please try again in a moment.")
        assert queue.status("f0.png") == CORRECTED, "reading goes on while another program writes"
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert queue.save("f1.png", ids_for(2), "ann").number == 1 and queue.counts()[CORRECTED] == 2


def test_a_database_moved_away_under_the_app_is_refused_not_written_blind(tmp_path):
    frames = write_frames(tmp_path / "frames")
    queue = open_queue(frames, root=tmp_path / "ann")
    queue.save("f0.png", ids_for(1), "ann")
    (tmp_path / "ann" / DATABASE_FILE).rename(tmp_path / "moved.db")
    with pytest.raises(StorageError, match="was moved or deleted while the app was running, so nothing was written"):
        queue.save("f1.png", ids_for(2), "ann")
    (tmp_path / "moved.db").rename(tmp_path / "ann" / DATABASE_FILE)
    assert queue.save("f1.png", ids_for(2), "ann").number == 1, "put back, it is written again"


def test_a_full_disk_is_said_and_what_was_saved_stays(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    PIL.Image.new("RGB", (480, 360)).save(frames / "street.png")
    root = tmp_path / "ann"
    queue = open_queue(frames, root=root)
    queue.save("street.png", np.zeros((360, 480), np.uint8), "ann")
    fill_sqlite(open_database(database_url(root)))
    big = np.random.default_rng(1).integers(0, 11, (360, 480)).astype(np.uint8)  # needs pages the file has not got
    with pytest.raises(StorageError) as raised:
        queue.save("street.png", big, "ann")
    assert str(raised.value) == (f"Saving the mask of street failed: there is no space left on the disk that holds "
                                 f"the database ({(root / DATABASE_FILE).resolve()}). Earlier annotations are safe. "
                                 f"Please ask whoever runs this server to fix it, then try again.")
    close_databases()  # room again
    reopened = open_queue(frames, root=root)
    assert [v.number for v in reopened.history("street.png")] == [1] and reopened.counts()[CORRECTED] == 1
    assert reopened.save("street.png", big, "ann").number == 2


def test_a_postgresql_server_that_goes_away_is_named_and_work_goes_on_when_it_is_back(tmp_path):
    from postgres_server import PostgresServer

    server = PostgresServer()
    try:
        url = server.url()
        frames = write_frames(tmp_path / "frames")
        queue = open_queue(frames, database=url, root=tmp_path / "ann")
        queue.save("f0.png", ids_for(1), "ann")
        server.stop()
        with pytest.raises(StorageError) as raised:
            queue.save("f1.png", ids_for(2), "ann")
        message = str(raised.value)
        assert message.startswith("Saving the mask of f1 failed: the database server cannot be reached")
        assert f"on 127.0.0.1:{server.port}" in message and "Earlier annotations are safe" in message
        assert "postgres@" not in message, "the URL's user and password are never shown"
        server.start()
        assert queue.save("f1.png", ids_for(2), "ann").number == 1, "back: the next save goes through"
        assert queue.history("f0.png")[0].number == 1
        with open_database(url).read("test") as s:
            assert s.execute(sa.text("SELECT count(*) FROM versions")).scalar() == 2
    finally:
        close_databases()
        server.close()
