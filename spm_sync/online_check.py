"""`spm-sync check --online`: does every name in the config exist where it points?

One `CheckLine` per check, each with the fix when it fails:
- the store opens and its schema is current;
- per Jira connection: who the credentials sign in as (`GET /myself`), the JQL scope runs
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
Nothing is written anywhere; secrets are read from their environment variables and never shown.
"""

from __future__ import annotations

import difflib
import os
import smtplib
import ssl
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any

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
from connectors.base import ConnectorError, RequestStats, UnknownFieldError
from connectors.http import RetryPolicy
from connectors.jira import JiraConnector
from connectors.jira_fields import FieldMap as JiraFieldMap
from connectors.jira_fields import resolve_fields
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
from spm_sync.domain import WriteField
from spm_sync.pull import describe
from spm_sync.store import Store

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
    try:
        store = Store.from_settings(config.store)
    except Exception as error:
        yield CheckLine(
            False,
            f"store {config.store.url} cannot be opened: {describe(error)}",
            "check store.url (and store.password_env), and that the database accepts us",
        )
        return
    with store:
        revision = store.schema_revision()
        yield CheckLine(True, f"store {store.url} is reachable (schema revision {revision})")


# -- Jira ------------------------------------------------------------------------------------


def jira_checks(settings: JiraConnection, environ: Mapping[str, str]) -> Iterator[CheckLine]:
    name = settings.name
    connector = JiraConnector(settings, environ=environ)
    client = connector.client
    try:
        response = client.send("GET", "/rest/api/2/myself")  # the same on Cloud and DC
        me = client.parse(response, "read the signed-in user (GET /myself)")
        who = me.get("displayName") or me.get("name") or "an unnamed user"
        yield CheckLine(True, f"{name}: signed in to {settings.url} as {who}")
        flavour = connector.flavour_of(client.server_info())
        client.use_flavour(flavour)
        for warning in connector.warnings:
            yield CheckLine(False, f"{name}: {warning}", "set `deployment` to what the server is")
        yield _jira_scope(settings, client, flavour)
        catalog = client.fields()
        names = list(_jira_field_names(settings, catalog))
        yield from names
        if all(line.ok for line in names):  # else the resolver repeats the first problem
            line, fields = _jira_field_types(settings, catalog, flavour)
            yield line
            if fields is not None:
                yield from _jira_write_access(settings, client, fields, flavour)
        yield from _jira_link_types(settings, client)
    finally:
        connector.close()


def _jira_scope(settings: JiraConnection, client: Any, flavour: str) -> CheckLine:
    jql = f"({settings.jql})"
    if flavour == "cloud":
        response = client.send("POST", "/rest/api/3/search/approximate-count", {"jql": jql})
        what = "about {} issues"
    else:
        body = {"jql": jql, "startAt": 0, "maxResults": 0, "fields": ["key"]}
        response = client.send("POST", "/rest/api/2/search", body)
        what = "{} issues"
    if not response.ok:
        return CheckLine(
            False,
            f"{settings.name}: the jql scope does not run: {client.explain(response, 'search')}",
            "correct `jql` (try it in Jira's issue search first)",
        )
    page = response.json()
    count = page.get("count", page.get("total"))
    return CheckLine(True, f"{settings.name}: the jql scope runs ({what.format(count)})")


def _jira_field_names(
    settings: JiraConnection, catalog: Sequence[Mapping[str, Any]]
) -> Iterator[CheckLine]:
    known: dict[str, str] = {}
    for entry in catalog:
        if "id" in entry:
            known.setdefault(str(entry["id"]).casefold(), str(entry["id"]))
            known.setdefault(str(entry.get("name") or "").casefold(), str(entry["id"]))
    wsjf = settings.wsjf_fields
    wanted = [(f"wsjf_fields.{key}", getattr(wsjf, key)) for key in type(wsjf).model_fields]
    wanted.append(("rank_field", settings.rank_field))
    for setting, field_name in wanted:
        if field_name is None:
            continue
        field_id = known.get(field_name.casefold())
        if field_id is not None:
            yield CheckLine(True, f"{settings.name}: {setting} {field_name!r} is {field_id}")
        else:
            yield CheckLine(
                False,
                f"{settings.name}: {setting}: no field {field_name!r}",
                _suggest(field_name, (str(e.get("name")) for e in catalog if e.get("name"))),
            )


def _jira_field_types(
    settings: JiraConnection, catalog: Sequence[Mapping[str, Any]], flavour: str
) -> tuple[CheckLine, JiraFieldMap | None]:
    try:
        fields, warnings = resolve_fields(catalog, settings, datacenter=flavour == "datacenter")
    except UnknownFieldError as error:
        line = CheckLine(
            False,
            f"{settings.name}: {error}",
            "name a field of the expected type (or give its id, e.g. customfield_10016)",
        )
        return line, None
    extra = f" ({'; '.join(warnings)})" if warnings else ""
    line = CheckLine(True, f"{settings.name}: configured fields resolve with usable types{extra}")
    return line, fields


