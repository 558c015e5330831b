"""An "open work only" scope keeps alignment intact: against the Jira Cloud and Azure DevOps
sandboxes over HTTP, a cycle scoped to open work finds the same orphans among open items as a
cycle that pulls everything, because the Done ancestors and Key Result items outside the scope
are fetched as context items (`spm_sync.pipeline.context_pull`).

The seeded portfolio is generated (Done epics above open stories at random, 30% Done), plus
hand-made chains per tracker: a 3-deep chain whose two upper levels are Done, an OKR link to a
Done Key Result item the OKR file does not name, a parent cycle outside the scope and an
unaligned story."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.azure_devops import AzureDevOpsConnector
from connectors.registry import default_connector_factory
from connectors.sandbox.ado_server import AzureDevOpsSandbox
from connectors.sandbox.generator import generate_portfolio
from connectors.sandbox.jira_server import JiraSandbox
from connectors.sandbox.portfolio import SeedItem, SeedLink, SeedPortfolio
from connectors.settings import AzureDevOpsSettings
from spm_sync.cli.demo import DEMO_SECRETS, sandboxes, write_demo_config
from spm_sync.config.model import Config, WriteMode, load_config
from spm_sync.core.results import CycleResult
from spm_sync.pipeline.cycle import CycleDeps, run_cycle
from spm_sync.store import Store
from tests.test_jira_integration import connector as jira_connector

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]

OPEN_JQL = "statusCategory != Done"
OPEN_WIQL = "[System.State] <> 'Closed'"
JIRA, ADO = "jira", "azure-devops"
NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


def _item(
    tracker: Any, key: str, number: int, type_: str, category: str, **values: Any
) -> SeedItem:
    status = {"jira": {"Done": "Done", "To Do": "To Do"}, "azure_devops": {"Done": "Closed",
              "To Do": "New"}}[tracker][category]  # fmt: skip
    project = values.pop("project")
    links = [SeedLink(kind, target) for kind, target in values.pop("links", [])]
    return SeedItem(
        tracker, key, number, type_, f"{type_} {key}", status, category, project,  # type: ignore[arg-type]
        NOW - timedelta(days=40), NOW - timedelta(days=3), links=links, **values,
    )  # fmt: skip


def jira_chains(kr_id: str) -> list[SeedItem]:
    """CTX-3 (open) → CTX-2 (Done epic) → CTX-1 (Done initiative, labelled); CTX-4 (open)
    drives CTX-5 (Done Key Result item not in the OKR file); CTX-8 (open) under the Done cycle
    CTX-6 ↔ CTX-7; CTX-9 (open), unaligned; CTX-10, a labelled Done epic nothing is under.
    (Both trackers leave out a parent that does not exist or is not visible;
    `tests/test_context_pull.py` covers keys a tracker does not return.)"""

    def jira(key: str, number: int, type_: str, category: str, **values: Any) -> SeedItem:
        return _item("jira", key, number, type_, category, project="CTX", **values)

    return [
        jira("CTX-1", 90001, "Initiative", "Done", labels=[f"kr-{kr_id}"]),
        jira("CTX-2", 90002, "Epic", "Done", parent="CTX-1"),
        jira("CTX-3", 90003, "Story", "To Do", parent="CTX-2"),
        jira("CTX-4", 90004, "Story", "To Do", links=[("Drives", "CTX-5")]),
        jira("CTX-5", 90005, "Key Result", "Done"),
        jira("CTX-6", 90006, "Epic", "Done", parent="CTX-7"),
        jira("CTX-7", 90007, "Initiative", "Done", parent="CTX-6"),
        jira("CTX-8", 90008, "Story", "To Do", parent="CTX-6"),
        jira("CTX-9", 90009, "Story", "To Do"),
        jira("CTX-10", 90010, "Epic", "Done", labels=[f"kr-{kr_id}"]),
    ]


def ado_chains(kr_id: str, area: str) -> list[SeedItem]:
    """The same shapes in Azure DevOps: 90003 → 90002 (Closed feature) → 90001 (Closed epic,
    tagged); 90004 related to 90005 (Closed Key Result item); 90008 under the Closed cycle
    90006 ↔ 90007; 90009 (open), unaligned."""

    def ado(number: int, type_: str, category: str, **values: Any) -> SeedItem:
        return _item("azure_devops", str(number), number, type_, category, project=area, **values)

    related = "System.LinkTypes.Related"
    return [
        ado(90001, "Epic", "Done", labels=[f"KR-{kr_id}"]),
        ado(90002, "Feature", "Done", parent="90001"),
        ado(90003, "User Story", "To Do", parent="90002"),
        ado(90004, "User Story", "To Do", links=[(related, "90005")]),
        ado(90005, "Key Result", "Done"),
        ado(90006, "Feature", "Done", parent="90007"),
        ado(90007, "Epic", "Done", parent="90006"),
        ado(90008, "User Story", "To Do", parent="90006"),
        ado(90009, "User Story", "To Do"),
    ]


def seeded_portfolio() -> SeedPortfolio:
    portfolio = generate_portfolio(400, seed=5)
    kr_id = portfolio.key_results[0].id
    portfolio.jira.extend(jira_chains(kr_id))
    portfolio.azure_devops.extend(ado_chains(kr_id, portfolio.azure_devops[-1].project))
    return portfolio


@dataclass
class Setup:
    portfolio: SeedPortfolio
    jira: JiraSandbox
    ado: AzureDevOpsSandbox
    everything: Config
    open_only: Config


def open_only(path: Path) -> None:
    """Narrow a demo config's scopes to open work, as most users do."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    for connection in document["connections"]:
        if connection["kind"] == "jira":
            connection["jql"] = f"{connection['jql']} AND {OPEN_JQL}"
        else:
            connection["scope"] = {"wiql_where": OPEN_WIQL}
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


