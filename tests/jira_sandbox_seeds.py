"""Hand-made Jira seed items for the sandbox tests, where exact values matter more than
realism (the generator covers realism)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.sandbox.portfolio import SeedItem, SeedLink

NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)


class FakeClock:
    """The sandbox's clock, moved by hand."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def seed(key: str, number_id: int, type_: str = "Story", **values: Any) -> SeedItem:
    """A Jira item; `updated_minutes_ago` / `created_days_ago` place it in time."""
    updated = NOW - timedelta(minutes=values.pop("updated_minutes_ago", 60))
    created = NOW - timedelta(days=values.pop("created_days_ago", 30))
    links = [SeedLink(link_type, target) for link_type, target in values.pop("links", [])]
    status = values.pop("status", "To Do")
    category = values.pop("category", "To Do")
    return SeedItem(
        "jira", key, number_id, type_, values.pop("title", f"Item {key}"), status, category,
        key.split("-")[0], created, updated, links=links, **values,
    )  # fmt: skip


def project_items(project: str, count: int, first_id: int) -> list[SeedItem]:
    return [
        seed(f"{project}-{n}", first_id + n, updated_minutes_ago=count - n)
        for n in range(1, count + 1)
    ]


def small_portfolio() -> list[SeedItem]:
    """An initiative → epic → story → sub-task tree, a Key Result, labels and links."""
    return [
        seed("OKR-1", 10001, "Key Result", title="Raise conversion", category="In Progress",
             status="In Progress"),
        seed("PAY-1", 10002, "Initiative", title="Modernise payments", labels=["kr-1"],
             business_value=8, time_criticality=5, risk_reduction="big", job_size=3, team="Falcon"),
        seed("PAY-2", 10003, "Epic", title="Rebuild checkout <fast> & safe", parent="PAY-1",
             business_value=5, time_criticality=3, risk_reduction=2, job_size=0,
             links=[("Drives", "OKR-1")], components=["Checkout"], updated_minutes_ago=10),
        seed("PAY-3", 10004, "Story", title="Zürich invoices", parent="PAY-2",
             labels=["KR-1", "ux"], status="In Progress", category="In Progress",
             updated_minutes_ago=5),
        seed("PAY-4", 10005, "Sub-task", title="Write tests", parent="PAY-3", status="Done",
             category="Done", updated_minutes_ago=3 * 24 * 60),
        seed("PAY-5", 10006, "Bug", title="Refund fails", links=[("Relates", "WEB-1")],
             created_days_ago=200, updated_minutes_ago=60 * 24 * 40),
        seed("WEB-1", 10007, "Story", title="Dark mode", team="Kestrel", updated_minutes_ago=30),
        seed("WEB-2", 10008, "Task", title="Rotate credentials", status="Backlog"),
    ]  # fmt: skip
