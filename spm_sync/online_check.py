"""`spm-sync check --online`: does every name in the config exist where it points?

One `CheckLine` per check, each with the fix when it fails:
- the store opens and its schema is current;
- per Jira connection (`spm_sync.online_jira`): who the credentials sign in as (`GET
  /myself`; for a refused scoped token, the API gateway address to use), the JQL scope runs
  (Cloud `POST /search/approximate-count`, Data Center `POST /search` with `maxResults: 0`),
  every configured field name exists (`GET /field`) and resolves with the expected type, the
  rank field exists, every OKR link type exists (`GET /issueLinkType`); with write-back on,
  on one issue in scope, the permissions it needs (`GET /mypermissions`) and that each field
  it writes is on the edit screen (`GET /issue/{key}/editmeta`);
- per Azure DevOps connection: who the PAT belongs to (`GET _apis/connectionData`), the scope's
  WIQL runs, every configured field (WSJF inputs, score, rank, priority) exists in the project,
  every OKR relation type exists (`GET _apis/wit/workitemrelationtypes`); with write-back on,
  one work item in scope accepts the fields it writes (`PATCH …?validateOnly=true`);
- SMTP, when email is on: connect, EHLO, STARTTLS and login as configured.
Nothing is written anywhere, the store included: a SQLite file that does not exist yet is not
created and no store is migrated. Secrets are read from their environment variables and never
shown.
"""

from __future__ import annotations

import os
import smtplib
import ssl
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import cache, partial
from pathlib import Path

from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from connectors.azure_devops_client import AzureDevOpsClient
from connectors.azure_devops_fields import (
    TAGS_FIELD,
    FieldRef,
    catalog_index,
    close_matches,
    configured_fields,
    find_field,
    resolve_from_catalog,
)
from connectors.azure_devops_fields import FieldMap as AdoFieldMap
from connectors.azure_devops_writes import field_operation, patch_document, target_field
from connectors.base import ConnectorError, RequestStats
from connectors.http import RetryPolicy
from connectors.settings import connection_secret, read_secret
from connectors.wiql_builder import WiqlScope, build_scope_query
from reports.email import SmtpFactory, default_smtp_factory, refuse_login_in_clear
from reports.settings import EmailSettings
from spm_sync.check import CheckLine
from spm_sync.config import Config
from spm_sync.connection_config import (
    AzureDevOpsConnection,
    ConnectionWriteBack,
    JiraConnection,
)
from spm_sync.online_jira import jira_checks
from spm_sync.online_names import okr_link_types
from spm_sync.pull import describe
from spm_sync.store import Store
from spm_sync.store.engine import MIGRATIONS_DIR

__all__ = ["ado_checks", "check_online", "jira_checks", "smtp_checks", "store_checks"]

Check = Callable[[], Iterable[CheckLine]]


def check_online(
    config: Config,
    *,
    environ: Mapping[str, str] | None = None,
    smtp_factory: SmtpFactory = default_smtp_factory,
) -> Iterator[CheckLine]:
    """Every online check, streamed so each line prints as soon as it is known."""
    env = os.environ if environ is None else environ
    yield from _guarded("store", lambda: store_checks(config))
    for connection in config.connections:
        if isinstance(connection, JiraConnection):
            yield from _guarded(connection.name, partial(jira_checks, connection, env))
        else:
            yield from _guarded(connection.name, partial(ado_checks, connection, env))
    if config.report.email.enabled:
        yield from _guarded("smtp", lambda: smtp_checks(config, smtp_factory))


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


# -- Azure DevOps ----------------------------------------------------------------------------


def _ado_client(settings: AzureDevOpsConnection, environ: Mapping[str, str]) -> AzureDevOpsClient:
    """The connector's client without the discovery cache, so the check asks the server."""
    return AzureDevOpsClient(
        settings.url,
        settings.project,
        connection_secret(settings.name, settings.auth.token_env, environ),
        stats=RequestStats(),
        retry=RetryPolicy.from_settings(settings.retry),
        timeout=settings.timeout_seconds,
        verify_tls=settings.verify_tls,
        cache_dir=None,
    )


def ado_checks(settings: AzureDevOpsConnection, environ: Mapping[str, str]) -> Iterator[CheckLine]:
    name = settings.name
    client = _ado_client(settings, environ)
    try:
        data = client.read_json("_apis/connectionData", "read the signed-in user")
        user = (data.get("authenticatedUser") or {}).get("providerDisplayName") or "unknown"
        yield CheckLine(True, f"{name}: signed in to {settings.url} as {user}")
        scope = build_scope_query(WiqlScope.from_settings(settings.scope))
        answer = client.query_ids(scope, top=1, time_precision=False)
        found = "items found" if answer.ids else "no items yet"
        yield CheckLine(
            True, f"{name}: project {settings.project!r} and the scope query run ({found})"
        )
        catalog = client.fields()
        field_lines = list(_ado_fields(settings, catalog))
        yield from field_lines
        if answer.ids and all(line.ok for line in field_lines):
            fields = resolve_from_catalog(configured_fields(settings), catalog)
            yield from _ado_write_access(settings, client, fields, answer.ids[0])
        elif settings.write_back.enabled and not answer.ids:
            yield CheckLine(
                True, f"{name}: write access not checked: no work item in scope yet", warning=True
            )
        yield from _ado_relation_types(settings, client)
    finally:
        client.close()


