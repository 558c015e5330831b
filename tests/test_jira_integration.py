"""The Jira connector against the Jira sandbox over HTTP, both flavours."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import pytest

from connectors.jira import JiraConnector
from connectors.sandbox.generator import generate_portfolio
from connectors.sandbox.jira_server import JiraSandbox
from connectors.sandbox.portfolio import SeedItem
from connectors.sandbox.server import Faults
from spm_sync.core.domain import (
    ConnectionPlan,
    Level,
    Link,
    PlannedWrite,
    StatusCategory,
    WorkItem,
    WriteField,
    WriteStatus,
)
from spm_sync.engines.planning import WritePolicy, plan_rank
from spm_sync.engines.ranking import apply_moves
from tests import sandbox_connectors

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

REFERENCE = datetime(2026, 3, 2, tzinfo=UTC)
FLAVOURS = ("cloud", "datacenter")
NAME = "sandbox-jira"
RETRY = {"max_attempts": 12, "base_delay_seconds": 0.01, "max_wait_seconds": 5}


@dataclass
class SandboxClock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, minutes: float) -> datetime:
        self.now += timedelta(minutes=minutes)
        return self.now


@cache
def portfolio(size: int) -> tuple[SeedItem, ...]:
    return tuple(generate_portfolio(size, seed=11, jira_share=1.0, now=REFERENCE).jira)


def connector(sandbox: JiraSandbox, items: Sequence[SeedItem], **overrides: Any) -> JiraConnector:
    projects = ", ".join(sorted({item.project for item in items}))
    values = {"name": NAME, "workers": 4, "retry": RETRY, "jql": f"project in ({projects})"}
    return sandbox_connectors.jira_connector(sandbox, **{**values, **overrides})


@pytest.fixture(params=FLAVOURS)
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def small(flavour: str) -> Iterator[tuple[JiraSandbox, tuple[SeedItem, ...], SandboxClock]]:
    clock = SandboxClock(REFERENCE + timedelta(days=1))
    items = portfolio(600)
    with JiraSandbox(items, flavour=flavour, clock=clock) as sandbox:  # type: ignore[arg-type]
        yield sandbox, items, clock


def expected_number(raw: object) -> tuple[float | None, bool]:
    """(value, is a problem) for a seed's raw WSJF input."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None, False
    try:
        return float(raw), False  # type: ignore[arg-type]
    except ValueError:
        return None, True


def test_full_sync_of_10000_issues_returns_each_once_with_its_fields(flavour: str) -> None:
    items = portfolio(10_000)
    with JiraSandbox(items, flavour=flavour) as sandbox:  # type: ignore[arg-type]
        jira = connector(sandbox, items)
        pulled = list(jira.pull(None))
        rank_order = sandbox.rank_order()
        base_url = sandbox.url

    keys = [item.key for item in pulled]
    assert len(keys) == len(set(keys)) == len(items) == 10_000
    by_key = {item.key: item for item in pulled}
    inward: dict[str, set[Link]] = {}
    for seed in items:
        for link in seed.links:
            inward.setdefault(link.target, set()).add(Link(link.type, "inward", seed.key))
    problems = 0
    for seed in items:
        work = by_key[seed.key]
        assert (work.title, work.type, work.status, work.project) == (
            seed.title,
            seed.type,
            seed.status,
            seed.project,
        )
        assert work.status_category is StatusCategory(seed.status_category)
        assert work.parent_key == seed.parent, seed.key
        assert sorted(work.labels) == sorted(seed.labels)
        assert sorted(work.components) == sorted(seed.components)
        outward = {Link(link.type, "outward", link.target) for link in seed.links}
        assert set(work.links) == outward | inward.get(seed.key, set()), seed.key
        for name in ("business_value", "time_criticality", "risk_reduction", "job_size"):
            value, is_problem = expected_number(getattr(seed, name))
            assert getattr(work, name) == value, (seed.key, name)
            assert (name in work.field_problems) is is_problem, (seed.key, name)
            problems += is_problem
        assert work.url == f"{base_url}/browse/{seed.key}"
    assert problems > 0  # the generator's "big" / "?" values surface as problems
    assert sorted(by_key, key=lambda key: str(by_key[key].rank)) == rank_order
    assert {item.level for item in pulled} >= {Level.INITIATIVE, Level.EPIC, Level.STORY}
    # Cloud: serverInfo, field, 2 id pages of 5,000, 100 bulk fetches of 100.
    # Data Center: serverInfo, field, 10 pages of 1,000.
    assert jira.stats.requests == (104 if flavour == "cloud" else 12)


def test_deletes_and_edits_mid_scan_neither_skip_nor_repeat_issues(flavour: str) -> None:
    items = portfolio(3000)
    with JiraSandbox(items, flavour=flavour) as sandbox:  # type: ignore[arg-type]
        stream = connector(sandbox, items).pull(None)
        seen = [next(stream) for _ in range(1000)]  # Data Center: exactly the first page
        # Issues already read vanish or change; on Data Center the last key read is among
        # them, so the next page cannot anchor on it.
        for gone in (seen[10], seen[500], seen[-1]):
            sandbox.delete(gone.key)
        sandbox.touch(seen[20].key, summary="edited mid-scan")
        rest = list(stream)

    keys = [item.key for item in [*seen, *rest]]
    assert len(keys) == len(set(keys)) == len(items)


