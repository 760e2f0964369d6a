"""The annotation database: SQLite in the annotation folder unless `SEMFLOW_DATABASE_URL` names another (PostgreSQL for
several app servers), brought to the newest schema (Alembic) when first opened in a process, with transactions that
word every failure (busy, damaged, full, gone away) as a sentence that says earlier work is safe."""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session

from ..errors import StorageError
from ..storage import SAFE, storage_error

logger = logging.getLogger(__name__)

DATABASE_FILE = "annotations.db"  # the SQLite file in the annotation folder
BUSY_SECONDS = 30.0  # how long a write waits for another writer's lock before it gives up with a sentence
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_MIGRATION_LOCK = 727_001  # PostgreSQL advisory lock held while a process upgrades the schema
_SQLITE_REASONS = {  # SQLite's error names → what is wrong, in words a person can act on
    "SQLITE_BUSY": "another program holds the database's lock for more than {busy:g} s",
    "SQLITE_LOCKED": "another program holds the database's lock for more than {busy:g} s",
    "SQLITE_FULL": "there is no space left on the disk that holds the database",
    "SQLITE_CORRUPT": "the database file is damaged",
    "SQLITE_NOTADB": "the file is not a database (it is damaged, or something else was saved under its name)",
    "SQLITE_READONLY": "the database is read-only (a read-only disk, or a file the server may not write)",
    "SQLITE_CANTOPEN": "the database file cannot be opened (its folder is missing, or not allowed)",
    "SQLITE_PERM": "the server is not allowed to write the database (permission denied)",
    "SQLITE_IOERR": "the disk that holds the database failed to read or write",
}
_DAMAGED = ("SQLITE_CORRUPT", "SQLITE_NOTADB")
_POSTGRES_REASONS = {  # SQLSTATE → what is wrong
    "53100": "the database server's disk is full",
    "53200": "the database server is out of memory",
    "57P01": "the database server is shutting down",
    "57P03": "the database server is starting or stopping and takes no connections now",
    "40001": "another save changed the same item at the same moment",
    "40P01": "another save changed the same item at the same moment",
    "55P03": "another program holds a lock on the same item",
}


