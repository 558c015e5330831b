"""The `spm-sync` command line: help, config errors, `check`, and the hand-off to the parts
that run the pipeline (replaced here by stand-in modules, so the wiring is what is tested)."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from spm_sync.cli.main import main
from spm_sync.config.model import Config, WriteMode
from spm_sync.core.checks import CheckLine

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "config" / "spm-sync.example.yaml"
EXAMPLE_ENV = ("JIRA_USER", "JIRA_TOKEN", "ADO_PAT", "SMTP_USER", "SMTP_PASSWORD")
OKRS = "objectives:\n  - id: O1\n    title: Grow\n    key_results:\n      - {id: KR-1, title: A}\n"
GOOD = {
    "connections": [
        {
            "kind": "azure_devops",
            "name": "ado",
            "url": "https://dev.azure.com/contoso",
            "project": "Platform",
            "auth": {"token_env": "SPM_TEST_ADO_PAT"},
            "wsjf_fields": {"risk_reduction": "Custom.Risk"},
        }
    ]
}


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), prog_name="spm-sync", env=env)


def write_config(folder: Path, data: dict[str, Any] | str) -> Path:
    (folder / "okrs.yaml").write_text(OKRS, encoding="utf-8")
    path = folder / "spm-sync.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.fixture
def secrets_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*EXAMPLE_ENV, "SPM_TEST_ADO_PAT"):
        monkeypatch.setenv(name, f"value-of-{name.lower()}")


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Install a stand-in module whose functions record their calls."""

    def install(module: str, function: str, returns: Any = 0) -> list[tuple[Any, ...]]:
        calls: list[tuple[Any, ...]] = []
        fake = types.ModuleType(module)

        def record(*args: Any, **kwargs: Any) -> Any:
            calls.append((args, kwargs))
            return returns(*args) if callable(returns) else returns

        setattr(fake, function, record)
        monkeypatch.setitem(sys.modules, module, fake)
        return calls

    return install


