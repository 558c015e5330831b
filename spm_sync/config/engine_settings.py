"""The config, translated into the parameter types of the pure engines.

The engines take small frozen dataclasses (`AlignmentRules`, `WsjfRules`, planning's
`WritePolicy`) instead of the YAML models, so they stay testable without a config file.
This module is the one place where the two vocabularies meet:
- `alignment.rules[].project` / `area_path` -> `KeyResultRule.project` (a project rule matches
  the item's project or its area path/team, see `KeyResultRule`),
- `connections[].okr.item_types` -> `ConnectionAlignment.key_result_types`,
- `wsjf.scale: fibonacci` -> `WsjfRules.snap_to_scale`,
- `connections[].write_back` + the connector's `rank_kind` -> planning `WritePolicy`.
"""

from __future__ import annotations

from collections.abc import Iterable

from spm_sync.config.connections import AzureDevOpsConnection, JiraConnection
from spm_sync.config.model import Config
from spm_sync.core.domain import RankKind
from spm_sync.engines import planning
from spm_sync.engines.alignment_rules import (
    AlignmentRules,
    AlignmentScope,
    ConnectionAlignment,
    KeyResultRule,
)
from spm_sync.engines.wsjf import WsjfRules


def orphan_labels(config: Config) -> tuple[str, ...]:
    """Labels the write-back adds to orphans: never read as Key Result names."""
    labels = (c.write_back.orphan_label for c in config.connections)
    return tuple(label for label in labels if label)


def alignment_rules(config: Config) -> AlignmentRules:
    connections = tuple(
        ConnectionAlignment(
            connection=connection.name,
            label_prefix=connection.okr.label_prefix,
            link_types=tuple(connection.okr.link_types),
            key_result_types=tuple(connection.okr.item_types),
        )
        for connection in config.connections
    )
    rules = tuple(
        KeyResultRule(
            key_result=rule.key_result,
            project=rule.path,
            team=rule.team,
            component=rule.component,
            connection=rule.connection,
        )
        for rule in config.alignment.rules
    )
    scope = AlignmentScope(
        levels=tuple(config.alignment.levels),
        status_categories=tuple(config.alignment.status_categories),
    )
    return AlignmentRules(
        connections=connections,
        rules=rules,
        scope=scope,
        ignored_labels=orphan_labels(config),
    )


def wsjf_settings(config: Config) -> WsjfRules:
    wsjf = config.wsjf
    return WsjfRules(
        levels=tuple(wsjf.levels),
        status_categories=tuple(wsjf.status_categories),
        snap_to_scale=wsjf.scale == "fibonacci",
        decimals=wsjf.decimals,
        tie_tolerance=wsjf.tie_tolerance,
    )


def write_back_settings(
    connection: JiraConnection | AzureDevOpsConnection, rank_kind: RankKind
) -> planning.WritePolicy:
    """What the planner may write to `connection`, whose connector ranks by `rank_kind`."""
    write_back = connection.write_back
    priority = write_back.priority
    bands = tuple(
        planning.PriorityTier(band.top_percent, band.priority)
        for band in (priority.bands if priority else ())
    )
    return planning.WritePolicy(
        connection=connection.name,
        rank_kind=rank_kind,
        score=write_back.score,
        cost_of_delay=write_back.cost_of_delay,
        rank=write_back.rank,
        priority_bands=bands,
        default_priority=priority.default if priority else None,
        orphan_label=write_back.orphan_label,
    )


def planned_connections(
    config: Config, rank_kinds: Iterable[tuple[str, RankKind]]
) -> list[planning.WritePolicy]:
    """Planning settings for the named connections (those pulled in this run)."""
    return [
        write_back_settings(config.connection(name), rank_kind) for name, rank_kind in rank_kinds
    ]
