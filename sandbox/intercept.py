"""A loopback HTTPS-intercepting CONNECT proxy: real Azure host names, answered by the simulator.

A client that honours ``HTTPS_PROXY=http://127.0.0.1:PORT`` (the Azure CLI, anything built on requests or
azure-core) sends ``CONNECT host:443`` here. For a mapped host name (``login.microsoftonline.com``,
``graph.microsoft.com``, ``<vault>.vault.azure.net``, or a ``*.suffix`` pattern) the proxy answers
``200 Connection Established``, terminates TLS with a certificate for that name signed by the sandbox CA
(the client trusts it through the simulator's ``ca-bundle.pem``), opens TLS to the mapped loopback origin
(verified against the same CA) and relays the bytes both ways, unchanged: the simulator routes by path,
so the client keeps its real resource names and cloud. A CONNECT to one of the mapped origins themselves
(``127.0.0.1:PORT``, as named in discovery documents) is tunnelled as it is. Every other host, and any
non-CONNECT request, gets ``403``: nothing leaves the machine. Each decision is kept in :attr:`log`.

Run alone: ``python -m sandbox.intercept --state-dir DIR --map graph.microsoft.com=https://127.0.0.1:PORT``
prints one JSON line (``proxyUrl``) and serves until SIGTERM / SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import ssl
import sys
import threading
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.azure.tls import BUNDLE, ensure_ca

log = logging.getLogger(__name__)

_HEAD_LIMIT = 64 * 1024  # a CONNECT request head is a few hundred bytes


@dataclass(frozen=True)
class Decision:
    """What the proxy did with one request: `intercepted`, `tunnelled` or `refused`."""

    method: str
    target: str
    action: str


@dataclass
class InterceptProxy:
    """The proxy, served on its own event loop in a background thread (start/stop, or a context manager).

    `mapping`: host name or ``*.suffix`` pattern → the origin (``https://127.0.0.1:PORT``) that answers it.
    `state_dir`: the simulator's state directory (its CA signs the intercepting certificates)."""

    mapping: dict[str, str]
    state_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    log: list[Decision] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.upstreams = {name.lower(): _origin(url) for name, url in self.mapping.items()}
        self.tunnels = set(self.upstreams.values())
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None

    # -- lifecycle ------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The value for HTTPS_PROXY."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10) -> InterceptProxy:
        """Bind and serve in a daemon thread; returns once the port is bound."""
        self._build_tls()
        self._thread = threading.Thread(target=self._run, name="intercept-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"the intercepting proxy did not bind within {timeout} s")
        if self._failure is not None:
            raise RuntimeError(f"the intercepting proxy failed to start: {self._failure}") from self._failure
        return self

    def stop(self) -> None:
        """Close the listening socket and the loop; open relays are cut."""
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop_event.set)
            self._thread.join(10)

    def __enter__(self) -> InterceptProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _build_tls(self) -> None:
        authority = ensure_ca(self.state_dir)
        names = sorted(self.upstreams)
        certificate = authority.issue_cert(*names)
        self._server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        certificate.configure_cert(self._server_tls)
        # The upstream origins are the simulator's, which present certificates from the same CA.
        self._client_tls = ssl.create_default_context(cafile=str(self.state_dir / BUNDLE))

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._serve())
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        self._stop_event = asyncio.Event()
        try:
            self._server = await asyncio.start_server(self._handle, self.host, self.port)
        except OSError as exc:
            self._failure = exc
            self._ready.set()
            return
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        async with self._server:
            await self._stop_event.wait()
        # Relays of kept-alive connections are still running: cut them so the loop closes with no task pending.
        relays = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for relay in relays:
            relay.cancel()
        await asyncio.gather(*relays, return_exceptions=True)

    # -- one client connection ------------------------------------------------------------------------
    def upstream_for(self, host: str) -> tuple[str, int] | None:
        """The loopback origin that answers `host`, by exact name first, then by ``*.suffix`` pattern."""
        host = host.lower().rstrip(".")
        if host in self.upstreams:
            return self.upstreams[host]
        for pattern, origin in self.upstreams.items():
            # A wildcard stands for one label, as in a certificate's subject alternative name (RFC 6125).
            suffix = pattern[1:]
            label = host[: -len(suffix)] if host.endswith(suffix) else ""
            if pattern.startswith("*.") and label and "." not in label:
                return origin
        return None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split()
        method, target = (parts[0], parts[1]) if len(parts) >= 2 else ("?", request_line)
        host, _, port_text = target.rpartition(":")
        host = host.strip("[]")
        try:
            port = int(port_text)
        except ValueError:
            port = -1
        if method.upper() != "CONNECT" or port < 0:
            await self._refuse(writer, method, target, "only CONNECT to a mapped host is served")
            return
        origin = self.upstream_for(host) if port == 443 else None
        if origin is not None:
            await self._intercept(reader, writer, method, target, origin)
        elif (host, port) in self.tunnels:
            await self._tunnel(reader, writer, method, target, (host, port))
        else:
            await self._refuse(writer, method, target, f"{host}:{port} is not served by the sandbox")

    async def _refuse(self, writer: asyncio.StreamWriter, method: str, target: str, why: str) -> None:
        self.log.append(Decision(method, target, "refused"))
        log.info("intercept: refused %s %s (%s)", method, target, why)
        body = f"403 Forbidden: {why}\n".encode()
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    async def _intercept(self, reader, writer, method: str, target: str, origin: tuple[str, int]) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*origin, ssl=self._client_tls,
                                                                 server_hostname=origin[0])
        except (OSError, ssl.SSLError) as exc:
            self.log.append(Decision(method, target, "refused"))
            log.warning("intercept: %s → %s:%s unreachable: %s", target, *origin, exc)
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            writer.close()
            return
        self.log.append(Decision(method, target, "intercepted"))
        writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        await writer.drain()
        try:
            await writer.start_tls(self._server_tls)
        except (OSError, ssl.SSLError) as exc:
            log.warning("intercept: TLS with the client for %s failed: %s", target, exc)
            up_writer.close()
            writer.close()
            return
        await _relay(reader, writer, up_reader, up_writer)

    async def _tunnel(self, reader, writer, method: str, target: str, origin: tuple[str, int]) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*origin)
        except OSError:
            await self._refuse(writer, method, target, "the origin is not listening")
            return
        self.log.append(Decision(method, target, "tunnelled"))
        writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        await writer.drain()
        await _relay(reader, writer, up_reader, up_writer)


def _origin(url: str) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"an https origin is required, not {url!r}")
    return parts.hostname, parts.port or 443


async def _relay(reader, writer, up_reader, up_writer) -> None:
    """Copy bytes both ways until either side closes."""

    async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except (ConnectionError, ssl.SSLError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                sink.close()

    await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM / SIGINT; print one JSON line once bound."""
    parser = argparse.ArgumentParser(prog="python -m sandbox.intercept", description=__doc__.split("\n\n")[0])
    parser.add_argument("--state-dir", type=Path, default=Path(".sandbox"), help="the simulator's state directory")
    parser.add_argument("--map", action="append", default=[], metavar="HOST=ORIGIN",
                        help="a host name or *.suffix and the https origin that answers it (repeatable)")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    mapping = dict(item.split("=", 1) for item in args.map)
    if not mapping:
        parser.error("at least one --map HOST=ORIGIN is needed")
    proxy = InterceptProxy(mapping, args.state_dir, port=args.port).start()
    print(json.dumps({"proxyUrl": proxy.url, "map": mapping}), flush=True)
    stopped = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopped.set())
    stopped.wait()
    proxy.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
