"""Search over HTTP: Cloud token paging, Data Center offset paging, field selection, page caps,
bulk fetch, approximate count, the retired search API, auth and injected faults."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from connectors.sandbox.generator import generate_portfolio
from connectors.sandbox.jira_render import parse_field_list
from connectors.sandbox.jira_server import JiraSandbox
from connectors.sandbox.server import Faults
from tests.jira_sandbox_seeds import NOW, FakeClock, project_items, small_portfolio


def session_for(sandbox: JiraSandbox) -> requests.Session:
    session = requests.Session()
    session.auth = sandbox.basic_auth
    return session


def pull_cloud(
    sandbox: JiraSandbox, jql: str, *, post: bool = False, **params: Any
) -> tuple[list[str], int]:
    """Every key a Cloud search returns, following nextPageToken; and the number of pages."""
    session, url = session_for(sandbox), f"{sandbox.url}/rest/api/3/search/jql"
    params.setdefault("fields", "key")
    keys: list[str] = []
    token, pages = None, 0
    while True:
        query = {"jql": jql, **params, **({"nextPageToken": token} if token else {})}
        if post:
            query["fields"] = str(query["fields"]).split(",")
            response = session.post(url, json=query, timeout=30)
        else:
            response = session.get(url, params=query, timeout=30)
        assert response.status_code == 200, response.text
        body = response.json()
        pages += 1
        keys += [issue["key"] for issue in body["issues"]]
        token = body.get("nextPageToken")
        assert body["isLast"] is (token is None)
        if token is None:
            return keys, pages


def pull_datacenter(sandbox: JiraSandbox, jql: str, **params: Any) -> tuple[list[str], int]:
    session, url = session_for(sandbox), f"{sandbox.url}/rest/api/2/search"
    keys: list[str] = []
    start, pages = 0, 0
    while True:
        response = session.get(url, params={"jql": jql, "startAt": start, **params}, timeout=30)
        assert response.status_code == 200, response.text
        body = response.json()
        pages += 1
        assert body["startAt"] == start
        keys += [issue["key"] for issue in body["issues"]]
        start += len(body["issues"])
        if not body["issues"] or start >= body["total"]:
            assert start == body["total"]
            return keys, pages


@pytest.fixture
def cloud() -> Iterator[JiraSandbox]:
    with JiraSandbox(small_portfolio(), clock=FakeClock()) as sandbox:
        yield sandbox


@pytest.fixture
def datacenter() -> Iterator[JiraSandbox]:
    with JiraSandbox(small_portfolio(), flavour="datacenter", clock=FakeClock()) as sandbox:
        yield sandbox


# -- paging ---------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [0, 1, 50, 51])
@pytest.mark.parametrize("flavour", ["cloud", "datacenter"])
def test_every_item_exactly_once_at_page_boundaries(size: int, flavour: str) -> None:
    items = project_items("PAY", size, 10_000) + project_items("WEB", 2, 20_000)
    expected = [f"PAY-{n}" for n in range(1, size + 1)]
    jql = "project = WEB AND labels = none-here" if size == 0 else "project = PAY ORDER BY key"
    with JiraSandbox(items, flavour=flavour) as sandbox:  # type: ignore[arg-type]
        if flavour == "cloud":
            keys, pages = pull_cloud(sandbox, jql)
            post_keys, _ = pull_cloud(sandbox, jql, post=True)
            assert post_keys == keys
        else:
            keys, pages = pull_datacenter(sandbox, jql)
    assert keys == expected
    assert pages == max(1, -(-size // 50))


@pytest.mark.slow
def test_ten_thousand_items_page_exactly_once_in_both_flavours() -> None:
    items = generate_portfolio(10_000, jira_share=1.0, now=NOW).jira
    jql = "project in (PAY, WEB, MOB, DATA, OKR) ORDER BY key"
    project_and_number = [(item.project, int(item.key.split("-")[1])) for item in items]
    expected = [f"{project}-{number}" for project, number in sorted(project_and_number)]
    with JiraSandbox(items) as cloud:
        ids_only, pages = pull_cloud(cloud, jql, maxResults=5000)
        assert (ids_only, pages) == (expected, 2)
        with_fields, pages = pull_cloud(cloud, jql, maxResults=1000, fields="summary,updated")
        assert (with_fields, pages) == (expected, 100)
    with JiraSandbox(items, flavour="datacenter") as datacenter:
        keys, pages = pull_datacenter(datacenter, jql, maxResults=5000, fields="summary")
        assert (keys, pages) == (expected, 10)


def test_token_pages_stay_exact_while_issues_change() -> None:
    clock = FakeClock()
    with JiraSandbox(project_items("PAY", 120, 10_000), clock=clock) as sandbox:
        session, url = session_for(sandbox), f"{sandbox.url}/rest/api/3/search/jql"
        jql = "project = PAY ORDER BY updated DESC"
        first = session.get(url, params={"jql": jql, "fields": "key"}, timeout=10).json()
        for n in range(1, 121, 3):  # humans edit a third of the issues between pages
            clock.advance(seconds=1)
            sandbox.touch(f"PAY-{n}")
        sandbox.delete("PAY-7")
        keys = [issue["key"] for issue in first["issues"]]
        token = first["nextPageToken"]
        while token:
            page = session.get(
                url, params={"jql": jql, "fields": "key", "nextPageToken": token}, timeout=10
            ).json()
            keys += [issue["key"] for issue in page["issues"]]
            token = page.get("nextPageToken")
    assert sorted(keys) == sorted(f"PAY-{n}" for n in range(1, 121) if n != 7)


def test_bad_or_foreign_tokens_are_refused(cloud: JiraSandbox) -> None:
    session, url = session_for(cloud), f"{cloud.url}/rest/api/3/search/jql"
    first = session.get(url, params={"jql": "project = PAY", "maxResults": 2}, timeout=10).json()
    token = first["nextPageToken"]
    other = session.get(url, params={"jql": "project = WEB", "nextPageToken": token}, timeout=10)
    garbage = session.get(url, params={"jql": "project = PAY", "nextPageToken": "x!"}, timeout=10)
    expected = {"errorMessages": ["The provided next page token is invalid or expired."]}
    for response in (other, garbage):
        assert response.status_code == 400
        assert response.json()["errorMessages"] == expected["errorMessages"]


# -- fields and caps ------------------------------------------------------------------------
def test_search_jql_defaults_to_ids_and_honours_field_selection(cloud: JiraSandbox) -> None:
    session, url = session_for(cloud), f"{cloud.url}/rest/api/3/search/jql"
    jql = "key = PAY-2"

    def fields(**params: Any) -> dict[str, Any]:
        body = session.get(url, params={"jql": jql, **params}, timeout=10).json()
        return body["issues"][0]

    assert fields() == {"id": "10003"}
    assert fields(fields="key") == {
        "expand": fields(fields="key")["expand"],
        "id": "10003",
        "self": f"{cloud.url}/rest/api/3/issue/10003",
        "key": "PAY-2",
        "fields": {},
    }
    business_value = cloud.field_id("Business Value")
    everything = fields(fields="*all")["fields"]
    assert everything[business_value] == 5.0
    assert everything[cloud.field_id("Rank")] == cloud.store.by_key["PAY-2"].rank
    assert everything["parent"]["key"] == "PAY-1"
    assert set(fields(fields=f"*navigable,-{business_value}")["fields"]) == set(everything) - {
        business_value
    }
    assert set(fields(fields=["summary", "labels,status"])["fields"]) == {
        "summary", "labels", "status",
    }  # fmt: skip
    assert set(fields(fields="summary,unknownfield")["fields"]) == {"summary"}
    named = session.get(
        url, params={"jql": jql, "fields": "summary", "expand": "names,schema"}, timeout=10
    ).json()
    assert named["names"] == {"summary": "Summary"}
    assert named["schema"] == {"summary": {"type": "string", "system": "summary"}}


@pytest.mark.parametrize(
    ("fields", "cap"), [("key", 5000), ("id", 5000), ("id,key", 5000), ("summary", 100)]
)
def test_cloud_page_cap_depends_on_requested_fields(fields: str, cap: int) -> None:
    with JiraSandbox(project_items("PAY", 5_100, 10_000)) as sandbox:
        body = (
            session_for(sandbox)
            .get(
                f"{sandbox.url}/rest/api/3/search/jql",
                params={"jql": "project = PAY", "maxResults": 10_000, "fields": fields},
                timeout=30,
            )
            .json()
        )
    assert len(body["issues"]) == cap
    assert body["isLast"] is False


def test_datacenter_search_pages_with_total_and_caps_at_1000() -> None:
    with JiraSandbox(project_items("PAY", 1_200, 10_000), flavour="datacenter") as sandbox:
        session = session_for(sandbox)
        body = session.get(
            f"{sandbox.url}/rest/api/2/search",
            params={"jql": "project = PAY ORDER BY key", "maxResults": 5000, "startAt": 1100},
            timeout=30,
        ).json()
        default = session.post(
            f"{sandbox.url}/rest/api/2/search", json={"jql": "project = PAY"}, timeout=30
        ).json()
    assert (body["startAt"], body["maxResults"], body["total"]) == (1100, 1000, 1200)
    assert [issue["key"] for issue in body["issues"]] == [f"PAY-{n}" for n in range(1101, 1201)]
    assert (default["maxResults"], len(default["issues"])) == (50, 50)
    assert "summary" in default["issues"][0]["fields"]  # DC default: *navigable


def test_datacenter_specific_answers(datacenter: JiraSandbox) -> None:
    session, base = session_for(datacenter), datacenter.url
    assert session.get(f"{base}/rest/api/2/search/jql", params={"jql": "x"}).status_code == 404
    assert session.get(f"{base}/rest/api/3/serverInfo").status_code == 404
    assert session.post(f"{base}/rest/api/2/issue/bulkfetch", json={}).status_code == 404
    refused = session.post(
        f"{base}/rest/api/2/search", json={"jql": "project = PAY", "properties": ["x"]}
    )
    assert refused.status_code == 400
    assert 'Unrecognized field "properties"' in refused.json()["errorMessages"][0]
    lenient = session.get(
        f"{base}/rest/api/2/search",
        params={"jql": "project = NOPE OR project = WEB", "validateQuery": "warn"},
    ).json()
    assert lenient["total"] == 2
    assert lenient["warningMessages"] == [
        "The value 'NOPE' does not exist for the field 'project'."
    ]
    strict = session.get(f"{base}/rest/api/2/search", params={"jql": "project = NOPE"})
    assert strict.status_code == 400
    info = session.get(f"{base}/rest/api/2/serverInfo").json()
    assert info["deploymentType"] == "Server"
    assert session.get(f"{base}/rest/api/2/search", params={"jql": ""}).json()["total"] == 8


# -- Cloud-only endpoints -------------------------------------------------------------------
def test_bulk_fetch_orders_by_id_and_omits_unknown_and_invisible(cloud: JiraSandbox) -> None:
    cloud.hide("WEB-2")
    cloud.fetch_errors.add("PAY-5")
    url = f"{cloud.url}/rest/api/3/issue/bulkfetch"
    request = {"issueIdsOrKeys": ["WEB-1", "10002", "PAY-404", "WEB-2", "pay-3", "PAY-5"]}
    body = session_for(cloud).post(url, json=request, timeout=10).json()
    assert [issue["key"] for issue in body["issues"]] == ["PAY-1", "PAY-3", "WEB-1"]
    assert body["issueErrors"] == [
        {"id": "10006", "errorMessage": "Issue could not be retrieved. Retry."}
    ]
    assert "summary" in body["issues"][0]["fields"]  # default *navigable
    for wrong in ([], [f"PAY-{n}" for n in range(101)], "PAY-1"):
        response = session_for(cloud).post(url, json={"issueIdsOrKeys": wrong}, timeout=10)
        assert response.status_code == 400


def test_approximate_count_and_unbounded_queries(cloud: JiraSandbox) -> None:
    session = session_for(cloud)
    url = f"{cloud.url}/rest/api/3/search/approximate-count"
    assert session.post(url, json={"jql": "project in (PAY, WEB)"}).json() == {"count": 7}
    for jql in ("", "order by key desc"):
        for response in (
            session.post(url, json={"jql": jql}),
            session.get(f"{cloud.url}/rest/api/3/search/jql", params={"jql": jql}),
        ):
            assert response.status_code == 400
            assert response.json()["errorMessages"] == [
                "Unbounded JQL queries are not allowed here. Please add a search restriction "
                "to your query."
            ]


@pytest.mark.parametrize("version", ["2", "3"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_retired_search_answers_410(cloud: JiraSandbox, version: str, method: str) -> None:
    response = session_for(cloud).request(
        method, f"{cloud.url}/rest/api/{version}/search", params={"jql": "project = PAY"}
    )
    assert response.status_code == 410
    assert response.json()["errorMessages"][0].startswith(
        "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API."
    )


def test_both_api_versions_are_served_and_counted(cloud: JiraSandbox) -> None:
    session = session_for(cloud)
    for version in ("2", "3", "latest"):
        response = session.get(
            f"{cloud.url}/rest/api/{version}/search/jql", params={"jql": "project = PAY"}
        )
        assert response.status_code == 200
    assert cloud.counts["GET /rest/api/2/search/jql"] == 1
    assert cloud.counts["GET /rest/api/3/search/jql"] == 1
    assert cloud.counts["GET /rest/api/latest/search/jql"] == 1


# -- auth and faults ------------------------------------------------------------------------
def test_wrong_or_missing_credentials_answer_401(cloud: JiraSandbox) -> None:
    url = f"{cloud.url}/rest/api/3/serverInfo"
    for auth in (None, ("sandbox@example.com", "wrong"), ("someone", "sandbox-token")):
        response = requests.get(url, auth=auth, timeout=10)
        assert response.status_code == 401
        assert response.json()["errorMessages"] == [
            "You are not authenticated. Authentication required to perform this operation."
        ]
    bearer = {"Authorization": f"Bearer {cloud.bearer_token}"}
    assert requests.get(url, headers=bearer, timeout=10).status_code == 401
    assert requests.get(url, auth=cloud.basic_auth, timeout=10).status_code == 200


def test_datacenter_accepts_a_personal_access_token(datacenter: JiraSandbox) -> None:
    url = f"{datacenter.url}/rest/api/2/myself"
    good = requests.get(url, headers={"Authorization": f"Bearer {datacenter.bearer_token}"})
    bad = requests.get(url, headers={"Authorization": "Bearer nope"})
    assert (good.status_code, good.json()["name"]) == (200, "sandbox@example.com")
    assert bad.status_code == 401


@pytest.mark.parametrize(("share", "status"), [("throttle_rate", 429), ("unavailable_rate", 503)])
def test_injected_throttling_carries_retry_after(
    cloud: JiraSandbox, share: str, status: int
) -> None:
    cloud.set_faults(Faults(**{share: 1.0}, retry_after_seconds=7, only_paths=("/search/jql",)))
    session = session_for(cloud)
    throttled = session.get(f"{cloud.url}/rest/api/3/search/jql", params={"jql": "project = PAY"})
    untouched = session.get(f"{cloud.url}/rest/api/3/issue/PAY-1")
    assert (throttled.status_code, throttled.headers["Retry-After"]) == (status, "7")
    assert throttled.json()["errorMessages"]
    if status == 429:
        assert throttled.headers["RateLimit-Reason"] == "jira-burst-based"
        assert throttled.headers["X-RateLimit-Reset"] == NOW.strftime("%Y-%m-%dT%H:%MZ")
    assert untouched.status_code == 200
    cloud.without_faults()
    recovered = session.get(f"{cloud.url}/rest/api/3/search/jql", params={"jql": "project = PAY"})
    assert recovered.status_code == 200


def test_page_size_must_be_positive_on_cloud(cloud: JiraSandbox) -> None:
    url = f"{cloud.url}/rest/api/3/search/jql"
    for value in ("0", "-5", "many"):
        response = session_for(cloud).get(url, params={"jql": "project = PAY", "maxResults": value})
        assert response.status_code == 400, value


def test_datacenter_can_report_the_datacenter_deployment_type() -> None:
    with JiraSandbox(small_portfolio(), flavour="datacenter", deployment_type="DataCenter") as dc:
        info = session_for(dc).get(f"{dc.url}/rest/api/2/serverInfo", timeout=10).json()
    assert (info["deploymentType"], info["versionNumbers"]) == ("DataCenter", [9, 12, 15])


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        (None, []),
        ("", []),
        (["summary,status", " labels ", ""], ["summary", "status", "labels"]),
        ("names,schema", ["names", "schema"]),  # one string is one value, not its characters
        (("id",), ["id"]),
        (12345, ["12345"]),
    ],
)
def test_field_lists_are_flattened_from_every_form_they_arrive_in(
    raw: object, names: list[str]
) -> None:
    assert parse_field_list(raw) == names
