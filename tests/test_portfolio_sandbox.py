"""OKRs that measure themselves, end to end: the demo's config and seeded portfolio on the Jira
and Azure DevOps sandboxes over HTTP, with Key Results measured by JQL and WIQL (a count over
both trackers, a sum of a field, a share of done items, and a query Jira refuses), capacity per
team, and the report leading with the objective tree. Expected values come from the seeds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.registry import default_connector_factory
from connectors.sandbox.portfolio import SeedItem
from spm_sync.config.model import WriteMode, load_config
from spm_sync.pipeline.cycle import CycleDeps, run_cycle
from spm_sync.store import Store
from tests.cycle_fixtures import sandbox_setup

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def labelled(items: list[SeedItem], label: str) -> list[SeedItem]:
    return [i for i in items if label.casefold() in (x.casefold() for x in i.labels)]


def measured_okrs(path: Path) -> dict[str, Any]:
    """The demo's OKR file with four Key Results measured by queries."""
    okrs = yaml.safe_load(path.read_text(encoding="utf-8"))
    measures = {
        "1": {
            "kind": "count",
            "query": {
                "jira": "labels = kr-1",
                "azure-devops": "[System.Tags] CONTAINS 'kr-1'",
            },
        },
        "2": {"kind": "sum", "field": "Job Size", "query": {"jira": "labels = kr-2"}},
        "3": {"kind": "share_done", "query": {"azure-devops": "[System.Tags] CONTAINS 'KR-3'"}},
        "4": {"kind": "count", "query": {"jira": "project = = MOB"}},
    }
    for objective in okrs["objectives"]:
        for kr in objective["key_results"]:
            if kr["id"] in measures:
                kr["measure"] = measures[kr["id"]]
    return okrs


def test_a_demo_cycle_measures_key_results_with_tracker_queries(tmp_path: Path) -> None:
    with sandbox_setup(tmp_path, size=300) as env:
        okr_path = tmp_path / "okrs.yaml"
        okr_path.write_text(yaml.safe_dump(measured_okrs(okr_path)), encoding="utf-8")
        config_data = yaml.safe_load(env.config_path.read_text(encoding="utf-8"))
        config_data["capacity"] = {"interval": "2026-Q2", "teams": {"MOB": 30, "WEB": 0}}
        env.config_path.write_text(yaml.safe_dump(config_data), encoding="utf-8")
        config = load_config(env.config_path)
        seeds = env.portfolio
        with Store.from_settings(config.store) as store:
            deps = CycleDeps(
                store, connector_factory=default_connector_factory(discovery_cache_dir=None)
            )
            outcome = run_cycle(config, deps, mode=WriteMode.PLAN, send_email=False)
        assert outcome.result is not None and outcome.result.status == "ok", outcome.result
        portfolio = outcome.result.portfolio
        assert portfolio is not None, outcome.result.errors

        # One batch per connection: Jira answers three queries (one refused), ADO two.
        runs = {q.connection: (q.queries, q.failed, q.error) for q in portfolio.queries}
        assert runs == {"jira": (3, 1, None), "azure-devops": (2, 0, None)}

        krs = {kr.id: kr for o in portfolio.objectives for kr in o.key_results}
        # The seeded Key Result items are aliases of the file's: one node, three sources, and
        # a link to the tracker item; their titles agree, so nothing conflicts.
        assert krs["1"].sources == ["file", "tracker:azure-devops/1001", "tracker:jira/OKR-1"]
        assert krs["1"].url is not None and krs["1"].url.startswith("http")
        assert portfolio.conflicts == [] and portfolio.orphan_key_results == []
        kr1 = labelled(seeds.jira, "kr-1") + labelled(seeds.azure_devops, "kr-1")
        assert krs["1"].current == len(kr1) > 0
        kr2 = labelled(seeds.jira, "kr-2")
        sizes = [float(i.job_size) for i in kr2 if isinstance(i.job_size, int | float)]
        assert krs["2"].current == pytest.approx(sum(sizes))
        kr3 = labelled(seeds.azure_devops, "KR-3")
        done = sum(1 for i in kr3 if i.status_category == "Done")
        assert krs["3"].current == round(100 * done / len(kr3), 1)
        assert krs["4"].current is None
        assert krs["4"].problems and krs["4"].problems[0].startswith(
            "the count query failed: jira refused it:"
        )
        # Progress follows the baseline-to-target rule; objectives roll up what was measured.
        seed = next(k for k in seeds.key_results if k.id == "1")
        assert seed.baseline is not None and seed.target is not None
        expected = 100 * (len(kr1) - seed.baseline) / (seed.target - seed.baseline)
        assert krs["1"].progress_pct == pytest.approx(expected, abs=0.11)
        assert all(o.progress_pct is not None for o in portfolio.objectives if o.key_results)

        capacity = portfolio.capacity
        assert capacity is not None
        (mob_cut,) = next(t for t in capacity.teams if t.team == "MOB").cuts
        assert 0 < mob_cut.planned_points <= 30
        if mob_cut.first_below is not None:  # the line falls before the first that does not fit
            assert mob_cut.planned_points + (mob_cut.first_below.job_size or 0) > 30
        web = next(t for t in capacity.teams if t.team == "WEB")
        assert web.cuts[0].planned_count == 0
        assert web.cuts[0].problems == ["team 'WEB' has zero capacity in 2026-Q2: nothing fits"]

        assert outcome.report is not None
        html = outcome.report.paths.html.read_text(encoding="utf-8")
        assert html.index('data-section="objective-tree"') < html.index('data-section="capacity"')
        assert "labels = kr-1" in html
        text = outcome.report.paths.text.read_text(encoding="utf-8")
        # The digest leads (objectives on track / at risk among it); the objective tree is the
        # first detail after the headline, before coverage and the OKR list.
        tree = text.index("OBJECTIVES AND THEIR MEASURED PROGRESS")
        assert text.index("SUMMARY") < text.index("HEADLINE") < tree
        assert tree < text.index("KEY RESULT COVERAGE") < text.index("OBJECTIVES AND KEY RESULTS")
        assert f"now {len(kr1)}, target" in text
