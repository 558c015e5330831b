"""The report and its email tell the truth first: which run is "latest", what a dry-run undo
publishes (nothing), what the subject says about a partial run and about the change since the
last cycle, and that the WSJF table shows each tracker's rank order as it was written.

Cycles run end to end (store, alignment, scoring, planning, write-back, report) against the
in-memory trackers of `tests.cycle_fixtures`; every assertion reads rendered HTML, text or a
composed email.
"""

from __future__ import annotations

import re
from pathlib import Path

from reports.charts import run_ticks, trend_figure
from reports.email import compose_email
from reports.publish import LATEST
from reports.render import render_report, report_stem
from spm_sync.cli.commands import report_command, run_undo
from spm_sync.config.model import Config, WriteMode
from spm_sync.core.results import CycleResult
from spm_sync.pipeline.cycle import CycleDeps, CycleOutcome, run_cycle
from spm_sync.store import Store
from tests.cycle_fixtures import Clock, FakeConnector, FakeTracker, epic, fake_config, three_epics
from tests.report_fixtures import build_cycle_result


def _cycle(
    config: Config,
    store: Store,
    trackers: dict[str, FakeTracker],
    clock: Clock,
    *,
    mode: WriteMode = WriteMode.APPLY,
    failing: tuple[str, ...] = (),
) -> CycleOutcome:
    def connect(settings: object) -> FakeConnector:
        name = settings.name  # type: ignore[attr-defined]
        return FakeConnector(trackers[name], fail_pull_after=0 if name in failing else None)

    clock.advance(60 * 24)
    deps = CycleDeps(store, connector_factory=connect, clock=clock)  # type: ignore[arg-type]
    outcome = run_cycle(config, deps, mode=mode, send_email=False)
    assert outcome.result is not None
    return outcome


def _page(folder: Path, result: CycleResult) -> str:
    return (folder / f"{report_stem(result)}.html").read_text(encoding="utf-8")


def test_a_dry_run_undo_publishes_nothing_and_never_becomes_latest(tmp_path: Path) -> None:
    config = fake_config(tmp_path)
    reports = config.report.output_dir
    clock = Clock()
    trackers = {"alpha": FakeTracker("alpha", three_epics("alpha"), clock)}
    with Store.from_settings(config.store) as store:
        first = _cycle(config, store, trackers, clock)
        second = _cycle(config, store, trackers, clock, mode=WriteMode.PLAN)
        assert first.result is not None and second.result is not None
        latest = reports / LATEST
        assert latest.read_text(encoding="utf-8") == _page(reports, second.result)
        files_before = sorted(path.name for path in reports.iterdir())

        alpha = FakeConnector(trackers["alpha"])
        deps = CycleDeps(store, connector_factory=lambda s: alpha, clock=clock)  # type: ignore[arg-type,return-value]
        dry = run_undo(config, deps, run_id=int(first.result.run_id), mode=WriteMode.PLAN)
        assert dry.result is not None and dry.result.undoes == first.result.run_id
        assert dry.report is None
        assert sorted(path.name for path in reports.iterdir()) == files_before
        assert store.latest_cycle_with_result() == int(second.result.run_id)

    # A plain `report` renders the newest sync cycle, not the undo recorded after it.
    assert report_command(config, run_id=None, send=False) == 0
    assert latest.read_text(encoding="utf-8") == _page(reports, second.result)
    assert not any(name.startswith(report_stem(dry.result)) for name in _stems(reports))

    # Re-rendering an older run writes its files and leaves latest.html alone.
    assert report_command(config, run_id=int(first.result.run_id), send=False) == 0
    assert latest.read_text(encoding="utf-8") == _page(reports, second.result)

    # The undo's own report, when asked for, says what it is and claims no alignment.
    assert report_command(config, run_id=int(dry.run_id or 0), send=False) == 0
    undo_page = _page(reports, dry.result)
    text = re.sub(r"<[^>]+>", " ", undo_page)
    assert f"Undo of run {first.result.run_id}: a dry run, nothing was written" in text
    assert "Every item in scope moves a Key Result" not in text
    assert "In scope: 0 items" not in text
    assert "Write-back audit" in text
    assert latest.read_text(encoding="utf-8") == _page(reports, second.result)


