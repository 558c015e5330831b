"""Config loading: defaults, path resolution, crontab semantics, secrets, and the exact
one-line messages a user sees for a broken file."""

from __future__ import annotations

import copy
import re
import typing
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from pydantic import BaseModel

from spm_sync.config.connections import AzureDevOpsConnection, JiraConnection
from spm_sync.config.crontab import crontab_trigger, weekday_field
from spm_sync.config.model import Config, ConfigError, WriteMode, load_config, read_config
from spm_sync.core.domain import Level, StatusCategory

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "config" / "spm-sync.example.yaml"
OKRS = """\
objectives:
  - id: O1
    title: Grow
    key_results:
      - {id: KR-1, title: More customers}
      - {id: KR-2, title: Less churn, aliases: [churn]}
"""

JIRA: dict[str, Any] = {
    "kind": "jira",
    "name": "jira",
    "url": "https://example.atlassian.net",
    "auth": {"user_env": "JIRA_USER", "token_env": "JIRA_TOKEN"},
    "jql": "project = PAY",
    "wsjf_fields": {
        "business_value": "Business Value",
        "time_criticality": "Time Criticality",
        "risk_reduction": "Risk Reduction",
        "job_size": "Job Size",
    },
}
ADO: dict[str, Any] = {
    "kind": "azure_devops",
    "name": "ado",
    "url": "https://dev.azure.com/contoso",
    "project": "Platform",
    "auth": {"token_env": "ADO_PAT"},
    "wsjf_fields": {"risk_reduction": "Custom.Risk"},
}


def write_config(folder: Path, data: dict[str, Any] | str, name: str = "spm-sync.yaml") -> Path:
    (folder / "okrs.yaml").write_text(OKRS, encoding="utf-8")
    path = folder / name
    text = data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


def minimal() -> dict[str, Any]:
    return {"connections": [copy.deepcopy(JIRA), copy.deepcopy(ADO)]}


def problems_of(folder: Path, data: dict[str, Any] | str) -> list[str]:
    path = write_config(folder, data)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    prefix = f"{path}: "
    assert all(line.startswith(prefix) for line in caught.value.problems), caught.value.problems
    return [line.removeprefix(prefix) for line in caught.value.problems]


def test_minimal_config_gets_the_documented_defaults(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, minimal()))

    assert config.store.url == f"sqlite:///{tmp_path / 'spm-sync.db'}"
    assert config.okrs == tmp_path / "okrs.yaml"
    assert config.report.output_dir == tmp_path / "spm-sync-reports"
    assert config.write_back.mode is WriteMode.PLAN
    assert (config.schedule.cron, config.schedule.timezone) == ("0 6 * * 1-5", "UTC")
    assert config.alignment.levels == [Level.INITIATIVE, Level.EPIC, Level.FEATURE, Level.STORY]
    assert config.wsjf.levels == [Level.EPIC]
    assert config.wsjf.status_categories == [StatusCategory.TODO, StatusCategory.IN_PROGRESS]
    assert (config.wsjf.scale, config.wsjf.decimals, config.wsjf.tie_tolerance) == ("none", 2, 0)
    assert config.report.email.enabled is False and config.report.email.port == 587
    jira, ado = config.connections
    assert isinstance(jira, JiraConnection) and isinstance(ado, AzureDevOpsConnection)
    assert (jira.okr.label_prefix, jira.overlap_minutes, jira.deletion_scan_hours) == (
        "kr-",
        10,
        24,
    )
    assert jira.write_back.enabled is False
    assert ado.wsjf_fields.job_size == "Microsoft.VSTS.Scheduling.Effort"
    assert [kr.id for kr in config.okr_set.key_results] == ["KR-1", "KR-2"]
    assert config.source == tmp_path / "spm-sync.yaml"


