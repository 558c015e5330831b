"""The portfolio core's inputs from the stored items: OKR records of tracker items, each team's
WSJF-ranked demand, and the dependency graph.

- Tracker OKRs. An item whose type is one of its connection's `okr.objective_types` is an
  objective; one of `okr.item_types` a Key Result. An objective item takes the id of the OKR
  file's objective whose id or alias is its key, else its key; a Key Result item the id of the
  file's Key Result whose id or alias is its key (as alignment resolves it), else its key. The
  parent of either is its tracker parent when that is an objective item of the same connection.
- Demand. The items WSJF scores (its levels and statuses), in portfolio rank order, unscored
  ones last; a team is the item's team, or each of its value streams (`flow.value_streams`).
- Dependencies. Jira "Blocks" (outward: the other item is blocked by this one) and Azure
  DevOps `System.LinkTypes.Dependency` (Forward: the other item is this one's successor) name
  the same thing in the same direction: the outward side's target waits for the item. Both
  sides of a link are usually stored; the core counts each edge once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from spm_sync.config.model import Config
from spm_sync.config.okrs import OkrSet
from spm_sync.core.domain import ItemRef, StatusCategory, WorkItem
from spm_sync.engines.portfolio.capacity import DemandItem
from spm_sync.engines.portfolio.dependencies import Dependency, RankedItem
from spm_sync.engines.portfolio.okr_tree import FILE_SOURCE, OkrKind, OkrRecord, tracker_source
from spm_sync.engines.wsjf import Score
from spm_sync.pipeline.flow_input import value_streams_of

DEPENDENCY_LINK_TYPES = frozenset({"blocks", "system.linktypes.dependency"})
"""Link type names (case folded) that mean "waits for": Jira's Blocks, Azure DevOps'
predecessor/successor."""
NO_TEAM = "(no team)"


def okr_types(config: Config) -> dict[str, tuple[frozenset[str], frozenset[str]]]:
    """Connection -> (objective types, Key Result types), case folded; connections with
    neither are left out."""
    found = {}
    for connection in config.connections:
        objectives = frozenset(t.casefold() for t in connection.okr.objective_types)
        key_results = frozenset(t.casefold() for t in connection.okr.item_types)
        if objectives or key_results:
            found[connection.name] = (objectives, key_results)
    return found


def tracker_okr_records(
    items: Iterable[WorkItem],
    types: Mapping[str, tuple[frozenset[str], frozenset[str]]],
    okrs: OkrSet,
) -> list[OkrRecord]:
    """The OKR records of tracker items (see the module docstring), in item order."""
    chosen: list[tuple[WorkItem, OkrKind]] = []
    objective_ids: dict[ItemRef, str] = {}
    for item in items:
        kinds = types.get(item.connection)
        if kinds is None:
            continue
        kind = item.type.casefold()
        if kind in kinds[0]:
            chosen.append((item, OkrKind.OBJECTIVE))
            objective_ids[(item.connection, item.key)] = _objective_id(item.key, okrs)
        elif kind in kinds[1]:
            chosen.append((item, OkrKind.KEY_RESULT))
    records = []
    for item, kind in chosen:
        parent = None
        if item.parent_key is not None:
            parent = objective_ids.get((item.connection, item.parent_key))
        if kind is OkrKind.OBJECTIVE:
            record_id = objective_ids[(item.connection, item.key)]
        else:
            resolved = okrs.resolve(item.key)
            record_id = resolved.id if resolved is not None else item.key
        records.append(
            OkrRecord(
                record_id,
                item.title,
                kind,
                tracker_source(item.connection, item.key),
                parent_id=parent,
            )
        )
    return records


def _objective_id(key: str, okrs: OkrSet) -> str:
    objective = okrs.objective(key)
    if objective is not None:
        return objective.id
    folded = okrs.extras.objective_for_alias(key)
    if folded is not None:
        objective = okrs.objective(folded)
        if objective is not None:
            return objective.id
    return key


TeamsOf = Callable[[WorkItem], Sequence[str]]


def teams_of(config: Config) -> TeamsOf:
    """What names an item's team(s) for capacity (`capacity.by`)."""
    if config.capacity is not None and config.capacity.by == "value_stream":
        streams = value_streams_of(config.flow.value_streams)
        return lambda item: streams(item) or (NO_TEAM,)
    return lambda item: (item.team or NO_TEAM,)


def ranked_scores(scores: Iterable[Score]) -> list[Score]:
    """Scores in portfolio rank order, unscored last (by connection and backlog rank)."""
    return sorted(
        scores,
        key=lambda s: (s.portfolio_rank is None, s.portfolio_rank or 0, s.connection, s.rank),
    )


def team_demand(
    items: Mapping[ItemRef, WorkItem], ranked: Sequence[Score], team_of: TeamsOf
) -> dict[str, list[DemandItem]]:
    """Each team's demand in rank order; an item of two value streams is demand of both."""
    demand: dict[str, list[DemandItem]] = {}
    for score in ranked:
        item = items.get((score.connection, score.item_key))
        if item is None:
            continue
        entry = DemandItem(
            (item.connection, item.key),
            score.wsjf,
            None if "job_size" in item.field_problems else item.job_size,
            item.status_category is StatusCategory.IN_PROGRESS,
        )
        for team in team_of(item):
            demand.setdefault(team, []).append(entry)
    return demand


def ranked_items(
    items: Mapping[ItemRef, WorkItem],
    ranks: Mapping[ItemRef, int],
    orphans: frozenset[ItemRef],
    edges: Sequence[Dependency],
) -> list[RankedItem]:
    """The dependency graph's nodes: the items an edge names (an item no link touches can
    neither wait nor be waited for), in the items' order."""
    named = {ref for edge in edges for ref in (edge.dependent, edge.prerequisite)}
    return [
        RankedItem(ref, ranks.get(ref), item.status_category is StatusCategory.DONE, ref in orphans)
        for ref, item in items.items()
        if ref in named
    ]


def dependencies(items: Iterable[WorkItem]) -> list[Dependency]:
    """Every "waits for" edge the items' links state (see the module docstring)."""
    edges = []
    for item in items:
        for link in item.links:
            if link.type.casefold() not in DEPENDENCY_LINK_TYPES:
                continue
            here: ItemRef = (item.connection, item.key)
            there: ItemRef = (item.connection, link.target_key)
            if link.direction == "outward":
                edges.append(Dependency(there, here, link.type))
            else:
                edges.append(Dependency(here, there, link.type))
    return edges


def file_records(okrs: OkrSet) -> list[OkrRecord]:
    """The OKR file's objectives and Key Results as records, with the weights and parent
    objectives the file states (`OkrSet.extras`)."""
    extras = okrs.extras
    records = [
        OkrRecord(
            o.id,
            o.title,
            OkrKind.OBJECTIVE,
            FILE_SOURCE,
            parent_id=extras.objective(o.id).parent,
            weight=extras.objective(o.id).weight,
            target_date=o.target_date,
        )
        for o in okrs.objectives
    ]
    records += [
        OkrRecord(
            kr.id,
            kr.title,
            OkrKind.KEY_RESULT,
            FILE_SOURCE,
            parent_id=kr.objective_id,
            target=kr.target,
            baseline=kr.baseline,
            current=kr.current,
            weight=extras.key_result(kr.id).weight,
        )
        for kr in okrs.key_results
    ]
    return records
