"""One measured run in a fresh process: `python -m bench.worker module:function '<json kwargs>'`.

The function runs once; its wall time, the process's peak RSS and what it returns (a JSON
mapping, e.g. the number of items it read) are printed as one `RESULT_MARK` line on stdout.
A fresh process per run keeps one run's memory and caches (HTTP pools, the azure-devops
discovery cache, the jira library's field cache) from helping or hurting the next.

Peak memory is the process's peak resident set size, `VmHWM` in /proc/self/status: the whole
peak, interpreter and imported libraries included. Not `getrusage().ru_maxrss`: Linux carries
the parent's peak over into a child across fork/vfork + exec, so a worker started by a parent
that holds 50,000 sandbox items would report the parent's peak. (`ru_maxrss` is the fallback
where /proc is missing.) `start_mb` is the RSS after the imports, before the timed call, so
`peak_mb - start_mb` is what the run itself added at its peak.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

RESULT_MARK = "BENCH-RESULT "


def current_rss_mb() -> float:
    """Resident set size now, from /proc (Linux); ru_maxrss where /proc is missing."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return peak_rss_mb()


def peak_rss_mb() -> float:
    """Peak RSS of this process (VmHWM); see the module docstring."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def resolve(target: str) -> Callable[..., Mapping[str, Any] | None]:
    module_name, _, function_name = target.partition(":")
    function = getattr(importlib.import_module(module_name), function_name)
    if not callable(function):
        raise TypeError(f"{target} is not callable")
    return function  # type: ignore[no-any-return]


def measure(target: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    function = resolve(target)
    start_mb = current_rss_mb()
    started = time.perf_counter()
    result = function(**kwargs) or {}
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "peak_mb": peak_rss_mb(),
        "start_mb": start_mb,
        **result,
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m bench.worker module:function '<json kwargs>'", file=sys.stderr)
        return 2
    outcome = measure(argv[0], json.loads(argv[1]))
    print(RESULT_MARK + json.dumps(outcome), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
