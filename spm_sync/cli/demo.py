"""`spm-sync demo`: the whole product on one machine, with no tracker, network or config.

1. Seeds a portfolio (`connectors.sandbox.generator`) and serves it from the Jira Cloud and
   Azure DevOps sandboxes on 127.0.0.1, with an SMTP capture server beside them.
2. Writes `spm-sync.yaml` (from the template `spm_sync/config/defaults/demo.yaml`) and `okrs.yaml`
   into the output folder, with a SQLite store there too; the credentials are environment variables
   the demo sets for itself.
3. Runs a full cycle with write-back applied to the sandboxes, then a second cycle that pulls
   incrementally and finds nothing left to write; the second report is mailed to the capture
   server and kept as `.eml` next to the HTML and text files.
"""

from __future__ import annotations

import asyncio
import os
import string
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import yaml
from aiosmtpd.controller import Controller
from rich.console import Console

from connectors.registry import default_connector_factory
from connectors.sandbox.ado_server import AzureDevOpsSandbox
from connectors.sandbox.generator import generate_portfolio
from connectors.sandbox.jira_server import JiraSandbox
from connectors.sandbox.portfolio import SeedPortfolio
from spm_sync.cli.progress_bars import make_progress
from spm_sync.cli.summary import output_console, print_cycle
from spm_sync.cli.terminal import diagnostics_console
from spm_sync.config.model import Config, WriteMode, load_config
from spm_sync.pipeline.cycle import CycleDeps, CycleOutcome, run_cycle
from spm_sync.store import Store

TEMPLATE = Path(__file__).resolve().parents[1] / "config" / "defaults" / "demo.yaml"
"""Shipped inside the package so an installed wheel can run the demo; `config/demo.yaml` in the
repository is a link to it."""
DEMO_SECRETS = {
    "SPM_SYNC_DEMO_JIRA_USER": "user",
    "SPM_SYNC_DEMO_JIRA_TOKEN": "token",
    "SPM_SYNC_DEMO_ADO_PAT": "pat",
}


class Mailbox:
    """aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append(message)
        return "250 2.0.0 captured"


class LoopbackSmtp(Controller):
    """aiosmtpd's Controller on port 0: it learns the port before its start-up probe."""

    def _trigger_server(self) -> None:
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@dataclass(frozen=True)
class DemoRun:
    config: Config
    first: CycleOutcome
    second: CycleOutcome
    mailbox: Mailbox
    eml: Path | None


@contextmanager
def sandboxes(portfolio: SeedPortfolio) -> Iterator[tuple[JiraSandbox, AzureDevOpsSandbox]]:
    with ExitStack() as stack:
        jira = stack.enter_context(
            JiraSandbox(
                portfolio.jira,
                flavour="cloud",
                user=DEMO_SECRETS["SPM_SYNC_DEMO_JIRA_USER"],
                token=DEMO_SECRETS["SPM_SYNC_DEMO_JIRA_TOKEN"],
            )
        )
        ado = stack.enter_context(
            AzureDevOpsSandbox(portfolio.azure_devops, pat=DEMO_SECRETS["SPM_SYNC_DEMO_ADO_PAT"])
        )
        yield jira, ado


DEMO_TARGET_DAYS = (730, 120)
"""Objectives' target dates, days from the demo's day, in turn: a far one the forecast meets
and a near one it misses, so the report shows both verdicts."""


def okr_document(portfolio: SeedPortfolio, today: date | None = None) -> dict[str, Any]:
    """The OKR file of the seeded portfolio (Key Result items are aliases of their KR), with
    target dates counted from `today` (the seeded history is dated from the day it runs)."""
    today = today or date.today()
    return {
        "objectives": [
            {
                "id": objective.id,
                "title": objective.title,
                "owner": objective.owner,
                "period": objective.period,
                "target_date": today
                + timedelta(days=DEMO_TARGET_DAYS[index % len(DEMO_TARGET_DAYS)]),
                "key_results": [
                    {
                        "id": kr.id,
                        "title": kr.title,
                        "target": kr.target,
                        "current": kr.current,
                        "baseline": kr.baseline,
                        "aliases": list(kr.aliases),
                    }
                    for kr in portfolio.key_results
                    if kr.objective_id == objective.id
                ],
            }
            for index, objective in enumerate(portfolio.objectives)
        ]
    }


