"""Connection settings for spm-sync's connectors against the sandboxes, as a user would
configure them (default workers and retries), plus the plain JSON that workers receive."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from connectors.sandbox.ado_server import AzureDevOpsSandbox
from connectors.sandbox.jira_fields import WSJF_FIELD_NAMES
from connectors.sandbox.jira_server import JiraSandbox
from connectors.sandbox.portfolio import SeedItem
from connectors.settings import AzureDevOpsSettings, JiraSettings

JIRA_NAME = "jira"
ADO_NAME = "ado"
USER_ENV, TOKEN_ENV, PAT_ENV = "BENCH_JIRA_USER", "BENCH_JIRA_TOKEN", "BENCH_ADO_PAT"

JIRA_WSJF_FIELDS = WSJF_FIELD_NAMES
ADO_WSJF_FIELDS = {
    "risk_reduction": "Risk Reduction | Opportunity Enablement",
    "score": "WSJF Score",
    "cost_of_delay": "Cost of Delay",
}


def project_jql(items: Iterable[SeedItem]) -> str:
    """The scope of a portfolio's Jira items: every project they live in (a bounded query)."""
    projects = sorted({item.project for item in items})
    return f"project in ({', '.join(projects)})"


def jira_target(sandbox: JiraSandbox, jql: str) -> dict[str, Any]:
    """What a worker needs to reach the Jira sandbox (plain JSON)."""
    return {"url": sandbox.url, "user": sandbox.user, "token": sandbox.token, "jql": jql}


def ado_target(sandbox: AzureDevOpsSandbox) -> dict[str, Any]:
    return {
        "organization_url": sandbox.organization_url,
        "project": sandbox.project,
        "pat": sandbox.pat,
    }


def jira_settings(target: Mapping[str, Any], **overrides: Any) -> JiraSettings:
    values: dict[str, Any] = {
        "kind": "jira",
        "name": JIRA_NAME,
        "url": target["url"],
        "deployment": "auto",
        "auth": {"user_env": USER_ENV, "token_env": TOKEN_ENV},
        "jql": target["jql"],
        "wsjf_fields": JIRA_WSJF_FIELDS,
    }
    values.update(overrides)
    return JiraSettings.model_validate(values)


def jira_environ(target: Mapping[str, Any]) -> dict[str, str]:
    return {USER_ENV: str(target["user"]), TOKEN_ENV: str(target["token"])}


def ado_settings(target: Mapping[str, Any], **overrides: Any) -> AzureDevOpsSettings:
    values: dict[str, Any] = {
        "kind": "azure_devops",
        "name": ADO_NAME,
        "url": target["organization_url"],
        "project": target["project"],
        "auth": {"token_env": PAT_ENV},
        "wsjf_fields": ADO_WSJF_FIELDS,
    }
    values.update(overrides)
    return AzureDevOpsSettings.model_validate(values)


def ado_environ(target: Mapping[str, Any]) -> dict[str, str]:
    return {PAT_ENV: str(target["pat"])}
