"""Connectors wired to a running sandbox, for the integration tests: the settings a user
would write for it (Cloud signs in with an email and token, Data Center with a bearer token),
and the secrets the sandbox accepts. Each test module passes only what it varies."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from connectors.azure_devops import AzureDevOpsConnector
from connectors.jira import JiraConnector
from connectors.sandbox.ado_server import AzureDevOpsSandbox
from connectors.sandbox.jira_server import JiraSandbox
from connectors.settings import AzureDevOpsSettings, JiraSettings
from tests.jira_fixtures import WSJF_FIELD_NAMES

ADO_RISK_REDUCTION = "Risk Reduction | Opportunity Enablement"


def jira_connector(
    sandbox: JiraSandbox,
    *,
    jql: str,
    sleep: Callable[[float], None] | None = None,
    **overrides: Any,
) -> JiraConnector:
    auth = (
        {"user_env": "SANDBOX_USER", "token_env": "SANDBOX_TOKEN"}
        if sandbox.flavour == "cloud"
        else {"method": "bearer", "token_env": "SANDBOX_TOKEN"}
    )
    values: dict[str, Any] = {
        "kind": "jira",
        "name": "sandbox-jira",
        "url": sandbox.url,
        "auth": auth,
        "jql": jql,
        "wsjf_fields": dict(WSJF_FIELD_NAMES),
        **overrides,
    }
    environ = {"SANDBOX_USER": sandbox.user, "SANDBOX_TOKEN": sandbox.token}
    options: dict[str, Any] = {} if sleep is None else {"sleep": sleep}
    return JiraConnector(JiraSettings.model_validate(values), environ=environ, **options)


def ado_connector(
    sandbox: AzureDevOpsSandbox,
    *,
    sleep: Callable[[float], None] | None = None,
    clock: Callable[[], float] | None = None,
    wiql_page_size: int | None = None,
    cache_dir: Path | None = None,
    **overrides: Any,
) -> AzureDevOpsConnector:
    values: dict[str, Any] = {
        "kind": "azure_devops",
        "name": "sandbox-ado",
        "url": sandbox.organization_url,
        "project": sandbox.project,
        "auth": {"token_env": "ADO_PAT"},
        "wsjf_fields": {"risk_reduction": ADO_RISK_REDUCTION},
        **overrides,
    }
    options: dict[str, Any] = {"cache_dir": cache_dir}
    if sleep is not None:
        options["sleep"] = sleep
    if clock is not None:
        options["clock"] = clock
    if wiql_page_size is not None:
        options["wiql_page_size"] = wiql_page_size
    return AzureDevOpsConnector(
        AzureDevOpsSettings.model_validate(values), environ={"ADO_PAT": sandbox.pat}, **options
    )
