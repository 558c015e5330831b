"""HTTP to the Work Item Tracking API of one Azure DevOps project, and nothing else.

Reads go through the `azure-devops` library (7.1.0b4, `WorkItemTrackingClient`): it builds the
URLs from the service's resource locations and negotiates the api-version (sent in `Accept`).
Three things are arranged around it (specs/API_NOTES.md "azure-devops 7.1.0b4", msrest 0.7.1):

- **One session for every request.** msrest keeps a *thread-local* `requests.Session` per
  client, so a policy mounted on "the" session would miss the requests of every other thread.
  msrest's `session_configuration_callback` (a `RequestHTTPSenderConfiguration` setting) lets us
  hand it our own session for each request; that session carries `connectors.http.PolicyAdapter`
  (counting, 429/503 + Retry-After retries, pacing on Retry-After / X-RateLimit-Delay sent with
  a 200) and the PAT as basic auth.
- **No stacked retries.** msrest retries through urllib3 (`ClientRetryPolicy`: total=3, every
  5xx but 501/505, 408). It is set to no retries and no retry statuses (what `requests` does by
  default), so only our policy retries and a 503 is never retried twice over.
- **Resource-location discovery.** The first call of a client sends `OPTIONS {org}/_apis` and
  caches the answer in memory (per process, `Client._locations_cache`) and on disk
  (`options.json` in `AZURE_DEVOPS_CACHE_DIR` or `~/.azure-devops/python-sdk/cache`, read when
  the library is imported). The library trusts the file for 12 hours, so a nightly sync would
  always find it expired; we keep it for `DISCOVERY_MAX_AGE` (7 days) instead, and drop it when
  the library reports a location it does not list ("is not registered": a newer library asking
  for a resource the cached answer predates), so the next run discovers afresh. The locations
  of the resources this client calls (WIQL, work items, fields, type states) have kept their ids
  and routes since the 5.x APIs. See `use_discovery_cache`: we pick the directory per client,
  forget the in-memory copy of this organization, and so count the OPTIONS call in the run that
  makes it. The client is built for the organization URL directly rather than through
  `Connection.clients_v7_1`: `Connection` first asks `GET _apis/resourceAreas` through a private
  `LocationClient` whose requests cannot be routed through our session (uncounted, retried by
  msrest), and Work Item Tracking is served at the organization URL on Azure DevOps Services and
  Server alike.

Updates (`PATCH …/workitems/{id}`, and `PATCH {org}/_apis/wit/$batch` for several items, which
the library has no call for) use the same authenticated session directly: the connector
must tell a failed `test` on `/rev` (HTTP 412, or 400 with a TF message) from a refused
`suppressNotifications` (403) and other failures, and msrest's `AzureDevOpsServiceError` drops
the status code.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from connectors.azure_devops_fields import FieldRef
from connectors.base import ConnectorError
from connectors.http import RetryPolicy, mount_policy
from connectors.transfer import PullDeadline, TransferBounds
from connectors.wiql_builder import ResultCapExceeded
from spm_sync.core.requests import RequestStats

API_VERSION = "7.1"
"""The api-version of every operation we call in specs/ado-wit-7.1.json (`api-Version`)."""

PATCH_HEADERS = {
    "Content-Type": "application/json-patch+json",
    "Accept": "application/json",
    # As the library sends them: without the first, a bad PAT gets a 203 sign-in page instead
    # of a 401 (and a 203 would look like success).
    "X-TFS-FedAuthRedirect": "Suppress",
    "X-VSS-ForceMsaPassThrough": "true",
}
BATCH_HEADERS = {**PATCH_HEADERS, "Content-Type": "application/json"}
"""A `$batch` body is a JSON list of sub-requests; each names its own JSON Patch content type."""


def default_cache_dir() -> Path:
    """Where the discovery cache lives unless told otherwise.

    `AZURE_DEVOPS_CACHE_DIR` when set (the library's own setting), else the user's cache
    directory (`$XDG_CACHE_HOME` or `~/.cache`)/spm-sync/azure-devops; a temporary directory when
    that cannot be created (a read-only home in a container).
    """
    configured = os.environ.get("AZURE_DEVOPS_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    for candidate in (
        Path(base) / "spm-sync" / "azure-devops",
        Path(tempfile.gettempdir()) / f"spm-sync-azure-devops-{os.getuid()}",
    ):
        try:
            candidate.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(candidate, os.W_OK):
            return candidate
    return Path(tempfile.mkdtemp(prefix="spm-sync-azure-devops-"))


# The library creates its cache directory when it is imported (azure/devops/_file_cache.py) and
# fails to import when it cannot; give it a writable one before the first import.
os.environ.setdefault("AZURE_DEVOPS_CACHE_DIR", str(default_cache_dir()))

from azure.devops import _file_cache  # noqa: E402
from azure.devops.client import Client  # noqa: E402
from azure.devops.exceptions import (  # noqa: E402
    AzureDevOpsAuthenticationError,
    AzureDevOpsServiceError,
)
from azure.devops.v7_1.work_item_tracking import WorkItemTrackingClient  # noqa: E402
from azure.devops.v7_1.work_item_tracking.models import (  # noqa: E402
    TeamContext,
    Wiql,
    WorkItemBatchGetRequest,
)
from msrest.authentication import BasicAuthentication  # noqa: E402
from msrest.exceptions import ClientException  # noqa: E402

DEFAULT_CACHE_DIR = Path(os.environ["AZURE_DEVOPS_CACHE_DIR"])
DISCOVERY_MAX_AGE = 7 * 24 * 3600
"""Seconds the on-disk resource locations are trusted (the library's default: 12 hours)."""


class ServiceRefused(ConnectorError):
    """Azure DevOps answered with an error; `message` is the service's own text."""

    def __init__(self, operation: str, message: str) -> None:
        super().__init__(f"Azure DevOps refused {operation}: {message}")
        self.message = message


@dataclass(frozen=True, slots=True)
class WiqlAnswer:
    ids: list[int]
    columns: list[FieldRef]


@dataclass(frozen=True, slots=True)
class PatchAnswer:
    """The outcome of one work item update: HTTP status, JSON body, the service's message."""

    status: int
    body: Any
    message: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def use_discovery_cache(cache_dir: Path | None, organization_url: str) -> None:
    """Point the library's discovery cache at `cache_dir` (None: memory only).

    The library keeps one cache per process (module-level `FileCache` objects), so the last
    client created decides the file; a different file only costs one more OPTIONS call. The
    in-memory copy of this organization is dropped so each run reads the disk cache and counts
    the OPTIONS call it makes. Several processes may share the directory: a torn read only
    looks like a cache miss to the library.
    """
    for cache, name in (
        (_file_cache.OPTIONS_CACHE, "options"),
        (_file_cache.RESOURCE_CACHE, "resources"),
    ):
        cache.file_name = "" if cache_dir is None else str(Path(cache_dir) / f"{name}.json")
        cache.data = {}
        cache.initial_load_occurred = False
        cache.max_age = DISCOVERY_MAX_AGE
    if cache_dir is not None:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
    Client._locations_cache.pop(organization_url.rstrip("/").lower(), None)


def forget_discovery(organization_url: str) -> None:
    """Drop the cached resource locations of an organization, in memory and on disk."""
    url = organization_url.rstrip("/").lower()
    Client._locations_cache.pop(url, None)
    options = _file_cache.OPTIONS_CACHE
    if options.file_name and url in options:
        del options[url]  # FileCache saves itself on every change


class AzureDevOpsClient:
    """The Work Item Tracking calls the connector makes, with errors as `ConnectorError`s."""

    def __init__(
        self,
        organization_url: str,
        project: str,
        token: str,
        *,
        stats: RequestStats,
        retry: RetryPolicy,
        timeout: float = 30.0,
        verify_tls: bool = True,
        pool_size: int = 8,
        cache_dir: Path | None = DEFAULT_CACHE_DIR,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
        bounds: TransferBounds | None = None,
        pull_deadline: PullDeadline | None = None,
    ) -> None:
        self.organization_url = organization_url.rstrip("/")
        self.project = project
        self._timeout = timeout
        self._verify = verify_tls
        self.session = requests.Session()
        adapter_options: dict[str, Any] = {
            "pool_maxsize": pool_size,
            "bounds": bounds,
            "pull_deadline": pull_deadline,
        }
        if sleep is not None:
            adapter_options["sleep"] = sleep
        if clock is not None:
            adapter_options["clock"] = clock
        mount_policy(self.session, stats, retry, **adapter_options)
        credentials = BasicAuthentication("", token)
        credentials.signed_session(self.session)
        use_discovery_cache(cache_dir, self.organization_url)
        self._wit = WorkItemTrackingClient(base_url=self.organization_url, creds=credentials)
        self._route_through_session(self._wit)

    def _route_through_session(self, client: WorkItemTrackingClient) -> None:
        config = client.config
        config.retry_policy.retries = 0  # total, connect and read
        config.retry_policy.policy.status_forcelist = frozenset()
        config.connection.timeout = self._timeout
        config.connection.verify = self._verify
        shared = self.session

        def use_shared_session(
            _thread_session: requests.Session, _config: object, _local: object, **kwargs: Any
        ) -> dict[str, Any]:
            return {**kwargs, "session": shared}

        config.session_configuration_callback = use_shared_session

    def __repr__(self) -> str:
        return f"AzureDevOpsClient({self.organization_url!r}, project={self.project!r})"

    # -- reads (azure-devops library) ---------------------------------------------------------
    def query_ids(self, wiql: str, *, top: int | None, time_precision: bool) -> WiqlAnswer:
        """Run a flat WIQL query; `ResultCapExceeded` for VS402337."""
        context = TeamContext(project=self.project)
        try:
            with self._calling("the WIQL query"):
                result = self._wit.query_by_wiql(
                    Wiql(query=wiql), context, time_precision=time_precision or None, top=top
                )
        except ServiceRefused as refused:
            if "VS402337" in refused.message:
                raise ResultCapExceeded(refused.message) from refused
            raise
        ids = [reference.id for reference in result.work_items or []]
        columns = [FieldRef(c.reference_name, c.name) for c in result.columns or []]
        return WiqlAnswer(ids, columns)

    def work_items_batch(
        self, ids: Sequence[int], *, fields: Sequence[str] | None, expand: str | None
    ) -> list[dict[str, Any]]:
        """Up to 200 work items; deleted or invisible ones are omitted (`errorPolicy=omit`)."""
        request = WorkItemBatchGetRequest(
            ids=list(ids),
            fields=list(fields) if fields else None,
            expand=expand,
            error_policy="omit",
        )
        with self._calling(f"the batch read of {len(ids)} work items"):
            items = self._wit.get_work_items_batch(request, project=self.project)
        return [_raw_work_item(item) for item in items or [] if item is not None]

    def work_item(self, item_id: int, fields: Sequence[str]) -> dict[str, Any]:
        with self._calling(f"reading work item {item_id}"):
            item = self._wit.get_work_item(item_id, project=self.project, fields=list(fields))
        return _raw_work_item(item)

    def fields(self) -> list[FieldRef]:
        with self._calling("listing the fields"):
            found = self._wit.get_work_item_fields(project=self.project)
        return [FieldRef(f.reference_name, f.name) for f in found or [] if f.reference_name]

    def type_states(self, work_item_type: str) -> list[tuple[str, str | None]]:
        """(state name, state category) of a work item type."""
        with self._calling(f"listing the states of {work_item_type!r}"):
            states = self._wit.get_work_item_type_states(self.project, work_item_type)
        return [(s.name, s.category) for s in states or [] if s.name]

    @contextmanager
    def _calling(self, operation: str) -> Iterator[None]:
        try:
            yield
        except AzureDevOpsAuthenticationError:
            raise ConnectorError(
                f"Azure DevOps at {self.organization_url} rejected the personal access token "
                f"while {operation} (HTTP 401): check the token and its Work Items scope"
            ) from None
        except AzureDevOpsServiceError as error:
            raise ServiceRefused(operation, error.message or str(error)) from error
        except ClientException as error:
            # msrest's text already names the transport error: "Error occurred in request.,
            # ConnectionError: …".
            raise ConnectorError(f"{operation} failed: {error}") from error
        except ValueError as error:
            # "API resource location … is not registered": the server lacks this API, or the
            # cached locations predate it; the next run asks the server again.
            forget_discovery(self.organization_url)
            raise ConnectorError(f"{operation} failed: {error}") from error
        except AttributeError as error:
            # The library unwraps answers without checking them: a `null` or a list where an
            # object belongs ends in an AttributeError inside it.
            raise ConnectorError(
                f"{operation} failed: Azure DevOps answered with an unexpected body ({error})"
            ) from error

    def read_json(self, path: str, operation: str, params: Mapping[str, str] | None = None) -> Any:
        """`GET {org}/{path}` on the authenticated session, for the reads the library has no
        call for (`_apis/connectionData`, the relation types) or makes at a cost (the reporting
        revisions: the library would need resource-location discovery first)."""
        url = f"{self.organization_url}/{path}"
        response = self._send("GET", url, {"api-version": API_VERSION, **(params or {})}, operation)
        body = _json_or_none(response)
        if not response.ok or body is None:
            detail = service_message(body, response) or "the answer is not JSON"
            raise ConnectorError(f"{operation} failed: HTTP {response.status_code}: {detail}")
        return body

    # -- writes (authenticated session, see module docstring) --------------------------------
    def update_work_item(
        self,
        item_id: int,
        document: Sequence[Mapping[str, Any]],
        *,
        suppress_notifications: bool,
        validate_only: bool = False,
    ) -> PatchAnswer:
        """`PATCH {org}/{project}/_apis/wit/workitems/{id}` with a JSON Patch document;
        `validate_only` runs every rule and permission check without saving (`check --online`)."""
        url = (
            f"{self.organization_url}/{quote(self.project, safe='')}/_apis/wit/workitems/{item_id}"
        )
        params = {"api-version": API_VERSION}
        if suppress_notifications:
            params["suppressNotifications"] = "true"
        if validate_only:
            params["validateOnly"] = "true"
        response = self._send(
            "PATCH",
            url,
            params,
            f"update work item {item_id}",
            data=json.dumps(list(document)),
            headers=PATCH_HEADERS,
        )
        body = _json_or_none(response)
        return PatchAnswer(response.status_code, body, service_message(body, response))

    def update_work_items(self, sub_requests: Sequence[Mapping[str, Any]]) -> PatchAnswer:
        """`PATCH {org}/_apis/wit/$batch` ("Work Item Batch Update", not in the 7.1 spec file:
        specs/API_NOTES.md) with one sub-request per item; the answer as it came, its `value`
        holding one answer per sub-request. Older documentation sends the same body with POST;
        the current reference and Microsoft's own clients use PATCH."""
        url = f"{self.organization_url}/_apis/wit/$batch"
        response = self._send(
            "PATCH",
            url,
            {"api-version": API_VERSION},
            f"update {len(sub_requests)} work items in one batch",
            data=json.dumps(list(sub_requests)),
            headers=BATCH_HEADERS,
        )
        body = _json_or_none(response)
        return PatchAnswer(response.status_code, body, service_message(body, response))

    def _send(
        self, method: str, url: str, params: Mapping[str, str], operation: str, **extra: Any
    ) -> requests.Response:
        """A request on the session; transport failures and a refused token (Azure DevOps
        answers 203 with a sign-in page, or 401) become `ConnectorError`s naming `operation`."""
        try:
            response = self.session.request(
                method, url, params=params, timeout=self._timeout, verify=self._verify, **extra
            )
        except requests.RequestException as error:
            raise ConnectorError(f"{operation} failed: {error}") from error
        if response.status_code in (203, 401):
            raise ConnectorError(
                f"Azure DevOps at {self.organization_url} rejected the personal access token "
                f"while trying to {operation} (HTTP {response.status_code}): check the token "
                "and its Work Items scope"
            )
        return response

    def close(self) -> None:
        self.session.close()


def service_message(body: Any, response: requests.Response) -> str:
    """The text of an Azure DevOps error: `message` of a WrappedException (or `value.Message`)."""
    if isinstance(body, Mapping):
        wrapped = body.get("value")
        inner = wrapped.get("Message") if isinstance(wrapped, Mapping) else None
        for candidate in (body.get("message"), inner):
            if isinstance(candidate, str) and candidate.strip():
                return candidate.strip()
    if 200 <= response.status_code < 300:
        return ""
    text = (response.text or "").strip()
    return text[:300] or f"HTTP {response.status_code} {response.reason or ''}".strip()


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _raw_work_item(item: Any) -> dict[str, Any]:
    """The msrest `WorkItem` model back in the API's JSON shape, for the pure mapping."""
    relations = [
        {"rel": r.rel, "url": r.url, "attributes": r.attributes} for r in item.relations or []
    ]
    return {
        "id": item.id,
        "rev": item.rev,
        "fields": dict(item.fields or {}),
        "relations": relations,
        "url": item.url,
    }
