"""The OKR file: objectives and their key results, validated like the config.

Ids are unique across the whole file, ignoring case, because labels and tags are matched
case-insensitively (`kr-growth-1` names `Growth-1`). An alias (a label suffix, or the key of a
tracker item that stands for the Key Result) must not name a different Key Result either,
or a label would count toward two of them. Example: `config/okrs.example.yaml`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator, Field, ValidationError, model_validator

from connectors.settings import StrictModel
from spm_sync.config.okr_measures import (
    MeasureEntry,
    OkrExtras,
    Weight,
    okr_extras,
)
from spm_sync.config.validation import (
    ConfigError,
    read_yaml_mapping,
    scalar_text,
    validation_problems,
)
from spm_sync.core.domain import KeyResult, Objective

OkrId = Annotated[
    str,
    BeforeValidator(scalar_text),
    Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/-]*$", max_length=100),
]
Text = Annotated[str, BeforeValidator(scalar_text), Field(min_length=1)]


class KeyResultEntry(StrictModel):
    id: OkrId
    title: Text
    target: float | None = None
    current: float | None = None
    baseline: float | None = None
    """Where the measure started: with it, progress runs from baseline to target either way
    ("lower churn to 2%" starts above its target), and a met target is known."""
    aliases: list[Annotated[str, BeforeValidator(scalar_text), Field(min_length=1)]] = Field(
        default_factory=list
    )
    weight: Weight | None = None
    """Share of its objective (`spm_sync.config.okr_measures`); unset on every part: equal
    shares."""
    measure: MeasureEntry | None = None
    """How the current value is measured each run; unset: `current` as typed (manual)."""

    @model_validator(mode="after")
    def _baseline_needs_a_distinct_target(self) -> KeyResultEntry:
        if self.baseline is not None and self.target is None:
            raise ValueError("baseline is set but target is not: progress needs both")
        if self.baseline is not None and self.baseline == self.target:
            raise ValueError(
                f"baseline equals target ({self.target:g}): there is no way to go from one to "
                "the other"
            )
        return self


class ObjectiveEntry(StrictModel):
    id: OkrId
    title: Text
    owner: Text | None = None
    period: Text | None = None
    target_date: date | None = None
    """When the objective's work should be done: flow forecasts compare their 85% date with
    it (an objective without one gets dates, but no verdict)."""
    key_results: list[KeyResultEntry] = Field(default_factory=list)
    parent: OkrId | None = None
    """The objective this one rolls up into (an objective id); unset: a top objective."""
    weight: Weight | None = None
    """Share of its parent objective, like a Key Result's weight."""
    aliases: list[Annotated[str, BeforeValidator(scalar_text), Field(min_length=1)]] = Field(
        default_factory=list
    )
    """Keys of tracker items that stand for this objective (`okr.objective_types`)."""


class OkrFile(StrictModel):
    objectives: list[ObjectiveEntry] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class OkrSet:
    """The objectives and key results of one OKR file, with case-insensitive lookups."""

    objectives: tuple[Objective, ...]
    key_results: tuple[KeyResult, ...]
    source_display: str = "the OKR file"
    extras: OkrExtras = field(default_factory=OkrExtras)
    """Weights, measures, parents and objective aliases: what only the portfolio reads."""

    def key_result(self, key_result_id: str) -> KeyResult | None:
        wanted = key_result_id.casefold()
        return next((kr for kr in self.key_results if kr.id.casefold() == wanted), None)

    def objective(self, objective_id: str) -> Objective | None:
        wanted = objective_id.casefold()
        return next((o for o in self.objectives if o.id.casefold() == wanted), None)

    def key_results_of(self, objective_id: str) -> tuple[KeyResult, ...]:
        return tuple(kr for kr in self.key_results if kr.objective_id == objective_id)

    def resolve(self, name: str) -> KeyResult | None:
        """The Key Result whose id or one of whose aliases is `name` (ignoring case)."""
        wanted = name.casefold()
        for key_result in self.key_results:
            if key_result.id.casefold() == wanted:
                return key_result
        for key_result in self.key_results:
            if any(alias.casefold() == wanted for alias in key_result.aliases):
                return key_result
        return None


def load_okrs(path: str | Path, display: str | None = None) -> OkrSet:
    """Read and validate an OKR file; `ConfigError` lists every problem, one per line."""
    path = Path(path)
    display = display or str(path)
    data = read_yaml_mapping(path, display)
    try:
        parsed = OkrFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(validation_problems(display, exc, OkrFile, data)) from None
    problems = [f"{display}: {line}" for line in _name_clashes(parsed)]
    if problems:
        raise ConfigError(problems)
    return _to_domain(parsed, display)


def _name_clashes(parsed: OkrFile) -> list[str]:
    """Ids used twice, and aliases that name a different Key Result or objective."""
    owners: dict[str, str] = {}
    problems: list[str] = []
    for o_index, objective in enumerate(parsed.objectives):
        where = f"objectives[{o_index}]"
        problems += _claim(owners, objective.id, f"{where}.id", where)
        for k_index, key_result in enumerate(objective.key_results):
            kr_where = f"{where}.key_results[{k_index}]"
            problems += _claim(owners, key_result.id, f"{kr_where}.id", kr_where)
    for o_index, objective in enumerate(parsed.objectives):
        where = f"objectives[{o_index}]"
        for a_index, alias in enumerate(objective.aliases):
            if alias.casefold() != objective.id.casefold():
                problems += _claim(owners, alias, f"{where}.aliases[{a_index}]", where)
        for k_index, key_result in enumerate(objective.key_results):
            kr_where = f"{where}.key_results[{k_index}]"
            for a_index, alias in enumerate(key_result.aliases):
                if alias.casefold() == key_result.id.casefold():
                    continue
                problems += _claim(owners, alias, f"{kr_where}.aliases[{a_index}]", kr_where)
    return problems


def _claim(owners: dict[str, str], name: str, key_path: str, owner: str) -> list[str]:
    previous = owners.setdefault(name.casefold(), owner)
    if previous == owner:
        return []
    return [f"{key_path}: {name!r} is already used by {previous} (ids and aliases ignore case)"]


def _to_domain(parsed: OkrFile, display: str) -> OkrSet:
    objectives = tuple(
        Objective(
            id=entry.id,
            title=entry.title,
            owner=entry.owner,
            period=entry.period,
            target_date=entry.target_date,
        )
        for entry in parsed.objectives
    )
    key_results = tuple(
        KeyResult(
            id=entry.id,
            objective_id=objective.id,
            title=entry.title,
            target=entry.target,
            current=entry.current,
            baseline=entry.baseline,
            aliases=tuple(dict.fromkeys(entry.aliases)),
        )
        for objective in parsed.objectives
        for entry in objective.key_results
    )
    return OkrSet(objectives, key_results, display, okr_extras(parsed.objectives))
