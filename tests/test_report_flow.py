"""Flow in the report: value-stream metrics, the Portfolio Kanban, forecasts, ageing work and
flow problems, rendered from real result documents and checked against their numbers."""

from __future__ import annotations

import re

import pytest

from reports.email import compose_email
from reports.flow_view import format_days, value_streams
from reports.render import RenderedReport, render_report
from spm_sync.core.results import CycleResult
from tests.report_fixtures import HOSTILE_TITLES, build_cycle_result
from tests.report_flow_fixtures import build_flow_cycle_result
from tests.test_report_render import Page

FLOW_HEADINGS = (
    "Forecasts per objective",
    "Portfolio Kanban by value stream",
    "Flow by value stream",
)


@pytest.fixture(scope="module")
def flow_result() -> CycleResult:
    return build_flow_cycle_result(items=160, streams=6)


@pytest.fixture(scope="module")
def rendered(flow_result: CycleResult) -> RenderedReport:
    return render_report(flow_result)


def _cells(html: str, attribute: str, value: str) -> list[str]:
    """The text of each cell of the row marked `attribute="value"`."""
    row = re.search(rf'<tr[^>]*{attribute}="{re.escape(value)}"[^>]*>(.*?)</tr>', html, re.S)
    assert row, f"no row {attribute}={value}"
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", cell).split()) for cell in cells]


def _text_section(text: str, start: str, end: str) -> str:
    return text.split(start, 1)[1].split(end, 1)[0]


def test_flow_table_and_text_carry_each_value_streams_figures(
    flow_result: CycleResult, rendered: RenderedReport
) -> None:
    assert flow_result.flow is not None
    streams = value_streams(flow_result.flow)
    flow_text = _text_section(rendered.text, "FLOW BY VALUE STREAM", "SYNC HEALTH")
    for group in streams:
        assert group.flow_time is not None
        times = [
            format_days(t) for t in (group.flow_time.p50, group.flow_time.p85, group.flow_time.p95)
        ]
        velocity = f"{group.velocity_per_week:.1f}"
        efficiency = "n/a" if group.efficiency is None else f"{group.efficiency * 100:.0f}%"
        cells = _cells(rendered.html, "data-stream", group.id)
        assert cells[1:] == [str(group.done), *times, velocity, str(group.load), efficiency]
        line = (
            f"  {group.title}: {group.done} done, flow time {' / '.join(times)}, "
            f"{velocity} per week, load {group.load}, efficiency {efficiency}"
        )
        assert line in flow_text
        for flow_class, count in group.distribution.items():
            assert f"{count} {flow_class}" in cells[0]
    assert [group.items for group in streams] == sorted((g.items for g in streams), reverse=True)


def test_forecasts_list_at_risk_first_with_dates_verdict_and_reason(
    flow_result: CycleResult, rendered: RenderedReport
) -> None:
    assert flow_result.flow is not None
    forecasts = flow_result.flow.forecasts
    at_risk = [row for row in forecasts if row.at_risk]
    assert at_risk, "the fixture has an objective at risk"
    table = re.search(r'data-section="forecasts".*?</table>', rendered.html, re.S)
    assert table
    order = re.findall(r'data-objective="([^"]+)"', table.group(0))
    assert order[0] == at_risk[0].objective_id
    assert sorted(order) == sorted(row.objective_id for row in forecasts)
    row = at_risk[0]
    assert row.p50 and row.p85 and row.p95 and row.target_date
    cells = _cells(rendered.html, "data-objective", row.objective_id)
    assert "AT RISK" in cells[0] and row.reason in cells[0]
    assert cells[2:] == [f"{d:%d %b}" for d in (row.p50, row.p85, row.p95, row.target_date)]
    text = _text_section(rendered.text, "FORECASTS PER OBJECTIVE", "ORPHAN WORK")
    assert text.index(f"{row.objective_id} ") < min(
        text.index(f"{other.objective_id} ") for other in forecasts if not other.at_risk
    )
    assert f"50% {row.p50:%d %b} · 85% {row.p85:%d %b} · 95% {row.p95:%d %b}" in text
    assert f"target {row.target_date:%d %b}" in text and "[AT RISK]" in text


