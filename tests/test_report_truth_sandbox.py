"""Over HTTP, against the Jira Cloud and Azure DevOps sandboxes: the mailed subject of a run
where Jira fails says the run was partial and what its figures cover, and each night's subject
carries the change since the last run; `latest.html` stays the newest completed cycle's page.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.registry import default_connector_factory
from reports.publish import LATEST
from reports.render import report_stem
from spm_sync.config.model import WriteMode
from spm_sync.pipeline.cycle import CycleDeps, run_cycle
from spm_sync.store import Store
from tests.cycle_fixtures import sandbox_setup

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]


def test_a_night_with_jira_failing_is_mailed_as_partial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with sandbox_setup(tmp_path, size=300) as env:
        config = env.config()
        with Store.from_settings(config.store) as store:
            connect = default_connector_factory(discovery_cache_dir=None)
            deps = CycleDeps(store, connector_factory=connect)
            first = run_cycle(config, deps, mode=WriteMode.APPLY, send_email=True)
            second = run_cycle(config, deps, mode=WriteMode.PLAN, send_email=True)
            monkeypatch.setenv("SPM_SYNC_DEMO_JIRA_TOKEN", "revoked")  # Jira answers 401
            failing = run_cycle(config, deps, mode=WriteMode.PLAN, send_email=True)
        subjects = [str(message["Subject"]) for message in env.mailbox.messages]

    assert first.result is not None and second.result is not None
    assert failing.result is not None and failing.result.status == "partial"
    assert failing.exit_status == 1
    assert len(subjects) == 3
    assert subjects[0].endswith("(first run)")
    assert subjects[1].endswith(f"(no change since run {first.run_id})")
    assert subjects[2].startswith("PARTIAL, jira failed, jira counted from its last pull: ")
    # A partial cycle is still the newest completed one: its page is the latest.
    reports = config.report.output_dir
    page = (reports / f"{report_stem(failing.result)}.html").read_text(encoding="utf-8")
    assert (reports / LATEST).read_text(encoding="utf-8") == page
    assert "PARTIAL, jira failed" in page
