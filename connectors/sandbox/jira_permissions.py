"""What the sandbox user may do: `GET /mypermissions` and `GET /issue/{key}/editmeta`.

The sandbox user holds every project permission unless a test takes some away
(`JiraSandbox.denied_permissions`); a field can be taken off the edit screen
(`JiraSandbox.off_screen_fields`). Both switches act on the writes too, as in Jira:
- without EDIT_ISSUES no field is on the edit screen, so editIssue answers 400 with "Field 'x'
  cannot be set…" per field (the spec: 400 when "the user does not have the necessary
  permission to edit one or more fields"), and editmeta lists no field;
- without SCHEDULE_ISSUES the agile rank call answers 403 ("To rank issues user has to have
  schedule issue permission", specs/jira-software-agile.json).
The permission ids, names and types are Jira's built-in ones.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any

from connectors.sandbox.server import HttpError


@dataclass(frozen=True, slots=True)
class Permission:
    key: str
    id: str
    name: str
    type: str
    description: str


PERMISSIONS: dict[str, Permission] = {
    p.key: p
    for p in (
        Permission("ADMINISTER", "0", "Administer Jira", "GLOBAL",
                   "Ability to perform most administration functions (excluding Import & Export, "
                   "SMTP Configuration, etc.)."),
        Permission("ADMINISTER_PROJECTS", "23", "Administer Projects", "PROJECT",
                   "Ability to administer a project in Jira."),
        Permission("BROWSE_PROJECTS", "10", "Browse Projects", "PROJECT",
                   "Ability to browse projects and the issues within them."),
        Permission("EDIT_ISSUES", "12", "Edit Issues", "PROJECT", "Ability to edit issues."),
        Permission("SCHEDULE_ISSUES", "28", "Schedule Issues", "PROJECT",
                   "Ability to set or edit an issue's due date."),
        Permission("LINK_ISSUES", "21", "Link Issues", "PROJECT",
                   "Ability to link issues together and create linked issues. Only useful if "
                   "issue linking is turned on."),
    )
}  # fmt: skip
ADMIN_ONLY = frozenset({"ADMINISTER", "ADMINISTER_PROJECTS"})
RANK_FORBIDDEN = (
    "You do not have permission to rank issues: the Schedule Issues permission is required."
)


def requested_permissions(raw: str | None, *, required: bool) -> list[str]:
    """The keys of the `permissions` parameter (comma-separated). Cloud requires it; Data
    Center answers every permission without it."""
    keys = [key.strip() for key in (raw or "").split(",") if key.strip()]
    if not keys:
        if required:
            raise HttpError(
                400,
                {"errorMessages": ["The 'permissions' query parameter is required."], "errors": {}},
            )
        return list(PERMISSIONS)
    unknown = [key for key in keys if key not in PERMISSIONS]
    if unknown:
        message = f"Permission key(s) {', '.join(unknown)} are invalid or deprecated."
        raise HttpError(400, {"errorMessages": [message], "errors": {}})
    return list(dict.fromkeys(keys))


def has_permission(key: str, *, denied: Collection[str], admin: bool) -> bool:
    if key in denied:
        return False
    return admin or key not in ADMIN_ONLY


def permissions_json(keys: Iterable[str], granted: Callable[[str], bool]) -> dict[str, Any]:
    """The `Permissions` body of GET /mypermissions."""
    body: dict[str, Any] = {}
    for key in keys:
        permission = PERMISSIONS[key]
        body[key] = {
            "id": permission.id,
            "key": permission.key,
            "name": permission.name,
            "type": permission.type,
            "description": permission.description,
            "havePermission": granted(key),
        }
    return {"permissions": body}


def edit_operations(kind: str) -> list[str]:
    """The verbs editIssue accepts for a field of this kind (see `jira_edit`)."""
    if kind in ("labels", "components"):
        return ["add", "set", "remove"]
    if kind == "issuelinks":
        return ["add"]
    return ["set"]
