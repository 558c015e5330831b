"""Command-line conventions, the same for every command: results on stdout and diagnostics on
stderr, `-v`/`-q` before or after the command, `--version`, `--json -`, a reader that closes
the pipe early, `check --online` writing nothing, warnings never shown as passed, and the
report command's write counts (the whole audit log only with --audit)."""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from rich.console import Console

from spm_sync.cli.main import main
from spm_sync.cli.online_check import head_revision, known_revisions, store_checks
from spm_sync.cli.summary import _show, connections_table, headline_table
from spm_sync.core.checks import CheckLine
from spm_sync.core.results import CycleResult
from tests.cycle_fixtures import SandboxSetup, fake_config, sandbox_setup
from tests.test_cli import EXAMPLE, GOOD, write_config

REPO = Path(__file__).resolve().parent.parent
LONG_DECIMALS = re.compile(r"\d\.\d{5,}")


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), prog_name="spm-sync")


@pytest.fixture
def secrets_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("JIRA_USER", "JIRA_TOKEN", "ADO_PAT", "SMTP_USER", "SMTP_PASSWORD"):
        monkeypatch.setenv(name, f"value-of-{name.lower()}")
    monkeypatch.setenv("SPM_TEST_ADO_PAT", "value")


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SandboxSetup, Result]]:
    """One applied cycle on the sandboxes, its result asked for on stdout (`--json -`)."""
    folder = tmp_path_factory.mktemp("ran")
    with sandbox_setup(folder, size=200) as env:
        result = invoke("run", "-c", str(env.config_path), "--apply", "--no-email", "--json", "-")
        yield env, result


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert re.fullmatch(r"spm-sync \d+\.\d+\.\d+\S*\n", result.stdout)


def test_no_help_line_is_cut_off() -> None:
    result = invoke("--help")
    commands = result.stdout.split("Commands:")[1].split("Exit status")[0]
    lines = [line.strip() for line in commands.splitlines() if line.strip()]
    assert len(lines) == 7
    assert all(line.endswith(".") and not line.endswith("...") for line in lines), lines


def test_verbosity_options_work_before_and_after_the_command(
    tmp_path: Path, secrets_set: None
) -> None:
    path = str(write_config(tmp_path, GOOD))
    for args in (["-v", "check", "-c", path], ["check", "-c", path, "-v"], ["check", "-vv"]):
        if "-c" not in args:
            args = [*args, "-c", path]
        result = invoke(*args)
        assert result.exit_code == 0, (args, result.output)
        assert result.stdout.startswith("✓ config ")
    for args in (["-q", "check", "-c", path], ["check", "-c", path, "--quiet"]):
        result = invoke(*args)
        assert result.exit_code == 0
        assert result.stdout == ""  # every check passed: nothing to say
    # The level is the sum of both places: -v before and -v after the command are -vv.
    root = logging.getLogger()
    saved = root.level
    try:
        for args, level in (
            (["check", "-c", path, "-v"], logging.INFO),
            (["-v", "check", "-c", path, "-v"], logging.DEBUG),
            (["check", "-c", path], logging.WARNING),
            (["check", "-c", path, "-q"], logging.ERROR),
        ):
            assert invoke(*args).exit_code == 0
            assert root.level == level, args
    finally:
        root.setLevel(saved)


def test_quiet_check_prints_only_failures(
    secrets_set: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JIRA_TOKEN")
    result = invoke("check", "-c", str(EXAMPLE), "-q")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "✗ JIRA_TOKEN is not set (connections[0].auth.token_env) (fix: export JIRA_TOKEN=... "
        "in the environment spm-sync runs in)"
    ]


def test_a_warning_is_never_marked_as_passed() -> None:
    assert CheckLine(True, "fields resolve (a text field)", warning=True).render() == (
        "! fields resolve (a text field)"
    )
    assert CheckLine(True, "x", "do y", warning=True).render() == "! x (fix: do y)"
    assert CheckLine(True, "x", "do y").render() == "✓ x"
    assert CheckLine(False, "x", "do y").render() == "✗ x (fix: do y)"


def test_failures_go_to_stderr_and_results_stay_clean(tmp_path: Path) -> None:
    config = fake_config(tmp_path)
    assert config.source is not None
    result = invoke("report", "-c", str(config.source))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("✗ the store has no ")
    assert len(result.stderr.splitlines()) == 1


def test_a_long_failure_is_one_whole_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    config = fake_config(tmp_path, store={"url": f"sqlite:///{blocker / 'sub' / 'spm.db'}"})
    assert config.source is not None
    result = CliRunner(env={"SPM_TEST_FAKE_PAT": "x", "COLUMNS": "40"}).invoke(
        main, ["run", "-c", str(config.source), "--no-email"]
    )
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("✗ cannot open the store "), result.stderr
    assert len(lines[0]) > 40


