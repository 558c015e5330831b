"""What the Azure DevOps sandbox knows about fields, link types and states.

The field catalogue holds the standard reference names of the Agile process plus the custom
fields spm-sync writes (`Custom.*`), with the display names users type in configs and WIQL
(`[Business Value]` and `[Microsoft.VSTS.Common.BusinessValue]` name the same field). Shapes
follow `WorkItemField2`, `WorkItemRelationType` and `WorkItemStateColor` in
`specs/ado-wit-7.1.json`; the relation types and their attributes are those of the official
example `specs/ado-wit-7.1-examples/workItemRelationTypes/GET__relation_types.json`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NUMERIC_TYPES = frozenset({"integer", "double"})
TEXT_TYPES = frozenset({"string", "plainText", "html", "history", "identity"})


@dataclass(frozen=True, slots=True)
class FieldDef:
    """One field: `type` is the service's `FieldType` ("integer", "dateTime", "treePath"...)."""

    reference_name: str
    name: str
    type: str
    read_only: bool = False
    description: str = ""

    @property
    def is_identity(self) -> bool:
        return self.type == "identity"


_FIELDS: tuple[FieldDef, ...] = (
    FieldDef("System.Id", "ID", "integer", read_only=True),
    FieldDef("System.Title", "Title", "string"),
    FieldDef("System.WorkItemType", "Work Item Type", "string", read_only=True),
    FieldDef("System.State", "State", "string"),
    FieldDef("System.Reason", "Reason", "string"),
    FieldDef("System.AreaPath", "Area Path", "treePath"),
    FieldDef("System.IterationPath", "Iteration Path", "treePath"),
    FieldDef("System.TeamProject", "Team Project", "string", read_only=True),
    FieldDef("System.Tags", "Tags", "plainText"),
    FieldDef("System.Rev", "Rev", "integer", read_only=True),
    FieldDef("System.CreatedDate", "Created Date", "dateTime", read_only=True),
    FieldDef("System.ChangedDate", "Changed Date", "dateTime", read_only=True),
    FieldDef("System.CreatedBy", "Created By", "identity", read_only=True),
    FieldDef("System.ChangedBy", "Changed By", "identity", read_only=True),
    FieldDef("System.AssignedTo", "Assigned To", "identity"),
    FieldDef(
        "Microsoft.VSTS.Common.StateChangeDate",
        "State Change Date",
        "dateTime",
        read_only=True,
        description="When the State last changed; set by the process on every state change.",
    ),
    FieldDef(
        "System.Parent",
        "Parent",
        "integer",
        read_only=True,
        description="Id of the parent; change it through the Hierarchy-Reverse relation.",
    ),
    FieldDef("System.History", "History", "history"),
    FieldDef("System.Description", "Description", "html"),
    FieldDef(
        "Microsoft.VSTS.Common.BusinessValue",
        "Business Value",
        "integer",
        description="The business value for the customer when the epic is released.",
    ),
    FieldDef(
        "Microsoft.VSTS.Common.TimeCriticality",
        "Time Criticality",
        "double",
        description="How does the business value decay over time.",
    ),
    FieldDef("Microsoft.VSTS.Scheduling.Effort", "Effort", "double"),
    FieldDef("Microsoft.VSTS.Scheduling.StoryPoints", "Story Points", "double"),
    FieldDef("Microsoft.VSTS.Common.StackRank", "Stack Rank", "double"),
    FieldDef("Microsoft.VSTS.Common.Priority", "Priority", "integer"),
    # Custom fields: a team creates them, so their types are whatever the team chose. The risk
    # field is a text field on purpose: teams type "8", "big" or "?" into it.
    FieldDef("Custom.RiskReduction", "Risk Reduction | Opportunity Enablement", "string"),
    FieldDef("Custom.WSJFScore", "WSJF Score", "double"),
    FieldDef("Custom.CostOfDelay", "Cost of Delay", "double"),
)

