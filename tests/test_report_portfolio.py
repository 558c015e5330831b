"""The report's portfolio part, rendered for real: the objective tree leads, each node with its
progress bar and its evidence (aligned items, the measuring query, the tracker item); then
capacity with the cut line and the named items; then dependency risks; the text twin carries
the same numbers; and the email stays under 100 KB with 5,000 orphans and a large portfolio."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest

from reports.render import RenderedReport, render_report
from reports.settings import ReportOptions
from spm_sync.core.results import CycleResult
from spm_sync.core.results_portfolio import (
    CapacitySection,
    CutLine,
    DependencyFlag,
    DependencySection,
    KeyResultProgress,
    ObjectiveProgress,
    PortfolioItem,
    PortfolioSection,
    TeamCapacityRow,
)
from spm_sync.store import Store
from tests.cycle_fixtures import Clock, FakeTracker
from tests.report_fixtures import build_cycle_result
from tests.test_portfolio_pipeline import CAPACITY, portfolio_items, run, write_config


class Tags(HTMLParser):
    """Every start tag with its attributes, and the ids the page defines."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def attribute(self, name: str) -> list[str]:
        return [str(attrs[name]) for _, attrs in self.tags if attrs.get(name) is not None]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RenderedReport]:
    folder: Path = tmp_path_factory.mktemp("portfolio-report")
    config = write_config(folder, capacity=CAPACITY)
    store = Store.from_settings(config.store)
    clock = Clock()
    try:
        outcome, _ = run(config, store, FakeTracker("alpha", portfolio_items(), clock), clock)
    finally:
        store.close()
    assert outcome.result is not None
    yield render_report(outcome.result)


def test_the_objective_tree_leads_with_bars_and_evidence(rendered: RenderedReport) -> None:
    html = rendered.html
    # After the digest (which names the top objectives) and the headline figures, the tree is
    # the first section of detail.
    assert html.index('data-section="digest"') < html.index('data-section="objective-tree"')
    assert html.index('data-section="objective-tree"') < html.index("Key Result coverage")
    page = Tags(html)
    objectives = page.attribute("data-objective")
    assert objectives[:4] == ["O1", "O2", "O3", "OBJ-9"]
    # Progress bars: O1 6.7% (drawn 7), KR-1 20%, KR-2 0%; KR-3's query failed: no bar.
    tree = Tags(html[html.index('data-section="objective-tree"') :])
    assert tree.attribute("data-bar")[:3] == ["7", "20", "0"]
    row = re.search(r'<tr data-key-result="KR-3".*?</tr>', html, re.DOTALL)
    assert row is not None and "not measured" in row.group(0) and "data-bar" not in row.group(0)
    # Evidence: each Key Result links to its aligned items in the OKR section, which exist.
    hrefs = page.attribute("href")
    ids = set(page.attribute("id"))
    assert "#kr-KR-1" in hrefs and "kr-KR-1" in ids
    assert all(href[1:] in ids for href in hrefs if href.startswith("#"))
    shown = unescape(html)
    assert "query alpha: label:kr-KR-1" in shown
    assert "alpha refused it: Error in the JQL Query: 'refuse'" in shown
    assert "objectives form a cycle through their parents (O2 → O3 → O2)" in shown
    assert "title is 'Grow' in file but 'Shrink' in tracker:alpha/O1" in shown


def test_capacity_draws_the_cut_line_and_names_the_items(rendered: RenderedReport) -> None:
    html = rendered.html
    start = html.index('data-section="capacity"')
    assert html.index('data-section="objective-tree"') < start < html.index("Key Result coverage")
    cut = re.search(r'data-cut="Team A/2026-Q2"[^>]*>(.*?)</td>', html, re.DOTALL)
    assert cut is not None
    text = re.sub(r"<[^>]+>", "", cut.group(1))
    assert "Cut line: after E2 Epic E2, before E1 Epic E1." in text
    assert "Best WSJF below the line: E1 Epic E1 (WSJF 2.00, size 8" in text
    assert "In progress below the line: E3 Epic E3 (WSJF 0.46, size 13" in text
    assert "team 'Team B' has zero capacity in 2026-Q2: nothing fits" in unescape(html)


def test_dependency_risks_show_the_chain(rendered: RenderedReport) -> None:
    html = rendered.html
    assert html.index('data-section="capacity"') < html.index('data-section="dependencies"')
    flags = re.findall(r'<tr data-flag="(\w+)">(.*?)</tr>', html, re.DOTALL)
    chains = [(kind, re.sub(r"<[^>]+>", "", row).split(">")[-1]) for kind, row in flags]
    assert [kind for kind, _ in chains] == ["ranked_above"] * 2 + ["orphan"] * 2
    assert "E2 → E1 → E3" in flags[0][1] and "E1 → E3" in flags[1][1]


