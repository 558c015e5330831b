"""What `spm-sync run` says when its surroundings fail: one line at default verbosity (the
traceback only with -v), exit status 2 for a setup problem, 1 for a run that failed, 3 for a
run skipped because the store or every connection is busy, and nothing already stored lost.

Real processes against the sandbox trackers where the failure needs a running cycle: the
PostgreSQL server going away mid-run (through a TCP proxy the test cuts), the report folder
under a path that is a file."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import create_engine, text

from connectors.sandbox.server import Faults
from spm_sync.cli.commands import run_command
from spm_sync.config.model import load_config
from spm_sync.core import exit_codes
from spm_sync.store import RunStatus, Store
from spm_sync.store.engine import normalize_url
from tests.cycle_fixtures import fake_config, sandbox_setup

REPO = Path(__file__).resolve().parent.parent


def spm_sync(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(REPO), "SPM_TEST_FAKE_PAT": "pat"}
    return subprocess.run(
        [sys.executable, "-m", "spm_sync", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def error_lines(process: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in (process.stdout + process.stderr).splitlines() if line.strip()]


def set_in_config(path: Path, section: str, key: str, value: object) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data.setdefault(section, {})[key] = value
    path.write_text(yaml.safe_dump(data), encoding="utf-8")


# -- the store is newer than this spm-sync ---------------------------------------------------


def test_a_store_at_an_unknown_newer_revision_is_refused_in_one_line(tmp_path: Path) -> None:
    config = fake_config(tmp_path)
    Store.from_settings(config.store).close()
    engine = create_engine(normalize_url(config.store.url))
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0042'"))
    engine.dispose()

    for command in (["run", "--no-email"], ["serve", "--every", "60"], ["report"]):
        process = spm_sync(*command, "-c", str(config.source))
        assert process.returncode == exit_codes.CANNOT_START, process.stderr
        shown = "\n".join(error_lines(process))
        assert "the store was written by a newer spm-sync (revision 0042" in shown, shown
        assert "Traceback" not in shown
    engine = create_engine(normalize_url(config.store.url))
    with engine.connect() as connection:  # left exactly as it was
        assert (
            connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0042"
        )
        assert connection.execute(text("SELECT count(*) FROM runs")).scalar() == 0
    engine.dispose()


# -- skipped runs still write their --json file ----------------------------------------------


def test_a_run_on_a_busy_sqlite_store_writes_a_skipped_json(tmp_path: Path) -> None:
    config = fake_config(tmp_path)
    out = tmp_path / "result.json"
    with Store.from_settings(config.store) as other, other.cycle_lock():
        status = run_command(config, mode=None, send_email=False, json_path=out)
    assert status == exit_codes.BUSY == 3
    document = json.loads(out.read_text(encoding="utf-8"))
    assert (document["status"], document["run_id"], document["exit_status"]) == ("skipped", None, 3)
    assert document["reason"].startswith("store busy: another spm-sync is running a cycle on")


@pytest.mark.postgres
def test_a_run_finding_every_connection_busy_writes_a_skipped_json(
    tmp_path: Path, pg_url: str
) -> None:
    config = fake_config(tmp_path, ("alpha", "beta"))
    set_in_config(config.source, "store", "url", pg_url)  # type: ignore[arg-type]
    config = load_config(config.source)  # type: ignore[arg-type]
    out = tmp_path / "result.json"
    with (
        Store.from_settings(config.store) as other,
        other.advisory_lock("sync:alpha"),
        other.advisory_lock("sync:beta"),
    ):
        status = run_command(config, mode=None, send_email=False, json_path=out)
    assert status == exit_codes.BUSY
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["status"] == "skipped"
    assert document["reason"] == "every connection is being synced by another worker"
    with Store.from_settings(config.store) as store:
        assert store.last_runs(5) == []


# -- the report folder cannot be created -----------------------------------------------------


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_report_folder_under_a_file_fails_the_run_in_one_line_and_keeps_the_run(
    tmp_path: Path,
) -> None:
    with sandbox_setup(tmp_path, size=120, seed=4) as env:
        blocker = tmp_path / "not-a-folder"
        blocker.write_text("a file where the report folder's parent should be\n")
        set_in_config(env.config_path, "report", "output_dir", str(blocker / "reports"))
        process = spm_sync("run", "-c", str(env.config_path), "--plan", "--no-email")
        assert process.returncode == exit_codes.FAILED, process.stdout + process.stderr
        assert "Traceback" not in process.stderr
        problems = [line for line in process.stderr.splitlines() if " ERROR " in line]
        assert len(problems) == 1 and "event=report.failed" in problems[0], process.stderr
        # A problem is a diagnostic: stderr, beside the log lines; stdout keeps the tables.
        assert "report: not written: NotADirectoryError" in process.stderr
        with Store.from_settings(env.config().store) as store:
            (run,) = store.last_runs(5)
            assert run.status is RunStatus.PARTIAL and run.result is not None
        # The same again with -v: now with the traceback.
        verbose = spm_sync("-v", "report", "-c", str(env.config_path), "--run", str(run.id))
        assert verbose.returncode == exit_codes.FAILED
        assert "Traceback" in verbose.stderr and "not written" in verbose.stderr
        quiet = spm_sync("report", "-c", str(env.config_path), "--run", str(run.id))
        assert quiet.returncode == exit_codes.FAILED and "Traceback" not in quiet.stderr
        # Nothing was lost: with the folder fixed, the stored run renders.
        set_in_config(env.config_path, "report", "output_dir", str(tmp_path / "reports"))
        fixed = spm_sync("report", "-c", str(env.config_path), "--run", str(run.id))
        assert fixed.returncode == 0, fixed.stdout + fixed.stderr
        assert list((tmp_path / "reports").glob("*.html"))


# -- PostgreSQL goes away mid-run ------------------------------------------------------------


class CuttableProxy:
    """A TCP proxy to PostgreSQL that can be cut: every connection through it is closed and
    new ones are refused, as when the database server goes away."""

    def __init__(self, target: tuple[str, int] = ("127.0.0.1", 5432)) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.listener.close()
        with self.lock:
            for end in self.sockets:
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()


def written_rows(pg_url: str) -> int:
    engine = create_engine(normalize_url(pg_url))
    try:
        with engine.connect() as connection:
            found = connection.execute(
                text("SELECT count(*) FROM writes WHERE status = 'written'")
            ).scalar()
            return int(found or 0)
    except Exception:  # not migrated yet
        return 0
    finally:
        engine.dispose()


@contextlib.contextmanager
def applying_run(env: Any, pg_url: str) -> Iterator[subprocess.Popen[str]]:
    """`spm-sync run --apply` in a subprocess against trackers slowed so that its write-back
    takes a few seconds, handed over once it has written 5 audit rows; killed on the way out
    if it is still running."""
    slow = Faults(latency_ms=150)
    env.jira.set_faults(slow)
    env.ado.set_faults(slow)
    process = subprocess.Popen(
        [sys.executable, "-m", "spm_sync", "run", "-c", str(env.config_path), "--apply"],
        env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while written_rows(pg_url) < 5:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the write-back never started"
            time.sleep(0.05)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.postgres
@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_postgres_going_away_mid_run_is_one_line_and_loses_nothing_stored(
    tmp_path: Path, pg_url: str
) -> None:
    proxy = CuttableProxy()
    via_proxy = pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    with sandbox_setup(tmp_path, size=200, seed=6, store_url=via_proxy) as env:
        with applying_run(env, pg_url) as process:
            proxy.cut()
            out, err = process.communicate(timeout=120)
        assert process.returncode == exit_codes.FAILED, out + err
        assert "Traceback" not in err and "Traceback" not in out
        failure = [line for line in err.splitlines() if line.startswith("✗ the store failed")]
        assert len(failure) == 1 and "OperationalError" in failure[0], err
        assert not env.mailbox.messages

        # Everything stored before the cut is there; the next run closes the cut one and
        # writes only what is still missing.
        set_in_config(env.config_path, "store", "url", pg_url)
        kept = written_rows(pg_url)
        assert kept >= 5
        again = spm_sync("run", "-c", str(env.config_path), "--apply", "--no-email")
        assert again.returncode == 0, again.stdout + again.stderr
        with Store(pg_url) as store:
            first, second = sorted(store.last_runs(5), key=lambda run: run.id)
            assert first.status is RunStatus.FAILED and first.error is not None
            assert second.status is RunStatus.SUCCEEDED
            assert len(store.audit_rows(first.id, status="written")) == kept
            assert store.count_items() == 200


@pytest.mark.postgres
@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_terminated_postgres_sessions_mid_run_lose_nothing_and_print_no_traceback(
    tmp_path: Path, pg_url: str
) -> None:
    """`pg_terminate_backend` on every session of the run (an administrator, a failover):
    the pool reconnects where it can, a lock whose session is gone is not an error at its
    release, and either the run ends ok or it fails in one line; what it stored stays."""
    application = f"spm-sync-victim-{os.getpid()}"
    victim_url = f"{pg_url}&application_name={application}"
    with sandbox_setup(tmp_path, size=200, seed=6, store_url=victim_url) as env:
        with applying_run(env, pg_url) as process:
            killer = create_engine(normalize_url(pg_url))
            with killer.begin() as connection:
                terminated = connection.execute(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE application_name = :name"
                    ),
                    {"name": application},
                ).scalar()
            killer.dispose()
            assert terminated
            out, err = process.communicate(timeout=120)
        assert process.returncode in (exit_codes.OK, exit_codes.FAILED), out + err
        assert "Traceback" not in err and "Traceback" not in out
        if process.returncode == exit_codes.FAILED:
            assert len([line for line in err.splitlines() if line.startswith("✗")]) == 1, err
        kept = written_rows(pg_url)
        assert kept >= 5
        again = spm_sync("run", "-c", str(env.config_path), "--apply", "--no-email")
        assert again.returncode == 0, again.stdout + again.stderr
        with Store(pg_url) as store:
            first = min(store.last_runs(5), key=lambda run: run.id)
            assert len(store.audit_rows(first.id, status="written")) == kept
            assert store.unfinished_runs() == [] and store.count_items() == 200
