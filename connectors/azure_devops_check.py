"""An Azure DevOps connection's own online check (`AzureDevOpsConnector.check`): who the PAT
belongs to (`GET _apis/connectionData`), the scope's WIQL runs, every configured field (WSJF
inputs, score, rank, priority) exists in the project, every OKR relation type exists (`GET
_apis/wit/workitemrelationtypes`); with write-back on, one work item in scope accepts the
fields it writes (`PATCH …?validateOnly=true`). Nothing is saved.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

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
from connectors.check_names import link_type_lines
from connectors.settings import AzureDevOpsSettings
from connectors.wiql_builder import WiqlScope, build_scope_query
from spm_sync.core.checks import CheckLine, CheckRequest


def ado_checks(
    settings: AzureDevOpsSettings, client: AzureDevOpsClient, request: CheckRequest
) -> Iterator[CheckLine]:
    """Every check of one Azure DevOps connection, in the order a user fixes them."""
    name = settings.name
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
        yield from _ado_write_access(settings, request, client, fields, answer.ids[0])
    elif request.writes_anything and not answer.ids:
        yield CheckLine(
            True, f"{name}: write access not checked: no work item in scope yet", warning=True
        )
    yield from _ado_relation_types(settings, request, client)


def _ado_write_access(
    settings: AzureDevOpsSettings,
    request: CheckRequest,
    client: AzureDevOpsClient,
    fields: AdoFieldMap,
    item_id: int,
) -> Iterator[CheckLine]:
    """Can write-back do what it is switched on for? One work item in scope gets the update a
    run would send, with each field set to the value it already holds, and
    `validateOnly=true`: Azure DevOps runs its permission, rule and read-only checks and
    saves nothing."""
    name = settings.name
    targets = {  # setting -> reference name, as the connector's writer resolves it
        setting: target_field(write_field, fields)
        for setting, write_field in request.writes.items()
    }
    if not targets:
        return
    current = client.work_item(item_id, sorted(set(targets.values())))
    values = current.get("fields") or {}
    operations = [
        field_operation(
            reference, _probe_value(reference, values.get(reference), fields, request)
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
    reference: str, value: object, fields: AdoFieldMap, request: CheckRequest
) -> object:
    """The value a validation-only update sets: what the field holds, or one it could hold
    (priorities run 1 to 4; the others are numbers, or the tags)."""
    if value is not None:
        return value
    if reference == TAGS_FIELD:
        return request.orphan_label
    return 2 if reference == fields.priority else 0


def _ado_fields(
    settings: AzureDevOpsSettings, catalog: Sequence[FieldRef]
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
    settings: AzureDevOpsSettings, request: CheckRequest, client: AzureDevOpsClient
) -> Iterator[CheckLine]:
    if not request.link_types:
        return
    data = client.read_json("_apis/wit/workitemrelationtypes", "list the relation types")
    names = [str(r.get("referenceName")) for r in data.get("value") or []]
    names += [str(r.get("name")) for r in data.get("value") or []]
    yield from link_type_lines(
        settings.name, request.link_types, names, "relation type", "relation type"
    )
