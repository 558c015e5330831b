"""Names the config gives against the names a tracker knows, for a connector's online check:
the line for each OKR link type the connection follows, and the closest names as the fix."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Sequence

from spm_sync.core.checks import CheckLine


def link_type_lines(
    connection: str,
    link_types: Sequence[str],
    names: Sequence[str],
    noun: str,
    missing_noun: str,
) -> Iterator[CheckLine]:
    """One line per configured OKR link type: found among the tracker's `names` (ignoring
    case), or missing with the closest names as the fix."""
    folded = {name.casefold() for name in names}
    for link_type in link_types:
        if link_type.casefold() in folded:
            yield CheckLine(True, f"{connection}: {noun} {link_type!r} exists")
        else:
            yield CheckLine(
                False,
                f"{connection}: okr.link_types: no {missing_noun} {link_type!r}",
                suggest(link_type, names),
            )


def suggest(wanted: str, known: Iterable[str]) -> str:
    matches = difflib.get_close_matches(wanted, list(dict.fromkeys(known)), n=3, cutoff=0.5)
    if matches:
        return "close matches: " + ", ".join(repr(m) for m in matches)
    return "use a name that exists on the tracker"
