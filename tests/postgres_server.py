"""A throw-away PostgreSQL server for the tests that share one database between processes: Debian's `postgresql`
binaries, `initdb` in a temporary folder (as the `postgres` user when the tests run as root: initdb refuses root),
`pg_ctl start` on a free local port with its socket in that folder, stopped and removed at the end. Without the
binaries the tests that need it skip with a sentence, except under ``CI=true`` (as `.ci/run` runs), where they fail."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest
from ports import free_port_in

PORTS = range(55400, 55500)  # the ports this project's tests may run PostgreSQL on
INSTALL = "install Debian's `postgresql` package (`apt-get install -y postgresql`; .ci/run does)"


def binary(name: str) -> str | None:
    """A PostgreSQL program: on the PATH, else in Debian's versioned folder (newest first)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


def require_postgres() -> tuple[str, str]:
    """(initdb, pg_ctl), or skip (fail under CI=true) saying how to install them."""
    initdb, pg_ctl = binary("initdb"), binary("pg_ctl")
    if initdb and pg_ctl:
        return initdb, pg_ctl
    message = f"the PostgreSQL tests need initdb and pg_ctl: {INSTALL}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


class PostgresServer:
    """A running server; `url(database)` makes a new empty database on it and returns its SQLAlchemy URL."""

    def __init__(self) -> None:
        initdb, self.pg_ctl = require_postgres()
        self.folder = Path(tempfile.mkdtemp(prefix="semflow-tests-postgres-"))
        self.data = self.folder / "data"
        self.port = free_port_in(PORTS, "the test's PostgreSQL server")
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_postgres:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run([initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync"])
        self.start()

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200"
        self._run([self.pg_ctl, "-D", str(self.data), "-o", options, "-l", str(self.folder / "server.log"), "-w",
                   "start"])

    def stop(self, mode: str = "fast") -> None:
        self._run([self.pg_ctl, "-D", str(self.data), "-m", mode, "-w", "stop"], check=False)

    def url(self, database: str | None = None) -> str:
        """A new empty database on the server."""
        import psycopg

        database = database or f"test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{database}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def close(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)

    def _run(self, command: list[str], check: bool = True) -> None:
        result = subprocess.run([*self.as_postgres, *command], capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            log = self.folder / "server.log"
            raise RuntimeError(f"{' '.join(command)} failed: {result.stderr[-2000:]}"
                               + (log.read_text()[-2000:] if log.is_file() else ""))
