"""WSJF ranking and its defaults in whole cycles against the Jira Cloud and Azure DevOps
sandboxes over HTTP: the order follows the exact score (two scores that round alike keep their
true order), a rounded score is written once and never again, an unscorable item keeps its
place in the tracker, and a config that names no levels scores epics and checks initiatives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.registry import default_connector_factory
from spm_sync.config.model import Config, WriteMode
from spm_sync.core.domain import WriteField
from spm_sync.core.results import CycleResult, WsjfRow
from spm_sync.pipeline.cycle import CycleDeps, CycleOutcome, run_cycle
from spm_sync.store import Store
from tests.cycle_fixtures import SandboxSetup, sandbox_setup

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

JIRA, ADO = "jira", "azure-devops"
STACK_RANK = "Microsoft.VSTS.Common.StackRank"
# 21/8 = 2.625 and 34/13 = 2.615: both show as 2.62; the first is the better job.
BETTER = (13, 5, 3, 8)
WORSE = (20, 8, 6, 13)


def cycle(config: Config, store: Store, mode: WriteMode = WriteMode.APPLY) -> CycleOutcome:
    outcome: CycleOutcome = run_cycle(
        config,
        CycleDeps(store, connector_factory=default_connector_factory(discovery_cache_dir=None)),
        mode=mode,
        send_email=False,
    )
    assert outcome.result is not None and outcome.result.status == "ok", outcome.result
    assert outcome.run_id is not None
    return outcome


def result_of(outcome: CycleOutcome) -> CycleResult:
    assert outcome.result is not None
    return outcome.result


def rows(result: CycleResult, connection: str) -> dict[str, WsjfRow]:
    return {row.key: row for row in result.wsjf if row.connection == connection}


def scored_keys(result: CycleResult, connection: str) -> list[str]:
    ranked = sorted(rows(result, connection).values(), key=lambda row: row.new_rank or 0)
    return [row.key for row in ranked if row.scored]


def set_jira_inputs(env: SandboxSetup, key: str, values: tuple[float, ...]) -> None:
    names = ("Business Value", "Time Criticality", "Risk Reduction | Opportunity Enablement")
    fields = {env.jira.field_id(name): value for name, value in zip(names, values, strict=False)}
    env.jira.touch(key, **fields, **{env.jira.field_id("Job Size"): values[3]})


def set_ado_inputs(env: SandboxSetup, key: str, values: tuple[float, ...]) -> None:
    names = (
        "Microsoft.VSTS.Common.BusinessValue",
        "Microsoft.VSTS.Common.TimeCriticality",
        "Custom.RiskReduction",
        "Microsoft.VSTS.Scheduling.Effort",
    )
    env.ado.touch(int(key), **dict(zip(names, values, strict=True)))


def jira_rank(env: SandboxSetup, key: str) -> Any:
    return env.jira.issue(key)["fields"][env.jira.field_id("Rank")]


def ado_rank(env: SandboxSetup, key: str) -> Any:
    return env.ado.work_item(int(key))["fields"][STACK_RANK]


def test_exact_order_one_write_per_rounded_score_and_unscorable_items_stay_put(
    tmp_path: Path,
) -> None:
    with sandbox_setup(tmp_path, size=300) as env:
        config = env.config()
        with Store.from_settings(config.store) as store:
            first = result_of(cycle(config, store))
            jira, ado = scored_keys(first, JIRA), scored_keys(first, ADO)
            # The worse job first in the tracker, so the right order needs a move.
            jira_worse, jira_better, jira_unscorable = jira[0], jira[1], jira[len(jira) // 2]
            ado_worse, ado_better, ado_unscorable = ado[0], ado[1], ado[len(ado) // 2]
            set_jira_inputs(env, jira_better, BETTER)
            set_jira_inputs(env, jira_worse, WORSE)
            set_ado_inputs(env, ado_better, BETTER)
            set_ado_inputs(env, ado_worse, WORSE)
            env.jira.touch(jira_unscorable, **{env.jira.field_id("Job Size"): 0})
            env.ado.touch(int(ado_unscorable), **{"Microsoft.VSTS.Scheduling.Effort": 0})
            unscorable_ranks = (jira_rank(env, jira_unscorable), ado_rank(env, ado_unscorable))

            outcome = cycle(config, store)
            second = result_of(outcome)
            assert outcome.run_id is not None

            for connection, better, worse in (
                (JIRA, jira_better, jira_worse),
                (ADO, ado_better, ado_worse),
            ):
                by_key = rows(second, connection)
                assert by_key[better].wsjf == by_key[worse].wsjf == 2.62
                assert (by_key[better].new_rank or 0) < (by_key[worse].new_rank or 0)
            assert env.jira.rank_order([jira_worse, jira_better]) == [jira_better, jira_worse]
            assert ado_rank(env, ado_better) < ado_rank(env, ado_worse)
            score = env.jira.field_id("WSJF Score")
            assert env.jira.issue(jira_better)["fields"][score] == 2.62
            assert env.ado.work_item(int(ado_worse))["fields"]["Custom.WSJFScore"] == 2.62

            assert rows(second, JIRA)[jira_unscorable].reason_unscored == "job size is 0"
            assert rows(second, ADO)[ado_unscorable].reason_unscored == "job size is 0"
            rank_writes = {
                (row.write.connection, row.write.item_key)
                for row in store.audit_rows(outcome.run_id)
                if row.write.field is WriteField.RANK
            }
            assert {(JIRA, jira_better), (ADO, ado_better)} & rank_writes  # the order moved
            assert (JIRA, jira_unscorable) not in rank_writes
            assert (ADO, ado_unscorable) not in rank_writes
            assert (jira_rank(env, jira_unscorable), ado_rank(env, ado_unscorable)) == (
                unscorable_ranks
            )

            third = result_of(cycle(config, store, WriteMode.PLAN))
            assert sum(third.writes.counts.values()) == 0  # no score rewritten for float noise


def test_a_config_without_levels_scores_epics_and_checks_initiatives(tmp_path: Path) -> None:
    with sandbox_setup(tmp_path, size=300) as env:
        data = yaml.safe_load(env.config_path.read_text(encoding="utf-8"))
        data.pop("wsjf", None)
        data["alignment"]["levels"] = ["epic", "feature", "story"]  # the former default
        env.config_path.write_text(yaml.safe_dump(data), encoding="utf-8")
        with Store.from_settings(env.config().store) as store:
            before = result_of(cycle(env.config(), store, WriteMode.PLAN))
            data["alignment"].pop("levels")
            env.config_path.write_text(yaml.safe_dump(data), encoding="utf-8")
            now = result_of(cycle(env.config(), store, WriteMode.PLAN))

        assert {row.level for row in now.wsjf} == {"epic"}  # features are not listed unscorable
        open_initiatives = {
            s.key
            for s in env.portfolio.jira
            if s.type == "Initiative" and s.status_category != "Done"
        }
        assert open_initiatives
        added = now.alignment.in_scope_count - before.alignment.in_scope_count
        assert added == len(open_initiatives)
        assert {o.key for o in now.alignment.orphans if o.level == "initiative"} <= open_initiatives
        assert not any(o.level == "initiative" for o in before.alignment.orphans)