COMMANDS = {
    "": ["run", "serve", "demo", "check", "report", "undo", "sandbox", "--verbose"],
    "run": ["--config", "--apply", "--plan", "--no-email", "--json", "SPM_SYNC_CONFIG"],
    "serve": ["--config", "schedule", "--every", "--run-now"],
    "demo": ["--items", "--out", "--seed"],
    "check": ["--config", "--online"],
    "report": ["--config", "--run", "--send"],
    "undo": ["--config", "--run", "--apply", "--plan"],
    "sandbox": ["--host", "--jira-port", "--ado-port", "--items", "--seed"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_has_help(command: str) -> None:
    result = invoke(*([command] if command else []), "--help")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: spm-sync {command}".rstrip())
    for option in COMMANDS[command]:
        assert option in result.output


BAD_CONFIGS = [
    (
        {"connections": [{**GOOD["connections"][0], "wsjf_fields": {}}]},
        "connections[0].wsjf_fields.risk_reduction: field required",
    ),
    (
        {"connections": [{**GOOD["connections"][0], "auth": {"token_env": "T", "token": "x"}}]},
        "connections[0].auth.token: unknown key; secrets never go in the config file: put the "
        "secret in an environment variable and name that variable in token_env",
    ),
    (
        {**GOOD, "report": {"ouput_dir": "x"}},
        "report.ouput_dir: unknown key, did you mean output_dir?",
    ),
    (
        {**GOOD, "wsjf": {"decimals": "two"}},
        "wsjf.decimals: input should be a valid integer, unable to parse string as an integer "
        "(found 'two')",
    ),
    (
        {**GOOD, "schedule": {"cron": "0 25 * * *"}},
        "schedule.cron: '0 25 * * *' is not a valid crontab expression: Error validating "
        "expression '25': the last value (25) is higher than the maximum value (23)",
    ),
    (
        {"connections": [{**GOOD["connections"][0], "kind": "trello"}]},
        "connections[0].kind: unknown kind 'trello', expected one of: jira, azure_devops",
    ),
    (
        {"connections": [GOOD["connections"][0], GOOD["connections"][0]]},
        "connections: names must be unique: 'ado' is used by connections[0], connections[1]",
    ),
    (
        "connections:\n  - kind: jira\n  name: broken\n",
        "line 3, column 3: invalid YAML: expected <block end>, but found '?'",
    ),
    (
        "connections:\n  - kind: jira\n    okr:\n      label_prefix: kr:\n",
        "line 4, column 23: invalid YAML: mapping values are not allowed here (the value of "
        "label_prefix has a ':' in it: quote it, label_prefix: 'kr:')",
    ),
    (
        {**GOOD, "wsjf": {"tie_tolerance": -0.5}},
        "wsjf.tie_tolerance: input should be greater than or equal to 0 (found -0.5)",
    ),
]


@pytest.mark.parametrize(("data", "message"), BAD_CONFIGS)
def test_bad_config_exits_2_with_one_line_per_problem(
    tmp_path: Path, stand_in: Any, data: Any, message: str
) -> None:
    calls = stand_in("spm_sync.cli.commands", "run_command")
    path = write_config(tmp_path, data)
    result = invoke("run", "-c", str(path))
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [f"{path}: {message}"]
    assert calls == []


def test_missing_secrets_stop_a_run_before_it_starts(tmp_path: Path, stand_in: Any) -> None:
    calls = stand_in("spm_sync.cli.commands", "run_command")
    path = write_config(tmp_path, GOOD)
    result = invoke("run", "-c", str(path), env={"SPM_TEST_ADO_PAT": ""})
    assert result.exit_code == 2
    assert result.stderr == (
        f"{path}: connections[0].auth.token_env: environment variable SPM_TEST_ADO_PAT is not set\n"
    )
    assert calls == []


def test_run_hands_the_options_to_the_pipeline(
    tmp_path: Path, stand_in: Any, secrets_set: None
) -> None:
    calls = stand_in("spm_sync.cli.commands", "run_command", returns=3)
    path = write_config(tmp_path, GOOD)
    out = tmp_path / "result.json"

    result = invoke("run", "-c", str(path), "--apply", "--no-email", "--json", str(out))
    assert result.exit_code == 3
    ((args, kwargs),) = calls
    assert isinstance(args[0], Config) and args[0].connections[0].name == "ado"
    assert kwargs == {"mode": WriteMode.APPLY, "send_email": False, "json_path": out}

    invoke("run", "-c", str(path))
    assert calls[1][1] == {"mode": None, "send_email": True, "json_path": None}


def test_config_comes_from_env_var_then_working_directory(
    tmp_path: Path, stand_in: Any, secrets_set: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = stand_in("spm_sync.pipeline.scheduler", "serve")
    path = write_config(tmp_path, GOOD)
    assert invoke("serve", env={"SPM_SYNC_CONFIG": str(path)}).exit_code == 0
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SPM_SYNC_CONFIG", raising=False)
    assert invoke("serve").exit_code == 0
    assert [args[0].source for args, _ in calls] == [path, path]
    assert calls[0][1] == {"interval_seconds": None, "run_now": False}
    assert invoke("serve", "--every", "5", "--run-now").exit_code == 0
    assert calls[2][1] == {"interval_seconds": 5, "run_now": True}


@pytest.mark.parametrize(
    ("args", "module", "function", "expected"),
    [
        (
            ["report", "--run", "4", "--send", "--audit"],
            "spm_sync.cli.commands",
            "report_command",
            {"run_id": 4, "send": True, "full_audit": True},
        ),
        (
            ["undo", "--run", "4", "--plan"],
            "spm_sync.cli.commands",
            "undo_command",
            {"run_id": 4, "mode": WriteMode.PLAN},
        ),
    ],
)
def test_report_and_undo_hand_off(
    tmp_path: Path,
    stand_in: Any,
    secrets_set: None,
    args: list[str],
    module: str,
    function: str,
    expected: dict[str, Any],
) -> None:
    calls = stand_in(module, function)
    path = write_config(tmp_path, GOOD)
    assert invoke(*args, "-c", str(path)).exit_code == 0
    assert calls[0][1] == expected


def test_demo_and_sandbox_need_no_config(stand_in: Any, tmp_path: Path) -> None:
    demo = stand_in("spm_sync.cli.demo", "run_demo")
    sandbox = stand_in("connectors.sandbox.cli", "serve_sandboxes")
    assert invoke("demo", "--items", "500", "--out", str(tmp_path)).exit_code == 0
    assert invoke("sandbox", "--jira-port", "8081").exit_code == 0
    assert demo[0][1] == {"items": 500, "out_dir": tmp_path, "seed": 7}
    assert sandbox[0][1] == {
        "host": "127.0.0.1",
        "jira_port": 8081,
        "ado_port": 0,
        "items": 400,
        "seed": 7,
    }


def test_help_starts_without_loading_the_pipeline() -> None:
    """The commands import what they drive inside their function: `--help` (and a typo'd
    command) answer without loading the pipeline, the scheduler, the charts or the sandboxes."""
    heavy = (
        "spm_sync.cli.commands",
        "spm_sync.pipeline.scheduler",
        "spm_sync.cli.demo",
        "matplotlib",
    )
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from spm_sync.cli.main import main\n"
        "result = CliRunner().invoke(main, ['--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_check_passes_on_the_example_when_secrets_are_set(secrets_set: None) -> None:
    result = invoke("check", "-c", str(EXAMPLE))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert all(line.startswith("✓ ") for line in lines)
    assert lines[0] == f"✓ config {EXAMPLE} is valid (connections: jira-cloud, ado-platform)"
    assert "✓ JIRA_TOKEN is set (connections[0].auth.token_env)" in lines
    assert "✓ alignment rules name existing connections and key results (3 rules)" in lines


def test_check_fails_with_a_fix_for_each_missing_secret(
    secrets_set: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JIRA_TOKEN")
    monkeypatch.setenv("ADO_PAT", "")
    result = invoke("check", "-c", str(EXAMPLE))
    assert result.exit_code == 1
    failures = [line for line in result.stdout.splitlines() if line.startswith("✗")]
    assert failures == [
        "✗ JIRA_TOKEN is not set (connections[0].auth.token_env) (fix: export JIRA_TOKEN=... "
        "in the environment spm-sync runs in)",
        "✗ ADO_PAT is not set (connections[1].auth.token_env) (fix: export ADO_PAT=... in "
        "the environment spm-sync runs in)",
    ]
    assert "value-of" not in result.output


def test_check_reports_config_and_rule_problems(tmp_path: Path, secrets_set: None) -> None:
    rules = {"rules": [{"key_result": "KR-7", "project": "PAY"}]}
    path = write_config(tmp_path, {**GOOD, "alignment": rules})
    result = invoke("check", "-c", str(path))
    assert result.exit_code == 1
    assert (
        f"✗ {path}: alignment.rules[0].key_result: 'KR-7' is not a key result in "
        f"{tmp_path / 'okrs.yaml'} (known: KR-1) (fix: correct the rule, or add the key result "
        "to the OKR file)"
    ) in result.stdout.splitlines()

    broken = write_config(tmp_path, {"connections": []})
    result = invoke("check", "-c", str(broken))
    assert result.exit_code == 2  # a config that cannot be loaded: 2, as for every command
    assert result.stdout.splitlines() == [
        f"✗ {broken}: connections: at least one connection is required (fix: edit {broken}; "
        "every key is documented in spm-sync.example.yaml)"
    ]


def test_check_online_adds_the_online_lines(
    tmp_path: Path, stand_in: Any, secrets_set: None
) -> None:
    lines = [
        CheckLine(True, "ado: project Platform exists"),
        CheckLine(False, "ado: no field", "x"),
    ]
    calls = stand_in("spm_sync.cli.online_check", "check_online", returns=lines)
    result = invoke("check", "-c", str(write_config(tmp_path, GOOD)), "--online")
    assert result.exit_code == 1
    assert result.stdout.splitlines()[-2:] == [
        "✓ ado: project Platform exists",
        "✗ ado: no field (fix: x)",
    ]
    assert len(calls) == 1


def test_python_dash_m_runs_the_cli() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    completed = subprocess.run(
        [sys.executable, "-m", "spm_sync", "--help"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("Usage: spm-sync ")
