"""The OKR file: domain objects, lookups, and the messages for a broken file."""

from __future__ import annotations

from pathlib import Path

import pytest

from spm_sync.config.okrs import OkrSet, load_okrs
from spm_sync.config.validation import ConfigError
from spm_sync.core.domain import KeyResult, Objective

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "okrs.example.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "okrs.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_okrs(path)
    return [line.removeprefix(f"{path}: ") for line in caught.value.problems]


def test_example_becomes_domain_objects() -> None:
    okrs = load_okrs(EXAMPLE)
    assert okrs.objectives[0] == Objective(
        id="O1", title="Customers pay without friction", owner="Head of Payments", period="2025-Q3"
    )
    assert okrs.key_results[0] == KeyResult(
        id="KR-1.1",
        objective_id="O1",
        title="Checkout conversion from 62% to 70%",
        target=70.0,
        current=64.5,
        baseline=62.0,
        aliases=("checkout", "PAY-1"),
    )
    assert [kr.id for kr in okrs.key_results_of("O2")] == ["KR-2.1", "KR-2.2"]
    assert okrs.key_results[3].aliases == ("platform", "4711")


def test_lookups_ignore_case_and_know_aliases() -> None:
    okrs = load_okrs(EXAMPLE)
    assert isinstance(okrs, OkrSet)
    assert okrs.key_result("kr-1.2") is okrs.key_results[1]
    assert okrs.key_result("checkout") is None  # an alias is not an id
    assert okrs.resolve("CHECKOUT") is okrs.key_results[0]
    assert okrs.resolve("kr-2.1") is okrs.key_results[2]
    assert okrs.resolve("nothing") is None
    assert okrs.objective("o2") is okrs.objectives[1]


def test_scalars_that_yaml_reads_as_numbers_or_dates_stay_names(tmp_path: Path) -> None:
    okrs = load_okrs(
        write(
            tmp_path,
            "objectives:\n"
            "  - id: 7\n    title: Seven\n    period: 2025-07-01\n"
            "    key_results:\n      - {id: 12, title: Twelve, aliases: [4711], target: 3}\n",
        )
    )
    assert okrs.objectives[0] == Objective(id="7", title="Seven", period="2025-07-01")
    assert okrs.key_results[0].aliases == ("4711",) and okrs.key_results[0].target == 3.0


def test_ids_are_unique_ignoring_case(tmp_path: Path) -> None:
    text = (
        "objectives:\n"
        "  - id: O1\n    title: A\n    key_results:\n"
        "      - {id: KR-1, title: x}\n      - {id: kr-1, title: y}\n"
        "  - id: o1\n    title: B\n"
    )
    assert problems(tmp_path, text) == [
        "objectives[0].key_results[1].id: 'kr-1' is already used by "
        "objectives[0].key_results[0] (ids and aliases ignore case)",
        "objectives[1].id: 'o1' is already used by objectives[0] (ids and aliases ignore case)",
    ]


def test_alias_must_not_name_another_key_result(tmp_path: Path) -> None:
    text = (
        "objectives:\n  - id: O1\n    title: A\n    key_results:\n"
        "      - {id: KR-1, title: x, aliases: [growth, KR-1]}\n"
        "      - {id: KR-2, title: y, aliases: [Growth, kr-1]}\n"
    )
    assert problems(tmp_path, text) == [
        "objectives[0].key_results[1].aliases[0]: 'Growth' is already used by "
        "objectives[0].key_results[0] (ids and aliases ignore case)",
        "objectives[0].key_results[1].aliases[1]: 'kr-1' is already used by "
        "objectives[0].key_results[0] (ids and aliases ignore case)",
    ]


def test_structure_problems_are_listed_together(tmp_path: Path) -> None:
    text = (
        "objectives:\n"
        "  - id: O1\n    owner: Me\n    key_results:\n"
        "      - {id: KR 1, title: x, target: lots, owner: 2}\n"
    )
    assert problems(tmp_path, text) == [
        "objectives[0].title: field required",
        "objectives[0].key_results[0].id: must be letters, digits, _ . : / or -, starting with "
        "a letter or digit (found 'KR 1')",
        "objectives[0].key_results[0].target: input should be a valid number, unable to parse "
        "string as a number (found 'lots')",
        "objectives[0].key_results[0].owner: unknown key, expected one of: id, title, target, "
        "current, baseline, aliases, weight, measure",
    ]


def test_empty_file_and_empty_objectives(tmp_path: Path) -> None:
    assert problems(tmp_path, "") == ["top level: expected a mapping of keys, found nothing"]
    assert problems(tmp_path, "objectives: []\n") == [
        "objectives: list should have at least 1 item after validation, not 0"
    ]


def test_yaml_error_names_the_line(tmp_path: Path) -> None:
    (problem,) = problems(tmp_path, "objectives:\n  - id: O1\n   title: bad indent\n")
    assert problem.startswith("line 3, column 4: invalid YAML: ")


def test_a_baseline_needs_a_target_it_differs_from(tmp_path: Path) -> None:
    text = (
        "objectives:\n"
        "  - id: O1\n    title: o\n    key_results:\n"
        "      - {id: KR-1, title: a, baseline: 3}\n"
        "      - {id: KR-2, title: b, baseline: 4, target: 4}\n"
        "      - {id: KR-3, title: c, baseline: 4.5, target: 2, current: 3}\n"
    )
    assert problems(tmp_path, text) == [
        "objectives[0].key_results[0]: baseline is set but target is not: progress needs both",
        "objectives[0].key_results[1]: baseline equals target (4): there is no way to go from "
        "one to the other",
    ]
