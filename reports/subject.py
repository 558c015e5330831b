"""The email subject's values: what a reader sees before opening the email.

Two things a subject must never hide (see `reports.settings.DEFAULT_SUBJECT`):
- a run that was partial or failed, with the trackers that failed and what the figures then
  cover (`outcome`): the alignment figure of a run where Jira failed covers Jira only with the
  items of an earlier pull, or not at all. It is put in front of any subject template that
  does not place it itself (`subject_line`);
- the change since the previous completed cycle (`change`): two nights with the same subject
  read as "nothing happened" even when three new orphans replaced three resolved ones.
"""

from __future__ import annotations

import string

from reports.formatting import format_count, format_pct
from spm_sync.core.results import CycleResult


def subject_fields(result: CycleResult) -> dict[str, str]:
    """Values for the placeholders of `EmailSettings.subject` (`SUBJECT_FIELDS`)."""
    headline = result.headline
    return {
        "run_id": result.run_id,
        "date": f"{result.finished:%Y-%m-%d}",
        "status": result.status,
        "alignment_pct": format_pct(headline.alignment_pct_items),
        "alignment_pct_job_size": format_pct(headline.alignment_pct_job_size),
        "orphans": format_count(headline.orphans),
        "uncovered_key_results": format_count(headline.uncovered_key_results),
        "change": change_text(result),
        "outcome": outcome_text(result),
    }


def subject_line(template: str, fields: dict[str, str]) -> str:
    """The template filled in, with the outcome in front when the run was not ok and the
    template does not place `{outcome}` itself."""
    subject = " ".join(template.format_map(fields).split())
    names = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    outcome = fields.get("outcome", "")
    if outcome and "outcome" not in names:
        subject = f"{outcome}: {subject}"
    return subject


def outcome_text(result: CycleResult) -> str:
    """'' for a run that went well; else what went wrong and what the figures cover, e.g.
    'PARTIAL, jira failed, figures cover azure-devops only'."""
    if result.undoes is not None:
        kind = "dry run, nothing written" if result.mode == "plan" else "writes restored"
        return f"UNDO of run {result.undoes} ({kind})"
    if result.status == "ok":
        return ""
    failed = [c.name for c in result.connections if c.problem]
    if result.status == "failed":
        return f"FAILED, {_names(failed)} not read" if failed else "FAILED"
    if not failed:
        stages = sorted({error.split(":", 1)[0] for error in result.errors})
        return f"PARTIAL, {_names(stages)} failed" if stages else "PARTIAL"
    text = f"PARTIAL, {_names(failed)} failed"
    figures = {c.name: c for c in result.alignment.by_connection}
    stale = [name for name in failed if name in figures and figures[name].in_scope_count]
    covered = [c.name for c in result.connections if c.problem is None]
    if stale:
        text += f", {_names(stale)} counted from {'its' if len(stale) == 1 else 'their'} last pull"
    elif covered:
        text += f", figures cover {_names(covered)} only"
    return text


def change_text(result: CycleResult) -> str:
    """'+1.2 pts, 3 new orphans', 'no change since run 41', 'first run'."""
    if result.undoes is not None:
        return f"{format_count(result.writes.total)} restoring writes"
    change, previous = result.change, result.previous
    if change is None or previous is None:
        return "first run"
    parts = []
    points = change.alignment_pct_items
    if points is not None and round(points, 1) != 0:
        parts.append(f"{points:+.1f} pts")
    orphans = result.orphan_changes
    if orphans is not None and orphans.compared:
        if orphans.new_count:
            parts.append(f"{format_count(orphans.new_count)} new orphan" + _s(orphans.new_count))
        if orphans.resolved_count:
            parts.append(f"{format_count(orphans.resolved_count)} resolved")
    elif change.orphans:
        parts.append(f"{change.orphans:+,} orphan" + _s(change.orphans))
    return ", ".join(parts) if parts else f"no change since run {previous.run_id}"


def _names(names: list[str]) -> str:
    return " and ".join(names) if len(names) < 3 else ", ".join(names[:-1]) + " and " + names[-1]


def _s(count: int) -> str:
    return "" if abs(count) == 1 else "s"