def write_demo_config(
    out_dir: Path,
    portfolio: SeedPortfolio,
    jira: JiraSandbox,
    ado: AzureDevOpsSandbox,
    smtp_port: int,
    *,
    store_url: str | None = None,
    template: Path = TEMPLATE,
) -> Path:
    """Fill the template into `out_dir/spm-sync.yaml`, next to `okrs.yaml`; the store is
    `out_dir/spm-sync.db` unless `store_url` names another."""
    out_dir.mkdir(parents=True, exist_ok=True)
    okrs = out_dir / "okrs.yaml"
    okrs.write_text(yaml.safe_dump(okr_document(portfolio), sort_keys=False), encoding="utf-8")
    projects = ", ".join(sorted({item.project for item in portfolio.jira}))
    values = {
        "store_url": store_url or f"sqlite:///{(out_dir / 'spm-sync.db').resolve().as_posix()}",
        "okrs_path": okrs.resolve().as_posix(),
        "jira_url": jira.url,
        "jira_projects": projects,
        "ado_url": ado.organization_url,
        "ado_project": ado.project,
        "report_dir": (out_dir / "reports").resolve().as_posix(),
        "smtp_port": str(smtp_port),
    }
    config = out_dir / "spm-sync.yaml"
    text = string.Template(template.read_text(encoding="utf-8")).substitute(values)
    config.write_text(text, encoding="utf-8")
    return config


def fresh_store(out_dir: Path) -> None:
    """A demo starts from an empty store: the sandboxes are new on every start."""
    for suffix in ("", "-wal", "-shm"):
        (out_dir / f"spm-sync.db{suffix}").unlink(missing_ok=True)


def demo_cycles(*, items: int, out_dir: Path, seed: int, console: Console | None = None) -> DemoRun:
    """Everything `spm-sync demo` does, returning the outcomes instead of printing them."""
    portfolio = generate_portfolio(items, seed=seed)
    os.environ.update(DEMO_SECRETS)
    fresh_store(out_dir)
    mailbox = Mailbox()
    smtp = LoopbackSmtp(mailbox, hostname="127.0.0.1", port=0)
    smtp.start()
    try:
        with sandboxes(portfolio) as (jira, ado):
            path = write_demo_config(out_dir, portfolio, jira, ado, smtp.port)
            config = load_config(path)
            with Store.from_settings(config.store) as store:
                # In-memory discovery cache: the sandbox ports change between demos.
                factory = default_connector_factory(discovery_cache_dir=None)
                progress = make_progress(console or Console(stderr=True))
                deps = CycleDeps(store, connector_factory=factory, progress=progress)
                try:
                    first = run_cycle(
                        config, deps, mode=WriteMode.APPLY, send_email=False, trigger="demo"
                    )
                    second = run_cycle(config, deps, mode=WriteMode.APPLY, trigger="demo")
                finally:
                    progress.close()
    finally:
        smtp.stop()
    eml = second.report.paths.eml if second.report is not None else None
    return DemoRun(config, first, second, mailbox, eml)


def run_demo(*, items: int, out_dir: Path, seed: int) -> int:
    """`spm-sync demo`; returns the exit status."""
    console = output_console()
    started = time.monotonic()
    demo = demo_cycles(items=items, out_dir=out_dir, seed=seed)
    for title, outcome in (("First cycle (full sync)", demo.first), ("Second cycle", demo.second)):
        console.rule(title)
        if outcome.result is None:
            diagnostics_console().print(
                f"[red]✗ no result[/red]: {outcome.stopped or outcome.skipped}", soft_wrap=True
            )
            continue
        print_cycle(console, outcome.result)
    console.rule("Demo")
    second = demo.second.result
    if second is not None:
        incremental = all(c.sync == "incremental" for c in second.connections)
        console.print(
            f"second cycle: {'incremental' if incremental else 'full'} pull, "
            f"{second.headline.writes_planned} writes planned"
        )
    console.print(f"emails captured: {len(demo.mailbox.messages)}")
    if demo.second.report is not None:
        console.print(f"report: {demo.second.report.paths.html}")
        console.print(f"email:  {demo.eml}")
    console.print(f"config: {demo.config.source}  ({time.monotonic() - started:.1f} s)")
    ok = demo.first.exit_status == 0 and demo.second.exit_status == 0
    return 0 if ok else 1
