"""The context-item stage on its own (`spm_sync.pipeline.context_pull`), with a tracker held in
memory:
which keys it asks for, how often, what it stores and what the rest of the store sees of it.
The trackers' own `fetch_items` are tested over HTTP in `test_context_items_sandbox`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

from spm_sync.core.domain import Level, Link, StatusCategory, WorkItem
from spm_sync.core.requests import RequestStats
from spm_sync.pipeline.context_pull import MAX_ROUNDS, ContextOutcome, pull_context
from spm_sync.pipeline.stopping import StopSignal
from spm_sync.store import Store

NAME = "alpha"
WHEN = datetime(2026, 3, 2, tzinfo=UTC)


def item(key: str, parent: str | None = None, *links: tuple[str, str]) -> WorkItem:
    return WorkItem(
        connection=NAME, key=key, id=key, type="Story", level=Level.STORY, title=key,
        status="Done", status_category=StatusCategory.DONE, updated=WHEN, revision="1",
        parent_key=parent,
        links=tuple(Link(kind, "outward", target) for kind, target in links),
    )  # fmt: skip


class Tracker:
    """Items by key; `fetch_items` answers a batch of up to `batch` keys per request."""

    name = NAME

    def __init__(self, *items: WorkItem, batch: int = 100) -> None:
        self.items = {i.key: i for i in items}
        self.batch = batch
        self.stats = RequestStats()
        self.asked: list[list[str]] = []

    def fetch_items(self, keys: Sequence[str]) -> Iterator[WorkItem]:
        for start in range(0, len(keys), self.batch):
            chunk = list(keys[start : start + self.batch])
            self.asked.append(chunk)
            self.stats.count("POST /fetch")
            yield from (self.items[k] for k in chunk if k in self.items)


def follow(
    store: Store, tracker: Tracker, changed: set[str] | None, *, refresh: bool = False
) -> ContextOutcome:
    outcome = pull_context(
        store, 1, tracker, ["Drives"], changed_keys=changed, refresh=refresh, stop=StopSignal()
    )
    assert outcome is not None
    return outcome


def test_chains_are_followed_level_by_level_each_key_once(store: Store) -> None:
    store.upsert_items(
        [item("S-1", "E-1", ("Relates", "X-1")), item("S-2", "E-1", ("Drives", "K-1"))], 1
    )
    tracker = Tracker(
        item("E-1", "I-1"),
        item("I-1", "E-1"),  # a cycle outside the scope
        item("K-1"),
        item("S-9", None, ("Relates", "X-1")),
    )
    outcome = follow(store, tracker, None)
    assert tracker.asked == [["E-1", "K-1"], ["I-1"]]  # Relates targets are not followed
    assert (outcome.fetched, outcome.rounds, outcome.requests, outcome.unreadable) == (3, 2, 2, [])
    assert {i.key for i in store.load_items(context=True)} == {"E-1", "I-1", "K-1"}
    assert {i.key for i in store.load_items()} == {"S-1", "S-2"}  # the scope is unchanged
    assert store.count_items() == 2 and store.count_items(context=None) == 5


def test_requests_are_one_per_batch_and_none_when_everything_is_held(store: Store) -> None:
    store.upsert_items([item(f"S-{n}", f"E-{n}") for n in range(250)], 1)
    tracker = Tracker(*(item(f"E-{n}") for n in range(250)))
    assert follow(store, tracker, None).requests == 3  # ceil(250 / 100)
    again = follow(store, tracker, {f"S-{n}" for n in range(250)})
    assert (again.requests, tracker.asked[3:]) == (0, [])  # incremental: all held already
    nothing = follow(store, tracker, set())
    assert nothing.requests == nothing.rounds == 0


def test_unreadable_keys_are_reported_and_not_asked_again_unless_referred_to_anew(
    store: Store,
) -> None:
    store.upsert_items([item("S-1", "GONE-1"), item("S-2", "E-1")], 1)
    tracker = Tracker(item("E-1", "GONE-2"))
    outcome = follow(store, tracker, None)
    assert sorted(outcome.unreadable) == ["GONE-1", "GONE-2"]
    assert "2 parent(s) or OKR link target(s)" in outcome.warnings()[0]
    assert "GONE-1, GONE-2" in outcome.warnings()[0]
    assert follow(store, tracker, set()).requests == 0  # a run that pulled nothing asks nothing
    assert follow(store, tracker, {"S-2"}).requests == 0  # E-1 is held; GONE-2 is not asked
    assert follow(store, tracker, {"S-1"}).unreadable == ["GONE-1"]  # S-1 changed: once more


def test_a_context_item_entering_the_scope_becomes_a_scope_item_and_back(store: Store) -> None:
    store.upsert_items([item("S-1", "E-1")], 1)
    tracker = Tracker(item("E-1"))
    follow(store, tracker, None)
    store.upsert_items([item("E-1")], 2)  # reopened: the pull brings it
    assert [i.key for i in store.load_items(context=True)] == []
    assert {i.key for i in store.load_items()} == {"E-1", "S-1"}
    store.upsert_items([item("E-1")], 2, context=True)  # a late context read never demotes it
    assert [i.key for i in store.load_items(context=True)] == []

    scan = store.mark_missing(NAME, {"S-1"}, 3)  # E-1 is Done again: it leaves the scope
    assert scan.marked_deleted == 1
    outcome = follow(store, tracker, None)  # the stage runs on every scope item after that
    assert outcome.fetched == 1
    assert [i.key for i in store.load_items(context=True)] == ["E-1"]


def test_the_deletion_scan_never_counts_or_flags_context_items(store: Store) -> None:
    store.upsert_items([item("S-1", "E-1"), item("S-2")], 1)
    follow(store, Tracker(item("E-1")), None)
    scan = store.mark_missing(NAME, {"S-1", "S-2"}, 2, may_delete=lambda *_: True)
    assert (scan.expected, scan.missing, scan.marked_deleted) == (2, 0, 0)
    assert [i.key for i in store.load_items(context=True)] == ["E-1"]
    # A context key in the scan's answer is an item that entered the scope unpulled.
    assert store.mark_missing(NAME, {"S-1", "S-2", "E-1"}, 3).not_stored == ("E-1",)


def test_a_full_sync_refreshes_context_and_retires_what_nothing_refers_to(store: Store) -> None:
    store.upsert_items([item("S-1", "E-1"), item("S-2", "E-2")], 1)
    tracker = Tracker(item("E-1"), item("E-2"))
    follow(store, tracker, None, refresh=True)
    store.upsert_items([item("S-2", "E-1")], 2)  # S-2 moved under E-1: nothing needs E-2
    tracker.items["E-1"] = item("E-1", None, ("Drives", "K-9"))
    outcome = follow(store, tracker, None, refresh=True)
    assert tracker.asked[-2:] == [["E-1"], ["K-9"]]  # held, yet read again: it may have moved
    assert (outcome.retired, outcome.unreadable) == (1, ["K-9"])
    assert [i.key for i in store.load_items(context=True)] == ["E-1"]


def test_the_walk_is_bounded(store: Store) -> None:
    depth = MAX_ROUNDS + 5
    store.upsert_items([item("S-1", "A-0")], 1)
    tracker = Tracker(*(item(f"A-{n}", f"A-{n + 1}") for n in range(depth)))
    outcome = follow(store, tracker, None)
    assert outcome.rounds == MAX_ROUNDS and outcome.cut_short
    assert "after 20 level(s)" in outcome.warnings()[-1]
    assert follow(store, tracker, {"S-1"}).requests == 0  # held; the next full sync goes on


def test_a_connector_without_fetch_items_is_left_alone(store: Store) -> None:
    store.upsert_items([item("S-1", "E-1")], 1)

    class Plain:
        name = NAME
        stats = RequestStats()

    stop = StopSignal()
    assert pull_context(store, 1, Plain(), [], changed_keys=None, refresh=True, stop=stop) is None
