"""The store's engine, transactions, schema upgrade and advisory locks."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Table, delete, insert, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from spm_sync.store.columns import utc_now
from spm_sync.store.cycle_lock import exclusive_cycle
from spm_sync.store.engine import (
    WRITE_OPTION,
    build_engine,
    lock_key,
    normalize_url,
    upgrade_schema,
)

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
T = TypeVar("T")
Row = Mapping[Any, Any]
"""A result row by column name. `Mapping[Any, Any]` because SQLAlchemy's `RowMapping` also
takes `Column` keys, and `Mapping` is invariant in its key type."""

BATCH_ROWS = 500
"""Rows per statement batch: well under SQLite's 32,766 and PostgreSQL's 65,535 bound
parameters for the widest table, and small enough to keep transactions short."""


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of at most `size` items (itertools.batched arrives in Python 3.12)."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


class StoreBase:
    """Owns one SQLAlchemy engine (a thread-safe connection pool); every method takes its own
    connection, so one `Store` serves a pool of pulling threads."""

    def __init__(
        self,
        url: str | URL,
        *,
        schema: str | None = None,
        migrate: bool = True,
        clock: Clock = utc_now,
        echo: bool = False,
    ) -> None:
        self._url = normalize_url(url, schema)
        self._schema = schema
        self._clock = clock
        self._echo = echo
        self._engine = build_engine(self._url, echo=echo)
        self._lock_engine: Engine | None = None
        self._namespace: str | None = None
        self._namespace_lock = threading.Lock()
        if migrate:
            self.migrate()

    @property
    def backend(self) -> str:
        """ "sqlite" or "postgresql"."""
        return self._engine.dialect.name

    @property
    def url(self) -> str:
        """The database URL with any password masked (safe to log)."""
        return self._url.render_as_string(hide_password=True)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def migrate(self) -> None:
        """Bring the schema to the latest revision (a no-op when it already is)."""
        upgrade_schema(self._engine, self._schema)

    def close(self) -> None:
        self._engine.dispose()
        if self._lock_engine is not None:
            self._lock_engine.dispose()

    def __enter__(self) -> StoreBase:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A write transaction: committed on success, rolled back on error."""
        options = {WRITE_OPTION: True}
        with self._engine.connect().execution_options(**options) as connection, connection.begin():
            yield connection

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        with self._engine.connect() as connection, connection.begin():
            yield connection

    def _now(self) -> datetime:
        return self._clock()

    @contextmanager
    def advisory_lock(self, name: str) -> Iterator[bool]:
        """Try to take the lock `name` for the duration of the block; yields whether it did.

        PostgreSQL: `pg_try_advisory_lock` (held until unlocked, not per transaction) on a
        dedicated, unpooled connection, keyed by a stable 64-bit hash of the schema and `name`, so
        workers sharing one database exclude each other per name (e.g. one sync per
        connection) and never wait. The lock goes when the block ends, or with the connection
        if the worker dies.
        SQLite: always succeeds: a cycle there already holds the whole store (`cycle_lock`),
        so only one process ever asks.
        """
        if self.backend != "postgresql":
            yield True
            return
        key = lock_key(f"{self._lock_namespace()}:{name}")
        connection = self._locking_engine().connect()
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        acquired = False
        try:
            taken = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key})
            acquired = bool(taken.scalar())
            yield acquired
        finally:
            try:
                if acquired:
                    connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            except SQLAlchemyError:
                # The session is gone (server restarted, backend terminated), and its lock
                # with it: nothing left to release, and the block's own outcome stands.
                log.debug("releasing the advisory lock %r failed", name, exc_info=True)
            finally:
                connection.close()  # unpooled: ends the session, and any lock it still holds

    @contextmanager
    def cycle_lock(self, purpose: str = "the cycle") -> Iterator[None]:
        """Hold the store for one cycle (or one undo); raises `StoreBusy` when another
        process holds it. SQLite: the lock file of `spm_sync.store.cycle_lock`, so two
        processes never run cycles on one file at once. PostgreSQL: nothing here; workers
        share that store and exclude each other per tracker connection (`advisory_lock`).
        An in-memory database belongs to one process and needs no lock."""
        database = self._sqlite_file()
        if database is None:
            yield
            return
        with exclusive_cycle(database, purpose):
            yield

    def _sqlite_file(self) -> Path | None:
        """The SQLite database file, or None (PostgreSQL, or SQLite in memory)."""
        if self.backend != "sqlite":
            return None
        name = self._url.database or ""
        if name.startswith("file:"):
            name = name.removeprefix("file:").split("?", 1)[0]
            if "mode=memory" in (self._url.database or ""):
                return None
        if name in ("", ":memory:"):
            return None
        return Path(name).resolve()

    def _locking_engine(self) -> Engine:
        """Unpooled: a cycle holds a lock per tracker connection for its whole length, and
        taking those sessions from the pool (5 + 10 overflow) would leave none for the work
        itself once a config has more than a dozen connections."""
        with self._namespace_lock:
            if self._lock_engine is None:
                self._lock_engine = build_engine(self._url, self._echo, pooled=False)
            return self._lock_engine

    def _lock_namespace(self) -> str:
        with self._namespace_lock:
            if self._namespace is None:
                with self._reading() as connection:
                    schema = connection.execute(text("SELECT current_schema()")).scalar()
                self._namespace = f"spm-sync:{schema}"
            return self._namespace

    def _insert(self, table: Table) -> postgresql.Insert | sqlite.Insert:
        """The dialect's INSERT, which has `on_conflict_do_update` on both backends."""
        if self.backend == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    def _upsert(self, table: Table, values: dict[str, Any], keys: tuple[str, ...]) -> None:
        """Insert one row, or overwrite the other columns of the row that has its `keys`."""
        statement = self._insert(table).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=list(keys),
            set_={name: value for name, value in values.items() if name not in keys},
        )
        with self._writing() as connection:
            connection.execute(statement)

    def _replace_run_rows(
        self,
        table: Table,
        run_id: int,
        rows: Iterable[dict[str, Any]],
        connection_name: str | None,
    ) -> int:
        """Replace a run's rows (or one connection's share of them): re-running a stage of a
        resumed run leaves exactly one copy. `rows` are consumed a batch at a time, so a
        generator of 170,000 alignment rows never sits in memory as a list."""
        count = 0
        with self._writing() as connection:
            scope = table.c.run_id == run_id
            if connection_name is not None:
                scope = scope & (table.c.connection == connection_name)
            connection.execute(delete(table).where(scope))
            for chunk in batched(rows, BATCH_ROWS):
                foreign = [row for row in chunk if connection_name not in (None, row["connection"])]
                if foreign:
                    raise ValueError(
                        f"rows of connection {foreign[0]['connection']!r} given to replace "
                        f"those of {connection_name!r}"
                    )
                connection.execute(insert(table), [{**row, "run_id": run_id} for row in chunk])
                count += len(chunk)
        return count
