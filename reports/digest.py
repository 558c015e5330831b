"""The digest at the top of the report: what a portfolio manager reads in thirty seconds.

Modelled on a weekly goals update: what changed since the last completed cycle, each top
objective on track / at risk / off track with its progress bar, the orphans that are new, and
the writes this run made, per tracker and field. Everything below it in the report is the
detail behind these lines, so the digest recomputes nothing: progress and confidence come from
the portfolio roll-up (`reports.portfolio_view`), Key Results nothing moves from the alignment
part, forecasts from the flow part, new orphans and write tallies from the result document
(`spm_sync.core.results_change`).

An objective's status (`objective_status`), the first rule that applies:
- off track: even the 50% forecast finishes after its target date (more likely late than not);
- on track: its progress has reached 100%;
- at risk: the 85% forecast finishes after the target date, or one of its Key Results has no
  active work (and has not met its target: `KeyResultAlignment.at_risk`), or its progress
  stands on less than half clean measurements (confidence under 50%);
- not measured: no progress could be measured and no forecast says anything;
- on track otherwise.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from reports.caps import Caps, Shown
from reports.formatting import format_count
from reports.portfolio_view import ObjectiveNode, PortfolioView
from reports.subject import change_text, outcome_text
from spm_sync.core.results import CycleResult
from spm_sync.core.results_alignment import Orphan
from spm_sync.core.results_flow import ObjectiveForecastRow

CONFIDENCE_FLOOR = 0.5
STATUSES: dict[str, tuple[str, str]] = {
    # status: (label, badge class)
    "off_track": ("OFF TRACK", "risk"),
    "at_risk": ("AT RISK", "warn"),
    "on_track": ("ON TRACK", "ok"),
    "not_measured": ("NOT MEASURED", "m"),
}


@dataclass(frozen=True)
class ObjectiveLine:
    id: str
    title: str
    url: str | None
    bar: int | None
    progress: str
    status: str
    reason: str
    anchor: str | None

    @property
    def label(self) -> str:
        return STATUSES[self.status][0]

    @property
    def badge(self) -> str:
        return STATUSES[self.status][1]


@dataclass(frozen=True)
class WriteLine:
    """One tracker's writes: what became of them, and to which fields."""

    connection: str
    text: str
    """'383 written, 2 skipped as conflicts' or '40 planned'."""
    fields: str
    """'rank 70 · wsjf_score 84'."""
    tone: str


@dataclass(frozen=True)
class Digest:
    outcome: str
    """'' when the run went well (see `reports.subject.outcome_text`)."""
    since: str | None
    """'run 41 (02 Dec 2026)'; None on a first run."""
    change: str
    objectives: Shown[ObjectiveLine]
    status_counts: list[tuple[str, str, int]]
    """(label, badge, count) for each status that occurs, worst first."""
    new_orphans: Shown[Orphan]
    resolved_orphans: int
    orphans_compared: bool
    """Whether new orphans are known (the previous run's were compared), else only net."""
    writes: list[WriteLine]
    writes_total: int


def build_digest(result: CycleResult, portfolio: PortfolioView | None, caps: Caps) -> Digest:
    previous = result.previous
    lines = _objective_lines(result, portfolio)
    counts: dict[str, int] = defaultdict(int)
    for line in lines:
        counts[line.status] += 1
    changes = result.orphan_changes
    compared = changes is not None and bool(changes.compared)
    new = _new_orphans(result) if compared else []
    change = change_text(result)
    return Digest(
        outcome=outcome_text(result),
        since=f"run {previous.run_id} ({previous.finished:%d %b %Y})" if previous else None,
        change="no change" if change.startswith("no change") else change,
        objectives=Shown.cap(lines, caps.digest_objectives),
        status_counts=[
            (label, badge, counts[status])
            for status, (label, badge) in STATUSES.items()
            if counts[status]
        ],
        new_orphans=Shown.cap(new, caps.digest_orphans, changes.new_count if changes else 0),
        resolved_orphans=changes.resolved_count if changes else 0,
        orphans_compared=compared,
        writes=_write_lines(result),
        writes_total=result.writes.total,
    )


