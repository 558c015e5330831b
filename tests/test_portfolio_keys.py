"""Key Result queries answered from the pulled items: which measures ask for keys, how the
store's done-ness and values fill the answer, and the follow-up for the matches the store
lacks (only those, one query per connection and summed field, a failure only for the Key
Results that needed it)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from connectors.base import QueryAnswer, QueryMatch, QueryRefused, TrackerQuery
from spm_sync.config.okr_measures import KeyResultExtras
from spm_sync.core.domain import StatusCategory, WorkItem
from spm_sync.engines.portfolio.measures import Measure, MeasureKind, QueryFailed, QueryResult
from spm_sync.pipeline.portfolio_keys import StoreView
from spm_sync.pipeline.portfolio_queries import QuerySource, ask, batches, outcomes
from tests.cycle_fixtures import three_epics

SHARE = Measure(MeasureKind.SHARE_DONE)
POINTS = Measure(MeasureKind.SUM, "Points")
VALUE = Measure(MeasureKind.SUM, "Business Value")
OTHER = Measure(MeasureKind.SUM, "Story Points")
STORED = {"points": "job_size", "business value": "business_value"}


class Tracker:
    """Answers keys queries from `keys` by text, items queries (the follow-ups) from
    `outside`: the items of `key in ("...")` texts, with done-ness and the field's value."""

    def __init__(
        self,
        keys: dict[str, tuple[str, ...]],
        outside: dict[str, QueryMatch],
        *,
        refuse: bool = False,
        fail: bool = False,
    ) -> None:
        self.keys = keys
        self.outside = outside
        self.refuse = refuse
        self.fail = fail
        self.asked: list[list[TrackerQuery]] = []

    def run_queries(self, queries: Sequence[TrackerQuery]) -> dict[str, QueryAnswer | QueryRefused]:
        self.asked.append(list(queries))
        answers: dict[str, QueryAnswer | QueryRefused] = {}
        for query in queries:
            if query.want == "keys":
                found = self.keys[query.text]
                answers[query.ident] = QueryAnswer(len(found), keys=found)
                continue
            if self.fail:
                raise TimeoutError("the tracker did not answer in 30 s")
            if self.refuse:
                answers[query.ident] = QueryRefused("The value 'X-9' does not exist.")
                continue
            named = [m for key, m in self.outside.items() if f'"{key}"' in query.text]
            answers[query.ident] = QueryAnswer(len(named), matches=tuple(named))
        return answers


def store() -> StoreView:
    items = three_epics("alpha")  # E1 (bv 8, size 8), E2 (bv 13, size 3), E3 (bv 3, size 13)
    items["E2"] = dataclasses.replace(items["E2"], status_category=StatusCategory.DONE)
    return StoreView(
        {(item.connection, item.key): item for item in items.values()},
        {"alpha": "jql"},
        lambda _, field: STORED.get(field.casefold()),
    )


def measured(**kinds: Measure) -> dict[str, KeyResultExtras]:
    return {kr: KeyResultExtras(measure=m, queries={"alpha": kr}) for kr, m in kinds.items()}


def test_share_done_and_sums_of_stored_fields_ask_for_keys_the_others_for_items() -> None:
    plan = measured(
        share=SHARE, points=POINTS, other=OTHER, count=Measure(MeasureKind.COUNT)
    )
    plan["elsewhere"] = KeyResultExtras(measure=SHARE, queries={"beta": "x"})

    asked = batches(plan, store())

    assert [(q.ident, q.want, q.field) for q in asked["alpha"]] == [
        ("share", "keys", None),
        ("points", "keys", "Points"),  # the field rides along for the follow-up
        ("other", "items", "Story Points"),  # the store keeps no such field
        ("count", "count", None),
    ]
    assert [q.want for q in asked["beta"]] == ["items"]  # no query language known for beta
    assert [q.want for q in batches(plan)["alpha"]] == ["items", "items", "items", "count"]


def test_matches_the_store_holds_cost_no_follow_up() -> None:
    plan = measured(share=SHARE, points=POINTS)
    tracker = Tracker({"share": ("E1", "E2"), "points": ("E2", "E3")}, {})
    view = store()

    answers, runs = ask(batches(plan, view), {"alpha": QuerySource(tracker)}, view)

    assert len(tracker.asked) == 1
    found = outcomes(plan, answers)
    share = found["share"]
    points = found["points"]
    assert isinstance(share, QueryResult) and isinstance(points, QueryResult)
    assert [(m.ref[1], m.done, m.value) for m in share.items] == [
        ("E1", False, None),
        ("E2", True, None),
    ]
    assert [(m.ref[1], m.value) for m in points.items] == [("E2", 3.0), ("E3", 13.0)]
    assert [(r.queries, r.failed) for r in runs] == [(2, 0)]


