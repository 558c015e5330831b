"""The reading half of the connector contract: every tracker kind yields the seeded scope
whole and well formed, an incremental pull yields what changed and nothing older than the
overlap, the key scan sees deletions, and a misnamed field fails the run clearly."""

from __future__ import annotations

from datetime import timedelta

import pytest

from connectors.base import Connector, UnknownFieldError
from spm_sync.core.domain import Level, StatusCategory
from tests.contract.trackers import TrackerKit

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

WSJF_INPUTS = ("business_value", "time_criticality", "risk_reduction", "job_size")


def expected_input(raw: object) -> tuple[float | None, bool]:
    """(value, is a problem) of a seed's raw WSJF input: blank is no value, a word a problem."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None, False
    try:
        return float(raw), False  # type: ignore[arg-type]
    except ValueError:
        return None, True


def test_a_full_pull_yields_every_seeded_item_once_and_well_formed(kit: TrackerKit) -> None:
    connector = kit.connector()
    assert isinstance(connector, Connector)

    pulled = list(connector.pull(None))

    keys = [item.key for item in pulled]
    assert len(keys) == len(set(keys))
    assert set(keys) == {seed.key for seed in kit.seeds}
    by_key = {item.key: item for item in pulled}
    problems = 0
    for seed in kit.seeds:
        item = by_key[seed.key]
        assert item.connection == kit.name
        assert (item.title, item.type, item.status) == (seed.title, seed.type, seed.status)
        assert item.status_category is StatusCategory(seed.status_category), seed.key
        assert item.level is kit.levels.get(seed.type), seed.key
        assert item.parent_key == seed.parent, seed.key
        assert {label.casefold() for label in item.labels} == {
            label.casefold() for label in seed.labels
        }, seed.key
        assert item.revision and item.url, seed.key
        for name in WSJF_INPUTS:
            value, is_problem = expected_input(getattr(seed, name))
            assert getattr(item, name) == value, (seed.key, name)
            assert (name in item.field_problems) is is_problem, (seed.key, name)
            problems += is_problem
    assert problems > 0  # the generator's words in number fields surface as problems
    assert {item.level for item in pulled} >= {Level.EPIC, Level.STORY, Level.TASK}
    assert any(item.parent_key for item in pulled)


def test_an_incremental_pull_yields_exactly_the_items_changed_since(kit: TrackerKit) -> None:
    first_run = kit.clock.now
    assert len(list(kit.connector().pull(None))) == len(kit.seeds)
    kit.clock.advance(30)
    touched = sorted(kit.seeds[n].key for n in (5, 100, 200))
    for key in touched:
        kit.human_edit(key)
    kit.clock.advance(10)

    second = kit.connector()
    changed = list(second.pull(first_run - timedelta(minutes=2)))

    assert sorted(item.key for item in changed) == touched
    assert {item.title for item in changed} == {kit.stored_title(key) for key in touched}
    assert second.stats.requests == kit.incremental_requests

    second_run = kit.clock.now
    kit.clock.advance(45)
    quiet = kit.connector()
    assert list(quiet.pull(second_run - timedelta(minutes=2))) == []
    assert quiet.stats.requests <= kit.incremental_requests


def test_the_key_scan_no_longer_holds_a_deleted_item(kit: TrackerKit) -> None:
    everything = {seed.key for seed in kit.seeds}
    assert kit.connector().scan_keys() == everything
    parents = {seed.parent for seed in kit.seeds}
    gone = next(seed.key for seed in kit.seeds if seed.key not in parents)

    kit.delete(gone)

    assert kit.connector().scan_keys() == everything - {gone}
    assert gone not in {item.key for item in kit.connector().pull(None)}


def test_an_unknown_field_name_fails_clearly_naming_the_setting(kit: TrackerKit) -> None:
    overrides, setting = kit.unknown_field()
    connector = kit.connector(**overrides)

    with pytest.raises(UnknownFieldError) as raised:
        list(connector.pull(None))

    assert raised.value.setting == setting
    assert setting in str(raised.value)
    assert raised.value.candidates, "a misspelt name gets close matches"
