"""A small Azure DevOps behind `responses` for the connector's unit tests.

`FakeAzureDevOps` answers the operations the connector calls (specs/ado-wit-7.1.json) from an
in-memory dict of work items: the resource-location discovery (`OPTIONS _apis`, from
fixtures/azure_devops/resource_locations.json), WIQL over id windows with the 20,000 cap (or a
smaller one) and `$top`, `workitemsbatch`, the field list, type states, and updates with the
`test /rev` guard, alone or in a `$batch` (each sub-request answered as the PATCH would be).
It parses only the WIQL the connector writes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import requests
import responses

from connectors.azure_devops import AzureDevOpsConnector
from connectors.settings import AzureDevOpsSettings
from tests.ado_spec import check_request

ORGANIZATION = "contoso"
ORG_URL = f"https://dev.azure.com/{ORGANIZATION}"
PROJECT = "Portfolio"
WIT = f"{ORG_URL}/{PROJECT}/_apis/wit"
PAT_ENV = "SPM_TEST_ADO_PAT"
PAT = "pat-value-never-shown"
FIXTURES = Path(__file__).parent / "fixtures" / "azure_devops"

CATALOG: dict[str, str] = {
    "System.Id": "ID",
    "System.Title": "Title",
    "System.WorkItemType": "Work Item Type",
    "System.State": "State",
    "System.AreaPath": "Area Path",
    "System.TeamProject": "Team Project",
    "System.Tags": "Tags",
    "System.Rev": "Rev",
    "System.ChangedDate": "Changed Date",
    "System.CreatedDate": "Created Date",
    "System.Parent": "Parent",
    "Microsoft.VSTS.Common.BusinessValue": "Business Value",
    "Microsoft.VSTS.Common.TimeCriticality": "Time Criticality",
    "Microsoft.VSTS.Scheduling.Effort": "Effort",
    "Microsoft.VSTS.Common.StackRank": "Stack Rank",
    "Microsoft.VSTS.Common.Priority": "Priority",
    "Custom.RiskReduction": "Risk Reduction | Opportunity Enablement",
    "Custom.WSJFScore": "WSJF Score",
    "Custom.CostOfDelay": "Cost of Delay",
}
STATES = {
    "Epic": [
        ("New", "Proposed"),
        ("Active", "InProgress"),
        ("Resolved", "Resolved"),
        ("Closed", "Completed"),
        ("Removed", "Removed"),
    ],
    "Feature": [("New", "Proposed"), ("Active", "InProgress"), ("Closed", "Completed")],
}
CAP_MESSAGE = (
    "VS402337: The number of work items returned exceeds the size limit of {cap}. "
    "Change the query to return fewer items."
)


def make_settings(**overrides: Any) -> AzureDevOpsSettings:
    values: dict[str, Any] = {
        "kind": "azure_devops",
        "name": "ado",
        "url": ORG_URL,
        "project": PROJECT,
        "auth": {"token_env": PAT_ENV},
        "wsjf_fields": {
            "risk_reduction": "Risk Reduction | Opportunity Enablement",
            "job_size": "Effort",
            "score": "WSJF Score",
            "cost_of_delay": "Custom.CostOfDelay",
        },
        "workers": 2,
        "retry": {"max_attempts": 2, "base_delay_seconds": 0.01, "max_wait_seconds": 30},
    }
    values.update(overrides)
    return AzureDevOpsSettings.model_validate(values)


@dataclass
class FakeSleep:
    """Records waits instead of sleeping, and moves a fake monotonic clock along."""

    now: float = 1000.0
    waits: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def make_connector(
    settings: AzureDevOpsSettings | None = None, **options: Any
) -> AzureDevOpsConnector:
    sleep = options.pop("sleep", None) or FakeSleep()
    return AzureDevOpsConnector(
        settings or make_settings(),
        environ={PAT_ENV: PAT},
        sleep=sleep,
        clock=sleep.clock,
        cache_dir=options.pop("cache_dir", None),
        **options,
    )


def work_item(item_id: int, **fields: Any) -> dict[str, Any]:
    """A stored work item: standard fields with defaults, overridden or extended by `fields`
    (reference names, so pass them as `**{"System.State": ...}`) and by the dict `extra`."""
    values: dict[str, Any] = {
        "System.Id": item_id,
        "System.Title": f"Item {item_id}",
        "System.WorkItemType": "Epic",
        "System.State": "Active",
        "System.AreaPath": f"{PROJECT}\\Payments",
        "System.TeamProject": PROJECT,
        "System.Rev": 3,
        "System.ChangedDate": "2026-03-01T10:00:00.123Z",
        "System.CreatedDate": "2026-01-15T08:30:00Z",
        "Microsoft.VSTS.Common.BusinessValue": 8,
        "Microsoft.VSTS.Common.TimeCriticality": 5,
        "Microsoft.VSTS.Scheduling.Effort": 3,
        "Custom.RiskReduction": 2,
        "Microsoft.VSTS.Common.StackRank": float(item_id * 10),
        "Microsoft.VSTS.Common.Priority": 2,
    }
    values.update(fields.pop("extra", {}))
    values.update(fields)
    return {"id": item_id, "rev": values["System.Rev"], "fields": values, "relations": []}


def relation(rel: str, target: int) -> dict[str, Any]:
    return {"rel": rel, "url": f"{ORG_URL}/_apis/wit/workItems/{target}", "attributes": {}}


def error_body(message: str, type_key: str = "VssServiceException") -> dict[str, Any]:
    return {
        "$id": "1",
        "innerException": None,
        "message": message,
        "typeName": type_key,
        "typeKey": type_key,
        "errorCode": 0,
        "eventId": 3000,
    }


Answer = tuple[int, dict[str, str], str]


class FakeAzureDevOps:
    """Registers the Work Item Tracking operations on a `responses.RequestsMock`."""

    def __init__(
        self,
        mock: responses.RequestsMock,
        items: dict[int, dict[str, Any]],
        *,
        cap: int = 20_000,
        honour_top: bool = True,
        columns: bool = True,
        states: dict[str, list[tuple[str, str]]] | None = None,
    ) -> None:
        self.mock = mock
        self.items = items
        self.cap = cap
        self.honour_top = honour_top
        self.columns = columns
        self.states = STATES if states is None else states
        self.wiql_queries: list[str] = []
        self.batch_bodies: list[dict[str, Any]] = []
        self.patch_hook: Callable[[int, list[dict[str, Any]], dict[str, list[str]]], Answer | None]
        self.patch_hook = lambda *_: None
        self.faults: list[list[Any]] = []
        self.answer_headers: dict[str, str] = {}
        self.reset_after_write: set[int] = set()
        self.applied_writes: list[tuple[int, list[dict[str, Any]]]] = []
        self.batch_updates: list[list[dict[str, Any]]] = []
        self.batch_hook: Callable[[list[dict[str, Any]]], Answer | None] = lambda _: None
        self._register()

    def fail(
        self, path_part: str, status: int, headers: dict[str, str] | None = None, times: int = 1
    ) -> None:
        """The next `times` requests whose URL contains `path_part` get `status` instead."""
        self.faults.append([path_part, status, headers or {}, times])

    def _faulted(self, handler: Callable[[Any], Answer]) -> Callable[[Any], Answer]:
        def answer(request: Any) -> Answer:
            for fault in self.faults:
                path_part, status, headers, times = fault
                if times > 0 and path_part in request.url:
                    fault[3] -= 1
                    message = "TF400733: The request has been canceled: Request was blocked"
                    return _json(status, error_body(message), headers)
            status, headers, body = handler(request)
            return status, {**headers, **self.answer_headers}, body

        return answer

    def _register(self) -> None:
        locations = (FIXTURES / "resource_locations.json").read_text()
        self.mock.add(
            "OPTIONS", f"{ORG_URL}/_apis", body=locations, content_type="application/json"
        )
        any_query = r"(\?.*)?$"
        self.mock.add_callback(
            "POST", re.compile(re.escape(f"{WIT}/wiql") + any_query), self._faulted(self._wiql)
        )
        self.mock.add_callback(
            "POST",
            re.compile(re.escape(f"{WIT}/workitemsbatch") + any_query),
            self._faulted(self._batch),
        )
        self.mock.add_callback(
            "GET", re.compile(re.escape(f"{WIT}/fields") + any_query), self._faulted(self._fields)
        )
        self.mock.add_callback(
            "GET",
            re.compile(re.escape(f"{WIT}/workitemtypes/") + r"[^/]+/states" + any_query),
            self._faulted(self._states),
        )
        item_url = re.compile(re.escape(f"{WIT}/workitems/") + r"\d+" + any_query)
        self.mock.add_callback("GET", item_url, self._faulted(self._get_item))
        self.mock.add_callback("PATCH", item_url, self._faulted(self._patch))
        self.mock.add_callback(
            "PATCH",
            re.compile(re.escape(f"{ORG_URL}/_apis/wit/$batch") + any_query),
            self._faulted(self._batch_update),
        )

    # -- WIQL ------------------------------------------------------------------------------
    def _wiql(self, request: Any) -> Answer:
        query = json.loads(request.body)["query"]
        self.wiql_queries.append(query)
        params = parse_qs(urlsplit(request.url).query)
        select = re.findall(r"\[([^\]]+)\]", query.split("FROM", 1)[0])
        columns = []
        for name in select:
            reference = self._reference_name(name)
            if reference is None:
                message = f"TF51005: The query references a field that does not exist. «[{name}]»"
                return _json(400, error_body(message))
            columns.append(
                {
                    "referenceName": reference,
                    "name": CATALOG[reference],
                    "url": f"{ORG_URL}/_apis/wit/fields/{reference}",
                }
            )
        ids = [i for i in sorted(self.items) if _matches(query, self.items[i]["fields"])]
        top = int(params["$top"][0]) if "$top" in params else None
        if len(ids) > self.cap and (top is None or top > self.cap or not self.honour_top):
            return _json(400, error_body(CAP_MESSAGE.format(cap=self.cap)))
        if top is not None:
            ids = ids[:top]
        body = {
            "queryType": "flat",
            "queryResultType": "workItem",
            "asOf": "2026-03-02T00:00:00Z",
            "columns": columns if self.columns else [],
            "workItems": [{"id": i, "url": f"{ORG_URL}/_apis/wit/workItems/{i}"} for i in ids],
        }
        return _json(200, body)

    @staticmethod
    def _reference_name(name: str) -> str | None:
        for reference, display in CATALOG.items():
            if name.casefold() in (reference.casefold(), display.casefold()):
                return reference
        return None

    # -- reads -----------------------------------------------------------------------------
    def _batch(self, request: Any) -> Answer:
        body = json.loads(request.body)
        self.batch_bodies.append(body)
        if len(body["ids"]) > 200:
            return _json(
                400,
                error_body(
                    f"VS403474: You requested {len(body['ids'])} work "
                    "items which exceeds the limit of 200"
                ),
            )
        if body.get("fields") and body.get("$expand"):
            return _json(
                400, error_body("The expand parameter can not be used with the fields parameter.")
            )
        found = [self._view(self.items[i], body) for i in body["ids"] if i in self.items]
        return _json(200, {"count": len(found), "value": found})

    @staticmethod
    def _view(item: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        view = {
            "id": item["id"],
            "rev": item["rev"],
            "url": f"{ORG_URL}/_apis/wit/workItems/{item['id']}",
        }
        wanted = body.get("fields")
        fields = item["fields"]
        view["fields"] = {k: v for k, v in fields.items() if not wanted or k in wanted}
        if body.get("$expand") in ("relations", "all"):
            view["relations"] = item.get("relations", [])
        return view

    def _fields(self, request: Any) -> Answer:
        value = [{"referenceName": r, "name": n, "type": "string"} for r, n in CATALOG.items()]
        return _json(200, {"count": len(value), "value": value})

    def _states(self, request: Any) -> Answer:
        work_item_type = unquote(urlsplit(request.url).path.split("/")[-2])
        if work_item_type not in self.states:
            return _json(404, error_body(f"TF51535: Cannot find work item type {work_item_type}"))
        value = [
            {"name": n, "category": c, "color": "b2b2b2"} for n, c in self.states[work_item_type]
        ]
        return _json(200, {"count": len(value), "value": value})

    def _get_item(self, request: Any) -> Answer:
        item_id = int(urlsplit(request.url).path.rsplit("/", 1)[-1])
        item = self.items.get(item_id)
        if item is None:
            return _json(404, error_body(f"TF401232: Work item {item_id} does not exist."))
        wanted = parse_qs(urlsplit(request.url).query).get("fields", [""])[0].split(",")
        return _json(200, self._view(item, {"fields": [w for w in wanted if w]}))

    # -- writes ----------------------------------------------------------------------------
    def _patch(self, request: Any) -> Answer:
        item_id = int(urlsplit(request.url).path.rsplit("/", 1)[-1])
        document = json.loads(request.body)
        params = parse_qs(urlsplit(request.url).query)
        hooked = self.patch_hook(item_id, document, params)
        if hooked is not None:
            return hooked
        item = self.items[item_id]
        for operation in document:
            if operation["op"] == "test" and operation["path"] == "/rev":
                if operation["value"] != item["rev"]:
                    message = (
                        "TF26071: This work item has been changed by someone else since you "
                        f"opened it. (test /rev {operation['value']}, is {item['rev']})"
                    )
                    return _json(412, error_body(message))
            elif operation["op"] == "add":
                item["fields"][operation["path"].removeprefix("/fields/")] = operation["value"]
            elif operation["op"] == "remove":
                item["fields"].pop(operation["path"].removeprefix("/fields/"), None)
        item["rev"] += 1
        item["fields"]["System.Rev"] = item["rev"]
        self.applied_writes.append((item_id, document))
        if item_id in self.reset_after_write:
            self.reset_after_write.discard(item_id)
            # Applied, but the answer is lost: the client sees a dropped connection.
            raise requests.ConnectionError("Connection reset by peer")
        return _json(200, self._view(item, {}))

    def _batch_update(self, request: Any) -> Answer:
        """Each sub-request answered by `_patch`, as `{code, headers, body}` with the body as
        JSON text; an item in `reset_after_write` loses the whole batch's answer."""
        sub_requests = json.loads(request.body)
        self.batch_updates.append(sub_requests)
        hooked = self.batch_hook(sub_requests)
        if hooked is not None:
            return hooked
        answers = []
        lost = False
        for sub in sub_requests:
            single = _SubRequest(ORG_URL + sub["uri"], json.dumps(sub["body"]))
            try:
                status, headers, body = self._patch(single)
            except requests.ConnectionError:
                lost = True
                item = self.items[int(urlsplit(single.url).path.rsplit("/", 1)[-1])]
                status, headers, body = _json(200, self._view(item, {}))
            answers.append({"code": status, "headers": headers, "body": body})
        if lost:
            raise requests.ConnectionError("Connection reset by peer")
        return _json(200, {"count": len(answers), "value": answers})

    def touch(self, item_id: int, **fields: Any) -> None:
        """A person edits the item: fields change and the revision moves on."""
        item = self.items[item_id]
        item["fields"].update(fields)
        item["rev"] += 1
        item["fields"]["System.Rev"] = item["rev"]


