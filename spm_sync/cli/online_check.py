"""`spm-sync check --online`: does every name in the config exist where it points?

One `CheckLine` per check, each with the fix when it fails. This module composes them: the
store opens and its schema is current (here); each connection's connector checks its own
tracker (`connectors.jira_check`: sign-in, scope, fields, permissions and edit screen, link
types; `connectors.azure_devops_check`: sign-in, scope, fields, a validate-only update,
relation types); the email code checks SMTP (`reports.email_check`). Nothing is written
anywhere, the store included: a SQLite file that does not exist yet is not created and no
store is migrated. Secrets are read from their environment variables and never shown.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import cache, partial
from pathlib import Path

from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from connectors.base import CheckingConnector, ConnectorError
from connectors.registry import ConnectorFactory, default_connector_factory
from reports.email import SmtpFactory, default_smtp_factory
from reports.email_check import smtp_checks
from reports.settings import EmailSettings
from spm_sync.config.connections import AzureDevOpsConnection, JiraConnection
from spm_sync.config.model import Config
from spm_sync.core.checks import CheckLine, CheckRequest
from spm_sync.core.errors import describe
from spm_sync.store import Store
from spm_sync.store.engine import MIGRATIONS_DIR

__all__ = ["check_online", "check_request", "store_checks"]

Check = Callable[[], Iterable[CheckLine]]


def check_online(
    config: Config,
    *,
    environ: Mapping[str, str] | None = None,
    smtp_factory: SmtpFactory = default_smtp_factory,
    connector_factory: ConnectorFactory | None = None,
) -> Iterator[CheckLine]:
    """Every online check, streamed so each line prints as soon as it is known. Each
    connector checks its own tracker (`check()`); its client keeps no discovery cache, so the
    check asks the server."""
    env = os.environ if environ is None else environ
    make = connector_factory or default_connector_factory(environ=env, discovery_cache_dir=None)
    yield from _guarded("store", lambda: store_checks(config))
    for connection in config.connections:
        yield from _guarded(connection.name, partial(_connection_checks, make, connection))
    email = EmailSettings.from_config(config.report.email) if config.report.email.enabled else None
    if email is not None:
        yield from _guarded("smtp", partial(smtp_checks, email, smtp_factory))


def check_request(connection: JiraConnection | AzureDevOpsConnection) -> CheckRequest:
    """What the connection's domain settings ask of its tracker, as plain values."""
    write_back = connection.write_back
    return CheckRequest(
        link_types=tuple(connection.okr.link_types),
        writes=write_back.switched_on,
        orphan_label=write_back.orphan_label,
    )


def _connection_checks(
    make: ConnectorFactory, connection: JiraConnection | AzureDevOpsConnection
) -> Iterator[CheckLine]:
    connector = make(connection)
    try:
        if not isinstance(connector, CheckingConnector):
            yield CheckLine(
                True, f"{connection.name}: this connector has no online check", warning=True
            )
            return
        yield from connector.check(check_request(connection))
    finally:
        connector.close()


def _guarded(what: str, check: Check) -> Iterator[CheckLine]:
    """The check's lines; an error that ends it becomes one failed line."""
    try:
        yield from check()
    except ConnectorError as error:
        yield CheckLine(False, f"{what}: {error}", "see the message; then run the check again")
    except Exception as error:
        yield CheckLine(False, f"{what}: {describe(error)}", "see the message")


def store_checks(config: Config) -> Iterator[CheckLine]:
    """Can the store be opened, and at which schema revision is it? Opened without migrating;
    a SQLite file that does not exist yet is left for the first run to create."""
    missing = _sqlite_file_to_create(config)
    if missing is not None:
        yield missing
        return
    try:
        store = Store.from_settings(config.store, migrate=False)
    except Exception as error:
        yield CheckLine(
            False,
            f"store {config.store.url} cannot be opened: {describe(error)}",
            "check store.url (and store.password_env), and that the database accepts us",
        )
        return
    with store:
        yield _schema_line(store.url, store.schema_revision())


def _sqlite_file_to_create(config: Config) -> CheckLine | None:
    """The line for a SQLite store whose file is not there yet (None for any other store)."""
    url = make_url(config.store.url)
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in ("", ":memory:") or (
        database.startswith("file:")
    ):
        return None
    path = Path(database)
    if path.exists():
        return None
    folder = next((parent for parent in path.parents if parent.exists()), Path("."))
    if not os.access(folder, os.W_OK):
        return CheckLine(
            False,
            f"store {config.store.url} does not exist and {folder} is not writable",
            "point store.url at a folder spm-sync may write to",
        )
    return CheckLine(True, f"store {config.store.url} does not exist yet: the first run creates it")


@cache
def _scripts() -> ScriptDirectory:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config)


def head_revision() -> str | None:
    return _scripts().get_current_head()


def known_revisions() -> set[str]:
    return {script.revision for script in _scripts().walk_revisions()}


def _schema_line(url: str, revision: str | None) -> CheckLine:
    head = head_revision()
    if revision == head:
        return CheckLine(True, f"store {url} is reachable (schema revision {revision})")
    if revision is None:
        return CheckLine(True, f"store {url} is reachable (empty: the first run creates tables)")
    if revision not in known_revisions():
        return CheckLine(
            False,
            f"store {url} was written by a newer spm-sync (schema revision {revision})",
            "upgrade spm-sync, or point store.url at another database",
        )
    return CheckLine(
        True,
        f"store {url} is reachable (schema revision {revision}; the next run upgrades it "
        f"to {head})",
        warning=True,
    )