_BY_NAME: dict[str, FieldDef] = {}
for _field in _FIELDS:
    _BY_NAME[_field.reference_name.lower()] = _field
    _BY_NAME.setdefault(_field.name.lower(), _field)


def all_fields() -> tuple[FieldDef, ...]:
    return _FIELDS


def find_field(name_or_ref: str) -> FieldDef | None:
    """A field by reference name or display name, ignoring case, as the service resolves them."""
    return _BY_NAME.get(name_or_ref.strip().lower())


_OPERATIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "equality": (("SupportedOperations.Equals", "="), ("SupportedOperations.NotEquals", "<>")),
    "order": (
        ("SupportedOperations.GreaterThan", ">"),
        ("SupportedOperations.LessThan", "<"),
        ("SupportedOperations.GreaterThanEquals", ">="),
        ("SupportedOperations.LessThanEquals", "<="),
    ),
    "in": (("SupportedOperations.In", "In"), ("SupportedOperations.NotIn", "Not In")),
    "contains": (
        ("SupportedOperations.Contains", "Contains"),
        ("SupportedOperations.NotContains", "Does Not Contain"),
    ),
    "under": (
        ("SupportedOperations.Under", "Under"),
        ("SupportedOperations.NotUnder", "Not Under"),
    ),
}

_OPERATIONS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "integer": ("equality", "order", "in"),
    "double": ("equality", "order", "in"),
    "dateTime": ("equality", "order", "in"),
    "string": ("equality", "order", "in", "contains"),
    "identity": ("equality", "in", "contains"),
    "plainText": ("contains",),
    "html": ("contains",),
    "history": ("contains",),
    "treePath": ("equality", "in", "under"),
}


def field_json(field: FieldDef, organization_url: str) -> dict[str, Any]:
    """The `WorkItemField2` shape of GET _apis/wit/fields."""
    groups = _OPERATIONS_BY_TYPE.get(field.type, ("equality",))
    return {
        "name": field.name,
        "referenceName": field.reference_name,
        "description": field.description,
        "type": field.type,
        "usage": "workItem",
        "readOnly": field.read_only,
        "canSortBy": field.type not in ("plainText", "html", "history"),
        "isQueryable": True,
        "supportedOperations": [
            {"referenceName": ref, "name": name}
            for group in groups
            for ref, name in _OPERATIONS[group]
        ],
        "isIdentity": field.is_identity,
        "isPicklist": False,
        "isPicklistSuggested": False,
        "isLocked": False,
        "url": f"{organization_url}/_apis/wit/fields/{field.reference_name}",
    }


def field_reference_json(field: FieldDef, organization_url: str) -> dict[str, str]:
    """The `WorkItemFieldReference` shape used in WIQL `columns` and `sortColumns`."""
    return {
        "referenceName": field.reference_name,
        "name": field.name,
        "url": f"{organization_url}/_apis/wit/fields/{field.reference_name}",
    }


@dataclass(frozen=True, slots=True)
class RelationType:
    reference_name: str
    name: str
    attributes: dict[str, Any]

    @property
    def opposite(self) -> str | None:
        """The end stored on the target item; a non-directional type is its own opposite."""
        if self.attributes.get("usage") != "workItemLink":
            return None
        return self.attributes.get("oppositeEndReferenceName", self.reference_name)


def _link(
    reference: str, name: str, topology: str, forward: bool | None, **extra: Any
) -> RelationType:
    attributes: dict[str, Any] = {
        "usage": "workItemLink",
        "editable": False,
        "enabled": True,
        "acyclic": topology != "network",
        "directional": forward is not None,
        "singleTarget": topology != "tree",
        "topology": topology,
    }
    if forward is not None:
        base = reference.rsplit("-", 1)[0]
        attributes["isForward"] = forward
        attributes["oppositeEndReferenceName"] = f"{base}-{'Reverse' if forward else 'Forward'}"
    attributes.update(extra)
    return RelationType(reference, name, attributes)


