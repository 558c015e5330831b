"""A generated portfolio as the store holds it after a sync: `WorkItem`s plus the OKRs and the
engine settings a typical config gives, for the benchmarks that need no HTTP.

The conversion mirrors what the connectors' mappings produce from the sandboxes' answers (links
on both ends, non-numbers in WSJF fields as field problems, Azure DevOps area paths as `team`),
so the engines see the same shapes. Ranks are a seeded shuffle (the backlog is in no WSJF order
yet: the planner's worst case) and no item carries a score yet (every scored item gets one).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

from bench.connections import ADO_NAME, JIRA_NAME
from connectors.sandbox.portfolio import RawValue, SeedItem, SeedPortfolio
from connectors.settings import DEFAULT_AZURE_DEVOPS_LEVELS, DEFAULT_JIRA_LEVELS
from spm_sync.core.domain import KeyResult, Level, Link, Objective, StatusCategory, WorkItem
from spm_sync.engines.alignment_rules import AlignmentRules, AlignmentScope, ConnectionAlignment
from spm_sync.engines.planning import PriorityTier, WritePolicy

ADO_PROJECT = "Portfolio"
KEY_RESULT_TYPE = "Key Result"


def key_results(portfolio: SeedPortfolio) -> list[KeyResult]:
    return [
        KeyResult(
            kr.id, kr.objective_id, kr.title, kr.target, kr.current, aliases=tuple(kr.aliases)
        )
        for kr in portfolio.key_results
    ]


def objectives(portfolio: SeedPortfolio) -> list[Objective]:
    return [Objective(o.id, o.title, o.owner, o.period) for o in portfolio.objectives]


def alignment_rules() -> AlignmentRules:
    return AlignmentRules(
        connections=(
            ConnectionAlignment(JIRA_NAME, "kr-", ("Drives",), (KEY_RESULT_TYPE,)),
            ConnectionAlignment(ADO_NAME, "kr-", ("System.LinkTypes.Related",), (KEY_RESULT_TYPE,)),
        ),
        # The scope the recorded figures were taken with (the default now adds initiatives).
        scope=AlignmentScope(levels=(Level.EPIC, Level.FEATURE, Level.STORY)),
    )


def write_back_settings() -> list[WritePolicy]:
    """Everything switched on, as the example config does."""
    bands = (PriorityTier(10, "Highest"), PriorityTier(30, "High"))
    return [
        WritePolicy(
            JIRA_NAME,
            "lexorank",
            score=True,
            cost_of_delay=True,
            rank=True,
            priority_bands=bands,
            default_priority="Medium",
            orphan_label="no-okr",
        ),
        WritePolicy(
            ADO_NAME,
            "numeric",
            score=True,
            rank=True,
            priority_bands=(PriorityTier(20, "1"),),
            default_priority="3",
            orphan_label="no-okr",
        ),
    ]


def work_items(portfolio: SeedPortfolio, seed: int = 7) -> Iterator[WorkItem]:
    """Every item of both trackers, Jira first."""
    rng = random.Random(seed)
    yield from _tracker_items(portfolio.jira, JIRA_NAME, rng)
    yield from _tracker_items(portfolio.azure_devops, ADO_NAME, rng)


def _tracker_items(
    seeds: Sequence[SeedItem], connection: str, rng: random.Random
) -> Iterator[WorkItem]:
    inward: dict[str, list[Link]] = {}
    for seed in seeds:
        for link in seed.links:
            inward.setdefault(link.target, []).append(Link(link.type, "inward", seed.key))
    places = list(range(len(seeds)))
    rng.shuffle(places)
    for seed, place in zip(seeds, places, strict=True):
        yield _work_item(seed, connection, inward.get(seed.key, []), place)


def _work_item(seed: SeedItem, connection: str, inward: list[Link], place: int) -> WorkItem:
    jira = seed.tracker == "jira"
    levels = DEFAULT_JIRA_LEVELS if jira else DEFAULT_AZURE_DEVOPS_LEVELS
    problems: dict[str, str] = {}
    inputs = {
        name: _number(getattr(seed, name), name, problems)
        for name in ("business_value", "time_criticality", "risk_reduction", "job_size")
    }
    outward = [Link(link.type, "outward", link.target) for link in seed.links]
    return WorkItem(
        connection=connection,
        key=seed.key,
        id=str(seed.id),
        type=seed.type,
        level=levels.get(seed.type),
        title=seed.title,
        status=seed.status,
        status_category=StatusCategory(seed.status_category),
        updated=seed.updated,
        revision=seed.updated.isoformat() if jira else "1",
        created=seed.created,
        parent_key=seed.parent,
        labels=tuple(seed.labels),
        links=(*outward, *inward),
        project=seed.project if jira else ADO_PROJECT,
        team=seed.team if jira else seed.project,
        components=tuple(seed.components),
        rank=f"0|i{place:07d}:" if jira else float((place + 1) * 1000),
        field_problems=problems,
        **inputs,
    )


def _number(raw: RawValue, name: str, problems: dict[str, str]) -> float | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    try:
        return float(raw)
    except ValueError:
        problems[name] = f"not a number: {raw!r}"
        return None
