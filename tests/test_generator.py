"""The seeded portfolio: deterministic, hierarchical, aligned to OKRs with realistic gaps."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from connectors.sandbox.generator import FIBONACCI, NOT_A_NUMBER, generate_portfolio
from connectors.sandbox.portfolio import SeedItem, SeedPortfolio

NOW = datetime(2025, 6, 1, tzinfo=UTC)
JIRA_PARENT_TYPES = {
    "Sub-task": {"Story", "Bug", "Task"},
    "Story": {"Epic"},
    "Bug": {"Epic"},
    "Task": {"Epic"},
    "Epic": {"Initiative"},
}
ADO_PARENT_TYPES = {
    "Task": {"User Story", "Bug"},
    "User Story": {"Feature"},
    "Bug": {"Feature"},
    "Feature": {"Epic"},
}


@pytest.fixture(scope="module")
def portfolio() -> SeedPortfolio:
    return generate_portfolio(20_000, seed=11, now=NOW)


def _aligned_keys(items: list[SeedItem], kr_ids: set[str], kr_items: set[str]) -> set[str]:
    """Keys with an alignment path: own KR label/tag, a link to a KR item, or an aligned
    ancestor. Written independently of the generator's own bookkeeping."""
    by_key = {item.key: item for item in items}
    aligned: dict[str, bool] = {}

    def is_aligned(item: SeedItem) -> bool:
        if item.key not in aligned:
            own_label = any(
                label.lower().startswith("kr-") and label[3:] in kr_ids for label in item.labels
            )
            own_link = any(link.target in kr_items for link in item.links)
            parent = by_key.get(item.parent) if item.parent else None
            aligned[item.key] = own_label or own_link or (parent is not None and is_aligned(parent))
        return aligned[item.key]

    return {item.key for item in items if is_aligned(item)}


def test_same_seed_same_portfolio_and_other_seed_differs() -> None:
    first = generate_portfolio(500, seed=3, now=NOW)
    again = generate_portfolio(500, seed=3, now=NOW)
    other = generate_portfolio(500, seed=4, now=NOW)
    assert first == again
    assert [i.title for i in first.jira] != [i.title for i in other.jira]


@pytest.mark.parametrize(("size", "share"), [(100, 0.6), (1_000, 0.0), (1_000, 1.0), (2_345, 0.3)])
def test_sizes_and_tracker_split(size: int, share: float) -> None:
    portfolio = generate_portfolio(size, jira_share=share, now=NOW)
    assert portfolio.size == size
    assert len(portfolio.jira) == round(size * share)
    assert all(item.tracker == "jira" for item in portfolio.jira)
    assert all(item.tracker == "azure_devops" for item in portfolio.azure_devops)
    keys = [item.key for item in portfolio.jira]
    ids = [item.id for item in portfolio.azure_devops]
    assert len(set(keys)) == len(keys)
    assert len(set(ids)) == len(ids)
    assert all(item.key == str(item.id) for item in portfolio.azure_devops)


@pytest.mark.parametrize(("size", "share"), [(99, 0.6), (200_001, 0.6), (1_000, 1.5)])
def test_out_of_range_arguments_are_refused(size: int, share: float) -> None:
    with pytest.raises(ValueError, match="must be between"):
        generate_portfolio(size, jira_share=share)


def test_jira_hierarchy_is_initiative_epic_story_subtask(portfolio: SeedPortfolio) -> None:
    by_key = {item.key: item for item in portfolio.jira}
    types = Counter(item.type for item in portfolio.jira)
    assert set(types) == {"Initiative", "Epic", "Story", "Bug", "Task", "Sub-task", "Key Result"}
    for item in portfolio.jira:
        if item.parent is None:
            assert item.type != "Sub-task", item
            continue
        parent = by_key[item.parent]
        assert parent.type in JIRA_PARENT_TYPES[item.type], (item.key, item.type, parent.type)
        if item.type == "Sub-task":
            assert parent.project == item.project
    assert sum(1 for item in portfolio.jira if item.parent is None and item.type == "Epic") > 0


def test_azure_devops_hierarchy_is_epic_feature_story_task(portfolio: SeedPortfolio) -> None:
    by_key = {item.key: item for item in portfolio.azure_devops}
    assert {item.type for item in portfolio.azure_devops} == {
        "Epic", "Feature", "User Story", "Bug", "Task", "Key Result",
    }  # fmt: skip
    for item in portfolio.azure_devops:
        assert item.project.startswith("Portfolio\\")
        if item.parent is not None:
            parent = by_key[item.parent]
            assert parent.type in ADO_PARENT_TYPES[item.type], (item.key, item.type, parent.type)
            assert item.project.startswith("\\".join(parent.project.split("\\")[:2]))


def test_timestamps_spread_over_the_last_90_days(portfolio: SeedPortfolio) -> None:
    items = portfolio.jira + portfolio.azure_devops
    assert all(item.created < item.updated <= NOW for item in items)
    ages = [NOW - item.updated for item in items]
    assert max(ages) <= timedelta(days=90)
    assert max(ages) > timedelta(days=75)
    assert sum(age < timedelta(days=1) for age in ages) > len(items) / 200
    assert all(item.updated.tzinfo is not None for item in items)


