"""`spm-sync check`, offline part: is the setup complete before the first scheduled run?

Each check is one `CheckLine` (passed or not, what was checked, how to fix it) so the CLI can
print one line per check and exit non-zero when any failed. Online checks (fields, projects,
boards and link types on the trackers) produce the same lines from another module.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from spm_sync.config.model import (
    Config,
    ConfigError,
    WriteMode,
    okr_display_path,
    read_config,
    reference_problems,
)
from spm_sync.config.okrs import OkrSet, load_okrs
from spm_sync.core.checks import CheckLine
from spm_sync.core.secrets import PASTED_TOKEN, shown_env


def offline_checks(
    config_path: Path, now: datetime | None = None
) -> tuple[list[CheckLine], Config | None]:
    """Check the config, the OKR file, the rules between them and the environment; the config
    comes back when it could be read, for the online checks."""
    display = str(config_path)
    try:
        config = read_config(config_path)
    except ConfigError as exc:
        fix = f"edit {display}; every key is documented in spm-sync.example.yaml"
        if any(problem.endswith("file not found") for problem in exc.problems):
            fix = "pass -c FILE or set SPM_SYNC_CONFIG to the config file"
        return [CheckLine(False, problem, fix) for problem in exc.problems], None
    names = ", ".join(connection.name for connection in config.connections)
    lines = [CheckLine(True, f"config {display} is valid (connections: {names})")]
    okr_set = _okr_check(config, lines)
    if okr_set is not None:
        lines += _rule_checks(config, okr_set, display)
    lines += _env_checks(config)
    lines += _schedule_and_mode(config, now)
    return lines, config


def _okr_check(config: Config, lines: list[CheckLine]) -> OkrSet | None:
    display = okr_display_path(config)
    try:
        okr_set = load_okrs(config.okrs, display=display)
    except ConfigError as exc:
        fix = f"edit {display} (or point `okrs:` at the right file)"
        lines += [CheckLine(False, problem, fix) for problem in exc.problems]
        return None
    lines.append(
        CheckLine(
            True,
            f"OKR file {display} is valid ({len(okr_set.objectives)} objectives, "
            f"{len(okr_set.key_results)} key results)",
        )
    )
    return okr_set


def _rule_checks(config: Config, okr_set: OkrSet, display: str) -> list[CheckLine]:
    problems = reference_problems(config, okr_set, display)
    if problems:
        return [
            CheckLine(
                False,
                problem,
                "name one of the configured connections"
                if ".connection: " in problem
                else "correct the rule, or add the key result to the OKR file",
            )
            for problem in problems
        ]
    count = len(config.alignment.rules)
    return [
        CheckLine(
            True, f"alignment rules name existing connections and key results ({count} rules)"
        )
    ]


def _env_checks(config: Config) -> list[CheckLine]:
    lines = []
    for need in config.required_env():
        name = shown_env(need.env)  # a name that looks like a pasted secret is never echoed
        if need.is_set:
            lines.append(CheckLine(True, f"{name} is set ({need.key_path})"))
        elif name != need.env:
            lines.append(CheckLine(False, f"{need.key_path}: {PASTED_TOKEN}"))
        else:
            lines.append(
                CheckLine(
                    False,
                    f"{name} is not set ({need.key_path})",
                    f"export {name}=... in the environment spm-sync runs in",
                )
            )
    return lines


def _schedule_and_mode(config: Config, now: datetime | None) -> list[CheckLine]:
    zone = ZoneInfo(config.schedule.timezone)
    now = now or datetime.now(zone)
    next_run = config.schedule.trigger().get_next_fire_time(None, now)
    when = next_run.strftime("%a %Y-%m-%d %H:%M %Z") if next_run else "never"
    lines = [CheckLine(True, f"schedule {config.schedule.cron!r}: next run {when}")]
    if config.write_back.mode is WriteMode.APPLY:
        enabled = [c.name for c in config.connections if c.write_back.enabled]
        lines.append(
            CheckLine(True, f"write-back mode apply: writes to {', '.join(enabled) or 'none'}")
        )
    else:
        lines.append(CheckLine(True, "write-back mode plan: writes are planned and reported only"))
    return lines