def test_only_the_missing_matches_are_read_once_per_summed_field() -> None:
    plan = measured(share=SHARE, points=POINTS, value=VALUE)
    outside = {"X-1": QueryMatch("X-1", True, 5.0), "X-2": QueryMatch("X-2", False, None)}
    tracker = Tracker(
        {"share": ("E1", "X-1"), "points": ("E3", "X-1", "X-2"), "value": ("X-2", "E2")},
        outside,
    )
    view = store()

    answers, _ = ask(batches(plan, view), {"alpha": QuerySource(tracker)}, view)

    keys_batch, follow_up = tracker.asked
    assert [q.want for q in keys_batch] == ["keys", "keys", "keys"]
    assert [(q.want, q.field, q.text) for q in follow_up] == [
        ("items", "Points", 'key in ("X-1", "X-2")'),
        ("items", "Business Value", 'key in ("X-1", "X-2")'),
    ]
    found = outcomes(plan, answers)
    share, points, value = found["share"], found["points"], found["value"]
    assert isinstance(share, QueryResult)
    assert [(m.ref[1], m.done, m.value) for m in share.items] == [
        ("E1", False, None),
        ("X-1", True, None),  # done from the follow-up; a share carries no value
    ]
    assert isinstance(points, QueryResult)
    assert [(m.ref[1], m.value) for m in points.items] == [
        ("E3", 13.0),
        ("X-1", 5.0),
        ("X-2", None),
    ]
    assert isinstance(value, QueryResult)
    assert [(m.ref[1], m.value) for m in value.items] == [("X-2", None), ("E2", 13.0)]


def test_a_refused_follow_up_fails_only_the_key_results_that_needed_it() -> None:
    plan = measured(inside=SHARE, outside=SHARE)
    tracker = Tracker({"inside": ("E1", "E2"), "outside": ("E3", "X-9")}, {}, refuse=True)
    view = store()

    answers, runs = ask(batches(plan, view), {"alpha": QuerySource(tracker)}, view)

    found = outcomes(plan, answers)
    assert isinstance(found["inside"], QueryResult)
    assert found["outside"] == QueryFailed(
        "alpha refused it: reading its matches outside the synced items (1) failed: "
        "The value 'X-9' does not exist."
    )
    assert [(r.queries, r.failed, r.error) for r in runs] == [(2, 1, None)]


def test_a_follow_up_that_raises_is_a_reason_not_a_crash() -> None:
    plan = measured(inside=SHARE, outside=SHARE)
    tracker = Tracker({"inside": ("E1",), "outside": ("X-9",)}, {}, fail=True)
    view = store()

    answers, _ = ask(batches(plan, view), {"alpha": QuerySource(tracker)}, view)

    found = outcomes(plan, answers)
    assert isinstance(found["inside"], QueryResult)
    failed = found["outside"]
    assert isinstance(failed, QueryFailed)
    assert failed.reason.endswith("TimeoutError: the tracker did not answer in 30 s")


def test_a_match_the_follow_up_no_longer_finds_is_left_out() -> None:
    plan = measured(share=SHARE)
    tracker = Tracker({"share": ("E2", "X-gone")}, {})
    view = store()

    answers, _ = ask(batches(plan, view), {"alpha": QuerySource(tracker)}, view)

    share = outcomes(plan, answers)["share"]
    assert isinstance(share, QueryResult)
    assert [m.ref[1] for m in share.items] == ["E2"]


def test_stored_items_must_be_of_the_connection() -> None:
    other: WorkItem = dataclasses.replace(three_epics("beta")["E1"], key="X-1")
    view = store()
    view = StoreView({**view.items, ("beta", "X-1"): other}, view.languages, view.attribute_of)
    plan = measured(share=SHARE)
    tracker = Tracker({"share": ("X-1",)}, {"X-1": QueryMatch("X-1", True)})

    answers, _ = ask(batches(plan, view), {"alpha": QuerySource(tracker)}, view)

    assert len(tracker.asked) == 2  # beta's X-1 is not alpha's
    share = outcomes(plan, answers)["share"]
    assert isinstance(share, QueryResult) and [m.done for m in share.items] == [True]
