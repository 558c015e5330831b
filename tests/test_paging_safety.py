"""A tracker that pages without end fails its connection quickly, with the reason, on both
connectors and both Jira flavours: pull and the key scan for deletions alike.

The sandboxes' `Faults(endless_pages=True)` answer like the broken servers of issue 12: Jira
Cloud hands out a fresh `nextPageToken` with the same issues on every page, Data Center ignores
the keyset restriction, WIQL ignores the id window. `limits.max_pages` bounds a server that
keeps inventing new pages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import connectors.jira as jira_module
from connectors.base import ConnectorError
from connectors.jira_paging import KeyPaginator, TokenPaginator
from connectors.paging_guard import PagingLimitExceeded, PagingLoopError
from connectors.sandbox.ado_server import AzureDevOpsSandbox
from connectors.sandbox.jira_server import JiraSandbox
from connectors.sandbox.server import Faults
from connectors.wiql_builder import IdPager, IdWindow
from tests.hostile_trackers import ado_connector, ado_items, jira_connector, jira_items

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

ENDLESS = Faults(endless_pages=True)
CLOUD_SEARCH = "POST /rest/api/3/search/jql"
DC_SEARCH = "POST /rest/api/2/search"
WIQL = "POST /_apis/wit/wiql"
RECENTLY = datetime.now(UTC) - timedelta(days=3650)
"""An incremental `since` that still matches every sandbox item."""

Run = Callable[[Any], object]
RUNS: dict[str, Run] = {
    "full pull": lambda connector: list(connector.pull(None)),
    "incremental pull": lambda connector: list(connector.pull(RECENTLY)),
    "key scan": lambda connector: connector.scan_keys(),
}


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages of 50, so the 120 sandbox items span three pages of every Jira search."""
    for name in ("CLOUD_ID_PAGE", "CLOUD_FIELDS_PAGE", "DATACENTER_PAGE"):
        monkeypatch.setattr(jira_module, name, 50)


@pytest.fixture(params=["cloud", "datacenter"])
def jira(request: pytest.FixtureRequest) -> Iterator[JiraSandbox]:
    with JiraSandbox(jira_items(), flavour=request.param) as sandbox:
        yield sandbox


@pytest.fixture
def ado() -> Iterator[AzureDevOpsSandbox]:
    with AzureDevOpsSandbox(ado_items()) as sandbox:
        yield sandbox


def _search_count(sandbox: JiraSandbox) -> int:
    return sandbox.counts[CLOUD_SEARCH if sandbox.flavour == "cloud" else DC_SEARCH]


@pytest.mark.parametrize("run", RUNS)
def test_jira_that_pages_without_end_stops_at_the_first_page_with_nothing_new(
    jira: JiraSandbox, small_pages: None, run: str
) -> None:
    connector = jira_connector(jira)
    jira.set_faults(ENDLESS)

    with pytest.raises(PagingLoopError) as raised:
        RUNS[run](connector)

    assert _search_count(jira) == 2  # the first page, and the one that repeats it
    assert "\n" not in str(raised.value)
    assert isinstance(raised.value, ConnectorError)  # the pipeline records it for the connection


@pytest.mark.parametrize("run", RUNS)
def test_endless_pages_stop_at_the_usual_page_sizes_too(jira: JiraSandbox, run: str) -> None:
    """120 issues fit one page; the server still claims more (a token, a `total`)."""
    jira.set_faults(ENDLESS)

    with pytest.raises(PagingLoopError, match="pages without end"):
        RUNS[run](jira_connector(jira))

    assert _search_count(jira) == 2


@pytest.mark.parametrize("run", RUNS)
def test_azure_devops_answering_ids_again_stops_at_the_first_query(
    ado: AzureDevOpsSandbox, run: str
) -> None:
    """120 ids and `$top=20000`: the server repeats the ids to fill the page it claims."""
    ado.set_faults(ENDLESS)

    with pytest.raises(PagingLoopError, match="answers ids again; stopping"):
        RUNS[run](ado_connector(ado))

    assert sum(n for route, n in ado.counts.items() if route.endswith("/wiql")) == 1


@pytest.mark.parametrize("run", RUNS)
def test_azure_devops_ignoring_the_id_window_stops_at_the_second_query(
    ado: AzureDevOpsSandbox, run: str
) -> None:
    connector = ado_connector(ado, wiql_page_size=50)
    ado.set_faults(ENDLESS)

    with pytest.raises(PagingLoopError, match="ignores the window; stopping"):
        RUNS[run](connector)

    assert sum(n for route, n in ado.counts.items() if route.endswith("/wiql")) == 2


