"""The contract under a tracker's pushback: 429 (throttled) and 503 (unavailable) answers
with Retry-After, on the pull and on the push, are waited out and retried; nothing is lost
and nothing is written twice. Credentials the tracker rejects are a clear error that never
shows the secret, and nothing is written."""

from __future__ import annotations

import random

import pytest

from connectors.base import ConnectorError
from connectors.sandbox.server import Faults
from spm_sync.core.domain import WriteStatus
from tests.contract.plans import first, portfolio_items, score_plan, score_writes
from tests.contract.trackers import RecordedSleep, TrackerKit

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

RETRY_AFTER = 2
RATE = 0.3


def pushback(status: int) -> Faults:
    """A share of `status` answers with Retry-After, seeded so that the very first request
    gets one: a push of a few requests is then refused at least once, whatever the luck.

    The sandbox draws twice before it answers a request (a reset, then an injected error), so
    the first request is refused when the seed's second draw falls below the rate."""
    seed = next(s for s in range(1000) if _second_draw(s) < RATE)
    share = {"throttle_rate": RATE} if status == 429 else {"unavailable_rate": RATE}
    return Faults(retry_after_seconds=RETRY_AFTER, seed=seed, **share)  # type: ignore[arg-type]


def _second_draw(seed: int) -> float:
    draws = random.Random(seed)
    draws.random()
    return draws.random()


def honoured(sleep: RecordedSleep) -> bool:
    """Some wait was the Retry-After (the policy adds up to 10% jitter, never less)."""
    return any(RETRY_AFTER <= wait <= RETRY_AFTER * 1.1 for wait in sleep.waits)


@pytest.mark.parametrize("status", [429, 503])
def test_a_pull_met_with_pushback_is_retried_and_loses_nothing(
    kit: TrackerKit, status: int
) -> None:
    kit.set_faults(pushback(status))
    sleep = RecordedSleep()
    connector = kit.connector(sleep)

    pulled = [item.key for item in connector.pull(None)]
    scanned = connector.scan_keys()

    everything = {seed.key for seed in kit.seeds}
    assert len(pulled) == len(set(pulled)) and set(pulled) == everything
    assert scanned == everything
    assert connector.stats.retries > 0 and connector.stats.throttled > 0
    assert honoured(sleep)


@pytest.mark.parametrize("status", [429, 503])
def test_a_push_met_with_pushback_is_retried_and_writes_each_value_once(
    kit: TrackerKit, status: int
) -> None:
    sleep = RecordedSleep()
    connector = kit.connector(sleep)
    writes = score_writes(kit.name, first(portfolio_items(connector), 8))
    kit.set_faults(pushback(status))

    results = list(connector.push(score_plan(kit.name, writes)))

    assert sorted((r.write.item_key, r.status) for r in results) == sorted(
        (w.item_key, WriteStatus.WRITTEN) for w in writes
    )
    assert sorted(kit.score_writes()) == sorted(w.item_key for w in writes)
    assert [kit.stored_score(w.item_key) for w in writes] == [w.new for w in writes]
    assert connector.stats.retries > 0 and connector.stats.throttled > 0
    assert honoured(sleep)


def test_rejected_credentials_are_a_clear_error_without_the_secret_and_write_nothing(
    kit: TrackerKit,
) -> None:
    wrong = "not-the-secret-0123456789"
    writes = score_writes(kit.name, first(portfolio_items(kit.connector()), 3))
    connector = kit.connector(secret=wrong)

    with pytest.raises(ConnectorError, match="rejected the") as pulling:
        list(connector.pull(None))
    with pytest.raises(ConnectorError, match="rejected the") as pushing:
        list(connector.push(score_plan(kit.name, writes)))

    assert wrong not in str(pulling.value) and wrong not in str(pushing.value)
    assert kit.score_writes() == []
    assert connector.stats.retries == 0  # a refusal is not worth a retry
