"""A Jira connection's own online check (`JiraConnector.check`): who the credentials sign in as
(`GET /myself`; a 401 at a Cloud site's own address is answered with the API gateway address
a scoped token needs, from the site's `/_edge/tenant_info`), which site the gateway reaches,
the JQL scope, every configured field, the permissions and edit screen write-back needs, and
the OKR link types. Nothing is written.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import requests

from connectors.base import UnknownFieldError
from connectors.check_names import link_type_lines, suggest
from connectors.jira_client import (
    GATEWAY_URL,
    JiraClient,
    browse_url,
    gateway_cloud_id,
    tenant_cloud_id,
)
from connectors.jira_fields import FieldMap as JiraFieldMap
from connectors.jira_fields import resolve_fields
from connectors.settings import JiraSettings
from spm_sync.core.checks import CheckLine, CheckRequest
from spm_sync.core.domain import WriteField

if TYPE_CHECKING:
    from connectors.jira import JiraConnector


def jira_checks(connector: JiraConnector, request: CheckRequest) -> Iterator[CheckLine]:
    """Every check of one Jira connection, in the order a user fixes them: sign-in first."""
    settings = connector.settings
    name = settings.name
    client = connector.client
    response = client.send("GET", "/rest/api/2/myself")  # the same on Cloud and DC
    if response.status_code == 401:
        yield _rejected_credentials(settings, client, response)
        return
    me = client.parse(response, "read the signed-in user (GET /myself)")
    who = me.get("displayName") or me.get("name") or "an unnamed user"
    yield CheckLine(True, f"{name}: signed in to {settings.url} as {who}")
    info = client.server_info()
    yield from _through_gateway(settings, info)
    flavour = connector.flavour_of(info)
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
            yield from _jira_write_access(settings, request, client, fields, flavour)
    yield from _jira_link_types(settings, request, client)


def _rejected_credentials(
    settings: JiraSettings, client: JiraClient, response: requests.Response
) -> CheckLine:
    """A 401 at a Jira Cloud site's own address is what a scoped API token gets (the only kind
    a service account has): those work only through the API gateway. The site's cloud id
    (`/_edge/tenant_info`, asked without credentials) makes the fix an address to paste."""
    message = f"{settings.name}: {client.explain(response, 'read the signed-in user')}"
    fix = "check the user and the token in the configured environment variables"
    if gateway_cloud_id(settings.url) is None:
        cloud_id = tenant_cloud_id(
            settings.url, timeout=settings.timeout_seconds, verify=settings.verify_tls
        )
        if cloud_id is not None:
            gateway = GATEWAY_URL.format(cloud_id=cloud_id)
            fix = (
                f"{fix}; a scoped API token (the only kind a service account gets) works only "
                f"through the API gateway: set `url: {gateway}` (cloud id of this site)"
            )
    return CheckLine(False, message, fix)


def _through_gateway(settings: JiraSettings, info: Mapping[str, Any]) -> Iterator[CheckLine]:
    cloud_id = gateway_cloud_id(settings.url)
    if cloud_id is None:
        return
    site = browse_url(settings.url, info)
    if site == settings.url.rstrip("/"):
        yield CheckLine(
            True,
            f"{settings.name}: the API gateway does not say which site cloud id {cloud_id} "
            "is (serverInfo has no baseUrl); issue links will point at the gateway",
            "links in the report will not open; check the cloud id",
            warning=True,
        )
        return
    yield CheckLine(
        True, f"{settings.name}: the API gateway reaches site {site} (cloud id {cloud_id})"
    )


def _jira_scope(settings: JiraSettings, client: Any, flavour: str) -> CheckLine:
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
    settings: JiraSettings, catalog: Sequence[Mapping[str, Any]]
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
                suggest(field_name, (str(e.get("name")) for e in catalog if e.get("name"))),
            )


def _jira_field_types(
    settings: JiraSettings, catalog: Sequence[Mapping[str, Any]], flavour: str
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
    line = CheckLine(
        True,
        f"{settings.name}: configured fields resolve with usable types{extra}",
        warning=bool(warnings),
    )
    return line, fields


def _jira_write_access(
    settings: JiraSettings,
    request: CheckRequest,
    client: Any,
    fields: JiraFieldMap,
    flavour: str,
) -> Iterator[CheckLine]:
    """Can write-back do what it is switched on for? Asked of one issue in scope: the
    permissions (`GET /mypermissions`: Edit Issues for fields, Schedule Issues for rank) and
    the edit screen (`GET /issue/{key}/editmeta`), since Jira refuses a field that is not on
    the screen of the issue's type. Nothing is written."""
    name = settings.name
    if not request.writes_anything:
        return
    key = _first_issue_key(settings, client, flavour)
    if key is None:
        yield CheckLine(
            True, f"{name}: write access not checked: no issue in scope yet", warning=True
        )
        return
    targets = {  # setting -> (field id, how to name it); rank moves through the agile API
        setting: _jira_edit_target(write_field, fields)
        for setting, write_field in request.writes.items()
        if write_field is not WriteField.RANK
    }
    needed = {"EDIT_ISSUES": "Edit Issues"} if targets else {}
    if request.writes_rank:
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


def _first_issue_key(settings: JiraSettings, client: Any, flavour: str) -> str | None:
    body = {"jql": f"({settings.jql})", "maxResults": 1, "fields": ["summary"]}
    path = "/rest/api/3/search/jql" if flavour == "cloud" else "/rest/api/2/search"
    page = client.parse(client.send("POST", path, body), "find an issue in scope")
    issues = page.get("issues") or []
    return str(issues[0]["key"]) if issues and issues[0].get("key") else None


def _jira_link_types(
    settings: JiraSettings, request: CheckRequest, client: Any
) -> Iterator[CheckLine]:
    if not request.link_types:
        return
    response = client.send("GET", f"/rest/api/{client.api}/issueLinkType")
    types = client.parse(response, "list issue link types (GET /issueLinkType)")
    names = [str(t.get("name")) for t in types.get("issueLinkTypes") or [] if t.get("name")]
    yield from link_type_lines(
        settings.name, request.link_types, names, "link type", "issue link type"
    )