def test_tables_fold_instead_of_cutting_words_off(ran: tuple[SandboxSetup, Result]) -> None:
    _, run = ran
    result = CycleResult.model_validate_json(run.stdout)
    with open(os.devnull, "w", encoding="utf-8") as sink:
        console = Console(width=50, record=True, file=sink)
        console.print(connections_table(result))
        console.print(headline_table(result))
    text = console.export_text()
    assert "…" not in text
    assert "key results" in text  # long labels wrap at word boundaries


def test_ranks_print_as_people_read_them() -> None:
    assert _show(15666.666666666666) == "15666.6667"
    assert _show(2000.0) == "2000"
    assert _show(0.5) == "0.5"
    assert _show(("a", 1.25)) == "a, 1.25"


def test_json_dash_writes_the_result_to_stdout(ran: tuple[SandboxSetup, Result]) -> None:
    env, result = ran
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)  # stdout is the JSON document and nothing else
    assert document["run_id"] == "1" and document["status"] == "ok"
    assert "Run 1: ok (apply mode)" in result.stderr  # the tables went to stderr
    assert env.jira.writes and env.ado.writes


def test_report_summarises_writes_and_shows_the_log_on_request(
    ran: tuple[SandboxSetup, Result],
) -> None:
    env, _ = ran
    written = len(env.jira.writes) + len(env.ado.writes)
    summary = invoke("report", "-c", str(env.config_path), "--run", "1")
    assert summary.exit_code == 0, summary.output
    assert "Writes of run 1" in summary.stdout
    assert "full audit log: spm-sync report --run 1 --audit" in summary.stdout
    assert len(summary.stdout.splitlines()) < 25 < written
    rows = [line for line in summary.stdout.splitlines() if "│ jira " in line or "│ azure" in line]
    assert rows and all("written" not in row for row in rows)  # counts, not one line a write

    full = invoke("report", "-c", str(env.config_path), "--run", "1", "--audit")
    assert full.exit_code == 0
    assert "Audit log of run 1" in full.stdout
    assert len(full.stdout.splitlines()) > written
    assert "rank" in full.stdout
    assert not LONG_DECIMALS.search(full.stdout), LONG_DECIMALS.findall(full.stdout)[:3]


def test_a_reader_that_closes_the_pipe_is_not_an_error(
    ran: tuple[SandboxSetup, Result], secrets_set: None
) -> None:
    env, _ = ran
    commands = [
        ["check", "-c", str(EXAMPLE)],
        ["report", "-c", str(env.config_path), "--run", "1", "--audit"],
        # `spm-sync run | head`: -q leaves out the progress lines (stderr stays empty), the
        # JSON result is still written to the closed pipe.
        ["run", "-c", str(env.config_path), "--plan", "--no-email", "-q", "--json", "-"],
    ]
    for command in commands:
        read, write = os.pipe()
        process = subprocess.Popen(
            [sys.executable, "-m", "spm_sync", *command],
            stdout=write,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        os.close(write)
        os.close(read)  # the reader is gone before the first line is written
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, (command, stderr.decode())
        assert stderr.decode() == "", command


def test_check_online_creates_no_store(tmp_path: Path) -> None:
    store = tmp_path / "new" / "spm-sync.db"
    with sandbox_setup(tmp_path, size=100, store_url=f"sqlite:///{store}") as env:
        result = invoke("check", "-c", str(env.config_path), "--online")
    assert f"✓ store sqlite:///{store} does not exist yet: the first run creates it" in (
        result.stdout.splitlines()
    ), result.stdout
    assert not store.exists() and not store.parent.exists()


def test_check_online_reads_an_existing_store_without_changing_it(
    ran: tuple[SandboxSetup, Result],
) -> None:
    env, _ = ran
    database = Path(env.config().store.url.removeprefix("sqlite:///"))
    before = database.read_bytes()
    result = invoke("check", "-c", str(env.config_path), "--online")
    assert f"✓ store sqlite:///{database} is reachable (schema revision {head_revision()})" in (
        result.stdout.splitlines()
    ), result.stdout
    assert database.read_bytes() == before


@pytest.mark.parametrize(
    ("revision", "expected"),
    [
        ("older", "! store sqlite:///{db} is reachable (schema revision {rev}; the next run "
         "upgrades it to {head})"),
        ("ffffffffffff", "✗ store sqlite:///{db} was written by a newer spm-sync (schema "
         "revision ffffffffffff) (fix: upgrade spm-sync, or point store.url at another "
         "database)"),
    ],
)  # fmt: skip
def test_check_online_says_what_the_next_run_does_to_the_schema(
    tmp_path: Path, revision: str, expected: str
) -> None:
    older = sorted(known_revisions() - {head_revision()})[0]
    revision = older if revision == "older" else revision
    database = tmp_path / "old.db"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        connection.execute("INSERT INTO alembic_version VALUES (?)", (revision,))
    connection.close()
    config = fake_config(tmp_path, store={"url": f"sqlite:///{database}"})
    (line,) = store_checks(config)
    assert line.render() == expected.format(db=database, rev=revision, head=head_revision())
    with sqlite3.connect(database) as connection:  # not migrated
        assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (revision,)
        ]
    connection.close()
