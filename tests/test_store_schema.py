"""The annotation database's schema: the Alembic migrations shipped in the app build exactly the tables the code
declares, a second opening (or a second process) finds the schema done, and the database lives where the settings
say."""

from __future__ import annotations

import numpy as np
import PIL.Image
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from app.settings import Settings, SettingsError
from app.store.database import DATABASE_FILE, MIGRATIONS, close_databases, database_url, open_database
from app.store.schema import Base


def test_the_migrations_build_exactly_the_declared_tables(tmp_path):
    database = open_database(database_url(tmp_path))
    with database.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
        assert connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "0001"
        assert connection.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
    assert (tmp_path / DATABASE_FILE).is_file() and (MIGRATIONS / "versions").is_dir()
    close_databases()
    again = open_database(database_url(tmp_path))  # a restart: the schema is there, nothing runs again
    with again.engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar() == 1
    close_databases()


def test_the_database_is_where_the_settings_say(tmp_path):
    assert database_url(tmp_path / "ann") == f"sqlite:///{(tmp_path / 'ann').resolve() / DATABASE_FILE}"
    assert database_url(tmp_path, "postgresql+psycopg://u@db/annotations") == "postgresql+psycopg://u@db/annotations"
    settings = Settings.from_env({"SEMFLOW_DATABASE_URL": "postgresql+psycopg://u@db/a",
                                  "SEMFLOW_REVIEWERS": " rita , sam,rita", "SEMFLOW_DATASET_REPO": "acme/accepted"})
    assert settings.database_url == "postgresql+psycopg://u@db/a" and settings.reviewers == ("rita", "sam")
    assert settings.is_reviewer("sam") and not settings.is_reviewer("ana") and not settings.is_reviewer(None)
    assert Settings.from_env({"SEMFLOW_REVIEWERS": "*"}).is_reviewer("anyone")
    assert "postgresql" not in repr(settings), "a URL may hold a password: never in a repr"
    for bad in ("mysql://u@h/d", "not a url"):
        try:
            Settings.from_env({"SEMFLOW_DATABASE_URL": bad})
        except SettingsError as error:
            assert "SEMFLOW_DATABASE_URL must be a database URL" in str(error)
        else:
            raise AssertionError(bad)


def test_the_store_command_says_where_the_database_is_and_what_it_holds(tmp_path, capsys):
    from app.store.__main__ import main
    from app.work_queue import open_queue

    (tmp_path / "frames").mkdir()
    PIL.Image.new("RGB", (12, 10)).save(tmp_path / "frames" / "a.png")
    open_queue(tmp_path / "frames", root=tmp_path / "ann").save("a.png", np.zeros((10, 12), np.uint8), "ann")
    assert main(["--annotations", str(tmp_path / "ann")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{(tmp_path / 'ann' / DATABASE_FILE).resolve()}: schema 0001, 1 queue(s), 0 photo(s)")
    assert "  frames: 0 todo, 0 preannotated, 1 corrected" in out
    close_databases()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / DATABASE_FILE).write_text("not a database")
    assert main(["--annotations", str(tmp_path / "bad")]) == 2
    assert "cannot be read: the file is not a database" in capsys.readouterr().err