def test_rerank_of_epics_puts_them_in_the_planned_order(
    small: tuple[JiraSandbox, tuple[SeedItem, ...], SandboxClock],
) -> None:
    sandbox, items, _ = small
    jira = connector(sandbox, items)
    pulled = {item.key: item for item in jira.pull(None)}
    epics = sorted(key for key, item in pulled.items() if item.level is Level.EPIC)
    target = list(epics)
    random.Random(5).shuffle(target)
    current = sandbox.rank_order(epics)
    _, moves = plan_rank(WritePolicy(NAME, rank=True), pulled, target)
    assert apply_moves(current, moves) == target

    results = list(jira.push(ConnectionPlan(NAME, (), tuple(moves))))

    assert {result.status for result in results} == {WriteStatus.WRITTEN}
    assert len(results) == sum(len(move.writes) for move in moves)
    assert sandbox.rank_order(epics) == target
    rank_calls = jira.stats.by_endpoint["PUT /rest/agile/1.0/issue/rank"]
    assert rank_calls == sum(math.ceil(len(move.item_keys) / 50) for move in moves)


def score_writes(items: Sequence[WorkItem], base: float = 10.0) -> list[PlannedWrite]:
    return [
        PlannedWrite(
            NAME, item.key, WriteField.WSJF_SCORE, item.wsjf_score, base + n, item.revision
        )
        for n, item in enumerate(items)
    ]


def test_a_207_rank_answer_fails_only_the_refused_issues(
    small: tuple[JiraSandbox, tuple[SeedItem, ...], SandboxClock],
) -> None:
    sandbox, items, _ = small
    jira = connector(sandbox, items)
    pulled = {item.key: item for item in jira.pull(None)}
    epics = sandbox.rank_order(k for k, item in pulled.items() if item.level is Level.EPIC)
    moving = epics[1:6]
    target = [epics[0], *reversed(moving), *epics[6:]]
    _, moves = plan_rank(WritePolicy(NAME, rank=True), pulled, target)
    refused = moving[2]
    sandbox.rank_failures.add(refused)

    results = {r.write.item_key: r for r in jira.push(ConnectionPlan(NAME, (), tuple(moves)))}

    assert results[refused].status is WriteStatus.FAILED
    assert "503" in (results[refused].error or "")
    assert {r.status for k, r in results.items() if k != refused} == {WriteStatus.WRITTEN}
    order = [key for key in sandbox.rank_order(epics) if key != refused]
    assert order == [key for key in target if key != refused]


def test_writes_the_user_may_not_make_fail_with_jiras_reason_and_change_nothing(
    small: tuple[JiraSandbox, tuple[SeedItem, ...], SandboxClock],
) -> None:
    sandbox, items, _ = small
    jira = connector(sandbox, items)
    pulled = {item.key: item for item in jira.pull(None)}
    epics = sandbox.rank_order(k for k, item in pulled.items() if item.level is Level.EPIC)
    target = [epics[0], *reversed(epics[1:4]), *epics[4:]]
    _, moves = plan_rank(WritePolicy(NAME, rank=True), pulled, target)
    scored = [pulled[key] for key in epics[:3]]
    sandbox.denied_permissions.add("SCHEDULE_ISSUES")
    sandbox.off_screen_fields.add(sandbox.field_id("WSJF Score"))

    plan = ConnectionPlan(NAME, tuple(score_writes(scored)), tuple(moves))
    results = list(jira.push(plan))

    assert results and {r.status for r in results} == {WriteStatus.FAILED}
    rank_errors = {r.error for r in results if r.write.field is WriteField.RANK}
    assert len(rank_errors) == 1 and "403" in rank_errors.pop()  # type: ignore[operator]
    score_errors = [r.error or "" for r in results if r.write.field is WriteField.WSJF_SCORE]
    assert len(score_errors) == 3
    assert all("not on the appropriate screen" in error for error in score_errors)
    assert sandbox.writes == [] and sandbox.rank_order(epics) == epics


def test_throttling_unavailability_and_resets_are_retried(flavour: str) -> None:
    items = portfolio(3000)
    faults = Faults(
        throttle_rate=0.15,
        unavailable_rate=0.1,
        reset_rate=0.03,
        retry_after_seconds=0,
        seed=23,
    )
    with JiraSandbox(items, flavour=flavour, faults=faults) as sandbox:  # type: ignore[arg-type]
        jira = connector(sandbox, items)
        pulled = list(jira.pull(None))
        writes = score_writes(sorted(pulled, key=lambda item: item.key)[:20])
        results = list(jira.push(ConnectionPlan(NAME, tuple(writes))))
        score_id = sandbox.field_id("WSJF Score")
        applied = [w for w in sandbox.writes if w.field == score_id]

    assert sorted(item.key for item in pulled) == sorted(item.key for item in items)
    assert {r.status for r in results} == {WriteStatus.WRITTEN}
    assert len(applied) == 20  # each write applied exactly once despite retries
    assert jira.stats.retries > 0 and jira.stats.throttled > 0
    assert jira.stats.rate_limit.get("RateLimit-Reason") == "jira-burst-based"
