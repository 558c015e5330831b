"""The `spm-sync` command line.

Exit status (`spm_sync.core.exit_codes`): 0 success, 1 a check or a run failed, 2 the command could
not start (bad config, bad options, or a store it cannot use), 3 skipped
because another process holds the store. Every command that reads the config takes `-c FILE`,
defaulting to `$SPM_SYNC_CONFIG`, else `spm-sync.yaml` in the working directory.

A failure of the environment that escapes a command (the database went away, a folder that
is a file) is one line on stderr and exit status 1; its traceback is shown only with -v.

Conventions, the same for every command: results on stdout, diagnostics (failures, progress,
log lines) on stderr; `-v`/`-q` work before or after the command name; a reader that closes
the pipe early (`spm-sync check | head -1`) is not an error; `--version` says which version.

The commands that drive the pipeline import it inside their function (plain imports, nothing
looked up by name), so `--help` and an offline `check` start without loading the pipeline,
the charts and the tracker clients.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NoReturn

import click
from sqlalchemy.exc import SQLAlchemyError

from spm_sync.cli.offline_check import offline_checks
from spm_sync.cli.terminal import detach_stdout, is_quiet, say, set_quiet, warn
from spm_sync.config.model import (
    CONFIG_ENV,
    DEFAULT_CONFIG_FILE,
    Config,
    ConfigError,
    WriteMode,
    load_config,
)
from spm_sync.core import exit_codes
from spm_sync.core.checks import CheckLine

USAGE_ERROR = exit_codes.CANNOT_START
EXIT_STATUS_HELP = (
    "Exit status: 0 ok; 1 the run failed or was partial (a connection, a write, the report, "
    "the email, the store mid-run); 2 configuration or setup problem, nothing done; 3 store "
    "busy: another spm-sync is running a cycle on this store (or every connection is being "
    "synced by another worker), nothing done."
)


def config_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "-c",
        "--config",
        "config_path",
        type=click.Path(path_type=Path, dir_okay=False),
        envvar=CONFIG_ENV,
        default=DEFAULT_CONFIG_FILE,
        show_default=True,
        show_envvar=True,
        help="Config file (YAML).",
    )(function)


VERBOSITY_KEY = "spm_sync.verbosity"


def _count_verbose(ctx: click.Context, _param: click.Parameter, value: int) -> None:
    _apply_verbosity(ctx, verbose=value)


def _set_quiet(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    _apply_verbosity(ctx, quiet=value)


def _apply_verbosity(ctx: click.Context, *, verbose: int = 0, quiet: bool = False) -> None:
    """-v and -q count wherever they are given (`spm-sync -v run` = `spm-sync run -v`)."""
    meta = ctx.find_root().meta
    level = meta.setdefault(VERBOSITY_KEY, {"verbose": 0, "quiet": False})
    level["verbose"] += verbose
    level["quiet"] = level["quiet"] or quiet
    set_quiet(level["quiet"] and not level["verbose"])
    if level["verbose"]:
        root_level = logging.INFO if level["verbose"] == 1 else logging.DEBUG
    else:
        root_level = logging.ERROR if level["quiet"] else logging.WARNING
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(root_level)


def verbosity_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """-v/--verbose (repeatable) and -q/--quiet, on the group and on every command."""
    function = click.option(
        "-q",
        "--quiet",
        is_flag=True,
        expose_value=False,
        callback=_set_quiet,
        help="Print only failures and warnings (and what a command exists to print).",
    )(function)
    return click.option(
        "-v",
        "--verbose",
        count=True,
        expose_value=False,
        callback=_count_verbose,
        help="Log progress (-v) or debug details (-vv); tracebacks of failures.",
    )(function)


def verbosity(ctx: click.Context) -> int:
    return int(ctx.find_root().meta.get(VERBOSITY_KEY, {}).get("verbose", 0))


def load_or_exit(config_path: Path, *, secrets: bool = True, email: bool = True) -> Config:
    """The config and its OKR file, or exit 2 with one line per problem on stderr.

    `secrets`: the environment variables the config names must be set too (`email`: also
    those of the SMTP login), so a run fails at once instead of halfway through.
    """
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        _exit_with_problems(exc.problems)
    if secrets:
        problems = config.env_problems(include_email=email)
        if problems:
            _exit_with_problems([f"{config_path}: {problem}" for problem in problems])
    return config


def _exit_with_problems(problems: Iterable[str]) -> NoReturn:
    for problem in problems:
        warn(problem)
    raise SystemExit(USAGE_ERROR)


def _mode(flag: str | None) -> WriteMode | None:
    """--apply / --plan as a `WriteMode`; None when neither was given (the config decides)."""
    return None if flag is None else WriteMode(flag)


def _exit_with(status: object) -> None:
    raise SystemExit(int(status) if isinstance(status, int) else 0)


class Commands(click.Group):
    """Ends a command that fails for a reason outside spm-sync (the database went away, a
    path that is a file, a full disk) with one line and exit status 1 instead of a
    traceback; -v shows the traceback too. Errors of spm-sync itself still propagate."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            detach_stdout()  # the reader has all it wanted: not a failure of the command
            raise SystemExit(0) from None
        except (SQLAlchemyError, OSError) as error:
            if verbosity(ctx):
                traceback.print_exc()
            text = " ".join(str(error).split())  # the whole message, on one line
            warn(f"spm-sync: {type(error).__name__}: {text}")
            raise SystemExit(exit_codes.FAILED) from None

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        """Every command takes -v/-q after its name too."""
        verbosity_options(cmd)
        super().add_command(cmd, name)