@dataclass(frozen=True)
class _SubRequest:
    """A `$batch` sub-request in the shape `_patch` reads."""

    url: str
    body: str


def _matches(query: str, fields: dict[str, Any]) -> bool:
    item_id = fields["System.Id"]
    if (after := re.search(r"\[System\.Id\] > (\d+)", query)) and item_id <= int(after[1]):
        return False
    if (up_to := re.search(r"\[System\.Id\] <= (\d+)", query)) and item_id > int(up_to[1]):
        return False
    since = re.search(r"\[System\.ChangedDate\] >= '([^']+)'", query)
    if since and fields["System.ChangedDate"] < since[1]:
        return False
    types = re.search(r"\[System\.WorkItemType\] IN \(([^)]*)\)", query)
    return not types or f"'{fields['System.WorkItemType']}'" in types[1]


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Answer:
    return (
        status,
        {"Content-Type": "application/json; charset=utf-8", **(headers or {})},
        json.dumps(body),
    )


def validate_calls(calls: Any) -> list[str]:
    """Check every recorded request against specs/ado-wit-7.1.json; their operation ids.

    The resource-location discovery (`OPTIONS {org}/_apis`) belongs to the platform's location
    service, not to the Work Item Tracking spec, and is only checked for its path. A `$batch`
    is not in the spec either: its own path, api-version and content type are checked, and each
    sub-request is checked as the "Work Items_Update" request it wraps.
    """
    operation_ids = []
    for call in calls:
        request = call.request
        if request.method == "OPTIONS":
            assert urlsplit(request.url).path == f"/{ORGANIZATION}/_apis", request.url
            operation_ids.append("OPTIONS _apis")
            continue
        body = json.loads(request.body) if request.body else None
        if urlsplit(request.url).path.endswith("/_apis/wit/$batch"):
            operation_ids.append(check_batch(request.method, request.url, request.headers, body))
            continue
        operation_ids.append(check_request(request.method, request.url, request.headers, body))
    return operation_ids


def check_batch(method: str, url: str, headers: Any, body: Any) -> str:
    """A `$batch` request as the connector must send it; every sub-request checked against the
    spec's "Work Items_Update" (the organization-relative uri resolved on the organization)."""
    parts = urlsplit(url)
    assert method == "PATCH", method
    assert parts.path == f"/{ORGANIZATION}/_apis/wit/$batch", url
    assert parse_qs(parts.query).get("api-version") == ["7.1"], url
    assert headers["Content-Type"].split(";")[0] == "application/json", headers
    assert isinstance(body, list) and 1 < len(body) <= 200, body
    for sub in body:
        assert set(sub) == {"method", "uri", "headers", "body"}, sub
        assert sub["uri"].startswith("/_apis/wit/workitems/"), sub["uri"]
        operation = check_request(sub["method"], ORG_URL + sub["uri"], sub["headers"], sub["body"])
        assert operation == "Work Items_Update", operation
    return "$batch"
