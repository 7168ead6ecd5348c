"""Process-wide reuse of clients and credentials across activities.

Building a credential or SDK client per activity costs a TLS set-up (loading the CA bundle) and new tokens
on every step. Objects here are shared by the activities of one worker process, and rebuilt once the
*orchestration* clock (the `now` an activity receives) has moved more than MAX_AGE past their creation.
Judging age on that clock, not the wall clock, keeps token caches honest when time moves faster than the
process (the sandbox advances its clock; in Azure the two agree, and MAX_AGE stays under a token's life).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from datetime import datetime, timedelta
from typing import TypeVar

MAX_AGE = timedelta(minutes=30)
MAX_ITEMS = 256  # one credential per customer tenant at most: bounded, the least recently used go first
T = TypeVar("T")

_lock = threading.RLock()  # re-entrant: a build may itself use shared() (the vault needs a credential)
_items: OrderedDict[Hashable, tuple[datetime, object]] = OrderedDict()


def shared(key: Hashable, now: datetime, build: Callable[[], T]) -> T:
    """The object cached under `key`, or a new one from `build` when missing or older than MAX_AGE.

    `build` only constructs objects (no I/O), so it runs under the lock: concurrent misses build once."""
    retired = []
    with _lock:
        entry = _items.get(key)
        if entry is not None and abs(now - entry[0]) <= MAX_AGE:
            _items.move_to_end(key)
            return entry[1]  # type: ignore[return-value]
        if entry is not None:
            retired.append(entry[1])
        built = build()
        _items[key] = (now, built)
        _items.move_to_end(key)
        while len(_items) > MAX_ITEMS:
            retired.append(_items.popitem(last=False)[1][1])
    for item in retired:
        _close(item)
    return built


def _close(item: object) -> None:
    """Release a retired client's connections (sync clients only; nothing here is async)."""
    close = getattr(item, "close", None)
    if callable(close):
        try:
            close()
        except Exception:  # a retired client that fails to close must not fail the activity
            logging.getLogger(__name__).debug("closing a retired client failed", exc_info=True)


def clear() -> None:
    """Forget everything (tests)."""
    with _lock:
        _items.clear()
