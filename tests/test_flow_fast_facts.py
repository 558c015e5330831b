"""The array-based flow facts (`flow.fast_facts`) against the reference walk
(`flow.facts.derive_flows`): the same facts, problems and order, on hand-built and random
histories (reopened, moved, missing, skewed, unmapped, partial), from items and from the
store's columns."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from spm_sync.config.flow import FlowConfig
from spm_sync.core.domain import Level, StatusCategory, WorkItem
from spm_sync.core.history import FlowItem, StatusChange, merge_moved
from spm_sync.engines.flow import fast_facts
from spm_sync.engines.flow.facts import ItemFlow, derive_flows, flow_of
from spm_sync.engines.flow.fast_facts import connection_flows, derive_flows_fast
from spm_sync.engines.flow.flow_columns import FlowColumns, columns_of_flows
from spm_sync.engines.flow.history_arrays import columns_of_items
from spm_sync.engines.flow.settings import FlowSettings, FlowStart, Stage, StageMap
from spm_sync.engines.flow.statuses import status_books
from spm_sync.pipeline.flow_input import derive_all_flows, value_streams_of
from spm_sync.store import Store
from tests.test_store import make_item

TODO, DOING, DONE = StatusCategory.TODO, StatusCategory.IN_PROGRESS, StatusCategory.DONE
T0 = datetime(2026, 1, 1, tzinfo=UTC)
NOW = T0 + timedelta(days=100)
CATEGORY: dict[str, StatusCategory | None] = {
    "Open": TODO,
    "Analysis": DOING,
    "In Progress": DOING,
    "in progress": DOING,
    "Review": DOING,
    "Done": DONE,
    "Closed": DONE,
    "Weird": None,  # no category anywhere: reported
    "Parked": TODO,  # mapped to no stage: reported when stages are configured
}
STAGES = StageMap(
    (Stage("funnel", TODO), Stage("doing", DOING), Stage("done", DONE)),
    {
        "Open": "funnel",
        "Analysis": "funnel",  # the stage (To Do) wins over the tracker (In Progress)
        "In Progress": "doing",
        "Review": "doing",
        "Done": "done",
        "Closed": "done",
    },
)
SETTINGS = {
    "plain": FlowSettings(),
    "stages, from created": FlowSettings(
        stage_map=STAGES,
        start=FlowStart.CREATED,
        active_statuses=frozenset({"In Progress"}),
        wait_statuses=frozenset({"Review"}),
    ),
    "stages, efficiency": FlowSettings(
        stage_map=STAGES,
        active_statuses=frozenset({"In Progress", "Analysis"}),
        wait_statuses=frozenset({"Review", "Open", "Parked"}),
    ),
}


def random_item(rng: random.Random, n: int, clean: float) -> FlowItem:
    """An item whose history is clean with chance `clean`; otherwise anything goes: no
    creation date, created in the future, clock skew, changes after now, statuses of no
    category or stage, a history that ends elsewhere than the item is now, none at all."""
    connection = rng.choice(["jira", "ado"])
    ref = (connection, f"K-{n}")
    tidy = rng.random() < clean
    names = ["Open", "Analysis", "In Progress", "Review", "Done", "Closed"]
    if not tidy:
        names += ["Weird", "Parked", "in progress"]
    created: datetime | None = T0 + timedelta(days=rng.uniform(-5, 30))
    if not tidy and rng.random() < 0.1:
        created = None if rng.random() < 0.5 else NOW + timedelta(days=1)
    moment = created or T0
    before: str | None = rng.choice([*names, None])
    changes = []
    for _ in range(rng.choice([0, 1, 2, 3, 5, 8, 12]) if not tidy else rng.randint(1, 10)):
        step = rng.uniform(0, 86400 * 8) if tidy else rng.uniform(-86400 * 3, 86400 * 25)
        moment += timedelta(seconds=rng.choice([0.0, step, round(step)]))
        to_status = rng.choice(names)
        told = CATEGORY[to_status] if connection == "jira" and rng.random() < 0.9 else None
        from_status = before if tidy or rng.random() < 0.9 else rng.choice(names)
        changes.append(StatusChange(ref, moment, from_status, to_status, told))
        before = to_status
    status = before if before is not None and (tidy or rng.random() < 0.9) else "Open"
    return FlowItem(
        ref,
        rng.choice(["Epic", "Bug", "Feature"]),
        created,
        status,
        CATEGORY[status] or TODO,
        tuple(changes),
        tuple(rng.sample(["PAY", "WEB", "OPS"], rng.randint(0, 2))),
        None if rng.random() < 0.5 else T0 + timedelta(days=rng.uniform(0, 130)),
    )


def reference_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the items left to the reference walk, so a test can tell the fast path ran."""
    calls = [0]

    def counted(*args: object) -> ItemFlow:
        calls[0] += 1
        return flow_of(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(fast_facts, "flow_of", counted)
    return calls


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_random_histories_give_the_reference_facts_in_the_reference_order(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = SETTINGS[name]
    calls = reference_calls(monkeypatch)
    items_seen = 0
    for seed in range(120):
        rng = random.Random(seed)
        items = [random_item(rng, n, clean=0.6) for n in range(rng.randint(0, 40))]
        items_seen += len(items)
        expected = derive_flows(items, settings, NOW)
        assert list(derive_flows_fast(items, settings, NOW).items()) == list(expected.items())
    # Both paths were taken: most histories by arrays, the untidy ones by the walk.
    assert 0.2 * items_seen < calls[0] < 0.6 * items_seen


def assert_same_columns(got: FlowColumns | None, expected: FlowColumns) -> None:
    """Field by field: the same flow classes, the same values of the same array types."""
    assert got is not None
    assert got.flow_class == expected.flow_class
    for name, mine, theirs in zip(FlowColumns._fields[1:], got[1:], expected[1:], strict=True):
        assert mine.dtype == theirs.dtype, name
        assert np.array_equal(mine, theirs), name


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_columns_handed_over_by_the_derivation_are_the_flows_own(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = SETTINGS[name]
    calls = reference_calls(monkeypatch)
    for seed in range(120):
        rng = random.Random(seed)
        items = [random_item(rng, n, clean=0.6) for n in range(rng.randint(0, 40))]
        for connection, book in status_books(items, settings).items():
            mine = [item for item in items if item.ref[0] == connection]
            columns = columns_of_items(mine)
            assert columns is not None
            derived = connection_flows(mine, columns, book, settings, NOW)
            assert_same_columns(derived.columns, columns_of_flows(derived.flows))
    assert calls[0] > 0  # the walked items' entries are read from their flows


def test_hand_built_histories_give_the_reference_facts() -> None:
    ref = ("jira", "A-1")

    def one(
        *moves: tuple[float, str | None, str], status: str, created: datetime | None = T0
    ) -> FlowItem:
        changes = tuple(
            StatusChange(ref, T0 + timedelta(days=day), before, to, CATEGORY.get(to))
            for day, before, to in moves
        )
        return FlowItem(ref, "Epic", created, status, CATEGORY[status] or TODO, changes)

    cases = [
        # reopened and finished again; done, reopened and still open
        one(
            (2, "Open", "In Progress"),
            (5, "In Progress", "Done"),
            (7, "Done", "In Progress"),
            (12, "In Progress", "Done"),
            status="Done",
        ),
        one(
            (2, "Open", "In Progress"),
            (5, "In Progress", "Done"),
            (7, "Done", "Open"),
            status="Open",
        ),
        # created done, created in progress, done straight from open
        one((3, "Done", "Closed"), status="Closed"),
        one((3, "In Progress", "Review"), status="Review"),
        one((4, "Open", "Done"), status="Done"),
        # clock skew (a chain: clamped), out of order (sorted), before creation, after now
        one((5, "Open", "In Progress"), (4, "In Progress", "Review"), status="Review"),
        one((5, "Open", "Review"), (4, "Open", "In Progress"), status="Review"),
        one((-1, "Open", "In Progress"), status="In Progress"),
        one((101, "Open", "In Progress"), status="In Progress"),
        # partial history, unmapped and uncategorised statuses, no creation date
        one((2, "Open", "In Progress"), status="Done"),
        one((2, "Open", "Parked"), (3, "Parked", "Weird"), status="Weird"),
        one((2, "Parked", "In Progress"), status="In Progress"),
        one((2, "Open", "In Progress"), status="In Progress", created=None),
        # no history at all; same status twice in a row; a change at the instant of creation
        one(status="Done"),
        one((2, "Open", "In Progress"), (2, "In Progress", "In Progress"), status="In Progress"),
        one((0, "Open", "Review"), status="Review"),
    ]
    for settings in SETTINGS.values():
        for item in cases:
            assert derive_flows_fast([item], settings, NOW) == derive_flows([item], settings, NOW)


def test_moved_items_merged_first_give_the_reference_facts() -> None:
    rng = random.Random(7)
    items = [random_item(rng, n, clean=0.8) for n in range(60)]
    # Every third item was moved from the key of the one before it.
    moved = [
        item._replace(former_refs=(items[n - 1].ref,)) if n % 3 == 2 else item
        for n, item in enumerate(items)
    ]
    merged, _ = merge_moved(moved)
    assert len(merged) < len(items)
    for settings in SETTINGS.values():
        assert list(derive_flows_fast(merged, settings, NOW).items()) == list(
            derive_flows(merged, settings, NOW).items()
        )


def test_other_time_zones_and_naive_datetimes_behave_as_in_the_reference() -> None:
    ref = ("jira", "A-1")
    east = timezone(timedelta(hours=5, minutes=30))
    changes = (
        StatusChange(ref, (T0 + timedelta(days=2)).astimezone(east), "Open", "Review", DOING),
        StatusChange(ref, T0 + timedelta(days=3), "Review", "Done", DONE),
    )
    item = FlowItem(ref, "Epic", T0.astimezone(east), "Done", DONE, changes)
    flows = derive_flows_fast([item], FlowSettings(), NOW)
    assert flows == derive_flows([item], FlowSettings(), NOW)
    assert flows[ref].started is changes[0].at  # the item's own datetime, zone kept

    naive = item._replace(created=datetime(2026, 1, 1))
    with pytest.raises(TypeError) as expected:
        derive_flows([naive], FlowSettings(), NOW)
    with pytest.raises(TypeError) as got:
        derive_flows_fast([naive], FlowSettings(), NOW)
    assert str(got.value) == str(expected.value)


def stored_items(rng: random.Random, count: int) -> tuple[list[FlowItem], list[WorkItem]]:
    """Random flow items and the work items they stand for (store-safe: aware UTC times)."""
    flow_items, work_items = [], []
    for n in range(count):
        item = random_item(rng, n, clean=0.6)
        connection, key = item.ref
        flow_items.append(item)
        work_items.append(
            make_item(
                key,
                connection,
                type=item.type,
                created=item.created,
                status=item.status,
                status_category=item.status_category,
                project=(item.value_streams or ("",))[0] or None,
                level=Level.FEATURE if n % 5 == 0 else Level.EPIC,
            )
        )
    return flow_items, work_items


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_the_stage_reading_columns_from_the_store_gives_the_reference_facts(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(13)
    flow_items, work_items = stored_items(rng, 300)
    store.upsert_items(work_items)
    for connection in ("jira", "ado"):
        mine = [c for item in flow_items if item.ref[0] == connection for c in item.changes]
        store.add_status_changes(connection, mine)
    config = FlowConfig.model_validate(
        {
            "levels": ["epic"],
            "stages": [
                {"name": "funnel", "statuses": ["Open", "Analysis"]},
                {"name": "implementing", "statuses": ["In Progress", "Review"]},
                {"name": "done", "statuses": ["Done", "Closed"]},
            ],
            "active_statuses": ["In Progress"],
            "wait_statuses": ["Review"],
        }
    )
    settings = config.settings()
    by_connection: dict[str, list[WorkItem]] = defaultdict(list)
    for item in work_items:
        by_connection[item.connection].append(item)

    # The reference: each item's history as objects, merged, walked.
    streams_of = value_streams_of(config.value_streams)
    expected: dict[tuple[str, str], ItemFlow] = {}
    with_history = 0
    for connection, items in by_connection.items():
        histories = dict(
            store.iter_status_histories(
                connection, keys={i.key for i in items}, levels=[int(Level.EPIC)]
            )
        )
        refs = [
            FlowItem(
                (connection, i.key),
                i.type,
                i.created,
                i.status,
                i.status_category,
                histories.pop((connection, i.key), ()),
                streams_of(i),
            )
            for i in items
            if i.level is Level.EPIC
        ]
        with_history += sum(1 for item in refs if item.changes)
        expected.update(derive_flows(merge_moved(refs)[0], settings, NOW))

    calls = reference_calls(monkeypatch)
    epics = {c: [i for i in items if i.level is Level.EPIC] for c, items in by_connection.items()}
    measured = derive_all_flows(store, epics, config, settings, NOW)
    assert list(measured.flows.items()) == list(expected.items())
    assert measured.items_with_history == with_history and measured.problems == []
    assert 0 < calls[0] < len(expected) * 0.7
    assert_same_columns(measured.columns, columns_of_flows(list(measured.flows.values())))

    # A key given twice: its flow is kept once, so the columns could not follow the flows'
    # order and are not handed over (the table then reads the flows).
    twice = {connection: items + items[:3] for connection, items in epics.items()}
    again = derive_all_flows(store, twice, config, settings, NOW)
    assert list(again.flows) == list(measured.flows) and again.columns is None


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_status_columns_hold_what_the_histories_hold(store: Store) -> None:
    rng = random.Random(5)
    flow_items, work_items = stored_items(rng, 80)
    store.upsert_items(work_items)
    store.add_status_changes(
        "jira", [c for i in flow_items if i.ref[0] == "jira" for c in i.changes]
    )
    wanted = {item.key for item in work_items[::2]}
    histories = list(store.iter_status_histories("jira", keys=wanted, levels=[int(Level.EPIC)]))
    columns = store.read_status_columns("jira", keys=wanted, levels=[int(Level.EPIC)])
    assert columns.keys == [ref[1] for ref, _ in histories]
    assert columns.counts == [len(changes) for _, changes in histories]
    assert len(columns.at) == sum(columns.counts) > 0
    from spm_sync.engines.flow.history_arrays import columns_of_items
    from spm_sync.pipeline.flow_input import columns_of_store

    items = [FlowItem(ref, "Epic", T0, "Open", TODO, changes) for ref, changes in histories]
    no_history = FlowItem(("jira", "NONE-1"), "Epic", T0, "Open", TODO)
    # In the order read (the columns are taken as they are), and in another order (gathered).
    for order in ([*items[:3], no_history, *items[3:]], [*items[::-1], no_history]):
        gathered = columns_of_store(order, columns)
        for item, start, count in zip(
            order,
            (gathered.counts.cumsum() - gathered.counts).tolist(),
            gathered.counts.tolist(),
            strict=True,
        ):
            assert gathered.changes_of(item, start, count) == item.changes
        objects = columns_of_items(order)
        assert objects is not None
        assert (objects.at == gathered.at).all() and (objects.told == gathered.told).all()


def test_microseconds_are_exact_in_every_zone_and_year_and_naive_times_are_refused() -> None:
    from spm_sync.engines.flow.history_arrays import microseconds

    rng = random.Random(3)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    zones = [UTC, timezone(timedelta(hours=-7)), timezone(timedelta(hours=5, minutes=45))]
    bound = 2**32 * 10**6  # where the quick way stops
    spans = [
        (-(10**15), 10**15),  # the years trackers live in
        (bound - 10**7, bound + 10**7),  # around 2106, both ways
        (-bound - 10**7, -bound + 10**7),  # around 1834
        (-(6 * 10**16), 2 * 10**17),  # year 1 to 8000
    ]
    for low, high in spans:
        counts = [rng.randint(low, high) for _ in range(5_000)]
        moments = [
            (epoch + timedelta(microseconds=us)).astimezone(rng.choice(zones)) for us in counts
        ]
        assert microseconds(moments, len(moments)).tolist() == counts
    with pytest.raises(TypeError):
        microseconds([T0, datetime(2026, 1, 1)], 2)
