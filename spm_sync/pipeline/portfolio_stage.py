"""The portfolio stage: OKRs that measure themselves, capacity against demand and dependency
risk, as the document's portfolio section.

Runs inside the analysis, after alignment and scoring, while the connectors of the pull are
still open:
1. the OKR tree: the OKR file merged with the tracker items that stand for objectives and Key
   Results (`spm_sync.pipeline.portfolio_input`, `spm_sync.engines.portfolio.okr_tree`);
2. the Key Results' queries, one batch per connection (`spm_sync.pipeline.portfolio_queries`),
   done-ness
   and summed WSJF inputs read from the pulled items where they hold the matches
   (`spm_sync.pipeline.portfolio_keys`), and each Key Result's value and progress
   (`spm_sync.engines.portfolio.measures`);
3. the roll-up: objective progress and confidence, aligned work and job size per objective;
4. with `capacity:` configured, each team's cut line per planning interval in the WSJF-ranked
   demand;
5. dependency risk over every stored item's "blocks" and predecessor links.

Like flow, the portfolio is a finding beside the sync: when it cannot be built the run goes on,
with the error as one of its problems (`cycle_portfolio`). Problems of single objectives, Key
Results or teams are rows of the section, never errors of the run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from connectors.base import StoredFieldsConnector
from spm_sync.config.model import Config
from spm_sync.config.okr_measures import KeyResultExtras
from spm_sync.core.domain import WSJF_INPUTS, ItemRef, WorkItem
from spm_sync.core.errors import describe
from spm_sync.core.results_portfolio import PortfolioSection, QueryRun
from spm_sync.engines.alignment import AlignmentResult, usable_job_size
from spm_sync.engines.bulk import paused_gc
from spm_sync.engines.portfolio.capacity import plan_capacity
from spm_sync.engines.portfolio.dependencies import dependency_risk
from spm_sync.engines.portfolio.measures import KrMeasurement, QueryOutcome, measure_key_result
from spm_sync.engines.portfolio.okr_tree import OkrNode, OkrTree, merge_okrs
from spm_sync.engines.portfolio.rollup import AlignedWork, roll_up
from spm_sync.engines.wsjf import Score
from spm_sync.pipeline.portfolio_document import (
    Namer,
    capacity_section,
    conflict_rows,
    dependency_section,
    key_result_row,
    objective_rows,
    tree_problem_rows,
)
from spm_sync.pipeline.portfolio_input import (
    dependencies,
    file_records,
    okr_types,
    ranked_items,
    ranked_scores,
    team_demand,
    teams_of,
    tracker_okr_records,
)
from spm_sync.pipeline.portfolio_keys import QueryLanguage, StoreView
from spm_sync.pipeline.portfolio_queries import QuerySource, ask, batches, outcomes
from spm_sync.pipeline.pull import ConnectionRun

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PortfolioInput:
    """What the stage reads: the analysis' items, alignment and scores."""

    items: Mapping[ItemRef, WorkItem]
    alignment: AlignmentResult
    scores: Sequence[Score]


def query_sources(runs: Sequence[ConnectionRun]) -> dict[str, QuerySource]:
    """Each connection's connector for the queries, and why it cannot be asked this run: left
    alone (another worker syncs it) or failed (a tracker in trouble is not asked again). Held
    back deletions do not stop the queries: they are about the store, not the tracker."""
    return {
        run.name: QuerySource(
            run.connector,
            run.skipped or run.error or (None if run.pulled_ok else "it was not pulled"),
        )
        for run in runs
    }


def store_view(
    config: Config, items: Mapping[ItemRef, WorkItem], sources: Mapping[str, QuerySource]
) -> StoreView:
    """The pulled items as the Key Result queries' source of done-ness and values: each
    connection's query language from its kind, and the attribute holding a summed field from
    its connector (`StoredFieldsConnector`: the field a WSJF input is configured with, however
    the measure names it), asked once per name."""
    languages: dict[str, QueryLanguage] = {
        connection.name: "jql" if connection.kind == "jira" else "wiql"
        for connection in config.connections
    }
    known: dict[tuple[str, str], str | None] = {}

    def attribute_of(connection: str, field: str) -> str | None:
        if (connection, field) not in known:
            source = sources.get(connection)
            connector = source.connector if source is not None else None
            found = None
            if isinstance(connector, StoredFieldsConnector):
                found = connector.stored_field(field)
            known[(connection, field)] = found if found in WSJF_INPUTS else None
        return known[(connection, field)]

    return StoreView(items, languages, attribute_of)