def _stems(folder: Path) -> list[str]:
    return [path.name for path in folder.iterdir() if path.name != LATEST]


def test_the_subject_says_a_run_was_partial_and_what_changed(tmp_path: Path) -> None:
    config = fake_config(tmp_path, names=("alpha", "beta"))
    clock = Clock()
    trackers = {name: FakeTracker(name, three_epics(name), clock) for name in ("alpha", "beta")}
    with Store.from_settings(config.store) as store:
        first = _cycle(config, store, trackers, clock)
        second = _cycle(config, store, trackers, clock)
        # Two epics lose their Key Result label: two new orphans, alignment drops.
        trackers["alpha"].edit("E1", labels=())
        trackers["beta"].edit("E2", labels=())
        third = _cycle(config, store, trackers, clock)
        partial = _cycle(config, store, trackers, clock, failing=("beta",))

    subjects = [
        str(compose_email(render_report(o.result), None)["Subject"])  # type: ignore[arg-type]
        for o in (first, second, third, partial)
    ]
    assert subjects[0].endswith("(first run)")
    assert subjects[1].endswith(f"(no change since run {first.result.run_id})")  # type: ignore[union-attr]
    assert re.search(r"\(-\d+\.\d pts, 2 new orphans\)$", subjects[2]), subjects[2]
    assert len(set(subjects)) == 4
    assert partial.result is not None and partial.result.status == "partial"
    assert subjects[3].startswith("PARTIAL, beta failed, beta counted from its last pull: ")
    # Only alpha was read cleanly in both runs, so only its orphans are compared.
    assert partial.result.orphan_changes is not None
    assert partial.result.orphan_changes.compared == ["alpha"]


def test_the_wsjf_table_shows_each_tracker_in_its_written_order(tmp_path: Path) -> None:
    config = fake_config(tmp_path, names=("alpha", "beta"))
    clock = Clock()
    items = {
        "alpha": three_epics("alpha"),
        "beta": {
            key: epic("beta", key, bv=bv, tc=1, rr=1, size=1, rank=rank)
            for key, bv, rank in (("B1", 20, 1.0), ("B2", 1, 2.0), ("B3", 9, 3.0))
        },
    }
    trackers = {name: FakeTracker(name, found, clock) for name, found in items.items()}
    with Store.from_settings(config.store) as store:
        outcome = _cycle(config, store, trackers, clock)
    assert outcome.result is not None
    html = render_report(outcome.result).html
    section = html[html.index("WSJF ranking") :]
    groups = re.findall(r'data-ranking="([^"]+)"', section)
    ranks = re.findall(r'data-rank="([^"/]+)/(\d+)"', section)
    assert groups == ["alpha", "beta"]
    # Each tracker's rows in its own rank order, never interleaved with the other's.
    assert [c for c, _ in ranks] == ["alpha"] * 3 + ["beta"] * 3
    for connection in groups:
        assert [int(r) for c, r in ranks if c == connection] == [1, 2, 3]
    written = {
        (row.connection, row.key): row.new_rank for row in outcome.result.wsjf if row.scored
    }
    shown = re.findall(r'data-rank="[^"]+"[^>]*>.*?</td><td[^>]*>(?:<a[^>]*>)?([EB]\d)', section)
    assert [written[("alpha" if key[0] == "E" else "beta", key)] for key in shown] == [1, 2, 3] * 2
    assert shown[3:] == ["B1", "B3", "B2"]  # by WSJF: 22, 11, 3


def test_trend_ticks_are_the_runs_and_the_orphan_axis_is_labelled() -> None:
    result = build_cycle_result(trend_runs=1)
    first, second = result.trend[0], result.trend[-1]
    same_day = [first.model_copy(update={"finished": second.finished.replace(hour=2)}), second]
    figure = trend_figure(same_day)
    left, right = figure.axes
    labels = [tick.get_text() for tick in left.get_xticklabels()]
    assert len(labels) == 2 and len(set(labels)) == 2, labels
    assert all(label.startswith(f"{second.finished:%d %b}") for label in labels)
    assert right.get_ylabel() == "Orphan items"
    many = [result.trend[-1].finished.replace(day=day) for day in range(1, 29)]
    ticks, names = run_ticks(many)
    assert len(ticks) == 8 and ticks[-1] == many[-1] and len(set(names)) == 8
