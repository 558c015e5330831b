"""When will an objective's open epics be done? A Monte Carlo forecast from its throughput.

Each trial replays history: it draws past buckets' throughput (items done per week, or per
day) at random, with replacement, until the remaining items are done; the number of buckets it
took is the trial's outcome. The dates at 50/85/95% are nearest-rank percentiles of the
outcomes, counted from `today`; a trial ending in bucket b ends on `today + b · bucket_days`
(the end of that bucket, never earlier).

Speed: 200 objectives × 10,000 trials is tens of millions of draws, far too many for a Python
loop per draw or per trial. Two things make it cheap:
- Draws come in bulk: `randbytes` gives random bytes at C speed and `bytes.translate` turns each
  byte into the class of a past bucket's count (each of the m buckets owns ⌊256/m⌋ byte values;
  the few left over are deleted, which keeps every bucket equally likely). A class is the
  count's place among the distinct counts, so a busy portfolio's 300 items in a week draws as
  fast as a team's 3. Only more than 256 buckets (daily buckets over most of a year) fall back
  to `random.choices` (same distribution, slower).
- Trials are simulated as a population, by counts: all trials with the same number of items
  done are interchangeable, so each bucket the simulation only counts how many of their fresh
  draws took each value (`bytes.count`). The work per bucket grows with the number of distinct
  running totals, not with the number of trials, and the result is distributed exactly as if
  each trial had been run on its own.
  Many distinct large counts (a portfolio finishing 280, 295, 310 … epics a week) spread the
  trials over nearly as many running totals; the simulation then goes on a trial at a time,
  which is cheaper past that point (see `_COUNTS_PER_TRIAL`).

The generator is passed in, so a seeded `random.Random` makes every forecast repeatable; it is
used in the order of the inputs.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

import numpy as np

from spm_sync.core.domain import ItemRef
from spm_sync.engines.flow.facts import ItemFlow
from spm_sync.engines.flow.metrics import throughput

DEFAULT_TRIALS = 10_000
DEFAULT_HORIZON_DAYS = 3650
"""Trials that take longer than this (ten years) stop there and count as "beyond the horizon":
a very slow history would otherwise make one forecast draw without end."""


@dataclass(frozen=True, slots=True)
class CompletionForecast:
    """Dates by which the remaining items are done with 50/85/95% likelihood; a date is None
    when fewer trials than that finish within the horizon (`beyond_horizon` counts those)."""

    remaining: int
    trials: int
    p50: date | None
    p85: date | None
    p95: date | None
    beyond_horizon: int = 0


def forecast_completion(
    remaining: int,
    throughput: Sequence[int],
    *,
    today: date,
    rng: random.Random,
    trials: int = DEFAULT_TRIALS,
    bucket_days: int = 7,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
) -> CompletionForecast | None:
    """Forecast from past throughput per bucket (`bucket_days` long each); None when there is
    no history to draw from (no buckets, or nothing was ever done in them)."""
    if remaining < 0 or trials <= 0 or bucket_days <= 0:
        raise ValueError("remaining must be >= 0, trials and bucket_days > 0")
    if any(count < 0 for count in throughput):
        raise ValueError("throughput counts cannot be negative")
    if remaining == 0:
        return CompletionForecast(0, trials, today, today, today)
    if not any(throughput):
        return None
    max_buckets = max(1, horizon_days // bucket_days)
    outcomes = _simulate(remaining, throughput, rng, trials, max_buckets)
    finished = sum(outcomes)
    p50, p85, p95 = (
        _date_at(outcomes, trials, percent, today, bucket_days) for percent in (50, 85, 95)
    )
    return CompletionForecast(remaining, trials, p50, p85, p95, trials - finished)


def _date_at(
    outcomes: list[int], trials: int, percent: int, today: date, bucket_days: int
) -> date | None:
    """Nearest-rank percentile of the outcomes, from their histogram."""
    rank = max(1, math.ceil(percent / 100 * trials))
    seen = 0
    for buckets, count in enumerate(outcomes):
        seen += count
        if seen >= rank:
            return today + timedelta(days=buckets * bucket_days)
    return None


def _simulate(
    remaining: int, throughput: Sequence[int], rng: random.Random, trials: int, max_buckets: int
) -> list[int]:
    """Histogram of trial outcomes: `outcomes[b]` trials needed b buckets (b ≥ 1).

    The trials are simulated as a population: `running[s]` trials have s items done. Each
    bucket, every running trial gets its own fresh draw; trials with the same s are
    interchangeable, so the first `running[s0]` draws go to those at s0, the next ones to s1,
    and only how many of each value landed there matters (`bytes.count` over that range).
    """
    values = sorted(set(throughput) - {0})  # a zero moves nothing: whoever drew it stays
    draw = _drawer(throughput, values, rng)
    classes = tuple(enumerate(values, start=1))
    outcomes = [0] * (max_buckets + 1)
    running: dict[int, int] = {0: trials}
    for bucket in range(1, max_buckets + 1):
        in_play = sum(running.values())
        if len(running) * len(classes) > in_play // _COUNTS_PER_TRIAL:
            # Many distinct large counts spread the trials over as many running totals:
            # counting per total would now cost more than moving each trial.
            totals = [done for done, count in running.items() for _ in range(count)]
            _simulate_trials(outcomes, bucket, totals, remaining, (0, *values), draw)
            return outcomes
        draws = draw(in_play)
        count_in = draws.count if isinstance(draws, bytes) else _list_count(draws)
        after: dict[int, int] = {}
        finished = 0
        pos = 0
        for done, count in running.items():
            end = pos + count
            stay = count
            for drawn, value in classes:
                landed = count_in(drawn, pos, end)
                if landed:
                    stay -= landed
                    total = done + value
                    if total >= remaining:
                        finished += landed
                    else:
                        after[total] = after.get(total, 0) + landed
            if stay:
                after[done] = after.get(done, 0) + stay
            pos = end
        outcomes[bucket] = finished
        running = after
        if not running:
            break
    return outcomes


_COUNTS_PER_TRIAL = 4
"""A `bytes.count` over a range costs about what moving four trials one by one does."""


def _simulate_trials(
    outcomes: list[int],
    first_bucket: int,
    totals: list[int],
    remaining: int,
    value_of: Sequence[int],
    draw: Callable[[int], Sequence[int]],
) -> None:
    """The rest of the simulation a trial at a time (`totals`: each running trial's items
    done), filling `outcomes` from `first_bucket` on. Each bucket is one pass of array
    operations over the running trials, which keep their order (the next bucket's draws go
    to them in it); the draws are the same classes the population would have counted."""
    values = np.array(value_of, np.int64)
    running = np.array(totals, np.int64)
    for bucket in range(first_bucket, len(outcomes)):
        draws = draw(len(running))
        classes = np.frombuffer(draws, np.uint8) if isinstance(draws, bytes) else np.array(draws)
        moved = running + values[classes]
        going_on = moved < remaining
        running = moved[going_on]
        outcomes[bucket] = len(moved) - len(running)
        if not len(running):
            return


def _list_count(draws: Sequence[int]) -> Callable[[int, int, int], int]:
    """`bytes.count(value, start, end)` for draws held in a list (the slow path)."""
    return lambda value, start, end: draws[start:end].count(value)


def _drawer(
    throughput: Sequence[int], values: Sequence[int], rng: random.Random
) -> Callable[[int], Sequence[int]]:
    """A function giving n random draws from `throughput` (uniform over its buckets), each as
    its class: 1 + the count's index in `values` (the distinct non-zero counts), 0 for zero."""
    class_of = {value: drawn for drawn, value in enumerate(values, start=1)}
    classes = [class_of.get(count, 0) for count in throughput]
    buckets = len(throughput)
    if buckets > 256:
        return lambda n: rng.choices(classes, k=n)
    share = 256 // buckets
    usable = buckets * share
    table = bytes(classes[b % buckets] if b < usable else 0 for b in range(256))
    leftover = bytes(range(usable, 256))

    def draw(n: int) -> bytes:
        parts: list[bytes] = []
        have = 0
        while have < n:
            # Over-ask by the expected share of deleted bytes, so one round nearly always does.
            wanted = (n - have) * 256 // usable + 16
            part = rng.randbytes(wanted).translate(table, leftover)
            parts.append(part)
            have += len(part)
        return b"".join(parts)[:n]

    return draw


