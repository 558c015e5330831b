"""Support for the Azure DevOps sandbox tests: small hand-made seeds (every value chosen, so
tests assert exact answers; the generator's portfolios are for scale) and an HTTP session that
talks to a running sandbox the way a plain `requests` client would."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from connectors.sandbox.ado_server import AzureDevOpsSandbox
from connectors.sandbox.portfolio import SeedItem, SeedLink

BASE = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def seed_item(work_item_id: int, **overrides: Any) -> SeedItem:
    values: dict[str, Any] = {
        "tracker": "azure_devops",
        "key": str(work_item_id),
        "id": work_item_id,
        "type": "User Story",
        "title": f"Story {work_item_id}",
        "status": "Active",
        "status_category": "In Progress",
        "project": "Portfolio\\Payments",
        "created": BASE - timedelta(days=30),
        "updated": BASE,
    }
    values.update(overrides)
    return SeedItem(**values)


def small_portfolio() -> list[SeedItem]:
    """An epic with two features and their stories, a key result, tags, a related link and
    WSJF inputs with the usual gaps (a missing input, a zero job size, a word in a number)."""
    return [
        seed_item(
            10,
            type="Key Result",
            title="Raise conversion to 3.5%",
            project="Portfolio\\OKR",
            status="New",
            status_category="To Do",
        ),
        seed_item(
            100,
            type="Epic",
            title="Checkout revamp",
            labels=["KR-10", "payments"],
            business_value=13,
            time_criticality=8,
            risk_reduction=5,
            job_size=8,
            rank=1000.0,
            updated=BASE - timedelta(days=3),
            links=[SeedLink("System.LinkTypes.Related", "10")],
        ),
        seed_item(
            101,
            type="Feature",
            title="One-click pay",
            parent="100",
            business_value=8,
            time_criticality=5,
            risk_reduction="big",
            job_size=5,
            rank=2000.0,
            updated=BASE - timedelta(days=2, hours=5),
        ),
        seed_item(
            102,
            type="Feature",
            title="Saved cards",
            parent="100",
            business_value=5,
            time_criticality=None,
            risk_reduction="3",
            job_size=0,
            rank=3000.0,
            project="Portfolio\\Payments\\Cards",
            status="Closed",
            status_category="Done",
            updated=BASE - timedelta(days=1),
        ),
        seed_item(
            103,
            title="Pay with one click on mobile",
            parent="101",
            labels=["mobile"],
            updated=BASE + timedelta(hours=3),
        ),
        seed_item(
            104,
            title="Remember the last card",
            parent="102",
            type="Task",
            status="New",
            status_category="To Do",
            project="Portfolio\\Web",
            updated=BASE - timedelta(days=9),
        ),
    ]


def many_items(count: int, *, start: int = 1) -> list[SeedItem]:
    """`count` plain stories with distinct ids and ChangedDates a minute apart."""
    return [
        seed_item(start + n, updated=BASE - timedelta(minutes=n), title=f"Bulk story {n}")
        for n in range(count)
    ]


class AdoSession:
    """`requests` with the sandbox's PAT, `X-TFS-FedAuthRedirect: Suppress` and api-version 7.1
    in the query string; `path` is relative to the organization URL."""

    def __init__(self, ado: AzureDevOpsSandbox, *, api_version: str | None = "7.1") -> None:
        self.ado = ado
        self.api_version = api_version
        self.http = requests.Session()
        self.http.auth = ado.basic_auth
        self.http.headers["X-TFS-FedAuthRedirect"] = "Suppress"

    def url(self, path: str) -> str:
        return f"{self.ado.organization_url}/{path.lstrip('/')}"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        params = dict(kwargs.pop("params", None) or {})
        if self.api_version is not None:
            params.setdefault("api-version", self.api_version)
        return self.http.request(method, self.url(path), params=params, timeout=30, **kwargs)

    def wiql(self, query: str, **params: Any) -> requests.Response:
        return self.request(
            "POST", "Portfolio/_apis/wit/wiql", json={"query": query}, params=params
        )

    def batch(self, body: dict[str, Any]) -> requests.Response:
        return self.request("POST", "_apis/wit/workitemsbatch", json=body)

    def patch(self, work_item_id: int, document: Any, **params: Any) -> requests.Response:
        headers = {"Content-Type": "application/json-patch+json"}
        return self.request(
            "PATCH",
            f"Portfolio/_apis/wit/workitems/{work_item_id}",
            data=json.dumps(document),
            headers=headers,
            params=params,
        )
