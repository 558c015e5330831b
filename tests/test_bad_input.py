"""The bad-input corpus (`tests/corpus/`): every malformed config, tracker answer or field value
gives a clear error or a per-item warning, never a traceback, and loses nothing already stored.

Configs go through `load_config` and through `spm-sync run`, whose exit status 2 and message
lines are asserted exactly. Tracker answers are tampered with on their way from the sandboxes
to a real cycle (`run_cycle`, plan mode) by `tests.tracker_tamper`; the store is compared
before and after each cycle.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from connectors.registry import default_connector_factory
from reports.settings import ReportOptions
from reports.view import build_view
from spm_sync.cli.main import main
from spm_sync.config.model import ConfigError, WriteMode, load_config
from spm_sync.core.domain import WorkItem
from spm_sync.pipeline.cycle import CycleDeps, CycleOutcome, run_cycle
from spm_sync.store import Store
from tests.cycle_fixtures import SandboxSetup, sandbox_setup
from tests.tracker_tamper import Rule, tampered

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CORPUS = Path(__file__).resolve().parent / "corpus"
CONFIGS = CORPUS / "config"
TRACKER = CORPUS / "tracker"
JIRA, ADO = "jira", "azure-devops"  # the connection names of the demo config
JIRA_SEARCH, ADO_BATCH, ADO_WIQL = r"/search/jql", r"/_apis/wit/workitemsbatch", r"/_apis/wit/wiql"

CONFIG_CASES: list[tuple[str, list[str]]] = [
    ("binary.yaml", ["binary.yaml: is not UTF-8 text"]),
    ("latin1.yaml", ["latin1.yaml: is not UTF-8 text"]),
    ("empty.yaml", ["empty.yaml: top level: expected a mapping of keys, found nothing"]),
    (
        "only_comment.yaml",
        ["only_comment.yaml: top level: expected a mapping of keys, found nothing"],
    ),
    (
        "top_level_list.yaml",
        ["top_level_list.yaml: top level: expected a mapping of keys, found a list"],
    ),
    (
        "unclosed_bracket.yaml",
        [
            "unclosed_bracket.yaml: line 10, column 16: invalid YAML: expected ',' or ']', but "
            "got ':'"
        ],
    ),
    (
        "tab_indent.yaml",
        [
            "tab_indent.yaml: line 4, column 1: invalid YAML: found character '\\t' that cannot "
            "start any token"
        ],
    ),
    (
        "cron_unquoted_star.yaml",
        [
            "cron_unquoted_star.yaml: line 2, column 10: invalid YAML: expected alphabetic or "
            "numeric character, but found '/' (quote values that start with '*', e.g. cron "
            "expressions)"
        ],
    ),
    (
        "duplicate_key.yaml",
        ["duplicate_key.yaml: line 15, column 1: invalid YAML: duplicate key 'okrs'"],
    ),
    (
        "typo_connections.yaml",
        [
            "typo_connections.yaml: connections: field required",
            "typo_connections.yaml: conections: unknown key, did you mean connections?",
        ],
    ),
    (
        "secret_value.yaml",
        [
            "secret_value.yaml: connections[0].auth.token_env: field required",
            "secret_value.yaml: connections[0].auth.token: unknown key; secrets never go in the "
            "config file: put the secret in an environment variable and name that variable in "
            "token_env",
        ],
    ),
    (
        "wrong_types.yaml",
        [
            "wrong_types.yaml: connections[0].workers: input should be a valid integer, unable "
            "to parse string as an integer (found 'many')",
            "wrong_types.yaml: connections[0].timeout_seconds: input should be greater than 0 "
            "(found -5)",
            "wrong_types.yaml: connections[0].verify_tls: input should be a valid boolean, unable "
            "to interpret input (found 'sometimes')",
        ],
    ),
    (
        "url_and_jql.yaml",
        [
            "url_and_jql.yaml: connections[0].url: must be an http(s) URL such as "
            "https://example.com (found 'example.atlassian.net/jira')",
            "url_and_jql.yaml: connections[0].jql: must not contain ORDER BY (spm-sync orders by "
            "key for stable paging)",
        ],
    ),
    ("okrs_missing.yaml", ["no-such-okrs.yaml: file not found"]),
    (
        "okrs_duplicate_ids.yaml",
        [
            "okrs-duplicate-ids.yml: objectives[0].key_results[1].id: 'kr-1' is already used by "
            "objectives[0].key_results[0] (ids and aliases ignore case)"
        ],
    ),
    (
        "rule_unknown_kr.yaml",
        [
            "rule_unknown_kr.yaml: alignment.rules[0].key_result: 'KR-7' is not a key result in "
            "okrs.yaml (known: KR-1, KR-2)"
        ],
    ),
]


@pytest.fixture
def in_corpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """Messages name files as the user gave them: relative to the corpus folder."""
    monkeypatch.chdir(CONFIGS)
    monkeypatch.setenv("JIRA_USER", "someone@example.com")
    monkeypatch.setenv("JIRA_TOKEN", "not-a-real-token")


@pytest.mark.usefixtures("in_corpus")
def test_the_corpus_base_config_is_valid() -> None:
    assert [c.name for c in load_config("valid.yaml").connections] == ["jira-cloud"]


@pytest.mark.usefixtures("in_corpus")
@pytest.mark.parametrize(("name", "expected"), CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_a_broken_config_is_one_clear_line_per_problem(name: str, expected: list[str]) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(name)
    assert raised.value.problems == expected


@pytest.mark.usefixtures("in_corpus")
@pytest.mark.parametrize(("name", "expected"), CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_spm_sync_run_refuses_a_broken_config_without_a_traceback(
    name: str, expected: list[str]
) -> None:
    result = CliRunner().invoke(main, ["run", "-c", name, "--plan", "--no-email"])
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)
    assert result.output.splitlines() == expected
    assert "Traceback" not in result.output


# -- tracker answers -------------------------------------------------------------------------


@dataclass
class Trackers:
    setup: SandboxSetup
    store: Store

    def cycle(self) -> CycleOutcome:
        factory = default_connector_factory(discovery_cache_dir=None)
        deps = CycleDeps(self.store, connector_factory=factory)
        return run_cycle(self.setup.config(), deps, mode=WriteMode.PLAN, send_email=False)

    def stored(self) -> dict[tuple[str, str], WorkItem]:
        items = self.store.load_items(include_deleted=True)
        return {(item.connection, item.key): item for item in items}

    def open_epic(self, tracker: str, index: int = 0) -> str:
        """The key of the index-th open epic (Azure DevOps: epic or feature), which WSJF scores."""
        seeds = self.setup.portfolio.jira if tracker == JIRA else self.setup.portfolio.azure_devops
        types = ("Epic",) if tracker == JIRA else ("Epic", "Feature")
        epics = [s for s in seeds if s.type in types and s.status_category != "Done"]
        return epics[index].key

    def retitle(self, tracker: str, key: str, title: str) -> None:
        """A human edit, so that the next incremental pull reads the item."""
        if tracker == JIRA:
            self.setup.jira.touch(key, summary=title)
        else:
            self.setup.ado.touch(int(key), **{"System.Title": title})


@pytest.fixture(scope="module")
def trackers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trackers]:
    folder = tmp_path_factory.mktemp("bad-input")
    with sandbox_setup(folder, size=300, seed=13) as setup:
        store = Store(setup.config().store.url)
        state = Trackers(setup, store)
        first = state.cycle()
        assert first.result is not None and first.result.status == "ok"
        yield state
        store.close()


def connection(outcome: CycleOutcome, name: str) -> Any:
    assert outcome.result is not None
    return next(health for health in outcome.result.connections if health.name == name)


def assert_nothing_lost(
    before: dict[tuple[str, str], WorkItem], after: dict[tuple[str, str], WorkItem], name: str
) -> None:
    """Same keys, nothing marked deleted, and the failed connection's items untouched."""
    assert after.keys() == before.keys()
    assert all(after[ref] == item for ref, item in before.items() if ref[0] == name)