class ForecastStatus(StrEnum):
    """How an objective stands: its 85% date against its target, or why there is none."""

    ON_TRACK = "on track"
    AT_RISK = "at risk"
    NO_TARGET = "no target"
    NO_HISTORY = "no throughput history"
    NOTHING_REMAINING = "nothing remaining"


@dataclass(frozen=True, slots=True)
class ObjectiveOutlook:
    """What the forecast needs for one objective: its open epics and their past throughput
    (epics of the objective done per bucket, oldest first, e.g. from `metrics.throughput`)."""

    objective_id: str
    remaining: int
    throughput: tuple[int, ...]
    target: date | None = None
    bucket_days: int = 7


@dataclass(frozen=True, slots=True)
class ObjectiveForecast:
    """An objective's forecast against its target; `reason` is a sentence for the report."""

    objective_id: str
    status: ForecastStatus
    reason: str
    forecast: CompletionForecast | None
    target: date | None

    @property
    def at_risk(self) -> bool:
        return self.status is ForecastStatus.AT_RISK


def outlooks_from_flows(
    flows: Mapping[ItemRef, ItemFlow],
    groups: Mapping[str, Iterable[ItemRef]],
    targets: Mapping[str, date],
    *,
    now: datetime,
    window_days: int,
    bucket_days: int = 7,
) -> list[ObjectiveOutlook]:
    """Each objective's open items and their throughput over the window, from its items' flow
    facts (`groups`: objective id → refs of its epics, as alignment found them). Done items
    whose done time is unknown are neither open nor throughput."""
    outlooks = []
    for objective_id, refs in groups.items():
        members = [f for f in map(flows.get, dict.fromkeys(refs)) if f is not None]
        done_times = [f.done for f in members if f.done is not None]
        outlooks.append(
            ObjectiveOutlook(
                objective_id,
                remaining=sum(1 for f in members if not f.is_done),
                throughput=throughput(done_times, now, window_days, bucket_days),
                target=targets.get(objective_id),
                bucket_days=bucket_days,
            )
        )
    return outlooks


