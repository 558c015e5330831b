"""What the OKR file says about OKRs that measure themselves: weights, measures, parents.

A Key Result may state its `weight` in its objective and a `measure`: the query, per
connection, whose answer is its current value each run (`spm_sync.engines.portfolio.measures` turns
the answer into a number). An objective may name its `parent` objective and its own `weight`
there, and `aliases`: keys of tracker items that stand for it (`okr.objective_types`).

Weights need not add up to 1 (percentages or points are fine): the roll-up scales them and the
report says so. A measure's connection names are checked against the config when both are
loaded (`spm_sync.config.portfolio.portfolio_reference_problems`); the OKR file alone does not
know them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BeforeValidator, Field, model_validator

from connectors.settings import StrictModel
from spm_sync.config.validation import scalar_text
from spm_sync.engines.portfolio.measures import MANUAL, Measure, MeasureKind

if TYPE_CHECKING:
    from spm_sync.config.okrs import ObjectiveEntry

Weight = Annotated[float, Field(gt=0, allow_inf_nan=False)]
"""A part's share of its objective: any positive number (scaled with its siblings)."""
QueryText = Annotated[str, BeforeValidator(scalar_text), Field(min_length=1)]
ConnectionName = Annotated[str, BeforeValidator(scalar_text), Field(min_length=1)]


class MeasureEntry(StrictModel):
    """How a Key Result measures itself each run.

    `query` maps a connection name to its JQL (Jira) or WIQL (Azure DevOps: a whole query or
    only the condition); with several connections the answers are added up (`count`, `sum`) or
    pooled (`share_done`). `field` is the summed field (`sum` only), named as in the
    connection's WSJF fields (a field name or id).
    """

    kind: Literal["count", "sum", "share_done", "manual"]
    query: dict[ConnectionName, QueryText] = Field(default_factory=dict)
    field: Annotated[str, BeforeValidator(scalar_text), Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _query_fits_kind(self) -> MeasureEntry:
        if self.kind == "manual":
            if self.query or self.field is not None:
                raise ValueError(
                    "a manual measure takes neither query nor field: its value is `current`"
                )
            return self
        if not self.query:
            raise ValueError(
                f"a {self.kind} measure needs a query: {{<connection name>: <JQL or WIQL>}}"
            )
        if self.kind == "sum" and self.field is None:
            raise ValueError("a sum measure needs field: the numeric field to add up")
        if self.kind != "sum" and self.field is not None:
            raise ValueError(f"field is only read by a sum measure, not by {self.kind}")
        return self

    def measure(self) -> Measure:
        return Measure(MeasureKind(self.kind), self.field)


@dataclass(frozen=True, slots=True)
class KeyResultExtras:
    weight: float | None = None
    measure: Measure = MANUAL
    queries: Mapping[str, str] = field(default_factory=dict)
    """Connection name -> query text, in file order (empty for a manual measure)."""


@dataclass(frozen=True, slots=True)
class ObjectiveExtras:
    weight: float | None = None
    parent: str | None = None
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OkrExtras:
    """Per id (case folded): what the portfolio reads beyond the domain's objectives and Key
    Results."""

    key_results: Mapping[str, KeyResultExtras] = field(default_factory=dict)
    objectives: Mapping[str, ObjectiveExtras] = field(default_factory=dict)

    def key_result(self, kr_id: str) -> KeyResultExtras:
        return self.key_results.get(kr_id.casefold(), KeyResultExtras())

    def objective(self, objective_id: str) -> ObjectiveExtras:
        return self.objectives.get(objective_id.casefold(), ObjectiveExtras())

    def objective_for_alias(self, name: str) -> str | None:
        """The objective id (case folded) whose alias is `name`, ignoring case."""
        wanted = name.casefold()
        for objective_id, extras in self.objectives.items():
            if any(alias.casefold() == wanted for alias in extras.aliases):
                return objective_id
        return None

    def queries_by_connection(self) -> dict[str, list[str]]:
        """Connection name -> the Key Result ids that query it, in file order."""
        found: dict[str, list[str]] = {}
        for kr_id, extras in self.key_results.items():
            for connection in extras.queries:
                found.setdefault(connection, []).append(kr_id)
        return found


def okr_extras(objectives: Sequence[ObjectiveEntry]) -> OkrExtras:
    key_results: dict[str, KeyResultExtras] = {}
    found: dict[str, ObjectiveExtras] = {}
    for objective in objectives:
        found[objective.id.casefold()] = ObjectiveExtras(
            objective.weight, objective.parent, tuple(dict.fromkeys(objective.aliases))
        )
        for entry in objective.key_results:
            measure = entry.measure
            key_results[entry.id.casefold()] = KeyResultExtras(
                weight=entry.weight,
                measure=measure.measure() if measure is not None else MANUAL,
                queries=dict(measure.query) if measure is not None else {},
            )
    return OkrExtras(key_results, found)
