"""Two real `spm-sync serve` workers on one PostgreSQL store (own schema), against the sandbox
trackers and an SMTP capture server: every slot runs once, with one run row and one report
email, whichever worker fires it first and however the two are timed."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from spm_sync.store import RunStatus, Store
from tests.cycle_fixtures import sandbox_setup

pytestmark = [pytest.mark.postgres, pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent
EVERY_SECONDS = 5
SLOTS = 3


@pytest.mark.timeout(240)
def test_two_serve_workers_run_each_slot_once_with_one_email(tmp_path: Path, pg_url: str) -> None:
    with sandbox_setup(tmp_path, size=120, seed=11, store_url=pg_url) as env:
        command = [sys.executable, "-m", "spm_sync", "serve", "-c", str(env.config_path)]
        logs = [tmp_path / f"worker-{n}.log" for n in (1, 2)]
        workers = [
            subprocess.Popen(
                [*command, "--every", str(EVERY_SECONDS)],
                env={**os.environ, "PYTHONPATH": str(REPO)},
                stdout=subprocess.DEVNULL,
                stderr=log.open("w", encoding="utf-8"),
            )
            for log in logs
        ]
        try:
            with Store.from_settings(env.config().store) as store:
                deadline = time.monotonic() + 180
                while len(store.last_runs(20, status=RunStatus.SUCCEEDED)) < SLOTS:
                    for worker, log in zip(workers, logs, strict=True):
                        assert worker.poll() is None, log.read_text(encoding="utf-8")
                    assert time.monotonic() < deadline, "the workers did not run three slots"
                    time.sleep(0.2)
                for worker in workers:
                    worker.send_signal(signal.SIGTERM)
                for worker in workers:
                    assert worker.wait(timeout=60) == 0
                claims = store.slot_claims()
                runs = store.last_runs(50)
                assert store.unfinished_runs() == []
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.kill()
                    worker.wait()
        emails = len(env.mailbox.messages)

    text = [log.read_text(encoding="utf-8") for log in logs]
    # One run per claimed slot, no run without a slot, no slot claimed twice.
    assert all(run.trigger == "schedule" for run in runs)
    assert sorted(claim.run_id for claim in claims if claim.run_id) == sorted(r.id for r in runs)
    assert len({claim.slot for claim in claims}) == len(claims) >= SLOTS
    for claim in claims:
        seconds = claim.slot.timestamp()
        assert seconds % EVERY_SECONDS == 0  # both workers computed the same instants
    claimed = Counter(
        slot for log in text for slot in re.findall(r"event=serve\.slot_claimed slot=(\S+)", log)
    )
    assert claimed and max(claimed.values()) == 1
    # The other worker fired the same slots and found them taken.
    taken = [
        slot for log in text for slot in re.findall(r"event=serve\.slot_taken slot=(\S+)", log)
    ]
    assert taken and set(taken) <= set(claimed)
    # One report email per successful slot (a cycle stopped by SIGTERM mails none).
    succeeded = [run for run in runs if run.status is RunStatus.SUCCEEDED]
    assert len(succeeded) >= SLOTS
    assert emails == len(succeeded)
    for run in runs:
        stopped = run.status is RunStatus.FAILED and "stopped on request" in (run.error or "")
        assert run.status is RunStatus.SUCCEEDED or stopped, run
    assert all("Traceback" not in log for log in text)
