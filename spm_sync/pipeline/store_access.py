"""Opening the configured store for a command or a scheduled cycle, with one message the user
can act on when it cannot be opened (the traceback goes to the log only with -v)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import SQLAlchemyError

from spm_sync.config.model import Config
from spm_sync.core.errors import describe
from spm_sync.pipeline.cycle import log_traceback
from spm_sync.store import Store, StoreTooNew


class StoreUnavailable(Exception):
    """The store named in the config cannot be opened (message for the user)."""


@contextmanager
def open_store(config: Config) -> Iterator[Store]:
    try:
        store = Store.from_settings(config.store)
    except StoreTooNew as error:
        raise StoreUnavailable(f"cannot use the store {config.store.url}: {error}") from None
    except (SQLAlchemyError, LookupError, OSError) as error:
        log_traceback("opening the store failed")
        message = f"cannot open the store {config.store.url}: {describe(error)}"
        raise StoreUnavailable(message) from None
    try:
        yield store
    finally:
        store.close()
