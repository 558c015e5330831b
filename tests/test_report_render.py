"""Rendering: the same facts in HTML and text, escaping, email-safety, size caps, files."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from reports.publish import publish_report, write_report
from reports.render import render_report, report_stem, shorten
from reports.settings import ReportOptions
from spm_sync.core.results import CycleResult, Headline
from spm_sync.core.results_alignment import Orphan
from spm_sync.core.results_writes import WriteLog
from tests.report_fixtures import HOSTILE_TITLES, build_cycle_result

LABELS = {
    "alignment_pct_items": "Aligned work, by item count",
    "alignment_pct_job_size": "Aligned work, by job size",
    "orphans": "Orphan items",
    "uncovered_key_results": "Key Results nothing moves",
    "unscored": "Items without a WSJF score",
    "writes_applied": "Writes applied",
    "writes_planned": "Writes planned",
    "write_conflicts": "Write conflicts",
}


class Page(HTMLParser):
    """Collects tags, attributes, and the text of the headline cells."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.figures: dict[str, str] = {}
        self.changes: dict[str, str] = {}
        self._open: tuple[dict[str, str], str] | None = None
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        for marker, target in (("data-value", "figures"), ("data-change", "changes")):
            if attributes.get(marker):
                self._open = ({"figures": self.figures, "changes": self.changes}[target], "")
                self._name = attributes[marker]

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._open is not None:
            store, _ = self._open
            store[self._name] = store.get(self._name, "") + data

    def handle_endtag(self, tag: str) -> None:
        if tag == "div":
            self._open = None


def _number(text: str) -> float:
    return float(text.strip().rstrip("%").replace(",", ""))


def _expected_change(delta: float | None, is_pct: bool) -> str:
    if delta is None:
        return "n/a"
    shown = round(delta, 1) if is_pct else round(delta)
    if shown == 0:
        return "no change"
    arrow = "▲" if shown > 0 else "▼"
    return f"{arrow} {abs(shown):.1f} pts" if is_pct else f"{arrow} {abs(shown):,}"


def _text_figures(text: str) -> dict[str, tuple[str, str]]:
    found = {}
    for name, label in LABELS.items():
        match = re.search(rf"^  {re.escape(label)}:\s+(\S+)\s+(.+)$", text, re.MULTILINE)
        assert match, f"text has no headline line for {label}"
        found[name] = (match.group(1), match.group(2).strip())
    return found


@pytest.mark.parametrize("first_run", [False, True])
def test_every_headline_figure_in_html_and_text_equals_the_result(first_run: bool) -> None:
    result = build_cycle_result(first_run=first_run, orphans=27)
    rendered = render_report(result)
    headline, change = result.headline, result.change
    page = Page(rendered.html)
    in_text = _text_figures(rendered.text)
    assert set(page.figures) == set(Headline.model_fields) == set(in_text)
    for name in Headline.model_fields:
        value = getattr(headline, name)
        is_pct = name.startswith("alignment_pct")
        expected = round(value, 1) if is_pct else value
        assert _number(page.figures[name]) == expected, name
        assert _number(in_text[name][0]) == expected, name
        if first_run:
            expected_change = "first run"
        else:
            assert change is not None
            expected_change = _expected_change(getattr(change, name), is_pct)
        assert page.changes[name].strip() == expected_change, name
        assert in_text[name][1] == expected_change, name


def test_html_and_text_show_the_same_sections_and_items() -> None:
    result = build_cycle_result()
    rendered = render_report(result, ReportOptions(top_n=5))
    html_text = " ".join(Page(rendered.html).text)
    for document in (html_text, rendered.text):
        for objective in result.alignment.objectives:
            for key_result in objective.key_results:
                assert key_result.id in document
        for orphan in result.alignment.orphans:
            assert orphan.key in document
        for health in result.connections:
            assert health.name in document
        assert "281 of 350 left" in document
    scored = [row for row in result.wsjf if row.scored]
    for connection in {row.connection for row in scored}:
        ranked = sorted(
            (row for row in scored if row.connection == connection), key=lambda row: row.new_rank
        )
        for row in ranked[:5]:
            assert re.search(rf"#{row.new_rank}\s.*{re.escape(row.key)}", rendered.text)
            assert row.key in html_text
        assert ranked[5].key not in rendered.text.split("WSJF RANKING")[1].split("Not scored")[0]
        assert re.search(rf"{connection}\s+· top 5 of {len(ranked)} scored", html_text)
    assert "21 scored items" in html_text
    assert "In Progress 5/4 BREACH" in rendered.text
    assert "1 breach" in html_text


