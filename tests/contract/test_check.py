"""The online check of the connector contract: each connector checks its own tracker (sign-in,
scope, fields, link types, write access) for `spm-sync check --online`, names what is wrong
with the fix, and writes nothing while it checks."""

from __future__ import annotations

import pytest

from connectors.base import CheckingConnector
from spm_sync.core.checks import CheckLine, CheckRequest
from spm_sync.core.domain import WriteField
from tests.contract.trackers import TrackerKit

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

WRITES = {"write_back.score": WriteField.WSJF_SCORE, "write_back.rank": WriteField.RANK}


def _check(kit: TrackerKit, request: CheckRequest, **overrides: object) -> list[CheckLine]:
    connector = kit.connector(**overrides)
    assert isinstance(connector, CheckingConnector)
    try:
        return list(connector.check(request))
    finally:
        connector.close()


def test_a_correct_setup_passes_every_check_and_nothing_is_written(kit: TrackerKit) -> None:
    lines = _check(kit, CheckRequest(link_types=(kit.okr_link_type,), writes=WRITES))

    failed = [line.render() for line in lines if not line.ok]
    assert failed == []
    text = "\n".join(line.render() for line in lines)
    assert "signed in" in text
    assert f"{kit.okr_link_type!r} exists" in text
    assert any("score" in line.message for line in lines)  # write access was asked about
    assert kit.score_writes() == [] and kit.rank_writes() == []


def test_a_missing_link_type_fails_with_the_closest_name_as_the_fix(kit: TrackerKit) -> None:
    typo = kit.okr_link_type[:-1] + "z"

    lines = _check(kit, CheckRequest(link_types=(typo,)))

    failed = [line for line in lines if not line.ok]
    assert len(failed) == 1
    assert "okr.link_types: no" in failed[0].message and repr(typo) in failed[0].message
    assert failed[0].fix is not None and repr(kit.okr_link_type) in failed[0].fix


def test_a_field_the_tracker_lacks_fails_the_check_by_its_setting(kit: TrackerKit) -> None:
    overrides, setting = kit.unknown_field()

    lines = _check(kit, CheckRequest(), **overrides)

    failed = [line for line in lines if not line.ok]
    assert failed and setting in failed[0].message
    assert all(line.fix for line in failed)
