"""Write-back to Azure DevOps: one JSON Patch document per work item, guarded by its revision,
and what the service's answer means. Pure functions; the connector does the HTTP.

`PATCH {org}/{project}/_apis/wit/workitems/{id}` ("Work Items_Update", specs/ado-wit-7.1.json)
takes `application/json-patch+json`. Its first operation is `{"op": "test", "path": "/rev",
"value": <rev>}` (example `workItems/PATCH__wit_workitems__taskId_.json`): the service applies
the document atomically, so when a person saved the item after we read it the whole update is
refused and nothing of theirs is overwritten. The status of that refusal is not in the spec
(specs/API_NOTES.md: UNVERIFIED, 400 or 412); both are read as a conflict.

Several items go in one `$batch` request (`{org}/_apis/wit/$batch`, "Work Item Batch Update";
not in the 7.1 spec file, see specs/API_NOTES.md): a list of sub-requests, each the PATCH it
wraps (`method`, `uri`, `headers`, `body` = the same guarded document), answered with one
`{code, headers, body}` per sub-request, in order, `body` being the JSON text of the answer
the PATCH alone would get. The service runs every sub-request on its own ("failed requests do
not affect subsequent requests"), so each item keeps its own `test /rev` and its own status.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from connectors.azure_devops_client import API_VERSION, PatchAnswer
from connectors.azure_devops_fields import TAGS_FIELD, FieldMap
from connectors.azure_devops_mapping import parse_tags
from connectors.values import number_or_problem
from spm_sync.core.domain import PlannedWrite, WriteField, WriteValue

BATCH_LIMIT = 200
"""Most sub-requests in one `$batch` (the documented figure is UNVERIFIED in specs/API_NOTES.md;
200 is also the limit of every other many-items call of the API)."""

_CONFLICT_TEXT = re.compile(
    r"TF26071|/rev\b|\brevision\b|\brev\b|test operation|precondition", re.IGNORECASE
)


class WriteValueError(ValueError):
    """A planned value this tracker cannot take (the message says why)."""


class PatchOutcome(StrEnum):
    WRITTEN = "written"
    CONFLICT = "conflict"
    NOTIFICATIONS_REFUSED = "notifications_refused"
    FAILED = "failed"


def target_field(write_field: WriteField, fields: FieldMap) -> str:
    """The reference name a planned write goes to."""
    targets: dict[WriteField, str | None] = {
        WriteField.WSJF_SCORE: fields.score,
        WriteField.COST_OF_DELAY: fields.cost_of_delay,
        WriteField.PRIORITY: fields.priority,
        WriteField.RANK: fields.rank,
        WriteField.LABELS: TAGS_FIELD,
    }
    target = targets[write_field]
    if target is None:
        setting = {WriteField.WSJF_SCORE: "score", WriteField.COST_OF_DELAY: "cost_of_delay"}
        raise WriteValueError(
            f"{write_field.value} cannot be written: wsjf_fields.{setting[write_field]} is not "
            "configured for this connection"
        )
    return target


def patch_value(write_field: WriteField, value: WriteValue) -> object:
    """The JSON value of a planned write, checked against what the field accepts."""
    if write_field is WriteField.LABELS:
        labels = () if value is None else value
        if isinstance(labels, str | int | float) or not all(
            isinstance(label, str) for label in labels
        ):
            raise WriteValueError(f"labels must be a list of tags, not {value!r}")
        if any(";" in label for label in labels):
            raise WriteValueError(f"a tag cannot contain ';': {value!r}")
        return "; ".join(label.strip() for label in labels if label.strip())
    if value is None:
        return None
    number, problem = number_or_problem(value)
    if number is None or isinstance(value, tuple):
        raise WriteValueError(f"{write_field.value} must be a number, not {value!r} ({problem})")
    if write_field is WriteField.PRIORITY:
        if not number.is_integer() or not 1 <= number <= 4:
            raise WriteValueError(f"priority must be an integer from 1 to 4, not {value!r}")
        return int(number)
    return number


def field_operation(reference_name: str, value: object) -> dict[str, Any]:
    """`add` sets a field whether or not it has a value (the spec examples use it); `remove`
    clears a number field."""
    path = f"/fields/{reference_name}"
    if value is None:
        return {"op": "remove", "path": path}
    return {"op": "add", "path": path, "value": value}


def patch_document(revision: int, operations: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The revision guard first, then the field operations."""
    return [{"op": "test", "path": "/rev", "value": revision}, *map(dict, operations)]


