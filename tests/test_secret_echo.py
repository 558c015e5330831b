"""A token pasted where the NAME of an environment variable belongs is refused, and no command
repeats it: not `check`, not `run`, not any message that names an environment variable."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from spm_sync.cli.main import main
from spm_sync.cli.offline_check import _env_checks
from spm_sync.config.model import EnvRequirement
from spm_sync.core.secrets import looks_like_secret, read_secret, shown_env
from tests.test_cli import GOOD, write_config

# Shapes of real secrets (made up): an Atlassian API token, an Azure DevOps PAT of the old
# (52 base-32 characters) and the new (84 letters and digits) kind, a GitHub-style token.
ATLASSIAN = "ATATT3xFfGF0q9Zk-Vb7Lm2Np4Rs6Tu8Wx0Yz1Ab3Cd5Ef7Gh9Ij=A1B2C3D4"
ADO_OLD = "k3v7q2m4n6p5r7s2t3u4v5w6x7y2z3a4b5c6d7e2f3g4h5i6j7kq"
ADO_NEW = ("4Xq9ZkVb7Lm2Np4Rs6Tu8Wx0Yz1Ab3Cd5Ef7Gh9Ij2Kl" * 2)[:84]
GITHUB_LIKE = "ghp_9Zk2Vb7Lm2Np4Rs6Tu8Wx0Yz1Ab3Cd5Ef7Gh9"
PASTED = (ATLASSIAN, ADO_OLD, ADO_NEW, GITHUB_LIKE)
MESSAGE = "this looks like the token itself; put the NAME of an environment variable here"


def pieces(secret: str) -> list[str]:
    """The secret and the ends an abbreviation ("ATAT…C3D4") would still show."""
    return [secret, secret[:6], secret[-6:]]


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), prog_name="spm-sync")


@pytest.mark.parametrize("secret", PASTED)
def test_pasted_tokens_look_like_secrets(secret: str) -> None:
    assert len(ADO_OLD) == 52 and len(ADO_NEW) == 84
    assert looks_like_secret(secret)
    assert shown_env(secret) != secret and secret not in shown_env(secret)


@pytest.mark.parametrize(
    "name",
    [
        "JIRA_TOKEN",
        "ADO_PAT",
        "SPM_SYNC_DEMO_JIRA_TOKEN",
        "AZURE_DEVOPS_EXT_PAT",
        "jira_api_token_prod_2",
        "SERVICE_ACCOUNT_JIRA_SCOPED_API_TOKEN",
    ],
)
def test_variable_names_are_shown_as_they_are(name: str) -> None:
    assert not looks_like_secret(name)
    assert shown_env(name) == name


@pytest.mark.parametrize("secret", PASTED)
def test_check_refuses_a_pasted_token_without_repeating_it(tmp_path: Path, secret: str) -> None:
    connection = {**GOOD["connections"][0], "auth": {"token_env": secret}}
    path = write_config(tmp_path, {"connections": [connection]})

    result = invoke("check", "-c", str(path))

    assert result.exit_code == 2
    assert f"connections[0].auth.token_env: {MESSAGE}" in result.output
    for piece in pieces(secret):
        assert piece not in result.output


def test_run_refuses_it_too_for_every_secret_key(tmp_path: Path) -> None:
    jira = {
        "kind": "jira",
        "name": "jira",
        "url": "https://example.atlassian.net",
        "auth": {"user_env": ADO_OLD, "token_env": ATLASSIAN},
        "jql": "project = PAY",
        "wsjf_fields": {
            "business_value": "BV",
            "time_criticality": "TC",
            "risk_reduction": "RR",
            "job_size": "JS",
        },
    }
    store = {"url": f"sqlite:///{tmp_path / 'db.sqlite'}", "password_env": ADO_NEW}
    path = write_config(tmp_path, {"store": store, "connections": [jira]})

    result = invoke("run", "-c", str(path))

    assert result.exit_code == 2
    assert result.stdout == ""
    problems = result.stderr.splitlines()
    assert f"{path}: connections[0].auth.user_env: {MESSAGE}" in "\n".join(problems)
    assert any("connections[0].auth.token_env: this looks like the token" in p for p in problems)
    assert any("store.password_env: this looks like the token" in p for p in problems)
    for secret in (ADO_OLD, ATLASSIAN, ADO_NEW):
        for piece in pieces(secret):
            assert piece not in result.output
    assert not (tmp_path / "db.sqlite").exists()


def test_an_unset_variable_is_named_but_a_secret_shaped_one_is_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SPM_TEST_UNSET_TOKEN", raising=False)
    with pytest.raises(LookupError, match="environment variable SPM_TEST_UNSET_TOKEN is not set"):
        read_secret("SPM_TEST_UNSET_TOKEN")
    with pytest.raises(LookupError) as refused:
        read_secret(ADO_NEW, {})
    assert ADO_NEW[:6] not in str(refused.value)
    assert "looks like a secret, not shown" in str(refused.value)


def test_the_offline_check_never_shows_a_secret_shaped_name() -> None:
    """Defence in depth: were such a name ever to pass validation, the check line would still
    not repeat it."""

    class Config:
        def required_env(self) -> list[EnvRequirement]:
            return [EnvRequirement("connections[0].auth.token_env", ADO_OLD)]

    lines = _env_checks(Config())  # type: ignore[arg-type]
    rendered = "\n".join(line.render() for line in lines)
    assert (
        rendered == f"✗ connections[0].auth.token_env: {MESSAGE} (e.g. JIRA_TOKEN) and put "
        "the token in that variable"
    )
    for piece in pieces(ADO_OLD):
        assert piece not in rendered


def test_an_email_address_in_user_env_is_called_what_it_is(tmp_path: Path) -> None:
    jira = {
        "kind": "jira",
        "name": "jira",
        "url": "https://example.atlassian.net",
        "auth": {"user_env": "portfolio.bot@example.com", "token_env": "JIRA_TOKEN"},
        "jql": "project = PAY",
        "wsjf_fields": {
            "business_value": "BV",
            "time_criticality": "TC",
            "risk_reduction": "RR",
            "job_size": "JS",
        },
    }
    path = write_config(tmp_path, {"connections": [jira]})
    result = invoke("check", "-c", str(path))
    assert result.exit_code == 2
    assert (
        "connections[0].auth.user_env: this looks like an email address; put the NAME of an "
        "environment variable here"
    ) in result.output
    assert "portfolio.bot" not in result.output