def test_at_risk_key_results_are_marked_in_both() -> None:
    result = build_cycle_result()
    rendered = render_report(result)
    at_risk = [kr.id for objective in result.alignment.objectives for kr in objective.key_results]
    at_risk = [kr for kr in at_risk if _kr(result, kr).at_risk]
    assert at_risk == ["KR1.3", "KR3.1", "KR3.2"]
    for kr_id in at_risk:
        assert re.search(rf"{re.escape(kr_id)} .*\[AT RISK\]", rendered.text)
    assert rendered.text.count("[AT RISK]") == 3
    okrs = rendered.html.split("Objectives and Key Results</h2>")[1]
    assert okrs.count(">AT RISK</span>") == 1 + 3  # the legend, then each KR
    assert "nothing moves this Key Result" in rendered.text


def test_progress_from_baseline_and_a_met_target_clear_the_risk() -> None:
    result = build_cycle_result()
    short, met = _kr(result, "KR3.1"), _kr(result, "KR3.2")
    assert short.uncovered and met.uncovered
    short.baseline, short.target, short.current = 3.5, 2.0, 2.9  # lower is better
    met.baseline, met.target, met.current = 10.0, 20.0, 21.0
    rendered = render_report(result)
    for text in (rendered.text, "".join(Page(rendered.html).text)):
        assert "now 2.9, target 2: 40% of the way from 3.5" in text
        assert "now 21, target 20: met" in text
    assert re.search(r"KR3\.1 .*\[AT RISK\]", rendered.text)
    assert not re.search(r"KR3\.2 .*\[AT RISK\]", rendered.text)


def _kr(result: CycleResult, kr_id: str):  # type: ignore[no-untyped-def]
    return next(kr for o in result.alignment.objectives for kr in o.key_results if kr.id == kr_id)


def test_hostile_titles_render_as_text_never_as_markup() -> None:
    result = build_cycle_result(hostile_titles=True)
    rendered = render_report(result)
    for html in (rendered.html, rendered.file_html, rendered.full_html):
        page = Page(html)
        assert not [tag for tag, _ in page.tags if tag in ("script", "iframe", "object")]
        handlers = [name for _, attrs in page.tags for name in attrs if name.startswith("on")]
        assert handlers == []
        assert not [attrs for tag, attrs in page.tags if tag == "img" and attrs.get("src") == "x"]
        text = " ".join(page.text)
        assert "<script>alert(1)</script>" in text
        assert '"><img src=x onerror=alert(2)>' in text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "Zahlungsabwicklung für Österreich – 支付 — émojis 🚀" in text
    assert "<script>alert(1)</script>" in rendered.text
    assert "Zahlungsabwicklung für Österreich" in rendered.text


def test_very_long_titles_are_cut_at_a_word_with_an_ellipsis() -> None:
    long_title = HOSTILE_TITLES[3]
    rendered = render_report(build_cycle_result(hostile_titles=True))
    assert long_title not in rendered.html and long_title not in rendered.text
    short = shorten(long_title)
    assert len(short) <= 110 and short.endswith("…")
    assert long_title.startswith(short[:-1])
    assert not short[:-1].endswith(" ")
    assert short in rendered.text and short in " ".join(Page(rendered.html).text)
    assert shorten("x" * 300, 50) == "x" * 49 + "…"


