"""`spm-sync check --online` against the sandbox trackers and a real SMTP server."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from connectors.base import ConnectorError
from spm_sync.cli.main import main
from spm_sync.cli.online_check import check_online
from spm_sync.config.model import load_config
from tests.cycle_fixtures import SandboxSetup, sandbox_setup
from tests.tracker_tamper import Rule, tampered

pytestmark = pytest.mark.integration


@pytest.fixture
def env(tmp_path: Path) -> SandboxSetup:
    with sandbox_setup(tmp_path, size=200) as running:
        yield running


def test_a_correct_setup_passes_every_online_check(env: SandboxSetup) -> None:
    result = CliRunner().invoke(main, ["check", "-c", str(env.config_path), "--online"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    # Passed, or passed with a warning ("!"): a warning never hides behind a ✓.
    assert all(line.startswith(("✓ ", "! ")) for line in lines), result.output
    expected = [
        f"✓ jira: signed in to {env.jira.url} as Sandbox Automation",
        "✓ jira: wsjf_fields.job_size 'Job Size' is customfield_10013",
        "✓ jira: link type 'Drives' exists",
        f"✓ azure-devops: signed in to {env.ado.organization_url} as spm-sync automation",
        "✓ azure-devops: wsjf_fields.score 'Custom.WSJFScore' exists",
        "✓ azure-devops: rank_field 'Microsoft.VSTS.Common.StackRank' exists",
        "✓ azure-devops: relation type 'System.LinkTypes.Related' exists",
    ]
    for line in expected:
        assert line in lines
    assert any(line.startswith("✓ jira: the jql scope runs (about 120 issues)") for line in lines)
    assert any(line.startswith("✓ SMTP 127.0.0.1:") for line in lines)
    # The risk field is a text field in the sandbox (as in many sites): usable, with a warning.
    assert any(
        line.startswith("! jira: configured fields resolve with usable types (") for line in lines
    )
    assert [line for line in lines if line.startswith("! ")] == [
        line for line in lines if line.startswith("! jira: configured fields resolve")
    ]
    assert any(line.startswith("✓ store sqlite:///") for line in lines)
    # Write access, asked of one item in scope without writing anything.
    assert "✓ jira: may edit issues (Edit Issues on OKR-1)" in lines
    assert "✓ jira: may rank issues (Schedule Issues on OKR-1)" in lines
    assert (
        "✓ jira: on the edit screen of OKR-1: 'WSJF Score' (customfield_10014), "
        "'Cost of Delay' (customfield_10015), Priority, Labels"
    ) in lines
    assert (
        "✓ azure-devops: work item 1001 accepts score, cost_of_delay, rank, priority, "
        "orphan_label (validated only, not saved)"
    ) in lines
    assert env.jira.writes == [] and env.ado.writes == []


def test_wrong_names_fail_with_the_fix(env: SandboxSetup) -> None:
    text = env.config_path.read_text(encoding="utf-8")
    text = text.replace("job_size: Job Size", "job_size: Job Sise")
    text = text.replace("[Drives]", "[Drives, Drivez]")
    text = text.replace("score: Custom.WSJFScore", "score: Custom.WSJFScor")
    env.config_path.write_text(text, encoding="utf-8")

    lines = [line.render() for line in check_online(load_config(env.config_path))]
    failed = [line for line in lines if line.startswith("✗")]
    assert failed == [
        "✗ jira: wsjf_fields.job_size: no field 'Job Sise' (fix: close matches: 'Job Size')",
        "✗ jira: okr.link_types: no issue link type 'Drivez' (fix: close matches: 'Drives')",
        "✗ azure-devops: wsjf_fields.score: no field 'Custom.WSJFScor' (fix: close matches: "
        "WSJF Score (Custom.WSJFScore))",
    ]
    result = CliRunner().invoke(main, ["check", "-c", str(env.config_path), "--online"])
    assert result.exit_code == 1


def test_rejected_credentials_and_a_dead_smtp_server_fail(
    env: SandboxSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPM_SYNC_DEMO_JIRA_TOKEN", "wrong")
    monkeypatch.setenv("SPM_SYNC_DEMO_ADO_PAT", "wrong")
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    text = env.config_path.read_text(encoding="utf-8")
    port_line = next(line for line in text.splitlines() if line.strip().startswith("port:"))
    env.config_path.write_text(text.replace(port_line, f"    port: {dead_port}"), "utf-8")

    lines = [line.render() for line in check_online(load_config(env.config_path))]
    failed = [line for line in lines if line.startswith("✗")]
    assert len(failed) == 3, lines
    assert "rejected the credentials (HTTP 401)" in failed[0]
    assert failed[1].startswith("✗ azure-devops: Azure DevOps at http://127.0.0.1:")
    assert "rejected the personal access token while trying to read the signed-in user" in failed[1]
    assert failed[2].startswith(f"✗ SMTP 127.0.0.1:{dead_port} (none): failed:")
    assert "wrong" not in "\n".join(lines)


def test_a_deployment_the_server_contradicts_is_flagged(env: SandboxSetup) -> None:
    text = env.config_path.read_text(encoding="utf-8")
    env.config_path.write_text(
        text.replace("deployment: cloud", "deployment: datacenter"), encoding="utf-8"
    )

    lines = [line.render() for line in check_online(load_config(env.config_path))]
    assert (
        "✗ jira: deployment is configured as datacenter but Jira reports deploymentType "
        "'Cloud'; using datacenter as configured (fix: set `deployment` to what the server is)"
    ) in lines


def test_missing_write_access_fails_before_the_first_apply(env: SandboxSetup) -> None:
    env.jira.off_screen_fields.add(env.jira.field_id("WSJF Score"))
    env.jira.denied_permissions.add("SCHEDULE_ISSUES")
    refusal = (
        b'{"$id":"1","innerException":null,"message":"TF237111: The current user does not have '
        b'permissions to save work items under the specified area path.","typeName":'
        b'"Microsoft.TeamFoundation.WorkItemTracking.Server.WorkItemSecurityException",'
        b'"typeKey":"WorkItemSecurityException","errorCode":0,"eventId":3200}'
    )
    with tampered(Rule(r"/_apis/wit/workitems/\d+\?.*validateOnly=true", refusal, status=403)):
        lines = [line.render() for line in check_online(load_config(env.config_path))]

    failed = [line for line in lines if line.startswith("✗")]
    assert failed == [
        "✗ jira: lacks the Schedule Issues permission on OKR-1: write-back would be refused "
        "(fix: grant the Schedule Issues permission in the project's permission scheme)",
        "✗ jira: write_back.score: 'WSJF Score' (customfield_10014) is not on the edit screen "
        "of OKR-1; Jira would refuse the write (fix: add the field to the edit screen of the "
        "project's issue types)",
        "✗ azure-devops: work item 1001 refuses score, cost_of_delay, rank, priority, "
        "orphan_label: HTTP 403: TF237111: The current user does not have permissions to save "
        "work items under the specified area path. (fix: the token needs the Work Items (Read "
        "& Write) scope and its user 'Edit work items in this node' on the area path; the "
        "fields must be writable)",
    ]
    assert env.jira.writes == [] and env.ado.writes == []


def test_without_write_back_no_write_access_is_asked(env: SandboxSetup) -> None:
    text = env.config_path.read_text(encoding="utf-8")
    # Drop each connection's `write_back:` block (indented 4, its keys 6 and deeper).
    text, dropped = re.subn(r"    write_back:\n(?:      .*\n)+", "", text)
    assert dropped == 2
    env.config_path.write_text(text, encoding="utf-8")
    env.jira.denied_permissions.update({"EDIT_ISSUES", "SCHEDULE_ISSUES"})

    lines = [line.render() for line in check_online(load_config(env.config_path))]
    assert all(line.startswith(("✓ ", "! ")) for line in lines), lines
    assert not any("edit" in line or "accepts" in line for line in lines)
    assert "/mypermissions" not in " ".join(env.jira.counts)


def test_a_read_only_score_field_is_refused_by_azure_devops_itself(env: SandboxSetup) -> None:
    text = env.config_path.read_text(encoding="utf-8")
    text = text.replace("score: Custom.WSJFScore", "score: System.CreatedDate")
    env.config_path.write_text(text, encoding="utf-8")

    lines = [line.render() for line in check_online(load_config(env.config_path))]
    failed = [line for line in lines if line.startswith("✗")]
    assert len(failed) == 1, lines
    assert failed[0].startswith("✗ azure-devops: work item 1001 refuses score, ")
    assert "System.CreatedDate" in failed[0]
    assert env.ado.writes == []


class _Uncheckable:
    """A connector without an online check of its own."""

    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


class _Refusing(_Uncheckable):
    def check(self, request: object) -> list[object]:
        raise ConnectorError("the tracker refused the check")


def test_a_connector_without_a_check_is_a_warning_and_is_closed(env: SandboxSetup) -> None:
    config = load_config(env.config_path)
    made: list[_Uncheckable] = []

    def make(settings: object) -> _Uncheckable:
        made.append(_Uncheckable())
        return made[-1]

    lines = list(check_online(config, connector_factory=make))  # type: ignore[arg-type]

    names = [connection.name for connection in config.connections]
    warned = [line for line in lines if "has no online check" in line.message]
    assert [line.message for line in warned] == [
        f"{name}: this connector has no online check" for name in names
    ]
    assert all(line.ok and line.warning for line in warned)
    assert len(made) == len(names) and all(connector.closed for connector in made)


def test_a_check_that_fails_is_one_line_naming_the_connection(env: SandboxSetup) -> None:
    config = load_config(env.config_path)
    made: list[_Refusing] = []

    def make(settings: object) -> _Refusing:
        made.append(_Refusing())
        return made[-1]

    lines = list(check_online(config, connector_factory=make))  # type: ignore[arg-type]

    failed = [line for line in lines if not line.ok]
    assert [line.message for line in failed] == [
        f"{connection.name}: the tracker refused the check" for connection in config.connections
    ]
    assert all(connector.closed for connector in made)
