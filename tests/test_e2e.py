"""End to end over HTTP: the cycle against the Jira Cloud and Azure DevOps sandboxes at once,
on SQLite and on PostgreSQL (own schema). First run writes, second run writes nothing, a human
edit between plan and apply becomes a conflict, and the report is mailed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectors.registry import default_connector_factory
from spm_sync.cli.commands import run_command
from spm_sync.config.model import Config, WriteMode
from spm_sync.core.domain import WriteField
from spm_sync.core.results import CycleResult
from spm_sync.pipeline.cycle import CycleDeps, run_cycle
from spm_sync.store import AuditStatus, Store
from tests.cycle_fixtures import SandboxSetup, sandbox_setup

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]


def deps(store: Store) -> CycleDeps:
    return CycleDeps(store, connector_factory=default_connector_factory(discovery_cache_dir=None))


def scored(result: CycleResult, connection: str) -> list[str]:
    return [r.key for r in result.wsjf if r.connection == connection and r.scored]


def check_trackers_hold_the_results(env: SandboxSetup, result: CycleResult) -> None:
    """Scores in the fields, ranks in WSJF order, orphan labels on the orphans."""
    score_field = env.jira.field_id("WSJF Score")
    for row in result.wsjf:
        if row.connection == "jira" and row.scored:
            assert env.jira.issue(row.key)["fields"][score_field] == row.wsjf
        elif row.connection == "azure-devops" and row.scored:
            assert env.ado.work_item(int(row.key))["fields"]["Custom.WSJFScore"] == row.wsjf
    jira_ranked = [
        r.key for r in sorted(result.wsjf, key=lambda r: r.new_rank or 0) if r.connection == "jira"
    ]
    assert env.jira.rank_order(jira_ranked) == jira_ranked
    ado_rows = sorted(
        (r for r in result.wsjf if r.connection == "azure-devops"), key=lambda r: r.new_rank or 0
    )
    stack = [
        env.ado.work_item(int(r.key))["fields"]["Microsoft.VSTS.Common.StackRank"] for r in ado_rows
    ]
    assert stack == sorted(stack) and len(set(stack)) == len(stack)
    orphan = next(o for o in result.alignment.orphans if o.connection == "jira")
    assert "no-okr" in env.jira.issue(orphan.key)["fields"]["labels"]


def test_two_trackers_first_run_writes_second_writes_nothing_then_a_conflict(
    tmp_path: Path, store_url: str
) -> None:
    with sandbox_setup(tmp_path, size=300, store_url=store_url) as env:
        config: Config = env.config()
        with Store.from_settings(config.store) as store:
            first = run_cycle(config, deps(store), mode=WriteMode.APPLY, send_email=True)
            assert first.result is not None and first.result.status == "ok", first.result
            counts = first.result.writes.counts
            assert counts["written"] > 50 and counts["failed"] == counts["conflict"] == 0
            assert counts["planned"] == 0
            assert {c.sync for c in first.result.connections} == {"full"}
            check_trackers_hold_the_results(env, first.result)
            assert len(env.mailbox.messages) == 1
            assert first.report is not None and first.report.paths.eml.exists()

            json_path = tmp_path / "second.json"
            assert run_command(config, mode=None, send_email=False, json_path=json_path) == 0
            second = json.loads(json_path.read_text(encoding="utf-8"))
            assert second["writes"]["rows"] == []
            assert [c["sync"] for c in second["connections"]] == ["incremental", "incremental"]
            assert second["previous"]["run_id"] == str(first.run_id)

            jira_key = scored(first.result, "jira")[0]
            ado_key = scored(first.result, "azure-devops")[0]
            env.jira.touch(jira_key, business_value=1.0)  # a new input: the score must change
            env.jira.change_on_read.add(jira_key)  # and a person edits it again after the pull
            env.ado.touch(int(ado_key), **{"Microsoft.VSTS.Common.BusinessValue": 1})
            env.ado.change_on_read.add(int(ado_key))

            third = run_cycle(config, deps(store), mode=WriteMode.APPLY, send_email=False)
            assert third.run_id is not None
            rows = store.audit_rows(third.run_id)
            touched = [r for r in rows if r.write.item_key in (jira_key, ado_key)]
            assert {r.write.item_key for r in touched} == {jira_key, ado_key}
            assert {r.status for r in touched} == {AuditStatus.CONFLICT}
            assert WriteField.WSJF_SCORE in {r.write.field for r in touched}
            assert all(r.status is not AuditStatus.FAILED for r in rows)
            assert third.result is not None and third.result.headline.write_conflicts == len(
                touched
            )
