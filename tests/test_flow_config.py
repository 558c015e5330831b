"""The `flow:` config section: defaults, the engine settings it makes, the messages a user
sees for a broken section, and objectives' target dates in the OKR file."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from spm_sync.config.flow import STANDARD_STAGES, FlowConfig
from spm_sync.config.model import load_config
from spm_sync.config.okrs import load_okrs
from spm_sync.config.validation import ConfigError
from spm_sync.core.domain import StatusCategory
from spm_sync.engines.flow.settings import FlowClass, FlowStart
from tests.test_config import EXAMPLE, minimal, problems_of, write_config


def with_flow(flow: dict[str, Any]) -> dict[str, Any]:
    return {**minimal(), "flow": flow}


def test_defaults_are_the_portfolio_kanban_with_standard_statuses(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, minimal()))
    settings = config.flow.settings()
    assert [stage.name for stage in settings.stage_map.stages] == [
        "funnel",
        "reviewing",
        "analyzing",
        "portfolio backlog",
        "implementing",
        "done",
    ]
    stage_of = settings.stage_map.stage_of
    # Jira's standard workflow, the Agile process of Azure DevOps, and the sandboxes.
    for status, stage in [
        ("To Do", "funnel"),
        ("new", "funnel"),
        ("Selected for Development", "portfolio backlog"),
        ("In Progress", "implementing"),
        ("In Review", "implementing"),
        ("Active", "implementing"),
        ("Resolved", "implementing"),
        ("Closed", "done"),
        ("Done", "done"),
    ]:
        found = stage_of(status)
        assert found is not None and found.name == stage, status
    assert stage_of("Active").category is StatusCategory.IN_PROGRESS  # type: ignore[union-attr]
    assert settings.window_days == 84 and settings.start is FlowStart.STARTED
    assert not settings.measures_efficiency
    assert settings.flow_class("epic") is FlowClass.FEATURE
    assert settings.flow_class("Bug") is FlowClass.DEFECT
    assert settings.flow_class("Mystery") is FlowClass.OTHER
    assert config.flow.forecast.trials == 10_000 and config.flow.forecast.seed is None


def test_the_example_maps_to_the_engine_settings() -> None:
    import os

    os.environ.setdefault("JIRA_USER", "x")
    config = load_config(EXAMPLE)
    flow = config.flow
    limits = flow.limits()
    assert limits.per_stage == {"implementing": 12}
    assert limits.per_stream == {("PAY", "analyzing"): 2, ("PAY", "implementing"): 4}
    assert flow.settings().flow_class("spike") is FlowClass.DEBT
    assert [s.name for s in flow.stage_map().stages] == [name for name, _, _ in STANDARD_STAGES]


def test_custom_stages_limits_and_efficiency(tmp_path: Path) -> None:
    config = load_config(
        write_config(
            tmp_path,
            with_flow(
                {
                    "value_streams": {"by": "label", "label_prefix": "vs-"},
                    "stages": [
                        {"name": "Triage", "statuses": ["Open"], "category": "to do"},
                        {"name": "Implementing", "statuses": ["Doing", "Blocked"]},
                        {"name": "Done", "statuses": ["Closed"]},
                    ],
                    "wip_limits": {
                        "per_stage": {"implementing": 3},
                        "per_value_stream": {"pay": {"IMPLEMENTING": 1}},
                    },
                    "active_statuses": ["Doing"],
                    "wait_statuses": ["Blocked"],
                    "flow_classes": {"Bug": "feature", "Chore": "debt"},
                    "window_days": 28,
                    "start": "created",
                    "forecast": {"trials": 500, "seed": 3},
                }
            ),
        )
    )
    flow = config.flow
    stages = flow.stage_map().stages
    assert [(s.name, s.category) for s in stages] == [
        ("Triage", StatusCategory.TODO),
        ("Implementing", StatusCategory.IN_PROGRESS),
        ("Done", StatusCategory.DONE),
    ]
    assert flow.limits().per_stage == {"Implementing": 3}
    assert flow.limits().per_stream == {("pay", "Implementing"): 1}
    settings = flow.settings()
    assert settings.measures_efficiency and settings.start is FlowStart.CREATED
    assert settings.flow_class("bug") is FlowClass.FEATURE
    assert settings.flow_class("chore") is FlowClass.DEBT


@pytest.mark.parametrize(
    ("flow", "expected"),
    [
        (
            {"wip_limits": {"per_stage": {"building": 3}}},
            "flow.wip_limits: limits of unknown stages: building; stages: funnel, reviewing, "
            "analyzing, portfolio backlog, implementing, done",
        ),
        (
            {"wip_limits": {"per_value_stream": {"PAY": {"testing": 1}}}},
            "flow.wip_limits: limits of unknown stages: testing (value stream PAY)",
        ),
        (
            {
                "stages": [
                    {"name": "funnel", "statuses": ["Open", "Active"]},
                    {"name": "implementing", "statuses": ["active"]},
                ]
            },
            "flow.stages: status 'active' is mapped to two stages: 'funnel' and 'implementing'",
        ),
        (
            {"stages": [{"name": "Triage", "statuses": ["Open"]}]},
            "flow.stages[0]: stage 'Triage' is not a standard Portfolio Kanban stage",
        ),
        (
            {"stages": [{"name": "done"}, {"name": "Done"}]},
            "flow.stages: stage 'Done' is named twice",
        ),
        ({"flow_classes": {"Bug": "bugs"}}, "flow.flow_classes.Bug: "),
        ({"value_streams": {"by": "label"}}, "flow.value_streams: by: label needs label_prefix"),
        ({"value_streams": {"by": "team"}}, "flow.value_streams.by: "),
        (
            {"active_statuses": ["Doing"], "wait_statuses": ["doing"]},
            "flow.wait_statuses: statuses both active and waiting: doing",
        ),
        ({"window_days": 0}, "flow.window_days: "),
        ({"start": "resolved"}, "flow.start: "),
        ({"forecast": {"trials": 10}}, "flow.forecast.trials: "),
        ({"stage": []}, "flow.stage: "),
    ],
)
def test_a_broken_section_names_the_key_and_what_was_expected(
    tmp_path: Path, flow: dict[str, Any], expected: str
) -> None:
    found = problems_of(tmp_path, with_flow(flow))
    assert len(found) == 1, found
    assert found[0].startswith(expected) or expected in found[0], found


def test_flow_class_message_lists_the_classes(tmp_path: Path) -> None:
    (line,) = problems_of(tmp_path, with_flow({"flow_classes": {"Bug": "bugs"}}))
    for name in ("feature", "defect", "risk", "debt"):
        assert name in line


def test_no_stages_means_no_board() -> None:
    flow = FlowConfig(stages=[])
    assert not flow.settings().stage_map.configured


def test_objectives_may_have_a_target_date(tmp_path: Path) -> None:
    path = tmp_path / "okrs.yaml"
    path.write_text(
        "objectives:\n"
        "  - {id: O1, title: Grow, target_date: 2026-06-30}\n"
        "  - {id: O2, title: Keep}\n",
        encoding="utf-8",
    )
    okrs = load_okrs(path)
    assert okrs.objectives[0].target_date == date(2026, 6, 30)
    assert okrs.objectives[1].target_date is None
    path.write_text("objectives:\n  - {id: O1, title: Grow, target_date: soon}\n")
    with pytest.raises(ConfigError, match=r"objectives\[0\]\.target_date"):
        load_okrs(path)
