"""Reading the parts of an Azure DevOps request: JSON bodies, flags and read options.

Checked as the service checks them: POST bodies may be `application/json` or
`application/json-patch+json` (the default content-type restriction of the VSS REST
controllers), a work item PATCH only the latter; `fields` together with `$expand` other than
`none`/`links` is a `ConflictingParametersException` (`WorkItemGetRequestProcessor` of the WIT
REST layer); unknown fields are `TF51535`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connectors.sandbox import ado_protocol as protocol
from connectors.sandbox.ado_fields import find_field
from connectors.sandbox.server import SandboxRequest, SandboxResponse
from connectors.sandbox.wiql_eval import parse_date

JSON = "application/json"
JSON_PATCH = "application/json-patch+json"
EXPANSIONS = ("none", "relations", "fields", "links", "all")


@dataclass(frozen=True)
class ReadOptions:
    """`fields` (as reference names), `$expand` and `asOf` of a work item read."""

    fields: list[str] | None
    relations: bool
    links: bool
    as_of: datetime | None

    @classmethod
    def parse(cls, fields: list[str] | None, expand: Any, as_of: Any) -> ReadOptions:
        expansion = str(expand or "none").lower()
        if expansion not in EXPANSIONS:
            raise protocol.bad_argument(
                f"The $expand value '{expand}' is not one of None, Relations, Fields, Links, All."
            )
        references = None
        if fields:
            if expansion not in ("none", "links"):
                raise protocol.expand_with_fields()
            references = [_reference(str(name)) for name in fields]
        moment = None
        if as_of:
            moment = parse_date(str(as_of))[0]
            if moment is None:
                raise protocol.bad_argument(
                    f"The asOf value '{as_of}' is not a valid date and time."
                )
        return cls(
            references, expansion in ("relations", "all"), expansion in ("links", "all"), moment
        )


def _reference(name: str) -> str:
    field = find_field(name)
    if field is None:
        raise protocol.field_not_found(name)
    return field.reference_name


def json_body(request: SandboxRequest, allowed: tuple[str, ...]) -> Any:
    content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if (content_type and content_type not in allowed) or (not content_type and JSON not in allowed):
        raise protocol.content_type_not_supported(content_type, request.method, ", ".join(allowed))
    if not request.body:
        raise protocol.bad_argument("The request body is empty.")
    try:
        return json.loads(request.body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise protocol.bad_argument(f"The request body is not valid JSON: {error}") from error


def bool_param(request: SandboxRequest, name: str) -> bool:
    raw = request.param(name)
    if raw is None or raw == "":
        return False
    if raw.lower() not in ("true", "false"):
        raise protocol.bad_argument(f"The value '{raw}' is not valid for {name}.")
    return raw.lower() == "true"


def int_param(request: SandboxRequest, name: str) -> int | None:
    raw = request.param(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError as error:
        raise protocol.bad_argument(f"The value '{raw}' is not valid for {name}.") from error


def id_list(raw: Any) -> list[int]:
    """`ids` of a batch body (a JSON list) or of `?ids=1,2,3`."""
    if isinstance(raw, str):
        try:
            return [int(part) for part in raw.split(",") if part.strip()]
        except ValueError as error:
            raise protocol.bad_argument(f"The ids '{raw}' are not a list of integers.") from error
    if not isinstance(raw, list) or not raw:
        raise protocol.bad_argument("Value cannot be null. Parameter name: ids")
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in raw):
        raise protocol.bad_argument("The ids parameter must be a list of integers.")
    return raw


def collection(value: list[Any]) -> SandboxResponse:
    """List results come wrapped as `{count, value}` (msrest's VssJsonCollectionWrapper)."""
    return SandboxResponse(200, {"count": len(value), "value": value})


def query_read_options(request: SandboxRequest) -> ReadOptions:
    fields = request.param("fields")
    return ReadOptions.parse(
        fields.split(",") if fields else None, request.param("$expand"), request.param("asOf")
    )