def test_relative_paths_follow_the_config_file_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    (folder / "okr").mkdir()
    (folder / "okr" / "okrs.yaml").write_text(OKRS, encoding="utf-8")
    data = minimal() | {
        "store": {"url": "sqlite:///data/store.db"},
        "okrs": "okr/okrs.yaml",
        "report": {"output_dir": "../out"},
    }
    path = write_config(folder, data)
    monkeypatch.chdir(tmp_path)

    config = load_config(Path("etc") / "spm-sync.yaml")
    assert config.store.url == f"sqlite:///{folder / 'data' / 'store.db'}"
    assert config.okrs == folder / "okr" / "okrs.yaml"
    assert config.report.output_dir == folder / ".." / "out"
    assert read_config(path).store.url == config.store.url


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////var/lib/spm/spm.db",
        "sqlite:///:memory:",
        "sqlite://",
        "postgresql://spm@db.example.com:5432/spm",
        "postgresql+psycopg://spm@db/spm?options=-csearch_path%3Dspm",
    ],
)
def test_other_store_urls_are_kept(tmp_path: Path, url: str) -> None:
    config = load_config(write_config(tmp_path, minimal() | {"store": {"url": url}}))
    assert config.store.url == url


def test_example_config_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(EXAMPLE)
    assert [c.name for c in config.connections] == ["jira-cloud", "ado-platform"]
    assert config.okrs == EXAMPLE.parent / "okrs.example.yaml"
    assert config.report.email.sender == "spm-sync <portfolio-office@example.com>"
    jira = config.connections[0]
    assert jira.write_back.priority is not None
    assert [band.priority for band in jira.write_back.priority.bands] == ["Highest", "High"]
    ado = config.connections[1]
    assert ado.write_back.priority is not None and ado.write_back.priority.default == "3"
    assert config.alignment.rules[1].path == "Platform\\Deploy"


def test_names_yaml_reads_as_numbers_or_dates_stay_text(tmp_path: Path) -> None:
    text = yaml.safe_dump(minimal(), sort_keys=False) + (
        "alignment:\n  rules:\n    - {team: 2025-07-01, key_result: KR-1}\n"
        "wip_limits:\n  - {team: 42, limit: 3}\n"
    )
    config = load_config(write_config(tmp_path, text))
    assert config.alignment.rules[0].team == "2025-07-01"
    assert config.wip_limits[0].team == "42"
    text = text.replace("team: 42", "team: yes")
    assert problems_of(tmp_path, text) == [
        "wip_limits[0].team: input should be a valid string (found True)"
    ]


def _models(root: type[BaseModel]) -> dict[type[BaseModel], None]:
    """Every pydantic model reachable from `root`'s annotations."""
    found: dict[type[BaseModel], None] = {}

    def visit(annotation: Any) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation not in found:
                found[annotation] = None
                for field in annotation.model_fields.values():
                    visit(field.annotation)
            return
        for argument in typing.get_args(annotation):
            visit(argument)

    visit(root)
    return found


def _documented_keys(example: Path) -> tuple[set[str], set[str]]:
    text = example.read_text(encoding="utf-8")
    used = set(re.findall(r"^[ \t]*(?:- )?#?[ \t]*(?:- )?([a-z_]+):", text, re.MULTILINE))
    used |= set(re.findall(r"[{,] ?([a-z_]+):", text))
    described = set(re.findall(r"#.*?\b([a-z_]+) \(", text))
    return used, described


@pytest.mark.parametrize(
    ("example", "root"),
    [
        (EXAMPLE, Config),
        (REPO / "config" / "okrs.example.yaml", "OkrFile"),
    ],
)
def test_every_key_is_in_the_example_with_a_comment(example: Path, root: Any) -> None:
    if root == "OkrFile":
        from spm_sync.config.okrs import OkrFile

        root = OkrFile
    used, described = _documented_keys(example)
    keys = {
        info.alias or name for model in _models(root) for name, info in model.model_fields.items()
    }
    assert {"id", "title"} <= keys or {"connections", "store"} <= keys
    assert sorted(keys - used) == [], "keys missing from the example"
    assert sorted(keys - described) == [], "keys without a '# key (type, default): ...' comment"


