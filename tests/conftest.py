"""Shared fixtures: a private PostgreSQL schema per test, and a `store` on both backends.

PostgreSQL tests skip (with the reason shown) only when no server answers on 127.0.0.1:5432;
any other database error fails the test. Each test gets its own schema, so parallel runs never
see each other's tables.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from spm_sync.store import Store
from tests.browser_layout import find_chromium

PG_DSN = os.environ.get("SPM_SYNC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@functools.cache
def _postgres_unreachable() -> str | None:
    """Why no PostgreSQL answers, or None when one does (asked once per test run)."""
    try:
        with psycopg.connect(PG_DSN, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        return f"no PostgreSQL answers at {PG_DSN}: {str(exc).strip().splitlines()[0]}"
    return None


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A SQLAlchemy URL whose search_path is a fresh schema, dropped after the test."""
    reason = _postgres_unreachable()
    if reason:
        pytest.skip(reason)
    schema = f"test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(PG_DSN, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_DSN}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'spm-sync.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest) -> str:
    """The URL of an empty database on each backend."""
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """A migrated, empty store on SQLite and on PostgreSQL."""
    opened = Store(store_url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture(scope="module")
def browser() -> str:
    """Headless Chromium's path for the browser tests; they skip, saying why, without one."""
    found = find_chromium()
    if found is None:
        pytest.skip("no Chromium found (chromium, chromium-browser, google-chrome): not rendered")
    return found