@click.group(
    cls=Commands, context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_STATUS_HELP
)
@click.version_option(package_name="spm-sync", prog_name="spm-sync", message="%(prog)s %(version)s")
@verbosity_options
def main() -> None:
    """spm-sync: align Jira and Azure DevOps work to OKRs, rank it by WSJF, write the ranking
    back, and mail the alignment report."""
    ctx = click.get_current_context()
    _apply_verbosity(ctx)  # the defaults, when neither -v nor -q was given


@main.command(epilog=EXIT_STATUS_HELP, short_help="Run one cycle now.")
@config_option
@click.option("--apply", "mode", flag_value="apply", help="Perform the planned writes.")
@click.option("--plan", "mode", flag_value="plan", help="Only plan and report writes (dry run).")
@click.option("--no-email", is_flag=True, help="Do not send the report, even if email is on.")
@click.option(
    "--json",
    "json_path",
    type=click.Path(path_type=Path, dir_okay=False, writable=True, allow_dash=True),
    help="Also write the cycle's result as JSON to FILE ('-': stdout, instead of the tables, "
    "which then go to stderr).",
)
def run(config_path: Path, mode: str | None, no_email: bool, json_path: Path | None) -> None:
    """Run one cycle now: pull, align, score, plan, write back (apply mode), report.

    Without --apply or --plan the config's write_back.mode decides (default: plan).
    On a SQLite store one cycle runs at a time: a second one exits 3 ("store busy")
    and touches nothing. With --json, a skipped cycle writes status "skipped" and why.
    """
    config = load_or_exit(config_path, email=not no_email)
    from spm_sync.cli.commands import run_command

    _exit_with(run_command(config, mode=_mode(mode), send_email=not no_email, json_path=json_path))


@main.command(epilog=EXIT_STATUS_HELP, short_help="Run cycles on the config's schedule.")
@config_option
@click.option(
    "--every",
    "interval_seconds",
    type=click.IntRange(min=1),
    metavar="SECONDS",
    help="Run every SECONDS (at multiples of SECONDS since the epoch, so workers agree) "
    "instead of on the cron schedule (for trying it out and tests).",
)
@click.option("--run-now", is_flag=True, help="Also run a cycle right away.")
def serve(config_path: Path, interval_seconds: int | None, run_now: bool) -> None:
    """Run cycles on the config's schedule until stopped. Each slot runs once per store, however
    many workers serve it (claimed in the store); one cycle at a time per worker, never
    stacked; a slot missed while down is made up once at start if at most 6 hours late.
    SIGTERM or Ctrl-C stops the running cycle at its next safe point, then exits 0."""
    config = load_or_exit(config_path)
    from spm_sync.pipeline.scheduler import serve as serve_cycles

    _exit_with(serve_cycles(config, interval_seconds=interval_seconds, run_now=run_now))


