"""Compare two results files: `python -m bench.compare OLD.json NEW.json`.

Prints, per benchmark in both files, spm-sync's seconds, requests and peak memory side by side
with the change, and flags a regression: more requests than before (request counts are exact
and should not move), or more than `--tolerance` (default 25%) slower or bigger. Timings on a
shared 2-core machine move by 10-20% between runs; request counts do not. Exit status 1 when
anything regressed.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def load(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return dict(data.get("benchmarks", {}))


def regressions(
    old: Mapping[str, Mapping[str, Any]],
    new: Mapping[str, Mapping[str, Any]],
    tolerance: float = 0.25,
) -> tuple[list[str], list[str]]:
    """(lines of the comparison table, the regressions found)."""
    lines = [f"{'benchmark':34} {'seconds':>22} {'requests':>16} {'peak MB':>16}"]
    found: list[str] = []
    for name in old:
        if name not in new:
            continue
        before, after = old[name], new[name]
        cells = []
        for key, slack in (("seconds", tolerance), ("requests", 0.0), ("peak_mb", tolerance)):
            a, b = before.get(key), after.get(key)
            if a is None or b is None:
                cells.append("–")
                continue
            change = (b - a) / a if a else 0.0
            cells.append(f"{a:g} → {b:g} ({change:+.0%})")
            if b > a * (1 + slack) and b - a > (0 if key == "requests" else 0.05):
                found.append(f"{name}: {key} {a:g} → {b:g}")
        lines.append(f"{name:34} {cells[0]:>22} {cells[1]:>16} {cells[2]:>16}")
    return lines, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--tolerance", type=float, default=0.25)
    args = parser.parse_args()
    lines, found = regressions(load(args.old), load(args.new), args.tolerance)
    print("\n".join(lines))
    for line in found:
        print(f"REGRESSION {line}")
    raise SystemExit(1 if found else 0)


if __name__ == "__main__":
    main()