def test_the_text_twin_has_the_same_numbers(rendered: RenderedReport) -> None:
    text = rendered.text
    # The same order as the HTML: summary, headline and trend, then the tree.
    assert text.index("SUMMARY") < text.index("HEADLINE") < text.index("TREND")
    assert text.index("TREND") < text.index("OBJECTIVES AND THEIR MEASURED PROGRESS")
    assert "O1 Grow: 6.7%, confidence 62%, 2 aligned items, job size 11" in text
    assert "- KR-1 Five epics labelled: 20% (now 1, target 5 (from 0), count" in text
    assert "cut line: after E2, before E1" in text
    assert "in progress below: E3 Epic E3 (WSJF 0.46, size 13)" in text
    assert "E2 (rank 1) waits for E3 (rank 3): E2 → E1 → E3" in text
    # The OKR section below shows the measured value, not the file's (none here).
    assert re.search(r"KR-1 Five epics labelled\n\s+now 1, target 5", text)


def _item(index: int, rank: int | None = None) -> PortfolioItem:
    return PortfolioItem(
        connection="jira-cloud",
        key=f"PAY-{index}",
        title=f"A long enough epic title for item number {index} of the portfolio",
        url=f"https://example.atlassian.net/browse/PAY-{index}",
        wsjf=round(10 - index / 1000, 2),
        job_size=5,
        rank=rank or index + 1,
        in_progress=True,
    )


def _large_portfolio() -> PortfolioSection:
    objectives = []
    for o in range(80):
        krs = [
            KeyResultProgress(
                id=f"KR-{o}.{k}",
                title=f"Key result {k} of objective {o}, measured by a query",
                measure="count",
                queries={"jira-cloud": f"project = PAY AND labels = kr-{o}-{k}"},
                target=100,
                baseline=0,
                current=o,
                progress_pct=float(o),
                aligned_items=40,
                aligned_job_size=200,
            )
            for k in range(4)
        ]
        objectives.append(
            ObjectiveProgress(
                id=f"O{o}",
                title=f"Objective number {o} of a large portfolio",
                depth=o % 3,
                progress_pct=float(o),
                confidence=0.75,
                key_results=krs,
            )
        )
    flags = [
        DependencyFlag(
            kind="ranked_above",
            item=_item(i),
            blocker=_item(i + 1),
            chain=[_item(i + j).key for j in range(12)],
        )
        for i in range(200)
    ]
    below = [_item(i) for i in range(200)]
    cuts = [
        CutLine(
            interval=f"2026-Q{q}",
            capacity=100,
            planned_count=20,
            planned_points=100,
            below_count=4900,
            below_points=24500,
            last_above=_item(20),
            first_below=_item(21),
            high_wsjf_below=below[:5],
            in_progress_below=below,
            in_progress_below_count=4900,
        )
        for q in range(1, 5)
    ]
    teams = [TeamCapacityRow(team=f"Team {t}", ranked_count=5000, cuts=cuts) for t in range(6)]
    return PortfolioSection(
        objectives=objectives,
        capacity=CapacitySection(teams=teams),
        dependencies=DependencySection(
            links=10_000,
            rank_conflicts=flags,
            rank_conflict_count=900,
            orphan_blocks=[f.model_copy(update={"kind": "orphan"}) for f in flags],
            orphan_block_count=700,
        ),
    )


def test_five_thousand_items_and_a_large_portfolio_fit_the_email() -> None:
    result: CycleResult = build_cycle_result(orphans=5000)
    result.portfolio = _large_portfolio()
    rendered = render_report(result)
    size = len(rendered.html.encode("utf-8"))
    assert size < 100_000, size
    assert re.search(r"and [\d,]+ more objectives", rendered.html)
    assert re.search(r"and [\d,]+ more items ranked above what they wait for", rendered.html)
    assert re.search(r"and [\d,]+ more items ranked above what they wait for", rendered.text)
    # The full file has every objective and every listed flag.
    for o in range(80):
        assert f'data-objective="O{o}"' in rendered.full_html
    assert rendered.full_html.count('data-flag="ranked_above"') == 200


def test_a_full_email_counts_the_portfolio_and_leaves_it_to_the_full_report() -> None:
    result: CycleResult = build_cycle_result(orphans=5000)
    result.portfolio = _large_portfolio()
    rendered = render_report(result, ReportOptions(max_email_html_bytes=60_000))
    assert len(rendered.html.encode("utf-8")) <= 60_000
    assert "data-objective=" not in rendered.html
    text = re.sub(r"<[^>]+>", "", rendered.html)
    assert "80 objectives with their Key Results and measured progress: all in " in text
    assert re.search(r"and [\d,]+ more cut lines", text)
    assert rendered.full_html.count("data-objective=") == 80