def expected_revision(writes: Sequence[PlannedWrite]) -> int:
    """The single `System.Rev` all writes of one item were planned from."""
    revisions = {write.expected_revision for write in writes}
    if len(revisions) != 1:
        raise WriteValueError(f"writes planned from different revisions: {sorted(revisions)}")
    (revision,) = revisions
    try:
        return int(revision)
    except ValueError:
        raise WriteValueError(f"revision {revision!r} is not a System.Rev number") from None


def classify(answer: PatchAnswer) -> PatchOutcome:
    """What an update's answer means for the audit log."""
    if answer.ok:
        return PatchOutcome.WRITTEN
    if answer.status in (409, 412):
        return PatchOutcome.CONFLICT
    compact = answer.message.replace(" ", "").casefold()
    if answer.status == 403 or "suppressnotifications" in compact:
        return PatchOutcome.NOTIFICATIONS_REFUSED
    if answer.status == 400 and _CONFLICT_TEXT.search(answer.message):
        return PatchOutcome.CONFLICT
    return PatchOutcome.FAILED


def holds_values(raw: Mapping[str, Any], planned: Mapping[str, object]) -> bool:
    """Whether a re-read item already carries every planned value (our own earlier write)."""
    current = raw.get("fields") or {}
    for reference_name, value in planned.items():
        found = current.get(reference_name)
        if reference_name == TAGS_FIELD:
            if set(parse_tags(found)) != set(parse_tags(value)):
                return False
        elif value is None:
            if number_or_problem(found)[0] is not None:
                return False
        else:
            number = number_or_problem(found)[0]
            if number is None or not math.isclose(number, float(value), rel_tol=1e-9):  # type: ignore[arg-type]
                return False
    return True


def new_revision(answer: PatchAnswer) -> str | None:
    body = answer.body
    if isinstance(body, Mapping) and isinstance(body.get("rev"), int):
        return str(body["rev"])
    return None


def batch_request(
    item_id: int, document: Sequence[Mapping[str, Any]], *, suppress_notifications: bool
) -> dict[str, Any]:
    """One sub-request of a `$batch`: the item's PATCH with its query (api-version, and the
    notification flag the batch endpoint reads per sub-request)."""
    query = f"api-version={API_VERSION}"
    if suppress_notifications:
        query += "&suppressNotifications=true"
    return {
        "method": "PATCH",
        "uri": f"/_apis/wit/workitems/{item_id}?{query}",
        "headers": {"Content-Type": "application/json-patch+json"},
        "body": [dict(operation) for operation in document],
    }


class BatchAnswerError(ValueError):
    """A `$batch` answer that does not say what became of each sub-request."""


def batch_answers(body: Any, expected: int) -> list[PatchAnswer]:
    """Each sub-request's answer, in request order, from a `$batch` answer `{count, value}`.

    A sub-answer's `body` is the JSON text of the PATCH's own answer; text that is not JSON is
    kept as the message. An answer with another number of entries cannot be matched to the
    items, so it is refused as a whole.
    """
    entries = body.get("value") if isinstance(body, Mapping) else None
    if not isinstance(entries, list) or len(entries) != expected:
        found = len(entries) if isinstance(entries, list) else "no list of"
        raise BatchAnswerError(f"the batch answer holds {found} answers for {expected} updates")
    answers: list[PatchAnswer] = []
    for entry in entries:
        code = entry.get("code") if isinstance(entry, Mapping) else None
        if not isinstance(code, int) or isinstance(code, bool):
            raise BatchAnswerError(f"a batch answer without a status code: {entry!r:.200}")
        text = entry.get("body")
        try:
            inner = json.loads(text) if isinstance(text, str) and text else text
        except ValueError:
            inner = None
        answers.append(PatchAnswer(code, inner, _message(inner, text, code)))
    return answers


def _message(inner: Any, text: Any, code: int) -> str:
    """The service's text of one sub-answer, as `service_message` reads a whole answer."""
    if isinstance(inner, Mapping):
        wrapped = inner.get("value")
        nested = wrapped.get("Message") if isinstance(wrapped, Mapping) else None
        for candidate in (inner.get("message"), nested):
            if isinstance(candidate, str) and candidate.strip():
                return candidate.strip()
    if 200 <= code < 300:
        return ""
    if isinstance(text, str) and text.strip():
        return text.strip()[:300]
    return f"HTTP {code}" if inner is None else json.dumps(inner)[:300]