ANSWER_CASES = [
    ("jira_truncated.json", JIRA, JIRA_SEARCH, "application/json",
     r"search issues: Jira answered 200 with a body that is not JSON"),
    ("login_page.html", JIRA, JIRA_SEARCH, "text/html; charset=utf-8",
     r"search issues: Jira answered 200 with a body that is not JSON"),
    ("null.json", JIRA, JIRA_SEARCH, "application/json",
     r"search issues: Jira answered 200 with JSON that is not an object"),
    ("list.json", JIRA, JIRA_SEARCH, "application/json",
     r"search issues: Jira answered 200 with JSON that is not an object"),
    ("ado_truncated.json", ADO, ADO_BATCH, "application/json",
     r"the batch read of \d+ work items failed: \('JSON is invalid: Unterminated string .*"),
    ("login_page.html", ADO, ADO_WIQL, "text/html; charset=utf-8",
     r"the WIQL query failed: Cannot deserialize content-type: text/html"),
    ("null.json", ADO, ADO_BATCH, "application/json",
     r"the batch read of \d+ work items failed: Azure DevOps answered with an unexpected body "
     r"\('NoneType' object has no attribute 'value'\)"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "name", "url", "content_type", "message"),
    ANSWER_CASES,
    ids=[f"{case[1]}-{case[0]}" for case in ANSWER_CASES],
)
def test_a_broken_answer_fails_only_its_connection_with_a_clear_error(
    trackers: Trackers,
    caplog: pytest.LogCaptureFixture,
    body: str,
    name: str,
    url: str,
    content_type: str,
    message: str,
) -> None:
    trackers.retitle(name, trackers.open_epic(name), f"edited before {body}")
    before = trackers.stored()
    rule = Rule(url, body=(TRACKER / body).read_bytes(), content_type=content_type)
    with caplog.at_level(logging.WARNING), tampered(rule):
        outcome = trackers.cycle()

    assert outcome.result is not None and outcome.result.status == "partial"
    assert outcome.exit_status == 1
    assert re.fullmatch(message, connection(outcome, name).error)
    other = ADO if name == JIRA else JIRA
    assert connection(outcome, other).error is None
    assert "Traceback" not in caplog.text
    assert_nothing_lost(before, trackers.stored(), name)


