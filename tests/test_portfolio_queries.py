"""Key Result queries: one batch per connection, answers pooled per Key Result across
connections, and turned into measurements (a count-only answer, an estimated count, a failure
on one of two connections)."""

from __future__ import annotations

from collections.abc import Sequence

from connectors.base import QueryAnswer, QueryMatch, QueryRefused, TrackerQuery
from spm_sync.config.okr_measures import KeyResultExtras
from spm_sync.engines.portfolio.measures import (
    MANUAL,
    Measure,
    MeasureKind,
    QueryCount,
    QueryFailed,
    QueryResult,
    measure_key_result,
)
from spm_sync.pipeline.portfolio_queries import QuerySource, ask, batches, outcomes

COUNT = Measure(MeasureKind.COUNT)
SHARE = Measure(MeasureKind.SHARE_DONE)
SUM = Measure(MeasureKind.SUM, "Points")


class Answering:
    """Answers every query from a table by text; records the batches it was asked."""

    def __init__(self, table: dict[str, QueryAnswer | QueryRefused]) -> None:
        self.table = table
        self.asked: list[list[TrackerQuery]] = []

    def run_queries(self, queries: Sequence[TrackerQuery]) -> dict[str, QueryAnswer | QueryRefused]:
        self.asked.append(list(queries))
        return {q.ident: self.table[q.text] for q in queries if q.text in self.table}


MEASURED = {
    "KR-1": KeyResultExtras(measure=COUNT, queries={"jira": "j1", "ado": "a1"}),
    "KR-2": KeyResultExtras(measure=SHARE, queries={"jira": "j2", "ado": "a2"}),
    "KR-3": KeyResultExtras(measure=SUM, queries={"jira": "j3"}),
    "KR-4": KeyResultExtras(measure=MANUAL),
}


def test_one_batch_per_connection_with_what_each_measure_needs() -> None:
    found = batches(MEASURED)
    assert found == {
        "jira": [
            TrackerQuery("KR-1", "j1", "count"),
            TrackerQuery("KR-2", "j2", "items"),
            TrackerQuery("KR-3", "j3", "items", "Points"),
        ],
        "ado": [TrackerQuery("KR-1", "a1", "count"), TrackerQuery("KR-2", "a2", "items")],
    }


def test_answers_are_pooled_across_connections() -> None:
    jira = Answering(
        {
            "j1": QueryAnswer(7, approximate=True),
            "j2": QueryAnswer(2, matches=(QueryMatch("P-1", True), QueryMatch("P-2", False))),
            "j3": QueryAnswer(2, matches=(QueryMatch("P-1", True, 5.0), QueryMatch("P-3", False))),
        }
    )
    ado = Answering({"a1": QueryAnswer(3), "a2": QueryAnswer(1, matches=(QueryMatch("9", True),))})
    answers, runs = ask(batches(MEASURED), {"jira": QuerySource(jira), "ado": QuerySource(ado)})
    assert (len(jira.asked), len(ado.asked)) == (1, 1)
    assert [(r.connection, r.queries, r.failed) for r in runs] == [("jira", 3, 0), ("ado", 2, 0)]
    found = outcomes(MEASURED, answers)
    assert found["KR-1"] == QueryCount(10, approximate=True)
    share = found["KR-2"]
    assert isinstance(share, QueryResult)
    assert [(m.ref, m.done) for m in share.items] == [
        (("jira", "P-1"), True),
        (("jira", "P-2"), False),
        (("ado", "9"), True),
    ]
    assert "KR-4" not in found
    kr1 = measure_key_result("KR-1", COUNT, found["KR-1"], target=20, baseline=0)
    assert (kr1.current, kr1.progress_pct, kr1.notes) == (
        10,
        50,
        ("the tracker's count is an estimate",),
    )
    kr2 = measure_key_result("KR-2", SHARE, share, target=100, baseline=0)
    assert kr2.current == 66.7
    kr3 = measure_key_result("KR-3", SUM, found["KR-3"], target=10, baseline=0)
    assert (kr3.current, kr3.notes) == (
        5,
        ("1 of 2 matched items have no usable Points: left out of the sum",),
    )


def test_one_failing_connection_fails_the_key_result_with_both_reasons() -> None:
    jira = Answering({"j1": QueryRefused("Field 'x' does not exist")})
    ado = Answering({"a1": QueryAnswer(3)})
    answers, runs = ask(
        {"jira": batches(MEASURED)["jira"][:1], "ado": batches(MEASURED)["ado"][:1]},
        {"jira": QuerySource(jira), "ado": QuerySource(ado)},
    )
    found = outcomes({"KR-1": MEASURED["KR-1"]}, answers)
    assert found["KR-1"] == QueryFailed("jira refused it: Field 'x' does not exist")
    assert [(r.connection, r.failed) for r in runs] == [("jira", 1), ("ado", 0)]


def test_unanswered_and_count_only_answers_are_failures_not_zeros() -> None:
    jira = Answering({"j2": QueryAnswer(4)})  # items asked, a count given; j3 not answered
    answers, _ = ask(
        {"jira": batches(MEASURED)["jira"][1:]},
        {"jira": QuerySource(jira)},
    )
    found = outcomes({k: MEASURED[k] for k in ("KR-2", "KR-3")}, answers)
    assert found == {
        # KR-2 also queries ado, which this batch left out: named too.
        "KR-2": QueryFailed(
            "jira answered with a count only; the items were needed; ado: not asked"
        ),
        "KR-3": QueryFailed("jira gave no answer to it"),
    }
    # A count handed to a sum measure is a problem of the measure, never a value.
    summed = measure_key_result("KR-3", SUM, QueryCount(4), target=10, baseline=0)
    assert summed.current is None
    assert summed.problems == (
        "the sum(Points) query was answered with a count only: sum(Points) needs the matched items",
    )


def test_an_unknown_or_unusable_connection_is_not_asked() -> None:
    asked = Answering({})
    answers, runs = ask(
        batches(MEASURED), {"jira": QuerySource(asked, "the tracker went away mid-pull")}
    )
    assert asked.asked == []
    assert runs[0].error == "jira is not usable this run (the tracker went away mid-pull)"
    assert runs[1].error == "no connection named 'ado'"
    found = outcomes(MEASURED, answers)
    assert isinstance(found["KR-1"], QueryFailed)
    assert found["KR-1"].reason == (
        "jira is not usable this run (the tracker went away mid-pull); no connection named 'ado'"
    )
