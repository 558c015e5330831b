"""Key Result coverage: a chart from the first run on, with the same numbers in its alt text
and in the plain-text twin."""

from __future__ import annotations

import io
import re

from PIL import Image

from reports.coverage import MAX_CHART_KEY_RESULTS, key_result_coverage
from reports.email import compose_email
from reports.render import render_report
from spm_sync.core.domain import StatusCategory
from spm_sync.core.results_alignment import KeyResultAlignment, ObjectiveAlignment
from tests.report_fixtures import build_cycle_result
from tests.test_report_render import Page

# The fixture portfolio: (Key Result, items, job size, at risk), then the 18 orphans.
EXPECTED = [
    ("KR1.1", 3, 26, False),
    ("KR1.2", 4, 76, False),
    ("KR1.3", 0, 0, True),
    ("KR2.1", 3, 53, False),
    ("KR2.2", 2, 18, False),
    ("KR3.1", 1, 21, True),
    ("KR3.2", 0, 0, True),
]


def _text_table(text: str) -> dict[str, tuple[int, float, bool]]:
    section = text.split("KEY RESULT COVERAGE")[1].split("OBJECTIVES AND KEY RESULTS")[0]
    rows = re.findall(r"^  (\S+)\s+([\d,]+)\s+([\d,.]+)(  AT RISK)?$", section, re.MULTILINE)
    return {
        label: (int(items.replace(",", "")), float(size.replace(",", "")), bool(risk))
        for label, items, size, risk in rows
    }


def test_first_run_has_the_coverage_chart_in_the_email_and_the_saved_html() -> None:
    result = build_cycle_result(first_run=True)
    rendered = render_report(result)
    (image,) = rendered.images
    assert image.name == "coverage" and image.filename.endswith("-coverage.png")
    with Image.open(io.BytesIO(image.png)) as png:
        assert png.format == "PNG" and png.width == 768  # 4.8 in at 160 dpi
        assert png.height > 8 * 0.3 * 160  # a row per Key Result and one for the orphans

    email_images = [a for tag, a in Page(rendered.html).tags if tag == "img"]
    assert [a["src"] for a in email_images] == [f"cid:{image.cid}"]
    file_images = [a for tag, a in Page(rendered.file_html).tags if tag == "img"]
    assert [a["src"] for a in file_images] == [image.filename]

    message = compose_email(rendered, None)
    parts = [part for part in message.walk() if part.get_content_type() == "image/png"]
    assert [part["Content-ID"] for part in parts] == [f"<{image.cid}>"]
    assert parts[0].get_content() == image.png


def test_alt_text_and_text_twin_carry_the_numbers_of_the_result() -> None:
    result = build_cycle_result(orphans=18, first_run=True)
    rendered = render_report(result)
    (alt,) = [a.get("alt") or "" for tag, a in Page(rendered.html).tags if tag == "img"]
    table = _text_table(rendered.text)
    orphan_size = sum(o.job_size or 0 for o in result.alignment.orphans)
    assert table == {
        **{kr: (items, size, risk) for kr, items, size, risk in EXPECTED},
        "Orphans": (18, orphan_size, False),
    }
    for kr, items, size, risk in EXPECTED:
        plural = "item" if items == 1 else "items"
        described = f"{kr} {items} {plural}, job size {size}{', at risk' if risk else ''};"
        assert described in alt
    assert f"Orphans 18 items, job size {orphan_size:,.0f}." in alt
    assert "3 Key Results at risk" in " ".join(Page(rendered.html).text)


def test_coverage_counts_every_item_when_the_document_capped_the_list() -> None:
    result = build_cycle_result()
    first = result.alignment.objectives[0].key_results[1]
    mix = dict(first.status_mix)
    mix[StatusCategory.IN_PROGRESS] += 250
    capped = KeyResultAlignment(
        id=first.id,
        title=first.title,
        items=first.items[:1],
        item_count=first.item_count + 250,
        status_mix=mix,
        job_size_total=first.job_size_total + 1000,
    )
    result.alignment.objectives[0].key_results[1] = capped
    coverage = key_result_coverage(result)
    assert coverage is not None
    row = coverage.key_results[1]
    assert (row.label, row.items, row.job_size) == ("KR1.2", 254, 1076)


def test_a_big_okr_tree_charts_the_first_key_results_and_lists_all_in_the_text() -> None:
    result = build_cycle_result(first_run=True)
    extra = [KeyResultAlignment(id=f"KR9.{n}", title=f"Key Result {n}") for n in range(1, 41)]
    result.alignment.objectives.append(
        ObjectiveAlignment(id="O9", title="Many Key Results", key_results=extra)
    )
    rendered = render_report(result)
    coverage = key_result_coverage(result)
    assert coverage is not None and coverage.not_charted == 47 - MAX_CHART_KEY_RESULTS
    assert len(coverage.charted) == MAX_CHART_KEY_RESULTS + 1
    assert f"first {MAX_CHART_KEY_RESULTS} of 47 Key Results" in rendered.html
    assert len(_text_table(rendered.text)) == 48
    with Image.open(io.BytesIO(rendered.images[0].png)) as png:
        assert png.height < 1.2 * 160 + (MAX_CHART_KEY_RESULTS + 1) * 0.3 * 160 + 2


def test_no_key_results_means_no_coverage_chart_or_section() -> None:
    result = build_cycle_result(first_run=True)
    result.alignment.objectives.clear()
    rendered = render_report(result)
    assert rendered.images == ()
    assert "Key Result coverage" not in rendered.html
    assert "KEY RESULT COVERAGE" not in rendered.text
