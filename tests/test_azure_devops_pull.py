"""Pulling from Azure DevOps over real HTTP code paths (`responses` under the msrest session)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import responses

from connectors.base import ConnectorError, UnknownFieldError
from spm_sync.core.domain import Level, Link, StatusCategory
from tests.azure_devops_fixtures import (
    PAT,
    PROJECT,
    WIT,
    FakeAzureDevOps,
    make_connector,
    make_settings,
    relation,
    validate_calls,
    work_item,
)


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps
        validate_calls(rsps.calls)


def endpoints(mock: responses.RequestsMock) -> list[str]:
    return [f"{c.request.method} {c.request.url.split('?')[0]}" for c in mock.calls]


def test_full_pull_maps_items_and_counts_every_request(mock: responses.RequestsMock) -> None:
    items = {
        1: work_item(1, extra={"System.Tags": " kr-7; Payments ;;"}, **{"System.State": "New"}),
        2: work_item(2, **{"System.WorkItemType": "Feature", "System.State": "Closed"}),
    }
    items[2]["relations"] = [
        relation("System.LinkTypes.Hierarchy-Reverse", 1),
        relation("System.LinkTypes.Related", 1),
        relation("System.LinkTypes.Dependency-Reverse", 9),
        {"rel": "Hyperlink", "url": "https://example.com/spec", "attributes": {}},
    ]
    FakeAzureDevOps(mock, items)
    connector = make_connector()

    pulled = {item.key: item for item in connector.pull(None)}

    assert set(pulled) == {"1", "2"}
    epic, feature = pulled["1"], pulled["2"]
    assert epic.labels == ("kr-7", "Payments")
    assert epic.status_category is StatusCategory.TODO
    assert epic.level is Level.EPIC
    assert epic.business_value == 8.0 and epic.job_size == 3.0 and epic.risk_reduction == 2.0
    assert epic.revision == "3"
    assert epic.rank == 10.0 and epic.priority == "2"
    assert epic.team == f"{PROJECT}\\Payments"
    assert epic.url == "https://dev.azure.com/contoso/Portfolio/_workitems/edit/1"
    assert epic.updated == datetime(2026, 3, 1, 10, 0, 0, 123000, tzinfo=UTC)
    assert feature.parent_key == "1"
    assert feature.status_category is StatusCategory.DONE
    assert feature.links == (
        Link("System.LinkTypes.Related", "outward", "1"),
        Link("System.LinkTypes.Dependency", "inward", "9"),
    )
    # New and Closed are system states with fixed categories: no `workitemtypes/…/states` read.
    assert endpoints(mock) == [
        "OPTIONS https://dev.azure.com/contoso/_apis",
        f"POST {WIT}/wiql",
        f"POST {WIT}/workitemsbatch",
    ]
    assert connector.stats.requests == 3
    assert connector.stats.by_endpoint["OPTIONS /contoso/_apis"] == 1


def test_batches_hold_at_most_200_ids_and_read_relations(mock: responses.RequestsMock) -> None:
    fake = FakeAzureDevOps(mock, {i: work_item(i) for i in range(1, 202)})

    keys = [item.key for item in make_connector().pull(None)]

    assert sorted(keys, key=int) == [str(i) for i in range(1, 202)]
    assert sorted(len(body["ids"]) for body in fake.batch_bodies) == [1, 200]
    # `fields` and `$expand` do not combine on the service: relations mean all fields.
    assert all(set(body) == {"ids", "$expand", "errorPolicy"} for body in fake.batch_bodies)
    assert {body["$expand"] for body in fake.batch_bodies} == {"relations"}


def test_without_relations_only_the_needed_fields_are_requested(
    mock: responses.RequestsMock,
) -> None:
    item = work_item(5, extra={"System.Parent": 4, "Custom.Unrelated": "x"})
    fake = FakeAzureDevOps(mock, {5: item})

    (pulled,) = make_connector(read_relations=False).pull(None)

    (body,) = fake.batch_bodies
    assert "$expand" not in body
    assert body["fields"] == [
        "System.Id", "System.Title", "System.WorkItemType", "System.State", "System.AreaPath",
        "System.TeamProject", "System.Tags", "System.Rev", "System.ChangedDate",
        "System.CreatedDate", "Microsoft.VSTS.Common.BusinessValue",
        "Microsoft.VSTS.Common.TimeCriticality", "Custom.RiskReduction",
        "Microsoft.VSTS.Scheduling.Effort", "Custom.WSJFScore", "Custom.CostOfDelay",
        "Microsoft.VSTS.Common.StackRank", "Microsoft.VSTS.Common.Priority", "System.Parent",
    ]  # fmt: skip
    assert pulled.parent_key == "4"


def test_display_names_resolve_through_the_wiql_columns(mock: responses.RequestsMock) -> None:
    fake = FakeAzureDevOps(mock, {1: work_item(1, extra={"Custom.WSJFScore": 12.5})})
    connector = make_connector()

    (item,) = connector.pull(None)

    fields = connector.field_map()
    assert fields.job_size == "Microsoft.VSTS.Scheduling.Effort"
    assert fields.risk_reduction == "Custom.RiskReduction"
    assert fields.score == "Custom.WSJFScore"
    assert item.wsjf_score == 12.5
    assert "[Risk Reduction | Opportunity Enablement]" in fake.wiql_queries[0]
    assert not any("/fields" in url for url in endpoints(mock))


def test_field_catalog_resolves_when_the_columns_do_not_answer(
    mock: responses.RequestsMock,
) -> None:
    FakeAzureDevOps(mock, {1: work_item(1)}, columns=False)
    connector = make_connector()

    (item,) = connector.pull(None)

    assert connector.field_map().job_size == "Microsoft.VSTS.Scheduling.Effort"
    assert item.job_size == 3.0
    assert connector.stats.by_endpoint["GET /contoso/Portfolio/_apis/wit/fields"] == 1


def test_unknown_field_fails_with_close_matches(mock: responses.RequestsMock) -> None:
    FakeAzureDevOps(mock, {1: work_item(1)})
    wsjf = {"risk_reduction": "Risk Reduktion | Opportunity Enablement"}
    connector = make_connector(make_settings(wsjf_fields=wsjf))

    with pytest.raises(UnknownFieldError) as raised:
        list(connector.pull(None))

    assert raised.value.setting == "wsjf_fields.risk_reduction"
    assert raised.value.candidates[0] == (
        "Risk Reduction | Opportunity Enablement (Custom.RiskReduction)"
    )
    assert "close matches" in str(raised.value)


def test_incremental_pull_asks_for_changes_since_with_time_precision(
    mock: responses.RequestsMock,
) -> None:
    items = {
        1: work_item(1, **{"System.ChangedDate": "2026-02-01T00:00:00Z"}),
        2: work_item(2, **{"System.ChangedDate": "2026-03-05T12:00:00Z"}),
    }
    fake = FakeAzureDevOps(mock, items)
    since = datetime(2026, 3, 5, 13, 0, 0, 999999, tzinfo=UTC).astimezone()

    keys = [item.key for item in make_connector().pull(since.replace(hour=since.hour - 1))]

    assert keys == ["2"]
    assert "[System.ChangedDate] >= '2026-03-05T12:00:00.999Z'" in fake.wiql_queries[0]
    wiql_call = next(c for c in mock.calls if c.request.url.startswith(f"{WIT}/wiql"))
    assert "timePrecision=true" in wiql_call.request.url


def test_no_change_incremental_costs_discovery_and_one_query(mock: responses.RequestsMock) -> None:
    FakeAzureDevOps(mock, {1: work_item(1, **{"System.ChangedDate": "2026-01-01T00:00:00Z"})})
    connector = make_connector()

    assert list(connector.pull(datetime(2026, 3, 1, tzinfo=UTC))) == []

    assert connector.stats.requests == 2
    assert sorted(connector.stats.by_endpoint) == [
        "OPTIONS /contoso/_apis",
        "POST /contoso/Portfolio/_apis/wit/wiql",
    ]


def test_a_warm_discovery_cache_saves_the_options_call(
    mock: responses.RequestsMock, tmp_path: object
) -> None:
    FakeAzureDevOps(mock, {})
    first = make_connector(cache_dir=tmp_path)
    list(first.pull(None))
    second = make_connector(cache_dir=tmp_path)
    list(second.pull(None))

    assert first.stats.by_endpoint["OPTIONS /contoso/_apis"] == 1
    assert second.stats.requests == 1


def test_the_discovery_cache_is_trusted_for_a_week_not_the_librarys_12_hours(
    mock: responses.RequestsMock, tmp_path: Path
) -> None:
    FakeAzureDevOps(mock, {})
    list(make_connector(cache_dir=tmp_path).pull(None))
    options = tmp_path / "options.json"

    def options_calls_after(age: timedelta) -> int:
        moment = (datetime.now(UTC) - age).timestamp()
        os.utime(options, (moment, moment))
        connector = make_connector(cache_dir=tmp_path)
        list(connector.pull(None))
        return connector.stats.by_endpoint.get("OPTIONS /contoso/_apis", 0)

    assert options_calls_after(timedelta(days=1)) == 0  # a nightly run finds it warm
    assert options_calls_after(timedelta(days=6, hours=23)) == 0
    assert options_calls_after(timedelta(days=7, hours=1)) == 1


def test_cached_locations_that_lack_a_resource_are_dropped_for_the_next_run(
    tmp_path: Path,
) -> None:
    # Its own mock: the library also asks the deployment level (`OPTIONS https://dev.azure.com/
    # _apis`) for a location the organization's cached list lacks, which the spec check refuses.
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        FakeAzureDevOps(mock, {1: work_item(1)})
        mock.add("OPTIONS", "https://dev.azure.com/_apis", json={"count": 0, "value": []})
        list(make_connector(cache_dir=tmp_path).pull(None))
        options = tmp_path / "options.json"
        cached = json.loads(options.read_text())
        (url,) = cached
        cached[url] = [c for c in cached[url] if c["resourceName"].lower() != "workitemsbatch"]
        options.write_text(json.dumps(cached))

        with pytest.raises(ConnectorError, match="is not registered"):
            list(make_connector(cache_dir=tmp_path).pull(None))
        again = make_connector(cache_dir=tmp_path)
        assert [item.key for item in again.pull(None)] == ["1"]
        assert again.stats.by_endpoint["OPTIONS /contoso/_apis"] == 1


def test_malformed_item_is_skipped_with_a_warning(mock: responses.RequestsMock) -> None:
    items = {
        1: work_item(1, **{"System.ChangedDate": "yesterday"}),
        2: work_item(2),
        3: work_item(3),
    }
    del items[3]["fields"]["System.Title"]
    FakeAzureDevOps(mock, items)
    connector = make_connector()

    keys = [item.key for item in connector.pull(None)]

    assert keys == ["2"]
    assert any("work item 1" in w and "System.ChangedDate" in w for w in connector.warnings)
    assert any("work item 3" in w and "System.Title" in w for w in connector.warnings)


def test_non_numeric_inputs_become_field_problems(mock: responses.RequestsMock) -> None:
    item = work_item(
        1, extra={"Custom.RiskReduction": "big", "Microsoft.VSTS.Scheduling.Effort": "5"}
    )
    FakeAzureDevOps(mock, {1: item})

    (pulled,) = make_connector().pull(None)

    assert pulled.risk_reduction is None
    assert pulled.job_size == 5.0
    assert pulled.field_problems == {
        "risk_reduction": "Custom.RiskReduction: 'big' is not a number"
    }


def test_a_custom_state_reads_its_type_states_once_and_that_table_wins(
    mock: responses.RequestsMock,
) -> None:
    states = {
        "Epic": [("New", "Proposed"), ("Parked", "Proposed"), ("Active", "Completed")],
        "Feature": [("New", "Proposed"), ("Shipping", "Completed")],
    }
    items = {
        1: work_item(1, **{"System.State": "Parked"}),
        2: work_item(2, **{"System.State": "Active"}),
        3: work_item(3, **{"System.WorkItemType": "Feature", "System.State": "Shipping"}),
        4: work_item(4, **{"System.WorkItemType": "Feature", "System.State": "Active"}),
        5: work_item(5, **{"System.WorkItemType": "Bug", "System.State": "Resolved"}),
    }
    filler = {i: work_item(i) for i in range(6, 300)}
    filler[299] = work_item(299, **{"System.State": "Parked"})  # in the second batch of 200
    fake = FakeAzureDevOps(mock, {**items, **filler}, states=states)
    connector = make_connector()

    pulled = {item.key: item.status_category for item in connector.pull(None)}

    assert len(fake.batch_bodies) == 2
    assert {key: pulled[key] for key in ("1", "2", "3", "4", "5", "299")} == {
        "1": StatusCategory.TODO,
        "2": StatusCategory.DONE,  # once read, the type's own table wins (XML processes)
        "3": StatusCategory.DONE,
        "4": StatusCategory.IN_PROGRESS,  # not in Feature's table: the system table's Active
        "5": StatusCategory.IN_PROGRESS,
        "299": StatusCategory.TODO,
    }
    reads = sorted(e for e in endpoints(mock) if e.endswith("/states"))
    assert reads == [
        f"GET {WIT}/workitemtypes/Epic/states",
        f"GET {WIT}/workitemtypes/Feature/states",
    ]
    assert connector.warnings == []


def test_unreadable_type_states_fall_back_to_the_system_table(
    mock: responses.RequestsMock,
) -> None:
    items = {
        1: work_item(1, **{"System.WorkItemType": "Key Result", "System.State": "Doing"}),
        2: work_item(2, **{"System.WorkItemType": "Key Result", "System.State": "Parked"}),
    }
    FakeAzureDevOps(mock, items)
    connector = make_connector()

    pulled = {item.key: item for item in connector.pull(None)}

    assert pulled["1"].status_category is StatusCategory.IN_PROGRESS
    assert pulled["2"].status_category is StatusCategory.TODO
    assert any("'Key Result'" in w and "system state categories" in w for w in connector.warnings)
    assert any("'Parked'" in w for w in connector.warnings)
    # Type names are folded in the per-endpoint counts (one key for all types).
    assert (
        connector.stats.by_endpoint["GET /contoso/Portfolio/_apis/wit/workitemtypes/{type}/states"]
        == 1
    )


def test_scope_settings_become_wiql_conditions(mock: responses.RequestsMock) -> None:
    fake = FakeAzureDevOps(
        mock, {1: work_item(1), 2: work_item(2, **{"System.WorkItemType": "Bug"})}
    )
    scope = {
        "work_item_types": ["Epic", "Feature"],
        "area_paths": ["Portfolio\\Payments", "Portfolio\\O'Brien"],
        "wiql_where": "[System.State] <> 'Removed'",
    }
    keys = [item.key for item in make_connector(make_settings(scope=scope)).pull(None)]

    assert keys == ["1"]
    query = fake.wiql_queries[0]
    assert "[System.TeamProject] = @project" in query
    assert "[System.WorkItemType] IN ('Epic', 'Feature')" in query
    assert "[System.AreaPath] UNDER 'Portfolio\\O''Brien'" in query
    assert "([System.State] <> 'Removed')" in query
    assert query.endswith("ORDER BY [System.Id] ASC")


def test_scan_keys_is_an_id_only_query(mock: responses.RequestsMock) -> None:
    fake = FakeAzureDevOps(mock, {i: work_item(i) for i in (3, 5, 8)})

    keys = make_connector().scan_keys()

    assert keys == {"3", "5", "8"}
    assert fake.wiql_queries[0].startswith("SELECT [System.Id]\nFROM WorkItems")
    assert fake.batch_bodies == []


def test_the_token_stays_secret(mock: responses.RequestsMock) -> None:
    FakeAzureDevOps(mock, {})
    connector = make_connector()
    list(connector.pull(None))

    assert PAT not in repr(connector)
    assert all(PAT not in w for w in connector.warnings)
    authorization = mock.calls[1].request.headers["Authorization"]
    assert authorization.startswith("Basic ")


def test_missing_token_is_a_clear_error() -> None:
    with pytest.raises(ConnectorError, match="SPM_TEST_ADO_PAT"):
        from connectors.azure_devops import AzureDevOpsConnector

        AzureDevOpsConnector(make_settings(), environ={}, cache_dir=None)


def test_rejected_scope_query_reports_the_service_message(mock: responses.RequestsMock) -> None:
    mock.add(  # registered first, so it answers before the fake's WIQL
        "POST",
        re.compile(re.escape(f"{WIT}/wiql") + r"(\?.*)?$"),
        status=400,
        json={"message": "TF51006: The query statement is missing a FROM clause."},
    )
    FakeAzureDevOps(mock, {})
    with pytest.raises(ConnectorError, match="TF51006"):
        list(make_connector(make_settings(scope={"wiql_where": "nonsense"})).pull(None))


def test_wiql_body_is_the_library_shape(mock: responses.RequestsMock) -> None:
    FakeAzureDevOps(mock, {})
    list(make_connector().pull(None))

    wiql_call = next(c for c in mock.calls if c.request.method == "POST")
    assert set(json.loads(wiql_call.request.body)) == {"query"}
    assert "api-version=7.1" in wiql_call.request.headers["Accept"]