def build_tree(config: Config, items: Mapping[ItemRef, WorkItem]) -> OkrTree:
    okrs = config.okr_set
    records = file_records(okrs)
    types = okr_types(config)
    if types:
        records += tracker_okr_records(items.values(), types, okrs)
    return merge_okrs(records)


def measure_all(
    tree: OkrTree,
    config: Config,
    sources: Mapping[str, QuerySource],
    store: StoreView | None = None,
) -> tuple[dict[str, KrMeasurement], dict[str, KeyResultExtras], list[QueryRun]]:
    """Every Key Result's measurement (placed and orphan), its measure settings, and the
    query batches' records; with `store`, done-ness and stored values come from there."""
    extras = config.okr_set.extras
    nodes: list[OkrNode] = [*tree.key_results.values(), *tree.orphan_key_results]
    measured = {node.id: extras.key_result(node.id) for node in nodes}
    answers, runs = ask(batches(measured, store), sources, store)
    found: dict[str, QueryOutcome] = outcomes(measured, answers)
    measurements = {
        node.id: measure_key_result(
            node.id,
            measured[node.id].measure,
            found.get(node.id),
            target=node.target,
            baseline=node.baseline,
            manual_current=node.current,
        )
        for node in nodes
    }
    return measurements, measured, runs


def aligned_work(
    tree: OkrTree, alignment: AlignmentResult, items: Mapping[ItemRef, WorkItem]
) -> dict[str, list[AlignedWork]]:
    """Each placed Key Result's aligned items with their usable job size."""
    work: dict[str, list[AlignedWork]] = {}
    for kr_id in tree.key_results:
        coverage = alignment.coverage.get(kr_id)
        refs = coverage.items if coverage is not None else ()
        work[kr_id] = [AlignedWork(ref, usable_job_size(items[ref])) for ref in refs]
    return work


@paused_gc()
def build_portfolio(
    config: Config, data: PortfolioInput, sources: Mapping[str, QuerySource]
) -> PortfolioSection:
    """The portfolio section of this cycle (see the module docstring)."""
    items = data.items
    tree = build_tree(config, items)
    measurements, measured, query_runs = measure_all(
        tree, config, sources, store_view(config, items, sources)
    )
    rollup = roll_up(tree, measurements, aligned_work(tree, data.alignment, items))
    ranked = ranked_scores(data.scores)
    name = Namer(items, {(s.connection, s.item_key): s for s in data.scores})
    capacity = None
    if config.capacity is not None:
        plan = plan_capacity(
            team_demand(items, ranked, teams_of(config)),
            config.capacity.by_team(),
            high_wsjf_below=config.capacity.high_wsjf_below,
        )
        capacity = capacity_section(plan, config.capacity.by, name)
    ranks = {
        (s.connection, s.item_key): s.portfolio_rank for s in ranked if s.portfolio_rank is not None
    }
    edges = dependencies(items.values())
    nodes = ranked_items(items, ranks, data.alignment.orphan_refs, edges)
    risk = dependency_risk(nodes, edges)
    return PortfolioSection(
        objectives=objective_rows(tree, rollup, measurements, measured, name),
        orphan_key_results=[
            key_result_row(
                node,
                measurements.get(node.id),
                measured.get(node.id),
                None,
                0.0,
                name.url_of(node.sources),
            )
            for node in tree.orphan_key_results
        ],
        conflicts=conflict_rows(tree.conflicts),
        tree_problems=tree_problem_rows(tree),
        queries=query_runs,
        capacity=capacity,
        dependencies=dependency_section(risk, len(edges), name),
    )


def cycle_portfolio(
    config: Config, data: PortfolioInput, runs: Sequence[ConnectionRun]
) -> tuple[PortfolioSection | None, str | None]:
    """The cycle's portfolio section, or why there is none (a problem line of the run)."""
    try:
        return build_portfolio(config, data, query_sources(runs)), None
    except Exception as error:
        log.warning("building the portfolio section failed", exc_info=True)
        return None, f"portfolio: not built: {describe(error)}"
