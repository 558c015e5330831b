"""`spm-sync sandbox`: the sandbox trackers in the foreground, for trying configs by hand.

Serves one seeded portfolio from a Jira Cloud sandbox and an Azure DevOps sandbox until
Ctrl-C or SIGTERM, and prints what a config needs to point at them. The credentials are the
sandboxes' fixed test credentials, not secrets.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType

from connectors.sandbox.ado_server import AzureDevOpsSandbox
from connectors.sandbox.generator import generate_portfolio
from connectors.sandbox.jira_server import JiraSandbox
from connectors.sandbox.portfolio import SeedPortfolio

SCOPED_TOKEN = "sandbox-scoped-token"
"""For trying the Jira Cloud API gateway path (`url: …/ex/jira/<cloudId>`) by hand."""


def describe(portfolio: SeedPortfolio, jira: JiraSandbox, ado: AzureDevOpsSandbox) -> list[str]:
    projects = ", ".join(sorted({item.project for item in portfolio.jira}))
    return [
        f"Jira Cloud sandbox:   {jira.url}",
        f"  basic auth user {jira.user!r}, API token {jira.token!r}",
        f"  {len(portfolio.jira)} issues, jql: project in ({projects})",
        *(
            [
                f"  scoped API token {jira.scoped_token!r} (a service account's): only through "
                f"the gateway url {jira.url}/ex/jira/{jira.cloud_id}"
            ]
            if jira.scoped_token
            else []
        ),
        f"Azure DevOps sandbox: {ado.organization_url}",
        f"  project {ado.project!r}, personal access token {ado.pat!r}",
        f"  {len(portfolio.azure_devops)} work items",
        f"OKRs: {len(portfolio.objectives)} objectives, {len(portfolio.key_results)} key results"
        " (Jira project OKR, Azure DevOps type 'Key Result')",
    ]


def serve_sandboxes(
    *,
    host: str,
    jira_port: int,
    ado_port: int,
    items: int,
    seed: int,
    echo: Callable[[str], None] = print,
    stop: threading.Event | None = None,
) -> int:
    """Serve until interrupted (or until `stop` is set); returns the exit status."""
    portfolio = generate_portfolio(items, seed=seed)
    stop = stop or threading.Event()
    jira = JiraSandbox(portfolio.jira, flavour="cloud", scoped_token=SCOPED_TOKEN)
    ado = AzureDevOpsSandbox(portfolio.azure_devops)
    jira.start(host, jira_port)
    try:
        ado.start(host, ado_port)
        try:
            for line in describe(portfolio, jira, ado):
                echo(line)
            echo("Ctrl-C stops.")
            with _StopOnSignals(stop):
                while not stop.wait(0.5):
                    pass
        finally:
            ado.stop()
    finally:
        jira.stop()
    return 0


class _StopOnSignals:
    """SIGINT/SIGTERM set `stop` (in the main thread; elsewhere nothing is installed)."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.previous: dict[int, object] = {}

    def __enter__(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def handle(_signum: int, _frame: FrameType | None) -> None:
            self.stop.set()

        for number in (signal.SIGINT, signal.SIGTERM):
            self.previous[number] = signal.signal(number, handle)

    def __exit__(self, *exc_info: object) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)  # type: ignore[arg-type]
