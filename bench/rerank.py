"""Benchmark: re-rank 1,000 epics of which 10% move (20 ms latency; the same in both modes).

The target order keeps 900 epics in their current relative order and puts 100 randomly chosen
ones at random new places. Every run gets a fresh sandbox with the same seed (identical ranks and
revisions), so each run starts from the same order; after each run the sandbox's order is
checked against the target.
- Jira, spm-sync: `plan_rank` (LIS: only items off one longest increasing subsequence move, in
  contiguous blocks of at most 50) and `JiraConnector.push`: serverInfo + field, one freshness
  bulk fetch per 100 moved issues, one rank call per block. Target: rank calls
  <= ceil(moved/50) + blocks, plus the freshness check.
  Baseline: `jira.rank(issue, prev_issue=...)` once per moved issue, in target order (the top
  issue, if moved, goes before the first unmoved one); the baseline is told which issues moved.
- Azure DevOps, spm-sync: numeric StackRank values for the moved items only (`numeric_ranks`),
  each a guarded JSON Patch, 200 items to a `$batch` request. Targets: writes only the moved
  items, in ceil(moved/200) write requests.
  spm-sync without `$batch` (the sandbox's route removed, as on a server without it): the same
  plan, one PATCH per moved item after the one refused batch: the request count before `$batch`.
  Baseline: renumber the backlog in target order (StackRank = 1000 × position) and
  `update_work_item` every item whose value changes, the simple correct script.
"""

from __future__ import annotations

import argparse
import math
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bench.connections import (
    ADO_NAME,
    JIRA_NAME,
    ado_environ,
    ado_settings,
    ado_target,
    jira_environ,
    jira_settings,
    jira_target,
)
from bench.harness import (
    LATENCY_MS,
    Comparison,
    Run,
    alternate,
    measured_run,
    round_robin,
    target,
)
from bench.report import print_comparison
from connectors.azure_devops import AzureDevOpsConnector
from connectors.jira import JiraConnector
from connectors.sandbox.ado_server import AzureDevOpsSandbox
from connectors.sandbox.generator import generate_portfolio
from connectors.sandbox.jira_server import JiraSandbox
from connectors.sandbox.portfolio import SeedItem
from connectors.sandbox.server import Faults
from spm_sync.core.domain import (
    ConnectionPlan,
    Level,
    PlannedWrite,
    RankMove,
    WriteField,
    WriteStatus,
)
from spm_sync.engines.planning import WritePolicy, plan_rank
from spm_sync.engines.ranking import apply_moves

SCOPE = 1_000
MOVED = 100
BATCH_LIMIT = 200
STACK_RANK = "Microsoft.VSTS.Common.StackRank"
BATCH_ROUTE = "PATCH /_apis/wit/$batch"
PATCH_ROUTE = "PATCH /_apis/wit/workitems/{id}"
UNROUTED = "PATCH (unrouted)"
JIRA_PORTFOLIO = 15_500  # about 1,070 epics
ADO_PORTFOLIO = 10_500  # about 1,040 epics and features
SEED = 7


# -- plans as JSON, for the worker -------------------------------------------------------------
def plan_json(plan: ConnectionPlan) -> dict[str, Any]:
    def write(w: PlannedWrite) -> list[Any]:
        return [w.item_key, w.field.value, w.old, w.new, w.expected_revision]

    return {
        "connection": plan.connection,
        "writes": [write(w) for w in plan.writes],
        "moves": [
            [list(m.item_keys), m.after_key, m.before_key, [write(w) for w in m.writes]]
            for m in plan.moves
        ],
    }


def plan_from_json(data: Mapping[str, Any]) -> ConnectionPlan:
    name = data["connection"]

    def write(row: Sequence[Any]) -> PlannedWrite:
        key, field, old, new, revision = row
        return PlannedWrite(name, key, WriteField(field), old, new, revision)

    moves = tuple(
        RankMove(name, tuple(keys), after, before, tuple(write(w) for w in writes))
        for keys, after, before, writes in data["moves"]
    )
    return ConnectionPlan(name, tuple(write(w) for w in data["writes"]), moves)


# -- measured in a worker --------------------------------------------------------------------
def spm_jira(target: Mapping[str, Any], plan: Mapping[str, Any]) -> dict[str, Any]:
    connector = JiraConnector(jira_settings(target), environ=jira_environ(target))
    try:
        results = list(connector.push(plan_from_json(plan)))
    finally:
        connector.close()
    return _outcome(results)


def spm_ado(target: Mapping[str, Any], plan: Mapping[str, Any]) -> dict[str, Any]:
    connector = AzureDevOpsConnector(
        ado_settings(target), environ=ado_environ(target), cache_dir=None
    )
    try:
        results = list(connector.push(plan_from_json(plan)))
    finally:
        connector.close()
    return _outcome(results)


