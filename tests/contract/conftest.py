"""The contract's one fixture: each scenario runs once per tracker kind, on a fresh sandbox."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.contract.trackers import KINDS, Kind, TrackerKit, running


@pytest.fixture(params=KINDS)
def kit(request: pytest.FixtureRequest) -> Iterator[TrackerKit]:
    kind: Kind = request.param
    with running(kind) as started:
        yield started
