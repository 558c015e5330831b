"""Config for OKRs that measure themselves: Key Result weights and measures, objective parents
and aliases in the OKR file, `okr.objective_types` on connections, and the `capacity:` section;
every mistake named with its file, key and what was expected."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from spm_sync.config.model import ConfigError, load_config
from spm_sync.config.okrs import load_okrs
from spm_sync.config.portfolio import CapacitySettings
from spm_sync.engines.portfolio.capacity import IntervalCapacity
from spm_sync.engines.portfolio.measures import Measure, MeasureKind
from spm_sync.engines.portfolio.okr_tree import merge_okrs
from spm_sync.engines.portfolio.rollup import roll_up
from spm_sync.pipeline.portfolio_input import file_records
from tests.cycle_fixtures import fake_config


def okr_file(tmp_path: Path, key_results: list[dict[str, Any]], **objective: Any) -> Path:
    path = tmp_path / "okrs.yaml"
    data = {"objectives": [{"id": "O1", "title": "Grow", "key_results": key_results, **objective}]}
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def okr_problems(tmp_path: Path, key_results: list[dict[str, Any]], **objective: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_okrs(okr_file(tmp_path, key_results, **objective), display="okrs.yaml")
    return caught.value.problems


def config_problems(tmp_path: Path, **top: Any) -> list[str]:
    path = fake_config(tmp_path).source
    assert path is not None
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data.update(top)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.problems


def test_weights_and_measures_are_read(tmp_path: Path) -> None:
    okrs = load_okrs(
        okr_file(
            tmp_path,
            [
                {
                    "id": "KR-1",
                    "title": "a",
                    "weight": 60,
                    "measure": {"kind": "sum", "field": "Story Points", "query": {"jira": "x"}},
                },
                {"id": "KR-2", "title": "b", "weight": 40},
            ],
            aliases=["PAY-100"],
            parent="O0",
            weight=2,
        )
    )
    kr1 = okrs.extras.key_result("kr-1")
    assert (kr1.weight, kr1.measure, dict(kr1.queries)) == (
        60,
        Measure(MeasureKind.SUM, "Story Points"),
        {"jira": "x"},
    )
    assert okrs.extras.key_result("KR-2").measure.kind is MeasureKind.MANUAL
    objective = okrs.extras.objective("o1")
    assert (objective.parent, objective.weight, objective.aliases) == ("O0", 2, ("PAY-100",))
    assert okrs.extras.objective_for_alias("pay-100") == "o1"


def test_weights_that_do_not_add_up_to_one_are_scaled_with_a_note(tmp_path: Path) -> None:
    okrs = load_okrs(
        okr_file(
            tmp_path,
            [
                {"id": "KR-1", "title": "a", "weight": 60, "target": 10, "current": 10},
                {"id": "KR-2", "title": "b", "weight": 40, "target": 10, "current": 0},
            ],
        )
    )
    tree = merge_okrs(file_records(okrs))
    assert tree.key_results["KR-1"].weight == 60
    rolled = roll_up(tree, {}, {}).objectives["O1"]
    assert rolled.notes == ("weights add up to 100, not 1: scaled to add up to 1",)
    assert [part.weight for part in rolled.parts] == [0.6, 0.4]


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            {"weight": 0},
            "okrs.yaml: objectives[0].key_results[0].weight: input should be greater than 0 "
            "(found 0)",
        ),
        (
            {"weight": -1},
            "okrs.yaml: objectives[0].key_results[0].weight: input should be greater than 0 "
            "(found -1)",
        ),
        (
            {"measure": {"kind": "median", "query": {"jira": "x"}}},
            "okrs.yaml: objectives[0].key_results[0].measure.kind: input should be 'count', "
            "'sum', 'share_done' or 'manual' (found 'median')",
        ),
        (
            {"measure": {"kind": "count"}},
            "okrs.yaml: objectives[0].key_results[0].measure: a count measure needs a query: "
            "{<connection name>: <JQL or WIQL>}",
        ),
        (
            {"measure": {"kind": "sum", "query": {"jira": "x"}}},
            "okrs.yaml: objectives[0].key_results[0].measure: a sum measure needs field: the "
            "numeric field to add up",
        ),
        (
            {"measure": {"kind": "count", "field": "Points", "query": {"jira": "x"}}},
            "okrs.yaml: objectives[0].key_results[0].measure: field is only read by a sum "
            "measure, not by count",
        ),
        (
            {"measure": {"kind": "manual", "query": {"jira": "x"}}},
            "okrs.yaml: objectives[0].key_results[0].measure: a manual measure takes neither "
            "query nor field: its value is `current`",
        ),
    ],
)
def test_bad_weights_and_measures_name_the_key(
    tmp_path: Path, entry: dict[str, Any], expected: str
) -> None:
    problems = okr_problems(tmp_path, [{"id": "KR-1", "title": "a", **entry}])
    assert problems == [expected]


def test_an_objective_alias_may_not_name_a_key_result(tmp_path: Path) -> None:
    problems = okr_problems(tmp_path, [{"id": "KR-1", "title": "a"}], aliases=["kr-1"])
    assert problems == [
        "okrs.yaml: objectives[0].aliases[0]: 'kr-1' is already used by "
        "objectives[0].key_results[0] (ids and aliases ignore case)"
    ]


def test_a_query_on_an_unknown_connection_is_a_config_problem(tmp_path: Path) -> None:
    fake_config(tmp_path)
    okr_file(
        tmp_path,
        [
            {"id": "KR-1", "title": "a", "measure": {"kind": "count", "query": {"alpah": "x"}}},
        ],
    )
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "spm-sync.yaml")
    (problem,) = caught.value.problems
    assert problem.endswith(
        "okrs.yaml: objectives[0].key_results[0].measure.query: no connection named 'alpah' "
        "(connections: alpha)"
    )


def test_objective_types_are_read_per_connection(tmp_path: Path) -> None:
    path = fake_config(tmp_path).source
    assert path is not None
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["connections"][0]["okr"] = {"objective_types": ["Objective"], "item_types": ["KR"]}
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert load_config(path).connections[0].okr.objective_types == ["Objective"]


def test_capacity_short_and_long_forms(tmp_path: Path) -> None:
    short = CapacitySettings.model_validate({"interval": "2026-Q4", "teams": {"Mobile": 120}})
    assert short.by_team() == {"Mobile": [IntervalCapacity("2026-Q4", 120)]}
    long = CapacitySettings.model_validate(
        {
            "by": "value_stream",
            "intervals": [
                {"name": "Q1", "teams": {"Mobile": 10, "Web": 0}},
                {"name": "Q2", "teams": {"mobile": 20}},
            ],
        }
    )
    # A team not named in an interval has 0 points there; names match ignoring case.
    assert long.by_team() == {
        "Mobile": [IntervalCapacity("Q1", 10), IntervalCapacity("Q2", 20)],
        "Web": [IntervalCapacity("Q1", 0), IntervalCapacity("Q2", 0)],
    }


@pytest.mark.parametrize(
    ("capacity", "expected"),
    [
        (
            {"interval": "Q1", "teams": {"Mobile": -5}},
            "capacity.teams.Mobile: input should be greater than or equal to 0 (found -5)",
        ),
        (
            {"intervals": [{"name": "Q1", "teams": {"Web": 1, "web": 2}}]},
            "capacity.intervals[0].teams: teams 'Web', 'web' are the same team (names ignore case)",
        ),
        (
            {"intervals": [{"name": "Q1", "teams": {"A": 1}}, {"name": "Q1", "teams": {"A": 1}}]},
            "capacity.intervals: interval 'Q1' is given 2 times",
        ),
        (
            {"interval": "Q1", "teams": {"A": 1}, "intervals": []},
            "capacity: give either interval and teams, or intervals, not both",
        ),
        (
            {"by": "squad", "interval": "Q1", "teams": {"A": 1}},
            "capacity.by: input should be 'team' or 'value_stream' (found 'squad')",
        ),
    ],
)
def test_capacity_mistakes_name_the_key(
    tmp_path: Path, capacity: dict[str, Any], expected: str
) -> None:
    problems = config_problems(tmp_path, capacity=capacity)
    assert [p.split(": ", 1)[1] for p in problems] == [expected]
    assert problems[0].startswith(str(tmp_path / "spm-sync.yaml"))
