"""Alembic environment of the spm-sync store.

`Store` runs `upgrade head` programmatically and hands its connection in through
`config.attributes["connection"]`; developers creating a revision run
`alembic -c spm_sync/migrations/alembic.ini revision --autogenerate -m "..."` against the URL in
`SPM_SYNC_STORE_URL` (default: a scratch SQLite file). `render_as_batch` lets SQLite alter
tables by copying them, since it cannot ALTER most column properties.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection, create_engine

from spm_sync.store.tables import metadata

config = context.config


def run_with(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_with(connection)
        return
    url = os.environ.get("SPM_SYNC_STORE_URL", "sqlite:///spm-sync-migrations.db")
    engine = create_engine(url)
    with engine.connect() as fresh:
        run_with(fresh)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run them against a database")
run_online()
