"""Engines for both backends, the schema migration, and advisory lock keys.

SQLite (one worker): WAL so readers never block the writer, a busy timeout so a second writer
waits instead of failing, and write transactions opened with `BEGIN IMMEDIATE`. pysqlite
starts transactions lazily and a deferred transaction that reads first and writes later fails
at once with "database is locked" when another connection wrote meanwhile (busy timeout or
not), so the driver's own transaction handling is switched off and SQLAlchemy emits BEGIN
itself (the SQLAlchemy "pysqlite serializable isolation" recipe).

PostgreSQL: psycopg 3 (`postgresql://` URLs get the `+psycopg` driver, since SQLAlchemy's
default would be psycopg2). A schema is either in the URL (`?options=-csearch_path%3Dxyz`) or
given as `schema`, which becomes the same search_path option and is created if missing.
"""

from __future__ import annotations

import hashlib
import json
from functools import partial
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.pool import NullPool, StaticPool

from spm_sync.store.columns import json_default

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
WRITE_OPTION = "spm_sync_write"
"""Execution option marking a connection that will write (SQLite: BEGIN IMMEDIATE)."""


def normalize_url(url: str | URL, schema: str | None = None) -> URL:
    url = make_url(url)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    if schema and url.get_backend_name() == "postgresql":
        options = url.query.get("options", "")
        if isinstance(options, tuple):
            options = " ".join(options)
        url = url.update_query_dict({"options": f"{options} -csearch_path={schema}".strip()})
    return url


def build_engine(url: URL, echo: bool = False, *, pooled: bool = True) -> Engine:
    """The engine for `url`. `pooled=False` (PostgreSQL) opens a connection per `connect()`
    and closes it on release: for sessions held for a long time, such as advisory locks."""
    serializer = partial(json.dumps, default=json_default, ensure_ascii=False)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, echo, serializer)
    # psycopg prepares a statement server-side after 5 runs; the generic plan of the key
    # lookup `key IN (<500 parameters>)` is a sequential scan while a freshly filled table
    # has no statistics (measured: 200 ms instead of 2 ms per batch), so plan every time.
    pool: dict[str, Any] = {"pool_pre_ping": True} if pooled else {"poolclass": NullPool}
    return create_engine(
        url,
        echo=echo,
        json_serializer=serializer,
        connect_args={"prepare_threshold": None},
        **pool,
    )


def _sqlite_engine(url: URL, echo: bool, serializer: Any) -> Engine:
    in_memory = url.database in (None, "", ":memory:")
    extra: dict[str, Any] = {"poolclass": StaticPool} if in_memory else {}
    if not in_memory and url.database and not url.database.startswith("file:"):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        echo=echo,
        json_serializer=serializer,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        **extra,
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN, see module doc
        cursor = dbapi_connection.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for `pg_advisory_lock` (Python's `hash` is salted per
    process, so it would differ between workers)."""
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class StoreTooNew(Exception):
    """The database is at a revision this version does not know (message for the user)."""


def _refuse_unknown_revision(connection: Connection, config: AlembicConfig) -> None:
    """A revision we have no script for means a newer spm-sync migrated the store. Alembic
    would fail with "Can't locate revision"; running on would risk writing rows in a shape
    the newer schema no longer has, so stop with a message that says what happened."""
    known = {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
    current = MigrationContext.configure(connection).get_current_heads()
    unknown = [revision for revision in current if revision not in known]
    if unknown:
        raise StoreTooNew(
            f"the store was written by a newer spm-sync (revision {', '.join(unknown)}; this "
            f"version knows up to {ScriptDirectory.from_config(config).get_current_head()}): "
            "upgrade spm-sync, or point store.url at another database"
        )


def upgrade_schema(engine: Engine, schema: str | None) -> None:
    """Alembic `upgrade head` on `engine`, with the version table in the same schema.

    On PostgreSQL a transaction-scoped advisory lock serializes workers that start together;
    the second finds the schema current and does nothing. A store already at a revision
    this version does not know raises `StoreTooNew` and is left untouched.
    """
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    options = {WRITE_OPTION: True}
    with engine.connect().execution_options(**options) as connection, connection.begin():
        if engine.dialect.name == "postgresql":
            key = lock_key(f"spm-sync:migrate:{schema or ''}")
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
            if schema:
                quoted = engine.dialect.identifier_preparer.quote_identifier(schema)
                connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {quoted}"))
        _refuse_unknown_revision(connection, config)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def current_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at (None before the first migration)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
