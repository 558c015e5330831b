"""Progress output: key=value log lines off a terminal, rich bars on one, and the sandbox
command's foreground servers."""

from __future__ import annotations

import io
import logging
import re
import threading
from datetime import UTC, datetime

import pytest
import requests
from rich.console import Console

from connectors.sandbox.cli import serve_sandboxes
from spm_sync.cli.progress_bars import RichProgress, make_progress
from spm_sync.pipeline.progress import PULL_LOG_EVERY, LogProgress, kv


def test_log_lines_are_key_value_pairs() -> None:
    line = kv(
        "pull.done",
        connection="jira cloud",
        items=3120,
        seconds=4.25,
        since=datetime(2026, 3, 2, 6, tzinfo=UTC),
        error=None,
        note='say "hi"',
    )
    assert line == (
        'event=pull.done connection="jira cloud" items=3120 seconds=4.25 '
        'since=2026-03-02T06:00:00+00:00 error=- note="say \\"hi\\""'
    )


def test_a_long_pull_logs_a_line_every_few_thousand_items(caplog: pytest.LogCaptureFixture) -> None:
    progress = LogProgress()
    with caplog.at_level(logging.INFO, logger="spm_sync.pipeline.cycle"):
        progress.pull_started("ado", None)
        for count in range(0, 3 * PULL_LOG_EVERY + 1, 500):
            progress.pulled("ado", count)
        progress.pull_finished("ado", items=3 * PULL_LOG_EVERY, error=None)
    messages = [record.getMessage() for record in caplog.records]
    assert messages[0] == "event=pull.start connection=ado sync=full since=-"
    assert messages[1:4] == [
        f"event=pull.progress connection=ado items={n * PULL_LOG_EVERY}" for n in (1, 2, 3)
    ]
    assert messages[-1] == f"event=pull.done connection=ado items={3 * PULL_LOG_EVERY} error=-"


def test_a_terminal_gets_progress_bars_and_a_pipe_gets_log_lines() -> None:
    terminal = Console(file=io.StringIO(), force_terminal=True, width=100)
    progress = make_progress(terminal)
    assert isinstance(progress, RichProgress)
    progress.stage("pull", run=7)
    progress.pull_started("jira", None)
    progress.pulled("jira", 1234)
    progress.pull_finished("jira", items=1234, error=None)
    progress.close()
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", terminal.file.getvalue())  # type: ignore[attr-defined]
    assert "jira" in shown and "1,234 items" in shown and "run=7" in shown

    piped = Console(file=io.StringIO(), force_terminal=False)
    assert type(make_progress(piped)) is LogProgress


def test_the_sandbox_command_serves_both_trackers_until_stopped() -> None:
    lines: list[str] = []
    stop = threading.Event()
    statuses: list[int] = []
    ready = threading.Event()

    def echo(line: str) -> None:
        lines.append(line)
        if line == "Ctrl-C stops.":
            ready.set()

    def serve() -> None:
        statuses.append(
            serve_sandboxes(
                host="127.0.0.1", jira_port=0, ado_port=0, items=150, seed=3, echo=echo, stop=stop
            )
        )

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        assert ready.wait(30)
        jira_url = lines[0].split()[-1]
        ado_url = next(line for line in lines if line.startswith("Azure DevOps")).split()[-1]
        auth = ("sandbox@example.com", "sandbox-token")
        info = requests.get(f"{jira_url}/rest/api/3/serverInfo", auth=auth, timeout=10)
        assert info.status_code == 200 and info.json()["deploymentType"] == "Cloud"
        fields = requests.get(
            f"{ado_url}/Portfolio/_apis/wit/fields?api-version=7.1",
            auth=("", "sandbox-pat"),
            timeout=10,
        )
        assert fields.status_code == 200
    finally:
        stop.set()
        thread.join(timeout=10)
    assert statuses == [0]
    assert "90 issues" in lines[2]
