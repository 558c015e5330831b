"""A seeded, realistic portfolio for the sandbox trackers: OKRs plus Jira and Azure DevOps items.

Same `seed`, `size`, `jira_share` and `now` give the same portfolio, item for item. `now`
defaults to the start of the current UTC day, so a whole day's runs (and a demo and its tests)
see the same data while `updated` still falls within the last ~90 days.

What it models, because the connectors and the alignment/WSJF stages must cope with it:
- Hierarchy: Jira Initiative → Epic → Story/Bug/Task → Sub-task; Azure DevOps Epic → Feature →
  User Story/Bug → Task. Some items have no parent above them.
- OKRs: Key Result items (Jira project `OKR`, Azure DevOps type "Key Result"); alignment by a
  `kr-<id>` label (case varies) / `KR-<id>` tag, by a "Drives" / Related link to the Key Result
  item, or inherited from an aligned parent. About 15% of work is orphaned (no label, no link,
  no aligned ancestor) and about 10% of Key Results are driven by nothing.
- WSJF inputs on initiatives/epics (Jira) and epics/features (Azure DevOps) on the modified
  Fibonacci scale, with gaps: ~10% miss one input, ~2% have job size 0, ~1% hold a non-number
  ("big", "?") in the risk-reduction field, which is a text field in Jira.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import accumulate

from connectors.sandbox import wordlists as words
from connectors.sandbox.ado_histories import add_state_histories
from connectors.sandbox.portfolio import (
    RawValue,
    SeedItem,
    SeedKeyResult,
    SeedLink,
    SeedObjective,
    SeedPortfolio,
    Tracker,
)

MIN_SIZE = 100
MAX_SIZE = 200_000
FIBONACCI = (1, 2, 3, 5, 8, 13, 20)
FIBONACCI_CUMULATIVE = tuple(accumulate((8, 12, 16, 18, 14, 8, 4)))
NOT_A_NUMBER = ("big", "?", "TBD", "L")
UPDATED_WINDOW_SECONDS = 90 * 24 * 3600
JIRA_FIRST_ID = 10001
ADO_FIRST_ID = 1001  # above any Key Result id, so an item id never reads as a KR id
DRIVES, RELATES, ADO_RELATED = "Drives", "Relates", "System.LinkTypes.Related"

STATUS_CATEGORIES = ("To Do", "In Progress", "Done")
CATEGORY_CUMULATIVE = tuple(accumulate((40, 30, 30)))
JIRA_STATUSES = {
    "To Do": ("To Do", "Backlog", "Selected for Development"),
    "In Progress": ("In Progress", "In Review"),
    "Done": ("Done",),
}
ADO_STATES = {
    "To Do": ("New",),
    "In Progress": ("Active", "Resolved"),
    "Done": ("Closed",),
}

# Shares of each level among the work items of a tracker (the rest of the tree is sub-tasks).
JIRA_LEVEL_SHARES = (("Initiative", 0.015), ("Epic", 0.07), ("Story", 0.66), ("Sub-task", 0.255))
ADO_LEVEL_SHARES = (("Epic", 0.02), ("Feature", 0.08), ("User Story", 0.62), ("Task", 0.28))


@dataclass
class _Alignment:
    """How the generator decided an item is aligned, so children know whether they inherit."""

    aligned: bool
    kr_ids: list[str] = field(default_factory=list)


def generate_portfolio(
    size: int, *, seed: int = 7, jira_share: float = 0.6, now: datetime | None = None
) -> SeedPortfolio:
    """Build `size` items (100..200,000), `jira_share` of them in Jira, plus the OKRs."""
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"size must be between {MIN_SIZE} and {MAX_SIZE}, got {size}")
    if not 0.0 <= jira_share <= 1.0:
        raise ValueError(f"jira_share must be between 0 and 1, got {jira_share}")
    reference = now or datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    rng = random.Random(seed)
    jira_size = round(size * jira_share)
    kr_count = max(4, min(60, size // 400))
    objectives, key_results = _okrs(rng, kr_count, reference)
    builder = _Builder(rng, reference, [kr.id for kr in key_results])
    jira = builder.jira_items(jira_size, kr_titles=[kr.title for kr in key_results])
    ado = builder.ado_items(size - jira_size, kr_titles=[kr.title for kr in key_results])
    key_results = [
        SeedKeyResult(
            id=kr.id,
            objective_id=kr.objective_id,
            title=kr.title,
            target=kr.target,
            current=kr.current,
            aliases=tuple(builder.kr_aliases.get(kr.id, ())),
            baseline=kr.baseline,
        )
        for kr in key_results
    ]
    return SeedPortfolio(seed, objectives, key_results, jira, ado)


def _okrs(
    rng: random.Random, kr_count: int, now: datetime
) -> tuple[list[SeedObjective], list[SeedKeyResult]]:
    objective_count = max(2, min(len(words.OBJECTIVES), kr_count // 3))
    period = f"{now.year}-Q{(now.month - 1) // 3 + 1}"
    objectives = [
        SeedObjective(f"O{n}", words.OBJECTIVES[n - 1], rng.choice(words.OWNERS), period)
        for n in range(1, objective_count + 1)
    ]
    key_results = []
    for n in range(1, kr_count + 1):
        template, target, baseline = words.KEY_RESULT_METRICS[
            (n - 1) % len(words.KEY_RESULT_METRICS)
        ]
        current = round(baseline + (target - baseline) * rng.uniform(0.3, 1.1), 1)
        objective = objectives[(n - 1) % objective_count]
        title = template.format(target=f"{target:g}")
        key_results.append(
            SeedKeyResult(str(n), objective.id, title, target, current, baseline=baseline)
        )
    return objectives, key_results


def _split(total: int, shares: Sequence[tuple[str, float]]) -> dict[str, int]:
    """Largest-remainder split of `total` by `shares`, so the counts add up exactly."""
    raw = [(name, total * share) for name, share in shares]
    counts = {name: int(value) for name, value in raw}
    remainder = total - sum(counts.values())
    by_fraction = sorted(raw, key=lambda pair: pair[1] - int(pair[1]), reverse=True)
    for name, _ in by_fraction[:remainder]:
        counts[name] += 1
    return counts


class _Builder:
    """Generates one tracker's items at a time; shares the random stream and the KR ids."""

    def __init__(self, rng: random.Random, now: datetime, kr_ids: list[str]) -> None:
        self.rng = rng
        self.now = now
        self.kr_ids = kr_ids
        # ~10% of Key Results are driven by nothing: the report must show them as uncovered.
        uncovered = max(1, len(kr_ids) // 10)
        self.driven_kr_ids = kr_ids[:-uncovered]
        self.kr_aliases: dict[str, list[str]] = {}
        self.items: list[SeedItem] = []
        self.next_id = 0
        self.counters: dict[str, int] = {}

    # -- shared pieces ----------------------------------------------------------------------
    def _new_item(self, tracker: Tracker, project: str, type_: str, title: str) -> SeedItem:
        rng = self.rng
        age = int(rng.random() ** 1.4 * UPDATED_WINDOW_SECONDS)
        updated = self.now - timedelta(seconds=age)
        created = updated - timedelta(seconds=3600 + int(rng.random() * 300 * 86400))
        states = JIRA_STATUSES if tracker == "jira" else ADO_STATES
        category = rng.choices(STATUS_CATEGORIES, cum_weights=CATEGORY_CUMULATIVE)[0]
        if tracker == "jira":
            self.counters[project] = self.counters.get(project, 0) + 1
            key = f"{project}-{self.counters[project]}"
        else:
            key = str(self.next_id)
        item = SeedItem(
            tracker, key, self.next_id, type_, title, rng.choice(states[category]),
            category, project, created, updated,  # type: ignore[arg-type]
        )  # fmt: skip
        self.next_id += 1
        self.items.append(item)
        return item

    def _start(self, first_id: int) -> None:
        self.items = []
        self.next_id = first_id
        self.counters = {}

    def _wsjf(self, item: SeedItem) -> None:
        rng = self.rng
        values: list[RawValue] = list(rng.choices(FIBONACCI, cum_weights=FIBONACCI_CUMULATIVE, k=4))
        roll = rng.random()
        if roll < 0.10:
            values[rng.randrange(4)] = None
        elif roll < 0.12:
            values[3] = 0
        elif roll < 0.13:
            values[2] = rng.choice(NOT_A_NUMBER)
        item.business_value, item.time_criticality, item.risk_reduction, item.job_size = values

    def _title(self, kind: str) -> str:
        rng = self.rng
        roll = rng.random()
        if roll < 0.03:
            return rng.choice(words.UNICODE_TITLES)
        if roll < 0.04:
            return rng.choice(words.MARKUP_TITLES)
        what = rng.choice(words.OBJECTS)
        if kind == "theme":
            return rng.choice(words.THEMES)
        if kind == "epic":
            return f"{rng.choice(words.VERBS)} {what} {rng.choice(words.CONTEXTS)}"
        if kind == "bug":
            symptom, condition = rng.choice(words.BUG_SYMPTOMS), rng.choice(words.BUG_CONDITIONS)
            return f"{what.capitalize()} {symptom} when {condition}"
        if kind == "task":
            return rng.choice(words.TASKS)
        if kind == "subtask":
            return f"{rng.choice(words.SUBTASK_STEPS)} for {what}"
        if roll < 0.35:
            persona, benefit = rng.choice(words.PERSONAS), rng.choice(words.BENEFITS)
            return f"As a {persona}, I want the {what} improved so {benefit}"
        return f"{rng.choice(words.VERBS)} {what}"

    def _noise_labels(self) -> list[str]:
        roll = self.rng.random()
        if roll < 0.55:
            return []
        return self.rng.sample(words.NOISE_LABELS, 1 if roll < 0.85 else 2)

    def _alignment(self, parent: _Alignment | None, top_level: bool) -> _Alignment:
        """Decide whether an item carries its own KR label/link (else it may inherit).

        Tuned so that ~15% of all work ends up with no alignment path at all.
        """
        rng = self.rng
        if top_level:
            own = rng.random() < 0.8
        elif parent is not None and parent.aligned:
            own = rng.random() < 0.25
        else:
            own = rng.random() < 0.42
        if not own:
            return _Alignment(parent is not None and parent.aligned)
        return _Alignment(True, [rng.choice(self.driven_kr_ids)])

    def _align(
        self, item: SeedItem, parent: _Alignment | None, kr_keys: dict[str, str], top: bool
    ) -> _Alignment:
        """Put the KR label/tag or the link to the Key Result item on `item`."""
        rng = self.rng
        alignment = self._alignment(parent, top_level=top)
        labels = self._noise_labels()
        link_type = DRIVES if item.tracker == "jira" else ADO_RELATED
        for kr_id in alignment.kr_ids:
            if kr_id in kr_keys and rng.random() < 0.4:
                item.links = [SeedLink(link_type, kr_keys[kr_id])]
            else:
                labels.append(_kr_label(kr_id, rng.random(), item.tracker))
        item.labels = labels
        return alignment

    def _key_result_items(
        self, tracker: Tracker, project: str, total: int, kr_titles: list[str]
    ) -> dict[str, str]:
        kr_keys: dict[str, str] = {}
        for kr_id, title in zip(self.kr_ids[:total], kr_titles, strict=False):
            item = self._new_item(tracker, project, "Key Result", title)
            kr_keys[kr_id] = item.key
            self.kr_aliases.setdefault(kr_id, []).append(item.key)
        return kr_keys

    def _leaves(
        self, tracker: Tracker, type_: str, count: int, stories: list[tuple[SeedItem, _Alignment]]
    ) -> None:
        """The bottom level (Jira sub-tasks, Azure DevOps tasks): each under a random story, in
        its project or area and its team, with no alignment of its own (only noise labels)."""
        rng = self.rng
        for _ in range(count):
            parent = rng.choice(stories)[0]
            item = self._new_item(tracker, parent.project, type_, self._title("subtask"))
            item.parent = parent.key
            item.labels = self._noise_labels()
            item.team = parent.team

    def _relates_links(self, items: list[SeedItem], link_type: str) -> None:
        """~3% of items relate to another work item: links that must not count as alignment."""
        if len(items) < 2:
            return
        rng = self.rng
        for _ in range(max(1, len(items) * 3 // 100)):
            source, target = rng.sample(items, 2)
            source.links = [*source.links, SeedLink(link_type, target.key)]

    # -- Jira ------------------------------------------------------------------------------
    def jira_items(self, total: int, kr_titles: list[str]) -> list[SeedItem]:
        if total <= 0:
            return []
        self._start(JIRA_FIRST_ID)
        kr_keys = self._key_result_items("jira", "OKR", min(len(self.kr_ids), total), kr_titles)
        work_total = total - len(kr_keys)
        project_count = max(4, min(len(words.JIRA_PROJECTS), total // 12_000))
        projects = [key for key, _ in words.JIRA_PROJECTS[:project_count]]
        counts = _split(work_total, JIRA_LEVEL_SHARES)
        if counts["Story"] == 0:  # tiny trees: sub-tasks need a parent
            counts["Story"], counts["Sub-task"] = counts["Sub-task"], 0
        tops = self._jira_level("Initiative", counts["Initiative"], [], projects, kr_keys)
        epics = self._jira_level("Epic", counts["Epic"], tops, projects, kr_keys)
        stories = self._jira_level("Story", counts["Story"], epics, projects, kr_keys)
        self._leaves("jira", "Sub-task", counts["Sub-task"], stories)
        items = self.items
        self._relates_links(items[len(kr_keys) :], RELATES)
        return items

    def _jira_level(
        self,
        level: str,
        count: int,
        parents: list[tuple[SeedItem, _Alignment]],
        projects: list[str],
        kr_keys: dict[str, str],
    ) -> list[tuple[SeedItem, _Alignment]]:
        rng = self.rng
        created: list[tuple[SeedItem, _Alignment]] = []
        parent_share = 0.85 if level == "Epic" else 0.92
        for n in range(count):
            parent = rng.choice(parents) if parents and rng.random() < parent_share else None
            if parent is not None and rng.random() < 0.8:
                project = parent[0].project
            else:
                fixed = projects[n % len(projects)] if level == "Initiative" else None
                project = fixed or rng.choice(projects)
            type_, kind = _jira_type(level, rng.random())
            item = self._new_item("jira", project, type_, self._title(kind))
            item.parent = parent[0].key if parent else None
            item.team = rng.choice(words.TEAMS)
            if rng.random() < 0.4:
                item.components = [rng.choice(words.JIRA_COMPONENTS)]
            alignment = self._align(item, parent[1] if parent else None, kr_keys, not parents)
            if level in ("Initiative", "Epic"):
                self._wsjf(item)
            created.append((item, alignment))
        return created

    # -- Azure DevOps ----------------------------------------------------------------------
    def ado_items(self, total: int, kr_titles: list[str]) -> list[SeedItem]:
        if total <= 0:
            return []
        self._start(ADO_FIRST_ID)
        kr_count = min(len(self.kr_ids), total)
        kr_keys = self._key_result_items("azure_devops", "Portfolio\\OKR", kr_count, kr_titles)
        area_count = max(4, min(len(words.AREAS), total // 12_000))
        areas = [f"Portfolio\\{name}" for name in words.AREAS[:area_count]]
        counts = _split(total - len(kr_keys), ADO_LEVEL_SHARES)
        if counts["User Story"] == 0:
            counts["User Story"], counts["Task"] = counts["Task"], 0
        epics = self._ado_level("Epic", counts["Epic"], [], areas, kr_keys)
        features = self._ado_level("Feature", counts["Feature"], epics, areas, kr_keys)
        stories = self._ado_level("User Story", counts["User Story"], features, areas, kr_keys)
        self._leaves("azure_devops", "Task", counts["Task"], stories)
        items = self.items
        self._relates_links(items[len(kr_keys) :], ADO_RELATED)
        add_state_histories(items)
        return items

    def _ado_level(
        self,
        level: str,
        count: int,
        parents: list[tuple[SeedItem, _Alignment]],
        areas: list[str],
        kr_keys: dict[str, str],
    ) -> list[tuple[SeedItem, _Alignment]]:
        rng = self.rng
        created: list[tuple[SeedItem, _Alignment]] = []
        parent_share = 0.85 if level == "Feature" else 0.92
        for n in range(count):
            parent = rng.choice(parents) if parents and rng.random() < parent_share else None
            if parent is not None:
                area = parent[0].project.split("\\")[:2]
                area_path = "\\".join(area)
            else:
                area_path = areas[n % len(areas)] if level == "Epic" else rng.choice(areas)
            if level == "User Story" and rng.random() < 0.5:
                area_path = f"{area_path}\\{rng.choice(words.TEAMS)}"
            type_ = level
            if level == "User Story" and rng.random() < 0.2:
                type_ = "Bug"
            kind = {"Epic": "theme", "Feature": "epic", "Bug": "bug"}.get(type_, "story")
            item = self._new_item("azure_devops", area_path, type_, self._title(kind))
            item.parent = parent[0].key if parent else None
            item.team = area_path.rsplit("\\", 1)[-1]
            alignment = self._align(item, parent[1] if parent else None, kr_keys, not parents)
            if level in ("Epic", "Feature"):
                self._wsjf(item)
            created.append((item, alignment))
        return created


def _jira_type(level: str, roll: float) -> tuple[str, str]:
    """The Jira issue type of a work item at `level`, and the kind of title it gets."""
    if level == "Initiative":
        return "Initiative", "theme"
    if level == "Epic":
        return "Epic", "epic"
    if roll < 0.70:
        return "Story", "story"
    return ("Bug", "bug") if roll < 0.88 else ("Task", "task")


def _kr_label(kr_id: str, roll: float, tracker: Tracker) -> str:
    """`kr-7` mostly; people also type `KR-7` and `Kr-7` (Azure DevOps tags: `KR-7`)."""
    if tracker == "azure_devops":
        return f"kr-{kr_id}" if roll < 0.1 else f"KR-{kr_id}"
    if roll < 0.8:
        return f"kr-{kr_id}"
    return f"KR-{kr_id}" if roll < 0.95 else f"Kr-{kr_id}"
