"""Seeded state histories of Azure DevOps work items: the path each generated item took to the
state it is in, which the sandbox serves as the item's revisions.

Items move along New → Active → Resolved → Closed (Tasks have no Resolved, and about 40% of the
others close without resolving), about 15% of the resolved or closed ones were reopened once on
the way (back to Active), and about 10% of the active ones were closed and reopened. A few new
items went to Active and back. Changes fall between the item's creation and its last update;
about half of the items were edited after their last state change (a revision that changes
something else).

The histories come from a random stream of their own, seeded from the items, so adding them
leaves every other value of a generated portfolio as it was.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta

from connectors.sandbox.portfolio import SeedItem

FORWARD = ("New", "Active", "Resolved", "Closed")
REOPENED_SHARE = 0.15
REOPENED_ACTIVE_SHARE = 0.10
BACK_TO_NEW_SHARE = 0.05
CLOSED_WITHOUT_RESOLVING_SHARE = 0.4
EDITED_AFTER_LAST_CHANGE_SHARE = 0.5


def add_state_histories(items: Sequence[SeedItem]) -> None:
    """Give every item its `status_history`, the same for the same items."""
    if not items:
        return
    rng = random.Random(f"ado-state-histories:{len(items)}:{items[0].created.isoformat()}")
    for item in items:
        item.status_history = state_history(item, rng)


def state_history(item: SeedItem, rng: random.Random) -> list[tuple[datetime, str]]:
    """(when, state) of each state `item` entered, the first at creation, the last its state."""
    path = _path(item.type, item.status, rng)
    return list(zip(_times(item.created, item.updated, len(path), rng), path, strict=True))


def _path(work_item_type: str, state: str, rng: random.Random) -> list[str]:
    if state not in FORWARD:
        return ["New", state]
    if state == "New":
        return ["New", "Active", "New"] if rng.random() < BACK_TO_NEW_SHARE else ["New"]
    target = FORWARD.index(state)
    skip_resolved = work_item_type == "Task" or rng.random() < CLOSED_WITHOUT_RESOLVING_SHARE
    forward = [
        name
        for name in FORWARD[: target + 1]
        if not (name == "Resolved" and state != "Resolved" and skip_resolved)
    ]
    if state == "Active":
        reopened = rng.random() < REOPENED_ACTIVE_SHARE
        return [*forward, "Closed", "Active"] if reopened else forward
    if rng.random() < REOPENED_SHARE:
        return [*forward, "Active", *forward[2:]]
    return forward


def _times(created: datetime, updated: datetime, count: int, rng: random.Random) -> list[datetime]:
    """`count` increasing times, whole milliseconds (as the service stores them), the first at
    `created`, the others after it and at or before `updated`."""
    start = created.replace(microsecond=created.microsecond // 1000 * 1000)
    span_ms = int((updated - start).total_seconds() * 1000)
    if count == 1 or span_ms < count:
        return [start + timedelta(milliseconds=n) for n in range(count)]
    edited_later = rng.random() < EDITED_AFTER_LAST_CHANGE_SHARE
    last = rng.randint(count - 1, span_ms - 1) if edited_later else span_ms
    offsets = sorted(rng.sample(range(1, last), count - 2)) if count > 2 else []
    return [start + timedelta(milliseconds=ms) for ms in (0, *offsets, last)]
