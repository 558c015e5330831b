"""Unicode bidirectional controls in text the trackers give us, made visible instead of obeyed.

A title with a right-to-left override (U+202E, RLO) displays the text after it reversed, so
a report reader sees something other than what the tracker holds: the "Trojan Source" trick
(CVE-2021-42574), here aimed at the people who read the alignment report.
Every rendered value passes through `neutralise_bidi` (the Jinja environment's `finalize`,
the email subject), which replaces each control with a visible marker like "⟨U+202E⟩".

Legitimately right-to-left titles (Arabic, Hebrew) need none of these characters: their
letters carry their direction themselves, and the HTML report isolates each title
(`dir="auto"`) so it never reorders its neighbours.
"""

from __future__ import annotations

import re

BIDI_CONTROLS = frozenset(
    "\u202a\u202b\u202c\u202d\u202e"  # LRE RLE PDF LRO RLO (embeddings and overrides)
    "\u2066\u2067\u2068\u2069"  # LRI RLI FSI PDI (isolates)
    "\u200e\u200f\u061c"  # LRM RLM ALM (marks: weaker, but they still move neutral characters)
)
"""Unicode's explicit directional formatting characters (UAX #9, section 2)."""

_BIDI_CONTROL = re.compile(f"[{''.join(sorted(BIDI_CONTROLS))}]")


def bidi_marker(character: str) -> str:
    """The visible stand-in for one control: "⟨U+202E⟩"."""
    return f"⟨U+{ord(character):04X}⟩"


def neutralise_bidi(text: str) -> str:
    """`text` with every bidirectional control replaced by its visible marker."""
    if _BIDI_CONTROL.search(text) is None:
        return text
    return _BIDI_CONTROL.sub(lambda match: bidi_marker(match.group()), text)