def test_bytes_that_are_not_utf8_become_replacement_characters(trackers: Trackers) -> None:
    latin1 = (TRACKER / "latin1_title.bin").read_bytes()
    keys = {JIRA: trackers.open_epic(JIRA, 1), ADO: trackers.open_epic(ADO, 1)}
    for name, key in keys.items():
        trackers.retitle(name, key, "REPLACE-ME")
    before = trackers.stored()

    def latin1_title(data: bytes) -> bytes:
        return data.replace(b"REPLACE-ME", latin1)

    with tampered(Rule(JIRA_SEARCH, rewrite=latin1_title), Rule(ADO_BATCH, rewrite=latin1_title)):
        outcome = trackers.cycle()

    assert outcome.result is not None and outcome.result.status == "ok"
    for name, key in keys.items():
        stored = trackers.store.get_item(name, key)
        assert (
            stored is not None
            and stored.title == "Caf\ufffd cr\ufffdme \ufffdbr\ufffdl\ufffde\ufffd"
        )
    assert trackers.stored().keys() == before.keys()


def _set_fields(changes: dict[str, Any], key: str) -> Any:
    """A rewrite that sets `changes` (field id → value) on the item `key` of a JSON page."""

    def rewrite(data: bytes) -> bytes:
        page = json.loads(data)
        for item in page.get("issues") or page.get("value") or []:
            if str(item.get("key", item.get("id"))) == key:
                item["fields"].update(changes)
        return json.dumps(page).encode()

    return rewrite


def test_wrong_types_in_wsjf_fields_leave_the_item_unscored_with_the_reason(
    trackers: Trackers,
) -> None:
    corpus = json.loads((TRACKER / "wrong_types.json").read_text(encoding="utf-8"))
    jira_changes = {trackers.setup.jira.field_id(n): v for n, v in corpus["jira"].items()}
    keys = {JIRA: trackers.open_epic(JIRA, 2), ADO: trackers.open_epic(ADO, 2)}
    for name, key in keys.items():
        trackers.retitle(name, key, "wrong types ahead")
    rules = (
        Rule(JIRA_SEARCH, rewrite=_set_fields(jira_changes, keys[JIRA])),
        Rule(ADO_BATCH, rewrite=_set_fields(corpus["azure_devops"], keys[ADO])),
    )
    with tampered(*rules):
        outcome = trackers.cycle()

    assert outcome.result is not None and outcome.result.status == "ok"
    rows = {(row.connection, row.key): row for row in outcome.result.wsjf}
    assert rows[(JIRA, keys[JIRA])].reason_unscored == (
        "business value: Business Value: 'lots' is not a number; time criticality: Time "
        "Criticality: [5] is not a number; job size: Job Size: {'amount': 8} is not a number"
    )
    assert rows[(ADO, keys[ADO])].reason_unscored == (
        "business value: Microsoft.VSTS.Common.BusinessValue: 'lots' is not a number; time "
        "criticality: Microsoft.VSTS.Common.TimeCriticality: [5] is not a number; job size: "
        "Microsoft.VSTS.Scheduling.Effort: {'amount': 8} is not a number"
    )
    for name, key in keys.items():
        stored = trackers.store.get_item(name, key)
        assert stored is not None and stored.title == "wrong types ahead"
        assert set(stored.field_problems) == {"business_value", "time_criticality", "job_size"}


