"""The unmodified `azure-devops` library (msrest) works against the sandbox: discovery, WIQL,
batches, single reads and guarded updates, success and conflict."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest
from azure.devops import client as devops_client
from azure.devops import connection as devops_connection
from azure.devops._file_cache import FileCache
from azure.devops.connection import Connection
from azure.devops.exceptions import AzureDevOpsAuthenticationError, AzureDevOpsServiceError
from azure.devops.v7_1.work_item_tracking.models import (
    JsonPatchOperation,
    TeamContext,
    Wiql,
    WorkItemBatchGetRequest,
)
from msrest.authentication import BasicAuthentication

from connectors.sandbox.ado_server import AzureDevOpsSandbox
from tests.ado_spec import check_request
from tests.sandbox_ado_support import BASE, small_portfolio

pytestmark = pytest.mark.integration


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep the library's discovery caches out of the home directory. The library reads
    AZURE_DEVOPS_CACHE_DIR when it is first imported, so the open caches are pointed there too."""
    monkeypatch.setenv("AZURE_DEVOPS_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(
        devops_client, "OPTIONS_FILE_CACHE", FileCache(str(tmp_path / "options.json"))
    )
    resources = FileCache(str(tmp_path / "resources.json"))
    monkeypatch.setattr(devops_connection, "RESOURCE_FILE_CACHE", resources)
    return tmp_path


@pytest.fixture
def ado(cache_dir: Path) -> Iterator[AzureDevOpsSandbox]:
    sandbox = AzureDevOpsSandbox(small_portfolio(), clock=lambda: BASE + timedelta(days=1))
    sandbox.request_log = []
    with sandbox:
        yield sandbox


def test_the_library_reads_and_writes_with_a_rev_guard(
    ado: AzureDevOpsSandbox, cache_dir: Path
) -> None:
    connection = Connection(base_url=ado.organization_url, creds=BasicAuthentication("", ado.pat))
    wit = connection.clients_v7_1.get_work_item_tracking_client()

    query = Wiql(query="SELECT [System.Id] FROM WorkItems WHERE [System.WorkItemType] = 'Feature'")
    result = wit.query_by_wiql(query, team_context=TeamContext(project="Portfolio"))
    assert [reference.id for reference in result.work_items] == [101, 102]
    assert result.columns[0].reference_name == "System.Id"

    request = WorkItemBatchGetRequest(ids=[101, 102], fields=["System.Title", "System.Rev"])
    batch = wit.get_work_items_batch(request, project="Portfolio")
    assert [(item.id, item.fields["System.Title"]) for item in batch] == [
        (101, "One-click pay"),
        (102, "Saved cards"),
    ]
    omitted = wit.get_work_items([101, 4242], error_policy="omit")
    assert omitted[0].id == 101 and omitted[1] is None

    feature = wit.get_work_item(101, project="Portfolio", expand="Relations")
    assert {relation.rel for relation in feature.relations} == {
        "System.LinkTypes.Hierarchy-Reverse",
        "System.LinkTypes.Hierarchy-Forward",
    }

    document = [
        JsonPatchOperation(op="test", path="/rev", value=feature.rev),
        JsonPatchOperation(op="add", path="/fields/Custom.WSJFScore", value=7.5),
    ]
    updated = wit.update_work_item(document, 101, project="Portfolio")
    assert (updated.rev, updated.fields["Custom.WSJFScore"]) == (feature.rev + 1, 7.5)

    with pytest.raises(AzureDevOpsServiceError) as conflict:
        wit.update_work_item(document, 101, project="Portfolio")
    assert conflict.value.type_key == "TestPatchOperationFailedException"
    assert "value 3 was not equal to test value 2" in str(conflict.value)
    assert ado.work_item(101)["fields"]["Custom.WSJFScore"] == 7.5

    # Discovery happened through the sandbox and was cached where the test asked.
    assert ado.counts["OPTIONS /_apis"] >= 1
    assert json.loads((cache_dir / "options.json").read_text())

    # Every WIT request the library sent is a request the spec allows (api-version in Accept).
    operations = set()
    for sent in ado.request_log or []:
        if "/_apis/wit/" not in sent.path:
            continue
        query_string = urlencode([(k, v) for k, values in sent.query.items() for v in values])
        body = json.loads(sent.body) if sent.body else None
        headers = dict(sent.headers.items())
        operations.add(check_request(sent.method, f"{sent.path}?{query_string}", headers, body))
    assert operations == {
        "Wiql_Query By Wiql",
        "Work Items_Get Work Items Batch",
        "Work Items_List",
        "Work Items_Get Work Item",
        "Work Items_Update",
    }


def test_a_wrong_pat_raises_the_library_authentication_error(ado: AzureDevOpsSandbox) -> None:
    connection = Connection(base_url=ado.organization_url, creds=BasicAuthentication("", "wrong"))
    with pytest.raises(AzureDevOpsAuthenticationError):
        connection.clients_v7_1.get_work_item_tracking_client().get_work_item(101)
