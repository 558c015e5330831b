"""Resolve the field names of an Azure DevOps connection to reference names, once per run.

Config may name a field by reference name (`Microsoft.VSTS.Common.BusinessValue`) or by the
display name people see ("Effort", "Risk Reduction | Opportunity Enablement"). Work item JSON
is keyed by reference name only, so every configured name is resolved before the first item is
read. Both kinds of name are unique per organization and compared case-insensitively, as the
service does.

Two sources, cheapest first:
- the scope query itself: WIQL accepts either kind of name in brackets, and its answer lists the
  SELECTed `columns` with `referenceName` and `name` (specs/ado-wit-7.1.json
  `WorkItemQueryResult.columns`, example `wiql/GET__wit_get_id_workitems.json`), so the query
  that finds the ids resolves the names at no extra cost;
- `GET {org}/{project}/_apis/wit/fields` ("Fields_List"): every field with `referenceName` and
  `name`. Used when the columns do not answer (a server that omits them) and to explain an
  unknown name with close matches.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from connectors.base import UnknownFieldError, field_suggestions
from connectors.settings import AzureDevOpsSettings

TAGS_FIELD = "System.Tags"
PARENT_FIELD = "System.Parent"
"""A real field on Azure DevOps Services, absent from the spec examples (UNVERIFIED there)."""

STANDARD_FIELDS: tuple[str, ...] = (
    "System.Id",
    "System.Title",
    "System.WorkItemType",
    "System.State",
    "System.AreaPath",
    "System.TeamProject",
    TAGS_FIELD,
    "System.Rev",
    "System.ChangedDate",
    "System.CreatedDate",
)
"""System fields every normalized item needs, by reference name (fixed across processes)."""


@dataclass(frozen=True, slots=True)
class FieldRef:
    """A field as the service names it: `reference_name` keys the JSON, `name` is displayed."""

    reference_name: str
    name: str


@dataclass(frozen=True, slots=True)
class FieldMap:
    """Reference names of the configured fields the connector reads and writes."""

    business_value: str
    time_criticality: str
    risk_reduction: str
    job_size: str
    rank: str
    priority: str
    score: str | None = None
    cost_of_delay: str | None = None

    def reference_names(self) -> tuple[str, ...]:
        """Everything a pull reads, standard fields first, without duplicates."""
        configured = (
            self.business_value,
            self.time_criticality,
            self.risk_reduction,
            self.job_size,
            self.score,
            self.cost_of_delay,
            self.rank,
            self.priority,
        )
        names = [*STANDARD_FIELDS, *(name for name in configured if name)]
        return tuple(dict.fromkeys(names))


@dataclass(frozen=True, slots=True)
class ConfiguredField:
    """One field name from config: `attribute` of `FieldMap`, `setting` path for messages."""

    attribute: str
    setting: str
    name: str


def configured_fields(settings: AzureDevOpsSettings) -> tuple[ConfiguredField, ...]:
    wsjf = settings.wsjf_fields
    named = [
        ("business_value", "wsjf_fields.business_value", wsjf.business_value),
        ("time_criticality", "wsjf_fields.time_criticality", wsjf.time_criticality),
        ("risk_reduction", "wsjf_fields.risk_reduction", wsjf.risk_reduction),
        ("job_size", "wsjf_fields.job_size", wsjf.job_size),
        ("score", "wsjf_fields.score", wsjf.score),
        ("cost_of_delay", "wsjf_fields.cost_of_delay", wsjf.cost_of_delay),
        ("rank", "rank_field", settings.rank_field),
        ("priority", "priority_field", settings.priority_field),
    ]
    return tuple(ConfiguredField(a, s, n) for a, s, n in named if n)


def select_names(configured: Sequence[ConfiguredField]) -> tuple[str, ...]:
    """The SELECT list of the scope query: standard fields, then configured names as written."""
    return tuple(dict.fromkeys([*STANDARD_FIELDS, *(f.name for f in configured)]))


def _key(name: str) -> str:
    return name.strip().casefold()


def catalog_index(catalog: Iterable[FieldRef]) -> dict[str, FieldRef]:
    """The fields of a catalog by reference name and by display name (ignoring case and
    surrounding blanks), so a config may use either; the first field to claim a name keeps it."""
    known: dict[str, FieldRef] = {}
    for ref in catalog:
        known.setdefault(_key(ref.reference_name), ref)
        known.setdefault(_key(ref.name), ref)
    return known


def find_field(known: Mapping[str, FieldRef], name: str) -> FieldRef | None:
    """The field of `catalog_index` that `name` names, if any."""
    return known.get(_key(name))


def resolve_from_columns(
    configured: Sequence[ConfiguredField], select: Sequence[str], columns: Sequence[FieldRef]
) -> FieldMap | None:
    """Resolve through the columns a WIQL answer lists for `select`, in SELECT order.

    Returns None, so the caller asks the field catalog instead, unless every column carries the
    name it was selected by: a server that drops or reorders columns must not mislabel fields.
    """
    if len(columns) != len(select):
        return None
    by_selected: dict[str, str] = {}
    for selected, column in zip(select, columns, strict=True):
        if _key(selected) not in (_key(column.reference_name), _key(column.name)):
            return None
        by_selected[_key(selected)] = column.reference_name
    return _field_map({f.attribute: by_selected[_key(f.name)] for f in configured})


def resolve_from_catalog(
    configured: Sequence[ConfiguredField], catalog: Iterable[FieldRef]
) -> FieldMap:
    """Resolve through the field list of `GET _apis/wit/fields`.

    Raises `UnknownFieldError` for the first name (in config order) that is neither a reference
    name nor a display name, with the closest existing names of either kind as suggestions.
    """
    known = catalog_index(catalog)
    resolved: dict[str, str] = {}
    for wanted in configured:
        match = find_field(known, wanted.name)
        if match is None:
            raise UnknownFieldError(wanted.setting, wanted.name, close_matches(wanted.name, known))
        resolved[wanted.attribute] = match.reference_name
    return _field_map(resolved)


def close_matches(name: str, known: Mapping[str, FieldRef]) -> list[str]:
    """Up to five suggestions, shown as "Display Name (Reference.Name)"."""
    labels = {key: f"{ref.name} ({ref.reference_name})" for key, ref in known.items()}
    return field_suggestions(name, labels)


def _field_map(resolved: Mapping[str, str]) -> FieldMap:
    return FieldMap(
        business_value=resolved["business_value"],
        time_criticality=resolved["time_criticality"],
        risk_reduction=resolved["risk_reduction"],
        job_size=resolved["job_size"],
        rank=resolved["rank"],
        priority=resolved["priority"],
        score=resolved.get("score"),
        cost_of_delay=resolved.get("cost_of_delay"),
    )
