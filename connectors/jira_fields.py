"""Resolve the field names a user configured ("Job Size", "Rank") to Jira field ids.

Jira addresses custom fields by id (`customfield_10016`) in every request and answer, while
people know them by name. `GET /rest/api/{2|3}/field` (`getFields`, specs/jira-platform-v3.json)
lists every field the caller can see, unpaginated, with `id`, `name`, `custom` and `schema`
(`type`, `custom`, `customId`), so one call per run resolves all names.

Names are not unique in Jira (two "Job Size" fields from two apps happen), so a name that
matches several fields is an error unless exactly one of them has the schema we expect; the
message lists the ids, because a field id is always accepted in place of a name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.base import UnknownFieldError, field_suggestions
from connectors.settings import JiraSettings

LEXORANK_TYPE = "com.pyxis.greenhopper.jira:gh-lexo-rank"
EPIC_LINK_TYPE = "com.pyxis.greenhopper.jira:gh-epic-link"
PARENT_LINK_TYPE = "com.atlassian.jpo:jpo-custom-field-parent"
DEFAULT_EPIC_LINK = "Epic Link"
DEFAULT_PARENT_LINK = "Parent Link"

_FIELD_ID = re.compile(r"^(customfield_\d+|cf\[(\d+)\])$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ResolvedField:
    """One configured field as Jira knows it."""

    id: str
    name: str
    schema_type: str | None = None
    custom_type: str | None = None
    custom_id: int | None = None


@dataclass(frozen=True, slots=True)
class FieldMap:
    """The ids of everything the connector reads or writes beyond Jira's system fields.

    `inputs` maps each WSJF input of `WorkItem` ("business_value", ...) to its field.
    """

    inputs: Mapping[str, ResolvedField]
    score: ResolvedField | None = None
    cost_of_delay: ResolvedField | None = None
    rank: ResolvedField | None = None
    epic_link: ResolvedField | None = None
    parent_link: ResolvedField | None = None

    @property
    def custom_ids(self) -> list[str]:
        """Ids to request, without duplicates (one field may serve two settings)."""
        resolved = [
            *self.inputs.values(),
            self.score,
            self.cost_of_delay,
            self.rank,
            self.epic_link,
            self.parent_link,
        ]
        return list(dict.fromkeys(f.id for f in resolved if f is not None))


class AmbiguousFieldError(UnknownFieldError):
    """Several fields carry the configured name and none stands out by its schema."""

    def __init__(self, setting: str, name: str, candidates: list[str]) -> None:
        super().__init__(setting, name, candidates)
        self.args = (
            f"{setting}: field name {name!r} is ambiguous on the tracker ({len(candidates)} "
            f"fields carry it); configure one of them by id: {', '.join(candidates)}",
        )


@dataclass(frozen=True, slots=True)
class _Expectation:
    """What a well-configured field looks like, to break ties and to warn about odd ones."""

    schema_types: frozenset[str] = frozenset()
    custom_type: str | None = None
    purpose: str = ""

    def met_by(self, entry: Mapping[str, Any]) -> bool:
        schema = entry.get("schema") or {}
        if self.custom_type is not None:
            return schema.get("custom") == self.custom_type
        return schema.get("type") in self.schema_types


_WSJF_INPUT = _Expectation(frozenset({"number", "option"}), purpose="a number or select list")
_WRITTEN_NUMBER = _Expectation(frozenset({"number"}), purpose="a number field (it is written)")
_RANK = _Expectation(custom_type=LEXORANK_TYPE, purpose="the Jira Software lexorank field")
_EPIC_LINK = _Expectation(custom_type=EPIC_LINK_TYPE, purpose="the Epic Link field")
_PARENT_LINK = _Expectation(custom_type=PARENT_LINK_TYPE, purpose="the Parent Link field")


@dataclass
class _Resolver:
    catalog: Sequence[Mapping[str, Any]]
    warnings: list[str] = field(default_factory=list)

    def find(self, setting: str, wanted: str, expect: _Expectation) -> ResolvedField | None:
        """The field named (or id'd) `wanted`; None when absent. Raises when ambiguous."""
        matches = self._matches(wanted)
        if len(matches) > 1:
            fitting = [entry for entry in matches if expect.met_by(entry)]
            if len(fitting) != 1:
                raise AmbiguousFieldError(
                    setting, wanted, [f"{e['id']} ({e.get('name', '?')})" for e in matches]
                )
            matches = fitting
        if not matches:
            return None
        entry = matches[0]
        if not expect.met_by(entry):
            schema = entry.get("schema") or {}
            shown = schema.get("custom") or schema.get("type") or "no schema"
            self.warnings.append(
                f"{setting}: field {wanted!r} ({entry['id']}) is of type {shown!r}, expected "
                f"{expect.purpose}; values are converted item by item"
            )
        return _resolved(entry)

    def require(self, setting: str, wanted: str, expect: _Expectation) -> ResolvedField:
        found = self.find(setting, wanted, expect)
        if found is None:
            raise UnknownFieldError(setting, wanted, self.close_matches(wanted))
        return found

    def close_matches(self, wanted: str) -> list[str]:
        labels = {
            str(e.get("name", "")).casefold(): f"{e.get('name')} ({e['id']})" for e in self.catalog
        }
        return field_suggestions(wanted, labels)

    def _matches(self, wanted: str) -> list[Mapping[str, Any]]:
        by_id = _FIELD_ID.match(wanted.strip())
        if by_id:
            field_id = f"customfield_{by_id.group(2)}" if by_id.group(2) else wanted.strip()
            return [e for e in self.catalog if str(e.get("id", "")).lower() == field_id.lower()]
        exact = [e for e in self.catalog if e.get("name") == wanted]
        if exact:
            return exact
        folded = " ".join(wanted.split()).casefold()
        return [
            e for e in self.catalog if " ".join(str(e.get("name", "")).split()).casefold() == folded
        ]


def _resolved(entry: Mapping[str, Any]) -> ResolvedField:
    schema = entry.get("schema") or {}
    custom_id = schema.get("customId")
    if custom_id is None:
        digits = re.fullmatch(r"customfield_(\d+)", str(entry["id"]))
        custom_id = int(digits.group(1)) if digits else None
    return ResolvedField(
        id=str(entry["id"]),
        name=str(entry.get("name") or entry["id"]),
        schema_type=schema.get("type"),
        custom_type=schema.get("custom"),
        custom_id=int(custom_id) if custom_id is not None else None,
    )


def resolve_fields(
    catalog: Iterable[Mapping[str, Any]], settings: JiraSettings, *, datacenter: bool
) -> tuple[FieldMap, list[str]]:
    """Resolve every configured field name against `GET /field`'s answer.

    Returns the map and warnings. Raises `UnknownFieldError` (naming the setting, the name and
    close matches) for a configured field that is missing or ambiguous. The Data Center
    hierarchy fields are optional when left at their defaults: "Parent Link" exists only with
    Advanced Roadmaps, and a site without it still syncs (hierarchy from `parent` and Epic Link).
    """
    resolver = _Resolver([entry for entry in catalog if "id" in entry])
    wsjf = settings.wsjf_fields
    inputs = {
        name: resolver.require(f"wsjf_fields.{name}", getattr(wsjf, name), _WSJF_INPUT)
        for name in ("business_value", "time_criticality", "risk_reduction", "job_size")
    }
    score = cost = epic = parent = None
    if wsjf.score:
        score = resolver.require("wsjf_fields.score", wsjf.score, _WRITTEN_NUMBER)
    if wsjf.cost_of_delay:
        cost = resolver.require("wsjf_fields.cost_of_delay", wsjf.cost_of_delay, _WRITTEN_NUMBER)
    rank = resolver.require("rank_field", settings.rank_field, _RANK)
    if datacenter:
        epic = _hierarchy_field(
            resolver, "epic_link_field", settings.epic_link_field, _EPIC_LINK, DEFAULT_EPIC_LINK
        )
        parent = _hierarchy_field(
            resolver,
            "parent_link_field",
            settings.parent_link_field,
            _PARENT_LINK,
            DEFAULT_PARENT_LINK,
        )
    fields = FieldMap(inputs, score, cost, rank, epic, parent)
    return fields, resolver.warnings


def _hierarchy_field(
    resolver: _Resolver, setting: str, wanted: str, expect: _Expectation, default: str
) -> ResolvedField | None:
    if wanted == default:
        found = resolver.find(setting, wanted, expect)
        if found is None:
            resolver.warnings.append(
                f"{setting}: no field {wanted!r} on this Jira; hierarchy through it is not read"
            )
        return found
    return resolver.require(setting, wanted, expect)


def resolve_number_field(
    catalog: Iterable[Mapping[str, Any]], setting: str, wanted: str
) -> ResolvedField:
    """One more field read as a number (a saved query's summed field), resolved like the WSJF
    inputs: by name or id, a shared name settled by schema. Raises `UnknownFieldError` (with
    close matches) or `AmbiguousFieldError`."""
    resolver = _Resolver([entry for entry in catalog if "id" in entry])
    return resolver.require(setting, wanted, _WSJF_INPUT)
