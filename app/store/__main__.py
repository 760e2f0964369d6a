"""`python -m app.store [--database URL] [--annotations DIR]`: open the annotation database (bringing its schema to
the newest migration) and print where it is, its schema version and each queue's counts."""

from __future__ import annotations

import argparse
import sys

import sqlalchemy as sa

from ..errors import StorageError
from ..settings import get_settings
from .database import database_url, open_database
from .schema import STATUSES, CountRow, QueueRow, SavedRow


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.store", description=__doc__.splitlines()[0])
    parser.add_argument("--database", default=None, help="database URL (default: $SEMFLOW_DATABASE_URL, else the "
                                                         "SQLite file in the annotation folder)")
    parser.add_argument("--annotations", default=None, help="annotation folder (default: $SEMFLOW_ANNOTATIONS_DIR)")
    args = parser.parse_args(argv)
    settings = get_settings()
    try:
        database = open_database(database_url(args.annotations or settings.annotations_dir,
                                              args.database or settings.database_url))
        with database.read("Reading the annotation database failed") as session:
            version = session.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
            queues = session.execute(sa.select(QueueRow.id, QueueRow.title).order_by(QueueRow.id)).all()
            counts = session.execute(sa.select(CountRow.queue_id, CountRow.status, CountRow.count)).all()
            saved = session.scalar(sa.select(sa.func.count()).select_from(SavedRow))
    except StorageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{database.label}: schema {version}, {len(queues)} queue(s), {saved} photo(s) saved one at a time")
    by_queue: dict[int, dict[str, int]] = {}
    for queue_id, status, count in counts:
        by_queue.setdefault(queue_id, {})[status] = count
    for queue_id, title in queues:
        numbers = by_queue.get(queue_id, {})
        print(f"  {title}: " + ", ".join(f"{numbers.get(status, 0)} {status}" for status in STATUSES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