def _outcome(results: Sequence[Any]) -> dict[str, Any]:
    written = sum(1 for result in results if result.status is WriteStatus.WRITTEN)
    if written != len(results):
        failed = [r for r in results if r.status is not WriteStatus.WRITTEN][:3]
        raise RuntimeError(f"{len(results) - written} writes not written, e.g. {failed}")
    return {"items": written, "writes": written}


# -- the scenario ------------------------------------------------------------------------------
def shuffled_target(current: Sequence[str], rng: random.Random) -> tuple[list[str], set[str]]:
    """`current` with MOVED random items taken out and put back at random places."""
    moved = set(rng.sample(list(current), MOVED))
    order = [key for key in current if key not in moved]
    for key in sorted(moved, key=current.index):
        order.insert(rng.randrange(len(order) + 1), key)
    return order, moved


def naive_jira_moves(target: Sequence[str], moved: set[str]) -> list[list[str | None]]:
    """[key, after, before] per moved issue in target order: after its target predecessor,
    or (at the top) before the first issue that did not move."""
    first_unmoved = next(key for key in target if key not in moved)
    moves: list[list[str | None]] = []
    for index, key in enumerate(target):
        if key in moved:
            after = target[index - 1] if index else None
            moves.append([key, after, None if after else first_unmoved])
    return moves


def jira_scenario(seeds: list[SeedItem]) -> tuple[list[str], list[str], set[str], dict[str, Any]]:
    """Pulls the epics once (setup), picks the scope, the target and the spm-sync plan."""
    with JiraSandbox(seeds) as sandbox:
        job = jira_target(sandbox, "issuetype = Epic")
        connector = JiraConnector(jira_settings(job), environ=jira_environ(job))
        epics = {item.key: item for item in connector.pull(None) if item.level is Level.EPIC}
        connector.close()
        current = sandbox.rank_order(epics)[:SCOPE]
    target_order, moved = shuffled_target(current, random.Random(SEED))
    by_key = {key: epics[key] for key in current}
    _, moves = plan_rank(WritePolicy(JIRA_NAME, rank=True), by_key, target_order)
    if apply_moves(current, moves) != target_order:
        raise RuntimeError("the planned Jira moves do not produce the target order")
    return current, target_order, moved, plan_json(ConnectionPlan(JIRA_NAME, (), tuple(moves)))


def ado_scenario(
    seeds: list[SeedItem],
) -> tuple[list[str], list[str], set[str], dict[str, Any], dict[str, float]]:
    with AzureDevOpsSandbox(seeds) as sandbox:
        job = ado_target(sandbox)
        settings = ado_settings(job, scope={"work_item_types": ["Epic", "Feature"]})
        connector = AzureDevOpsConnector(settings, environ=ado_environ(job), cache_dir=None)
        items = {item.key: item for item in connector.pull(None)}
        connector.close()
    ranked = sorted(items.values(), key=lambda item: (float(item.rank or 0), int(item.key)))
    current = [item.key for item in ranked[:SCOPE]]
    target_order, moved = shuffled_target(current, random.Random(SEED))
    by_key = {key: items[key] for key in current}
    settings_ = WritePolicy(ADO_NAME, rank_kind="numeric", rank=True)
    writes, _ = plan_rank(settings_, by_key, target_order)
    values = {key: float(items[key].rank or 0) for key in current}
    plan = plan_json(ConnectionPlan(ADO_NAME, tuple(writes)))
    return current, target_order, moved, plan, values


def ado_order(sandbox: AzureDevOpsSandbox, keys: Sequence[str]) -> list[str]:
    ranks = {key: sandbox.work_item(int(key))["fields"][STACK_RANK] for key in keys}
    return sorted(keys, key=lambda key: (ranks[key], int(key)))


