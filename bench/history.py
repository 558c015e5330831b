"""Benchmark: status history (the flow metrics' input) of the portfolio (full mode 30,000 Jira
Cloud + 20,000 Azure DevOps items, quick mode 3,000 + 2,000; 20 ms latency). Targets (issue
13): a full history within 1.2x the history API's request floor; a no-change incremental run
adds at most 1 history request per connection.

What a worker does, like a pipeline run: `pull` first (the history needs what the pull saw:
Jira Cloud's bulk changelog is asked by issue id, which the pull records), then
`pull_history(keys the pull yielded, cursor)`. Only the history part is timed, and only the
history routes count as its requests (`HISTORY_ROUTES`); the pull's routes are kept apart in
the results (`pull_by_route`), and the connector's own request count for the history must
agree with the sandbox's.
- `history_<tracker>_full`: the first run, every key in scope, no cursor;
- `history_<tracker>_no_change`: the next run after a full one with nothing changed: the pull
  asks from the watermark + 1 s (Jira still returns the items of the last minute, see
  `bench.incremental`, so their histories are read again: the keys that pull really returns),
  each from the cursor the full run left, as the pipeline passes it (Azure DevOps: where the
  revisions feed stopped; Jira: the status categories learned, so no status list is read).

The floor the APIs allow: Jira Cloud ceil(issues / 1000) (`changelog/bulkfetch` takes 1,000
issues a request and up to 10,000 changes a page; plus one `GET status` only when a change
names a status no pulled issue is in); Azure DevOps ceil(revisions / batch) for the reporting
revisions feed, with the revisions counted in the sandbox's store and its batch size (1,000).

After every run the changes yielded are checked against what the sandbox holds (count and an
order-free digest of item, time and new status), and the benchmark fails otherwise.

The naive baseline (plain library code, `bench.baseline` style):
- Jira: `enhanced_search_issues(jql, expand="changelog", maxResults=False)`: the search users
  are pointed to for the changelogs of many issues (the library's own example reads one issue,
  `issue(key, expand="changelog")`, which at 30,000 issues is 30,000 requests; the search
  carries the changelog of 100 issues a page). It reads every field too (`*all`), so it also
  does the pull's work: its time is its whole search; spm-sync's pull time is in the results
  (`pull_seconds`) for that comparison.
- Azure DevOps: `get_revisions(id)` per work item (the revisions list of one item), after
  `query_by_wiql` for the ids (the pull's part, not counted). A full per-item run would take
  ~8 minutes at 20 ms a request, so it is measured on the first `SAMPLE` ids; the requests are
  exact for the sample (one per item, checked), and seconds and requests are scaled to the
  whole project (`baseline_sample` holds the measured numbers).
"""

from __future__ import annotations

import argparse
import math
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial
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
from bench.harness import (
    LATENCY_MS,
    Comparison,
    Run,
    measured_run,
    median_run,
    ratio,
    round_robin,
    target,
    warm_up,
)
from bench.incremental import AFTER, watermark
from bench.report import print_comparison
from connectors.azure_devops import AzureDevOpsConnector
from connectors.jira import JiraConnector
from connectors.sandbox.ado_server import AzureDevOpsSandbox
from connectors.sandbox.generator import generate_portfolio
from connectors.sandbox.jira_history import status_history_of
from connectors.sandbox.jira_server import JiraSandbox
from connectors.sandbox.server import Faults
from spm_sync.core.history import StatusChange

SAMPLE = 1000
"""Work items the per-item Azure DevOps baseline reads (the first ids of the project)."""
FLOOR_FACTOR = 1.2
NO_CHANGE_LIMIT = 1
SPM_HISTORY_ROUTES = frozenset(
    {
        "POST /rest/api/3/changelog/bulkfetch",
        "GET /rest/api/3/status",
        "GET /_apis/wit/reporting/workitemrevisions",
        "POST /_apis/wit/reporting/workitemrevisions",
    }
)
BASELINE_HISTORY_ROUTES = frozenset(
    {
        "GET /rest/api/2/search/jql",  # each page carries its issues' changelogs
        "GET /_apis/wit/workitems/{id}/revisions",
    }
)
SPM, BASELINE = "spm-sync", "baseline"


