"""The fields a sandbox Jira knows, in `GET /rest/api/3/field` shape (`FieldDetails` in
specs/jira-platform-v3.json), and the fixed catalogues around them (priorities, status
categories, issue types, link types).

Custom field ids differ between the Cloud and Data Center flavours on purpose (`customfield_100xx`
vs `customfield_120xx`): a connector must resolve names through the field API, as on real sites
where ids differ per instance. Data Center adds "Epic Link" and "Parent Link" (Jira Software /
Advanced Roadmaps), which Cloud replaced with `parent` [doc: Adaptavist, epic and parent fields
deprecation, see specs/API_NOTES.md].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Flavour = Literal["cloud", "datacenter"]

FLOAT = "com.atlassian.jira.plugin.system.customfieldtypes:float"
TEXTFIELD = "com.atlassian.jira.plugin.system.customfieldtypes:textfield"
SELECT = "com.atlassian.jira.plugin.system.customfieldtypes:select"
LEXO_RANK = "com.pyxis.greenhopper.jira:gh-lexo-rank"
EPIC_LINK = "com.pyxis.greenhopper.jira:gh-epic-link"
PARENT_LINK = "com.atlassian.jpo:jpo-custom-field-parent"


@dataclass(frozen=True, slots=True, eq=False)  # identity: one object per field
class FieldDef:
    """One field. `kind` says how it is rendered, searched and edited; `slot` names the
    `StoredIssue.values` entry of a custom number/text field."""

    id: str
    name: str
    kind: str
    schema: dict[str, Any] | None
    custom: bool = False
    slot: str | None = None
    navigable: bool = True
    orderable: bool = True
    searchable: bool = True
    editable: bool = True
    rendered: bool = True  # appears in an issue's `fields` (issuekey/statusCategory do not)
    extra_clause_names: tuple[str, ...] = ()

    @property
    def custom_id(self) -> int | None:
        return int(self.id.removeprefix("customfield_")) if self.custom else None

    @property
    def clause_names(self) -> tuple[str, ...]:
        if self.custom:
            return (f"cf[{self.custom_id}]", self.name)
        return (self.id, *self.extra_clause_names)

    def details(self) -> dict[str, Any]:
        """The `FieldDetails` JSON of GET /field."""
        body: dict[str, Any] = {
            "id": self.id,
            "key": self.id,
            "name": self.name,
            "custom": self.custom,
            "orderable": self.orderable,
            "navigable": self.navigable,
            "searchable": self.searchable,
            "clauseNames": list(self.clause_names),
        }
        if self.schema is not None:
            body["schema"] = self.schema
        return body


def _system(id_: str, name: str, kind: str, type_: str | None, **options: Any) -> FieldDef:
    schema = {"type": type_, "system": id_} if type_ else None
    if type_ == "array":
        assert schema is not None
        schema["items"] = options.pop("items")
    return FieldDef(id_, name, kind, schema, **options)


def _custom(number: int, name: str, kind: str, type_: str, custom: str, **options: Any) -> FieldDef:
    schema = {"type": type_, "custom": custom, "customId": number}
    return FieldDef(f"customfield_{number}", name, kind, schema, custom=True, **options)


SYSTEM_FIELDS = (
    _system("issuekey", "Key", "issuekey", None, editable=False, rendered=False,
            extra_clause_names=("id", "issue", "key")),
    _system("summary", "Summary", "summary", "string"),
    _system("issuetype", "Issue Type", "issuetype", "issuetype", editable=False,
            extra_clause_names=("type",)),
    _system("status", "Status", "status", "status", editable=False),
    _system("statusCategory", "Status Category", "statusCategory", "statusCategory",
            editable=False, rendered=False, orderable=False),
    _system("project", "Project", "project", "project", editable=False),
    _system("priority", "Priority", "priority", "priority"),
    _system("labels", "Labels", "labels", "array", items="string"),
    _system("components", "Components", "components", "array", items="component",
            extra_clause_names=("component",)),
    _system("created", "Created", "created", "datetime", editable=False,
            extra_clause_names=("createdDate",)),
    _system("updated", "Updated", "updated", "datetime", editable=False,
            extra_clause_names=("updatedDate",)),
    _system("issuelinks", "Linked Issues", "issuelinks", "array", items="issuelinks",
            orderable=False, editable=False),
    _system("parent", "Parent", "parent", None, orderable=False),
    _system("description", "Description", "description", "string", orderable=False),
)  # fmt: skip


def _customs(base: int) -> tuple[FieldDef, ...]:
    return (
        _custom(base + 1, "Team", "option", "option", SELECT),
        _custom(base + 10, "Business Value", "number", "number", FLOAT, slot="business_value"),
        _custom(base + 11, "Time Criticality", "number", "number", FLOAT, slot="time_criticality"),
        _custom(
            base + 12,
            "Risk Reduction | Opportunity Enablement",
            "text",
            "string",
            TEXTFIELD,
            slot="risk_reduction",
            orderable=False,
        ),
        _custom(base + 13, "Job Size", "number", "number", FLOAT, slot="job_size"),
        _custom(base + 14, "WSJF Score", "number", "number", FLOAT, slot="wsjf_score"),
        _custom(base + 15, "Cost of Delay", "number", "number", FLOAT, slot="cost_of_delay"),
        _custom(base + 16, "Story Points", "number", "number", FLOAT, slot="story_points"),
        # Jira Software refuses edits of Rank through editIssue: it moves only via the agile
        # rank API, so the field is not editable here either.
        _custom(base + 19, "Rank", "rank", "any", LEXO_RANK, editable=False),
    )


CLOUD_FIELDS = SYSTEM_FIELDS + _customs(10000)
WSJF_FIELD_NAMES: dict[str, str] = {
    ("score" if field.slot == "wsjf_score" else field.slot): field.name
    for field in CLOUD_FIELDS
    if field.slot
    in ("business_value", "time_criticality", "risk_reduction", "job_size", "wsjf_score",
        "cost_of_delay")
}  # fmt: skip
"""The sandbox's WSJF fields by their `wsjf_fields` setting: what a config names them by."""
DATACENTER_FIELDS = (
    SYSTEM_FIELDS
    + _customs(12000)
    + (
        _custom(12100, "Epic Link", "epic_link", "any", EPIC_LINK),
        _custom(12101, "Parent Link", "parent_link", "any", PARENT_LINK),
    )
)


