"""Status history against the Jira sandbox over HTTP, both flavours: what the connector reads
equals what the sandbox recorded, with ceil(n / 1000) changelog requests on Cloud, none when
nothing changed; faults are retried, a broken page stops the read; the sandbox's answers match
the spec."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import timedelta
from itertools import pairwise
from typing import Any

import pytest
import requests

from connectors.base import ConnectorError
from connectors.jira import JiraConnector
from connectors.sandbox.jira_history import history_of, status_history_of
from connectors.sandbox.jira_server import JiraSandbox
from connectors.sandbox.portfolio import SeedItem
from connectors.sandbox.server import Faults
from spm_sync.core.domain import StatusCategory
from spm_sync.core.history import StatusChange
from tests.jira_sandbox_seeds import NOW, FakeClock, seed, small_portfolio
from tests.spec_validation import jira_platform
from tests.test_jira_integration import NAME, REFERENCE, SandboxClock, connector, portfolio

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

PLATFORM = jira_platform()
CHANGELOGS = "POST /rest/api/3/changelog/bulkfetch"
Row = tuple[str, int, str | None, str, StatusCategory | None]


@pytest.fixture(params=("cloud", "datacenter"))
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def cloud() -> Iterator[tuple[JiraSandbox, tuple[SeedItem, ...], SandboxClock]]:
    clock = SandboxClock(REFERENCE + timedelta(days=1))
    items = portfolio(2500)
    with JiraSandbox(items, flavour="cloud", clock=clock) as sandbox:
        yield sandbox, items, clock


def recorded(sandbox: JiraSandbox, keys: Sequence[str]) -> list[Row]:
    """The sandbox's own status history of `keys` (found by any key they had), as rows."""
    rows: list[Row] = []
    with sandbox.lock:
        statuses = sandbox.store.statuses
        for key in keys:
            issue = sandbox.store.find(key)
            assert issue is not None, key
            for entry in status_history_of(issue):
                category = StatusCategory(statuses[entry.after][1])
                rows.append((key, entry.at, entry.before, entry.after, category))
    return sorted(rows, key=repr)


def rows(changes: Sequence[StatusChange]) -> list[Row]:
    assert all(
        change.item[0] == NAME and change.at.utcoffset() == timedelta(0) for change in changes
    )
    return sorted(
        (
            (c.item[1], round(c.at.timestamp() * 1000), c.from_status, c.to_status, c.to_category)
            for c in changes
        ),
        key=repr,
    )


def history_requests(jira: JiraConnector, before: Counter[str]) -> Counter[str]:
    after = Counter(jira.stats.by_endpoint)
    after.subtract(before)
    return +after


def test_full_history_equals_the_sandboxs_in_ceil_n_over_1000_requests_on_cloud(
    cloud: tuple[JiraSandbox, tuple[SeedItem, ...], SandboxClock],
) -> None:
    sandbox, items, _ = cloud
    jira = connector(sandbox, items)
    keys = [item.key for item in jira.pull(None)]
    before = Counter(jira.stats.by_endpoint)

    changes = list(jira.pull_history(keys, None))

    assert len(keys) == 2500
    assert rows(changes) == recorded(sandbox, keys)
    # The pull saw every status the histories pass through: no status list needed.
    assert history_requests(jira, before) == {CHANGELOGS: math.ceil(2500 / 1000)}
    reopened = {c.item for c in changes if c.from_status == "Done"}
    assert len(reopened) > 50  # about one done issue in five went back to work
    assert jira.history_cursor is not None  # the status categories, for the next run


def test_full_history_on_data_center_equals_the_sandboxs() -> None:
    items = portfolio(600)
    with JiraSandbox(items, flavour="datacenter", clock=SandboxClock(REFERENCE)) as sandbox:
        jira = connector(sandbox, items)
        keys = [item.key for item in jira.pull(None)]
        before = Counter(jira.stats.by_endpoint)

        changes = list(jira.pull_history(keys, None))

        assert rows(changes) == recorded(sandbox, keys)
    assert history_requests(jira, before) == {"POST /rest/api/2/search": math.ceil(600 / 250)}


