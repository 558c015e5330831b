"""The work items an Azure DevOps sandbox serves: seeded, queried, rendered and changed.

Items are kept as the service stores them (reference name -> value, dates as `datetime`,
relations on their source item with the opposite end on the target) and rendered to the
`WorkItem` shape on the way out. Every change makes a new revision: `System.Rev` + 1 and a
later `System.ChangedDate` (and `StateChangeDate` when the state changes, as the processes'
rules set it); earlier revisions are kept (only for items that changed) so `asOf` reads see the
past. A seed's state history becomes its first revisions. Every revision is recorded in
`revisions` (`ado_revision_log`), which the reporting revisions feed pages through. A sorted
ChangedDate index serves incremental WIQL (`ChangedDate >= x`).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from connectors.sandbox import ado_protocol as protocol
from connectors.sandbox.ado_fields import (
    CATEGORY_OF_STATUS,
    CHILD,
    DEFAULT_STATES,
    PARENT,
    find_relation_type,
)
from connectors.sandbox.ado_patch import PatchContext, PatchResult, apply_patch
from connectors.sandbox.ado_render import HUMAN, Relation, work_item_json
from connectors.sandbox.ado_revision_log import (
    STATE_CHANGE_DATE,
    RevisionLog,
    SeededRevision,
    revision_fields,
)
from connectors.sandbox.ado_seeds import key_id, seed_fields
from connectors.sandbox.portfolio import SeedItem
from connectors.sandbox.wiql_eval import CompiledQuery, sort_key


@dataclass(frozen=True, slots=True)
class WriteRecord:
    """One field value an API client wrote (for duplicate-write and audit checks in tests)."""

    key: str
    field: str
    old: Any
    new: Any
    at: datetime
    rev: int


class StoredItem:
    __slots__ = ("fields", "history", "id", "relations", "seeded")

    def __init__(self, work_item_id: int, fields: dict[str, Any]) -> None:
        self.id = work_item_id
        self.fields = fields
        self.relations: list[Relation] = []
        self.history: list[tuple[dict[str, Any], tuple[Relation, ...]]] | None = None
        self.seeded: tuple[SeededRevision, ...] = ()
        """Seeded revisions before the loaded fields, oldest first."""

    @property
    def rev(self) -> int:
        return int(self.fields["System.Rev"])

    @property
    def changed(self) -> datetime:
        return self.fields["System.ChangedDate"]

    def parent(self) -> int | None:
        return next((int(r.target) for r in self.relations if r.rel == PARENT), None)

    def as_of(self, moment: datetime) -> tuple[Mapping[str, Any], tuple[Relation, ...]] | None:
        """The revision current at `moment`, None when the item did not exist yet."""
        if moment >= self.changed:
            return self.fields, tuple(self.relations)
        for fields, relations in reversed(self.history or []):
            if fields["System.ChangedDate"] <= moment:
                return fields, relations
        loaded, relations = self._loaded()
        for seeded in reversed(self.seeded):
            if seeded.changed <= moment:
                return revision_fields(loaded, seeded), relations
        return None

    def revision(self, rev: int) -> Mapping[str, Any] | None:
        """The fields of revision `rev`, None when there is no such revision."""
        if rev == self.rev:
            return self.fields
        for fields, _ in self.history or []:
            if fields["System.Rev"] == rev:
                return fields
        for seeded in self.seeded:
            if seeded.rev == rev:
                return revision_fields(self._loaded()[0], seeded)
        return None

    def _loaded(self) -> tuple[Mapping[str, Any], tuple[Relation, ...]]:
        """The item as it was loaded from its seed, before any change the sandbox made."""
        if self.history:
            return self.history[0]
        return self.fields, tuple(self.relations)


class WorkItemStore:
    def __init__(self, project: str, clock: Callable[[], datetime]) -> None:
        self.project = project
        self.clock = clock
        self.items: dict[int, StoredItem] = {}
        self.deleted: dict[int, StoredItem] = {}
        self.states: dict[str, list[tuple[str, str]]] = {
            name: list(states) for name, states in DEFAULT_STATES.items()
        }
        self.area_paths: set[str] = {project.lower()}
        self.writes: list[WriteRecord] = []
        self.change_on_read: set[int | str] = set()
        self.skipped_links: list[tuple[int, str, int]] = []
        self.version = 0
        """Grows with every change (new revision, delete): cached answers are stale then."""
        self.revisions = RevisionLog()
        self._changed_index: list[tuple[datetime, int]] | None = None

    # -- seeding -------------------------------------------------------------------------------
    def load(self, seeds: Iterable[SeedItem]) -> None:
        pending: list[tuple[StoredItem, SeedItem]] = []
        seen_states: set[tuple[str, str]] = set()
        seen_areas: set[str] = set()
        recorded: list[tuple[datetime, int, int]] = []
        for position, seed in enumerate(seeds, start=1):
            work_item_id, fields, revisions = seed_fields(seed, position, self.project)
            item = StoredItem(work_item_id, fields)
            item.seeded = tuple(revisions[:-1])
            recorded.extend((r.changed, work_item_id, r.rev) for r in revisions)
            self.items[work_item_id] = item
            if (seed.type, seed.status) not in seen_states:
                seen_states.add((seed.type, seed.status))
                self._learn_state(seed)
            if seed.project not in seen_areas:
                seen_areas.add(seed.project)
                self._learn_area(seed.project)
            pending.append((item, seed))
        for item, seed in pending:
            if seed.parent:
                self._link(item, PARENT, key_id(seed.parent))
            for link in seed.links:
                self._link(item, link.type, key_id(link.target))
        self.revisions.extend_in_time_order(recorded)
        self._changed()

    def _learn_state(self, seed: SeedItem) -> None:
        states = self.states.setdefault(seed.type, list(DEFAULT_STATES["Epic"]))
        if all(name != seed.status for name, _ in states):
            states.append((seed.status, CATEGORY_OF_STATUS[seed.status_category]))

    def _learn_area(self, path: str) -> None:
        parts = path.strip("\\").split("\\")
        for depth in range(1, len(parts) + 1):
            self.area_paths.add("\\".join(parts[:depth]).lower())

    def _link(self, item: StoredItem, rel: str, target_id: int) -> None:
        relation_type = find_relation_type(rel)
        if relation_type is None or relation_type.opposite is None:
            raise ValueError(f"seed item {item.id}: {rel!r} is not a work item link type")
        target = self.items.get(target_id)
        if target is None:
            # A link to an item outside the seed (deleted, or another project): kept out, noted.
            self.skipped_links.append((item.id, rel, target_id))
            return
        if any(
            r.rel == relation_type.reference_name and r.target == target_id for r in item.relations
        ):
            return
        item.relations.append(Relation(relation_type.reference_name, target_id))
        target.relations.append(Relation(relation_type.opposite, item.id))
        if relation_type.reference_name in (PARENT, CHILD):
            child = item if relation_type.reference_name == PARENT else target
            child.fields["System.Parent"] = target_id if child is item else item.id

    # -- reading -------------------------------------------------------------------------------
    def get(self, work_item_id: int) -> StoredItem:
        item = self.items.get(work_item_id)
        if item is None:
            raise protocol.work_item_not_found(work_item_id)
        return item

    def query(self, compiled: CompiledQuery) -> list[int]:
        """Ids matching the query, in the query's order (by id when it names none)."""
        candidates: Iterable[StoredItem] = self.items.values()
        if compiled.changed_since is not None:
            index = self._index()
            start = bisect.bisect_left(index, (compiled.changed_since, -1))
            candidates = [self.items[item_id] for _, item_id in index[start:]]
        matches = [item for item in candidates if compiled.predicate(item.fields)]
        matches.sort(key=lambda item: item.id)
        for field, descending in reversed(compiled.order):
            reference = field.reference_name
            matches.sort(
                key=lambda item: sort_key(field, item.fields.get(reference)), reverse=descending
            )
        return [item.id for item in matches]

    def _index(self) -> list[tuple[datetime, int]]:
        if self._changed_index is None:
            self._changed_index = sorted((item.changed, item.id) for item in self.items.values())
        return self._changed_index

    def render(
        self,
        item: StoredItem,
        organization_url: str,
        *,
        fields: list[str] | None = None,
        relations: bool = False,
        links: bool = False,
        as_of: datetime | None = None,
    ) -> dict[str, Any] | None:
        """The `WorkItem` JSON; None when `as_of` predates the item."""
        state = (item.fields, tuple(item.relations)) if as_of is None else item.as_of(as_of)
        if state is None:
            return None
        values, item_relations = state
        return work_item_json(
            item.id,
            values,
            item_relations,
            organization_url,
            fields=fields,
            with_relations=relations,
            with_links=links,
        )

    def after_read(self, ids: Iterable[int]) -> None:
        """Switch `change_on_read`: a human edits these items right after a client read them."""
        for work_item_id in ids:
            listed = self.change_on_read & {work_item_id, str(work_item_id)}
            if listed and work_item_id in self.items:
                self.change_on_read -= listed
                self.touch(work_item_id, {"System.History": "Edited while spm-sync was reading."})

    # -- changing ------------------------------------------------------------------------------
    def patch(
        self,
        work_item_id: int,
        document: Any,
        *,
        validate_only: bool,
        bypass_rules: bool,
        by: Mapping[str, Any],
    ) -> StoredItem:
        item = self.get(work_item_id)
        context = self._patch_context(item, bypass_rules=bypass_rules)
        result = apply_patch(item.id, item.fields, item.relations, document, context)
        if validate_only or not result.changed:
            preview = StoredItem(item.id, result.fields)
            preview.relations = result.relations
            return preview
        self._commit(item, result, by)
        return item

    def touch(self, work_item_id: int, changes: Mapping[str, Any]) -> StoredItem:
        """A human edit: the named fields change and the item gets a new revision."""
        document = [
            {"op": "add", "path": f"/fields/{name}", "value": value}
            for name, value in changes.items()
        ]
        if not document:
            document = [{"op": "add", "path": "/fields/System.History", "value": "Touched."}]
        item = self.get(work_item_id)
        context = self._patch_context(item, bypass_rules=True)
        result = apply_patch(item.id, item.fields, item.relations, document, context)
        self._new_revision(item, result.fields, result.relations, HUMAN)
        return item

    def _patch_context(self, item: StoredItem, *, bypass_rules: bool) -> PatchContext:
        item_type = str(item.fields["System.WorkItemType"])
        return PatchContext(
            states=[name for name, _ in self.states.get(item_type, DEFAULT_STATES["Epic"])],
            area_paths=frozenset(self.area_paths),
            bypass_rules=bypass_rules,
            exists=lambda other: other in self.items,
            parent_of=lambda other: self.items[other].parent() if other in self.items else None,
        )

    def delete(self, work_item_id: int) -> None:
        """Move an item to the recycle bin; links to it disappear from the other items."""
        item = self.items.pop(work_item_id, None)
        if item is None:
            raise KeyError(f"work item {work_item_id} does not exist")
        self.deleted[work_item_id] = item
        for relation in item.relations:
            other = self.items.get(relation.target) if isinstance(relation.target, int) else None
            if other is not None:
                other.relations = [r for r in other.relations if r.target != work_item_id]
                if other.fields.get("System.Parent") == work_item_id:
                    other.fields.pop("System.Parent")
        self._changed()

    def _commit(self, item: StoredItem, result: PatchResult, by: Mapping[str, Any]) -> None:
        fields = result.fields
        parent = next((int(r.target) for r in result.relations if r.rel == PARENT), None)
        if parent is None:
            fields.pop("System.Parent", None)
        else:
            fields["System.Parent"] = parent
        self._new_revision(item, fields, result.relations, by)
        for reference, old, new in result.field_changes:
            self.writes.append(
                WriteRecord(str(item.id), reference, old, new, item.changed, item.rev)
            )
        for relation in result.added_links:
            self._mirror(item, relation, True, by)
        for relation in result.removed_links:
            self._mirror(item, relation, False, by)

    def _mirror(
        self, item: StoredItem, relation: Relation, added: bool, by: Mapping[str, Any]
    ) -> None:
        """The other end of a work item link changes too, and gets its own revision."""
        relation_type = find_relation_type(relation.rel)
        old, new = (None, relation.target) if added else (relation.target, None)
        name = f"relation {relation.rel}"
        self.writes.append(WriteRecord(str(item.id), name, old, new, item.changed, item.rev))
        if (
            relation_type is None
            or relation_type.opposite is None
            or not isinstance(relation.target, int)
        ):
            return
        target = self.items[relation.target]
        mirrored = Relation(relation_type.opposite, item.id, relation.comment)
        relations = list(target.relations)
        if added:
            relations.append(mirrored)
        else:
            relations = [
                r for r in relations if not (r.rel == mirrored.rel and r.target == item.id)
            ]
        fields = dict(target.fields)
        if relation_type.opposite == PARENT:
            if added:
                fields["System.Parent"] = item.id
            else:
                fields.pop("System.Parent", None)
        self._new_revision(target, fields, relations, by)

    def _new_revision(
        self, item: StoredItem, fields: dict[str, Any], relations: list[Relation], by: Any
    ) -> None:
        if item.history is None:
            item.history = []
        item.history.append((item.fields, tuple(item.relations)))
        now = max(self.clock(), item.changed + timedelta(milliseconds=1))
        fields["System.Rev"] = item.rev + 1
        fields["System.ChangedDate"] = now
        fields["System.ChangedBy"] = by
        if fields.get("System.State") != item.fields.get("System.State"):
            fields[STATE_CHANGE_DATE] = now
        item.fields = fields
        item.relations = list(relations)
        self.revisions.append(item.id, item.rev)
        self._changed()

    def _changed(self) -> None:
        self.version += 1
        self._changed_index = None

    def states_of(self, work_item_type: str) -> list[tuple[str, str]] | None:
        for name, states in self.states.items():
            if name.lower() == work_item_type.lower():
                return states
        return None
