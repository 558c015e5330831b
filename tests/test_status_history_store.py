"""Status history in the store, on SQLite and PostgreSQL: each change stored once, read back
per item in the tracker's order, streamed in pages, and the history cursor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from spm_sync.core.domain import StatusCategory
from spm_sync.core.history import StatusChange
from spm_sync.store import Store, SyncState
from spm_sync.store import history as history_store
from tests.test_store import make_item

T0 = datetime(2026, 1, 5, 9, 0, 0, 123456, tzinfo=UTC)
TODO, DOING, DONE = StatusCategory.TODO, StatusCategory.IN_PROGRESS, StatusCategory.DONE


def change(
    key: str,
    hours: float,
    from_status: str | None,
    to_status: str,
    category: StatusCategory | None = None,
    connection: str = "jira",
) -> StatusChange:
    return StatusChange(
        (connection, key), T0 + timedelta(hours=hours), from_status, to_status, category
    )


def hold(store: Store, connection: str, *keys: str) -> None:
    """Store the items the changes belong to (changes of items not held are dropped)."""
    store.upsert_items(make_item(key, connection) for key in keys)


def test_round_trip_keeps_every_field_and_the_tracker_order(store: Store) -> None:
    changes = [
        change("PAY-2", 0, None, "Funnel"),
        change("PAY-1", 5, "Funnel", "Analyzing", TODO),
        change("PAY-1", 1, "Analyzing", "Implementing", DOING),  # skewed clock: order kept
        change("PAY-2", 3, "Funnel", "Done", DONE),
    ]
    hold(store, "jira", "PAY-1", "PAY-2")
    assert store.add_status_changes("jira", changes) == 4
    histories = dict(store.iter_status_histories("jira"))
    assert list(histories) == [("jira", "PAY-1"), ("jira", "PAY-2")]
    assert list(histories[("jira", "PAY-1")]) == [changes[1], changes[2]]
    assert list(histories[("jira", "PAY-2")]) == [changes[0], changes[3]]
    assert histories[("jira", "PAY-1")][0].at.tzinfo is not None


def test_reading_a_history_again_stores_nothing_twice(store: Store) -> None:
    first = [change("PAY-1", 0, None, "Funnel"), change("PAY-1", 1, "Funnel", "Implementing")]
    hold(store, "jira", "PAY-1")
    assert store.add_status_changes("jira", first) == 2
    # The whole changelog again, one newer change, a category now told, the same instant in
    # another zone, and a duplicate inside one batch: only the newer change is new.
    again = [
        change("PAY-1", 0, None, "Funnel"),
        change("PAY-1", 1, "Funnel", "Implementing", DOING)._replace(
            at=(T0 + timedelta(hours=1)).astimezone(timezone(timedelta(hours=2)))
        ),
        change("PAY-1", 2, "Implementing", "Done", DONE),
        change("PAY-1", 2, "Implementing", "Done", DONE),
    ]
    assert store.add_status_changes("jira", again) == 1
    assert store.count_status_changes("jira") == 3
    assert [c.to_status for c in store.iter_status_changes("jira")] == [
        "Funnel",
        "Implementing",
        "Done",
    ]


def test_a_change_without_from_status_is_still_stored_once(store: Store) -> None:
    first = [change("7", 0, None, "New", connection="ado")]
    hold(store, "ado", "7")
    assert store.add_status_changes("ado", first) == 1
    assert store.add_status_changes("ado", first) == 0
    assert store.count_status_changes() == 1


def test_a_change_read_again_with_the_status_it_left_is_not_stored_twice(store: Store) -> None:
    """The revisions feed names the status left only when it saw the previous revision: the
    same transition read first without it and later with it is one change."""
    hold(store, "ado", "7")
    assert store.add_status_changes("ado", [change("7", 1, None, "Active", connection="ado")]) == 1
    again = [change("7", 1, "New", "Active", connection="ado")]
    assert store.add_status_changes("ado", again) == 0
    assert store.count_status_changes() == 1


def test_connections_are_kept_apart(store: Store) -> None:
    hold(store, "jira", "X-1")
    hold(store, "ado", "X-1")
    store.add_status_changes("jira", [change("X-1", 0, None, "Open")])
    store.add_status_changes("ado", [change("X-1", 0, None, "Open", connection="ado")])
    assert store.count_status_changes("jira") == 1
    assert [ref for ref, _ in store.iter_status_histories()] == [("ado", "X-1"), ("jira", "X-1")]
    with pytest.raises(ValueError, match="given as one of"):
        store.add_status_changes("jira", [change("X-2", 0, None, "Open", connection="ado")])


def test_histories_stream_across_pages_grouped_per_item(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history_store, "READ_PAGE_ROWS", 7)
    changes = [
        change(f"PAY-{item:03d}", hour, None if hour == 0 else f"S{hour - 1}", f"S{hour}")
        for item in range(40)
        for hour in range(item % 5 + 1)
    ]

    hold(store, "jira", *{c.item[1] for c in changes})

    def generated() -> object:
        yield from changes

    assert store.add_status_changes("jira", generated()) == len(changes)  # type: ignore[arg-type]
    histories = list(store.iter_status_histories("jira"))
    assert len(histories) == 40
    assert [len(h) for _, h in histories] == [item % 5 + 1 for item in range(40)]
    assert [c for _, h in histories for c in h] == changes
    assert list(store.iter_status_changes()) == changes


def test_status_names_are_shared_between_changes(store: Store) -> None:
    hold(store, "jira", "K-0", "K-1", "K-2")
    store.add_status_changes(
        "jira", [change(f"K-{n}", n, "Funnel", "Implementing") for n in range(3)]
    )
    read = list(store.iter_status_changes())
    assert all(c.to_status is read[0].to_status for c in read)
    assert all(c.from_status is read[0].from_status for c in read)


def test_history_cursor_is_kept_apart_from_the_pull_state(store: Store) -> None:
    assert store.history_cursor("ado") is None
    store.save_history_cursor("ado", "token-1")  # no sync state yet: created
    assert store.history_cursor("ado") == "token-1"
    store.save_sync_state(SyncState("ado", watermark=T0, cursor="token-1"))
    store.save_history_cursor("ado", "token-2")
    state = store.get_sync_state("ado")
    assert state is not None and state.cursor == "token-2" and state.watermark == T0
    store.save_history_cursor("ado", None)
    assert store.history_cursor("ado") is None


def test_a_failing_stream_keeps_the_batches_already_stored(store: Store) -> None:
    hold(store, "jira", "PAY-1")

    def failing() -> object:
        for n in range(history_store.BATCH_ROWS + 3):
            yield change("PAY-1", n, f"S{n}", f"S{n + 1}")
        raise ConnectionError("tracker went away")

    with pytest.raises(ConnectionError):
        store.add_status_changes("jira", failing())  # type: ignore[arg-type]
    assert store.count_status_changes() == history_store.BATCH_ROWS
    assert (
        store.add_status_changes(
            "jira",
            [change("PAY-1", n, f"S{n}", f"S{n + 1}") for n in range(history_store.BATCH_ROWS + 3)],
        )
        == 3
    )


def test_changes_of_items_not_held_are_dropped_unless_asked(store: Store) -> None:
    hold(store, "ado", "1", "2")
    store.mark_missing("ado", {"1"})  # "2" is deleted: still held, its history kept
    feed = [change(key, 0, None, "New", connection="ado") for key in ("1", "2", "3")]
    assert store.add_status_changes("ado", feed) == 2
    assert [ref for ref, _ in store.iter_status_histories()] == [("ado", "1"), ("ado", "2")]
    assert store.add_status_changes("ado", feed, stored_items_only=False) == 1


def test_histories_of_chosen_keys_only(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(history_store, "READ_PAGE_ROWS", 3)
    hold(store, "jira", "A-1", "A-2", "A-3")
    changes = [change(key, h, None, f"S{h}") for key in ("A-1", "A-2", "A-3") for h in range(2)]
    store.add_status_changes("jira", changes)
    chosen = dict(store.iter_status_histories("jira", keys={"A-1", "A-3"}))
    assert list(chosen) == [("jira", "A-1"), ("jira", "A-3")]
    assert list(chosen[("jira", "A-3")]) == changes[4:]


def test_pending_history_marks_reach_back_and_clear_when_read(store: Store) -> None:
    hold(store, "jira", "OLD-1")
    store.upsert_items([make_item("NEW-1", "jira", updated=T0 + timedelta(days=2))])
    assert store.history_pending_since("jira") is None
    store.mark_history_pending("jira", T0 + timedelta(days=1))
    store.mark_history_pending("jira", T0 + timedelta(days=3))  # a later mark changes nothing
    since = store.history_pending_since("jira")
    assert since == T0 + timedelta(days=1)
    assert store.item_keys_updated_since("jira", since) == {"NEW-1"}
    store.mark_history_pending("jira", T0 - timedelta(days=400))  # before OLD-1's update
    assert store.item_keys_updated_since("jira", T0 - timedelta(days=400)) == {
        "OLD-1",
        "NEW-1",
    }
    store.save_history_cursor("jira", "next")
    assert store.history_pending_since("jira") is None
    assert store.history_cursor("jira") == "next"


def test_histories_of_chosen_levels_are_picked_by_the_database(store: Store) -> None:
    from spm_sync.core.domain import Level

    store.upsert_items(
        [
            make_item("E-1", "jira", level=Level.EPIC),
            make_item("S-1", "jira", level=Level.STORY),
            make_item("F-1", "jira", level=Level.FEATURE),
            make_item("E-2", "jira", level=Level.EPIC),
        ]
    )
    store.mark_missing("jira", {"E-1", "S-1", "F-1"})  # E-2 deleted: not measured
    keys = ("E-1", "S-1", "F-1", "E-2")
    store.add_status_changes(
        "jira", [change(key, h, None, f"S{h}") for key in keys for h in (0, 1)]
    )
    chosen = list(store.iter_status_histories("jira", levels=[int(Level.EPIC), int(Level.FEATURE)]))
    assert [ref for ref, _ in chosen] == [("jira", "E-1"), ("jira", "F-1")]
    assert all(len(history) == 2 for _, history in chosen)