def test_an_item_with_broken_core_fields_is_skipped_with_a_warning_and_kept(
    trackers: Trackers,
) -> None:
    corpus = json.loads((TRACKER / "broken_core_fields.json").read_text(encoding="utf-8"))
    keys = {JIRA: trackers.open_epic(JIRA, 3), ADO: trackers.open_epic(ADO, 3)}
    for name, key in keys.items():
        trackers.retitle(name, key, "broken core fields ahead")
    before = trackers.stored()
    rules = (
        Rule(JIRA_SEARCH, rewrite=_set_fields(corpus["jira"], keys[JIRA])),
        Rule(ADO_BATCH, rewrite=_set_fields(corpus["azure_devops"], keys[ADO])),
    )
    with tampered(*rules):
        outcome = trackers.cycle()

    assert outcome.result is not None and outcome.result.status == "ok"
    assert f"{keys[JIRA]}: skipped, updated 'yesterday' is not a timestamp" in (
        connection(outcome, JIRA).warnings
    )
    assert (
        f"skipped a malformed work item: work item {keys[ADO]}: System.WorkItemType is "
        "missing" in connection(outcome, ADO).warnings
    )
    shown = build_view(outcome.result, ReportOptions()).warnings.rows
    assert any(line.startswith(f"{ADO}: skipped a malformed work item") for line in shown)
    assert not any(line.startswith(f"{ADO}: {ADO}:") for line in shown)
    after = trackers.stored()
    assert after.keys() == before.keys()
    for name, key in keys.items():  # the version stored before is kept, not dropped
        assert after[(name, key)] == before[(name, key)]


def test_huge_titles_and_hostile_html_are_stored_whole_and_reported_escaped(
    trackers: Trackers,
) -> None:
    hostile = (TRACKER / "hostile_title.txt").read_text(encoding="utf-8")
    huge = "H" * 1_000_000
    jira_key, ado_key = trackers.open_epic(JIRA, 4), trackers.open_epic(ADO, 4)
    top = {"business_value": 100, "time_criticality": 100, "risk_reduction": "100", "job_size": 1}
    trackers.setup.jira.touch(jira_key, summary=huge, **top)
    trackers.setup.ado.touch(
        int(ado_key),
        **{
            "System.Title": hostile,
            "Microsoft.VSTS.Common.BusinessValue": 100,
            "Microsoft.VSTS.Common.TimeCriticality": 100,
            "Custom.RiskReduction": 100,
            "Microsoft.VSTS.Scheduling.Effort": 1,
        },
    )
    outcome = trackers.cycle()

    assert outcome.result is not None and outcome.result.status == "ok"
    stored_jira, stored_ado = (
        trackers.store.get_item(JIRA, jira_key),
        trackers.store.get_item(ADO, ado_key),
    )
    assert stored_jira is not None and stored_jira.title == huge
    assert stored_ado is not None and stored_ado.title == hostile
    assert outcome.report is not None
    html = Path(outcome.report.paths.html).read_text(encoding="utf-8")
    rows = {(row.connection, row.key): row for row in outcome.result.wsjf}
    assert rows[(JIRA, jira_key)].new_rank == rows[(ADO, ado_key)].new_rank == 1
    assert "<script" not in html and "<img src=x" not in html and "<b>bold" not in html
    assert "&lt;script&gt;alert(" in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert len(html.encode()) < 102_400  # still under Gmail's clipping size