# -- what the checks compare -----------------------------------------------------------------
def digest(changes: Iterable[tuple[str, int, str]]) -> tuple[int, int]:
    """(count, order-free checksum) of (item key, epoch ms, new status) changes."""
    count = total = 0
    for key, millis, status in changes:
        count += 1
        total = (total + zlib.crc32(f"{key}|{millis}|{status}".encode())) % 2**64
    return count, total


def _millis(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def _rows(changes: Iterable[StatusChange]) -> Iterable[tuple[str, int, str]]:
    return ((change.item[1], _millis(change.at), change.to_status) for change in changes)


def jira_expected(sandbox: JiraSandbox, keys: Iterable[str]) -> tuple[int, int]:
    """What the sandbox recorded for `keys`: every status change of each issue."""
    with sandbox.lock:
        rows = [
            (key, entry.at, entry.after)
            for key in keys
            for entry in status_history_of(sandbox.store.by_key[key])
        ]
    return digest(rows)


def ado_expected(sandbox: AzureDevOpsSandbox, ids: Iterable[int] | None = None) -> tuple[int, int]:
    """What the sandbox's revisions say: every state an item entered (the first revision's
    state, then each revision whose state differs from the one before)."""
    rows = []
    with sandbox.lock:
        items = sandbox.store.items
        for work_item_id in sorted(items) if ids is None else ids:
            item, before = items[work_item_id], None
            for rev in range(1, item.rev + 1):
                values = item.revision(rev)
                if values is None or values["System.State"] == before:
                    continue
                before = values["System.State"]
                rows.append((str(work_item_id), _millis(values["System.ChangedDate"]), before))
    return digest(rows)


# -- measured in a worker --------------------------------------------------------------------
def spm_jira(
    target: Mapping[str, Any], since: str | None = None, cursor: str | None = None
) -> dict[str, Any]:
    connector = JiraConnector(jira_settings(target), environ=jira_environ(target))
    return _pull_then_history(connector, since, cursor)


def spm_ado(
    target: Mapping[str, Any], since: str | None = None, cursor: str | None = None
) -> dict[str, Any]:
    connector = AzureDevOpsConnector(
        ado_settings(target), environ=ado_environ(target), cache_dir=None
    )
    return _pull_then_history(connector, since, cursor)


def _pull_then_history(
    connector: JiraConnector | AzureDevOpsConnector, since: str | None, cursor: str | None
) -> dict[str, Any]:
    """The pull (not timed), then the history of the keys it yielded (timed, changes kept in
    a list as the pipeline hands them to the store)."""
    try:
        started = time.perf_counter()
        keys = [item.key for item in connector.pull(None if since is None else _time(since))]
        pulled = time.perf_counter()
        pull_requests = connector.stats.requests
        changes = list(connector.pull_history(keys, cursor))
        seconds = time.perf_counter() - pulled
    finally:
        connector.close()
    count, checksum = digest(_rows(changes))
    return {
        "seconds": seconds,
        "pull_seconds": round(pulled - started, 3),
        "items": len(keys),
        "keys": keys if len(keys) <= 1000 else None,
        "changes": count,
        "checksum": checksum,
        "cursor": connector.history_cursor,
        "pull_client_requests": pull_requests,
        "history_client_requests": connector.stats.requests - pull_requests,
        "warnings": list(connector.warnings),
    }


def baseline_jira(target: Mapping[str, Any], minutes: int | None = None) -> dict[str, Any]:
    """Every issue of the scope (or updated in the last `minutes`) with its changelog."""
    from bench.baseline import jira_client

    jira = jira_client(target)
    window = f' AND updated >= "-{minutes}m"' if minutes is not None else ""
    jql = f"({target['jql']}){window} ORDER BY key"
    started = time.perf_counter()
    issues = jira.enhanced_search_issues(jql, expand="changelog", maxResults=False)
    seconds = time.perf_counter() - started
    rows = [
        (issue.key, _millis(_jira_time(history.created)), item.toString)
        for issue in issues
        for history in issue.changelog.histories
        for item in history.items
        if item.field == "status"
    ]
    count, checksum = digest(rows)
    keys = [issue.key for issue in issues]
    return {
        "seconds": seconds,
        "items": len(keys),
        "keys": keys if len(keys) <= 1000 else None,
        "changes": count,
        "checksum": checksum,
    }


def baseline_ado(
    target: Mapping[str, Any], since: str | None = None, sample: int | None = None
) -> dict[str, Any]:
    """WIQL for the ids (changed since `since`, or all; the first `sample` of them), then
    `get_revisions(id)` per work item; only the revisions are timed."""
    from bench.baseline import ado_client, ado_ids

    wit = ado_client(target)
    project = target["project"]
    if since is None:
        ids = ado_ids(wit, project)
    else:
        condition = f" AND [System.ChangedDate] >= '{since}'"
        ids = ado_ids(wit, project, condition, time_precision=True)
    read = ids if sample is None else ids[:sample]
    started = time.perf_counter()
    revisions = [wit.get_revisions(work_item_id, project=project) for work_item_id in read]
    seconds = time.perf_counter() - started
    rows = []
    for work_item_id, item_revisions in zip(read, revisions, strict=True):
        before = None
        for revision in sorted(item_revisions, key=lambda r: r.rev):
            state = revision.fields["System.State"]
            if state != before:
                changed = _time(revision.fields["System.ChangedDate"])
                rows.append((str(work_item_id), _millis(changed), state))
                before = state
    count, checksum = digest(rows)
    return {
        "seconds": seconds,
        "items": len(read),
        "ids_in_scope": len(ids),
        "ids": read,
        "changes": count,
        "checksum": checksum,
    }


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _jira_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z")


# -- orchestration ---------------------------------------------------------------------------
def jira_floor(issues: int) -> int:
    return math.ceil(issues / 1000)


def ado_floor(revisions: int, batch: int) -> int:
    return max(1, math.ceil(revisions / batch))


def run(quick: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    jira_size, ado_size = QUICK_SIZES if quick else FULL_SIZES
    total = jira_size + ado_size
    portfolio = generate_portfolio(total, jira_share=jira_size / total)
    latency = Faults(latency_ms=LATENCY_MS)
    results: dict[str, Any] = {}
    with (
        JiraSandbox(portfolio.jira, faults=latency) as jira,
        AzureDevOpsSandbox(portfolio.azure_devops, faults=latency) as ado,
    ):
        jira_job = jira_target(jira, project_jql(portfolio.jira))
        ado_job = ado_target(ado)
        jira_keys = sorted(item.key for item in portfolio.jira)
        with ado.lock:
            revisions = len(ado.store.revisions)
        floors = {
            "jira": jira_floor(len(jira_keys)),
            "azure_devops": ado_floor(revisions, ado.revision_batch_size),
        }

        def worker(function: str, sandbox: Any, **kwargs: Any) -> Callable[[], Run]:
            def measure() -> Run:
                return measured_run(f"bench.history:{function}", kwargs, [sandbox])

            return measure

        # -- full: Jira Cloud --
        name = "history_jira_full"
        log(f"  {name}: {len(jira_keys)} issues, floor {floors['jira']}")
        sides = {
            SPM: worker("spm_jira", jira, target=jira_job),
            BASELINE: worker("baseline_jira", jira, target=jira_job),
        }
        warm = warm_up(sides, log=log)  # fills the sandbox's cache of each side's fields
        runs = round_robin({SPM: (sides[SPM], 3), BASELINE: (sides[BASELINE], 2)}, log=log)
        expected = jira_expected(jira, jira_keys)
        results[name] = _full_result(name, runs, expected, floors["jira"], len(jira_keys))
        results[name]["warm_up_seconds"] = warm
        jira_cursor = runs[SPM][-1].detail["cursor"]  # the status categories it learned

        # -- full: Azure DevOps --
        name = "history_azure_devops_full"
        floor = floors["azure_devops"]
        log(f"  {name}: {ado_size} work items, {revisions} revisions, floor {floor}")
        sample = min(SAMPLE, ado_size)
        sides = {
            SPM: worker("spm_ado", ado, target=ado_job),
            BASELINE: worker("baseline_ado", ado, target=ado_job, sample=sample),
        }
        warm = warm_up({SPM: sides[SPM]}, log=log)
        runs = round_robin({SPM: (sides[SPM], 3), BASELINE: (sides[BASELINE], 2)}, log=log)
        with ado.lock:
            sample_ids = sorted(ado.store.items)[:sample]
        results[name] = _full_result(
            name,
            runs,
            ado_expected(ado),
            floors["azure_devops"],
            ado_size,
            baseline_expected=ado_expected(ado, sample_ids),
            revisions=revisions,
        )
        results[name]["warm_up_seconds"] = warm
        cursor = runs[SPM][-1].detail["cursor"]

        # -- no change: the next run --
        jira_since = watermark(portfolio.jira) + AFTER
        name = "history_jira_no_change"
        log(f"  {name}: pull since {jira_since.isoformat()}")

        def jira_baseline_no_change() -> Run:
            elapsed = datetime.now(jira_since.tzinfo) - jira_since
            minutes = math.ceil(elapsed / timedelta(minutes=1))
            return measured_run(
                "bench.history:baseline_jira", {"target": jira_job, "minutes": minutes}, [jira]
            )

        runs = round_robin(
            {
                SPM: (
                    worker(
                        "spm_jira",
                        jira,
                        target=jira_job,
                        since=jira_since.isoformat(),
                        cursor=jira_cursor,
                    ),
                    3,
                ),
                BASELINE: (jira_baseline_no_change, 2),
            },
            log=log,
        )
        results[name] = _no_change_result(
            name, runs, partial(jira_expected, jira), partial(jira_expected, jira)
        )

        ado_since = watermark(portfolio.azure_devops) + AFTER
        name = "history_azure_devops_no_change"
        log(f"  {name}: pull since {ado_since.isoformat()}, cursor {cursor}")
        wiql_since = ado_since.strftime("%Y-%m-%dT%H:%M:%SZ")
        runs = round_robin(
            {
                SPM: (
                    worker(
                        "spm_ado", ado, target=ado_job, since=ado_since.isoformat(), cursor=cursor
                    ),
                    3,
                ),
                BASELINE: (worker("baseline_ado", ado, target=ado_job, since=wiql_since), 2),
            },
            log=log,
        )
        results[name] = _no_change_result(
            name,
            runs,
            lambda keys: digest(()),  # nothing was revised after the cursor
            lambda keys: ado_expected(ado, [int(key) for key in keys]),
        )
    for name, result in results.items():
        print_comparison(name, result, log)
    return results


def _history_only(run_: Run, routes: frozenset[str]) -> Run:
    """The run with only its history routes as its requests; the others kept apart."""
    history = {route: n for route, n in run_.by_route.items() if route in routes}
    other = {route: n for route, n in run_.by_route.items() if route not in routes}
    detail = {k: v for k, v in run_.detail.items() if k not in ("keys", "ids")}
    detail["pull_by_route"] = other
    return replace(run_, requests=sum(history.values()), by_route=history, detail=detail)


def _pull_routes(spm: list[Run], baseline: list[Run]) -> dict[str, Any]:
    """The routes of the median runs that were not the history's (the pull, the library's
    setup), so the by-route counts of a row add up to what the sandbox answered."""
    return {
        "spm_pull_by_route": median_run(spm).detail["pull_by_route"],
        "baseline_pull_by_route": median_run(baseline).detail["pull_by_route"],
    }


def _checked(name: str, runs: list[Run], expected: tuple[int, int], side: str) -> None:
    for run_ in runs:
        found = (run_.detail["changes"], run_.detail["checksum"])
        if found != expected:
            raise RuntimeError(
                f"{name}: a {side} run yielded {found[0]} status changes (checksum {found[1]}); "
                f"the sandbox holds {expected[0]} (checksum {expected[1]})"
            )
        client = run_.detail.get("history_client_requests")
        if client is not None and client != run_.requests:
            raise RuntimeError(
                f"{name}: the connector counted {client} history requests, the sandbox "
                f"{run_.requests}"
            )


def _full_result(
    name: str,
    runs: Mapping[str, list[Run]],
    expected: tuple[int, int],
    floor: int,
    items: int,
    *,
    baseline_expected: tuple[int, int] | None = None,
    revisions: int | None = None,
) -> dict[str, Any]:
    spm = [_history_only(run_, SPM_HISTORY_ROUTES) for run_ in runs[SPM]]
    base = [_history_only(run_, BASELINE_HISTORY_ROUTES) for run_ in runs[BASELINE]]
    _checked(name, spm, expected, SPM)
    _checked(name, base, baseline_expected or expected, BASELINE)
    for run_ in spm:
        if run_.items != items:
            raise RuntimeError(f"{name}: a run pulled {run_.items} of {items} items")
    result = Comparison(name, spm, base).as_dict()
    result.update(_pull_routes(spm, base))
    result["method"] = (
        "median of alternating runs (S, B, S, ...); spm-sync: pull, then pull_history of the "
        "pulled keys, only the history timed and only its routes counted (the pull's routes in "
        "pull_by_route); peak_mb = largest peak RSS (VmHWM) of the workers, pull included"
    )
    result["changes"] = expected[0]
    result["min_requests"] = floor
    result["pull_seconds"] = [run_.detail["pull_seconds"] for run_ in spm]
    if revisions is not None:
        result["revisions"] = revisions
    sampled = base[0].items
    if sampled != items:
        # The per-item baseline on a sample: one request per item (checked), scaled up.
        for run_ in base:
            if run_.requests != run_.items:
                raise RuntimeError(
                    f"{name}: the baseline made {run_.requests} requests for {run_.items} items"
                )
        scale = items / sampled
        measured = {
            "items": sampled,
            "requests": result["baseline_requests"],
            "seconds": result["baseline_seconds"],
            "changes": (baseline_expected or expected)[0],
        }
        result["baseline_sample"] = measured
        result["baseline_requests"] = round(measured["requests"] * scale)
        result["baseline_seconds"] = round(measured["seconds"] * scale, 3)
        result["speedup"] = ratio(result["baseline_seconds"], result["seconds"])
        result["request_ratio"] = ratio(result["baseline_requests"], result["requests"])
        result["method"] += (
            f"; baseline measured on the first {sampled} of {items} work items (1 request per "
            "item), its seconds and requests scaled to the full count"
        )
    allowed = FLOOR_FACTOR * floor
    worst = max(run_.requests for run_ in spm)
    why = f"{worst} requests: " + ", ".join(f"{n} {r}" for r, n in result["spm_by_route"].items())
    result["targets"] = [
        target(
            f"history requests <= {FLOOR_FACTOR} x the API floor ({floor}): <= {allowed:.0f}",
            worst <= allowed,
            why,
        )
    ]
    return result


def _no_change_result(
    name: str,
    runs: Mapping[str, list[Run]],
    spm_expected: Callable[[list[str]], tuple[int, int]],
    baseline_expected: Callable[[list[str]], tuple[int, int]],
) -> dict[str, Any]:
    """Each run is checked against the sandbox's history of the keys that run pulled."""
    checked: dict[str, list[Run]] = {}
    for side, routes, expect in (
        (SPM, SPM_HISTORY_ROUTES, spm_expected),
        (BASELINE, BASELINE_HISTORY_ROUTES, baseline_expected),
    ):
        checked[side] = []
        for run_ in runs[side]:
            keys = [str(key) for key in run_.detail.get("keys") or run_.detail.get("ids") or []]
            history = _history_only(run_, routes)
            _checked(name, [history], expect(keys), side)
            checked[side].append(history)
    result = Comparison(name, checked[SPM], checked[BASELINE]).as_dict()
    result.update(_pull_routes(checked[SPM], checked[BASELINE]))
    result["method"] = (
        "median of alternating runs (S, B, S, ...); the run after a full one with nothing "
        "changed: pull since the watermark + 1 s, then pull_history of the pulled keys (Azure "
        "DevOps: from the full run's cursor); only the history timed and counted"
    )
    if not result["baseline_requests"]:
        # Nothing to read per item: a ratio against no request would say nothing.
        result["speedup"] = result["request_ratio"] = None
    result["pulled_items"] = [run_.items for run_ in checked[SPM]]
    result["changes"] = [run_.detail["changes"] for run_ in checked[SPM]]
    worst = max(run_.requests for run_ in checked[SPM])
    why = f"{worst} requests: " + ", ".join(f"{n} {r}" for r, n in result["spm_by_route"].items())
    result["targets"] = [
        target(
            f"<= {NO_CHANGE_LIMIT} history request per connection (issue 13)",
            worst <= NO_CHANGE_LIMIT,
            why,
        )
    ]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3,000 + 2,000 items")
    run(quick=parser.parse_args().quick)


if __name__ == "__main__":
    main()