def test_incremental_history_asks_only_the_changed_keys_and_sees_the_new_change(
    flavour: str,
) -> None:
    items = portfolio(600)
    clock = SandboxClock(REFERENCE)
    with JiraSandbox(items, flavour=flavour, clock=clock) as sandbox:  # type: ignore[arg-type]
        first = connector(sandbox, items)
        list(first.pull(None))
        since = clock.advance(minutes=5)
        done = sorted(i.key for i in items if i.status == "Done")[:2]
        fresh = sorted(i.key for i in items if i.status == "To Do")[:1]
        clock.advance(minutes=5)
        for key in done:
            sandbox.touch(key, status="In Progress")  # reopened
        sandbox.touch(fresh[0], status="Selected for Development")

        jira = connector(sandbox, items)
        keys = [item.key for item in jira.pull(since - timedelta(minutes=1))]
        before = Counter(jira.stats.by_endpoint)
        changes = list(jira.pull_history(keys, None))

        assert sorted(keys) == sorted(done + fresh)
        assert rows(changes) == recorded(sandbox, keys)
    newest = {c.item[1]: c for c in changes if c.at == max(x.at for x in changes)}
    assert {key: (c.from_status, c.to_status, c.to_category) for key, c in newest.items()} == {
        **{key: ("Done", "In Progress", StatusCategory.IN_PROGRESS) for key in done},
        fresh[0]: ("To Do", "Selected for Development", StatusCategory.TODO),
    }
    endpoint = CHANGELOGS if flavour == "cloud" else "POST /rest/api/2/search"
    assert history_requests(jira, before)[endpoint] == 1


def test_a_run_that_pulled_nothing_makes_no_history_request(
    cloud: tuple[JiraSandbox, tuple[SeedItem, ...], SandboxClock],
) -> None:
    sandbox, items, clock = cloud
    jira = connector(sandbox, items)
    keys = [item.key for item in jira.pull(clock.now - timedelta(minutes=1))]
    requests_before = jira.stats.requests
    sandbox.reset_counts()

    assert keys == []
    assert list(jira.pull_history(keys, None)) == []
    assert jira.stats.requests == requests_before == 3
    assert sandbox.request_count == 0


def test_the_status_categories_a_run_learned_spare_the_next_run_the_status_list(
    cloud: tuple[JiraSandbox, tuple[SeedItem, ...], SandboxClock],
) -> None:
    """A nightly run that pulls a handful of issues whose changelogs name a status nobody is
    in now reads the site's status list once; with the cursor of the run before, not again."""
    sandbox, items, clock = cloud
    first = connector(sandbox, items)
    full = [item.key for item in first.pull(None)]
    list(first.pull_history(full, None))
    remembered = first.history_cursor
    assert remembered is not None
    since = clock.advance(minutes=1)
    key = sorted(i.key for i in items if i.status == "Done")[0]
    sandbox.touch(key, summary="edited, still done")

    runs = []
    for cursor in (None, remembered):
        jira = connector(sandbox, items)
        keys = [item.key for item in jira.pull(since)]
        before = Counter(jira.stats.by_endpoint)
        changes = list(jira.pull_history(keys, cursor))
        runs.append((history_requests(jira, before), changes))

    (without, changes_without), (with_cursor, changes_with) = runs
    assert without["GET /rest/api/3/status"] == 1  # "In Progress" was nobody's status now
    assert "GET /rest/api/3/status" not in with_cursor
    assert sum(with_cursor.values()) == with_cursor[CHANGELOGS] == 1
    assert rows(changes_with) == rows(changes_without) == recorded(sandbox, [key])


def test_a_cursor_of_another_kind_is_ignored(
    cloud: tuple[JiraSandbox, tuple[SeedItem, ...], SandboxClock],
) -> None:
    sandbox, items, clock = cloud
    since = clock.advance(minutes=1)
    key = sorted(i.key for i in items if i.status == "Done")[0]
    sandbox.touch(key, summary="edited")
    for cursor in ("not json", '{"other": 1}', '["a"]'):
        jira = connector(sandbox, items)
        keys = [item.key for item in jira.pull(since)]
        assert rows(list(jira.pull_history(keys, cursor))) == recorded(sandbox, [key])


@pytest.mark.parametrize("changed", [1, 1000, 1001])
def test_history_of_n_changed_issues_costs_ceil_n_over_1000_requests(
    cloud: tuple[JiraSandbox, tuple[SeedItem, ...], SandboxClock], changed: int
) -> None:
    sandbox, items, clock = cloud
    since = clock.advance(minutes=1)
    for item in sorted(items, key=lambda i: i.key)[:changed]:
        sandbox.touch(item.key, summary=f"{item.title} (edited)")
    jira = connector(sandbox, items)
    keys = [item.key for item in jira.pull(since)]
    before = Counter(jira.stats.by_endpoint)

    changes = list(jira.pull_history(keys, None))

    assert len(keys) == changed
    assert rows(changes) == recorded(sandbox, keys)
    counted = history_requests(jira, before)
    assert counted[CHANGELOGS] == math.ceil(changed / 1000)
    assert sum(counted.values()) - counted[CHANGELOGS] <= 1  # at most one status list