_RELATION_TYPES: tuple[RelationType, ...] = (
    _link("System.LinkTypes.Hierarchy-Forward", "Child", "tree", True),
    _link("System.LinkTypes.Hierarchy-Reverse", "Parent", "tree", False),
    _link("System.LinkTypes.Related", "Related", "network", None),
    _link("System.LinkTypes.Dependency-Forward", "Successor", "dependency", True),
    _link("System.LinkTypes.Dependency-Reverse", "Predecessor", "dependency", False),
    _link("System.LinkTypes.Duplicate-Forward", "Duplicate", "tree", True),
    _link("System.LinkTypes.Duplicate-Reverse", "Duplicate Of", "tree", False),
    _link("Microsoft.VSTS.Common.TestedBy-Forward", "Tested By", "dependency", True, editable=True),
    _link("Microsoft.VSTS.Common.TestedBy-Reverse", "Tests", "dependency", False, editable=True),
    _link("Microsoft.VSTS.Common.Affects-Forward", "Affects", "dependency", True, editable=True),
    _link(
        "Microsoft.VSTS.Common.Affects-Reverse", "Affected By", "dependency", False, editable=True
    ),
    RelationType(
        "ArtifactLink",
        "Artifact Link",
        {"usage": "resourceLink", "editable": False, "enabled": True},
    ),
    RelationType(
        "AttachedFile",
        "Attached File",
        {"usage": "resourceLink", "editable": False, "enabled": True},
    ),
    RelationType(
        "Hyperlink", "Hyperlink", {"usage": "resourceLink", "editable": False, "enabled": True}
    ),
)
_RELATIONS_BY_NAME = {relation.reference_name.lower(): relation for relation in _RELATION_TYPES}

PARENT = "System.LinkTypes.Hierarchy-Reverse"
CHILD = "System.LinkTypes.Hierarchy-Forward"
RELATED = "System.LinkTypes.Related"


def all_relation_types() -> tuple[RelationType, ...]:
    return _RELATION_TYPES


def find_relation_type(reference_name: str) -> RelationType | None:
    """Relation type names match ignoring case (a spec example sends `Dependency-forward`)."""
    return _RELATIONS_BY_NAME.get(reference_name.lower())


def relation_type_json(relation: RelationType, organization_url: str) -> dict[str, Any]:
    return {
        "attributes": dict(relation.attributes),
        "referenceName": relation.reference_name,
        "name": relation.name,
        "url": f"{organization_url}/_apis/wit/workItemRelationTypes/{relation.reference_name}",
    }


# -- states ------------------------------------------------------------------------------------
# State categories of the Agile process (learn.microsoft.com "How workflow category states are
# used"): Proposed and InProgress and Resolved and Completed and Removed; spm-sync maps them to
# To Do / In Progress / Done.
_COLORS = {
    "Proposed": "b2b2b2",
    "InProgress": "007acc",
    "Resolved": "ff9d00",
    "Completed": "339933",
    "Removed": "ffffff",
}
_FULL = (
    ("New", "Proposed"),
    ("Active", "InProgress"),
    ("Resolved", "Resolved"),
    ("Closed", "Completed"),
    ("Removed", "Removed"),
)
DEFAULT_STATES: dict[str, tuple[tuple[str, str], ...]] = {
    "Epic": _FULL,
    "Feature": _FULL,
    "User Story": _FULL,
    "Key Result": _FULL,
    "Bug": _FULL[:4],
    "Task": (
        ("New", "Proposed"),
        ("Active", "InProgress"),
        ("Closed", "Completed"),
        ("Removed", "Removed"),
    ),
}
CATEGORY_OF_STATUS = {"To Do": "Proposed", "In Progress": "InProgress", "Done": "Completed"}


def state_json(name: str, category: str) -> dict[str, str]:
    """The `WorkItemStateColor` shape."""
    return {"name": name, "color": _COLORS.get(category, "b2b2b2"), "category": category}
