"""The writing half of the connector contract: planned scores and ranks land in the tracker
within the documented number of requests, a second run writes nothing, an item a person
edited after planning is skipped as a conflict, and one item's failure stays its own."""

from __future__ import annotations

import pytest

from spm_sync.core.domain import ConnectionPlan, WriteField, WriteStatus
from spm_sync.engines.planning import WritePolicy, current_rank_order, plan_rank
from tests.contract.plans import (
    first,
    portfolio_items,
    replanned,
    score_plan,
    score_writes,
    write_requests,
)
from tests.contract.trackers import TrackerKit

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def test_score_writes_land_within_the_bound_and_a_second_run_writes_nothing(
    kit: TrackerKit,
) -> None:
    connector = kit.connector()
    writes = score_writes(kit.name, first(portfolio_items(connector), 6))
    plan = score_plan(kit.name, writes)
    before = connector.stats.requests

    results = list(connector.push(plan))

    assert sorted((r.write.item_key, r.status) for r in results) == sorted(
        (w.item_key, WriteStatus.WRITTEN) for w in writes
    )
    assert connector.stats.requests - before <= kit.push_bound(plan)
    assert {w.item_key: kit.stored_score(w.item_key) for w in writes} == {
        w.item_key: w.new for w in writes
    }
    assert sorted(kit.score_writes()) == sorted(w.item_key for w in writes)

    again = kit.connector()
    fresh = portfolio_items(again)
    assert [fresh[w.item_key].wsjf_score for w in writes] == [w.new for w in writes]
    rerun = list(again.push(replanned(kit.name, writes, fresh)))
    assert [r.status for r in rerun] == [WriteStatus.UNCHANGED] * len(writes)
    assert write_requests(again) == 0
    assert sorted(kit.score_writes()) == sorted(w.item_key for w in writes)


def test_the_same_plan_pushed_twice_writes_each_value_once(kit: TrackerKit) -> None:
    """A replayed plan (a run repeated after a crash) finds our own values: whatever it calls
    them, it writes none of them again and fails none."""
    connector = kit.connector()
    writes = score_writes(kit.name, first(portfolio_items(connector), 4))
    plan = score_plan(kit.name, writes)
    assert {r.status for r in connector.push(plan)} == {WriteStatus.WRITTEN}

    replay = list(kit.connector().push(plan))

    assert len(replay) == len(writes)
    assert WriteStatus.FAILED not in {r.status for r in replay}
    assert sorted(kit.score_writes()) == sorted(w.item_key for w in writes)
    assert [kit.stored_score(w.item_key) for w in writes] == [w.new for w in writes]


def test_a_rank_write_puts_the_items_in_the_planned_order(kit: TrackerKit) -> None:
    connector = kit.connector()
    items = portfolio_items(connector)
    current, _ = current_rank_order(items.values(), connector.rank_kind)
    assert len(current) >= 10
    target = [*current[5:8], *current[:5], *current[8:]]  # three items move to the top
    settings = WritePolicy(kit.name, rank_kind=connector.rank_kind, rank=True)
    writes, moves = plan_rank(settings, items, target)
    plan = ConnectionPlan(kit.name, tuple(writes), tuple(moves))
    rank_writes = [*writes, *(w for move in moves for w in move.writes)]
    assert {w.item_key for w in rank_writes} == set(current[5:8])
    if connector.rank_kind == "numeric":  # new rank values are field writes, never moves
        assert moves == [] and len(writes) == 3
    before = connector.stats.requests

    results = list(connector.push(plan))

    assert len(results) == len(rank_writes)
    assert {(r.write.field, r.status) for r in results} == {(WriteField.RANK, WriteStatus.WRITTEN)}
    assert connector.stats.requests - before <= kit.push_bound(plan)
    assert sorted(kit.rank_writes()) == sorted(current[5:8])  # only the moved items
    assert kit.score_writes() == []
    again = portfolio_items(kit.connector())
    assert current_rank_order(again.values(), connector.rank_kind)[0] == target
    assert plan_rank(settings, again, target) == ([], [])  # the next run has nothing to move


def test_an_item_a_person_edited_after_planning_is_a_conflict_and_keeps_the_edit(
    kit: TrackerKit,
) -> None:
    connector = kit.connector()
    planned = first(portfolio_items(connector), 5)
    writes = score_writes(kit.name, planned)
    edited = {planned[1].key, planned[3].key}
    for key in sorted(edited):
        kit.human_edit(key)
    titles = {key: kit.stored_title(key) for key in edited}

    results = {r.write.item_key: r for r in connector.push(score_plan(kit.name, writes))}

    assert {k for k, r in results.items() if r.status is WriteStatus.CONFLICT} == edited
    assert all(results[key].error for key in edited)  # the reason is reported
    written = {k for k, r in results.items() if r.status is WriteStatus.WRITTEN}
    assert written == {item.key for item in planned} - edited
    assert sorted(kit.score_writes()) == sorted(written)
    for item in planned:
        if item.key in edited:
            assert kit.stored_title(item.key) == titles[item.key]
            assert kit.stored_score(item.key) == item.wsjf_score


def test_an_edit_right_after_the_pull_read_the_item_is_a_conflict_too(kit: TrackerKit) -> None:
    """The person edits between our read and our write, with no clock tick in between."""
    victim = first(portfolio_items(kit.connector()), 2)[0].key
    kit.edit_after_next_read(victim)
    connector = kit.connector()
    planned = first(portfolio_items(connector), 2)
    assert planned[0].key == victim

    results = {
        r.write.item_key: r.status
        for r in connector.push(score_plan(kit.name, score_writes(kit.name, planned)))
    }

    assert results == {victim: WriteStatus.CONFLICT, planned[1].key: WriteStatus.WRITTEN}
    assert kit.score_writes() == [planned[1].key]


def test_an_item_that_cannot_be_written_fails_alone_with_its_reason(kit: TrackerKit) -> None:
    """The fault: the item is deleted between planning and writing, so the tracker refuses
    its write; the others of the same plan are written."""
    connector = kit.connector()
    planned = first(portfolio_items(connector), 4)
    writes = score_writes(kit.name, planned)
    broken = planned[2].key
    kit.delete(broken)

    results = {r.write.item_key: r for r in connector.push(score_plan(kit.name, writes))}

    assert sorted(results) == sorted(item.key for item in planned)
    assert results[broken].status is WriteStatus.FAILED
    assert results[broken].error
    others = [w for w in writes if w.item_key != broken]
    assert {results[w.item_key].status for w in others} == {WriteStatus.WRITTEN}
    assert [kit.stored_score(w.item_key) for w in others] == [w.new for w in others]
    assert sorted(kit.score_writes()) == sorted(w.item_key for w in others)
