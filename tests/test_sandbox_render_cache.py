"""The sandboxes' cache of encoded items: answers come from it while nothing changes, are
byte-for-byte what a fresh render gives, and never serve an item as it was before a change
(human edits, API edits, rank moves, link changes, deletes, visibility)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from connectors.sandbox.ado_server import AzureDevOpsSandbox
from connectors.sandbox.jira_server import JiraSandbox
from connectors.sandbox.raw_json import RawJson, RenderCache, encode_answer
from tests.jira_sandbox_seeds import FakeClock
from tests.jira_sandbox_seeds import small_portfolio as jira_portfolio
from tests.sandbox_ado_support import AdoSession
from tests.sandbox_ado_support import small_portfolio as ado_portfolio

JIRA_FIELDS = ["summary", "status", "parent", "issuelinks", "labels", "updated"]


# -- encoding ----------------------------------------------------------------------------------
def test_raw_values_are_spliced_into_the_answer_unchanged() -> None:
    first, second = RawJson(b'{"id":"1","n":[1,2]}'), RawJson(b'{"id":"2"}')
    body = {"issues": [first, second], "isLast": True, "errors": [{"id": "3"}], "one": first}

    encoded = encode_answer(body)

    assert json.loads(encoded) == {
        "issues": [{"id": "1", "n": [1, 2]}, {"id": "2"}],
        "isLast": True,
        "errors": [{"id": "3"}],
        "one": {"id": "1", "n": [1, 2]},
    }
    assert encode_answer({"count": 2, "value": [first, None]}) == (
        b'{"count":2,"value":[{"id":"1","n":[1,2]},null]}'
    )
    plain = {"a": [1, "é"], "b": None}
    assert encode_answer(plain) == json.dumps(plain, separators=(",", ":")).encode()


def test_the_cache_renders_once_per_version_and_starts_over_when_full() -> None:
    cache, renders = RenderCache(max_entries=2), []

    def render(name: str) -> dict[str, Any]:
        renders.append(name)
        return {"name": name}

    assert cache.get(1, "a", lambda: render("a")) == b'{"name":"a"}'
    assert cache.get(1, "a", lambda: render("a-again")) == b'{"name":"a"}'
    assert cache.get(2, "a", lambda: render("a2")) == b'{"name":"a2"}'  # the data changed
    cache.get(2, "b", lambda: render("b"))
    cache.get(2, "c", lambda: render("c"))  # full: starts over with "c" alone
    assert len(cache) == 1
    assert renders == ["a", "a2", "b", "c"]
    assert (cache.hits, cache.misses) == (1, 4)


# -- Jira --------------------------------------------------------------------------------------
@pytest.fixture
def jira() -> Iterator[JiraSandbox]:
    with JiraSandbox(jira_portfolio(), clock=FakeClock()) as sandbox:
        yield sandbox


def bulkfetch(sandbox: JiraSandbox, *keys: str, version: str = "3") -> dict[str, Any]:
    response = requests.post(
        f"{sandbox.url}/rest/api/{version}/issue/bulkfetch",
        json={"issueIdsOrKeys": list(keys), "fields": JIRA_FIELDS},
        auth=sandbox.basic_auth,
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return {issue["key"]: issue for issue in response.json()["issues"]}


def test_jira_answers_come_from_the_cache_and_equal_a_fresh_render(jira: JiraSandbox) -> None:
    first = bulkfetch(jira, "PAY-2", "PAY-3")
    misses = jira.render_cache.misses
    again = bulkfetch(jira, "PAY-2", "PAY-3")

    assert again == first
    assert jira.render_cache.misses == misses and jira.render_cache.hits >= 2
    fresh = jira.issue("PAY-2")["fields"]
    assert {name: fresh[name] for name in JIRA_FIELDS} == first["PAY-2"]["fields"]
    v2 = bulkfetch(jira, "PAY-2", version="2")["PAY-2"]  # another version, another entry
    assert v2["self"].endswith("/rest/api/2/issue/10003")


def test_jira_changes_to_an_issue_or_its_neighbours_are_served_at_once(
    jira: JiraSandbox,
) -> None:
    bulkfetch(jira, "PAY-2", "PAY-3", "OKR-1")

    jira.touch("PAY-1", summary="Payments, modernised")  # PAY-2's parent
    assert bulkfetch(jira, "PAY-2")["PAY-2"]["fields"]["parent"]["fields"]["summary"] == (
        "Payments, modernised"
    )
    edited = requests.put(
        f"{jira.url}/rest/api/3/issue/OKR-1",  # linked from PAY-2
        json={"fields": {"summary": "Raise conversion to 4%"}},
        auth=jira.basic_auth,
        timeout=10,
    )
    assert edited.status_code == 204
    (link,) = bulkfetch(jira, "PAY-2")["PAY-2"]["fields"]["issuelinks"]
    assert link["outwardIssue"]["fields"]["summary"] == "Raise conversion to 4%"

    rank_field = jira.field_id("Rank")
    before = bulkfetch(jira, "PAY-3")["PAY-3"]
    moved = requests.put(
        f"{jira.url}/rest/agile/1.0/issue/rank",
        json={"issues": ["PAY-3"], "rankBeforeIssue": "PAY-2"},
        auth=jira.basic_auth,
        timeout=10,
    )
    assert moved.status_code == 204
    after = requests.get(
        f"{jira.url}/rest/api/3/issue/PAY-3",
        params={"fields": rank_field},
        auth=jira.basic_auth,
        timeout=10,
    ).json()
    assert after["fields"][rank_field] == jira.store.by_key["PAY-3"].rank
    assert bulkfetch(jira, "PAY-3")["PAY-3"]["fields"]["updated"] != before["fields"]["updated"]

    jira.hide("PAY-1")
    assert "parent" not in bulkfetch(jira, "PAY-2")["PAY-2"]["fields"]
    jira.delete("OKR-1")
    assert bulkfetch(jira, "PAY-2")["PAY-2"]["fields"]["issuelinks"] == []
    assert set(bulkfetch(jira, "PAY-2", "OKR-1")) == {"PAY-2"}


# -- Azure DevOps ------------------------------------------------------------------------------
@pytest.fixture
def ado() -> Iterator[AdoSession]:
    with AzureDevOpsSandbox(ado_portfolio()) as sandbox:
        yield AdoSession(sandbox)


def batch(client: AdoSession, *ids: int) -> dict[int, dict[str, Any]]:
    response = client.request(
        "POST", "Portfolio/_apis/wit/workitemsbatch", json={"ids": list(ids), "$expand": "all"}
    )
    assert response.status_code == 200, response.text
    return {item["id"]: item for item in response.json()["value"]}


def test_ado_answers_come_from_the_cache_and_follow_every_change(ado: AdoSession) -> None:
    sandbox = ado.ado
    first = batch(ado, 100, 101)
    misses = sandbox.render_cache.misses
    assert batch(ado, 100, 101) == first
    assert sandbox.render_cache.misses == misses
    assert first[100] == sandbox.work_item(100)

    sandbox.touch(101, **{"System.Title": "One-click pay, everywhere"})
    assert batch(ado, 101)[101]["fields"]["System.Title"] == "One-click pay, everywhere"
    patched = ado.request(
        "PATCH",
        "Portfolio/_apis/wit/workitems/100",
        json=[{"op": "add", "path": "/fields/Custom.WSJFScore", "value": 4.5}],
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert patched.status_code == 200, patched.text
    single = ado.request("GET", "Portfolio/_apis/wit/workitems/100").json()
    assert single["fields"]["Custom.WSJFScore"] == 4.5

    # A delete takes the links to it off the other items without a new revision of theirs.
    related = {r["url"].rsplit("/", 1)[-1] for r in batch(ado, 100)[100]["relations"]}
    assert "10" in related
    sandbox.delete(10)
    related = {r["url"].rsplit("/", 1)[-1] for r in batch(ado, 100)[100]["relations"]}
    assert "10" not in related
