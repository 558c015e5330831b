"""The spm-sync config file: models, loading, and the problems a user can fix.

Every model forbids unknown keys, so a typo is an error instead of a silently ignored setting.
Secrets are never values in the file, only the names of environment variables (`*_env`).
Relative paths (the OKR file, the report folder, a SQLite database) are resolved against the
folder of the config file, so a scheduled job finds them whatever its working directory is.
Example with every key documented: `config/spm-sync.example.yaml`.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from pydantic import (
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from connectors.settings import StrictModel
from spm_sync.config.connections import (
    AzureDevOpsConnection,
    Connection,
    JiraConnection,
    connection_secrets,
)
from spm_sync.config.crontab import crontab_trigger
from spm_sync.config.flow import FlowConfig
from spm_sync.config.okrs import OkrSet, load_okrs
from spm_sync.config.portfolio import CapacitySettings, portfolio_reference_problems
from spm_sync.config.sections import (
    LevelName,
    ReportSettings,
    StatusCategoryName,
    StoreSettings,
    WipLimit,
    resolve_path,
)
from spm_sync.config.validation import (
    ConfigError,
    read_yaml_mapping,
    scalar_text,
    validation_problems,
)
from spm_sync.core.domain import Level, StatusCategory
from spm_sync.core.secrets import shown_env

__all__ = [
    "AlignmentRule",
    "AlignmentSettings",
    "AzureDevOpsConnection",
    "Config",
    "ConfigError",
    "EnvRequirement",
    "JiraConnection",
    "ScheduleSettings",
    "WriteBackSettings",
    "WriteMode",
    "WsjfSettings",
    "default_config_path",
    "load_config",
    "read_config",
    "reference_problems",
]

CONFIG_ENV = "SPM_SYNC_CONFIG"
DEFAULT_CONFIG_FILE = "spm-sync.yaml"


class WriteMode(StrEnum):
    PLAN = "plan"
    APPLY = "apply"


class ScheduleSettings(StrictModel):
    cron: str = "0 6 * * 1-5"
    """Crontab syntax, 5 fields; weekday numbers as in crontab (0 and 7 = Sunday)."""
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}, expected an IANA name such as UTC or Europe/Berlin"
            ) from None
        return value

    @field_validator("cron")
    @classmethod
    def _valid_crontab(cls, value: str) -> str:
        try:
            crontab_trigger(value, "UTC")
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a valid crontab expression: {exc}") from None
        return value.strip()

    def trigger(self) -> CronTrigger:
        """The APScheduler trigger, with crontab weekday numbering (see
        `spm_sync.config.crontab`)."""
        return crontab_trigger(self.cron, ZoneInfo(self.timezone))


class AlignmentRule(StrictModel):
    """Items matching every condition given count toward a Key Result (when they carry no
    label or link evidence of their own)."""

    connection: str | None = None
    """Only items of this connection; unset = every connection."""
    project: str | None = None
    """Jira project key, or an Azure DevOps area path; sub-paths match too."""
    area_path: str | None = None
    """Azure DevOps area path (the same as `project`, named as Azure DevOps names it)."""
    team: str | None = None
    component: str | None = None
    key_result: str = Field(min_length=1)

    _text = field_validator(
        "key_result", "project", "area_path", "team", "component", mode="before"
    )(scalar_text)

    @model_validator(mode="after")
    def _has_condition(self) -> AlignmentRule:
        if not (self.project or self.area_path or self.team or self.component):
            raise ValueError("give at least one of project, area_path, team, component")
        if self.project and self.area_path:
            raise ValueError("give project or area_path, not both (they are the same condition)")
        return self

    @property
    def path(self) -> str | None:
        """The project key or area path condition, whichever was given."""
        return self.project or self.area_path


def _open_work() -> list[StatusCategory]:
    return [StatusCategory.TODO, StatusCategory.IN_PROGRESS]


class AlignmentSettings(StrictModel):
    levels: list[LevelName] = Field(
        default_factory=lambda: [Level.INITIATIVE, Level.EPIC, Level.FEATURE, Level.STORY],
        min_length=1,
    )
    """Levels whose items are expected to move a Key Result (others are never orphans).
    Initiatives are in by default: the largest bets are the first a portfolio office checks."""
    status_categories: list[StatusCategoryName] = Field(default_factory=_open_work, min_length=1)
    rules: list[AlignmentRule] = Field(default_factory=list)


class WsjfSettings(StrictModel):
    levels: list[LevelName] = Field(default_factory=lambda: [Level.EPIC], min_length=1)
    """Epics only by default: the portfolio backlog is ranked by WSJF, while features are
    usually estimated by teams in points, without the WSJF inputs (on a standard Agile process
    every feature would be listed as unscorable)."""
    status_categories: list[StatusCategoryName] = Field(default_factory=_open_work, min_length=1)
    """Done work has no delay left to cost, so by default it is neither scored nor ranked."""
    scale: Literal["none", "fibonacci"] = "none"
    """`fibonacci`: inputs snap to the modified Fibonacci scale 1 2 3 5 8 13 20 40 100."""
    decimals: int = Field(2, ge=0, le=6)
    """Rounding of the score and Cost of Delay shown and written back; the order is decided on
    the exact score."""
    tie_tolerance: float = Field(0.0, ge=0, allow_inf_nan=False)
    """Scores this close to the highest of their group count as equal and are ordered by the
    tie-breaks; 0 ties only equal scores."""


class WriteBackSettings(StrictModel):
    mode: WriteMode = WriteMode.PLAN
    """`plan` (dry run: plan and report writes) or `apply` (also perform them)."""


@dataclass(frozen=True, slots=True)
class EnvRequirement:
    """An environment variable the config names; `key_path` says where."""

    key_path: str
    env: str

    @property
    def is_set(self) -> bool:
        return bool(os.environ.get(self.env))


class Config(StrictModel):
    # Sections holding relative paths are validated even when left out, so their defaults are
    # resolved against the config file's folder too.
    store: StoreSettings = Field(default_factory=dict, validate_default=True)
    schedule: ScheduleSettings = ScheduleSettings()
    okrs: Path = Field(Path("okrs.yaml"), validate_default=True)
    connections: list[Connection]
    alignment: AlignmentSettings = AlignmentSettings()
    wsjf: WsjfSettings = WsjfSettings()
    write_back: WriteBackSettings = WriteBackSettings()
    report: ReportSettings = Field(default_factory=dict, validate_default=True)
    wip_limits: list[WipLimit] = Field(default_factory=list)
    flow: FlowConfig = FlowConfig()
    capacity: CapacitySettings | None = None
    """Job-size points per team and planning interval (`spm_sync.config.portfolio`); unset:
    the report shows no cut lines."""

    _source: Path | None = PrivateAttr(None)
    _okr_set: OkrSet | None = PrivateAttr(None)

    @field_validator("okrs")
    @classmethod
    def _resolve_okrs(cls, value: Path, info: ValidationInfo) -> Path:
        return resolve_path(value, info)

    @field_validator("connections")
    @classmethod
    def _unique_names(
        cls, connections: list[JiraConnection | AzureDevOpsConnection]
    ) -> list[JiraConnection | AzureDevOpsConnection]:
        if not connections:
            raise ValueError("at least one connection is required")
        counts = Counter(connection.name.lower() for connection in connections)
        for name, count in counts.items():
            if count > 1:
                where = [
                    f"connections[{index}]"
                    for index, connection in enumerate(connections)
                    if connection.name.lower() == name
                ]
                raise ValueError(f"names must be unique: {name!r} is used by {', '.join(where)}")
        return connections

    @field_validator("wip_limits")
    @classmethod
    def _one_limit_per_team_and_status(cls, limits: list[WipLimit]) -> list[WipLimit]:
        counts = Counter((limit.team.lower(), limit.status_category) for limit in limits)
        for (team, status), count in counts.items():
            if count > 1:
                raise ValueError(f"team {team!r} has {count} limits for status {status.value!r}")
        return limits

    @property
    def source(self) -> Path | None:
        """The file this config was loaded from."""
        return self._source

    @property
    def okr_set(self) -> OkrSet:
        """The objectives and key results of the OKR file (loaded by `load_config`)."""
        if self._okr_set is None:
            self._okr_set = load_okrs(self.okrs)
        return self._okr_set

    def connection(self, name: str) -> JiraConnection | AzureDevOpsConnection:
        for connection in self.connections:
            if connection.name == name:
                return connection
        raise KeyError(f"no connection named {name!r}")

    def required_env(self, *, include_email: bool = True) -> list[EnvRequirement]:
        """Every environment variable this config needs, in file order."""
        needed: list[EnvRequirement] = []
        if self.store.password_env:
            needed.append(EnvRequirement("store.password_env", self.store.password_env))
        for index, connection in enumerate(self.connections):
            for key_path, env in connection_secrets(connection).items():
                needed.append(EnvRequirement(f"connections[{index}].{key_path}", env))
        email = self.report.email
        if email.enabled and include_email:
            for key in ("user_env", "password_env"):
                env = getattr(email, key)
                if env:
                    needed.append(EnvRequirement(f"report.email.{key}", env))
        return needed

    def env_problems(self, *, include_email: bool = True) -> list[str]:
        """One line per environment variable that is named but unset (values never shown)."""
        return [
            f"{need.key_path}: environment variable {shown_env(need.env)} is not set"
            for need in self.required_env(include_email=include_email)
            if not need.is_set
        ]


def default_config_path() -> Path:
    """`$SPM_SYNC_CONFIG`, else `spm-sync.yaml` in the working directory."""
    return Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_FILE)


def read_config(path: str | Path) -> Config:
    """The config file alone, validated as a structure (the OKR file is not read and rules are
    not checked against it: see `reference_problems`)."""
    path = Path(path)
    display = str(path)
    data = read_yaml_mapping(path, display)
    try:
        config = Config.model_validate(data, context={"base_dir": path.parent.absolute()})
    except ValidationError as exc:
        raise ConfigError(validation_problems(display, exc, Config, data)) from None
    config._source = path.absolute()
    return config


def okr_display_path(config: Config) -> str:
    """The OKR file as the user would name it from the working directory."""
    try:
        return str(config.okrs.relative_to(Path.cwd()))
    except ValueError:
        return str(config.okrs)


def reference_problems(config: Config, okr_set: OkrSet, display: str) -> list[str]:
    """Rules that name a connection the config or a Key Result the OKR file does not have."""
    names = [connection.name for connection in config.connections]
    known = ", ".join(key_result.id for key_result in okr_set.key_results[:10])
    known += ", ..." if len(okr_set.key_results) > 10 else ""
    problems = []
    for index, rule in enumerate(config.alignment.rules):
        where = f"{display}: alignment.rules[{index}]"
        if rule.connection is not None and rule.connection not in names:
            problems.append(
                f"{where}.connection: no connection named {rule.connection!r} "
                f"(connections: {', '.join(names)})"
            )
        if okr_set.key_result(rule.key_result) is None:
            problems.append(
                f"{where}.key_result: {rule.key_result!r} is not a key result in "
                f"{okr_set.source_display} (known: {known})"
            )
    return problems + portfolio_reference_problems(okr_set, names)


def load_config(path: str | Path) -> Config:
    """The config and its OKR file, validated together; `ConfigError` lists every problem."""
    config = read_config(path)
    okr_set = load_okrs(config.okrs, display=okr_display_path(config))
    problems = reference_problems(config, okr_set, str(path))
    if problems:
        raise ConfigError(problems)
    config._okr_set = okr_set
    return config