def objective_status(
    progress: float | None,
    confidence: float,
    forecast: ObjectiveForecastRow | None,
    key_results_at_risk: int,
) -> tuple[str, str]:
    """(status, reason) by the rules of the module docstring."""
    target = forecast.target_date if forecast else None
    if forecast and target and forecast.p50 and forecast.p50 > target:
        return "off_track", f"50% forecast {forecast.p50:%d %b} is after the target {target:%d %b}"
    if progress is not None and progress >= 100:
        return "on_track", "target reached"
    if forecast and forecast.at_risk:
        when = f"{forecast.p85:%d %b}" if forecast.p85 else "beyond the horizon"
        due = f" {target:%d %b}" if target else ""
        return "at_risk", f"85% forecast {when} is after the target{due}"
    if key_results_at_risk:
        plural = "s" if key_results_at_risk != 1 else ""
        return "at_risk", f"{key_results_at_risk} Key Result{plural} with no active work"
    if progress is None:
        return "not_measured", "no Key Result of it could be measured"
    if confidence < CONFIDENCE_FLOOR:
        return "at_risk", f"only {confidence:.0%} of its progress is measured cleanly"
    return "on_track", f"confidence {confidence:.0%}"


def _objective_lines(result: CycleResult, portfolio: PortfolioView | None) -> list[ObjectiveLine]:
    forecasts = {row.objective_id: row for row in (result.flow.forecasts if result.flow else [])}
    objectives = result.alignment.objectives
    kr_at_risk = {kr.id: kr.at_risk for objective in objectives for kr in objective.key_results}
    if portfolio is not None:
        tops = [node for node in portfolio.objectives.rows if node.row.depth == 0]
        return [_from_tree(node, forecasts, kr_at_risk) for node in tops]
    lines = []
    for objective in result.alignment.objectives:
        at_risk = sum(1 for kr in objective.key_results if kr.at_risk)
        status, reason = objective_status(None, 0.0, forecasts.get(objective.id), at_risk)
        lines.append(
            ObjectiveLine(
                objective.id, objective.title, None, None, "not measured", status, reason,
                f"okr-{objective.id}",
            )
        )  # fmt: skip
    return lines


def _from_tree(
    node: ObjectiveNode,
    forecasts: dict[str, ObjectiveForecastRow],
    kr_at_risk: dict[str, bool],
) -> ObjectiveLine:
    row = node.row
    at_risk = sum(1 for kr in row.key_results if kr_at_risk.get(kr.id, False))
    status, reason = objective_status(
        row.progress_pct, row.confidence, forecasts.get(row.id), at_risk
    )
    return ObjectiveLine(
        row.id, row.title, row.url, node.bar, node.progress, status, reason, node.anchor
    )


def _new_orphans(result: CycleResult) -> list[Orphan]:
    """The new orphans' rows, biggest job size first (what grew the most unaligned work)."""
    if result.orphan_changes is None:
        return []
    new = {(ref.connection, ref.key) for ref in result.orphan_changes.new}
    rows = [o for o in result.alignment.orphans if (o.connection, o.key) in new]
    return sorted(rows, key=lambda o: (-(o.job_size or 0.0), o.connection, o.key))


WRITE_WORDS = (
    ("written", "written"),
    ("failed", "failed"),
    ("conflict", "skipped as conflicts"),
    ("planned", "planned"),
    ("unchanged", "unchanged"),
)


def _tallies(result: CycleResult) -> list[tuple[str, str, dict[str, int]]]:
    """(connection, field, counts) from the tally, or from the rows of an older document."""
    tallies = [(t.connection, t.field.value, dict(t.counts)) for t in result.writes.by_target]
    if not tallies and not result.writes.rows_omitted:
        grouped: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for row in result.writes.rows:
            grouped[(row.connection, row.field.value)][row.status] += 1
        tallies = [(c, f, dict(n)) for (c, f), n in sorted(grouped.items())]
    return tallies


def _outcomes(counts: dict[str, int]) -> tuple[str, str]:
    """('10 written, 2 skipped as conflicts', tone)."""
    parts = [f"{format_count(counts[s])} {word}" for s, word in WRITE_WORDS if counts.get(s)]
    bad = counts.get("failed", 0) or counts.get("conflict", 0)
    return ", ".join(parts), "bad" if bad else "neutral"


def write_tally(result: CycleResult) -> list[WriteLine]:
    """Every connection and field the run wrote (or planned), with what became of the writes:
    the write-back section's breakdown, however many rows its audit list shows."""
    lines = []
    for connection, field, counts in _tallies(result):
        text, tone = _outcomes(counts)
        lines.append(WriteLine(connection, text, field, tone))
    return lines


def _write_lines(result: CycleResult) -> list[WriteLine]:
    """One line per connection: what became of its writes, and how many went to each field."""
    tallies = _tallies(result)
    statuses: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    fields: dict[str, list[str]] = defaultdict(list)
    for connection, field, counts in tallies:
        for status, count in counts.items():
            statuses[connection][status] += count
        fields[connection].append(f"{field} {format_count(sum(counts.values()))}")
    lines = []
    for connection, counts in statuses.items():
        text, tone = _outcomes(counts)
        lines.append(WriteLine(connection, text, " · ".join(fields[connection]), tone))
    return lines
