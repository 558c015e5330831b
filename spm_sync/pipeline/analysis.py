"""Stages 2-4, align, score and plan: the pure engines over the stored items.

Reads the current items of every configured connection from the store (items flagged as
deleted are left out; context items, outside the scope, go to alignment's inheritance only),
runs the engines, and stores what they found: alignment rows, orphans,
scores with old and new rank, and the write plan as audit rows with status `planned`. Plans
are made only for connections pulled completely in this run, because a plan compares the
WSJF results with the trackers' current values and only a fresh pull knows them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from connectors.azure_devops import AzureDevOpsConnector
from connectors.jira import JiraConnector
from spm_sync.config.engine_settings import alignment_rules, planned_connections, wsjf_settings
from spm_sync.config.model import Config
from spm_sync.core.domain import ConnectionPlan, ItemRef, RankKind, WorkItem
from spm_sync.engines.alignment import AlignmentResult, align
from spm_sync.engines.planning import current_positions, plan_writes
from spm_sync.engines.wsjf import Score, score_items
from spm_sync.pipeline.pull import ConnectionRun
from spm_sync.store import AlignmentRecord, OrphanRecord, ScoreRecord, Store

DEFAULT_RANK_KIND: dict[str, RankKind] = {
    "jira": JiraConnector.rank_kind,
    "azure_devops": AzureDevOpsConnector.rank_kind,
}
"""Rank kind of a connection whose connector could not be made (for the report's old ranks)."""


@dataclass(frozen=True)
class Analysis:
    """What the engines found in this cycle."""

    items: Mapping[ItemRef, WorkItem]
    alignment: AlignmentResult
    scores: Sequence[Score]
    old_ranks: Mapping[ItemRef, int]
    plans: Mapping[str, ConnectionPlan]


def rank_kind_of(run: ConnectionRun) -> RankKind:
    if run.connector is not None:
        return run.connector.rank_kind
    return DEFAULT_RANK_KIND[run.settings.kind]


def analyse(config: Config, store: Store, runs: Sequence[ConnectionRun]) -> Analysis:
    """Align, score and plan (pure; nothing is stored here)."""
    items: list[WorkItem] = []
    context: list[WorkItem] = []  # outside the scope: only for inheritance to follow
    for connection in config.connections:
        items.extend(store.iter_items(connection.name))
        context.extend(store.iter_items(connection.name, context=True))
    okrs = config.okr_set
    rules = alignment_rules(config)
    alignment = align(items, okrs.key_results, rules, okrs.objectives, context=context)
    scores = score_items(items, wsjf_settings(config))
    plannable = [(run.name, rank_kind_of(run)) for run in runs if run.usable]
    plans = plan_writes(
        items,
        scores,
        planned_connections(config, plannable),
        orphans=alignment.orphan_refs,
        decimals=config.wsjf.decimals,
    )
    return Analysis(
        items={(item.connection, item.key): item for item in items},
        alignment=alignment,
        scores=scores,
        old_ranks=_old_ranks(items, scores, {run.name: rank_kind_of(run) for run in runs}),
        plans=plans,
    )


def _old_ranks(
    items: Sequence[WorkItem], scores: Sequence[Score], rank_kinds: Mapping[str, RankKind]
) -> dict[ItemRef, int]:
    """Each scored item's place in its tracker's current order, per connection."""
    items_by_connection: dict[str, list[WorkItem]] = defaultdict(list)
    for item in items:
        items_by_connection[item.connection].append(item)
    scores_by_connection: dict[str, list[Score]] = defaultdict(list)
    for score in scores:
        scores_by_connection[score.connection].append(score)
    ranks: dict[ItemRef, int] = {}
    for connection, connection_scores in scores_by_connection.items():
        kind = rank_kinds.get(connection, "lexorank")
        positions = current_positions(items_by_connection[connection], connection_scores, kind)
        ranks.update({(connection, key): place for key, place in positions.items()})
    return ranks


def _alignment_records(alignment: AlignmentResult) -> Iterator[AlignmentRecord]:
    """One record per item and Key Result, made as the store takes them (a generator: a large
    portfolio has ~170,000). An item may name one Key Result twice (label and link); the
    first, strongest piece of evidence is the one kept."""
    for found in alignment.alignments.values():
        named: set[str] = set()
        for row in found:
            if row.kr_id not in named:
                named.add(row.kr_id)
                yield AlignmentRecord(
                    row.connection, row.item_key, row.kr_id, str(row.via), row.path
                )


def store_analysis(store: Store, run_id: int, analysis: Analysis) -> int:
    """Store alignment rows, orphans, scores and plans; returns the number of planned writes.

    Every call replaces the run's rows, and `record_plan` leaves rows already tried alone, so
    repeating the stage within a run never duplicates or resets anything.
    """
    alignment = analysis.alignment
    store.record_alignments(run_id, _alignment_records(alignment))
    store.record_orphans(
        run_id,
        (OrphanRecord(o.connection, o.item_key, o.reason) for o in alignment.orphans),
    )
    store.record_scores(
        run_id,
        (
            ScoreRecord(
                connection=score.connection,
                key=score.item_key,
                inputs={
                    "business_value": score.business_value,
                    "time_criticality": score.time_criticality,
                    "risk_reduction": score.risk_reduction,
                    "job_size": score.job_size,
                },
                cost_of_delay=score.cost_of_delay,
                job_size=score.job_size,
                wsjf=score.wsjf,
                old_rank=analysis.old_ranks.get((score.connection, score.item_key)),
                new_rank=score.rank,
                reason=score.reason,
            )
            for score in analysis.scores
        ),
    )
    return sum(store.record_plan(run_id, plan) for plan in analysis.plans.values())
