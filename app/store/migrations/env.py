"""Alembic's entry point for the annotation store: migrations run on the connection `database.Database` hands over
(inside its transaction, under its lock), or on a URL given to the `alembic` command."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from app.store.schema import Base

connection = context.config.attributes.get("connection")
if connection is None:  # `alembic -x url=... upgrade head` by hand
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option("sqlalchemy.url")
    with create_engine(url).begin() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
        context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
