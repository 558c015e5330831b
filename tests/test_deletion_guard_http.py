"""The mass-deletion guard over HTTP: the Jira Cloud and Azure DevOps sandboxes on 127.0.0.1
answer (almost) nothing, on SQLite and on PostgreSQL (own schema).

Both paths that mark items deleted are covered: a full sync that comes back nearly empty, and
an incremental run whose deletion scan (`scan_keys`) comes back empty. In both, nothing is
marked deleted, the portfolio is still reported, the run is partial with the problem named,
nothing is written to the held-back trackers, and the scan is repeated by the next run;
raising `max_deletion_share` to 1 then accepts the deletions.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.registry import default_connector_factory
from spm_sync.config.model import Config, WriteMode
from spm_sync.core.results import CycleResult
from spm_sync.pipeline.cycle import CycleDeps, CycleOutcome, run_cycle
from spm_sync.store import Store
from tests.cycle_fixtures import SandboxSetup, sandbox_setup

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]

TRACKERS = ("jira", "azure-devops")
SIZE = 100


def cycle(config: Config, store: Store) -> CycleOutcome:
    deps = CycleDeps(store, connector_factory=default_connector_factory(discovery_cache_dir=None))
    return run_cycle(config, deps, mode=WriteMode.APPLY, send_email=False)


def set_connection_options(env: SandboxSetup, **options: Any) -> Config:
    """The demo config with `options` set on every connection (as a user edits the file)."""
    data = yaml.safe_load(env.config_path.read_text(encoding="utf-8"))
    for connection in data["connections"]:
        connection.update(options)
    env.config_path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return env.config()


def empty_the_trackers(env: SandboxSetup, *, keep_jira: int = 0) -> list[str]:
    """Jira hides every issue but the first `keep_jira` from the user (a permission change);
    Azure DevOps loses every work item. Returns the Jira keys still visible."""
    jira_keys = [item.key for item in env.portfolio.jira]
    for key in jira_keys[keep_jira:]:
        env.jira.hide(key)
    for item in env.portfolio.azure_devops:
        env.ado.delete(item.id)
    return jira_keys[:keep_jira]


def stored(store: Store) -> dict[str, int]:
    return {name: store.count_items(name) for name in TRACKERS}


def check_held_back(
    outcome: CycleOutcome, store: Store, before: dict[str, int], fetched: dict[str, int]
) -> CycleResult:
    """Nothing marked deleted, the problem reported with its numbers, no write-back."""
    result = outcome.result
    assert result is not None and outcome.run_id is not None
    assert result.status == "partial" and outcome.exit_status == 1
    assert stored(store) == before  # every stored item is still in scope
    document = json.loads(result.model_dump_json())  # what `run --json` writes
    health = {c["name"]: c for c in document["connections"]}
    for name in TRACKERS:
        deletions = health[name]["deletions"]
        assert deletions["expected"] == before[name]
        assert deletions["fetched"] == fetched[name]
        assert deletions["missing"] == before[name] - fetched[name]
        assert deletions["applied"] is False and deletions["max_share"] == 0.2
        assert health[name]["deleted_detected"] == 0 and health[name]["error"] is None
        problem = next(p for p in result.problems if p.startswith(f"{name}: "))
        assert f"deletions held back: the tracker answered {fetched[name]} of {before[name]}" in (
            problem
        )
        assert "limit 20%" in problem and "max_deletion_share" in problem
    assert [row for row in store.audit_rows(outcome.run_id)] == []  # nothing planned or written
    # The report is of the stored portfolio, as before; its sync health shows the numbers.
    assert result.alignment.in_scope_count > 0
    assert outcome.report is not None
    text = outcome.report.paths.text.read_text(encoding="utf-8")
    html = outcome.report.paths.full_html.read_text(encoding="utf-8")
    for name in TRACKERS:
        line = f"deletion check: expected {before[name]}, fetched {fetched[name]}"
        assert line in text
        assert f"expected {before[name]} · fetched {fetched[name]}" in html
    assert text.count("DELETIONS HELD BACK") == 2 and "DELETIONS HELD BACK" in html
    return result


def test_a_nearly_empty_full_sync_deletes_nothing(tmp_path: Path, store_url: str) -> None:
    with sandbox_setup(tmp_path, size=SIZE, store_url=store_url) as env:
        config = env.config()
        with Store.from_settings(config.store) as store:
            first = cycle(config, store)
            assert first.result is not None and first.result.status == "ok", first.result
            before = stored(store)
            assert min(before.values()) > 10
            in_scope = first.result.alignment.in_scope_count

            visible = empty_the_trackers(env, keep_jira=2)
            # A human edit on a visible item: write-back would score it, if it went ahead.
            env.jira.touch(visible[0], business_value=1.0)
            for name in TRACKERS:  # the next run is a full sync (as after a scope change)
                state = store.get_sync_state(name)
                assert state is not None
                store.save_sync_state(dataclasses.replace(state, watermark=None))
            states = {name: store.get_sync_state(name) for name in TRACKERS}

            held = cycle(config, store)
            result = check_held_back(held, store, before, {"jira": 2, "azure-devops": 0})
            assert {c.sync for c in result.connections} == {"full"}
            assert result.alignment.in_scope_count == in_scope
            for name in TRACKERS:  # the full sync is repeated, the scan counts as not done
                # (the history cursor is the status history's own: Jira's carries the status
                # categories it learned, which this run's fewer issues changed)
                after = store.get_sync_state(name)
                assert after is not None and states[name] is not None
                assert dataclasses.replace(after, cursor=None) == dataclasses.replace(
                    states[name], cursor=None
                )

            accepting = set_connection_options(env, max_deletion_share=1)
            accepted = cycle(accepting, store)
            assert accepted.result is not None and accepted.result.status == "ok"
            assert stored(store) == {"jira": 2, "azure-devops": 0}
            health = {c.name: c for c in accepted.result.connections}
            assert health["jira"].deleted_detected == before["jira"] - 2
            assert health["azure-devops"].deletions is not None
            assert health["azure-devops"].deletions.applied


def test_an_empty_deletion_scan_deletes_nothing(tmp_path: Path, store_url: str) -> None:
    with sandbox_setup(tmp_path, size=SIZE, store_url=store_url) as env:
        config = set_connection_options(env, deletion_scan_hours=0)  # scan on every run
        with Store.from_settings(config.store) as store:
            first = cycle(config, store)
            assert first.result is not None and first.result.status == "ok", first.result
            before = stored(store)
            states = {name: store.get_sync_state(name) for name in TRACKERS}

            empty_the_trackers(env)
            held = cycle(config, store)
            result = check_held_back(held, store, before, {"jira": 0, "azure-devops": 0})
            assert {c.sync for c in result.connections} == {"incremental"}
            for name in TRACKERS:
                state, earlier = store.get_sync_state(name), states[name]
                assert state is not None and earlier is not None
                assert state.last_deletion_scan == earlier.last_deletion_scan  # scans again
                assert state.watermark is not None and state.watermark >= earlier.watermark  # type: ignore[operator]

            again = cycle(config, store)  # still empty: held back again, not forgotten
            assert again.result is not None and again.result.status == "partial"
            assert stored(store) == before

            accepted = cycle(set_connection_options(env, max_deletion_share=1), store)
            assert accepted.result is not None and accepted.result.status == "ok"
            assert stored(store) == {"jira": 0, "azure-devops": 0}