def _jira_write_access(
    settings: JiraConnection, client: Any, fields: JiraFieldMap, flavour: str
) -> Iterator[CheckLine]:
    """Can write-back do what it is switched on for? Asked of one issue in scope: the
    permissions (`GET /mypermissions`: Edit Issues for fields, Schedule Issues for rank) and
    the edit screen (`GET /issue/{key}/editmeta`), since Jira refuses a field that is not on
    the screen of the issue's type. Nothing is written."""
    name, write_back = settings.name, settings.write_back
    if not write_back.enabled:
        return
    key = _first_issue_key(settings, client, flavour)
    if key is None:
        yield CheckLine(True, f"{name}: write access not checked: no issue in scope yet")
        return
    targets = {  # setting -> (field id, how to name it); rank moves through the agile API
        setting: _jira_edit_target(write_field, fields)
        for setting, write_field in write_back.switched_on.items()
        if write_field is not WriteField.RANK
    }
    needed = {"EDIT_ISSUES": "Edit Issues"} if targets else {}
    if write_back.rank:
        needed["SCHEDULE_ISSUES"] = "Schedule Issues"
    params = {"issueKey": key, "permissions": ",".join(needed)}
    response = client.send("GET", f"/rest/api/{client.api}/mypermissions", params=params)
    granted = client.parse(response, "read the permissions (GET /mypermissions)")
    permissions = granted.get("permissions") or {}
    for permission, label in needed.items():
        if (permissions.get(permission) or {}).get("havePermission"):
            yield CheckLine(True, f"{name}: may {_purpose(permission)} ({label} on {key})")
        else:
            yield CheckLine(
                False,
                f"{name}: lacks the {label} permission on {key}: write-back would be refused",
                f"grant the {label} permission in the project's permission scheme",
            )
    if not targets or not (permissions.get("EDIT_ISSUES") or {}).get("havePermission"):
        return  # without Edit Issues the screen is empty: the line above says why
    response = client.send("GET", f"/rest/api/{client.api}/issue/{key}/editmeta")
    screen = client.parse(response, f"read the edit screen of {key} (GET /editmeta)")
    on_screen = screen.get("fields") or {}
    shown = [label for field_id, label in targets.values() if field_id in on_screen]
    if shown:
        yield CheckLine(True, f"{name}: on the edit screen of {key}: {', '.join(shown)}")
    for setting, (field_id, label) in targets.items():
        if field_id not in on_screen:
            yield CheckLine(
                False,
                f"{name}: {setting}: {label} is not on the edit screen of {key}; Jira "
                "would refuse the write",
                "add the field to the edit screen of the project's issue types",
            )


def _jira_edit_target(write_field: WriteField, fields: JiraFieldMap) -> tuple[str, str]:
    """(field id, how to name it) of a field edit: a resolved custom field for the WSJF
    values, the system fields for priority and labels."""
    custom = {WriteField.WSJF_SCORE: fields.score, WriteField.COST_OF_DELAY: fields.cost_of_delay}
    resolved = custom.get(write_field)
    if resolved is not None:
        return resolved.id, f"{resolved.name!r} ({resolved.id})"
    system = {WriteField.PRIORITY: "priority", WriteField.LABELS: "labels"}[write_field]
    return system, system.capitalize()


def _purpose(permission: str) -> str:
    return "rank issues" if permission == "SCHEDULE_ISSUES" else "edit issues"


def _first_issue_key(settings: JiraConnection, client: Any, flavour: str) -> str | None:
    body = {"jql": f"({settings.jql})", "maxResults": 1, "fields": ["summary"]}
    path = "/rest/api/3/search/jql" if flavour == "cloud" else "/rest/api/2/search"
    page = client.parse(client.send("POST", path, body), "find an issue in scope")
    issues = page.get("issues") or []
    return str(issues[0]["key"]) if issues and issues[0].get("key") else None


def _jira_link_types(settings: JiraConnection, client: Any) -> Iterator[CheckLine]:
    if not settings.okr.link_types:
        return
    response = client.send("GET", f"/rest/api/{client.api}/issueLinkType")
    types = client.parse(response, "list issue link types (GET /issueLinkType)")
    names = [str(t.get("name")) for t in types.get("issueLinkTypes") or [] if t.get("name")]
    yield from _okr_link_types(settings, names, "link type", "issue link type")


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
            yield CheckLine(True, f"{name}: write access not checked: no work item in scope yet")
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
    yield from _okr_link_types(settings, names, "relation type", "relation type")


def _okr_link_types(
    settings: JiraConnection | AzureDevOpsConnection,
    names: Sequence[str],
    noun: str,
    missing_noun: str,
) -> Iterator[CheckLine]:
    """One line per configured OKR link type: found among the tracker's `names` (ignoring
    case), or missing with the closest names as the fix."""
    folded = {name.casefold() for name in names}
    for link_type in settings.okr.link_types:
        if link_type.casefold() in folded:
            yield CheckLine(True, f"{settings.name}: {noun} {link_type!r} exists")
        else:
            yield CheckLine(
                False,
                f"{settings.name}: okr.link_types: no {missing_noun} {link_type!r}",
                _suggest(link_type, names),
            )


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


def _suggest(wanted: str, known: Iterable[str]) -> str:
    matches = difflib.get_close_matches(wanted, list(dict.fromkeys(known)), n=3, cutoff=0.5)
    if matches:
        return "close matches: " + ", ".join(repr(m) for m in matches)
    return "use a name that exists on the tracker"
