"""What `spm-sync check` prints, one `CheckLine` per check, and what a connector's own online
check is asked to verify (`CheckRequest`).

Each connector checks its tracker (`check()` on the connector), the email code checks SMTP and
the CLI composes them; the line type lives here so none of them imports another.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from spm_sync.core.domain import WriteField


@dataclass(frozen=True, slots=True)
class CheckLine:
    """One check: passed (✓), failed (✗, with the fix), or passed with a warning (!): a
    warning does not fail the check, but a ✓ in front of it would hide it."""

    ok: bool
    message: str
    fix: str | None = None
    warning: bool = False

    def render(self) -> str:
        mark = "✗" if not self.ok else "!" if self.warning else "✓"
        hint = f" (fix: {self.fix})" if (not self.ok or self.warning) and self.fix else ""
        return f"{mark} {self.message}{hint}"


@dataclass(frozen=True, slots=True)
class CheckRequest:
    """The domain's part of a connection that its online check verifies on the tracker: the
    OKR link types it follows and what write-back writes. Connectors know neither OKRs nor
    WSJF, so the CLI hands these over as plain values."""

    link_types: tuple[str, ...] = ()
    writes: Mapping[str, WriteField] = field(default_factory=dict)
    """What write-back writes, by setting (`write_back.score` -> WSJF_SCORE), in config order."""
    orphan_label: str | None = None
    """The label written on orphans, when that write is on (a value a tag field can hold)."""

    @property
    def writes_anything(self) -> bool:
        return bool(self.writes)

    @property
    def writes_rank(self) -> bool:
        return WriteField.RANK in self.writes.values()