# -- orchestration ---------------------------------------------------------------------------
def run(quick: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    """The same workload in both modes (it takes seconds)."""
    latency = Faults(latency_ms=LATENCY_MS)
    results: dict[str, Any] = {}

    jira_seeds = generate_portfolio(JIRA_PORTFOLIO, seed=SEED, jira_share=1.0).jira
    current, target_order, moved, plan = jira_scenario(jira_seeds)
    naive = naive_jira_moves(target_order, moved)

    def on_fresh_jira(task: str, kwargs: Mapping[str, Any]) -> Run:
        with JiraSandbox(jira_seeds, faults=latency) as sandbox:
            job = jira_target(sandbox, "issuetype = Epic")
            measured = measured_run(task, {"target": job, **kwargs}, [sandbox])
            if sandbox.rank_order(current) != target_order:
                raise RuntimeError(f"{task} did not produce the target order")
        return measured

    log(f"  re-rank, Jira: {SCOPE} epics, {MOVED} moved")
    jira_runs = alternate(
        lambda: on_fresh_jira("bench.rerank:spm_jira", {"plan": plan}),
        lambda: on_fresh_jira("bench.baseline:jira_rerank", {"moves": naive}),
        spm_runs=3,
        baseline_runs=2,
        log=log,
    )
    results["rerank_jira"] = _jira_result(Comparison("rerank_jira", *jira_runs), plan)

    ado_seeds = generate_portfolio(ADO_PORTFOLIO, seed=SEED, jira_share=0.0).azure_devops
    current, target_order, moved, plan, values = ado_scenario(ado_seeds)
    renumbered = [
        [int(key), 1000.0 * (index + 1)]
        for index, key in enumerate(target_order)
        if values[key] != 1000.0 * (index + 1)
    ]

    def on_fresh_ado(task: str, kwargs: Mapping[str, Any], *, batch_route: bool = True) -> Run:
        with AzureDevOpsSandbox(ado_seeds, faults=latency) as sandbox:
            if not batch_route:  # a server without `$batch`: spm-sync falls back to PATCH
                sandbox.routes[:] = [r for r in sandbox.routes if "$batch" not in r.name]
            measured = measured_run(task, {"target": ado_target(sandbox), **kwargs}, [sandbox])
            if ado_order(sandbox, current) != target_order:
                raise RuntimeError(f"{task} did not produce the target order")
        return measured

    log(f"  re-rank, Azure DevOps: {SCOPE} epics and features, {MOVED} moved")
    ado_runs = round_robin(
        {
            "spm-sync": (lambda: on_fresh_ado("bench.rerank:spm_ado", {"plan": plan}), 3),
            "spm-sync without $batch": (
                lambda: on_fresh_ado("bench.rerank:spm_ado", {"plan": plan}, batch_route=False),
                2,
            ),
            "baseline": (
                lambda: on_fresh_ado("bench.baseline:ado_rerank", {"ranks": renumbered}),
                2,
            ),
        },
        log=log,
    )
    baseline_runs = ado_runs["baseline"]
    results["rerank_azure_devops"] = _ado_result(
        Comparison("rerank_azure_devops", ado_runs["spm-sync"], baseline_runs)
    )
    results["rerank_azure_devops_per_item"] = _ado_result(
        Comparison(
            "rerank_azure_devops_per_item", ado_runs["spm-sync without $batch"], baseline_runs
        ),
        batch_route=False,
    )
    for name, result in results.items():
        print_comparison(name, result, log)
    return results


def _jira_result(comparison: Comparison, plan: Mapping[str, Any]) -> dict[str, Any]:
    result = comparison.as_dict()
    blocks = len(plan["moves"])
    moved_items = sum(len(keys) for keys, *_ in plan["moves"])
    rank_calls = result["spm_by_route"].get("PUT /rest/agile/1.0/issue/rank", 0)
    allowed = math.ceil(moved_items / 50) + blocks
    result.update(moved_items=moved_items, blocks=blocks, rank_calls=rank_calls)
    result["targets"] = [
        target(
            f"rank calls <= ceil(moved/50) + blocks = {allowed}",
            rank_calls <= allowed,
            f"{rank_calls} rank calls",
        )
    ]
    return result


def _ado_result(comparison: Comparison, *, batch_route: bool = True) -> dict[str, Any]:
    result = comparison.as_dict()
    batches = result["spm_by_route"].get(BATCH_ROUTE, 0)
    refused = result["spm_by_route"].get(UNROUTED, 0)  # the batch a server without it refuses
    patches = result["spm_by_route"].get(PATCH_ROUTE, 0)
    written = min(int(run.detail.get("writes", 0)) for run in comparison.spm)
    result.update(
        moved_items=MOVED,
        written_items=written,
        write_requests=batches + refused + patches,
        batch_requests=batches + refused,
        patch_requests=patches,
    )
    moved_only = target(
        f"writes only the moved items (<= {MOVED})", written <= MOVED, f"{written} items written"
    )
    if batch_route:
        floor = math.ceil(MOVED / BATCH_LIMIT)
        result["targets"] = [
            moved_only,
            target(
                f"write requests <= ceil(moved/{BATCH_LIMIT}) = {floor}",
                batches + patches <= floor,
                f"{batches} $batch + {patches} PATCH requests",
            ),
        ]
    else:
        result["targets"] = [
            moved_only,
            target(
                "without $batch: one PATCH per moved item after the refused batch",
                patches == written and refused == 1 and batches == 0,
                f"{refused} refused $batch + {patches} PATCH requests",
            ),
        ]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="same as the full run")
    run(quick=parser.parse_args().quick)


if __name__ == "__main__":
    main()
