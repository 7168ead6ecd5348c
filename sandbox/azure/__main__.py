"""`python -m sandbox.azure`: serve the simulator and print one JSON line describing it."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

from .server import SimulatorConfig, SimulatorServer
from .storage_proxy import Upstream
from .world import ORIGINS


def parse_args(argv: list[str] | None = None) -> SimulatorConfig:
    """Command line → SimulatorConfig."""
    parser = argparse.ArgumentParser(prog="python -m sandbox.azure", description=__doc__)
    parser.add_argument("--tenants", type=int, default=2, help="how many tenants to seed (the first is home)")
    parser.add_argument("--host", default="127.0.0.1")
    for origin in ORIGINS:
        parser.add_argument(f"--{origin}-port", type=int, default=0, help=f"port of the {origin} origin (0 = random)")
    parser.add_argument("--tables-upstream", default=None, metavar="URL_OR_CONNECTION_STRING",
                        help="Azurite's Table endpoint (http://127.0.0.1:PORT/devstoreaccount1) or its connection "
                             "string: serve the tables and taskhub proxies in front of it (fault rules reach them)")
    parser.add_argument("--state-dir", type=Path, default=Path(".sandbox"),
                        help="where the CA and the CA bundle are written")
    parser.add_argument("--provisioner-roles", default=None,
                        help="comma-separated Microsoft Graph app roles the seeded identities hold")
    parser.add_argument("--creation-polls", type=int, default=0, metavar="N",
                        help="Key Vault: polls of a certificate creation that answer inProgress before it "
                             "completes (0 = the first poll; the SDK sleeps 5 s of real time between polls)")
    parser.add_argument("--config", type=Path, default=None,
                        help='JSON file: {"faults": [...], "replicationDelay": {...}}')
    args = parser.parse_args(argv)
    config = SimulatorConfig(tenants=args.tenants, host=args.host, state_dir=args.state_dir,
                             ports={o: getattr(args, f"{o}_port") for o in ORIGINS},
                             tables_upstream=args.tables_upstream, vault_creation_polls=args.creation_polls)
    if args.creation_polls < 0:
        parser.error("--creation-polls: an integer >= 0")
    if args.tables_upstream is not None:
        try:
            Upstream(args.tables_upstream)
        except ValueError as exc:
            parser.error(f"--tables-upstream: {exc}")
    if args.provisioner_roles is not None:
        config.provisioner_roles = [r for r in args.provisioner_roles.split(",") if r]
    if args.config is not None:
        extra = json.loads(args.config.read_text())
        config.faults = extra.get("faults", [])
        config.replication_delay = extra.get("replicationDelay", {})
    return config


async def serve(config: SimulatorConfig) -> None:
    """Run until SIGTERM or SIGINT."""
    server = SimulatorServer(config)
    description = await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(json.dumps(description), flush=True)
    await stop.wait()
    await server.stop()


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    asyncio.run(serve(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