def test_links_only_for_web_urls() -> None:
    result = build_cycle_result()
    sneaky = result.alignment.orphans[0].model_copy(
        update={"url": "javascript:alert(3)", "job_size": 999}
    )
    result.alignment.orphans[0] = sneaky
    rendered = render_report(result)
    hrefs = [attrs.get("href") or "" for tag, attrs in Page(rendered.html).tags if tag == "a"]
    # Web links, and anchors within the page (the digest's objectives point at their detail).
    assert hrefs and all(href.startswith(("https://", "#")) for href in hrefs)
    assert any(href.startswith("https://") for href in hrefs)
    assert sneaky.key in rendered.html
    assert "javascript:" not in rendered.html


def test_email_html_is_self_contained_with_inlined_css() -> None:
    rendered = render_report(build_cycle_result())
    page = Page(rendered.html)
    tags = [tag for tag, _ in page.tags]
    assert "link" not in tags and "script" not in tags
    sources = [attrs["src"] for tag, attrs in page.tags if tag == "img"]
    assert sources == [f"cid:{image.cid}" for image in rendered.images]
    assert [image.name for image in rendered.images] == ["trend", "coverage"]  # page order
    styles = re.findall(r"<style>(.*?)</style>", rendered.html, re.DOTALL)
    assert len(styles) == 1 and styles[0].strip().startswith("@media")
    assert "@import" not in rendered.html and "url(" not in rendered.html
    h2 = [attrs for tag, attrs in page.tags if tag == "h2"]
    assert h2 and all("font-size:17px" in (attrs.get("style") or "") for attrs in h2)
    assert re.search(r'<table[^>]+role="presentation"', rendered.html)


def test_five_thousand_orphans_fit_the_email_and_the_full_file_has_all() -> None:
    result = build_cycle_result(orphans=5000)
    rendered = render_report(result)
    assert len(rendered.html.encode("utf-8")) < 100_000
    assert re.search(r"and [\d,]+ more in this team", rendered.html)
    assert re.search(r"and [\d,]+ more in this team", rendered.text)
    assert f"{rendered.stem}-full.html" in rendered.html
    assert Page(rendered.html).figures["orphans"] == "5,000"
    linked = set(re.findall(r">([A-Z]+-\d+|\d+)</a>", rendered.full_html))
    assert {orphan.key for orphan in result.alignment.orphans} <= linked
    assert "more in this team" not in rendered.full_html
    shown = sum(f">{o.key}</a>" in rendered.html for o in result.alignment.orphans)
    assert 0 < shown < 100


def test_caps_tighten_until_the_email_fits_a_smaller_budget() -> None:
    result = build_cycle_result(orphans=400)
    roomy = render_report(result)
    tight = render_report(result, ReportOptions(max_email_html_bytes=55_000))
    assert len(tight.html.encode("utf-8")) <= 55_000 < len(roomy.html.encode("utf-8"))
    keys = [orphan.key for orphan in result.alignment.orphans]
    shown_roomy = sum(f">{key}</a>" in roomy.html for key in keys)
    shown_tight = sum(f">{key}</a>" in tight.html for key in keys)
    assert 0 < shown_tight < shown_roomy
    assert tight.full_html == roomy.full_html


def test_orphans_grouped_by_team_biggest_job_size_first() -> None:
    result = build_cycle_result(orphans=30)
    rendered = render_report(result)
    section = rendered.text.split("ORPHAN WORK")[1].split("WSJF RANKING")[0]
    headers = re.findall(r"^(\S.*?) · (\S+): (\d+) items, ([\d,.]+) job size$", section, re.M)
    totals = [float(size.replace(",", "")) for *_, size in headers]
    assert len(headers) == 5 and totals == sorted(totals, reverse=True)
    first_team = headers[0][0]
    expected = sorted(
        (o for o in result.alignment.orphans if o.team == first_team),
        key=lambda o: (o.job_size is None, -(o.job_size or 0)),
    )
    keys = re.findall(r"^  - (\S+) ", section.split("\n\n")[0], re.M)
    assert keys == [o.key for o in expected][: len(keys)]
    assert expected[0].reason in section


