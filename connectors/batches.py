"""API-sized batches, and running them on a few threads: the one way both connectors do it.

Both trackers cap how many items one call may read or write (Jira's bulkfetch 100, Azure
DevOps' workitemsbatch 200) and both read those batches `workers` at a time, streaming items
out as batches complete.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")


def chunked(values: Sequence[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of at most `size` values."""
    for start in range(0, len(values), size):
        yield list(values[start : start + size])


def completed_in_parallel(
    tasks: Iterable[Callable[[], T]], *, workers: int, name: str
) -> Iterator[T]:
    """Runs `tasks` on `workers` threads and yields each result as its task completes.

    `tasks` is read lazily and at most 2 × workers tasks are submitted at once, so the answers
    held at once stay bounded whatever the scope's size, and the code producing the tasks (the
    next page of ids) runs in the caller's thread between results. When the caller stops early
    (an error, or the iterator closed), tasks not yet started are cancelled and running ones
    awaited: nothing goes on after the caller has gone, least of all a write it cannot record.
    """
    pool = ThreadPoolExecutor(workers, thread_name_prefix=name)
    pending: set[Future[T]] = set()
    try:
        for task in tasks:
            if len(pending) >= 2 * workers:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
            pending.add(pool.submit(task))
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