@pytest.mark.parametrize(
    ("expression", "fires_on"),
    [
        ("0 6 * * 1-5", ["Mon", "Tue", "Wed", "Thu", "Fri"]),
        ("0 6 * * 0", ["Sun"]),
        ("0 6 * * 7", ["Sun"]),
        ("0 6 * * 5-7", ["Fri", "Sat", "Sun"]),
        ("0 6 * * */2", ["Sun", "Tue", "Thu", "Sat"]),
        ("0 6 * * 1,3", ["Mon", "Wed"]),
        ("0 6 * * mon-fri", ["Mon", "Tue", "Wed", "Thu", "Fri"]),
        ("0 6 * * *", ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]),
    ],
)
def test_crontab_weekdays_mean_what_crontab_means(expression: str, fires_on: list[str]) -> None:
    zone = ZoneInfo("Europe/Berlin")
    trigger = crontab_trigger(expression, zone)
    moment = datetime(2025, 3, 2, 7, 0, tzinfo=zone)  # a Sunday, after 06:00
    days = []
    for _ in range(7):
        moment = trigger.get_next_fire_time(None, moment)
        assert (moment.hour, moment.minute) == (6, 0)
        days.append(moment.strftime("%a"))
        moment = moment.replace(minute=1)
    assert set(days) == set(fires_on)


def test_weekday_field_rejects_out_of_range() -> None:
    assert weekday_field("1-5") == "mon,tue,wed,thu,fri"
    with pytest.raises(ValueError, match="0-7"):
        weekday_field("3-9")


def test_env_problems_name_variables_and_never_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JIRA_USER", "me@example.com")
    monkeypatch.setenv("JIRA_TOKEN", "s3cr3t-token-value")
    monkeypatch.delenv("ADO_PAT", raising=False)
    config = load_config(write_config(tmp_path, minimal()))

    assert config.env_problems() == [
        "connections[1].auth.token_env: environment variable ADO_PAT is not set"
    ]
    assert [need.env for need in config.required_env()] == ["JIRA_USER", "JIRA_TOKEN", "ADO_PAT"]
    assert "s3cr3t" not in repr(config) and "s3cr3t" not in str(config.model_dump())


def test_email_secrets_are_required_only_when_email_is_on(tmp_path: Path) -> None:
    email = {
        "enabled": True,
        "host": "smtp.example.com",
        "security": "ssl",
        "user_env": "SMTP_USER",
        "password_env": "SMTP_PASSWORD",
        "from": "spm@example.com",
        "to": ["boss@example.com"],
    }
    config = load_config(write_config(tmp_path, minimal() | {"report": {"email": email}}))
    assert config.report.email.port == 465
    assert [need.env for need in config.required_env()][-2:] == ["SMTP_USER", "SMTP_PASSWORD"]
    assert "SMTP_USER" not in [need.env for need in config.required_env(include_email=False)]


