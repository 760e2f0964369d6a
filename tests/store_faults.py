"""Faults of the annotation database the tests bring about for real: a SQLite file that runs out of room (its page
count capped where it is, so that the next write gets SQLite's own "database or disk is full")."""

from __future__ import annotations

import sqlalchemy as sa

from app.store.database import Database


def fill_sqlite(database: Database) -> None:
    """From now on every connection of `database` may not grow the file: the next write that needs a page fails as on
    a full disk. The pool's connections are replaced so that all of them see it."""
    with database.engine.connect() as connection:
        pages = connection.exec_driver_sql("PRAGMA page_count").scalar()

    def capped(dbapi_connection, _record) -> None:
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

    sa.event.listen(database.engine, "connect", capped)
    database.engine.dispose()