def test_kanban_flags_over_limit_stages_in_words_and_names_what_to_stop_starting(
    flow_result: CycleResult, rendered: RenderedReport
) -> None:
    assert flow_result.flow is not None and flow_result.flow.kanban is not None
    kanban = flow_result.flow.kanban
    over = [(b.value_stream, c) for b in kanban.boards for c in b.columns if c.over_limit]
    assert over, "the fixture has a stage over its limit"
    html_text = " ".join(Page(rendered.html).text)
    stages = len([o for o in kanban.over_limit])
    assert f"{stages} stages over the limit" in html_text
    for stream, column in over:
        flag = f"{column.stage}\xa0{column.count}\xa0/\xa0{column.limit}\xa0!"
        assert flag in html_text, stream
        assert f"OVER LIMIT BY {column.count - column.limit}" in html_text
    text = _text_section(rendered.text, "PORTFOLIO KANBAN BY VALUE STREAM", "FLOW BY VALUE")
    stream, column = over[0]
    assert f"{column.stage} {column.count}/{column.limit} !" in text
    assert f"Stop starting ({kanban.stop_starting_count})" in html_text
    assert f"Stop starting ({kanban.stop_starting_count})" in text
    first = kanban.stop_starting[0]
    assert f">{first.key}</a>" in rendered.html and f"- {first.key} " in text
    entered = next(o for o in kanban.over_limit if first in o.beyond)
    place = f"{entered.value_stream} · {entered.stage} {entered.count} / {entered.limit}"
    assert f"- {first.key} {first.title} ({place})" in text
    assert place in html_text


def test_cards_are_capped_per_stage_with_the_rest_counted(
    flow_result: CycleResult, rendered: RenderedReport
) -> None:
    assert flow_result.flow is not None and flow_result.flow.kanban is not None
    stages = {stage.name: stage.category.value for stage in flow_result.flow.kanban.stages}
    board = next(b for b in flow_result.flow.kanban.boards if b.value_stream == "Payments")
    text = _text_section(rendered.text, "Payments board:", "board:")
    for column in board.columns:
        listed = [card.key for card in column.cards if f"- {card.key} " in text]
        assert listed == [card.key for card in column.cards[: len(listed)]], column.stage
        assert len(listed) <= 3 and (len(listed) == 0) == (stages[column.stage] == "Done")
        more = f" (+{column.count - len(listed)} more)" if column.count > len(listed) else ""
        limit = f" / limit {column.limit}" if column.limit is not None else ""
        assert re.search(
            rf"^  {column.stage}: {column.count}{limit}.*{re.escape(more)}$", text, re.M
        )
    full = rendered.full_html
    assert all(f">{card.key}</a>" in full for column in board.columns for card in column.cards)


def test_oldest_work_in_progress_is_named_oldest_first(
    flow_result: CycleResult, rendered: RenderedReport
) -> None:
    assert flow_result.flow is not None
    ageing = sorted(
        (item for g in value_streams(flow_result.flow) for item in g.ageing),
        key=lambda item: -item.age_days,
    )
    table = re.search(r'data-section="ageing".*?</table>', rendered.html, re.S)
    assert table
    keys = re.findall(r">([A-Z]+-\d+)</a>", table.group(0))
    assert keys == [item.key for item in ageing[: len(keys)]] and len(keys) >= 3
    if len(ageing) > len(keys):
        assert f"and {len(ageing) - len(keys)} more named" in rendered.text
    oldest = ageing[0]
    line = f"  - {oldest.key} {oldest.title}: {format_days(oldest.age_days)} days"
    assert line in rendered.text


def test_flow_problems_are_capped_with_their_total(
    flow_result: CycleResult, rendered: RenderedReport
) -> None:
    assert flow_result.flow is not None
    total = flow_result.flow.problem_count
    assert f"Flow data problems ({total})" in " ".join(Page(rendered.html).text)
    assert f"Flow data problems ({total}):" in rendered.text
    text = _text_section(rendered.text, f"Flow data problems ({total}):", "SYNC HEALTH")
    shown = len(re.findall(r"^  - ", text, re.M))
    assert 0 < shown <= 10
    if total > shown:
        assert f"and {total - shown} more flow problems" in text
    first = flow_result.flow.problems[0]
    assert first.reason in rendered.html