def field_catalogue(flavour: Flavour) -> tuple[FieldDef, ...]:
    return CLOUD_FIELDS if flavour == "cloud" else DATACENTER_FIELDS


# Jira's default priority scheme, highest first (ORDER BY priority sorts by this sequence).
PRIORITIES = ("Highest", "High", "Medium", "Low", "Lowest")
DEFAULT_PRIORITY = "Medium"

# The three status categories: id, key, colour (as GET /statuscategory returns them).
STATUS_CATEGORIES = {
    "To Do": (2, "new", "blue-gray"),
    "In Progress": (4, "indeterminate", "yellow"),
    "Done": (3, "done", "green"),
}

# Issue types the sandbox knows up front: name -> (id, hierarchy level, is sub-task).
ISSUE_TYPES = {
    "Sub-task": (10003, -1, True),
    "Story": (10001, 0, False),
    "Bug": (10004, 0, False),
    "Task": (10002, 0, False),
    "Key Result": (10005, 0, False),
    "Epic": (10000, 1, False),
    "Initiative": (10006, 2, False),
}

# Link types: name -> (id, inward description, outward description).
LINK_TYPES = {
    "Blocks": ("10000", "is blocked by", "blocks"),
    "Cloners": ("10001", "is cloned by", "clones"),
    "Duplicate": ("10002", "is duplicated by", "duplicates"),
    "Relates": ("10003", "relates to", "relates to"),
    "Drives": ("10004", "is driven by", "drives"),
}
