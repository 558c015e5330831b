"""Context items: the ancestors and alignment-link targets of scope items that the scope leaves
out, fetched so that inheritance still reaches the Key Result above them.

Most users scope to open work (`statusCategory != Done`, `State <> 'Closed'`). A story whose
epic is already Done then points at a parent the pull never brings, and alignment would call
the story orphan work. After a connection's pull, this stage asks the connector for exactly the
keys the scope refers to but the store does not hold (parents, and targets of the configured
OKR link types), stores them as *context* items, and repeats for what those refer to, until
the chains end. Context items serve alignment's inheritance only: the store hands them out
only when asked (`Store.iter_items(context=True)`), so they are never counted in the scope,
orphans, scores, plans, flow metrics or the deletion guard.

Requests. Only keys are collected (from the items already stored; no query), then the
connector reads them in batches (`FetchingConnector.fetch_items`: Jira Cloud bulkfetch per
100, Data Center a `key in (...)` search per 100, Azure DevOps workitemsbatch per 200): one
round per level of the chains, ceil(keys/batch) requests each.
- A full sync refreshes every context item its scope refers to, and retires (marks deleted)
  the context items nothing refers to any more.
- An incremental run looks only at the items it pulled (and, when the deletion scan took
  items out of the scope, at every scope item, since their children may now need them as
  context) and fetches only keys the store does not hold: a run that pulled nothing asks
  nothing.
Bounded and cycle-safe: a key is asked at most once per run, at most `MAX_ROUNDS` levels and
`MAX_CONTEXT_KEYS` keys a run. Keys the tracker does not return (deleted, not visible) are
reported as a warning, and asked again only when a changed item refers to them or on the next
full sync, never on every run.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field

from connectors.base import FetchingConnector
from spm_sync.core.domain import WorkItem
from spm_sync.core.requests import RequestStats
from spm_sync.engines.alignment_evidence import keys_for_warning
from spm_sync.pipeline.stopping import StopSignal
from spm_sync.store import References, Store

MAX_ROUNDS = 20
"""Levels followed up the chains in one run; real hierarchies are a handful deep."""
MAX_CONTEXT_KEYS = 20_000
"""Keys fetched as context in one run; beyond that the rest waits for the next run."""


@dataclass
class ContextOutcome:
    """What one connection's context fetch did, for the report and the benchmarks."""

    asked: int = 0
    fetched: int = 0
    rounds: int = 0
    requests: int = 0
    retired: int = 0
    unreadable: list[str] = field(default_factory=list)
    cut_short: bool = False

    def warnings(self) -> list[str]:
        found: list[str] = []
        if self.unreadable:
            found.append(
                f"{len(self.unreadable)} parent(s) or OKR link target(s) outside the scope "
                f"could not be read ({keys_for_warning(sorted(self.unreadable))}): deleted or "
                "not visible; the items under them may be reported as orphans"
            )
        if self.cut_short:
            found.append(
                f"stopped following parents outside the scope after {self.rounds} level(s) and "
                f"{self.asked} item(s); the next run goes on"
            )
        return found


def targets(references: Iterable[References], link_types: Collection[str]) -> set[str]:
    """The keys that references point at: parents, and links of the OKR link types."""
    wanted = {name.casefold() for name in link_types}
    found: set[str] = set()
    for reference in references:
        if reference.parent_key:
            found.add(reference.parent_key)
        found.update(target for kind, target in reference.links if kind.casefold() in wanted)
    return found


def pull_context(
    store: Store,
    run_id: int,
    connector: object,
    link_types: Collection[str],
    *,
    changed_keys: Collection[str] | None,
    refresh: bool,
    stop: StopSignal,
) -> ContextOutcome | None:
    """Fetch and store the connection's missing context items (see the module docstring).

    `changed_keys`: only these scope items' references are followed (None: every scope
    item's). `refresh` (a full sync): every referenced key outside the scope is read again,
    held or not, and the context items nothing refers to any more are retired. None when the
    connector cannot fetch by key: nothing is done, alignment works as before."""
    if not isinstance(connector, FetchingConnector):
        return None
    outcome = ContextOutcome()
    name = str(getattr(connector, "name", ""))
    requests = _request_counter(connector)
    before = requests()

    def missing(keys: set[str]) -> set[str]:
        # A refresh reads every key that is not a scope item; otherwise only keys not held.
        return keys - store.held_keys(name, keys, context=False if refresh else None)

    frontier = missing(targets(store.item_references(name, changed_keys), link_types))
    asked: set[str] = set()
    got: set[str] = set()
    while frontier:
        if outcome.rounds >= MAX_ROUNDS or len(asked) >= MAX_CONTEXT_KEYS:
            outcome.cut_short = True
            break
        stop.check(f"while following parents outside the scope of {name}")
        wave = sorted(frontier)[: MAX_CONTEXT_KEYS - len(asked)]
        asked.update(wave)
        outcome.rounds += 1
        items = list(connector.fetch_items(wave))
        store.upsert_items(items, run_id, context=True)
        got.update(item.key for item in items)
        outcome.unreadable.extend(key for key in wave if key not in got)
        frontier = missing(targets(map(_references, items), link_types) - asked)
    outcome.asked, outcome.fetched = len(asked), len(got)
    if refresh and not outcome.cut_short:
        outcome.retired = store.retire_context(name, got)
    outcome.requests = requests() - before
    return outcome


def _references(item: WorkItem) -> References:
    return References(item.key, item.parent_key, tuple((x.type, x.target_key) for x in item.links))


def _request_counter(connector: object) -> Callable[[], int]:
    stats = getattr(connector, "stats", None)
    if isinstance(stats, RequestStats):
        return lambda: stats.requests
    return lambda: 0
