"""Connectors pointed at sandboxes that misbehave (`Faults`' hostile modes), for the paging and
transfer-safety tests: small portfolios, fast retries, and limits passed as settings."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Any

from connectors.azure_devops import AzureDevOpsConnector
from connectors.jira import JiraConnector
from connectors.sandbox.ado_server import AzureDevOpsSandbox
from connectors.sandbox.generator import generate_portfolio
from connectors.sandbox.jira_server import JiraSandbox
from connectors.sandbox.portfolio import SeedItem
from tests import sandbox_connectors

SIZE = 120
FAST_RETRY = {"max_attempts": 3, "base_delay_seconds": 0.01, "max_wait_seconds": 1}


@cache
def jira_items() -> tuple[SeedItem, ...]:
    return tuple(generate_portfolio(SIZE, seed=3, jira_share=1.0).jira)


@cache
def ado_items() -> tuple[SeedItem, ...]:
    return tuple(generate_portfolio(SIZE, seed=3, jira_share=0.0).azure_devops)


def jira_connector(sandbox: JiraSandbox, **overrides: Any) -> JiraConnector:
    projects = ", ".join(sorted({item.project for item in jira_items()}))
    values = {"name": "hostile-jira", "deployment": sandbox.flavour, "retry": FAST_RETRY}
    return sandbox_connectors.jira_connector(
        sandbox, jql=f"project in ({projects})", **{**values, **overrides}
    )


def ado_connector(
    sandbox: AzureDevOpsSandbox, *, wiql_page_size: int = 20_000, **overrides: Any
) -> AzureDevOpsConnector:
    values = {"name": "hostile-ado", "retry": FAST_RETRY}
    return sandbox_connectors.ado_connector(
        sandbox, wiql_page_size=wiql_page_size, **{**values, **overrides}
    )


def timed(call: Callable[[], Any]) -> tuple[BaseException | None, float]:
    """What `call` raised (None when it returned) and how long it took, in seconds."""
    started = time.monotonic()
    try:
        call()
    except Exception as error:
        return error, time.monotonic() - started
    return None, time.monotonic() - started


def settled(read: Callable[[], int], quiet: float = 0.3) -> int:
    """`read()` once it has stopped changing for `quiet` seconds (a server finishing a write)."""
    value = read()
    while True:
        time.sleep(quiet)
        again = read()
        if again == value:
            return value
        value = again


@contextmanager
def scripted_server(script: Sequence[tuple[float, bytes]]) -> Iterator[str]:
    """A server on 127.0.0.1 that answers every connection with `script`: (pause, bytes) steps,
    then keeps the connection open without a word, until the test ends (or the client leaves)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    done = threading.Event()

    def serve(connection: socket.socket) -> None:
        with connection:
            try:
                connection.recv(65536)  # the request
                for pause, data in script:
                    if done.wait(pause):
                        return
                    connection.sendall(data)
                done.wait()
            except OSError:
                return  # the client gave up

    def accept() -> None:
        while not done.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=serve, args=(connection,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        done.set()
        listener.close()
