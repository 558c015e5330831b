"""The digest that leads the report: change since the last cycle, objectives on track / at risk
/ off track with their bars, new orphans, writes per tracker and field; then the detail.
Rendered to real HTML and text, and read back."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from reports.digest import objective_status
from reports.publish import publish_report
from reports.render import render_report
from spm_sync.core.domain import WriteField
from spm_sync.core.results import CycleResult
from spm_sync.core.results_change import ItemRef, OrphanChanges, WriteTally
from spm_sync.core.results_flow import ObjectiveForecastRow
from spm_sync.core.results_portfolio import KeyResultProgress, ObjectiveProgress, PortfolioSection
from tests.report_fixtures import ADO, JIRA, build_cycle_result

JUNE_30 = date(2026, 6, 30)


def _forecast(p50: date, p85: date, target: date) -> ObjectiveForecastRow:
    verdict = "at_risk" if p85 > target else "on_track"
    return ObjectiveForecastRow(
        objective_id="O1", title="t", p50=p50, p85=p85, target_date=target, verdict=verdict,
        reason="",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("progress", "confidence", "forecast", "krs_at_risk", "expected"),
    [
        (40.0, 0.9, _forecast(date(2026, 7, 1), date(2026, 8, 1), JUNE_30), 0, "off_track"),
        (100.0, 0.9, None, 1, "on_track"),
        (40.0, 0.9, _forecast(date(2026, 6, 1), date(2026, 7, 15), JUNE_30), 0, "at_risk"),
        (40.0, 0.9, None, 2, "at_risk"),
        (40.0, 0.3, None, 0, "at_risk"),
        (None, 0.0, None, 0, "not_measured"),
        (40.0, 0.8, _forecast(date(2026, 5, 1), date(2026, 6, 1), JUNE_30), 0, "on_track"),
    ],
)  # fmt: skip
def test_objective_status_rules(
    progress: float | None,
    confidence: float,
    forecast: ObjectiveForecastRow | None,
    krs_at_risk: int,
    expected: str,
) -> None:
    status, reason = objective_status(progress, confidence, forecast, krs_at_risk)
    assert status == expected
    assert reason


def _portfolio() -> PortfolioSection:
    def kr(id: str, progress: float | None) -> KeyResultProgress:
        return KeyResultProgress(id=id, title=f"Key Result {id}", progress_pct=progress)

    return PortfolioSection(
        objectives=[
            ObjectiveProgress(
                id="O1", title="Grow", progress_pct=35.0, confidence=0.9,
                key_results=[kr("KR1.1", 35.0), kr("KR1.3", None)],
            ),
            ObjectiveProgress(
                id="O2", title="Reliable", progress_pct=72.0, confidence=1.0,
                key_results=[kr("KR2.1", 72.0)],
            ),
            ObjectiveProgress(
                id="O2a", title="Child", depth=1, parent_id="O2", progress_pct=10.0,
                confidence=1.0,
            ),
            ObjectiveProgress(
                id="O3", title="Enterprise", progress_pct=None, confidence=0.0,
                key_results=[kr("KR3.9", None)],
            ),
        ]
    )  # fmt: skip


def _digest_result() -> CycleResult:
    result = build_cycle_result()
    result.portfolio = _portfolio()
    orphans = result.alignment.orphans
    result.orphan_changes = OrphanChanges(
        previous_run="run-99",
        compared=[JIRA, ADO],
        new=[ItemRef(connection=o.connection, key=o.key) for o in orphans[:3]],
        new_count=3,
        resolved_count=6,
    )
    result.writes.by_target = [
        WriteTally(connection=ADO, field=WriteField.RANK, counts={"written": 9}),
        WriteTally(
            connection=JIRA, field=WriteField.WSJF_SCORE, counts={"written": 10, "conflict": 2}
        ),
    ]
    return result


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_the_digest_comes_first_and_says_what_changed() -> None:
    result = _digest_result()
    rendered = render_report(result)
    html = rendered.html
    digest = html[html.index('data-section="digest"') : html.index("data-figure=")]
    # Before any figure, table or chart of detail.
    assert html.index('data-section="digest"') < html.index("<h2")
    text = _text(digest)
    assert "Since run run-99 (23 Feb 2026): +2.5 pts, 3 new orphans, 6 resolved" in text
    # Objectives from the portfolio roll-up: top ones only, each with bar and status.
    statuses = dict(re.findall(r'data-digest-objective="([^"]+)" data-status="([^"]+)"', digest))
    assert statuses == {"O1": "at_risk", "O2": "on_track", "O3": "not_measured"}
    assert "KR1.3" in [k.id for o in result.alignment.objectives for k in o.key_results]
    assert re.search(r"1 AT RISK.*1 ON TRACK.*1 NOT MEASURED", text)
    assert digest.count("data-bar=") == 2  # O3 is not measured: no bar
    # New orphans by name, writes per tracker and field.
    for orphan in result.alignment.orphans[:3]:
        assert orphan.key in digest
    assert f"{ADO}: 9 written rank 9" in text
    assert f"{JIRA}: 10 written, 2 skipped as conflicts wsjf_score 12" in text
    # The text part leads with the same summary.
    summary = rendered.text.split("SUMMARY", 1)[1].split("HEADLINE", 1)[0]
    assert "Since run run-99 (23 Feb 2026): +2.5 pts, 3 new orphans, 6 resolved" in summary
    assert "Objectives: 1 at risk, 1 on track, 1 not measured" in summary
    assert f"{JIRA}: 10 written, 2 skipped as conflicts (wsjf_score 12)" in summary


def test_trend_and_a_write_breakdown_are_near_the_top_and_colours_have_a_legend() -> None:
    rendered = render_report(_digest_result())
    html = rendered.html
    headings = re.findall(r"<h2[^>]*>([^<]+)</h2>", html)
    assert headings.index("Trend") <= 1, headings
    tally = html[html.index('data-section="write-tally"') :]
    assert f"{JIRA} · wsjf_score 10 written, 2 skipped as conflicts" in _text(tally)
    assert f"{ADO} · rank 9 written" in _text(tally)
    legend = _text(html[html.index(">", html.index("data-legend")) + 1 :])
    assert legend.startswith("Aligned work is green at 80% and above, amber from 60%, red below")


def test_without_a_full_report_url_the_email_says_so_and_links_nowhere(tmp_path: Path) -> None:
    result = build_cycle_result(orphans=400)
    published = publish_report(result, tmp_path)
    html = published.rendered.html
    full = published.paths.full_html
    assert str(full) not in re.findall(r'href="([^"]+)"', html)
    assert not any(href.startswith("/") for href in re.findall(r'href="([^"]+)"', html))
    text = _text(html)
    assert "all in the full report (see the end of this email)" in text
    said = f"the file {full} on the machine that ran spm-sync, not a link"
    assert said in text and said in published.rendered.text


def test_a_first_run_digest_and_the_size_at_five_thousand_items() -> None:
    first = render_report(build_cycle_result(first_run=True))
    assert "First run: nothing to compare with yet" in _text(first.html)
    big = build_cycle_result(orphans=5000)
    big.portfolio = _portfolio()
    orphans = big.alignment.orphans
    big.orphan_changes = OrphanChanges(
        previous_run="run-99",
        compared=[JIRA, ADO],
        new=[ItemRef(connection=o.connection, key=o.key) for o in orphans[:200]],
        new_count=1800,
    )
    rendered = render_report(big)
    assert len(rendered.html.encode("utf-8")) < 100_000
    assert re.search(r"and [\d,]+ more new orphans", rendered.html)
    assert "1,800 new orphans" in _text(rendered.html)
