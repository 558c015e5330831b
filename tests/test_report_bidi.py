"""Bidirectional controls in tracker text never reach the report raw (HTML, text, subject),
and right-to-left titles still display in their own direction, isolated from their row."""

from __future__ import annotations

from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import pytest

from reports.bidi import BIDI_CONTROLS, neutralise_bidi
from reports.email import compose_email
from reports.render import RenderedReport, render_report
from reports.settings import EmailSettings
from spm_sync.core.results import CycleResult
from tests.report_fixtures import build_cycle_result

RLO, PDF, LRE = "\u202e", "\u202c", "\u202a"  # override, pop, embedding
RLI, LRI = "\u2067", "\u2066"  # isolates
RLM, ALM = "\u200f", "\u061c"  # marks
SPOOFED = f"Quarterly invoice {RLO}fdp.exe"
"""Displays as "Quarterly invoice exe.pdf" where the control is obeyed."""
HEBREW = "שיפור תהליך התשלום"
ARABIC = "تحسين تجربة الدفع"


def _hostile_document() -> CycleResult:
    """The fixture's cycle document with controls in every kind of tracker text, read back
    from its JSON form as the report command reads a stored run."""
    document: dict[str, Any] = build_cycle_result(orphans=3).model_dump(mode="json")
    objective = document["alignment"]["objectives"][0]
    objective["title"] = f"Grow {LRE}EMEA{PDF} revenue"
    objective["owner"] = f"Chief {RLM}Product Officer"
    key_result = objective["key_results"][0]
    key_result["title"] = f"Raise conversion {ALM}to 3.5%"
    key_result["items"][0]["title"] = SPOOFED
    key_result["items"][1]["title"] = HEBREW
    key_result["items"][2]["title"] = ARABIC
    for orphan in document["alignment"]["orphans"]:
        orphan["title"] = SPOOFED
        orphan["team"] = f"Team {RLI}Payments"
        orphan["reason"] = f"no label, parent {LRI}PAY-1"
    document["wsjf"][0]["title"] = SPOOFED
    document["wip"][0]["team"] = f"Pay{RLO}ments"
    document["writes"]["rows"][0]["error"] = f"field {RLO}locked"
    document["connections"][0]["error"] = f"HTTP 500: {RLO}tset"
    document["status"] = "partial"
    document["errors"] = [f"jira-cloud: item {RLO}PAY-9 unreadable"]
    return CycleResult.model_validate(document)


@pytest.fixture(scope="module")
def rendered() -> RenderedReport:
    return render_report(_hostile_document())


class Isolates(HTMLParser):
    """The text of each `dir="auto"` element, and all text of the page."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.isolated: list[str] = []
        self.text: list[str] = []
        self._depth: list[bool] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "span":
            isolating = dict(attrs).get("dir") == "auto"
            self._depth.append(isolating)
            if isolating:
                self.isolated.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "span" and self._depth:
            self._depth.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if any(self._depth):
            self.isolated[-1] += data


def _documents(rendered: RenderedReport) -> dict[str, str]:
    return {
        "html": rendered.html,
        "file_html": rendered.file_html,
        "full_html": rendered.full_html,
        "text": rendered.text,
    }


def test_no_control_reaches_any_rendering(rendered: RenderedReport) -> None:
    for name, document in _documents(rendered).items():
        raw = sorted(f"U+{ord(ch):04X}" for ch in set(document) & BIDI_CONTROLS)
        assert raw == [], f"{name} carries raw controls {raw}"
        assert "Quarterly invoice ⟨U+202E⟩fdp.exe" in document, name
        for marker in ("⟨U+202A⟩", "⟨U+202C⟩", "⟨U+200F⟩", "⟨U+061C⟩", "⟨U+2067⟩", "⟨U+2066⟩"):
            assert marker in document, (name, marker)


def test_errors_and_write_rows_are_neutralised_too(rendered: RenderedReport) -> None:
    full_text = " ".join(Isolates(rendered.full_html).text)
    assert "field ⟨U+202E⟩locked" in full_text  # the capped parts may leave that row out
    for document in (full_text, rendered.text):
        assert "item ⟨U+202E⟩PAY-9 unreadable" in document
        assert "HTTP 500: ⟨U+202E⟩tset" in document


def test_titles_are_isolated_and_right_to_left_titles_stay_intact(
    rendered: RenderedReport,
) -> None:
    for html in (rendered.html, rendered.full_html):
        isolated = Isolates(html).isolated
        assert "Quarterly invoice ⟨U+202E⟩fdp.exe" in isolated
        assert HEBREW in isolated and ARABIC in isolated
        assert "Raise conversion ⟨U+061C⟩to 3.5%" in isolated
        assert "Team ⟨U+2067⟩Payments" in isolated
        assert "Pay⟨U+202E⟩ments" in isolated
    assert HEBREW in rendered.text and ARABIC in rendered.text


def test_the_email_subject_and_parts_carry_no_control(rendered: RenderedReport) -> None:
    settings = EmailSettings(
        host="127.0.0.1",
        sender="Portfolio Office <pmo@example.com>",
        to=("vp@example.com",),
        subject=f"Alignment {RLO}{{date}}: {{alignment_pct}} aligned",
    )
    message = compose_email(rendered, settings, clock=lambda: datetime(2026, 3, 2, tzinfo=UTC))
    aligned = rendered.subject_fields["alignment_pct"]
    # The run was partial: the subject says so first, whatever the template.
    outcome = rendered.subject_fields["outcome"]
    assert outcome.startswith("PARTIAL")
    assert message["Subject"] == f"{outcome}: Alignment ⟨U+202E⟩2026-03-02: {aligned} aligned"
    for part in message.walk():
        if part.get_content_maintype() == "text":
            content = part.get_content()
            assert not set(content) & BIDI_CONTROLS
            assert "⟨U+202E⟩" in content


def test_a_run_id_with_a_control_is_neutralised_in_the_default_subject() -> None:
    result = build_cycle_result(orphans=3, run_id=f"run-{RLO}101")
    rendered = render_report(result)
    settings = EmailSettings(
        host="127.0.0.1", sender="pmo@example.com", to=("vp@example.com",), subject="{run_id}"
    )
    assert compose_email(rendered, settings)["Subject"] == "run-⟨U+202E⟩101"
    assert not set(rendered.html + rendered.text) & BIDI_CONTROLS


def test_neutralise_bidi_leaves_ordinary_text_alone() -> None:
    assert neutralise_bidi(HEBREW) == HEBREW
    assert neutralise_bidi("Zahlung – 支付 🚀") == "Zahlung – 支付 🚀"
    assert neutralise_bidi(f"a{RLO}b{PDF}") == "a⟨U+202E⟩b⟨U+202C⟩"
    assert all(len(neutralise_bidi(ch)) == len("⟨U+202E⟩") for ch in BIDI_CONTROLS)
