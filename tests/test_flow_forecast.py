"""Monte Carlo completion forecasts: repeatable with a seed, sane in direction, exact where
the history leaves no doubt, and judged against the objective's target date."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta

import pytest

from spm_sync.core.domain import StatusCategory
from spm_sync.core.history import FlowItem, StatusChange
from spm_sync.engines.flow.facts import derive_flows
from spm_sync.engines.flow.forecast import (
    CompletionForecast,
    ForecastStatus,
    ObjectiveOutlook,
    _drawer,
    _simulate_trials,
    forecast_completion,
    forecast_objectives,
    outlooks_from_flows,
)
from spm_sync.engines.flow.settings import FlowSettings

TODAY = date(2026, 12, 3)
HISTORY = (0, 1, 3, 0, 2, 1, 0, 4, 1, 2, 0, 1)  # twelve weeks of epics done


def weeks(n: int) -> date:
    return TODAY + timedelta(weeks=n)


def forecast(
    remaining: int, history: tuple[int, ...] = HISTORY, seed: int = 1, **kw: int
) -> CompletionForecast:
    result = forecast_completion(remaining, history, today=TODAY, rng=random.Random(seed), **kw)
    assert result is not None
    return result


def test_the_same_seed_gives_the_same_forecast() -> None:
    assert forecast(20, seed=42) == forecast(20, seed=42)


def test_more_remaining_items_take_longer() -> None:
    few, many = forecast(5), forecast(50)
    assert few.p50 and few.p85 and few.p95 and many.p50
    assert few.p50 < many.p50
    assert few.p50 <= few.p85 <= few.p95


def test_a_steady_history_forecasts_exactly() -> None:
    # Two a week, every week: ten items take exactly five weeks in every trial.
    assert forecast(10, (2, 2, 2)) == CompletionForecast(10, 10_000, weeks(5), weeks(5), weeks(5))
    # Daily buckets count days.
    assert forecast(3, (1,), bucket_days=1).p95 == TODAY + timedelta(days=3)


def test_an_overshooting_bucket_still_ends_in_that_bucket() -> None:
    assert forecast(1, (3,)).p50 == weeks(1)


def test_nothing_remaining_is_done_today_and_no_history_is_none() -> None:
    assert forecast(0, ()).p95 == TODAY
    assert forecast_completion(4, (), today=TODAY, rng=random.Random(1)) is None
    assert forecast_completion(4, (0, 0, 0), today=TODAY, rng=random.Random(1)) is None


def test_trials_beyond_the_horizon_leave_the_dates_open() -> None:
    slow = forecast(30, (0, 0, 0, 1), horizon_days=7 * 20)
    assert (slow.p50, slow.p85, slow.p95) == (None, None, None)
    assert slow.beyond_horizon == 10_000


def test_many_buckets_give_the_same_answer_on_the_slow_path() -> None:
    # More than 256 buckets cannot be drawn from single random bytes.
    assert forecast(12, (3,) * 300) == CompletionForecast(12, 10_000, weeks(4), weeks(4), weeks(4))
    assert forecast(600, (300, 300)) == CompletionForecast(
        600, 10_000, weeks(2), weeks(2), weeks(2)
    )


def test_big_counts_draw_like_small_ones() -> None:
    """A count over 255 a week is drawn from random bytes as its class among the distinct
    counts: scaling every count (and what remains) by 100 replays the same trials."""
    small = forecast(25, seed=9)
    big = forecast(2_500, tuple(count * 100 for count in HISTORY), seed=9)
    assert (big.p50, big.p85, big.p95, big.beyond_horizon) == (
        small.p50,
        small.p85,
        small.p95,
        small.beyond_horizon,
    )
    assert small.p50 != small.p95  # the trials differ: equality above is not a steady history


def test_the_population_simulation_matches_trials_run_one_by_one() -> None:
    """The counts-based simulation must agree with the obvious one-trial-at-a-time loop."""
    rng = random.Random(7)
    naive = []
    for _ in range(20_000):
        done = buckets = 0
        while done < 25:
            done += rng.choice(HISTORY)
            buckets += 1
        naive.append(buckets)
    naive.sort()
    result = forecast(25, trials=20_000)
    for percent, got in ((50, result.p50), (85, result.p85), (95, result.p95)):
        expected = weeks(naive[math.ceil(percent / 100 * len(naive)) - 1])
        assert got is not None
        assert abs((got - expected).days) <= 7, percent


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        forecast_completion(-1, HISTORY, today=TODAY, rng=random.Random(1))
    with pytest.raises(ValueError):
        forecast_completion(3, (1, -2), today=TODAY, rng=random.Random(1))


def test_objectives_are_judged_against_their_target_at_85_percent() -> None:
    outlooks = [
        ObjectiveOutlook("on-track", 10, (2, 2, 2), target=weeks(6)),
        ObjectiveOutlook("just-made", 10, (2, 2, 2), target=weeks(5)),
        ObjectiveOutlook("late", 10, (2, 2, 2), target=weeks(4)),
        ObjectiveOutlook("no-target", 10, (2, 2, 2)),
        ObjectiveOutlook("no-history", 3, (0, 0, 0, 0), target=weeks(4)),
        ObjectiveOutlook("finished", 0, (), target=weeks(4)),
    ]
    result = {
        f.objective_id: f for f in forecast_objectives(outlooks, today=TODAY, rng=random.Random(3))
    }
    assert {k: f.status for k, f in result.items()} == {
        "on-track": ForecastStatus.ON_TRACK,
        "just-made": ForecastStatus.ON_TRACK,
        "late": ForecastStatus.AT_RISK,
        "no-target": ForecastStatus.NO_TARGET,
        "no-history": ForecastStatus.NO_HISTORY,
        "finished": ForecastStatus.NOTHING_REMAINING,
    }
    assert result["late"].at_risk
    assert (
        result["late"].reason
        == "10 open epics 85% likely done by 2027-01-07, after the target 2026-12-31"
    )
    assert result["no-history"].reason == "no epic of this objective was done in the last 4 weeks"
    assert result["no-history"].forecast is None


def test_an_objective_that_cannot_finish_within_the_horizon_is_at_risk() -> None:
    (judged,) = forecast_objectives(
        [ObjectiveOutlook("slow", 40, (0, 0, 0, 1), target=weeks(10))],
        today=TODAY,
        rng=random.Random(3),
        horizon_days=365,
    )
    assert judged.status is ForecastStatus.AT_RISK
    assert judged.reason == "at this throughput, 40 open epics are not done within a year"


def test_forecasts_of_many_objectives_are_repeatable_in_input_order() -> None:
    outlooks = [ObjectiveOutlook(f"O-{n}", n, HISTORY, target=weeks(8)) for n in range(1, 30)]
    first = forecast_objectives(outlooks, today=TODAY, rng=random.Random(11), trials=2_000)
    again = forecast_objectives(outlooks, today=TODAY, rng=random.Random(11), trials=2_000)
    assert first == again


def test_outlooks_count_open_epics_and_weekly_throughput_from_flow_facts() -> None:
    now = datetime(2026, 12, 3, tzinfo=UTC)
    doing, done = StatusCategory.IN_PROGRESS, StatusCategory.DONE

    def epic(key: str, done_days_ago: float | None) -> FlowItem:
        ref = ("jira", key)
        begun = now - timedelta(days=60)
        changes = [StatusChange(ref, begun, "Open", "In Progress", doing)]
        if done_days_ago is not None:
            at = now - timedelta(days=done_days_ago)
            changes.append(StatusChange(ref, at, "In Progress", "Done", done))
        status, category = ("Done", done) if done_days_ago is not None else ("In Progress", doing)
        return FlowItem(ref, "Epic", begun, status, category, tuple(changes))

    items = [epic("E-1", 2), epic("E-2", 3), epic("E-3", 10), epic("E-4", None), epic("E-5", None)]
    flows = derive_flows(items, FlowSettings(), now)
    groups = {"grow": [i.ref for i in items], "empty": []}
    grow, empty = outlooks_from_flows(flows, groups, {"grow": weeks(2)}, now=now, window_days=28)
    assert (grow.remaining, grow.throughput, grow.target) == (2, (0, 0, 1, 2), weeks(2))
    assert (empty.remaining, empty.throughput, empty.target) == (0, (0, 0, 0, 0), None)
    judged, nothing = forecast_objectives([grow, empty], today=TODAY, rng=random.Random(5))
    assert judged.status in (ForecastStatus.ON_TRACK, ForecastStatus.AT_RISK)
    assert judged.forecast is not None and judged.forecast.p50 is not None
    assert nothing.status is ForecastStatus.NOTHING_REMAINING


def test_many_distinct_big_counts_match_trials_run_one_by_one() -> None:
    """A busy portfolio's weeks (hundreds done, no two weeks alike) spread the trials over
    thousands of running totals, where the simulation goes on a trial at a time: it must
    still agree with the obvious loop."""
    history = (281, 0, 297, 312, 268, 330, 0, 305, 276, 319, 290, 0, 301)
    rng = random.Random(11)
    naive = []
    for _ in range(20_000):
        done = buckets = 0
        while done < 3_000:
            done += rng.choice(history)
            buckets += 1
        naive.append(buckets)
    naive.sort()
    result = forecast(3_000, history, trials=20_000, seed=3)
    for percent, got in ((50, result.p50), (85, result.p85), (95, result.p95)):
        expected = weeks(naive[math.ceil(percent / 100 * len(naive)) - 1])
        assert got is not None
        assert abs((got - expected).days) <= 7, percent
    assert result.beyond_horizon == 0


def _trials_one_list_at_a_time(
    outcomes: list[int],
    first_bucket: int,
    totals: list[int],
    remaining: int,
    value_of: tuple[int, ...],
    draw: Callable[[int], Sequence[int]],
) -> None:
    """The list version of `_simulate_trials` it replaced: the oracle for the arrays."""
    for bucket in range(first_bucket, len(outcomes)):
        draws = draw(len(totals))
        moved = [done + value_of[drawn] for done, drawn in zip(totals, draws, strict=True)]
        totals = [done for done in moved if done < remaining]
        outcomes[bucket] = len(moved) - len(totals)
        if not totals:
            return


@pytest.mark.parametrize("buckets", [12, 300])  # drawn as bytes, and by random.choices
def test_trials_moved_as_arrays_end_exactly_as_moved_one_by_one(buckets: int) -> None:
    for seed in range(30):
        setup = random.Random(seed)
        history = [setup.choice([0, 0, *range(1, 400)]) for _ in range(buckets)]
        values = sorted(set(history) - {0})
        remaining = setup.randint(1, 5_000)
        totals = [setup.randint(0, remaining - 1) for _ in range(setup.randint(1, 3_000))]
        outcomes: dict[str, list[int]] = {}
        for name, simulate in (
            ("arrays", _simulate_trials),
            ("lists", _trials_one_list_at_a_time),
        ):
            draw = _drawer(history, values, random.Random(seed))
            outcomes[name] = [0] * 60
            simulate(outcomes[name], 1, list(totals), remaining, (0, *values), draw)
        assert outcomes["arrays"] == outcomes["lists"]
        assert sum(outcomes["arrays"]) > 0