def test_throttling_and_unavailability_are_retried(flavour: str) -> None:
    items = portfolio(2500)
    with JiraSandbox(items, flavour=flavour) as sandbox:  # type: ignore[arg-type]
        jira = connector(sandbox, items)
        keys = [item.key for item in jira.pull(None)]
        path = "/changelog/bulkfetch" if flavour == "cloud" else "/search"
        sandbox.set_faults(
            Faults(
                throttle_rate=0.3,
                unavailable_rate=0.3,
                retry_after_seconds=0,
                seed=2,
                only_paths=(path, "/status"),
            )
        )
        retries_before = jira.stats.retries

        changes = list(jira.pull_history(keys, None))

        assert rows(changes) == recorded(sandbox, keys)
    assert jira.stats.retries > retries_before


def test_a_broken_changelog_page_stops_the_read_with_a_connector_error(
    cloud: tuple[JiraSandbox, tuple[SeedItem, ...], SandboxClock],
) -> None:
    sandbox, items, _ = cloud
    jira = connector(sandbox, items)
    keys = [item.key for item in jira.pull(None)]
    sandbox.set_faults(Faults(endless_pages=True, only_paths=("/changelog/bulkfetch",)))

    with pytest.raises(ConnectorError, match="without end"):
        list(jira.pull_history(keys, None))
    assert jira.stats.by_endpoint[CHANGELOGS] <= 2 * 3  # a page or two per batch, not more


def test_a_moved_issue_keeps_its_history_under_the_key_it_is_asked_by(flavour: str) -> None:
    items = portfolio(600)
    clock = SandboxClock(REFERENCE)
    with JiraSandbox(items, flavour=flavour, clock=clock) as sandbox:  # type: ignore[arg-type]
        before_move = connector(sandbox, items)
        list(before_move.pull(None))
        old_key = sorted(i.key for i in items if i.status == "Done" and i.key.startswith("P"))[0]
        since = clock.advance(minutes=5)
        clock.advance(minutes=1)
        new_key = sandbox.move(old_key, "OKR")
        expected = recorded(sandbox, [new_key])

        # The next run pulls the issue under its new key.
        jira = connector(sandbox, items)
        keys = [item.key for item in jira.pull(since)]
        changes = list(jira.pull_history(keys, None))
        # A run that pulled it before the move asks by the old key.
        by_old_key = list(before_move.pull_history([old_key], None))

    assert keys == [new_key] and len(expected) >= 2
    assert rows(changes) == expected
    assert rows(by_old_key) == [(old_key, *row[1:]) for row in expected]
    if flavour == "datacenter":
        assert jira.former_keys == {new_key: [old_key]}


def test_a_seeds_own_status_history_is_served_as_it_is(flavour: str) -> None:
    days = [NOW - timedelta(days=n) for n in (30, 20, 15, 10, 5)]
    path = ["Backlog", "In Progress", "Blocked", "In Progress", "Closed"]
    items = [
        seed(
            "PAY-1",
            10001,
            status="Closed",
            category="Done",
            status_history=list(zip(days, path, strict=True)),
        ),
        seed("PAY-2", 10002),
    ]
    with JiraSandbox(items, flavour=flavour, clock=FakeClock()) as sandbox:  # type: ignore[arg-type]
        jira = connector(sandbox, items)
        keys = [item.key for item in jira.pull(None)]
        changes = list(jira.pull_history(keys, None))

    progress, done = StatusCategory.IN_PROGRESS, StatusCategory.DONE
    assert [(c.item[1], c.at, c.from_status, c.to_status, c.to_category) for c in changes] == [
        ("PAY-1", days[1], "Backlog", "In Progress", progress),
        ("PAY-1", days[2], "In Progress", "Blocked", progress),
        ("PAY-1", days[3], "Blocked", "In Progress", progress),
        ("PAY-1", days[4], "In Progress", "Closed", done),
    ]


# -- the sandbox's answers and the spec ------------------------------------------------------
@pytest.fixture(scope="module")
def small_cloud() -> Iterator[JiraSandbox]:
    with JiraSandbox(small_portfolio(), clock=FakeClock()) as sandbox:
        yield sandbox


def post(sandbox: JiraSandbox, path: str, body: Any) -> requests.Response:
    return requests.post(f"{sandbox.url}{path}", json=body, auth=sandbox.basic_auth, timeout=10)