BROKEN_CASES: list[tuple[str, Any, list[str]]] = [
    (
        "missing required key",
        lambda d: d["connections"][1]["wsjf_fields"].pop("risk_reduction"),
        ["connections[1].wsjf_fields.risk_reduction: field required"],
    ),
    (
        "missing nested key in jira",
        lambda d: d["connections"][0]["wsjf_fields"].pop("job_size"),
        ["connections[0].wsjf_fields.job_size: field required"],
    ),
    (
        "secret value instead of env name",
        lambda d: d["connections"][0]["auth"].update(token="abc123"),
        [
            "connections[0].auth.token: unknown key; secrets never go in the config file: put "
            "the secret in an environment variable and name that variable in token_env"
        ],
    ),
    (
        "typo with suggestion",
        lambda d: d.update(report={"emial": {"enabled": False}}),
        ["report.emial: unknown key, did you mean email?"],
    ),
    (
        "unknown top-level key",
        lambda d: d.update(conections=[]),
        [
            "conections: unknown key, did you mean connections?",
        ],
    ),
    (
        "wrong type",
        lambda d: d.update(report={"top_n": "many"}),
        [
            "report.top_n: input should be a valid integer, unable to parse string as an "
            "integer (found 'many')"
        ],
    ),
    (
        "bad cron",
        lambda d: d.update(schedule={"cron": "61 6 * * *"}),
        [
            "schedule.cron: '61 6 * * *' is not a valid crontab expression: Error validating "
            "expression '61': the last value (61) is higher than the maximum value (59)"
        ],
    ),
    (
        "cron with 6 fields",
        lambda d: d.update(schedule={"cron": "0 0 6 * * 1-5"}),
        [
            "schedule.cron: '0 0 6 * * 1-5' is not a valid crontab expression: expected 5 "
            "fields (minute hour day-of-month month day-of-week), found 6"
        ],
    ),
    (
        "unknown time zone",
        lambda d: d.update(schedule={"timezone": "Europe/Berln"}),
        [
            "schedule.timezone: unknown time zone 'Europe/Berln', expected an IANA name such "
            "as UTC or Europe/Berlin"
        ],
    ),
    (
        "unknown kind",
        lambda d: d["connections"][1].update(kind="gitlab"),
        ["connections[1].kind: unknown kind 'gitlab', expected one of: jira, azure_devops"],
    ),
    (
        "missing kind",
        lambda d: d["connections"][0].pop("kind"),
        ["connections[0].kind: field required, one of: jira, azure_devops"],
    ),
    (
        "duplicate connection names",
        lambda d: d["connections"][1].update(name="JIRA"),
        ["connections: names must be unique: 'jira' is used by connections[0], connections[1]"],
    ),
    (
        "no connections",
        lambda d: d.update(connections=[]),
        ["connections: at least one connection is required"],
    ),
    (
        "bad auth method",
        lambda d: d["connections"][0]["auth"].update(method="oauth"),
        ["connections[0].auth.method: unknown method 'oauth', expected one of: basic, bearer"],
    ),
    (
        "password in the store URL",
        lambda d: d.update(store={"url": "postgresql://spm:hunter2@db/spm"}),
        [
            "store.url: the URL must not contain a password: put it in an environment "
            "variable and name that variable in store.password_env"
        ],
    ),
    (
        "password in a store URL too broken to parse",
        lambda d: d.update(store={"url": "postgresql//spm:hunter2@db/spm"}),
        [
            "store.url: 'postgresql//spm:***@db/spm' is not a database URL, e.g. "
            "sqlite:///spm-sync.db or postgresql://spm@db.example.com/spm"
        ],
    ),
    (
        "unknown placeholder in the email subject",
        lambda d: d.update(report={"email": {"subject": "Report {when}"}}),
        [
            "report.email.subject: 'Report {when}' uses unknown placeholder(s) when; known: "
            "run_id, date, status, alignment_pct, alignment_pct_job_size, orphans, "
            "uncovered_key_results, change, outcome"
        ],
    ),
    (
        "bad env var name",
        lambda d: d["connections"][1]["auth"].update(token_env="ado-pat"),
        ["connections[1].auth.token_env: must be letters, digits and _, not starting with a digit"],
    ),
    (
        "score written without a field",
        lambda d: d["connections"][0].update(write_back={"score": True}),
        ["connections[0]: write_back.score is on but wsjf_fields.score names no field"],
    ),
    (
        "priority bands out of order",
        lambda d: d["connections"][0].update(
            write_back={
                "priority": {
                    "bands": [
                        {"top_percent": 30, "priority": "High"},
                        {"top_percent": 10, "priority": "Highest"},
                    ]
                }
            }
        ),
        [
            "connections[0].write_back.priority.bands: top_percent must increase from one band to "
            "the next"
        ],
    ),
    (
        "email on without addresses",
        lambda d: d.update(report={"email": {"enabled": True, "host": "smtp.example.com"}}),
        ["report.email: enabled email needs from, to"],
    ),
    (
        "bad level name",
        lambda d: d.update(wsjf={"levels": ["epics"]}),
        [
            "wsjf.levels[0]: 'epics' is not a level, expected one of: task, story, feature, "
            "epic, initiative"
        ],
    ),
    (
        "rule without a condition",
        lambda d: d.update(alignment={"rules": [{"key_result": "KR-1"}]}),
        ["alignment.rules[0]: give at least one of project, area_path, team, component"],
    ),
    (
        "rule naming an unknown key result and connection",
        lambda d: d.update(
            alignment={
                "rules": [
                    {"key_result": "KR-1", "project": "PAY"},
                    {"key_result": "KR-9", "project": "PAY", "connection": "nope"},
                ]
            }
        ),
        [
            "alignment.rules[1].connection: no connection named 'nope' (connections: jira, ado)",
            "alignment.rules[1].key_result: 'KR-9' is not a key result in {okrs} (known: KR-1, "
            "KR-2)",
        ],
    ),
]