@main.command(short_help="Try it on sandbox trackers, no config needed.")
@click.option(
    "--items",
    type=click.IntRange(min=100, max=200_000),
    default=3000,
    show_default=True,
    help="Work items in the seeded demo portfolio.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("spm-sync-demo"),
    show_default=True,
    help="Folder for the demo database and the report (.html, .txt, .eml).",
)
@click.option("--seed", type=int, default=7, show_default=True, help="Portfolio seed.")
def demo(items: int, out_dir: Path, seed: int) -> None:
    """Start sandbox trackers on 127.0.0.1 with a seeded portfolio, run a full cycle against
    them with write-back applied, and write the report. Needs no config and no network."""
    from spm_sync.cli.demo import run_demo

    _exit_with(run_demo(items=items, out_dir=out_dir, seed=seed))


@main.command(short_help="Check the setup (--online: on the trackers too).")
@config_option
@click.option(
    "--online",
    is_flag=True,
    help="Also check the store and, on each tracker, every named field, project, "
    "board and link type.",
)
def check(config_path: Path, online: bool) -> None:
    """Check the setup: config and OKR file valid, rules pointing at existing key results,
    secrets' environment variables set. One line per check; exit status 1 if any fails, 2 when
    the config itself cannot be loaded (as every other command)."""
    lines, config = offline_checks(config_path)
    failed = _print_checks(lines)
    if config is None:
        raise SystemExit(2)
    if online and not failed:
        from spm_sync.cli.online_check import check_online as online_checks

        failed = _print_checks(online_checks(config))
    raise SystemExit(1 if failed else 0)


def _print_checks(lines: Iterable[CheckLine]) -> bool:
    """The check lines are the command's result: stdout (under -q only ✗ and ! lines)."""
    failed = False
    for line in lines:
        if not (is_quiet() and line.ok and not line.warning):
            say(line.render())
        failed = failed or not line.ok
    return failed


@main.command(short_help="Render a stored run's report again.")
@config_option
@click.option(
    "--run",
    "run_id",
    type=click.IntRange(min=1),
    help="Run to report on [default: the newest completed sync cycle, not an undo].",
)
@click.option("--send", is_flag=True, help="Also email it as configured in report.email.")
@click.option(
    "--audit",
    "full_audit",
    is_flag=True,
    help="Print the run's whole audit log, one line per write (default: counts by "
    "connection, field and outcome).",
)
def report(config_path: Path, run_id: int | None, send: bool, full_audit: bool) -> None:
    """Render the report of a stored run again (and send it)."""
    config = load_or_exit(config_path, secrets=False)  # the SMTP login is checked when sending
    from spm_sync.cli.commands import report_command

    _exit_with(report_command(config, run_id=run_id, send=send, full_audit=full_audit))


@main.command(epilog=EXIT_STATUS_HELP, short_help="Restore the values a run replaced.")
@config_option
@click.option(
    "--run",
    "run_id",
    type=click.IntRange(min=1),
    required=True,
    help="Run whose written values to restore.",
)
@click.option("--apply", "mode", flag_value="apply", help="Perform the restoring writes.")
@click.option("--plan", "mode", flag_value="plan", help="Only plan and report them (dry run).")
def undo(config_path: Path, run_id: int, mode: str | None) -> None:
    """Write back the values a run replaced, for every write it made, unless a person changed
    the item since (those are reported as conflicts). Audited like any write; a dry run
    unless --apply."""
    config = load_or_exit(config_path, email=False)
    from spm_sync.cli.commands import undo_command

    _exit_with(undo_command(config, run_id=run_id, mode=_mode(mode)))


@main.command(short_help="Serve the sandbox trackers by hand.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--jira-port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port of the Jira sandbox (0: any free port).",
)
@click.option(
    "--ado-port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port of the Azure DevOps sandbox (0: any free port).",
)
@click.option(
    "--items",
    type=click.IntRange(min=100, max=200_000),
    default=400,
    show_default=True,
    help="Work items in the seeded portfolio.",
)
@click.option("--seed", type=int, default=7, show_default=True, help="Portfolio seed.")
def sandbox(host: str, jira_port: int, ado_port: int, items: int, seed: int) -> None:
    """Serve the sandbox Jira and Azure DevOps trackers with a seeded portfolio until
    interrupted, printing their URLs (for trying configs and connectors by hand)."""
    from connectors.sandbox.cli import serve_sandboxes

    _exit_with(
        serve_sandboxes(host=host, jira_port=jira_port, ado_port=ado_port, items=items, seed=seed)
    )
