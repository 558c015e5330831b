"""The service's conventions that every Azure DevOps route shares: error bodies, api-version,
PAT authentication and rate-limit headers.

Sources for the behaviour copied here (also in `specs/API_NOTES.md`):
- Error body: the VSS `WrappedException` JSON `{"$id", "innerException", "message", "typeName",
  "typeKey", "errorCode", "eventId"}` that msrest deserializes (`azure/devops/_models.py`).
- Status codes: the exception-to-status map of the WIT REST controllers (Azure DevOps Server
  2022, `WorkItemTrackingApiController.InitializeExceptionMap` and `TfsApiController`):
  `TestPatchOperationFailedException` -> 412, `WorkItemRevisionMismatchException` -> 409,
  `WorkItemUnauthorizedAccessException` -> 404, `VssRequestContentTypeNotSupportedException`
  -> 400 (not 415), `ConflictingParametersException` -> 400.
- api-version: "No api-version was supplied for the \\"POST\\" request. The version must be
  supplied either as part of the Accept header ... or as a query parameter" (400,
  `VssVersionNotSpecifiedException`); the `azure-devops` library sends it in `Accept`.
- PAT: HTTP Basic with any user name and the PAT as password (spec `securityDefinitions`). A
  wrong PAT gets 401 with an empty body when the client sends `X-TFS-FedAuthRedirect: Suppress`
  (the `azure-devops` library always does); without that header the service answers 203 with
  its HTML sign-in page, which naive clients mistake for success.
- Rate limits: learn.microsoft.com "Rate and usage limits" (`docs/integrate/concepts/
  rate-limits.md`): 429 with `TF400733`, `Retry-After`, `X-RateLimit-*`; delayed requests still
  answer 200 and carry `Retry-After` and `X-RateLimit-Delay`.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from connectors.sandbox.server import HttpError, SandboxRequest, SandboxResponse, path_selected

MAX_API_VERSION = (7, 2)
_VERSION = re.compile(r"^(\d+)\.(\d+)(-preview(\.\d+)?)?$")
_ACCEPT_VERSION = re.compile(r"api-version\s*=\s*([^;,\s]+)", re.IGNORECASE)

_NAMESPACES = {
    "wit": (
        "Microsoft.TeamFoundation.WorkItemTracking.Server",
        "Microsoft.TeamFoundation.WorkItemTracking.Server",
    ),
    "webapi": ("Microsoft.VisualStudio.Services.WebApi", "Microsoft.VisualStudio.Services.WebApi"),
    "patch": (
        "Microsoft.VisualStudio.Services.WebApi.Patch",
        "Microsoft.VisualStudio.Services.WebApi",
    ),
    "common": ("Microsoft.VisualStudio.Services.Common", "Microsoft.VisualStudio.Services.Common"),
    "framework": (
        "Microsoft.TeamFoundation.Framework.Server",
        "Microsoft.TeamFoundation.Framework.Server",
    ),
    "core": ("Microsoft.TeamFoundation.Core.WebApi", "Microsoft.TeamFoundation.Core.WebApi"),
}


def wrapped_exception(message: str, type_key: str, namespace: str = "wit") -> dict[str, Any]:
    """The JSON body of every service error."""
    name, assembly = _NAMESPACES[namespace]
    return {
        "$id": "1",
        "innerException": None,
        "message": message,
        "typeName": f"{name}.{type_key}, {assembly}",
        "typeKey": type_key,
        "errorCode": 0,
        "eventId": 3000,
    }


def service_error(status: int, message: str, type_key: str, namespace: str = "wit") -> HttpError:
    return HttpError(status, wrapped_exception(message, type_key, namespace))


# -- errors a client can cause -----------------------------------------------------------------
def version_not_specified(method: str) -> HttpError:
    return service_error(
        400,
        f'No api-version was supplied for the "{method}" request. The version must be supplied '
        'either as part of the Accept header (e.g. "application/json; api-version=1.0") or as a '
        'query parameter (e.g. "?api-version=1.0").',
        "VssVersionNotSpecifiedException",
        "webapi",
    )


def content_type_not_supported(content_type: str, method: str, allowed: str) -> HttpError:
    return service_error(
        400,
        f'The request indicated a Content-Type of "{content_type}" for method type "{method}" '
        f"which is not supported. Valid content types for this method are: {allowed}.",
        "VssRequestContentTypeNotSupportedException",
        "webapi",
    )


def invalid_query(message: str) -> HttpError:
    """WIQL syntax and validation errors (TF51005 and friends)."""
    return service_error(400, message, "VssPropertyValidationException", "common")


def query_too_large(limit: int) -> HttpError:
    return service_error(
        400,
        f"VS402337: The number of work items returned exceeds the size limit of {limit}. "
        "Change the query to return fewer items.",
        "WorkItemTrackingQueryResultSizeLimitExceededException",
    )


def page_too_large(requested: int, limit: int) -> HttpError:
    return service_error(
        400,
        f"VS403474: You requested {requested} work items which exceeds the limit of {limit}",
        "WorkItemPageSizeExceededException",
    )


def expand_with_fields() -> HttpError:
    return service_error(
        400,
        "The expand parameter can not be used with the fields parameter.",
        "ConflictingParametersException",
    )


def bad_argument(message: str) -> HttpError:
    return service_error(400, message, "ArgumentException", "common")


def work_item_not_found(work_item_id: int) -> HttpError:
    return service_error(
        404,
        f"TF401232: Work item {work_item_id} does not exist, or you do not have permissions to "
        "read it.",
        "WorkItemUnauthorizedAccessException",
    )


def field_not_found(name: str) -> HttpError:
    return service_error(
        400,
        f"TF51535: Cannot find field {name}.",
        "WorkItemTrackingFieldDefinitionNotFoundException",
    )


def test_failed(path: str, actual: Any, expected: Any) -> HttpError:
    """A failed JSON Patch `test`: 412, the answer to optimistic concurrency on `/rev`."""
    return service_error(
        412,
        f"VS403351: Test Operation for path {path} failed, value {actual} was not equal to test "
        f"value {expected}.",
        "TestPatchOperationFailedException",
        "patch",
    )


def invalid_patch(message: str) -> HttpError:
    return service_error(400, message, "PatchOperationFailedException", "patch")


def rule_error(field_name: str, code: str) -> HttpError:
    return service_error(
        400,
        f"TF401320: Rule Error for field {field_name}. Error code: {code}.",
        "RuleValidationException",
    )


def invalid_field_status(status: str, reference_name: str) -> HttpError:
    return service_error(
        400,
        f"TF401326: Invalid field status '{status}' for field '{reference_name}'.",
        "RuleValidationException",
    )


def project_not_found(name: str) -> HttpError:
    return service_error(
        404,
        f"TF200016: The following project does not exist: {name}. Verify that the name of the "
        "project is correct and that the project exists on the specified Azure DevOps Server.",
        "ProjectDoesNotExistWithNameException",
        "core",
    )


def route_not_found(path: str) -> SandboxResponse:
    body = wrapped_exception(
        f"The controller for path '{path}' was not found or does not implement IController.",
        "HttpException",
        "framework",
    )
    return SandboxResponse(404, body)


# -- api-version -------------------------------------------------------------------------------
def requested_api_version(request: SandboxRequest) -> str | None:
    """`?api-version=` wins; otherwise the `api-version` parameter of the Accept header."""
    query = request.param("api-version")
    if query:
        return query.strip()
    match = _ACCEPT_VERSION.search(request.headers.get("Accept") or "")
    return match.group(1) if match else None


def require_api_version(request: SandboxRequest) -> str:
    version = requested_api_version(request)
    if version is None:
        raise version_not_specified(request.method)
    match = _VERSION.match(version)
    if match is None:
        raise service_error(
            400,
            f"The api-version '{version}' is not in a valid format.",
            "VssInvalidApiResourceVersionException",
            "webapi",
        )
    requested = (int(match.group(1)), int(match.group(2)))
    if requested > MAX_API_VERSION:
        latest = ".".join(map(str, MAX_API_VERSION))
        raise service_error(
            400,
            f"The requested REST API version of {match.group(1)}.{match.group(2)} is out of range "
            f"for this server. The latest REST API version this server supports is {latest}.",
            "VssVersionOutOfRangeException",
            "webapi",
        )
    return version


# -- authentication ----------------------------------------------------------------------------
_SIGN_IN_PAGE = (
    b"<!DOCTYPE html><html><head><title>Azure DevOps Services | Sign In</title></head>"
    b"<body><p>Sign in to your account to continue to Azure DevOps.</p></body></html>"
)


def check_pat(request: SandboxRequest, pat: str, realm: str) -> None:
    """Basic auth with the PAT as password (any user name, usually empty)."""
    credentials = request.basic_credentials()
    if credentials is not None and credentials[1] == pat:
        return
    if (request.headers.get("X-TFS-FedAuthRedirect") or "").lower() == "suppress":
        raise HttpError(401, None, {"WWW-Authenticate": f'Basic realm="{realm}"'})
    redirected = {"X-Sandbox-Sign-In": "redirected"}
    raise HttpError(203, _SIGN_IN_PAGE, redirected, content_type="text/html; charset=utf-8")


# -- rate limits -------------------------------------------------------------------------------
RATE_LIMIT_RESOURCE = "WorkItemTrackingResource"
TSTU_LIMIT = 200


@dataclass(frozen=True)
class RateLimitDelay:
    """The service's first stage of throttling: the answer is late but still 200, and says so in
    `Retry-After` and `X-RateLimit-Delay`. `rate` is the share of requests delayed;
    `only_paths` limits it to paths containing one of these strings."""

    seconds: float
    rate: float = 1.0
    only_paths: tuple[str, ...] = ()

    def applies_to(self, path: str) -> bool:
        return path_selected(self.only_paths, path)


def rate_limit_headers(
    retry_after: float, *, delay: float | None = None, now: float | None = None
) -> dict[str, str]:
    current = time.time() if now is None else now
    headers = {
        "Retry-After": str(max(1, round(retry_after))),
        "X-RateLimit-Resource": RATE_LIMIT_RESOURCE,
        "X-RateLimit-Limit": str(TSTU_LIMIT),
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str(int(current + retry_after)),
    }
    if delay is not None:
        headers["X-RateLimit-Delay"] = f"{delay:.3f}"
    return headers


def blocked_response(retry_after: float) -> SandboxResponse:
    """HTTP 429: the request was blocked (not merely delayed)."""
    body = wrapped_exception(
        "TF400733: The request has been canceled: Request was blocked due to exceeding usage of "
        f"resource '{RATE_LIMIT_RESOURCE}' in namespace 'User'.",
        "RequestBlockedException",
        "framework",
    )
    return SandboxResponse(429, body, rate_limit_headers(retry_after, delay=float(retry_after)))


def unavailable_response(retry_after: float) -> SandboxResponse:
    body = wrapped_exception(
        "The service is temporarily unavailable. Try again later.",
        "CircuitBreakerShortCircuitException",
        "framework",
    )
    return SandboxResponse(503, body, {"Retry-After": str(max(1, round(retry_after)))})