def test_plan_mode_and_partial_runs_say_so() -> None:
    plan = render_report(build_cycle_result(mode="plan"))
    assert "plan only, nothing written" in plan.text
    assert "plan mode, nothing was written" in " ".join(Page(plan.html).text)
    partial = render_report(build_cycle_result(hostile_titles=True))
    assert "This run was partial" in " ".join(Page(partial.html).text)
    assert "This run was partial:" in partial.text


def test_write_report_files_reference_each_other_relatively(tmp_path: Path) -> None:
    rendered = render_report(build_cycle_result(orphans=60))
    paths = write_report(rendered, tmp_path / "out")
    html = paths.html.read_text(encoding="utf-8")
    assert paths.latest is not None and paths.latest.read_text(encoding="utf-8") == html
    sources = [a["src"] for tag, a in Page(html).tags if tag == "img"]
    assert sources == [path.name for path in paths.images] and len(sources) == 2
    for source in sources:
        assert (paths.html.parent / source).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    hrefs = {a.get("href") for tag, a in Page(html).tags if tag == "a"}
    assert paths.full_html.name in hrefs and paths.full_html.exists()
    assert paths.text.read_text(encoding="utf-8") == rendered.text
    assert not list(paths.html.parent.glob(".*.tmp"))


def test_publish_without_email_still_writes_everything(tmp_path: Path) -> None:
    published = publish_report(build_cycle_result(), tmp_path)
    assert published.delivery.status == "skipped"
    assert published.paths.eml is not None and published.paths.eml.stat().st_size > 40_000
    names = {path.name for path in tmp_path.iterdir()}
    stem = published.rendered.stem
    expected = {f"{stem}.html", f"{stem}-full.html", f"{stem}.txt", f"{stem}.eml", "latest.html"}
    assert expected | {f"{stem}-coverage.png", f"{stem}-trend.png"} == names
    assert str((tmp_path / f"{stem}-full.html").resolve()) in published.rendered.text


def test_first_run_has_no_trend_chart_and_says_why() -> None:
    rendered = render_report(build_cycle_result(first_run=True))
    assert [image.name for image in rendered.images] == ["coverage"]
    sources = [attrs["src"] for tag, attrs in Page(rendered.html).tags if tag == "img"]
    assert sources == [f"cid:{rendered.images[0].cid}"]
    assert "starts with the second stored run" in rendered.html


def test_stem_is_safe_for_any_run_id() -> None:
    result = build_cycle_result(run_id="../../etc/passwd nightly")
    stem = report_stem(result)
    assert "/" not in stem and " " not in stem and stem.startswith("alignment-2026-03-02-")


def test_empty_cycle_renders() -> None:
    result = build_cycle_result(orphans=0, first_run=True)
    result.alignment.objectives.clear()
    result.wsjf.clear()
    result.writes.rows.clear()
    result.wip.clear()
    result.alignment.orphans.append(
        Orphan(connection="j", key="A-1", title="Only orphan", type="Epic", reason="no label")
    )
    rendered = render_report(result)
    assert "No item could be scored." in rendered.html
    assert "No WIP limits" in rendered.text
    assert "A-1" in rendered.text


def test_nothing_cut_means_no_pointer_to_the_full_report() -> None:
    result = build_cycle_result(orphans=3)
    result.writes = WriteLog(rows=result.writes.rows[:5])
    rendered = render_report(result)
    assert "more" not in " ".join(Page(rendered.html).text).replace("moves", "")
    assert rendered.full_filename not in rendered.html
    assert "complete report" not in rendered.text
    assert "complete report" in render_report(build_cycle_result()).text


def test_full_report_url_of_the_output_folder_points_at_this_runs_file() -> None:
    options = ReportOptions(full_report_url="https://reports.acme.example/spm-sync/")
    rendered = render_report(build_cycle_result(), options)
    url = f"https://reports.acme.example/spm-sync/{rendered.full_filename}"
    assert f'href="{url}"' in rendered.html
    assert url in rendered.text
    assert f'href="{rendered.full_filename}"' in rendered.file_html