class Database:
    """One database of one process: an engine for reads and one whose transactions take the write lock at once
    (SQLite's BEGIN IMMEDIATE, so that two writers never both read and then fail to write)."""

    def __init__(self, url: str | URL) -> None:
        self.url = make_url(url)
        self.dialect = self.url.get_backend_name()
        self.label = describe(self.url)
        if self.dialect == "sqlite":
            path = self.url.database
            if path and path != ":memory:":
                try:
                    Path(path).parent.mkdir(parents=True, exist_ok=True)
                except OSError as error:
                    raise storage_error(error, "Opening the annotation database failed") from error
            self.engine = sa.create_engine(self.url, connect_args={"timeout": BUSY_SECONDS,
                                                                   "check_same_thread": False})
            event.listen(self.engine, "connect", _sqlite_connect)
            event.listen(self.engine, "begin", _sqlite_begin)
        else:
            self.engine = sa.create_engine(self.url, pool_pre_ping=True, pool_size=5, max_overflow=20)
        self.writer = self.engine.execution_options(immediate=True)
        with self.errors("Opening the annotation database failed"):
            self._upgrade()
        self._file = self._identity() if self.dialect == "sqlite" else None

    @contextmanager
    def read(self, what_failed: str) -> Iterator[Session]:
        """A session for reading; a database failure becomes a `StorageError` saying `what_failed` and why."""
        with self.errors(what_failed), Session(self.engine) as session, session.begin():
            yield session

    @contextmanager
    def write(self, what_failed: str) -> Iterator[Session]:
        """A transaction that holds the write lock from its start (SQLite) and commits at the end: all of it is
        stored, or none of it."""
        if self._file is not None and self._identity() != self._file:
            raise StorageError(f"{what_failed}: the annotation database {self.label} was moved or deleted while the "
                               f"app was running, so nothing was written. Put the file back, or restart the app to "
                               f"start a new database there.")
        with self.errors(what_failed), Session(self.writer) as session, session.begin():
            yield session

    @contextmanager
    def errors(self, what_failed: str) -> Iterator[None]:
        try:
            yield
        except StorageError:
            raise
        except sa.exc.DBAPIError as error:
            logger.warning("annotation database %s: %s: %r", self.label, what_failed, error.orig)
            raise self.error(error, what_failed) from None
        except OSError as error:
            raise storage_error(error, what_failed) from error

    def error(self, error: sa.exc.DBAPIError, what_failed: str) -> StorageError:
        """`error` in words a person can act on: what failed, why, and that earlier work is safe."""
        orig = error.orig
        name = getattr(orig, "sqlite_errorname", None)
        if self.dialect == "sqlite":
            if name is None and "not a database" in str(orig):
                name = "SQLITE_NOTADB"
            reason = _SQLITE_REASONS.get(name, "").format(busy=BUSY_SECONDS) or _first_line(orig)
            if name in _DAMAGED:
                return StorageError(f"{what_failed}: the annotation database {self.label} cannot be read: {reason}. "
                                    f"Nothing was written to it. Stop the app, keep the file (it holds the saved "
                                    f"masks) and put back a copy from a backup, or move it away to start a new one.")
            if name in ("SQLITE_BUSY", "SQLITE_LOCKED"):
                return StorageError(f"{what_failed}: the annotation database is busy ({reason}). {SAFE} Please try "
                                    f"again in a moment.")
            return StorageError(f"{what_failed}: {reason} ({self.label}). {SAFE} Please ask whoever runs this server "
                                f"to fix it, then try again.")
        state = getattr(orig, "sqlstate", None)
        if state in _POSTGRES_REASONS:
            reason = _POSTGRES_REASONS[state]
        elif error.connection_invalidated or isinstance(error, sa.exc.OperationalError | sa.exc.InterfaceError):
            reason = f"the database server cannot be reached ({_first_line(orig)})"
        else:
            reason = f"the database reported an error ({_first_line(orig)})"
        return StorageError(f"{what_failed}: {reason} ({self.label}). {SAFE} Please try again in a moment; if it "
                            f"goes on, ask whoever runs this server to check the database.")

    def _identity(self) -> tuple[int, int] | None:
        """The SQLite file's device and inode (None for an in-memory database, or when it is gone)."""
        path = self.url.database
        if not path or path == ":memory:":
            return None
        try:
            stat = os.stat(path)
        except OSError:
            return None
        return stat.st_dev, stat.st_ino

    def insert(self, table):
        """An INSERT that can say what to do ON CONFLICT, in this database's dialect."""
        if self.dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert
        return insert(table)

    def close(self) -> None:
        self.engine.dispose()

    def _upgrade(self) -> None:
        """Bring the schema to the newest migration, one process at a time (the others wait, then find it done)."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.writer.begin() as connection:
            if self.dialect == "postgresql":
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
            config.attributes["connection"] = connection
            command.upgrade(config, "head")


_databases: dict[tuple[str, int], Database] = {}
_lock = threading.Lock()


def database_url(folder: str | os.PathLike, url: str | None = None) -> str:
    """`url` when one is given (`SEMFLOW_DATABASE_URL`), else the SQLite file in the annotation folder `folder`."""
    if url:
        return url
    return str(URL.create("sqlite", database=str(Path(folder).resolve() / DATABASE_FILE)))


def open_database(url: str) -> Database:
    """The process's `Database` for `url`, opened (and its schema upgraded) on first use. A forked process opens its
    own (connections are never shared across a fork)."""
    key = (str(make_url(url)), os.getpid())
    with _lock:
        if key not in _databases:
            _databases[key] = Database(url)
        return _databases[key]


def close_databases() -> None:
    """Close this process's databases (their next use opens them again)."""
    with _lock:
        for database in _databases.values():
            database.close()
        _databases.clear()


def describe(url: URL) -> str:
    """The database as a person may be told about it: the SQLite file's path, or a server's host, port and database
    (never a password)."""
    if url.get_backend_name() == "sqlite":
        return url.database or "(in memory)"
    return f"{url.get_backend_name()} database '{url.database}' on {url.host or 'localhost'}" + \
        (f":{url.port}" if url.port else "")


def _first_line(error: BaseException | None) -> str:
    text = (str(error or "").strip().splitlines() or [type(error).__name__])[0]
    return re.sub(r"password=\S+", "password=…", text)[:200]


def _sqlite_connect(connection, _record) -> None:
    connection.isolation_level = None  # transactions are begun by `_sqlite_begin`, not by the driver
    cursor = connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_SECONDS * 1000)}")
    cursor.execute("PRAGMA journal_mode = WAL")  # readers never wait for a writer
    cursor.execute("PRAGMA synchronous = FULL")  # a commit is on the disk when it returns
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _sqlite_begin(connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE" if connection.get_execution_options().get("immediate") else "BEGIN")
