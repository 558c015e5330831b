"""The config's `capacity:` section, and the checks that tie the OKR file's measures to the
config's connections.

Capacity is job-size points per team (or value stream) and planning interval; the intervals
take the WSJF-ranked demand in the order they are written (`spm_sync.engines.portfolio.capacity`).
One interval can be written short (`interval:` and `teams:`), several as a list:

    capacity:
      by: team
      intervals:
        - name: 2026-Q4
          teams: {Mobile: 120, Web: 80}
        - name: 2027-Q1
          teams: {Mobile: 100, Web: 0}

A team with 0 points in an interval is allowed (it is reported: nothing fits); a team missing
from an interval has 0 points there. Example: `config/spm-sync.example.yaml`.
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from connectors.settings import StrictModel
from spm_sync.config.okrs import OkrSet
from spm_sync.config.validation import scalar_text
from spm_sync.engines.portfolio.capacity import HIGH_WSJF_BELOW, IntervalCapacity

Name = Annotated[str, BeforeValidator(scalar_text), Field(min_length=1)]
Points = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class IntervalSettings(StrictModel):
    name: Name
    """The planning interval as people name it (2026-Q4, PI 26.4, Sprint 42)."""
    teams: dict[Name, Points] = Field(min_length=1)
    """Team (or value stream) -> job-size points it can take in this interval."""

    @field_validator("teams")
    @classmethod
    def _teams_once(cls, teams: dict[str, float]) -> dict[str, float]:
        counts = Counter(team.casefold() for team in teams)
        twice = [team for team in teams if counts[team.casefold()] > 1]
        if twice:
            raise ValueError(
                f"teams {', '.join(map(repr, twice))} are the same team (names ignore case)"
            )
        return teams


class CapacitySettings(StrictModel):
    by: Literal["team", "value_stream"] = "team"
    """`team`: an item's team (Jira: its project; Azure DevOps: its area path);
    `value_stream`: its value stream as `flow.value_streams` names it."""
    intervals: list[IntervalSettings] = Field(min_length=1)
    """Planning intervals in the order the work is to be done."""
    high_wsjf_below: int = Field(HIGH_WSJF_BELOW, ge=0, le=50)
    """How many of the best-WSJF items below each cut line the report names."""

    @model_validator(mode="before")
    @classmethod
    def _one_interval_short(cls, data: Any) -> Any:
        if isinstance(data, dict) and ("interval" in data or "teams" in data):
            if "intervals" in data:
                raise ValueError("give either interval and teams, or intervals, not both")
            data = dict(data)
            short = {"name": data.pop("interval", None), "teams": data.pop("teams", None)}
            data["intervals"] = [{k: v for k, v in short.items() if v is not None}]
        return data

    @field_validator("intervals")
    @classmethod
    def _intervals_once(cls, intervals: list[IntervalSettings]) -> list[IntervalSettings]:
        counts = Counter(interval.name for interval in intervals)
        twice = sorted(name for name, count in counts.items() if count > 1)
        if twice:
            raise ValueError(f"interval {twice[0]!r} is given {counts[twice[0]]} times")
        return intervals

    def by_team(self) -> dict[str, list[IntervalCapacity]]:
        """Team -> its points per interval, every interval (0 where the team is not named);
        teams in the order first named, spelled as first named."""
        teams: dict[str, str] = {}
        for interval in self.intervals:
            for team in interval.teams:
                teams.setdefault(team.casefold(), team)
        plan: dict[str, list[IntervalCapacity]] = {}
        for folded, team in teams.items():
            plan[team] = [
                IntervalCapacity(interval.name, _points(interval.teams, folded))
                for interval in self.intervals
            ]
        return plan


def _points(teams: dict[str, float], folded: str) -> float:
    return next((points for team, points in teams.items() if team.casefold() == folded), 0.0)


def key_result_paths(okr_set: OkrSet) -> dict[str, str]:
    """Key Result id (case folded) -> its key path in the OKR file."""
    paths: dict[str, str] = {}
    for o_index, objective in enumerate(okr_set.objectives):
        for k_index, key_result in enumerate(okr_set.key_results_of(objective.id)):
            paths[key_result.id.casefold()] = (
                f"{okr_set.source_display}: objectives[{o_index}].key_results[{k_index}]"
            )
    return paths


def portfolio_reference_problems(okr_set: OkrSet, connections: list[str]) -> list[str]:
    """Measures whose query names a connection the config does not have."""
    where = key_result_paths(okr_set)
    problems = []
    for kr_id, extras in okr_set.extras.key_results.items():
        for connection in extras.queries:
            if connection not in connections:
                problems.append(
                    f"{where.get(kr_id, kr_id)}.measure.query: no connection named "
                    f"{connection!r} (connections: {', '.join(connections)})"
                )
    return problems