@pytest.mark.parametrize(
    ("change", "expected"),
    [case[1:] for case in BROKEN_CASES],
    ids=[case[0] for case in BROKEN_CASES],
)
def test_broken_config_messages(tmp_path: Path, change: Any, expected: list[str]) -> None:
    data = minimal()
    change(data)
    expected = [line.replace("{okrs}", str(tmp_path / "okrs.yaml")) for line in expected]
    problems = problems_of(tmp_path, data)
    assert problems == expected
    for line in problems:
        assert "pydantic" not in line and "function-" not in line and "[jira]" not in line


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    data = minimal()
    data["connections"][0]["workers"] = "ten"
    data["connections"][1]["okr"] = {"lable_prefix": "x"}
    data["write_back"] = {"mode": "yolo"}
    assert problems_of(tmp_path, data) == [
        "connections[0].workers: input should be a valid integer, unable to parse string as an "
        "integer (found 'ten')",
        "connections[1].okr.lable_prefix: unknown key, did you mean label_prefix?",
        "write_back.mode: input should be 'plan' or 'apply' (found 'yolo')",
    ]


def test_yaml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    text = "connections:\n  - kind: jira\n    name: [unclosed\n    url: x\n"
    (problem,) = problems_of(tmp_path, text)
    assert problem.startswith("line 4, column 8: invalid YAML: ")


def test_unquoted_cron_star_gets_a_hint(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path, "schedule:\n  cron: * * * * *\n")
    assert problem.startswith("line 2, column 10: invalid YAML:")
    assert problem.endswith("(quote values that start with '*', e.g. cron expressions)")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "connections:\n  - name: jira\n    okr:\n      label_prefix: kr:\n",
            "line 4, column 23: invalid YAML: mapping values are not allowed here "
            "(the value of label_prefix has a ':' in it: quote it, label_prefix: 'kr:')",
        ),
        (
            "report:\n  subject: OKRs: weekly\n",
            "line 2, column 16: invalid YAML: mapping values are not allowed here "
            "(the value of subject has a ':' in it: quote it, subject: 'OKRs: weekly')",
        ),
    ],
)
def test_a_value_with_a_colon_gets_a_hint_naming_the_key(
    tmp_path: Path, text: str, expected: str
) -> None:
    assert problems_of(tmp_path, text) == [expected]


def test_duplicate_yaml_key_is_an_error(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "okrs: a.yaml\nokrs: b.yaml\n") == [
        "line 2, column 1: invalid YAML: duplicate key 'okrs'"
    ]


@pytest.mark.parametrize(
    ("text", "found"), [("", "nothing"), ("- a\n", "a list"), ("just text\n", "a string")]
)
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str, found: str) -> None:
    assert problems_of(tmp_path, text) == [f"top level: expected a mapping of keys, found {found}"]


def test_missing_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.yaml")
    assert caught.value.problems == [f"{tmp_path / 'nope.yaml'}: file not found"]

    path = write_config(tmp_path, minimal() | {"okrs": "missing-okrs.yaml"})
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == [f"{tmp_path / 'missing-okrs.yaml'}: file not found"]
