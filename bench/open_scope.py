"""Benchmark: what an "open work only" scope costs and saves (full mode 30,000 Jira Cloud +
20,000 Azure DevOps items, quick mode 3,000 + 2,000; 20 ms latency per request).

Most users scope to open work (`statusCategory != Done`, `[System.State] <> 'Closed'`); the
Done epics and initiatives above open stories then fall outside the scope, and the pull stage
fetches them by key as context items (`spm_sync.pipeline.context_pull`) so that inheritance still
reaches their Key Results. Per tracker, the pipeline's pull stage (`pull_connection`, status
history included, into a fresh SQLite store) runs twice with the open-only scope: a full sync,
then a run where nothing changed. Recorded:
- the requests the context fetch adds (the connector's own count during that step), the
  ancestors it stored and the levels it followed; goal: <= 1 + ceil(ancestors / 100) per
  connection on a full run, 0 on the no-change run;
- the orphans among the open items: with the whole scope pulled (the truth), with the open
  scope and its context items, and with the open scope alone (what the issue saw).
"""

from __future__ import annotations

import argparse
import math
import tempfile
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.connections import (
    ado_environ,
    ado_settings,
    ado_target,
    jira_environ,
    jira_settings,
    jira_target,
    project_jql,
)
from bench.full_sync import FULL_SIZES, QUICK_SIZES
from bench.harness import LATENCY_MS, measured_run, target
from bench.portfolio import alignment_rules, key_results, objectives
from bench.report import print_comparison
from connectors.azure_devops import AzureDevOpsConnector
from connectors.jira import JiraConnector
from connectors.sandbox.ado_server import AzureDevOpsSandbox
from connectors.sandbox.generator import generate_portfolio
from connectors.sandbox.jira_server import JiraSandbox
from connectors.sandbox.server import Faults
from spm_sync.config.connections import AzureDevOpsConnection, JiraConnection
from spm_sync.core.domain import StatusCategory
from spm_sync.engines.alignment import align
from spm_sync.pipeline.progress import LogProgress
from spm_sync.pipeline.pull import ConnectionRun, pull_connection
from spm_sync.pipeline.stopping import StopSignal
from spm_sync.store import Store

OPEN_JQL = "statusCategory != Done"
OPEN_WIQL = "[System.State] <> 'Closed'"


# -- measured in a worker --------------------------------------------------------------------
def _settings(target: Mapping[str, Any], tracker: str, scope: str) -> Any:
    """The benchmark's usual connection (`bench.connections`), as a pipeline connection with
    the portfolio's OKR link type, scoped to open work or not."""
    if tracker == "jira":
        jql = target["jql"] if scope == "whole" else f"{target['jql']} AND {OPEN_JQL}"
        values = jira_settings(target, jql=jql).model_dump()
        return JiraConnection.model_validate({**values, "okr": {"link_types": ["Drives"]}})
    where = {"wiql_where": OPEN_WIQL} if scope == "open" else {}
    values = ado_settings(target, scope=where).model_dump()
    related = {"link_types": ["System.LinkTypes.Related"]}
    return AzureDevOpsConnection.model_validate({**values, "okr": related})


def spm_pull(target: Mapping[str, Any], tracker: str, scope: str, db: str) -> dict[str, Any]:
    """Two runs of the pull stage (full, then nothing changed), and the open items' orphans."""
    settings = _settings(target, tracker, scope)
    environ = jira_environ(target) if tracker == "jira" else ado_environ(target)

    def factory(connection: Any) -> Any:
        if tracker == "jira":
            return JiraConnector(connection, environ=environ)
        return AzureDevOpsConnector(connection, environ=environ, cache_dir=None)

    runs: list[dict[str, Any]] = []
    with Store(f"sqlite:///{db}") as store:
        for _ in ("full", "no change"):
            run_id = store.start_run("plan")
            run = ConnectionRun(settings)
            pull_connection(
                store,
                run_id,
                run,
                factory,
                clock=lambda: datetime.now(UTC),
                progress=LogProgress(),
                stop=StopSignal(),
            )
            if run.error:
                raise RuntimeError(f"{tracker} {scope}: {run.error}")
            context = run.context
            runs.append(
                {
                    "pulled": run.pulled,
                    "requests": run.connector.stats.requests if run.connector else 0,
                    "context_requests": context.requests if context else 0,
                    "ancestors": context.fetched if context else 0,
                    "levels": context.rounds if context else 0,
                    "unreadable": len(context.unreadable) if context else 0,
                }
            )
            if run.connector is not None:
                run.connector.close()
        items = store.load_items()
        context_items = store.load_items(context=True)
    seeded = generate_portfolio(int(target["size"]), jira_share=float(target["share"]))
    okrs = (key_results(seeded), alignment_rules(), objectives(seeded))
    open_items = {
        (item.connection, item.key)
        for item in items
        if item.status_category is not StatusCategory.DONE
    }

    def orphans(with_context: bool) -> int:
        result = align(items, *okrs, context=context_items if with_context else ())
        return sum(1 for o in result.orphans if (o.connection, o.item_key) in open_items)

    return {
        "items": len(items),
        "full": runs[0],
        "no_change": runs[1],
        "orphans_open_items": orphans(True),
        "orphans_open_items_without_context": orphans(False),
    }


