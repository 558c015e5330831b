"""The result document's capped lists: Key Result items and write rows are listed up to a cap,
with totals over every row, in the order the report shows them; version 1 documents (every
row, no totals) are still read; the report counts what the document does not list."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from reports.render import render_report
from spm_sync.core.domain import (
    ConnectionPlan,
    KeyResult,
    Level,
    Objective,
    PlannedWrite,
    StatusCategory,
    WorkItem,
    WriteField,
    WriteResult,
    WriteStatus,
)
from spm_sync.core.results import CycleResult, ListCaps
from spm_sync.core.results_alignment import KeyResultAlignment
from spm_sync.core.results_writes import WriteLog, write_row_order
from spm_sync.engines.alignment import align
from spm_sync.engines.alignment_rules import AlignmentRules, ConnectionAlignment
from spm_sync.pipeline.cycle_document import alignment_summary, read_write_log, write_log
from spm_sync.store import AuditStatus, Store
from tests.report_fixtures import build_cycle_result

NOW = datetime(2026, 3, 1, tzinfo=UTC)
TODO, DOING, DONE = StatusCategory.TODO, StatusCategory.IN_PROGRESS, StatusCategory.DONE
OBJECTIVES = (Objective("O1", "Grow revenue"),)
KEY_RESULTS = (
    KeyResult("KR-1", "O1", "Trial conversion 6%"),
    KeyResult("KR-2", "O1", "Churn below 2%"),
)
RULES = AlignmentRules(connections=(ConnectionAlignment("jira"),))


def epic(key: str, kr: str, status: StatusCategory, size: float | None, **fields: Any) -> WorkItem:
    return WorkItem(
        connection="jira",
        key=key,
        id=key,
        type="Epic",
        level=Level.EPIC,
        title=f"title of {key}",
        status=status.value,
        status_category=status,
        updated=NOW,
        revision="1",
        labels=(f"kr-{kr}",),
        job_size=size,
        **fields,
    )


def portfolio() -> list[WorkItem]:
    """KR-1: 12 items of every status, sizes including unusable ones; KR-2: 5 done items."""
    sizes = [8.0, 3.0, None, 13.0, -5.0, 1.0, 20.0, 5.0, 2.0, float("nan"), 21.0, 8.0]
    statuses = [DOING, TODO, DOING, DONE, DOING, TODO, DONE, DOING, TODO, TODO, TODO, DOING]
    items = [
        epic(f"G-{n}", "KR-1", status, size)
        for n, (status, size) in enumerate(zip(statuses, sizes, strict=True))
    ]
    return items + [epic(f"D-{n}", "KR-2", DONE, 3.0) for n in range(5)]


def summary(cap: int) -> dict[str, KeyResultAlignment]:
    items = portfolio()
    result = align(items, KEY_RESULTS, RULES, OBJECTIVES)
    by_ref = {(item.connection, item.key): item for item in items}
    found = alignment_summary(result, by_ref, kr_items_cap=cap)
    return {kr.id: kr for kr in found.objectives[0].key_results}


def test_key_result_lists_its_first_items_and_counts_all_of_them() -> None:
    kr = summary(cap=4)["KR-1"]
    # Totals over all 12; negative, NaN and missing sizes count as no size.
    assert kr.item_count == 12
    assert kr.status_mix == {TODO: 5, DOING: 5, DONE: 2}
    assert kr.job_size_total == 8 + 3 + 13 + 1 + 20 + 5 + 2 + 21 + 8
    # Listed: work in progress first, biggest first (G-0 and G-11 tie at 8: by key).
    assert [item.key for item in kr.items] == ["G-0", "G-11", "G-7", "G-2"]
    assert kr.items_omitted == 8 and not kr.uncovered
    assert json.loads(kr.model_dump_json())["items_omitted"] == 8


def test_a_capped_key_result_of_done_work_is_still_uncovered() -> None:
    capped, complete = summary(cap=2)["KR-2"], summary(cap=100)["KR-2"]
    assert len(capped.items) == 2 and capped.item_count == 5
    assert capped.uncovered and capped.at_risk
    assert complete.items_omitted == 0 and complete.uncovered
    assert complete.status_mix == capped.status_mix == {TODO: 0, DOING: 0, DONE: 5}


def test_cap_zero_lists_nothing_but_keeps_the_figures() -> None:
    kr = summary(cap=0)["KR-1"]
    assert kr.items == [] and kr.item_count == 12 and kr.status_mix[DOING] == 5


def test_capped_document_round_trips_through_json() -> None:
    result = build_cycle_result()
    capped = summary(cap=3)["KR-1"]
    result.alignment.objectives[0].key_results[0] = capped
    rows = sorted(result.writes.rows, key=write_row_order)
    result.writes = WriteLog(rows=rows[:5], counts=result.writes.counts)
    result.caps = ListCaps(kr_items=3, writes=5)
    document = json.loads(result.model_dump_json())
    assert document["schema_version"] == 2
    assert document["caps"] == {"kr_items": 3, "writes": 5}
    assert document["writes"]["total"] == 42 and document["writes"]["rows_omitted"] == 37
    assert document["headline"]["writes_planned"] == 42
    again = CycleResult.model_validate(document)
    assert again == result
    assert again.alignment.objectives[0].key_results[0].item_count == 12


def test_version_1_documents_get_their_totals_from_their_rows() -> None:
    """A document stored before the caps: every row listed, totals derived."""
    document = json.loads(build_cycle_result().model_dump_json())
    document["schema_version"] = 1
    del document["caps"], document["writes"]["total"], document["writes"]["rows_omitted"]
    for objective in document["alignment"]["objectives"]:
        for kr in objective["key_results"]:
            del kr["item_count"], kr["items_omitted"], kr["status_mix"], kr["job_size_total"]
    del document["writes"]["counts"]
    old = CycleResult.model_validate(document)
    assert old.schema_version == 1 and old.caps is None
    kr = old.alignment.objectives[0].key_results[1]
    assert (kr.item_count, kr.job_size_total) == (4, 76)
    assert kr.status_mix == {TODO: 1, DOING: 3, DONE: 0}
    assert old.writes.counts["written"] == 36 and old.writes.total == len(old.writes.rows)
    assert old.headline == build_cycle_result().headline


# --- the write log, read from the audit log --------------------------------------------------

KEYS = ("a-10", "A-9", "b_2", "B-1", "a-2", "Z-3", "c.4", "a 1")
"""Mixed case, digits and punctuation: a locale collation sorts these unlike Python does."""


def recorded_run(store: Store) -> int:
    """48 writes over two connections: 2 failed, 3 conflicts, 6 written, 37 still planned."""
    run_id = store.start_run("apply")
    fields = (WriteField.WSJF_SCORE, WriteField.COST_OF_DELAY, WriteField.PRIORITY)
    plans = {
        connection: tuple(
            PlannedWrite(connection, key, field, 1.0, 2.0, "r1") for key in KEYS for field in fields
        )
        for connection in ("jira", "ado")
    }
    for connection, writes in plans.items():
        store.record_plan(run_id, ConnectionPlan(connection, writes=writes))
    outcomes = [WriteStatus.FAILED] * 2 + [WriteStatus.CONFLICT] * 3 + [WriteStatus.WRITTEN] * 6
    tried = [plans["ado"][n * 2] for n in range(6)] + list(plans["jira"][:5])
    results = [WriteResult(w, status, error="e") for w, status in zip(tried, outcomes, strict=True)]
    store.record_write_results(run_id, results)
    return run_id


def test_write_log_lists_failures_first_and_counts_every_write(store: Store) -> None:
    run_id = recorded_run(store)
    log = read_write_log(store, run_id, cap=8)
    assert log.counts == {"planned": 37, "written": 6, "unchanged": 0, "conflict": 3, "failed": 2}
    assert log.total == 48 and len(log.rows) == 8 and log.rows_omitted == 40
    assert [row.status for row in log.rows] == ["failed"] * 2 + ["conflict"] * 3 + ["written"] * 3
    # The database picked the same rows, in the same order, as a sort of the whole log would
    # (on PostgreSQL too, whose locale collation orders "a-10", "A-9", "b_2" differently).
    everything = write_log(store.audit_rows(run_id), cap=8)
    assert log.rows == everything.rows == sorted(everything.rows, key=write_row_order)
    planned = read_write_log(store, run_id, cap=20).rows[11:]
    assert [row.key for row in planned] == sorted(row.key for row in planned)
    assert store.audit_counts(run_id)[AuditStatus.PLANNED] == 37


def test_write_log_of_a_small_run_is_complete(store: Store) -> None:
    run_id = recorded_run(store)
    log = read_write_log(store, run_id)
    assert len(log.rows) == log.total == 48 and log.rows_omitted == 0
    assert {(row.connection, row.key, row.field) for row in log.rows} == {
        (row.write.connection, row.write.item_key, row.write.field)
        for row in store.audit_rows(run_id)
    }
    assert read_write_log(store, store.start_run("plan")).counts == dict.fromkeys(
        ("planned", "written", "unchanged", "conflict", "failed"), 0
    )


# --- the report -------------------------------------------------------------------------------


def capped_result() -> CycleResult:
    result = build_cycle_result()
    result.alignment.objectives[0].key_results[0] = summary(cap=3)["KR-1"]
    rows = sorted(result.writes.rows, key=write_row_order)
    result.writes = WriteLog(rows=rows[:30], counts=result.writes.counts)
    result.caps = ListCaps(kr_items=3, writes=30)
    return result


def test_the_report_counts_what_the_document_does_not_list() -> None:
    rendered = render_report(capped_result())
    assert "KR-1" in rendered.full_html
    assert "12 items: 5 to do · 5 in progress · 2 done · job size 81" in rendered.full_html
    assert "and 9 more items" in rendered.full_html  # 12 counted, 3 listed
    assert "and 12 more writes" in rendered.full_html  # 42 counted, 30 listed
    assert "42 writes planned" in rendered.full_html
    for text in (rendered.full_html, rendered.text):
        assert "9 more are counted in their totals and kept in the store with run run-100" in text
        assert "lists 30 of 42 writes" in text
        assert "`spm-sync report --run run-100` prints every one" in text


def test_an_uncapped_document_has_no_stored_only_notes() -> None:
    rendered = render_report(build_cycle_result())
    assert "kept in the store" not in rendered.full_html
    assert "prints every one" not in rendered.text
