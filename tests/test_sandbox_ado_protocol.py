"""What every Azure DevOps sandbox route shares: api-version, PAT auth, throttling."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from connectors.sandbox.ado_server import AzureDevOpsSandbox, RateLimitDelay
from connectors.sandbox.server import NO_FAULTS, Faults
from tests.sandbox_ado_support import AdoSession, small_portfolio

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ado() -> Iterator[AzureDevOpsSandbox]:
    sandbox = AzureDevOpsSandbox(small_portfolio(), pat="the-right-pat")
    with sandbox:
        yield sandbox


@pytest.fixture
def client(ado: AzureDevOpsSandbox) -> Iterator[AdoSession]:
    yield AdoSession(ado)
    ado.set_faults(NO_FAULTS)
    ado.set_delay(None)


# -- api-version -------------------------------------------------------------------------------
def test_a_missing_api_version_is_refused_with_the_service_message(ado: AzureDevOpsSandbox) -> None:
    unversioned = AdoSession(ado, api_version=None)
    response = unversioned.wiql("SELECT [System.Id] FROM WorkItems")
    assert response.status_code == 400
    assert response.json() == {
        "$id": "1",
        "innerException": None,
        "message": 'No api-version was supplied for the "POST" request. The version must be '
        'supplied either as part of the Accept header (e.g. "application/json; '
        'api-version=1.0") or as a query parameter (e.g. "?api-version=1.0").',
        "typeName": "Microsoft.VisualStudio.Services.WebApi.VssVersionNotSpecifiedException, "
        "Microsoft.VisualStudio.Services.WebApi",
        "typeKey": "VssVersionNotSpecifiedException",
        "errorCode": 0,
        "eventId": 3000,
    }
    get = unversioned.request("GET", "_apis/wit/workitems/100")
    assert get.status_code == 400 and '"GET" request' in get.json()["message"]


def test_api_version_in_the_accept_header_as_the_library_sends_it(ado: AzureDevOpsSandbox) -> None:
    unversioned = AdoSession(ado, api_version=None)
    accept = {"Accept": "application/json;api-version=7.1-preview.3"}
    response = unversioned.request("GET", "_apis/wit/workitems/100", headers=accept)
    assert response.status_code == 200 and response.json()["id"] == 100
    future = unversioned.request("GET", "_apis/wit/workitems/100", params={"api-version": "8.0"})
    assert future.status_code == 400
    assert future.json()["typeKey"] == "VssVersionOutOfRangeException"
    assert "latest REST API version this server supports is 7.2" in future.json()["message"]


def test_a_post_with_an_odd_content_type_is_refused(client: AdoSession) -> None:
    response = client.request(
        "POST",
        "_apis/wit/workitemsbatch",
        data='{"ids": [100]}',
        headers={"Content-Type": "text/csv"},
    )
    assert response.status_code == 400
    assert response.json()["typeKey"] == "VssRequestContentTypeNotSupportedException"


# -- PAT authentication ------------------------------------------------------------------------
def test_a_wrong_pat_gets_401_with_an_empty_body(ado: AzureDevOpsSandbox) -> None:
    url = f"{ado.organization_url}/_apis/wit/workitems/100?api-version=7.1"
    suppress = {"X-TFS-FedAuthRedirect": "Suppress"}
    wrong = requests.get(url, auth=("", "not-the-pat"), headers=suppress, timeout=10)
    assert (wrong.status_code, wrong.content) == (401, b"")
    assert wrong.headers["WWW-Authenticate"].startswith("Basic realm=")
    anonymous = requests.options(f"{ado.organization_url}/_apis", headers=suppress, timeout=10)
    assert anonymous.status_code == 401
    any_user = requests.get(url, auth=("someone@example.com", "the-right-pat"), timeout=10)
    assert any_user.status_code == 200


def test_without_the_suppress_header_a_wrong_pat_gets_the_sign_in_page(
    ado: AzureDevOpsSandbox,
) -> None:
    """The trap of the real service: 203 and HTML, which `raise_for_status` lets through."""
    url = f"{ado.organization_url}/_apis/wit/workitems/100?api-version=7.1"
    response = requests.get(url, auth=("", "not-the-pat"), timeout=10)
    assert response.status_code == 203
    assert response.headers["Content-Type"].startswith("text/html")
    assert b"Sign In" in response.content


# -- throttling --------------------------------------------------------------------------------
def test_throttled_requests_get_429_with_retry_after_and_rate_limit_headers(
    client: AdoSession,
) -> None:
    client.ado.set_faults(Faults(throttle_rate=1.0, retry_after_seconds=7, only_paths=("/wiql",)))
    blocked = client.wiql("SELECT [System.Id] FROM WorkItems")
    assert blocked.status_code == 429
    headers = blocked.headers
    assert headers["Retry-After"] == "7"
    assert headers["X-RateLimit-Resource"] == "WorkItemTrackingResource"
    assert (headers["X-RateLimit-Limit"], headers["X-RateLimit-Remaining"]) == ("200", "0")
    assert headers["X-RateLimit-Delay"] == "7.000"
    assert int(headers["X-RateLimit-Reset"]) >= int(time.time()) + 6
    body = blocked.json()
    assert body["typeKey"] == "RequestBlockedException"
    assert body["message"].startswith(
        "TF400733: The request has been canceled: Request was blocked due to exceeding usage of "
        "resource 'WorkItemTrackingResource'"
    )
    other_path = client.request("GET", "_apis/wit/workitems/100")
    assert other_path.status_code == 200


def test_unavailable_requests_get_503_with_retry_after(client: AdoSession) -> None:
    client.ado.set_faults(Faults(unavailable_rate=1.0, retry_after_seconds=2))
    response = client.request("GET", "_apis/wit/workitems/100")
    assert (response.status_code, response.headers["Retry-After"]) == (503, "2")
    assert response.json()["typeKey"] == "CircuitBreakerShortCircuitException"


def test_delay_mode_answers_late_with_200_and_says_so(client: AdoSession) -> None:
    client.ado.set_delay(RateLimitDelay(0.2, only_paths=("/workitems/",)))
    started = time.monotonic()
    response = client.request("GET", "_apis/wit/workitems/100")
    elapsed = time.monotonic() - started
    assert response.status_code == 200 and response.json()["id"] == 100
    assert elapsed >= 0.2
    assert (response.headers["Retry-After"], response.headers["X-RateLimit-Delay"]) == (
        "1",
        "0.200",
    )
    fields = client.request("GET", "_apis/wit/fields")
    assert "X-RateLimit-Delay" not in fields.headers
