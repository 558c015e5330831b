"""Dependency risk: items ranked above what they wait for, items blocked by unfinished orphan
work, cycles reported once, done work and unknown items, and chains through cycles."""

from __future__ import annotations

from spm_sync.engines.portfolio.dependencies import (
    MAX_CHAIN,
    Dependency,
    RankedItem,
    dependency_risk,
)


def ref(key: str) -> tuple[str, str]:
    return ("jira", key)


def ranked(key: str, rank: int | None, *, done: bool = False, orphan: bool = False) -> RankedItem:
    return RankedItem(ref(key), rank, done, orphan)


def waits(dependent: str, prerequisite: str) -> Dependency:
    return Dependency(ref(dependent), ref(prerequisite), "is blocked by")


def keys(chain: tuple[tuple[str, str], ...]) -> list[str]:
    return [key for _, key in chain]


def test_an_item_ranked_above_what_it_waits_for_is_flagged_with_the_chain() -> None:
    risk = dependency_risk(
        [ranked("A", 1), ranked("B", 2), ranked("S", None), ranked("C", 5)],
        [waits("A", "B"), waits("B", "S"), waits("S", "C")],
    )
    assert [
        (c.item[1], c.rank, c.prerequisite[1], c.prerequisite_rank) for c in risk.rank_conflicts
    ] == [("A", 1, "C", 5), ("B", 2, "C", 5)]
    assert keys(risk.rank_conflicts[0].chain) == ["A", "B", "S", "C"]
    assert not risk.rank_conflicts[0].through_cycle
    assert not risk.cycles and not risk.orphan_blocks and not risk.unknown


def test_waiting_for_higher_ranked_or_done_work_is_fine() -> None:
    risk = dependency_risk(
        [ranked("A", 3), ranked("B", 1), ranked("C", 9, done=True), ranked("D", 2)],
        [waits("A", "B"), waits("D", "C"), waits("C", "A")],
    )
    assert risk.rank_conflicts == ()


def test_an_item_waiting_for_unfinished_orphan_work_is_flagged_with_the_nearest() -> None:
    risk = dependency_risk(
        [
            ranked("A", 1),
            ranked("B", None),
            ranked("O1", None, orphan=True),
            ranked("O2", None, orphan=True),
            ranked("X", 3, orphan=True),
            ranked("Z", 4, orphan=True, done=True),
        ],
        [waits("A", "B"), waits("B", "O1"), waits("A", "X"), waits("X", "O2"), waits("B", "Z")],
    )
    # A reaches X directly (1 hop) and O1 through B (2 hops): the nearest is named. The orphan X
    # waiting for another orphan is not news; the done orphan Z blocks nothing.
    [block] = risk.orphan_blocks
    assert (block.item[1], block.orphan[1], keys(block.chain)) == ("A", "X", ["A", "X"])


def test_a_cycle_is_reported_once_with_a_closed_chain() -> None:
    risk = dependency_risk(
        [ranked("A", 1), ranked("B", 2), ranked("C", 3), ranked("D", 4)],
        [waits("A", "B"), waits("B", "C"), waits("C", "A"), waits("C", "B")],
    )
    [cycle] = risk.cycles
    assert keys(cycle.chain) == ["A", "B", "C", "A"]
    assert cycle.members == 3
    # Ranks inside the cycle are the cycle's finding, not flagged again.
    assert risk.rank_conflicts == ()


def test_a_cycle_chain_is_the_shortest_way_back() -> None:
    risk = dependency_risk(
        [ranked(k, None) for k in "ABCDE"],
        [waits("A", "B"), waits("B", "C"), waits("C", "D"), waits("D", "A"), waits("B", "A")],
    )
    [cycle] = risk.cycles
    assert (keys(cycle.chain), cycle.members) == (["A", "B", "A"], 4)


def test_a_self_dependency_is_a_cycle_of_one() -> None:
    risk = dependency_risk([ranked("A", 1)], [waits("A", "A")])
    [cycle] = risk.cycles
    assert (keys(cycle.chain), cycle.members) == (["A", "A"], 1)


def test_a_chain_through_a_cycle_names_where_it_enters_and_leaves() -> None:
    risk = dependency_risk(
        [ranked("A", 1), ranked("B", 2), ranked("C", 3), ranked("D", 4), ranked("Z", 9)],
        [waits("A", "B"), waits("B", "C"), waits("C", "D"), waits("D", "B"), waits("D", "Z")],
    )
    by_item = {c.item[1]: c for c in risk.rank_conflicts}
    assert keys(by_item["A"].chain) == ["A", "B", "D", "Z"] and by_item["A"].through_cycle
    # Every member of the cycle waits for Z through it.
    assert sorted(by_item) == ["A", "B", "C", "D"]
    assert all(c.prerequisite[1] == "Z" for c in by_item.values())
    assert keys(by_item["D"].chain) == ["D", "Z"]


def test_an_orphan_inside_a_cycle_blocks_its_fellow_members() -> None:
    risk = dependency_risk(
        [ranked("A", 1), ranked("O", None, orphan=True)], [waits("A", "O"), waits("O", "A")]
    )
    [block] = risk.orphan_blocks
    assert (block.item[1], block.orphan[1], block.through_cycle) == ("A", "O", True)


def test_links_to_items_not_read_are_reported_and_not_followed() -> None:
    risk = dependency_risk([ranked("A", 1)], [waits("A", "GONE"), waits("GONE", "A")])
    assert [u.reason for u in risk.unknown] == [
        "jira/GONE not among the items read",
        "jira/GONE not among the items read",
    ]
    assert not risk.rank_conflicts and not risk.cycles


def test_long_chains_are_cut_and_end_with_the_item_found() -> None:
    count = 3 * MAX_CHAIN
    items = [ranked(f"K{n}", n + 1) for n in range(count)]
    deps = [waits(f"K{n}", f"K{n + 1}") for n in range(count - 1)]
    risk = dependency_risk(items, deps)
    first = risk.rank_conflicts[0]
    assert first.item[1] == "K0" and first.prerequisite[1] == f"K{count - 1}"
    assert len(first.chain) == MAX_CHAIN and first.truncated
    assert first.chain[-1] == first.prerequisite
    assert len(risk.rank_conflicts) == count - 1


def test_a_deep_graph_needs_no_recursion() -> None:
    count = 20_000
    items = [ranked(f"K{n}", count - n) for n in range(count)]  # each waits for a better rank
    deps = [waits(f"K{n}", f"K{n + 1}") for n in range(count - 1)]
    deps.append(waits(f"K{count - 1}", "K0"))  # and one cycle through all of them
    risk = dependency_risk(items, deps)
    [cycle] = risk.cycles
    assert cycle.members == count and len(cycle.chain) == count + 1
