"""Names in the config against the names a tracker knows, for `spm-sync check --online`:
the line for each configured OKR link type, and the closest names as the fix."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Sequence

from spm_sync.check import CheckLine
from spm_sync.connection_config import AzureDevOpsConnection, JiraConnection


def okr_link_types(
    settings: JiraConnection | AzureDevOpsConnection,
    names: Sequence[str],
    noun: str,
    missing_noun: str,
) -> Iterator[CheckLine]:
    """One line per configured OKR link type: found among the tracker's `names` (ignoring
    case), or missing with the closest names as the fix."""
    folded = {name.casefold() for name in names}
    for link_type in settings.okr.link_types:
        if link_type.casefold() in folded:
            yield CheckLine(True, f"{settings.name}: {noun} {link_type!r} exists")
        else:
            yield CheckLine(
                False,
                f"{settings.name}: okr.link_types: no {missing_noun} {link_type!r}",
                suggest(link_type, names),
            )


def suggest(wanted: str, known: Iterable[str]) -> str:
    matches = difflib.get_close_matches(wanted, list(dict.fromkeys(known)), n=3, cutoff=0.5)
    if matches:
        return "close matches: " + ", ".join(repr(m) for m in matches)
    return "use a name that exists on the tracker"