@contextmanager
def setup(folder: Path) -> Iterator[Setup]:
    saved = {name: os.environ.get(name) for name in DEMO_SECRETS}
    os.environ.update(DEMO_SECRETS)
    portfolio = seeded_portfolio()
    try:
        with sandboxes(portfolio) as (jira, ado):
            whole = write_demo_config(folder / "whole", portfolio, jira, ado, 1)
            narrow = write_demo_config(folder / "open", portfolio, jira, ado, 1)
            open_only(narrow)
            yield Setup(portfolio, jira, ado, load_config(whole), load_config(narrow))
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def cycle(config: Config, store: Store) -> tuple[int, CycleResult]:
    deps = CycleDeps(store, connector_factory=default_connector_factory(discovery_cache_dir=None))
    outcome = run_cycle(config, deps, mode=WriteMode.PLAN, send_email=False)
    assert outcome.result is not None and outcome.run_id is not None, outcome
    assert outcome.result.status == "ok", outcome.result.errors
    return outcome.run_id, outcome.result


def orphans(result: CycleResult) -> dict[tuple[str, str], str]:
    return {(o.connection, o.key): o.reason for o in result.alignment.orphans}


def context_detail(store: Store, run_id: int) -> dict[str, dict[str, int]]:
    return {
        stage.connection: dict((stage.detail or {}).get("context") or {})
        for stage in store.stage_progress(run_id)
        if stage.stage == "pull"
    }


def test_open_only_scope_finds_the_orphans_a_whole_scope_finds(tmp_path: Path) -> None:
    with setup(tmp_path) as env:
        with Store.from_settings(env.everything.store) as store:
            _, whole = cycle(env.everything, store)
        with Store.from_settings(env.open_only.store) as store:
            run_id, narrow = cycle(env.open_only, store)
            done_in_scope = [i for i in store.load_items() if i.status_category == "Done"]
            assert done_in_scope == []  # the scope really is open work only
            context = {(i.connection, i.key) for i in store.load_items(context=True)}
            detail = context_detail(store, run_id)

        # Without context items an open-only scope raised orphans by a third in the issue.
        assert orphans(narrow) == orphans(whole)
        assert narrow.alignment.in_scope_count == whole.alignment.in_scope_count
        assert narrow.alignment.aligned_count == whole.alignment.aligned_count
        uncovered = narrow.alignment.uncovered_key_results
        assert uncovered == whole.alignment.uncovered_key_results

        # The hand-made chains: inherited across two Done levels, a link to a Done Key Result
        # item, a cycle outside the scope and a missing parent, in both trackers.
        found = orphans(narrow)
        for connection, chain_top, story, linked, cycled in (
            (JIRA, "CTX-1", "CTX-3", "CTX-4", "CTX-8"),
            (ADO, "90001", "90003", "90004", "90008"),
        ):
            assert (connection, story) not in found and (connection, linked) not in found
            assert "cycle" in found[(connection, cycled)]
            assert (connection, chain_top) in context and (connection, story) not in context
        assert (
            found[(JIRA, "CTX-9")]
            == found[(ADO, "90009")]
            == "no kr- label, no OKR link, no parent"
        )
        for name in (JIRA, ADO):
            assert detail[name]["unreadable"] == 0
            assert 0 < detail[name]["requests"] <= detail[name]["rounds"] + 1
        # Each tracker's own figures, beside the totals, add up to them.
        for result in (whole, narrow):
            blocks = result.alignment.by_connection
            assert [b.name for b in blocks] == [JIRA, ADO]
            assert sum(b.in_scope_count for b in blocks) == result.alignment.in_scope_count
            assert sum(b.aligned_count for b in blocks) == result.alignment.aligned_count
            assert sum(b.orphans for b in blocks) == len(result.alignment.orphans)
        assert narrow.alignment.by_connection == whole.alignment.by_connection
        # Context items are never scored, ranked or counted.
        scored = {(row.connection, row.key) for row in narrow.wsjf}
        assert not scored & context