def test_charts_are_cid_parts_of_the_email_with_their_numbers_in_alt_text(
    flow_result: CycleResult, rendered: RenderedReport
) -> None:
    assert [image.name for image in rendered.images] == [
        "trend",
        "coverage",
        "flow_time",
        "throughput",
    ]
    images = [a for tag, a in Page(rendered.html).tags if tag == "img"]
    assert [a["src"] for a in images] == [f"cid:{image.cid}" for image in rendered.images]
    message = compose_email(rendered, None)
    parts = [part for part in message.walk() if part.get_content_type() == "image/png"]
    assert [part["Content-ID"] for part in parts] == [f"<{i.cid}>" for i in rendered.images]
    assert [part.get_content() for part in parts] == [i.png for i in rendered.images]
    alts = {a["src"].split(":")[1].split(".")[0]: a.get("alt") or "" for a in images}
    assert flow_result.flow is not None
    payments = next(g for g in flow_result.flow.groups if g.id == "Payments")
    assert payments.flow_time is not None
    assert (
        f"Payments {format_days(payments.flow_time.p50)}, {format_days(payments.flow_time.p85)}, "
        f"{format_days(payments.flow_time.p95)}"
    ) in alts["flow_time"]
    weekly = ", ".join(str(week.count) for week in payments.weekly_throughput)
    assert f"Payments {weekly} ({payments.velocity_per_week:.1f} per week)" in alts["throughput"]
    file_sources = [a["src"] for tag, a in Page(rendered.file_html).tags if tag == "img"]
    assert file_sources == [image.filename for image in rendered.images]


def test_five_thousand_items_with_flow_fit_the_email() -> None:
    result = build_flow_cycle_result(items=5000, streams=12, orphans=5000)
    rendered = render_report(result)
    assert len(rendered.html.encode("utf-8")) < 100_000
    assert result.flow is not None and result.flow.kanban is not None
    page = " ".join(Page(rendered.html).text)
    assert f"Stop starting ({result.flow.kanban.stop_starting_count:,})" in page
    assert "more value stream boards" in page
    for heading in FLOW_HEADINGS:
        assert heading in page
    boards = re.findall(r'data-board="([^"]+)"', rendered.full_html)
    assert len(boards) == 12


def test_documents_without_flow_render_without_flow_sections() -> None:
    result = build_cycle_result()
    stored = result.model_dump(mode="json")
    stored.pop("flow", None)  # a run stored before the flow stage existed
    old = CycleResult.model_validate(stored)
    assert old.flow is None
    rendered = render_report(old)
    page = " ".join(Page(rendered.html).text)
    for heading in FLOW_HEADINGS:
        assert heading not in page
        assert heading.upper() not in rendered.text
    assert [image.name for image in rendered.images] == ["trend", "coverage"]


def test_a_flow_section_without_streams_or_board_still_renders() -> None:
    result = build_flow_cycle_result(items=40, streams=3)
    assert result.flow is not None
    result.flow = result.flow.model_copy(update={"groups": [], "kanban": None, "forecasts": []})
    rendered = render_report(result)
    assert "No value stream has items yet." in rendered.html
    assert "No value stream has items yet." in rendered.text
    assert "Portfolio Kanban by value stream" not in rendered.html
    assert [image.name for image in rendered.images] == ["trend", "coverage"]


def test_a_stream_without_done_work_has_no_flow_time_and_no_bar() -> None:
    result = build_flow_cycle_result(items=60, streams=3)
    assert result.flow is not None
    idle = result.flow.groups[-1].model_copy(
        update={"done": 0, "flow_time": None, "weekly_throughput": [], "distribution": {}}
    )
    result.flow.groups[-1] = idle
    rendered = render_report(result)
    assert _cells(rendered.html, "data-stream", idle.id)[1:3] == ["0", "no item done"]
    assert f"{idle.title}: 0 done, flow time n/a (no item done)" in rendered.text
    alts = [a.get("alt") or "" for tag, a in Page(rendered.html).tags if tag == "img"]
    assert not any(f"{idle.title} " in alt for alt in alts if alt.startswith("Flow time"))


def test_tracker_titles_in_flow_sections_are_escaped_and_isolated() -> None:
    result = build_flow_cycle_result(items=60, streams=2)
    assert result.flow is not None and result.flow.kanban is not None
    title = HOSTILE_TITLES[0] + " \u202egnp.exe"
    board = result.flow.kanban.boards[0]
    column = next(c for c in board.columns if c.cards)
    column.cards[0] = column.cards[0].model_copy(update={"title": title})
    rendered = render_report(result)
    assert "<script>alert(1)</script>" not in rendered.html
    assert '<span dir="auto">&lt;script&gt;alert(1)&lt;/script&gt;' in rendered.html
    assert "\u202e" not in rendered.html and "\u202e" not in rendered.text
