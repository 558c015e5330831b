"""Shared builders for the Jira connector tests: settings, spec-shaped JSON, spec validation.

Issue and field JSON come from `tests/fixtures/jira/`, written after the `IssueBean` and
`FieldDetails` shapes of specs/jira-platform-v3.json.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import responses
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from connectors.jira import JiraConnector
from connectors.sandbox.jira_fields import WSJF_FIELD_NAMES as SANDBOX_WSJF_FIELD_NAMES
from connectors.settings import JiraSettings

FIXTURES = Path(__file__).parent / "fixtures" / "jira"
SPECS = Path(__file__).resolve().parent.parent / "specs"
CLOUD = "https://acme.atlassian.net"
DC = "https://jira.acme.test"
ENV = {"JIRA_USER": "bot@acme.test", "JIRA_TOKEN": "s3cret-token-value"}
SERVER_TIME = "2024-05-02T12:00:00.000+0000"
NOW = datetime(2024, 5, 2, 12, 0, tzinfo=UTC)

SCORE_ID = "customfield_10034"
COST_ID = "customfield_10035"
RANK_ID = "customfield_10019"
EPIC_LINK_ID = "customfield_10100"
PARENT_LINK_ID = "customfield_10101"

WSJF_FIELD_NAMES: Mapping[str, str] = SANDBOX_WSJF_FIELD_NAMES
"""The Jira sandbox's WSJF field names; `fields_cloud.json` uses the same (test_jira_fields)."""

DC_FIELDS = [
    {
        "id": EPIC_LINK_ID,
        "name": "Epic Link",
        "custom": True,
        "schema": {
            "type": "any",
            "custom": "com.pyxis.greenhopper.jira:gh-epic-link",
            "customId": 10100,
        },
    },
    {
        "id": PARENT_LINK_ID,
        "name": "Parent Link",
        "custom": True,
        "schema": {
            "type": "any",
            "custom": "com.atlassian.jpo:jpo-custom-field-parent",
            "customId": 10101,
        },
    },
]


def settings(**overrides: Any) -> JiraSettings:
    values: dict[str, Any] = {
        "kind": "jira",
        "name": "acme-jira",
        "url": CLOUD,
        "auth": {"user_env": "JIRA_USER", "token_env": "JIRA_TOKEN"},
        "jql": "project in (PAY, WEB)",
        "wsjf_fields": dict(WSJF_FIELD_NAMES),
        "workers": 3,
        "retry": {"max_attempts": 4, "base_delay_seconds": 0.5, "max_wait_seconds": 30},
    }
    values.update(overrides)
    return JiraSettings.model_validate(values)


def field_catalog(*, datacenter: bool = False) -> list[dict[str, Any]]:
    catalog = json.loads((FIXTURES / "fields_cloud.json").read_text())
    return catalog + copy.deepcopy(DC_FIELDS) if datacenter else catalog


def raw_issue(key: str, issue_id: int, **fields: Any) -> dict[str, Any]:
    """The fixture issue under another key/id; `fields` replace (None removes) its fields."""
    issue = json.loads((FIXTURES / "issue_cloud.json").read_text())
    issue["key"] = key
    issue["id"] = str(issue_id)
    issue["self"] = f"{CLOUD}/rest/api/3/issue/{issue_id}"
    for name, value in fields.items():
        if value is None:
            issue["fields"].pop(name, None)
        else:
            issue["fields"][name] = value
    return issue


class Sleeps(list[float]):
    """A fake sleep that records what the policy asked for."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def connector(
    jira_settings: JiraSettings | None = None,
    *,
    sleep: Callable[[float], None] | None = None,
    clock: Callable[[], datetime] = lambda: NOW,
) -> JiraConnector:
    return JiraConnector(
        jira_settings or settings(),
        environ=ENV,
        clock=clock,
        sleep=Sleeps() if sleep is None else sleep,
    )


def register_preamble(
    rsps: responses.RequestsMock,
    *,
    flavour: str = "cloud",
    base: str = CLOUD,
    catalog: list[dict[str, Any]] | None = None,
) -> None:
    """serverInfo (library default REST v2) and the field list (v3 on Cloud, v2 on DC)."""
    deployment = "Cloud" if flavour == "cloud" else "Server"
    rsps.get(
        f"{base}/rest/api/2/serverInfo",
        json={
            "baseUrl": base,
            "deploymentType": deployment,
            "serverTime": SERVER_TIME,
            "versionNumbers": [1001, 0, 0] if flavour == "cloud" else [9, 12, 0],
        },
    )
    version = "3" if flavour == "cloud" else "2"
    if catalog is None:
        catalog = field_catalog(datacenter=flavour != "cloud")
    rsps.get(f"{base}/rest/api/{version}/field", json=catalog)


def body(call: Any) -> Any:
    return json.loads(call.request.body)


def calls_to(rsps: responses.RequestsMock, method: str, path: str) -> list[Any]:
    return [
        call
        for call in rsps.calls
        if call.request.method == method and call.request.path_url.split("?")[0] == path
    ]


@cache
def _registry() -> Registry:
    registry: Registry = Registry()
    for urn, name in (
        ("urn:jira-platform", "jira-platform-v3.json"),
        ("urn:jira-agile", "jira-software-agile.json"),
    ):
        spec = json.loads((SPECS / name).read_text())
        registry = registry.with_resource(
            urn, Resource.from_contents(spec, default_specification=DRAFT4)
        )
    return registry


def spec_errors(spec: str, schema: str, instance: Mapping[str, Any]) -> list[str]:
    """Validation errors of `instance` against `#/components/schemas/<schema>` of a spec
    ("platform" or "agile"); an empty list means the body is exactly what the spec allows."""
    urn = "urn:jira-platform" if spec == "platform" else "urn:jira-agile"
    validator = OAS30Validator(
        {"$ref": f"{urn}#/components/schemas/{schema}"}, registry=_registry()
    )
    return [error.message for error in validator.iter_errors(instance)]