def test_incremental_runs_fetch_only_ancestors_they_do_not_hold(tmp_path: Path) -> None:
    with setup(tmp_path) as env, Store.from_settings(env.open_only.store) as store:
        cycle(env.open_only, store)
        run_id, _ = cycle(env.open_only, store)  # nothing changed
        assert {name: d.get("requests") for name, d in context_detail(store, run_id).items()} == {
            JIRA: 0,
            ADO: 0,
        }

        # An open story moves under a Done epic nobody held yet: read in one batch a level.
        def held(key: str | None) -> bool:
            return key is not None and key in store.held_keys(JIRA, {key})

        epic = next(i for i in env.portfolio.jira if i.key == "CTX-10")
        assert not held(epic.key)
        levels = 1 if epic.parent is None or held(epic.parent) else 2
        env.jira.touch("CTX-9", parent=epic.key)
        run_id, result = cycle(env.open_only, store)
        fetch = context_detail(store, run_id)[JIRA]
        # One bulkfetch per level: the epic, and its initiative if that was not held either.
        assert fetch["requests"] == fetch["rounds"] == levels
        assert (JIRA, "CTX-9") not in orphans(result)
        assert held(epic.key) and epic.key in {i.key for i in store.load_items(context=True)}

        # The Done epic above CTX-3 is reopened: it enters the scope and is a scope item again.
        env.jira.touch("CTX-2", status="In Progress")
        run_id, result = cycle(env.open_only, store)
        assert "CTX-2" in {i.key for i in store.load_items(JIRA)}
        assert "CTX-2" not in {i.key for i in store.load_items(JIRA, context=True)}
        assert (JIRA, "CTX-3") not in orphans(result)


@pytest.mark.parametrize("flavour", ["cloud", "datacenter"])
def test_jira_fetches_items_by_key_in_batches_of_100(flavour: str) -> None:
    seeds = [*jira_chains("1"), *(_item("jira", f"MORE-{n}", 91000 + n, "Story", "Done",
             project="MORE") for n in range(1, 151))]  # fmt: skip
    with JiraSandbox(seeds, flavour=flavour) as sandbox:  # type: ignore[arg-type]
        jira = jira_connector(sandbox, seeds, jql=f"project = CTX AND {OPEN_JQL}")
        asked = ["CTX-1", "CTX-5", "CTX-404", 'CTX-1" OR key = "CTX-3', "NOT A KEY"]
        found = {item.key: item for item in jira.fetch_items(asked)}
        assert set(found) == {"CTX-1", "CTX-5"}  # Done, outside the scope; unknown left out
        assert found["CTX-1"].labels == ("kr-1",) and found["CTX-5"].type == "Key Result"
        endpoint = "POST /rest/api/3/issue/bulkfetch" if flavour == "cloud" else (
            "POST /rest/api/2/search")  # fmt: skip
        assert jira.stats.by_endpoint[endpoint] == 1
        many = [f"MORE-{n}" for n in range(1, 151)]
        assert len(list(jira.fetch_items(many))) == 150
        assert jira.stats.by_endpoint[endpoint] == 3  # ceil(150 / 100) more
        assert list(jira.fetch_items([])) == []
        assert jira.stats.by_endpoint[endpoint] == 3


def test_azure_devops_fetches_items_by_id_in_batches_of_200() -> None:
    seeds = [*ado_chains("1", "Area"), *(_item("azure_devops", str(n), n, "User Story",
             "Done", project="Area") for n in range(92000, 92250))]  # fmt: skip
    with AzureDevOpsSandbox(seeds) as sandbox:
        settings = AzureDevOpsSettings.model_validate(
            {
                "kind": "azure_devops",
                "name": "ado",
                "url": sandbox.organization_url,
                "project": sandbox.project,
                "auth": {"token_env": "ADO_PAT"},
                "wsjf_fields": {"risk_reduction": "Risk Reduction | Opportunity Enablement"},
                "scope": {"wiql_where": OPEN_WIQL},
            }
        )
        ado = AzureDevOpsConnector(settings, environ={"ADO_PAT": sandbox.pat}, cache_dir=None)
        found = {item.key: item for item in ado.fetch_items(["90001", "90005", "77777", "x1"])}
        assert set(found) == {"90001", "90005"}  # Closed, any scope; unknown ids left out
        assert found["90001"].labels == ("KR-1",) and found["90005"].type == "Key Result"
        batches = [e for e in ado.stats.by_endpoint if "workitemsbatch" in e.casefold()]
        assert [ado.stats.by_endpoint[e] for e in batches] == [1], ado.stats.by_endpoint
        assert len(list(ado.fetch_items([str(n) for n in range(92000, 92250)]))) == 250
        assert ado.stats.by_endpoint[batches[0]] == 3  # ceil(250 / 200) more