def forecast_objectives(
    outlooks: Iterable[ObjectiveOutlook],
    *,
    today: date,
    rng: random.Random,
    trials: int = DEFAULT_TRIALS,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
) -> tuple[ObjectiveForecast, ...]:
    """Forecast each objective and compare its 85% date with its target: later is at risk."""
    result = []
    for outlook in outlooks:
        if outlook.remaining == 0:
            result.append(_judged(outlook, ForecastStatus.NOTHING_REMAINING, "no open epics"))
            continue
        forecast = forecast_completion(
            outlook.remaining,
            outlook.throughput,
            today=today,
            rng=rng,
            trials=trials,
            bucket_days=outlook.bucket_days,
            horizon_days=horizon_days,
        )
        if forecast is None:
            days = len(outlook.throughput) * outlook.bucket_days
            span = f"{days // 7} weeks" if days % 7 == 0 else f"{days} days"
            reason = f"no epic of this objective was done in the last {span}"
            result.append(_judged(outlook, ForecastStatus.NO_HISTORY, reason))
            continue
        result.append(_against_target(outlook, forecast, horizon_days))
    return tuple(result)


def _judged(
    outlook: ObjectiveOutlook,
    status: ForecastStatus,
    reason: str,
    forecast: CompletionForecast | None = None,
) -> ObjectiveForecast:
    return ObjectiveForecast(outlook.objective_id, status, reason, forecast, outlook.target)


def _against_target(
    outlook: ObjectiveOutlook, forecast: CompletionForecast, horizon_days: int
) -> ObjectiveForecast:
    n = f"{outlook.remaining} open epic" + ("" if outlook.remaining == 1 else "s")
    if forecast.p85 is None:
        years = horizon_days / 365
        span = "a year" if years == 1 else f"{years:g} years"
        verb = "is" if outlook.remaining == 1 else "are"
        reason = f"at this throughput, {n} {verb} not done within {span}"
        status = ForecastStatus.AT_RISK if outlook.target else ForecastStatus.NO_TARGET
        return _judged(outlook, status, reason, forecast)
    likely = f"{n} 85% likely done by {forecast.p85.isoformat()}"
    if outlook.target is None:
        return _judged(outlook, ForecastStatus.NO_TARGET, f"{likely}; no target date", forecast)
    if forecast.p85 > outlook.target:
        reason = f"{likely}, after the target {outlook.target.isoformat()}"
        return _judged(outlook, ForecastStatus.AT_RISK, reason, forecast)
    reason = f"{likely}, by the target {outlook.target.isoformat()}"
    return _judged(outlook, ForecastStatus.ON_TRACK, reason, forecast)
