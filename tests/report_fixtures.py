"""A builder of realistic `CycleResult`s for report, pipeline and CLI tests.

The portfolio is small but has every case the report must show: two trackers, three
objectives, a Key Result nothing moves, one whose items are all done short of target, orphans in
several teams, unscorable items, rank moves both ways, write conflicts and a failed write, a WIP
breach, and a trend. Everything is derived from a seeded RNG, so a given call always returns the
same document, and the figures are consistent (percentages follow from the rows).
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

from spm_sync.core.domain import StatusCategory, WriteField
from spm_sync.core.results import CycleResult, Headline, PreviousRun, TrendPoint, WipLane, WsjfRow
from spm_sync.core.results_alignment import (
    AlignedItem,
    AlignmentSummary,
    KeyResultAlignment,
    ObjectiveAlignment,
    Orphan,
)
from spm_sync.core.results_change import ItemRef, OrphanChanges, WriteTally
from spm_sync.core.results_health import ConnectionHealth
from spm_sync.core.results_writes import WriteLog, WriteRow

FINISHED = datetime(2026, 3, 2, 6, 14, 37, tzinfo=UTC)
JIRA = "jira-cloud"
ADO = "ado-platform"
JIRA_URL = "https://acme.atlassian.net/browse/"
ADO_URL = "https://dev.azure.com/acme/Platform/_workitems/edit/"
TODO, DOING, DONE = StatusCategory.TODO, StatusCategory.IN_PROGRESS, StatusCategory.DONE

HOSTILE_TITLES = (
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(2)>',
    "Zahlungsabwicklung für Österreich – 支付 — émojis 🚀",
    "Consolidate the legacy settlement reconciliation batch jobs into the streaming ledger "
    "service and retire the nightly FTP exchange with the three acquiring banks in the EU, "
    "including the cut-over plan, the rollback rehearsal and the auditor sign-off package",
)

# (objective id, title, owner, [(kr id, title, target, current, [(connection, key, title,
#   level, status, job size, via)])])
PORTFOLIO = [
    (
        "O1",
        "Grow self-serve revenue in EMEA",
        "Chief Product Officer",
        [
            (
                "KR1.1",
                "Raise trial-to-paid conversion from 4% to 6%",
                6.0,
                4.6,
                [
                    (JIRA, "GROW-12", "Guided first-project wizard", "epic", DOING, 13, "label"),
                    (JIRA, "GROW-31", "Usage-based upgrade nudges", "feature", TODO, 8, "link"),
                    (JIRA, "GROW-33", "Pricing page A/B framework", "feature", DONE, 5, "parent"),
                ],
            ),
            (
                "KR1.2",
                "Launch local payment methods in 5 new markets",
                5.0,
                2.0,
                [
                    (JIRA, "PAY-101", "SEPA Direct Debit", "epic", DOING, 21, "label"),
                    (JIRA, "PAY-118", "iDEAL and Bancontact", "feature", DOING, 13, "parent"),
                    (JIRA, "PAY-120", "BLIK for Poland", "feature", TODO, 8, "parent"),
                    (ADO, "4711", "Multi-currency ledger", "epic", DOING, 34, "rule"),
                ],
            ),
            ("KR1.3", "Cut time-to-first-value below 10 minutes", 10.0, 23.0, []),
        ],
    ),
    (
        "O2",
        "Make the platform boringly reliable",
        "Chief Technology Officer",
        [
            (
                "KR2.1",
                "Reach 99.95% API availability",
                99.95,
                99.9,
                [
                    (
                        ADO,
                        "4802",
                        "Multi-region failover for the API gateway",
                        "epic",
                        DOING,
                        40,
                        "link",
                    ),
                    (ADO, "4810", "Synthetic probes in every region", "feature", DONE, 5, "parent"),
                    (ADO, "4815", "Error-budget alerting", "feature", TODO, 8, "label"),
                ],
            ),
            (
                "KR2.2",
                "Halve P1 incidents (12 to 6 per quarter)",
                6.0,
                9.0,
                [
                    (ADO, "4900", "Chaos testing in staging", "feature", TODO, 13, "label"),
                    (JIRA, "OPS-7", "Runbooks for the top 20 alerts", "feature", DOING, 5, "link"),
                ],
            ),
        ],
    ),
    (
        "O3",
        "Win enterprise accounts",
        "Chief Revenue Officer",
        [
            (
                "KR3.1",
                "Ship SSO and SCIM provisioning",
                1.0,
                0.0,
                [(JIRA, "ENT-4", "SAML single sign-on", "epic", DONE, 21, "label")],
            ),
            ("KR3.2", "Self-serve audit log export for admins", 1.0, 0.0, []),
        ],
    ),
]

TEAMS = (
    (JIRA, "Payments", "PAY"),
    (JIRA, "Growth", "GROW"),
    (ADO, "Platform SRE", None),
    (JIRA, "Mobile", "MOB"),
    (ADO, "Data", None),
)
ORPHAN_TITLES = (
    "Migrate CI runners to ARM",
    "Refresh the design system tokens",
    "Dark mode for the admin console",
    "Upgrade Kafka to 3.7",
    "Internal hackathon tooling",
    "Rewrite the PDF invoice renderer",
    "Replace the feature-flag vendor",
    "Improve the search relevance of help articles",
    "Localize e-mail templates",
    "Tidy the monorepo build graph",
)
ORPHAN_REASONS = (
    "no OKR label, link or parent",
    "label okr:KR9.1 names no known Key Result",
    "parent is itself unaligned",
    "no OKR label, link or parent",
)


def _url(connection: str, key: str) -> str:
    return (JIRA_URL if connection == JIRA else ADO_URL) + key


def _objectives() -> list[ObjectiveAlignment]:
    objectives = []
    for objective_id, title, owner, key_results in PORTFOLIO:
        krs = []
        for kr_id, kr_title, target, current, items in key_results:
            aligned = [
                AlignedItem(
                    connection=conn,
                    key=key,
                    title=item_title,
                    level=level,
                    status_category=status,
                    job_size=size,
                    url=_url(conn, key),
                    via=via,
                    path=(key,) if via != "parent" else (key, f"{key.split('-')[0]}-1"),
                )
                for conn, key, item_title, level, status, size, via in items
            ]
            krs.append(
                KeyResultAlignment(
                    id=kr_id, title=kr_title, target=target, current=current, items=aligned
                )
            )
        objectives.append(
            ObjectiveAlignment(
                id=objective_id, title=title, owner=owner, period="2026-H1", key_results=krs
            )
        )
    return objectives


def _orphans(count: int, rng: random.Random) -> list[Orphan]:
    orphans = []
    for number in range(count):
        connection, team, prefix = TEAMS[number % len(TEAMS)]
        key = f"{prefix}-{500 + number}" if prefix else str(6000 + number)
        level = rng.choice(("epic", "feature", "feature", "story"))
        orphans.append(
            Orphan(
                connection=connection,
                team=team,
                key=key,
                title=f"{ORPHAN_TITLES[number % len(ORPHAN_TITLES)]} ({number + 1})",
                type="User Story" if (connection, level) == (ADO, "story") else level.title(),
                level=level,
                status_category=rng.choice((TODO, DOING, DOING, DONE)),
                job_size=rng.choice((None, 1, 2, 3, 5, 8, 13, 20, 40)),
                url=_url(connection, key),
                reason=ORPHAN_REASONS[number % len(ORPHAN_REASONS)],
            )
        )
    return orphans


def _wsjf(objectives: list[ObjectiveAlignment], orphans: list[Orphan], rng: random.Random):
    candidates = [
        (item.connection, item.key, item.title, item.level, item.url)
        for objective in objectives
        for kr in objective.key_results
        for item in kr.items
        if item.level in ("epic", "feature")
    ] + [
        (orphan.connection, orphan.key, orphan.title, orphan.level, orphan.url)
        for orphan in orphans[:20]
        if orphan.level in ("epic", "feature")
    ]
    rows = []
    for number, (conn, key, title, level, url) in enumerate(candidates):
        bv, tc, rr = (
            rng.choice((1, 2, 3, 5, 8, 13, 20)),
            rng.choice((1, 2, 3, 5, 8)),
            rng.choice((1, 2, 3, 5)),
        )
        size = rng.choice((1, 2, 3, 5, 8, 13, 20))
        row = dict(connection=conn, key=key, title=title, level=level, url=url)
        if number % 9 == 4:
            rows.append(
                WsjfRow(
                    **row,
                    business_value=bv,
                    time_criticality=tc,
                    reason_unscored="job_size is empty",
                )
            )
        elif number % 9 == 7:
            rows.append(
                WsjfRow(
                    **row,
                    business_value=bv,
                    job_size=size,
                    reason_unscored="time_criticality 'high' is not a number; "
                    "risk_reduction is empty",
                )
            )
        else:
            rows.append(
                WsjfRow(
                    **row,
                    business_value=bv,
                    time_criticality=tc,
                    risk_reduction=rr,
                    job_size=size,
                    cost_of_delay=bv + tc + rr,
                    wsjf=round((bv + tc + rr) / size, 2),
                )
            )
    # Ranked per connection, as a cycle ranks each tracker's backlog on its own.
    ranked = []
    for connection in (JIRA, ADO):
        scored = sorted(
            (row for row in rows if row.scored and row.connection == connection),
            key=lambda row: (-(row.wsjf or 0.0), row.key),
        )
        old_order = list(range(1, len(scored) + 1))
        rng.shuffle(old_order)
        ranked += [
            row.model_copy(update={"new_rank": position, "old_rank": old_order[position - 1]})
            for position, row in enumerate(scored, start=1)
        ]
    return ranked + [row for row in rows if not row.scored]


def _writes(wsjf: list[WsjfRow], mode: str) -> list[WriteRow]:
    rows = []
    for number, row in enumerate(item for item in wsjf if item.scored):
        status = "planned"
        error = None
        if mode == "apply":
            status, error = "written", None
            if number % 11 == 3:
                status, error = "conflict", "changed since planned (revision 2026-03-02T05:58:11Z)"
            elif number == 5:
                status, error = "failed", "HTTP 400: Field 'customfield_10061' cannot be set"
            elif number % 7 == 6:
                status = "unchanged"
        rows.append(
            WriteRow(
                connection=row.connection,
                key=row.key,
                field=WriteField.WSJF_SCORE,
                old=None if number % 4 == 0 else round(row.wsjf * 0.8, 2),
                new=row.wsjf,
                expected_revision=f"rev-{number}",
                status=status,
                error=error,
            )
        )
        if row.movement:
            rows.append(
                WriteRow(
                    connection=row.connection,
                    key=row.key,
                    field=WriteField.RANK,
                    old=row.old_rank,
                    new=row.new_rank,
                    expected_revision=f"rev-{number}",
                    status="planned" if mode == "plan" else "written",
                )
            )
    return rows


def _trend(current: AlignmentSummary, runs: int) -> list[TrendPoint]:
    points = []
    for weeks_ago in range(runs - 1, 0, -1):
        pct = max(0.0, (current.alignment_pct_items or 0) - 2.5 * weeks_ago + (weeks_ago % 2))
        points.append(
            TrendPoint(
                run_id=f"run-{100 - weeks_ago}",
                finished=FINISHED - timedelta(days=7 * weeks_ago),
                alignment_pct_items=round(pct, 1),
                alignment_pct_job_size=round(max(0.0, pct - 4 + weeks_ago % 3), 1),
                orphans=len(current.orphans) + 3 * weeks_ago,
            )
        )
    return points


def _alignment(objectives: list[ObjectiveAlignment], orphans: list[Orphan]) -> AlignmentSummary:
    aligned = {
        (item.connection, item.key): item.job_size or 0.0
        for objective in objectives
        for kr in objective.key_results
        for item in kr.items
    }
    orphan_size = sum(orphan.job_size or 0.0 for orphan in orphans)
    in_scope = len(aligned) + len(orphans)
    in_scope_size = sum(aligned.values()) + orphan_size
    return AlignmentSummary(
        alignment_pct_items=round(100 * len(aligned) / in_scope, 1) if in_scope else None,
        alignment_pct_job_size=(
            round(100 * sum(aligned.values()) / in_scope_size, 1) if in_scope_size else None
        ),
        in_scope_count=in_scope,
        aligned_count=len(aligned),
        in_scope_job_size=in_scope_size,
        aligned_job_size=sum(aligned.values()),
        objectives=objectives,
        orphans=orphans,
        warnings=["label okr:KR9.1 on 3 items names no known Key Result"],
    )


def _connections(orphans: int) -> list[ConnectionHealth]:
    return [
        ConnectionHealth(
            name=JIRA,
            kind="jira",
            items_pulled=412 + orphans,
            sync="incremental",
            deleted_detected=2,
            requests_by_endpoint={
                "GET /rest/api/3/field": 1,
                "GET /rest/api/3/search/jql": 5,
                "POST /rest/api/3/issue/bulkfetch": 5,
                "PUT /rest/api/3/issue/{id}": 14,
                "PUT /rest/agile/1.0/issue/rank": 3,
            },
            retries=2,
            throttled=1,
            waited_seconds=3.2,
            rate_limit={"X-RateLimit-Limit": "350", "X-RateLimit-Remaining": "281"},
            duration_seconds=18.4,
            warnings=["GROW-40: field 'Job Size' value 'XL' is not a number"],
        ),
        ConnectionHealth(
            name=ADO,
            kind="azure_devops",
            items_pulled=1290,
            sync="full",
            deleted_detected=0,
            requests_by_endpoint={
                "POST /Platform/_apis/wit/wiql": 1,
                "POST /_apis/wit/workitemsbatch": 7,
                "PATCH /_apis/wit/workitems/{id}": 9,
            },
            duration_seconds=9.7,
        ),
    ]


def build_cycle_result(
    *,
    orphans: int = 18,
    mode: str = "apply",
    first_run: bool = False,
    trend_runs: int = 8,
    hostile_titles: bool = False,
    seed: int = 7,
    run_id: str = "run-100",
) -> CycleResult:
    """A consistent cycle document; `hostile_titles` puts `HOSTILE_TITLES` into every section."""
    rng = random.Random(seed)
    objectives = _objectives()
    orphan_rows = _orphans(orphans, rng)
    if hostile_titles:
        objectives, orphan_rows = _make_hostile(objectives, orphan_rows)
    alignment = _alignment(objectives, orphan_rows)
    wsjf = _wsjf(objectives, orphan_rows, rng)
    result = CycleResult(
        run_id=run_id,
        started=FINISHED - timedelta(seconds=31.5),
        finished=FINISHED,
        status="partial" if hostile_titles else "ok",
        mode=mode,
        connections=_connections(orphans),
        alignment=alignment,
        wsjf=wsjf,
        writes=WriteLog(rows=_writes(wsjf, mode)),
        wip=[
            WipLane(
                team="Payments",
                connection=JIRA,
                counts={TODO: 6, DOING: 5, DONE: 11},
                limits={DOING: 4},
            ),
            WipLane(
                team="Growth",
                connection=JIRA,
                counts={TODO: 4, DOING: 3, DONE: 7},
                limits={DOING: 4},
            ),
            WipLane(
                team="Platform SRE",
                connection=ADO,
                counts={TODO: 9, DOING: 4, DONE: 15},
                limits={DOING: 5, TODO: 12},
            ),
            WipLane(team="Data", connection=ADO, counts={TODO: 2, DOING: 1, DONE: 3}),
        ],
    )
    if hostile_titles:
        result.errors.append("ado-platform: " + HOSTILE_TITLES[0])
    if not first_run:
        result.trend = [*_trend(alignment, trend_runs), result.trend_point()]
        before = result.headline
        result.previous = PreviousRun(
            run_id="run-99",
            finished=FINISHED - timedelta(days=7),
            headline=Headline(
                alignment_pct_items=max(0.0, round((before.alignment_pct_items or 0) - 2.5, 1)),
                alignment_pct_job_size=round((before.alignment_pct_job_size or 0) + 1.2, 1),
                orphans=before.orphans + 3,
                uncovered_key_results=before.uncovered_key_results,
                unscored=before.unscored + 1,
                writes_planned=before.writes_planned - 4,
                writes_applied=max(0, before.writes_applied - 6),
                write_conflicts=before.write_conflicts + 1,
            ),
        )
        # Three orphans are new since run-99 and six of its orphans were resolved (net -3).
        result.orphan_changes = OrphanChanges(
            previous_run="run-99",
            compared=[JIRA, ADO],
            new=[ItemRef(connection=o.connection, key=o.key) for o in orphan_rows[:3]],
            new_count=min(3, len(orphan_rows)),
            resolved_count=min(3, len(orphan_rows)) + 3,
        )
    else:
        result.trend = [result.trend_point()]
    result.writes.by_target = _tally(result.writes.rows)
    return result


def _tally(rows: list[WriteRow]) -> list[WriteTally]:
    """The write log's rows counted per connection and field, as the store counts them."""
    counts: dict[tuple[str, WriteField], Counter[str]] = {}
    for row in rows:
        counts.setdefault((row.connection, row.field), Counter())[row.status] += 1
    return [
        WriteTally(connection=connection, field=field, counts=dict(found))
        for (connection, field), found in sorted(counts.items())
    ]


def _make_hostile(
    objectives: list[ObjectiveAlignment], orphans: list[Orphan]
) -> tuple[list[ObjectiveAlignment], list[Orphan]]:
    first_kr = objectives[0].key_results[0]
    items = [
        item.model_copy(update={"title": title})
        for item, title in zip(first_kr.items, HOSTILE_TITLES, strict=False)
    ]
    objectives[0].key_results[0] = first_kr.model_copy(
        update={"title": HOSTILE_TITLES[1], "items": items + first_kr.items[len(items) :]}
    )
    objectives[1] = objectives[1].model_copy(update={"title": HOSTILE_TITLES[2]})
    renamed = [
        orphan.model_copy(
            update={
                "title": HOSTILE_TITLES[number % len(HOSTILE_TITLES)],
                "team": HOSTILE_TITLES[0] if number == 0 else orphan.team,
            }
        )
        for number, orphan in enumerate(orphans[: len(HOSTILE_TITLES)])
    ]
    return objectives, renamed + orphans[len(HOSTILE_TITLES) :]
