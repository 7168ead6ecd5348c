"""Process-wide reuse of clients and credentials across activities.

Building a credential or SDK client per activity costs a TLS set-up (loading the CA bundle) and new tokens
on every step. Objects here are shared by the activities of one worker process, and rebuilt once the
*orchestration* clock (the `now` an activity receives) has moved more than MAX_AGE past their creation.
Judging age on that clock, not the wall clock, keeps token caches honest when time moves faster than the
process (the sandbox advances its clock; in Azure the two agree, and MAX_AGE stays under a token's life).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from datetime import datetime, timedelta
from typing import TypeVar

MAX_AGE = timedelta(minutes=30)
T = TypeVar("T")

_lock = threading.Lock()
_items: dict[Hashable, tuple[datetime, object]] = {}


def shared(key: Hashable, now: datetime, build: Callable[[], T]) -> T:
    """The object cached under `key`, or a new one from `build` when missing or older than MAX_AGE."""
    with _lock:
        entry = _items.get(key)
        if entry is not None and abs(now - entry[0]) <= MAX_AGE:
            return entry[1]  # type: ignore[return-value]
    built = build()
    with _lock:
        _items[key] = (now, built)
    return built


def clear() -> None:
    """Forget everything (tests)."""
    with _lock:
        _items.clear()
