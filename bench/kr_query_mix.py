"""The 200 Key Result queries of `bench.kr_queries`, per tracker: what they ask and how many
of each kind (see that module's docstring)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

JIRA_PROJECTS = ("PAY", "WEB", "MOB", "DATA")
ADO_AREAS = ("Payments", "Web", "Mobile", "Data")
JIRA_TYPES = ("Story", "Bug", "Task", "Epic", "Sub-task")
ADO_TYPES = ("User Story", "Bug", "Task", "Feature", "Epic")
Query = dict[str, Any]
"""A `TrackerQuery`'s fields as plain JSON (workers receive their arguments as JSON)."""


def _mix(
    label_count: Callable[[str, int], str],
    broad_count: Callable[[str, str, bool], str],
    label_items: Callable[[int], str],
    projects: Sequence[str],
    types: Sequence[str],
    kr_count: int,
    field: str,
) -> list[Query]:
    queries: list[Query] = []
    pairs = itertools.cycle(itertools.product(range(1, kr_count + 1), projects))
    for n, project in itertools.islice(pairs, 100):
        queries.append({"ident": f"count {project} kr-{n}", "text": label_count(project, n)})
    for project, kind, done in itertools.product(projects, types, (True, False)):
        queries.append(
            {"ident": f"count {project} {kind} {done}", "text": broad_count(project, kind, done)}
        )
    for n in range(1, 41):
        text = label_items((n - 1) % kr_count + 1)
        queries.append({"ident": f"share kr-{n}", "text": text, "want": "items"})
    sums = itertools.islice(itertools.product(range(kr_count, 0, -1), projects), 16)
    for n, project in sums:
        queries.append(
            {"ident": f"sum {project} kr-{n}", "text": label_count(project, n) + " ",
             "want": "items", "field": field}
        )  # fmt: skip
    for project in projects:
        text = broad_count(project, types[-2], True).rsplit(" AND ", 1)[0]
        queries.append({"ident": f"share {project} {types[-2]}", "text": text, "want": "items"})
    return _distinct_texts(queries)


def _distinct_texts(queries: list[Query]) -> list[Query]:
    """Every text differs (a repeat, in quick mode's few Key Results or a sum's label count,
    gets a redundant bracket), so no query rides on another's answer in the benchmark; every
    ident is numbered."""
    seen: set[str] = set()
    for number, query in enumerate(queries, 1):
        text = query["text"].strip()
        while text in seen:
            text = f"({text})"
        seen.add(text)
        query["text"] = text
        query["ident"] = f"KR {number}: {query['ident']}"
    return queries


def jira_queries(kr_count: int) -> list[Query]:
    return _mix(
        lambda project, n: f"project = {project} AND labels = kr-{n}",
        lambda project, kind, done: (
            f'project = {project} AND issuetype = "{kind}" AND statusCategory '
            f"{'=' if done else '!='} Done"
        ),
        lambda n: f"labels = kr-{n}",
        JIRA_PROJECTS,
        JIRA_TYPES,
        kr_count,
        "Job Size",
    )


def ado_queries(kr_count: int) -> list[Query]:
    def area(name: str) -> str:
        return f"[System.AreaPath] UNDER 'Portfolio\\{name}'"

    return _mix(
        lambda name, n: f"{area(name)} AND [System.Tags] CONTAINS 'KR-{n}'",
        lambda name, kind, done: (
            f"{area(name)} AND [System.WorkItemType] = '{kind}' AND [System.State] "
            f"{'IN' if done else 'NOT IN'} ('Closed', 'Done', 'Removed')"
        ),
        lambda n: f"[System.Tags] CONTAINS 'KR-{n}'",
        ADO_AREAS,
        ADO_TYPES,
        kr_count,
        "Effort",
    )