def test_bulk_changelogs_page_in_spec_shape_oldest_first(small_cloud: JiraSandbox) -> None:
    keys = ["PAY-1", "PAY-2", "PAY-3", "PAY-4", "OKR-1", "NOPE-1"]
    request = {"issueIdsOrKeys": keys, "fieldIds": ["status"], "maxResults": 2}
    PLATFORM.validate_request("BulkChangelogRequestBean", request)
    schema = PLATFORM.response_schema("/rest/api/3/changelog/bulkfetch", "post", 200)
    seen: list[tuple[str, str]] = []
    token: str | None = None
    for _ in range(20):
        answer = post(
            small_cloud,
            "/rest/api/3/changelog/bulkfetch",
            {**request, **({"nextPageToken": token} if token else {})},
        )
        assert answer.status_code == 200, answer.text
        page = answer.json()
        PLATFORM.validate_response(schema, page)
        seen += [
            (h["created"], log["issueId"])
            for log in page["issueChangeLogs"]
            for h in log["changeHistories"]
        ]
        token = page.get("nextPageToken")
        if token is None:
            break
    with small_cloud.lock:
        expected = sum(len(status_history_of(small_cloud.store.by_key[k])) for k in keys[:-1])
    assert len(seen) == expected > 0
    assert seen == sorted(seen)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"issueIdsOrKeys": []}, "between 1 and 1000"),
        ({"issueIdsOrKeys": [str(n) for n in range(1001)]}, "between 1 and 1000"),
        ({"issueIdsOrKeys": ["PAY-1"], "maxResults": 10001}, "maxResults"),
        ({"issueIdsOrKeys": ["PAY-1"], "expand": "x"}, "Unrecognized field"),
        ({"issueIdsOrKeys": ["PAY-1"], "nextPageToken": "bogus"}, "invalid or expired"),
    ],
)
def test_bulk_changelogs_refuse_what_the_spec_does_not_allow(
    small_cloud: JiraSandbox, body: dict[str, Any], message: str
) -> None:
    answer = post(small_cloud, "/rest/api/3/changelog/bulkfetch", body)

    assert answer.status_code == 400
    assert message in " ".join(answer.json()["errorMessages"])


def test_status_list_is_in_spec_shape(small_cloud: JiraSandbox) -> None:
    answer = requests.get(
        f"{small_cloud.url}/rest/api/3/status", auth=small_cloud.basic_auth, timeout=10
    )

    PLATFORM.validate_response(
        PLATFORM.response_schema("/rest/api/3/status", "get", 200), answer.json()
    )
    assert {"To Do", "In Progress", "In Review", "Done"} <= {s["name"] for s in answer.json()}


def test_data_center_search_expands_the_changelog_in_spec_shape() -> None:
    with JiraSandbox(small_portfolio(), flavour="datacenter", clock=FakeClock()) as sandbox:
        sandbox.touch("PAY-4", status="In Progress")
        assert sandbox.move("PAY-3", "WEB") == "WEB-3"  # WEB-1 and WEB-2 exist
        request = {
            "jql": 'key in ("PAY-4", "PAY-404") ORDER BY key ASC',
            "fields": ["status"],
            "expand": ["changelog"],
            "validateQuery": "warn",
        }
        PLATFORM.validate_request("SearchRequestBean", request)
        answer = post(sandbox, "/rest/api/2/search", request).json()
        moved = post(sandbox, "/rest/api/2/search", {**request, "jql": 'key = "PAY-3"'}).json()

    assert [issue["key"] for issue in answer["issues"]] == ["PAY-4"]
    assert answer["warningMessages"]  # the unknown key is dropped with a warning
    assert [issue["key"] for issue in moved["issues"]] == ["WEB-3"]  # the old key finds it
    move = moved["issues"][0]["changelog"]["histories"][0]
    PLATFORM.validate_response("Changelog", move)
    assert [(i["field"], i["fromString"], i["toString"]) for i in move["items"]] == [
        ("project", "Payments", "Web Storefront"),
        ("Key", "PAY-3", "WEB-3"),
    ]
    changelog = answer["issues"][0]["changelog"]
    PLATFORM.validate_response("PageOfChangelogs", changelog)
    newest = changelog["histories"][0]["items"][0]
    assert (newest["fromString"], newest["toString"]) == ("Done", "In Progress")
    assert "fieldId" not in newest  # Data Center items carry no field id
    times = [history["created"] for history in changelog["histories"]]
    assert times == sorted(times, reverse=True)


def test_seeded_histories_are_deterministic_plausible_and_end_in_the_current_status() -> None:
    items = portfolio(2500)
    first, second = JiraSandbox(items), JiraSandbox(items)
    reopened = 0
    for issue in first.store.by_id.values():
        history = history_of(issue)
        assert history == history_of(second.store.by_id[issue.id])
        assert [entry[1] for entry in history] == sorted({entry[1] for entry in history})
        last = max(issue.settled, issue.created + len(history))
        assert all(issue.created < entry[1] <= last for entry in history)
        assert all(a[3] == b[2] for a, b in pairwise(history))
        if history:
            assert (history[0][2], history[-1][3]) == ("To Do", issue.status)
        else:
            assert issue.status == "To Do"
        reopened += any(entry[2] == "Done" for entry in history)
    done = sum(issue.status_category == "Done" for issue in first.store.by_id.values())
    assert 0.1 * done < reopened < 0.3 * done
