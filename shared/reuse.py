"""Process-wide reuse of clients and credentials across activities.

Building a credential or SDK client per activity costs a TLS set-up (loading the CA bundle) and new tokens
on every step. Objects here are shared by the activities of one worker process for its lifetime: the SDKs
refresh their own tokens (azure-identity caches a token until shortly before it expires, on the wall
clock) and keep their connection pools healthy, so nothing needs rebuilding as time passes.

The cache is bounded (one credential per customer tenant at most, least recently used dropped first). A
dropped object is never closed here: another activity, or a poller thread it started, may still hold it.
It is released when its last user lets go of it (its sockets close with it).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

MAX_ITEMS = 256
T = TypeVar("T")

_lock = threading.RLock()  # re-entrant: a build may itself use shared() (the vault needs a credential)
_items: OrderedDict[Hashable, object] = OrderedDict()


def shared(key: Hashable, build: Callable[[], T]) -> T:
    """The object cached under `key`, or a new one from `build`.

    `build` only constructs objects (no I/O), so it runs under the lock: concurrent misses build once."""
    with _lock:
        if key in _items:
            _items.move_to_end(key)
            return _items[key]  # type: ignore[return-value]
        built = build()
        _items[key] = built
        while len(_items) > MAX_ITEMS:
            _items.popitem(last=False)
    return built


def clear() -> None:
    """Forget everything (tests)."""
    with _lock:
        _items.clear()
