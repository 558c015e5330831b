"""Lexorank strings and the agile rank API: only moved issues change, partial failure is 207."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.sandbox import lexorank
from connectors.sandbox.jira_server import JiraSandbox
from tests.jira_sandbox_seeds import FakeClock, project_items, small_portfolio

RANK_FORMAT = re.compile(r"^0\|[0-9a-z]{6}:[0-9a-z]*$")
UNAVAILABLE = "JIRA Agile cannot execute the rank operation at this time. Please try again later."


# -- rank strings ---------------------------------------------------------------------------
def test_rank_strings_look_like_jira_and_sort_as_strings() -> None:
    ranks = lexorank.evenly_spaced(1_000)
    assert ranks == sorted(ranks)
    assert len(set(ranks)) == 1_000
    assert all(RANK_FORMAT.match(rank) for rank in ranks)
    middle = lexorank.between(ranks[10], ranks[11], 5)
    assert ranks[10] < middle[0] < middle[-1] < ranks[11]
    assert middle == sorted(middle)
    assert lexorank.between(None, ranks[0])[0] < ranks[0]
    assert lexorank.between(ranks[-1], None)[0] > ranks[-1]
    with pytest.raises(ValueError, match="is not below"):
        lexorank.between(ranks[2], ranks[1])


def test_ranks_grow_longer_only_where_issues_are_packed_in() -> None:
    low, high = "0|i00000:", "0|i00001:"
    inside = lexorank.between(low, high, 3)
    assert all(RANK_FORMAT.match(rank) and low < rank < high for rank in inside)
    assert inside == ["0|i00000:9", "0|i00000:i", "0|i00000:r"]
    with pytest.raises(lexorank.NoRoomError):
        lexorank.between("0|i00000:000001", "0|i00000:000002")


# -- moves in the store ---------------------------------------------------------------------
moves = st.lists(
    st.tuples(
        st.lists(st.integers(0, 29), min_size=1, max_size=5, unique=True),
        st.integers(0, 29),
        st.booleans(),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(moves)
def test_rank_moves_match_a_list_model_and_touch_only_moved_issues(
    sequence: list[tuple[list[int], int, bool]],
) -> None:
    sandbox = JiraSandbox(project_items("PAY", 30, 10_000), clock=FakeClock())
    store = sandbox.store
    model = sandbox.rank_order()
    for moved_numbers, anchor_number, before in sequence:
        moved = [f"PAY-{n + 1}" for n in moved_numbers if n != anchor_number]
        if not moved:
            continue
        anchor = f"PAY-{anchor_number + 1}"
        ranks_before = {key: store.by_key[key].rank for key in model}
        store.rank_block([store.by_key[k] for k in moved], store.by_key[anchor], before)
        model = [key for key in model if key not in moved]
        position = model.index(anchor) + (0 if before else 1)
        model[position:position] = moved
        assert sandbox.rank_order() == model
        changed = {key for key in model if store.by_key[key].rank != ranks_before[key]}
        assert changed <= set(moved)  # a move to where it already is may keep its rank


def test_a_full_gap_is_rebalanced_once_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    sandbox = JiraSandbox(project_items("PAY", 100, 10_000), clock=FakeClock())
    store = sandbox.store
    order = sandbox.rank_order()
    anchor = store.by_key[order[50]]
    mover_keys = [key for key in order if key != anchor.key]
    expected = list(order)
    with caplog.at_level(logging.WARNING, logger="connectors.sandbox.lexorank"):
        for key in mover_keys[:80]:
            store.rank_block([store.by_key[key]], anchor, before=True)
            expected.remove(key)
            expected.insert(expected.index(anchor.key), key)
    assert sandbox.rebalances == 1
    assert sandbox.rank_order() == expected
    assert "rebalanced 99 ranks" in caplog.text
    assert all(len(issue.rank) <= len("0|") + lexorank.MAX_DIGITS + 1 for issue in store.visible())


# -- the agile API -------------------------------------------------------------------------
@pytest.fixture
def sandbox() -> Iterator[JiraSandbox]:
    with JiraSandbox(small_portfolio(), clock=FakeClock()) as jira:
        yield jira


def rank(sandbox: JiraSandbox, body: dict[str, Any]) -> requests.Response:
    return requests.put(
        f"{sandbox.url}/rest/agile/1.0/issue/rank", json=body, auth=sandbox.basic_auth, timeout=10
    )


def test_rank_before_and_after_moves_only_the_listed_issues(sandbox: JiraSandbox) -> None:
    order = sandbox.rank_order()
    ranks = {key: sandbox.store.by_key[key].rank for key in order}
    anchor = order[2]
    moving = [key for key in ("WEB-2", "PAY-1") if key != anchor]
    rank_field = int(sandbox.field_id("Rank").removeprefix("customfield_"))
    response = rank(
        sandbox, {"issues": moving, "rankBeforeIssue": anchor, "rankCustomFieldId": rank_field}
    )
    assert (response.status_code, response.content) == (204, b"")
    new_order = sandbox.rank_order()
    rest = [key for key in order if key not in moving]
    position = rest.index(anchor)
    assert new_order == rest[:position] + moving + rest[position:]
    changed = {key for key in order if sandbox.store.by_key[key].rank != ranks[key]}
    assert changed == set(moving)
    assert [(w.key, w.field, w.old) for w in sandbox.writes] == [
        (key, sandbox.field_id("Rank"), ranks[key]) for key in moving
    ]
    assert rank(sandbox, {"issues": ["OKR-1"], "rankAfterIssue": "WEB-1"}).status_code == 204
    after = sandbox.rank_order()
    assert after[after.index("WEB-1") + 1] == "OKR-1"


def test_partial_failure_answers_207_and_moves_the_rest(sandbox: JiraSandbox) -> None:
    sandbox.rank_failures.add("PAY-3")
    anchor = sandbox.rank_order()[0]
    issues = [key for key in ("PAY-2", "PAY-3", "NOPE-1", "WEB-1") if key != anchor]
    response = rank(sandbox, {"issues": [*issues, anchor], "rankBeforeIssue": anchor})
    assert response.status_code == 207
    entries = {entry["issueKey"]: entry for entry in response.json()["entries"]}
    assert entries["PAY-3"] == {
        "issueId": 10004, "issueKey": "PAY-3", "status": 503, "errors": [UNAVAILABLE],
    }  # fmt: skip
    assert entries["NOPE-1"]["status"] == 404
    assert entries[anchor]["status"] == 400
    moved = [key for key in issues if key not in ("PAY-3", "NOPE-1")]
    assert all(entries[key]["status"] == 200 for key in moved)
    assert sandbox.rank_order()[: len(moved) + 1] == [*moved, anchor]
    assert {write.key for write in sandbox.writes} == set(moved)


@pytest.mark.parametrize(
    "body",
    [
        {"issues": [f"PAY-{n}" for n in range(1, 52)], "rankBeforeIssue": "WEB-1"},
        {"issues": [], "rankBeforeIssue": "WEB-1"},
        {"issues": ["PAY-1"]},
        {"issues": ["PAY-1"], "rankBeforeIssue": "WEB-1", "rankAfterIssue": "WEB-2"},
        {"issues": ["PAY-1"], "rankBeforeIssue": "WEB-404"},
        {"issues": ["PAY-1"], "rankBeforeIssue": "WEB-1", "rankCustomFieldId": 1},
        {"issues": ["PAY-1"], "rankBeforeIssue": "WEB-1", "board": 7},
    ],
)
def test_invalid_rank_requests_answer_400(sandbox: JiraSandbox, body: dict[str, Any]) -> None:
    order = sandbox.rank_order()
    response = rank(sandbox, body)
    assert response.status_code == 400
    assert response.json()["errorMessages"]
    assert sandbox.rank_order() == order


def test_a_rank_move_is_an_edit_that_moves_updated(sandbox: JiraSandbox) -> None:
    before = sandbox.issue("WEB-2")["fields"]["updated"]
    order = sandbox.rank_order()
    anchor = order[-1] if order[-1] != "WEB-2" else order[-2]
    assert rank(sandbox, {"issues": ["WEB-2"], "rankAfterIssue": anchor}).status_code == 204
    assert sandbox.issue("WEB-2")["fields"]["updated"] > before
