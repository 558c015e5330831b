"""Jira Cloud through the API gateway: a scoped API token (the only kind a service account
gets) is refused at the site's own address and accepted at
`https://api.atlassian.com/ex/jira/<cloudId>`. The sandbox plays both: it answers
`/_edge/tenant_info` and serves the API below `/ex/jira/<cloudId>`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner, Result

from connectors.jira_client import browse_url, gateway_cloud_id, tenant_cloud_id
from connectors.sandbox.ado_server import AzureDevOpsSandbox
from connectors.sandbox.cli import describe
from connectors.sandbox.generator import generate_portfolio
from connectors.sandbox.jira_server import JiraSandbox
from spm_sync.cli.main import main
from tests.cycle_fixtures import SandboxSetup, sandbox_setup

pytestmark = pytest.mark.integration

SCOPED = "scoped-token-of-a-service-account"
TOKEN_ENV = "SPM_SYNC_DEMO_JIRA_TOKEN"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), prog_name="spm-sync")


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxSetup]:
    with sandbox_setup(tmp_path, size=200) as running:
        running.jira.scoped_token = SCOPED
        monkeypatch.setenv(TOKEN_ENV, SCOPED)
        yield running


def use_url(env: SandboxSetup, url: str) -> None:
    text = env.config_path.read_text(encoding="utf-8")
    env.config_path.write_text(
        text.replace(f"url: {env.jira.url}\n", f"url: {url}\n", 1), encoding="utf-8"
    )


def test_gateway_addresses_are_recognised() -> None:
    gateway = "https://api.atlassian.com/ex/jira/4c7f3b2a-9d1e-4f6a-8b5c-2e0d9a7f1c63"
    assert gateway_cloud_id(gateway) == "4c7f3b2a-9d1e-4f6a-8b5c-2e0d9a7f1c63"
    assert gateway_cloud_id(gateway + "/") == "4c7f3b2a-9d1e-4f6a-8b5c-2e0d9a7f1c63"
    assert gateway_cloud_id("https://contoso.atlassian.net") is None
    assert gateway_cloud_id("https://jira.contoso.com/jira") is None
    info = {"baseUrl": "https://contoso.atlassian.net"}
    assert browse_url(gateway, info) == "https://contoso.atlassian.net"
    # Only the gateway defers to serverInfo: a Data Center may report an internal baseUrl.
    assert browse_url("https://jira.contoso.com", {"baseUrl": "http://10.0.0.5"}) == (
        "https://jira.contoso.com"
    )


def test_the_sandbox_answers_tenant_info_and_serves_the_gateway_path() -> None:
    with JiraSandbox(scoped_token=SCOPED) as jira:
        answer = requests.get(f"{jira.url}/_edge/tenant_info", timeout=10)
        assert answer.status_code == 200 and answer.json() == {"cloudId": jira.cloud_id}
        assert tenant_cloud_id(jira.url, timeout=10) == jira.cloud_id

        gateway = f"{jira.url}/ex/jira/{jira.cloud_id}"
        scoped = (jira.user, SCOPED)
        site_answer = requests.get(f"{jira.url}/rest/api/3/myself", auth=scoped, timeout=10)
        assert site_answer.status_code == 401  # a scoped token is refused at the site
        me = requests.get(f"{gateway}/rest/api/3/myself", auth=scoped, timeout=10)
        assert me.status_code == 200 and me.json()["displayName"]
        info = requests.get(f"{gateway}/rest/api/3/serverInfo", auth=scoped, timeout=10).json()
        assert info["baseUrl"] == jira.url  # the site, whichever way it was asked

        unknown = requests.get(
            f"{jira.url}/ex/jira/00000000-0000-0000-0000-000000000000/rest/api/3/myself",
            auth=scoped,
            timeout=10,
        )
        assert unknown.status_code == 404
    with JiraSandbox(flavour="datacenter") as datacenter:
        assert tenant_cloud_id(datacenter.url, timeout=10) is None


def test_check_online_finds_the_cloud_id_for_a_refused_scoped_token(env: SandboxSetup) -> None:
    result = invoke("check", "-c", str(env.config_path), "--online")

    assert result.exit_code == 1
    failed = [line for line in result.stdout.splitlines() if line.startswith("✗")]
    assert len(failed) == 1, result.stdout
    assert "rejected the credentials (HTTP 401)" in failed[0]
    gateway = f"https://api.atlassian.com/ex/jira/{env.jira.cloud_id}"
    assert f"works only through the API gateway: set `url: {gateway}`" in failed[0]
    assert SCOPED not in result.output


def test_a_cycle_runs_through_the_gateway_with_a_scoped_token(env: SandboxSetup) -> None:
    use_url(env, f"{env.jira.url}/ex/jira/{env.jira.cloud_id}")

    check = invoke("check", "-c", str(env.config_path), "--online")
    assert check.exit_code == 0, check.output
    assert (
        f"✓ jira: the API gateway reaches site {env.jira.url} (cloud id {env.jira.cloud_id})"
    ) in check.stdout.splitlines()

    run = invoke("run", "-c", str(env.config_path), "--apply", "--no-email", "--json", "-")
    assert run.exit_code == 0, run.stderr
    result = json.loads(run.stdout)
    jira = next(c for c in result["connections"] if c["name"] == "jira")
    assert jira["items_pulled"] == len(env.portfolio.jira) and not jira["error"]
    assert env.jira.writes  # scores, ranks and labels written through the gateway
    urls = [item["url"] for item in result["wsjf"] if item["connection"] == "jira"]
    assert urls and all(url.startswith(f"{env.jira.url}/browse/") for url in urls)


def test_a_wrong_cloud_id_says_where_to_find_the_right_one(env: SandboxSetup) -> None:
    use_url(env, f"{env.jira.url}/ex/jira/00000000-0000-0000-0000-000000000000")

    result = invoke("check", "-c", str(env.config_path), "--online")

    assert result.exit_code == 1
    assert (
        "the API gateway knows no Jira site with cloud id 00000000-0000-0000-0000-000000000000"
        in result.stdout
    )
    assert "/_edge/tenant_info" in result.stdout


def test_the_sandbox_command_names_the_gateway_url() -> None:
    portfolio = generate_portfolio(100, seed=1)
    with JiraSandbox(scoped_token=SCOPED) as jira, AzureDevOpsSandbox() as ado:
        lines = describe(portfolio, jira, ado)
        gateway = next(line for line in lines if "scoped API token" in line)
        assert gateway.endswith(f"the gateway url {jira.url}/ex/jira/{jira.cloud_id}")