def test_titles_are_realistic_and_include_unicode_and_markup(portfolio: SeedPortfolio) -> None:
    titles = [item.title for item in portfolio.jira + portfolio.azure_devops]
    assert len(set(titles)) > 1_000
    assert any(not title.isascii() for title in titles)
    assert any("<" in title for title in titles)
    assert any("&" in title for title in titles)
    assert all(title.strip() == title and title for title in titles)


def test_okrs_match_labels_links_and_key_result_items(portfolio: SeedPortfolio) -> None:
    objective_ids = {objective.id for objective in portfolio.objectives}
    kr_ids = {kr.id for kr in portfolio.key_results}
    assert all(kr.objective_id in objective_ids for kr in portfolio.key_results)
    jira_krs = {i.key: i for i in portfolio.jira if i.type == "Key Result"}
    ado_krs = {i.key: i for i in portfolio.azure_devops if i.type == "Key Result"}
    assert all(key.startswith("OKR-") for key in jira_krs)
    for kr in portfolio.key_results:
        assert {alias for alias in kr.aliases if alias.startswith("OKR-")} <= set(jira_krs)
        assert len(kr.aliases) == 2
    targets = Counter()
    for item in portfolio.jira + portfolio.azure_devops:
        for label in item.labels:
            if label.lower().startswith("kr-"):
                assert label[3:] in kr_ids
                targets[label[3:]] += 1
        for link in item.links:
            if link.type == "Drives":
                assert link.target in jira_krs
    related_krs = [
        link.target
        for item in portfolio.azure_devops
        for link in item.links
        if link.target in ado_krs
    ]
    assert related_krs
    driven = set(targets)
    assert driven < kr_ids, "some Key Results must be driven by nothing"
    labels = [
        label for item in portfolio.jira for label in item.labels if label[:3].lower() == "kr-"
    ]
    assert {label[:3] for label in labels} >= {"kr-", "KR-", "Kr-"}
    assert any(tag.startswith("KR-") for item in portfolio.azure_devops for tag in item.labels)


def test_about_15_percent_of_work_is_orphaned(portfolio: SeedPortfolio) -> None:
    kr_ids = {kr.id for kr in portfolio.key_results}
    kr_items = {alias for kr in portfolio.key_results for alias in kr.aliases}
    for items in (portfolio.jira, portfolio.azure_devops):
        work = [item for item in items if item.type != "Key Result"]
        aligned = _aligned_keys(
            work + [i for i in items if i.type == "Key Result"], kr_ids, kr_items
        )
        orphans = [item for item in work if item.key not in aligned]
        assert 0.10 < len(orphans) / len(work) < 0.20


def test_wsjf_inputs_have_realistic_gaps(portfolio: SeedPortfolio) -> None:
    scored = [i for i in portfolio.jira if i.type in ("Initiative", "Epic")]
    scored += [i for i in portfolio.azure_devops if i.type in ("Epic", "Feature")]
    unscored = [i for i in portfolio.jira if i.type in ("Story", "Sub-task")]
    assert all(i.business_value is None and i.job_size is None for i in unscored)
    inputs = [(i.business_value, i.time_criticality, i.risk_reduction, i.job_size) for i in scored]
    missing = sum(any(value is None for value in values) for values in inputs) / len(inputs)
    zero_size = sum(values[3] == 0 for values in inputs) / len(inputs)
    not_numbers = [values[2] for values in inputs if isinstance(values[2], str)]
    assert 0.07 < missing < 0.13
    assert 0.01 < zero_size < 0.03
    assert 0.004 < len(not_numbers) / len(inputs) < 0.02
    assert set(not_numbers) <= set(NOT_A_NUMBER)
    numbers = {v for values in inputs for v in values if isinstance(v, int) and v != 0}
    assert numbers == set(FIBONACCI)


def test_statuses_cover_the_three_categories(portfolio: SeedPortfolio) -> None:
    for items in (portfolio.jira, portfolio.azure_devops):
        categories = Counter(item.status_category for item in items)
        assert set(categories) == {"To Do", "In Progress", "Done"}
        assert min(categories.values()) > len(items) / 5
    done_states = {i.status for i in portfolio.azure_devops if i.status_category == "Done"}
    assert done_states == {"Closed"}
    assert {i.status for i in portfolio.jira if i.status_category == "In Progress"} == {
        "In Progress", "In Review",
    }  # fmt: skip


@pytest.mark.slow
def test_largest_portfolio_is_generated_in_seconds() -> None:
    started = time.perf_counter()
    portfolio = generate_portfolio(200_000, now=NOW)
    elapsed = time.perf_counter() - started
    assert portfolio.size == 200_000
    assert len(portfolio.key_results) == 60
    assert elapsed < 20, f"{elapsed:.1f}s"
