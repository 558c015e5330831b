"""Status history after a connection's pull: the changes the store lacks, stored as they page.

Runs right after a pull that succeeded (`spm_sync.pipeline.pull.pull_connection`), with the keys
that
pull delivered (`Connector.pull_history`: a per-item changelog reads only those, a project-wide
feed continues from the stored cursor). The rules:
- the cursor the connector reports is saved only after every change it yielded is stored, so
  a history pull that fails or is stopped halfway is read again by the next run (the store
  keeps each change once, so reading again costs requests, never duplicates);
- so is the history of the items a failed history pull was asking for: a tracker read item
  by item gets, besides the keys pulled in this run, those of the items updated since the
  failed run's pull started (`Store.history_pending_since`), until a history pull completes;
- a full sync reads the history from the start (cursor None, and the stored cursor is
  cleared first): an item that has just come into scope gets the changes it had before, which
  a feed continued from the cursor would never bring again;
- a failure is the connection's warning, not its error: the items were pulled and are still
  aligned, scored, written back and reported; flow metrics use the history stored before;
- the stop signal is looked at after every stored batch;
- a connector without `pull_history` (a test double) has no history to read.
Requests go through the connector's own `RequestStats`, so they count in the connection's
figures like the pull's.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from connectors.base import Connector, ConnectorError
from spm_sync.core.history import StatusChange
from spm_sync.pipeline.stopping import CycleStopped, StopSignal
from spm_sync.store import Store
from spm_sync.store.base import BATCH_ROWS, batched

log = logging.getLogger(__name__)


@dataclass
class HistoryOutcome:
    """What one connection's history pull did. `read`: changes the tracker answered;
    `stored`: those new to the store; `error`: why it stopped short (None when complete)."""

    read: int = 0
    stored: int = 0
    error: Exception | None = None

    @property
    def complete(self) -> bool:
        return self.error is None


EVERYTHING = datetime(1970, 1, 1, tzinfo=UTC)
"""The pending mark of a full sync whose history failed: every item's history is pending."""


def pull_status_history(
    store: Store,
    connector: Connector,
    changed_keys: Collection[str],
    *,
    pulled_since: datetime | None,
    stop: StopSignal,
) -> HistoryOutcome | None:
    """Read and store the connection's new status changes after a pull from `pulled_since`
    (None: a full sync) that brought `changed_keys`; None when the connector has no history.
    Raises only `CycleStopped` (the history then stays pending); any other failure is in the
    outcome."""
    read_history = getattr(connector, "pull_history", None)
    if read_history is None:
        return None
    name = connector.name
    outcome = HistoryOutcome()
    try:
        keys = set(changed_keys)
        if pulled_since is None:
            store.save_history_cursor(name, None)
            cursor = None
        else:
            cursor = store.history_cursor(name)
            pending = store.history_pending_since(name)
            if pending is not None:
                keys |= store.item_keys_updated_since(name, pending)
        store.mark_history_pending(name, pulled_since or EVERYTHING)
        changes: Iterable[StatusChange] = read_history(sorted(keys), cursor)
        for batch in batched(changes, BATCH_ROWS):
            outcome.read += len(batch)
            outcome.stored += store.add_status_changes(name, batch)
            stop.check(f"while reading the status history of {name}")
        store.save_history_cursor(name, connector.history_cursor)
    except CycleStopped:
        raise
    except Exception as error:
        if not isinstance(error, ConnectorError):
            log.info("reading the status history of %s failed", name, exc_info=True)
        outcome.error = error
    return outcome
