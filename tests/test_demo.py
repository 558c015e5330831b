"""`spm-sync demo`: sandboxes, a full cycle applied, a second incremental one with nothing left
to write, report files and the captured email."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from spm_sync.cli.main import main
from spm_sync.store import RunStatus, Store

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(180)]


def test_demo_runs_two_cycles_and_leaves_the_report_and_the_email(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "--items", "500", "--out", str(out)])
    assert result.exit_code == 0, result.output

    reports = out / "reports"
    assert (reports / "latest.html").exists()
    htmls = sorted(reports.glob("alignment-*-2.html"))
    assert htmls and htmls[0].with_suffix(".txt").exists()
    eml = htmls[0].with_suffix(".eml")
    assert eml.exists() and b"Content-Type: multipart/alternative" in eml.read_bytes()
    assert "second cycle: incremental pull, 0 writes planned" in result.output
    assert "emails captured: 1" in result.output
    assert str(htmls[0]) in result.output.replace("\n", "")

    with Store(f"sqlite:///{out / 'spm-sync.db'}") as store:
        first, second = sorted(store.last_runs(5), key=lambda run: run.id)
        assert (first.status, second.status) == (RunStatus.SUCCEEDED, RunStatus.SUCCEEDED)
        assert {first.trigger, second.trigger} == {"demo"}
        written = store.audit_rows(first.id, status="written")
        assert len(written) > 50 and len(store.audit_rows(first.id)) == len(written)
        assert store.audit_rows(second.id) == []
        stats = {s.connection: s for s in store.sync_stats(second.id)}
        assert set(stats) == {"jira", "azure-devops"}
        assert all(s.since is not None and s.pulled < 200 for s in stats.values())

    # The demo starts afresh every time, over the same folder.
    again = CliRunner().invoke(main, ["demo", "--items", "200", "--out", str(out)])
    assert again.exit_code == 0, again.output
