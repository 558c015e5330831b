"""Resource-location discovery: how the `azure-devops` library finds the routes it calls.

Before its first call a client made by `Connection.clients_v7_1` asks `GET {org}/_apis/
ResourceAreas` for the URL of the WIT area, then `OPTIONS {that URL}/_apis` for the
`ApiResourceLocation` list (id, area, resourceName, routeTemplate and versions), and builds each
request URL from the route template of the location id its method names; the api-version it
sends is negotiated down to `maxVersion` and `resourceVersion` (`Client._negotiate_request_version`
in `azure/devops/client.py`). The Node client asks `OPTIONS {org}/_apis/{area}` instead.
"""

from __future__ import annotations

from typing import Any


def _location(
    location_id: str, area: str, resource: str, template: str, version: int, minimum: str
) -> dict[str, Any]:
    return {
        "id": location_id,
        "area": area,
        "resourceName": resource,
        "routeTemplate": template,
        "resourceVersion": version,
        "minVersion": minimum,
        "maxVersion": "7.2",
        "releasedVersion": "7.1",
    }


# Location ids as in azure/devops/v7_1/work_item_tracking/work_item_tracking_client.py and
# v7_1/location/location_client.py; `{project}` and `{team}` are optional route segments.
_PROJECT_SCOPED = "{project}/_apis/{area}/{resource}"
LOCATIONS: tuple[dict[str, Any], ...] = (
    _location(
        "1a9c53f7-f243-4447-b110-35ef023636e4",
        "wit",
        "wiql",
        "{project}/{team}/_apis/{area}/{resource}/{id}",
        2,
        "1.0",
    ),
    _location(
        "72c7ddf8-2cdc-4f60-90cd-ab71c14a399b",
        "wit",
        "workItems",
        _PROJECT_SCOPED + "/{id}",
        3,
        "1.0",
    ),
    _location(
        "908509b6-4248-4475-a1cd-829139ba419f", "wit", "workItemsBatch", _PROJECT_SCOPED, 1, "5.0"
    ),
    _location(
        "a00c85a5-80fa-4565-99c3-bcd2181434bb",
        "wit",
        "revisions",
        "{project}/_apis/{area}/workItems/{id}/{resource}/{revisionNumber}",
        3,
        "1.0",
    ),
    _location(
        "b51fd764-e5c2-4b9b-aaf7-3395cf4bdd94",
        "wit",
        "fields",
        _PROJECT_SCOPED + "/{fieldNameOrRefName}",
        3,
        "1.0",
    ),
    _location(
        "f5d33bc9-5b49-4a3c-a9bd-f3cd46dd2165",
        "wit",
        "workItemRelationTypes",
        "_apis/{area}/{resource}/{relation}",
        2,
        "1.0",
    ),
    _location(
        "f828fe59-dd87-495d-a17c-7a8d6211ca6c",
        "wit",
        "workItemRevisions",
        "{project}/_apis/{area}/reporting/{resource}",
        2,
        "1.0",
    ),
    _location(
        "7c9d7a76-4a09-43e8-b5df-bd792f4ac6aa",
        "wit",
        "workItemTypeStates",
        "{project}/_apis/{area}/workitemtypes/{type}/states",
        1,
        "4.0",
    ),
    _location(
        "e81700f7-3be2-46de-8624-2eb35882fcaa",
        "Location",
        "ResourceAreas",
        "_apis/{resource}/{areaId}",
        1,
        "3.2",
    ),
    _location(
        "00d9565f-ed9c-4a06-9a50-00e7896ccab4",
        "Location",
        "ConnectionData",
        "_apis/{resource}",
        1,
        "1.0",
    ),
)

WIT_AREA_ID = "5264459e-e5e0-4bd8-b118-0985e68a4ec5"


def connection_data(identity: dict[str, Any]) -> dict[str, Any]:
    """`GET {org}/_apis/connectionData`: who the PAT belongs to and which deployment answers."""
    user = {
        "id": identity["id"],
        "descriptor": identity["descriptor"],
        "providerDisplayName": identity["displayName"],
    }
    return {
        "authenticatedUser": user,
        "authorizedUser": user,
        "instanceId": "0d0b4ae7-1c4a-4e39-9f0e-6f1b5c1e7a10",
        "deploymentId": "a7f0c9c6-5b8e-4d7c-8e5f-1c2b3a4d5e60",
        "deploymentType": "hosted",
        "locationServiceData": {"serviceOwner": "00025394-6065-48ca-87d9-7f5672854ef7"},
    }


def resource_locations(area: str | None = None) -> list[dict[str, Any]]:
    """The ApiResourceLocation list of `OPTIONS {org}/_apis[/{area}]`."""
    return [
        dict(location)
        for location in LOCATIONS
        if area is None or location["area"].lower() == area.lower()
    ]
