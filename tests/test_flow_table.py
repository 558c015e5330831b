"""Group metrics and forecast outlooks over the flow table (`flow.flow_table`, item indexes and
arrays) against the reference (`flow.metrics.flow_metrics_by_group`,
`flow.forecast.outlooks_from_flows`, refs and dictionaries): the same numbers, the same order
of classes, the same ageing list with its ties."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from spm_sync.core.domain import ItemRef, StatusCategory
from spm_sync.core.history import FlowItem, StatusChange
from spm_sync.engines.flow.facts import ItemFlow, derive_flows
from spm_sync.engines.flow.fast_facts import connection_flows
from spm_sync.engines.flow.flow_columns import columns_of_flows, joined
from spm_sync.engines.flow.flow_table import FlowTable, metrics_by_group, value_stream_members
from spm_sync.engines.flow.forecast import outlooks_from_flows
from spm_sync.engines.flow.history_arrays import columns_of_items
from spm_sync.engines.flow.metrics import flow_metrics_by_group, value_stream_groups
from spm_sync.engines.flow.settings import FlowClass, FlowSettings, FlowStart
from spm_sync.engines.flow.statuses import status_books

TODO, DOING, DONE = StatusCategory.TODO, StatusCategory.IN_PROGRESS, StatusCategory.DONE
NOW = datetime(2026, 6, 1, tzinfo=UTC)
STATUSES = {"Open": TODO, "In Progress": DOING, "Review": DOING, "Done": DONE}
CLASSES = {"Story": FlowClass.FEATURE, "Bug": FlowClass.DEFECT, "Spike": FlowClass.RISK}
SETTINGS = [
    FlowSettings(flow_classes=CLASSES, ageing_named=3),
    FlowSettings(
        start=FlowStart.CREATED,
        active_statuses=frozenset({"In Progress"}),
        wait_statuses=frozenset({"Review"}),
        flow_classes=CLASSES,
        window_days=30,
        ageing_named=5,
    ),
    FlowSettings(active_statuses=frozenset({"In Progress"}), window_days=45, ageing_named=0),
]


def random_flows(rng: random.Random, count: int, settings: FlowSettings) -> dict[ItemRef, ItemFlow]:
    """Flows of random items (`random_items`)."""
    return derive_flows(random_items(rng, count), settings, NOW)


def random_items(rng: random.Random, count: int) -> list[FlowItem]:
    """Random items; times on whole days now and then, so ages and flow times tie."""
    items = []
    for n in range(count):
        ref = (rng.choice(["jira", "ado"]), f"K-{n:03d}")
        whole = rng.random() < 0.5

        def moment(days: float, whole: bool = whole) -> datetime:
            return NOW - timedelta(days=round(days) if whole else days)

        created = None if rng.random() < 0.05 else moment(rng.uniform(5, 200))
        at = rng.uniform(0, 190)
        changes, before = [], "Open"
        for _ in range(rng.randint(0, 6)):
            at = max(0.0, at - rng.uniform(0, 40))
            to = rng.choice(list(STATUSES))
            changes.append(StatusChange(ref, moment(at), before, to, STATUSES[to]))
            before = to
        streams = tuple(rng.sample(["PAY", "WEB", "OPS", "PAY", "NEW"], rng.randint(0, 3)))
        items.append(
            FlowItem(
                ref,
                rng.choice([*CLASSES, "Epic"]),
                created,
                before,
                STATUSES[before],
                tuple(changes),
                streams,
                None if rng.random() < 0.5 else moment(rng.uniform(0, 60)),
            )
        )
    return items


@pytest.mark.parametrize("variant", range(len(SETTINGS)))
def test_group_metrics_and_outlooks_over_the_table_are_the_reference_ones(variant: int) -> None:
    settings = SETTINGS[variant]
    for seed in range(40):
        rng = random.Random(seed)
        flows = random_flows(rng, rng.randint(0, 120), settings)
        refs = list(flows)
        # Groups as alignment gives them: any refs, some twice, some without flow facts.
        groups: dict[str, list[ItemRef]] = {}
        for g in range(6):
            chosen = rng.sample(refs, rng.randint(0, len(refs))) if refs else []
            groups[f"g{g}"] = chosen + chosen[: len(chosen) // 3] + [("jira", "NOT-THERE")]
        table = FlowTable(flows, settings, NOW)

        expected = flow_metrics_by_group(flows, groups, settings, NOW)
        got = metrics_by_group(table, {g: table.members(r) for g, r in groups.items()})
        assert got == expected
        for group in groups:  # dictionaries compare without order: the order counts too
            assert list(got[group].distribution) == list(expected[group].distribution)
            assert list(got[group].wip_distribution) == list(expected[group].wip_distribution)

        streams = value_stream_groups(flows.values())
        members = value_stream_members(table)
        assert list(members) == list(streams)
        assert metrics_by_group(table, members) == flow_metrics_by_group(
            flows, streams, settings, NOW
        )

        targets = {"g1": NOW.date(), "g4": NOW.date() + timedelta(days=30)}
        assert [
            table.outlook(g, table.members(r), targets.get(g)) for g, r in groups.items()
        ] == outlooks_from_flows(flows, groups, targets, now=NOW, window_days=settings.window_days)


def test_ageing_ties_are_broken_by_ref_as_in_the_reference() -> None:
    settings = FlowSettings(ageing_named=2)
    start = NOW - timedelta(days=10)
    items = [
        FlowItem(
            ("jira", key),
            "Story",
            start,
            "In Progress",
            DOING,
            (StatusChange(("jira", key), start, "Open", "In Progress", DOING),),
        )
        for key in ("C-3", "A-1", "B-2", "D-4")
    ]
    flows = derive_flows(items, settings, NOW)
    table = FlowTable(flows, settings, NOW)
    got = table.metrics(table.members(flows))
    assert [aged.ref for aged in got.ageing] == [("jira", "A-1"), ("jira", "B-2")]
    assert got == flow_metrics_by_group(flows, {"all": list(flows)}, settings, NOW)["all"]


@pytest.mark.parametrize("variant", range(len(SETTINGS)))
def test_the_table_over_the_columns_the_derivation_hands_over_gives_the_reference_metrics(
    variant: int,
) -> None:
    settings = SETTINGS[variant]
    for seed in range(40):
        rng = random.Random(seed)
        items = random_items(rng, rng.randint(0, 120))
        flows: dict[ItemRef, ItemFlow] = {}
        parts = []
        for connection, book in status_books(items, settings).items():
            mine = [item for item in items if item.ref[0] == connection]
            columns = columns_of_items(mine)
            assert columns is not None
            derived = connection_flows(mine, columns, book, settings, NOW)
            flows.update(zip((item.ref for item in mine), derived.flows, strict=True))
            parts.append(derived.columns)
        table = FlowTable(flows, settings, NOW, joined(parts))
        groups = {"all": list(flows), "some": list(flows)[::3]}
        got = metrics_by_group(table, {g: table.members(r) for g, r in groups.items()})
        expected = flow_metrics_by_group(flows, groups, settings, NOW)
        assert got == expected
        for group in groups:  # the order of the classes counts too
            assert list(got[group].distribution) == list(expected[group].distribution)
            assert list(got[group].wip_distribution) == list(expected[group].wip_distribution)


def test_columns_of_other_flows_are_refused() -> None:
    settings = SETTINGS[0]
    flows = random_flows(random.Random(3), 10, settings)
    fewer = columns_of_flows(list(flows.values())[:-1])
    with pytest.raises(ValueError, match="9 columns' entries for 10 flows"):
        FlowTable(flows, settings, NOW, fewer)
