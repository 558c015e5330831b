"""Connector classes by config `kind`: the one place that knows which class serves a tracker.

The pipeline receives a `ConnectorFactory` (a callable from a connection's settings to a fresh
`Connector`), so tests hand it in-memory or instrumented connectors and production uses
`default_connector_factory()`. A connector instance lives for one run: it resolves fields and
reads serverInfo once per instance, and its `RequestStats` are that run's numbers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from connectors.azure_devops import AzureDevOpsConnector
from connectors.azure_devops_client import DEFAULT_CACHE_DIR
from connectors.base import Connector
from connectors.jira import JiraConnector
from connectors.settings import AzureDevOpsSettings, JiraSettings, TrackerSettings

ConnectorFactory = Callable[[TrackerSettings], Connector]


def default_connector_factory(
    *,
    environ: Mapping[str, str] | None = None,
    discovery_cache_dir: Path | None = DEFAULT_CACHE_DIR,
) -> ConnectorFactory:
    """The real connectors. `environ` holds the secrets the settings name (default: the
    process environment, read when a connector is made); `discovery_cache_dir` is where the
    Azure DevOps library caches resource locations (None: memory only)."""

    def make(settings: TrackerSettings) -> Connector:
        env = os.environ if environ is None else environ
        if isinstance(settings, JiraSettings):
            return JiraConnector(settings, environ=env)
        if isinstance(settings, AzureDevOpsSettings):
            return AzureDevOpsConnector(settings, environ=env, cache_dir=discovery_cache_dir)
        raise TypeError(f"no connector for settings of type {type(settings).__name__}")

    return make
