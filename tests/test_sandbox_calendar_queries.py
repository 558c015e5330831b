"""The calendar parts of JQL and WIQL that time-bound measures use ("closed this month"), in the
sandboxes: JQL's `startOfMonth(-1)`-style functions and WIQL's `@StartOfMonth - 1`-style
macros, first as pure date arithmetic, then through the connectors' saved queries over HTTP."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from connectors.azure_devops import AzureDevOpsConnector
from connectors.base import QueryAnswer, TrackerQuery
from connectors.jira import JiraConnector
from connectors.sandbox.ado_server import AzureDevOpsSandbox
from connectors.sandbox.jira_fields import WSJF_FIELD_NAMES
from connectors.sandbox.jira_server import JiraSandbox
from connectors.sandbox.jql_dates import calendar_moment
from connectors.sandbox.wiql_dates import macro_day
from connectors.settings import AzureDevOpsSettings, JiraSettings
from tests import jira_sandbox_seeds, sandbox_ado_support

BERLIN = ZoneInfo("Europe/Berlin")
WEDNESDAY = datetime(2026, 3, 18, 15, 30, tzinfo=BERLIN)


@pytest.mark.parametrize(
    ("function", "argument", "expected"),
    [
        ("startOfDay", None, datetime(2026, 3, 18, tzinfo=BERLIN)),
        ("startOfDay", "-1", datetime(2026, 3, 17, tzinfo=BERLIN)),
        ("startOfDay", "-2h", datetime(2026, 3, 17, 22, tzinfo=BERLIN)),
        ("endOfDay", None, datetime(2026, 3, 18, 23, 59, 59, 999000, tzinfo=BERLIN)),
        ("startOfWeek", None, datetime(2026, 3, 15, tzinfo=BERLIN)),  # Sunday
        ("endOfWeek", "-1", datetime(2026, 3, 14, 23, 59, 59, 999000, tzinfo=BERLIN)),
        ("startOfMonth", "-1", datetime(2026, 2, 1, tzinfo=BERLIN)),
        ("startOfMonth", "+14d", datetime(2026, 3, 15, tzinfo=BERLIN)),
        ("endOfMonth", "-1", datetime(2026, 2, 28, 23, 59, 59, 999000, tzinfo=BERLIN)),
        ("endOfMonth", "-1M", datetime(2026, 2, 28, 23, 59, 59, 999000, tzinfo=BERLIN)),
        ("startOfYear", "-1", datetime(2025, 1, 1, tzinfo=BERLIN)),
        ("endOfYear", None, datetime(2026, 12, 31, 23, 59, 59, 999000, tzinfo=BERLIN)),
        ("startOfQuarter", None, None),  # not a JQL function
        ("startOfMonth", "soon", None),
    ],
)
def test_jql_calendar_functions(
    function: str, argument: str | None, expected: datetime | None
) -> None:
    assert calendar_moment(function, argument, WEDNESDAY) == expected


def test_jql_end_of_month_is_the_months_last_millisecond_across_a_clock_change() -> None:
    end = calendar_moment("endOfMonth", None, WEDNESDAY)
    assert end is not None and (end + timedelta(milliseconds=1)).day == 1
    assert end.utcoffset() == timedelta(hours=2)  # summer time began on 29 March


@pytest.mark.parametrize(
    ("macro", "offset", "expected"),
    [
        ("@today", -7, date(2026, 3, 11)),
        ("@startofday", 0, date(2026, 3, 18)),
        ("@startofweek", 0, date(2026, 3, 15)),
        ("@startofweek", -1, date(2026, 3, 8)),
        ("@startofmonth", -3, date(2025, 12, 1)),
        ("@startofmonth", 10, date(2027, 1, 1)),
        ("@startofyear", -1, date(2025, 1, 1)),
        ("@me", 0, None),
    ],
)
def test_wiql_date_macros(macro: str, offset: float, expected: date | None) -> None:
    assert macro_day(macro, offset, date(2026, 3, 18)) == expected


@pytest.mark.integration
def test_jira_counts_bounded_by_calendar_functions() -> None:
    # NOW is Monday 2 June 2025, 12:00 UTC; 1 June was a Sunday.
    seed = jira_sandbox_seeds.seed
    items = [
        seed(f"PAY-{n}", 10000 + n, created_days_ago=days)
        for n, days in enumerate((0, 1, 2, 31, 40, 200), 1)
    ]
    clock = jira_sandbox_seeds.FakeClock()
    with JiraSandbox(items, clock=clock) as sandbox:
        settings = JiraSettings.model_validate(
            {
                "kind": "jira",
                "name": "calendar",
                "url": sandbox.url,
                "auth": {"user_env": "USER", "token_env": "TOKEN"},
                "jql": "project = PAY",
                "wsjf_fields": dict(WSJF_FIELD_NAMES),
            }
        )
        connector = JiraConnector(settings, environ={"USER": sandbox.user, "TOKEN": sandbox.token})
        answers = connector.run_queries(
            [
                TrackerQuery("month", "project = PAY AND created >= startOfMonth()"),
                TrackerQuery(
                    "last month",
                    "project = PAY AND created >= startOfMonth(-1) AND created < startOfMonth()",
                ),
                TrackerQuery("weeks", "project = PAY AND created >= startOfWeek(-1)"),
                TrackerQuery("year", "project = PAY AND created >= startOfYear()"),
                TrackerQuery("till yesterday", "project = PAY AND created <= endOfDay(-1)"),
            ]
        )

    counts = {ident: a.count for ident, a in answers.items() if isinstance(a, QueryAnswer)}
    assert counts == {"month": 2, "last month": 2, "weeks": 3, "year": 5, "till yesterday": 5}


@pytest.mark.integration
def test_azure_devops_counts_bounded_by_date_macros() -> None:
    # BASE is Friday 20 November 2026; 15 November was a Sunday.
    base = sandbox_ado_support.BASE
    items = [
        sandbox_ado_support.seed_item(100 + n, created=base - timedelta(days=days))
        for n, days in enumerate((0, 5, 6, 20, 330))
    ]
    with AzureDevOpsSandbox(items, clock=lambda: base) as sandbox:
        settings = AzureDevOpsSettings.model_validate(
            {
                "kind": "azure_devops",
                "name": "calendar",
                "url": sandbox.organization_url,
                "project": sandbox.project,
                "auth": {"token_env": "PAT"},
                "wsjf_fields": {"risk_reduction": "Risk Reduction | Opportunity Enablement"},
            }
        )
        connector = AzureDevOpsConnector(settings, environ={"PAT": sandbox.pat}, cache_dir=None)
        created = "[System.CreatedDate]"
        answers = connector.run_queries(
            [
                TrackerQuery("month", f"{created} >= @StartOfMonth"),
                TrackerQuery(
                    "last month",
                    f"{created} >= @StartOfMonth - 1 AND {created} < @StartOfMonth",
                ),
                TrackerQuery("week", f"{created} >= @StartOfWeek"),
                TrackerQuery("year", f"{created} >= @StartOfYear"),
                TrackerQuery("six days", f"{created} >= @StartOfDay - 6"),
            ]
        )

    counts = {ident: a.count for ident, a in answers.items() if isinstance(a, QueryAnswer)}
    assert counts == {"month": 3, "last month": 1, "week": 2, "year": 4, "six days": 3}