def _ado_write_access(
    settings: AzureDevOpsConnection, client: AzureDevOpsClient, fields: AdoFieldMap, item_id: int
) -> Iterator[CheckLine]:
    """Can write-back do what it is switched on for? One work item in scope gets the update a
    run would send, with each field set to the value it already holds, and
    `validateOnly=true`: Azure DevOps runs its permission, rule and read-only checks and
    saves nothing."""
    name, write_back = settings.name, settings.write_back
    targets = {  # setting -> reference name, as the connector's writer resolves it
        setting: target_field(write_field, fields)
        for setting, write_field in write_back.switched_on.items()
    }
    if not targets:
        return
    current = client.work_item(item_id, sorted(set(targets.values())))
    values = current.get("fields") or {}
    operations = [
        field_operation(
            reference, _probe_value(reference, values.get(reference), fields, write_back)
        )
        for reference in dict.fromkeys(targets.values())
    ]
    document = patch_document(int(current.get("rev") or 0), operations)
    answer = client.update_work_item(
        item_id, document, suppress_notifications=False, validate_only=True
    )
    written = ", ".join(setting.removeprefix("write_back.") for setting in targets)
    if answer.ok:
        yield CheckLine(
            True, f"{name}: work item {item_id} accepts {written} (validated only, not saved)"
        )
    else:
        yield CheckLine(
            False,
            f"{name}: work item {item_id} refuses {written}: HTTP {answer.status}: "
            f"{answer.message}",
            "the token needs the Work Items (Read & Write) scope and its user 'Edit work items "
            "in this node' on the area path; the fields must be writable",
        )


def _probe_value(
    reference: str, value: object, fields: AdoFieldMap, write_back: ConnectionWriteBack
) -> object:
    """The value a validation-only update sets: what the field holds, or one it could hold
    (priorities run 1 to 4; the others are numbers, or the tags)."""
    if value is not None:
        return value
    if reference == TAGS_FIELD:
        return write_back.orphan_label
    return 2 if reference == fields.priority else 0


def _ado_fields(
    settings: AzureDevOpsConnection, catalog: Sequence[FieldRef]
) -> Iterator[CheckLine]:
    """Each configured name against the project's fields, by reference or display name."""
    known = catalog_index(catalog)
    for wanted in configured_fields(settings):
        found = find_field(known, wanted.name)
        if found is None:
            matches = close_matches(wanted.name, known)
            fix = f"close matches: {', '.join(matches)}" if matches else "name an existing field"
            yield CheckLine(
                False, f"{settings.name}: {wanted.setting}: no field {wanted.name!r}", fix
            )
        else:
            same = found.reference_name.casefold() == wanted.name.strip().casefold()
            where = "exists" if same else f"is {found.reference_name}"
            yield CheckLine(True, f"{settings.name}: {wanted.setting} {wanted.name!r} {where}")


def _ado_relation_types(
    settings: AzureDevOpsConnection, client: AzureDevOpsClient
) -> Iterator[CheckLine]:
    if not settings.okr.link_types:
        return
    data = client.read_json("_apis/wit/workitemrelationtypes", "list the relation types")
    names = [str(r.get("referenceName")) for r in data.get("value") or []]
    names += [str(r.get("name")) for r in data.get("value") or []]
    yield from okr_link_types(settings, names, "relation type", "relation type")


# -- SMTP ------------------------------------------------------------------------------------


def smtp_checks(config: Config, smtp_factory: SmtpFactory) -> Iterator[CheckLine]:
    settings = EmailSettings.from_config(config.report.email)
    if settings is None:
        return
    where = f"SMTP {settings.host}:{settings.port} ({settings.security})"
    steps = []
    try:
        with smtp_factory(settings, ssl.create_default_context()) as smtp:
            smtp.ehlo()
            steps.append("EHLO")
            if settings.security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
                steps.append("STARTTLS")
            if settings.user_env and settings.password_env:
                refuse_login_in_clear(smtp, settings)
                smtp.login(read_secret(settings.user_env), read_secret(settings.password_env))
                steps.append("login")
    except (OSError, smtplib.SMTPException, LookupError) as error:
        done = f" after {', '.join(steps)}" if steps else ""
        yield CheckLine(
            False,
            f"{where}: failed{done}: {describe(error)}",
            "check report.email host, port, security and the login's environment variables",
        )
        return
    yield CheckLine(True, f"{where} answers ({', '.join(steps)} ok)")