@pytest.mark.parametrize("run", RUNS)
def test_jira_pages_are_bounded_by_max_pages(
    jira: JiraSandbox, small_pages: None, run: str
) -> None:
    with pytest.raises(PagingLimitExceeded, match=r"after 2 \(limits.max_pages\)"):
        RUNS[run](jira_connector(jira, limits={"max_pages": 2}))
    assert _search_count(jira) == 2

    jira.reset_counts()
    RUNS[run](jira_connector(jira, limits={"max_pages": 3}))  # exactly enough
    assert _search_count(jira) == 3


@pytest.mark.parametrize("run", RUNS)
def test_azure_devops_queries_are_bounded_by_max_pages(ado: AzureDevOpsSandbox, run: str) -> None:
    with pytest.raises(PagingLimitExceeded, match="WIQL pages after 2"):
        RUNS[run](ado_connector(ado, wiql_page_size=50, limits={"max_pages": 2}))

    RUNS[run](ado_connector(ado, wiql_page_size=50, limits={"max_pages": 3}))


def test_sandboxes_page_normally_without_the_fault(jira: JiraSandbox, small_pages: None) -> None:
    """The hostile mode is off by default: the same reads finish, each issue once."""
    keys = jira_connector(jira).scan_keys()
    assert len(keys) == len(jira_items())
    assert _search_count(jira) == 3


# -- the pagers on their own ------------------------------------------------------------------
def test_token_paginator_drops_repeated_issues_and_stops_on_a_page_of_repeats() -> None:
    paginator = TokenPaginator()
    first = paginator.advance({"issues": [{"id": "1"}, {"id": "2"}], "nextPageToken": "a"})
    second = paginator.advance({"issues": [{"id": "2"}, {"id": "3"}], "nextPageToken": "b"})
    assert [i["id"] for i in first + second] == ["1", "2", "3"]
    with pytest.raises(PagingLoopError, match="page 3 of a search with only issues"):
        paginator.advance({"issues": [{"id": "3"}], "nextPageToken": "c"})


def test_token_paginator_lets_an_empty_page_through() -> None:
    """Issues deleted since the search began leave a page empty; that is not a loop."""
    paginator = TokenPaginator()
    assert paginator.advance({"issues": [], "nextPageToken": "a"}) == []
    assert paginator.has_more()


def test_key_paginator_refuses_keys_at_or_before_its_anchor() -> None:
    paginator = KeyPaginator()
    paginator.advance({"issues": [{"key": "PAY-1"}, {"key": "PAY-2"}], "maxResults": 2})
    assert (
        paginator.restriction() == '((project = "PAY" AND key > "PAY-2") OR project not in ("PAY"))'
    )
    with pytest.raises(PagingLoopError, match=r'answered PAY-1 again when asked for .*"PAY-2"'):
        paginator.advance({"issues": [{"key": "PAY-1"}, {"key": "PAY-2"}], "maxResults": 2})


def test_id_pager_refuses_an_answer_outside_its_window() -> None:
    def ignores_window(window: IdWindow) -> list[int]:
        return [1, 2, 3]

    pager = IdPager(ignores_window, page_size=3)
    with pytest.raises(PagingLoopError, match=r"window \(3, …\]"):
        list(pager.pages())
    assert pager.queries == 2


def test_id_pager_bounds_windows_a_server_always_refuses() -> None:
    """A server answering VS402337 to every open window made `_bounded_pages` walk up forever."""
    from connectors.wiql_builder import ResultCapExceeded

    def refuses_open_windows(window: IdWindow) -> list[int]:
        if window.up_to is None:
            raise ResultCapExceeded("VS402337")
        return []

    pager = IdPager(refuses_open_windows, page_size=10, max_queries=50)
    with pytest.raises(PagingLimitExceeded):
        list(pager.pages())
    assert pager.queries == 50


def test_empty_answers_find_nothing_in_well_formed_answers(jira: JiraSandbox) -> None:
    """The sandboxes' `empty_answers` mode (a scope typo, a token that lost its permissions)."""
    jira.set_faults(Faults(empty_answers=True))
    assert jira_connector(jira).scan_keys() == set()
    with AzureDevOpsSandbox(ado_items(), faults=Faults(empty_answers=True)) as ado:
        assert ado_connector(ado).scan_keys() == set()