# -- orchestration ---------------------------------------------------------------------------
def run(quick: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    jira_size, ado_size = QUICK_SIZES if quick else FULL_SIZES
    total = jira_size + ado_size
    share = jira_size / total
    portfolio = generate_portfolio(total, jira_share=share)
    latency = Faults(latency_ms=LATENCY_MS)
    results: dict[str, Any] = {}
    with (
        JiraSandbox(portfolio.jira, faults=latency) as jira,
        AzureDevOpsSandbox(portfolio.azure_devops, faults=latency) as ado,
        tempfile.TemporaryDirectory(prefix="spm-bench-open-scope-") as folder,
    ):
        trackers = (
            ("jira", jira, jira_target(jira, project_jql(portfolio.jira))),
            ("azure_devops", ado, ado_target(ado)),
        )
        for tracker, sandbox, job in trackers:
            job = {**job, "size": total, "share": share}
            outcomes = {}
            for scope in ("whole", "open"):
                db = str(Path(folder) / f"{tracker}-{scope}.db")
                kwargs = {"target": job, "tracker": tracker, "scope": scope, "db": db}
                outcomes[scope] = measured_run("bench.open_scope:spm_pull", kwargs, [sandbox])
            name = f"open_scope_{tracker}"
            results[name] = _result(outcomes["open"], outcomes["whole"])
            print_comparison(name, results[name], log)
    return results


def _result(open_run: Any, whole_run: Any) -> dict[str, Any]:
    detail, whole = open_run.detail, whole_run.detail
    full, no_change = detail["full"], detail["no_change"]
    goal = 1 + math.ceil(full["ancestors"] / 100)
    added = full["context_requests"]
    return {
        "items": detail["items"],
        "requests": added,
        "seconds": round(open_run.seconds, 2),
        "peak_mb": round(open_run.peak_mb),
        "whole_scope_items": whole["items"],
        "pull_requests_full": full["requests"],
        "whole_scope_pull_requests_full": whole["full"]["requests"],
        "ancestors_fetched": full["ancestors"],
        "levels_followed": full["levels"],
        "unreadable": full["unreadable"],
        "context_requests_no_change": no_change["context_requests"],
        "pull_requests_no_change": no_change["requests"],
        "orphans_open_items_whole_scope": whole["orphans_open_items"],
        "orphans_open_items_open_scope": detail["orphans_open_items"],
        "orphans_open_items_open_scope_without_context": detail[
            "orphans_open_items_without_context"
        ],
        "targets": [
            target(
                "context requests on a full run <= 1 + ceil(ancestors/100)",
                added <= goal,
                f"{added} requests for {full['ancestors']} ancestors (goal {goal})",
            ),
            target(
                "0 context requests on a no-change run",
                no_change["context_requests"] == 0,
                f"{no_change['context_requests']} requests",
            ),
            target(
                "open-scope orphans = whole-scope orphans among open items",
                detail["orphans_open_items"] == whole["orphans_open_items"],
                f"{detail['orphans_open_items']} against {whole['orphans_open_items']}",
            ),
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3,000 + 2,000 items")
    run(quick=parser.parse_args().quick)


if __name__ == "__main__":
    main()
