"""The cycle result document: JSON round trip, derived figures, strictness, domain helpers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from spm_sync.core.domain import (
    Level,
    PlannedWrite,
    StatusCategory,
    WorkItem,
    WriteField,
    WriteResult,
    WriteStatus,
)
from spm_sync.core.requests import RequestStats
from spm_sync.core.results import CycleResult, Headline, WipLane, WsjfRow
from spm_sync.core.results_alignment import (
    AlignedItem,
    AlignmentSummary,
    KeyResultAlignment,
    Orphan,
)
from spm_sync.core.results_health import ConnectionHealth
from spm_sync.core.results_writes import WriteLog, WriteRow
from tests.report_fixtures import build_cycle_result

T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def _item(**changes: object) -> WorkItem:
    values: dict[str, object] = dict(
        connection="jira-cloud",
        key="PAY-7",
        id="10007",
        type="Epic",
        level=Level.EPIC,
        title="SEPA Direct Debit",
        status="In Development",
        status_category=StatusCategory.IN_PROGRESS,
        updated=T0,
        revision="2026-03-02T06:00:00.000+0000",
        team="Payments",
        url="https://acme.atlassian.net/browse/PAY-7",
        job_size=13.0,
    )
    values.update(changes)
    return WorkItem(**values)  # type: ignore[arg-type]


def test_round_trip_through_json_is_lossless() -> None:
    result = build_cycle_result(orphans=40)
    text = result.model_dump_json()
    again = CycleResult.model_validate_json(text)
    assert again == result
    assert again.model_dump_json() == text
    assert again.headline == result.headline


def test_json_carries_the_derived_figures_for_readers_of_run_json() -> None:
    result = build_cycle_result()
    document = json.loads(result.model_dump_json())
    headline = document["headline"]
    assert headline["orphans"] == 18 == len(result.alignment.orphans)
    # KR1.3 and KR3.2 have no items; KR3.1 has only Done work, which no longer moves it.
    assert headline["uncovered_key_results"] == 3
    assert headline["unscored"] == sum(1 for row in result.wsjf if row.wsjf is None) == 6
    assert headline["writes_applied"] == document["writes"]["counts"]["written"] == 36
    assert headline["write_conflicts"] == 2
    assert document["alignment"]["uncovered_key_results"] == ["KR1.3", "KR3.1", "KR3.2"]
    kr = document["alignment"]["objectives"][0]["key_results"][1]
    assert kr["status_mix"] == {"To Do": 1, "In Progress": 3, "Done": 0}
    assert kr["job_size_total"] == 76
    assert document["finished"] == "2026-03-02T06:14:37Z"


def test_tampered_derived_figures_are_recomputed_from_the_rows() -> None:
    document = json.loads(build_cycle_result().model_dump_json())
    document["headline"]["orphans"] = 0
    document["headline"]["writes_planned"] = 1
    document["writes"]["total"] = 1
    document["alignment"]["objectives"][0]["key_results"][0]["at_risk"] = True
    document["alignment"]["objectives"][0]["key_results"][0]["items_omitted"] = 40
    again = CycleResult.model_validate(document)
    assert again.headline.orphans == 18
    assert again.headline.writes_planned == again.writes.total == len(again.writes.rows) == 42
    assert again.alignment.objectives[0].key_results[0].at_risk is False
    assert again.alignment.objectives[0].key_results[0].items_omitted == 0


def test_stored_totals_must_cover_the_listed_rows() -> None:
    """Totals of the capped lists are stored (the rows may be the first few), so they cannot
    be recomputed; totals smaller than the rows the document lists are refused."""
    document = json.loads(build_cycle_result().model_dump_json())
    document["writes"]["counts"]["written"] = 3  # 36 written rows are listed
    with pytest.raises(ValidationError, match="outnumber counts"):
        CycleResult.model_validate(document)
    document = json.loads(build_cycle_result().model_dump_json())
    key_result = document["alignment"]["objectives"][0]["key_results"][1]
    key_result["item_count"] = 2  # 4 items listed
    key_result["status_mix"] = {"To Do": 0, "In Progress": 2, "Done": 0}
    with pytest.raises(ValidationError, match="more than the totals"):
        CycleResult.model_validate(document)
    key_result["item_count"] = 9  # the mix adds up to 2
    with pytest.raises(ValidationError, match="adds up to 2, not item_count 9"):
        CycleResult.model_validate(document)


def test_unknown_keys_are_rejected_so_pipeline_typos_fail_loudly() -> None:
    document = json.loads(build_cycle_result().model_dump_json())
    document["alignment"]["orphan_count"] = 3
    with pytest.raises(ValidationError, match="orphan_count"):
        CycleResult.model_validate(document)


def test_times_must_be_aware_and_are_stored_in_utc() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        CycleResult(run_id="r", started=datetime(2026, 1, 1), finished=T0, status="ok", mode="plan")
    berlin = timezone(timedelta(hours=1))
    result = CycleResult(
        run_id="r",
        started=datetime(2026, 3, 2, 7, 0, tzinfo=berlin),
        finished=datetime(2026, 3, 2, 7, 30, tzinfo=berlin),
        status="ok",
        mode="plan",
    )
    assert result.started == T0 and result.started.tzinfo == UTC
    with pytest.raises(ValidationError, match="before started"):
        CycleResult(run_id="r", started=T0, finished=T0 - timedelta(1), status="ok", mode="plan")


def test_status_and_mode_are_closed_sets() -> None:
    with pytest.raises(ValidationError):
        CycleResult(run_id="r", started=T0, finished=T0, status="done", mode="plan")
    with pytest.raises(ValidationError):
        CycleResult(run_id="r", started=T0, finished=T0, status="ok", mode="dry-run")


def test_headline_delta_against_previous_run() -> None:
    now = Headline(alignment_pct_items=62.5, alignment_pct_job_size=None, orphans=10, unscored=2)
    before = Headline(alignment_pct_items=60.1, alignment_pct_job_size=55.0, orphans=14)
    delta = now.delta(before)
    assert delta is not None
    assert delta.alignment_pct_items == pytest.approx(2.4)
    assert delta.alignment_pct_job_size is None
    assert delta.orphans == -4
    assert delta.unscored == 2
    assert now.delta(None) is None


def test_change_is_none_on_a_first_run() -> None:
    first = build_cycle_result(first_run=True)
    assert first.previous is None and first.change is None
    later = build_cycle_result()
    assert later.change is not None
    assert later.change.orphans == -3


def test_key_result_at_risk_when_no_active_work_moves_it() -> None:
    done = AlignedItem(
        connection="j", key="A-1", title="t", status_category=StatusCategory.DONE, via="label"
    )
    doing = done.model_copy(update={"status_category": StatusCategory.IN_PROGRESS})
    assert KeyResultAlignment(id="KR", title="t").at_risk
    assert KeyResultAlignment(id="KR", title="t", target=5, current=2, items=[done]).uncovered
    assert KeyResultAlignment(id="KR", title="t", target=5, current=2, items=[done]).at_risk
    assert not KeyResultAlignment(
        id="KR", title="t", target=5, current=2, items=[done, doing]
    ).at_risk


def test_progress_runs_from_baseline_to_target_in_either_direction() -> None:
    def kr(**values: float) -> KeyResultAlignment:
        return KeyResultAlignment(id="KR", title="t", **values)

    assert kr(baseline=10, target=20, current=16).progress_pct == 60.0
    assert kr(baseline=3.5, target=2, current=2.9).progress_pct == 40.0  # lower is better
    assert kr(baseline=3.5, target=2, current=4).progress_pct == -33.3  # the wrong way
    assert kr(baseline=10, target=20, current=25).progress_pct == 150.0
    assert kr(target=20, current=16).progress_pct is None  # no baseline: direction unknown
    # Nothing moves either, but only the one short of its target is at risk.
    assert kr(baseline=3.5, target=2, current=2.9).at_risk
    assert not kr(baseline=3.5, target=2, current=1.8).at_risk
    assert kr(target=2, current=1.8).at_risk  # met or not is unknown without a baseline


def test_alignment_counts_must_be_consistent() -> None:
    with pytest.raises(ValidationError, match="exceeds"):
        AlignmentSummary(in_scope_count=3, aligned_count=4)
    with pytest.raises(ValidationError):
        AlignmentSummary(alignment_pct_items=101.0)


def test_unscored_wsjf_row_needs_a_reason() -> None:
    with pytest.raises(ValidationError, match="reason_unscored"):
        WsjfRow(connection="j", key="A-1", title="t")
    row = WsjfRow(connection="j", key="A-1", title="t", wsjf=2.5, old_rank=7, new_rank=3)
    assert row.scored and row.movement == 4


def test_items_and_orphans_from_work_items_keep_level_as_label() -> None:
    item = _item()
    aligned = AlignedItem.from_work_item(item, via="parent", path=("PAY-7", "PAY-1"))
    assert aligned.level == "epic"
    assert json.loads(aligned.model_dump_json())["level"] == "epic"
    orphan = Orphan.from_work_item(_item(level=None, team=None), reason="no OKR label")
    assert orphan.level is None and orphan.team is None
    assert orphan.status_category is StatusCategory.IN_PROGRESS


def test_write_rows_from_planned_writes_and_results() -> None:
    planned = PlannedWrite("ado", "4711", WriteField.LABELS, ("a",), ("a", "okr-orphan"), "7")
    row = WriteRow.from_planned(planned)
    assert row.status == "planned" and row.new == ("a", "okr-orphan")
    done = WriteRow.from_result(WriteResult(planned, WriteStatus.CONFLICT, error="rev 8"))
    assert done.status == "conflict" and done.error == "rev 8"
    log = WriteLog(rows=[row, done])
    assert log.counts == {"planned": 1, "written": 0, "unchanged": 0, "conflict": 1, "failed": 0}
    again = WriteLog.model_validate_json(log.model_dump_json())
    assert again.rows[0].new == ("a", "okr-orphan")


def test_connection_health_from_request_stats() -> None:
    stats = RequestStats()
    for endpoint in ("GET /rest/api/3/search/jql", "GET /rest/api/3/search/jql", "GET /f"):
        stats.count(endpoint)
    stats.retried(1.5, throttled=True)
    stats.saw_rate_limit_headers({"X-RateLimit-Remaining": "12"})
    health = ConnectionHealth.from_stats("jira", "jira", stats, items_pulled=40)
    assert health.requests_total == 3
    assert health.requests_by_endpoint["GET /rest/api/3/search/jql"] == 2
    assert (health.retries, health.throttled, health.waited_seconds) == (1, 1, 1.5)
    assert health.rate_limit == {"X-RateLimit-Remaining": "12"}
    implicit = ConnectionHealth(name="a", kind="jira", requests_by_endpoint={"GET /x": 4})
    assert implicit.requests_total == 4


def test_wip_breaches_only_where_a_limit_is_exceeded() -> None:
    lane = WipLane(
        team="Payments",
        counts={StatusCategory.IN_PROGRESS: 5, StatusCategory.TODO: 3},
        limits={StatusCategory.IN_PROGRESS: 4, StatusCategory.TODO: 3},
    )
    assert lane.breaches == [StatusCategory.IN_PROGRESS]


def test_trend_point_of_this_run() -> None:
    result = build_cycle_result()
    point = result.trend_point()
    assert point.run_id == "run-100" and point.orphans == 18
    assert point.alignment_pct_items == result.alignment.alignment_pct_items
    assert result.trend[-1] == point
