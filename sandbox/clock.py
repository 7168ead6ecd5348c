"""The sandbox clock: wall time plus a forward-only offset, shared over HTTP.

`sandbox.azure` owns the clock and serves it at ``/_sandbox/clock`` on its login origin:
``GET`` returns ``{"now": "<ISO-8601 UTC with Z>", "epochSeconds": float, "offsetSeconds": float}``
and ``POST {"advanceSeconds": N}`` moves it forward (N >= 0) and returns the same document.
Processes started under libfaketime (sandbox/faketime.py) read it as their wall clock: the simulator writes
its offset to a clock file whenever the clock moves, before it answers. Processes that are not (the demo, a
host given only the clock's URL) read it through :class:`RemoteClock`.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from sandbox import faketime


def isoformat_z(moment: datetime) -> str:
    """Format an aware datetime as ISO-8601 UTC with a trailing Z (the form Azure uses)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Clock:
    """Real time plus an offset that only grows; thread-safe. With `file`, every move is written there first
    (libfaketime's offset file), so processes following it see the new time once `advance` returns."""

    def __init__(self, offset_seconds: float = 0.0, file: Path | str | None = None) -> None:
        self._offset = float(offset_seconds)
        self._lock = threading.Lock()
        self.file = Path(file) if file else None
        if self.file is not None:
            faketime.write_offset(self.file, self._offset)

    @property
    def offset_seconds(self) -> float:
        """Seconds the clock runs ahead of the wall clock."""
        return self._offset

    def epoch(self) -> float:
        """Sandbox time as POSIX seconds."""
        return time.time() + self._offset

    def now(self) -> datetime:
        """Sandbox time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.epoch(), tz=UTC)

    def advance(self, seconds: float) -> None:
        """Move the clock forward; it never moves back."""
        if seconds < 0:
            raise ValueError("advanceSeconds must be >= 0: the sandbox clock never moves back")
        with self._lock:
            if self.file is not None:
                faketime.write_offset(self.file, self._offset + float(seconds))
            self._offset += float(seconds)

    def document(self) -> dict:
        """The JSON document served at /_sandbox/clock."""
        epoch = self.epoch()
        return {
            "now": isoformat_z(datetime.fromtimestamp(epoch, tz=UTC)),
            "epochSeconds": epoch,
            "offsetSeconds": self._offset,
        }


class RemoteClock:
    """Client of a clock served by sandbox.azure; caches the offset for `cache_seconds`."""

    def __init__(self, url: str, ca_bundle: str | None = None, cache_seconds: float = 0.0) -> None:
        self.url = url
        self._context = ssl.create_default_context(cafile=ca_bundle) if url.startswith("https") else None
        self._cache_seconds = cache_seconds
        self._offset: float | None = None
        self._fetched_at = 0.0

    def _call(self, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url, data=data, method="POST" if body is not None else "GET",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, context=self._context, timeout=10) as response:
            document = json.loads(response.read())
        self._offset = float(document["offsetSeconds"])
        self._fetched_at = time.monotonic()
        return document

    def offset_seconds(self) -> float:
        """Current offset, refreshed from the server unless the cache is fresh."""
        if self._offset is None or time.monotonic() - self._fetched_at > self._cache_seconds:
            self._call()
        return self._offset  # type: ignore[return-value]

    def epoch(self) -> float:
        """Sandbox time as POSIX seconds (this process's wall clock when it already follows the clock file)."""
        if faketime.active():
            return time.time()
        return time.time() + self.offset_seconds()

    def now(self) -> datetime:
        """Sandbox time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.epoch(), tz=UTC)

    def advance(self, seconds: float) -> dict:
        """Move the shared clock forward and return its new document."""
        return self._call({"advanceSeconds": seconds})
