"""Alignment figures per connection (`spm_sync.core.results_connections`): they add up to the
totals,
a Key Result covered in one tracker is still reported uncovered in the other, and the report
shows them in HTML and text."""

from __future__ import annotations

import json
import re

from reports.render import render_report
from spm_sync.core.domain import WorkItem
from spm_sync.core.results import CycleResult
from spm_sync.engines.alignment import align
from spm_sync.engines.alignment_rules import AlignmentRules, ConnectionAlignment
from spm_sync.pipeline.connection_figures import connection_figures
from spm_sync.pipeline.cycle_document import alignment_summary
from tests.report_fixtures import build_cycle_result
from tests.test_alignment import DONE, KEY_RESULTS, OBJECTIVES, item

JIRA, ADO, EMPTY = "jira", "ado", "ado-archive"
RULES = AlignmentRules(
    connections=(
        ConnectionAlignment(JIRA, key_result_types=("KR",)),
        ConnectionAlignment(ADO, key_result_types=("KR",)),
    )
)


def portfolio() -> list[WorkItem]:
    return [
        item("J-1", labels=("kr-growth-1",), job_size=5.0),
        item("J-2", labels=("kr-KR-7",), job_size=3.0),
        item("J-3", job_size=2.0),  # orphan
        item("J-4", labels=("kr-payments-3",), status_category=DONE),  # Done: moves nothing now
        item("J-KR", type="KR"),  # registered from Jira: Jira's to move, never Azure DevOps'
        item("A-1", connection=ADO, labels=("kr-growth-1",), job_size=8.0),
        item("A-2", connection=ADO),  # orphan, unsized
        item("A-3", connection=ADO, job_size=1.0),  # orphan
    ]


def test_blocks_add_up_to_the_totals_and_name_what_each_tracker_leaves_uncovered() -> None:
    result = align(portfolio(), KEY_RESULTS, RULES, OBJECTIVES)
    blocks = {b.name: b for b in connection_figures(result, [JIRA, ADO, EMPTY])}
    assert list(blocks) == [JIRA, ADO, EMPTY]
    jira, ado, empty = blocks[JIRA], blocks[ADO], blocks[EMPTY]
    assert (jira.in_scope_count, jira.aligned_count, jira.orphans) == (3, 2, 1)
    assert (ado.in_scope_count, ado.aligned_count, ado.orphans, ado.unsized_count) == (3, 1, 2, 1)
    assert ado.alignment_pct_items is not None and round(ado.alignment_pct_items, 3) == 33.333
    assert ado.alignment_pct_job_size is not None and round(ado.alignment_pct_job_size, 3) == (
        round(100 * 8 / 9, 3)
    )
    assert sum(b.in_scope_count for b in blocks.values()) == result.in_scope_count
    assert sum(b.aligned_count for b in blocks.values()) == result.aligned_count
    assert sum(b.orphans for b in blocks.values()) == len(result.orphans)
    assert sum(b.aligned_job_size for b in blocks.values()) == result.aligned_job_size
    # growth-1 is moved in both; KR-7 only in Jira, so the totals call it covered but
    # Azure DevOps lists it; J-KR belongs to Jira's unlisted objective, never to ADO's list.
    assert jira.uncovered_key_results == ["payments-3", "idle-9", "J-KR"]
    assert ado.uncovered_key_results == ["KR-7", "payments-3", "idle-9"]
    assert "KR-7" not in {u.kr_id for u in result.uncovered}
    assert (empty.in_scope_count, empty.alignment_pct_items, empty.alignment_pct_job_size) == (
        0,
        None,
        None,
    )


def test_the_json_document_carries_the_blocks_beside_the_totals() -> None:
    result = align(portfolio(), KEY_RESULTS, RULES, OBJECTIVES)
    items = {(i.connection, i.key): i for i in portfolio()}
    summary = alignment_summary(result, items, connections=[JIRA, ADO])
    document = json.loads(summary.model_dump_json())
    assert document["in_scope_count"] == 6
    assert [b["name"] for b in document["by_connection"]] == [JIRA, ADO]
    assert document["by_connection"][1]["uncovered_key_results"] == ["KR-7", "payments-3", "idle-9"]


def with_blocks(result: CycleResult) -> CycleResult:
    aligned = align(portfolio(), KEY_RESULTS, RULES, OBJECTIVES)
    blocks = connection_figures(aligned, [JIRA, ADO])
    return result.model_copy(
        update={"alignment": result.alignment.model_copy(update={"by_connection": blocks})}
    )


def test_the_report_shows_a_row_per_connection_in_html_and_text() -> None:
    rendered = render_report(with_blocks(build_cycle_result()))
    table = re.search(r'<table[^>]*data-section="by-connection".*?</table>', rendered.html, re.S)
    assert table is not None
    rows = re.findall(r'<tr[^>]*data-connection="([^"]+)"(.*?)</tr>', table.group(0), re.S)
    assert [name for name, _ in rows] == [JIRA, ADO]
    ado_row = re.sub(r"<[^>]+>", " ", rows[1][1])
    assert "33.3%" in ado_row and "88.9%" in ado_row and "KR-7, payments-3, idle-9" in ado_row
    lines = [line for line in rendered.text.splitlines() if line.strip().startswith(f"{ADO}:")]
    assert len(lines) == 1
    assert "3 in scope, aligned 33.3% by items (1), 88.9% by job size, 2 orphans" in lines[0]
    assert "3 Key Results nothing here moves (KR-7, payments-3, idle-9)" in lines[0]


def test_one_connection_needs_no_table() -> None:
    result = build_cycle_result()
    aligned = align([i for i in portfolio() if i.connection == JIRA], KEY_RESULTS, RULES)
    single = result.model_copy(
        update={
            "alignment": result.alignment.model_copy(
                update={"by_connection": connection_figures(aligned, [JIRA])}
            )
        }
    )
    rendered = render_report(single)
    assert 'data-section="by-connection"' not in rendered.html
    assert "By connection:" not in rendered.text
