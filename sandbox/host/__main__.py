"""``python -m sandbox.host``: serve a Function App offline, as the Functions host would.

Prints one JSON line when ready: ``{"baseUrl", "functionKey", "adminKey", "pid", "taskHub", ...}``
and stops cleanly on SIGTERM / SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web
from croniter import croniter

from sandbox.clock import Clock, RemoteClock

from .engine import Engine
from .keys import Keys
from .registry import AppLoadError, import_app, load_functions
from .server import HostServer
from .taskhub import TaskHubStore
from .worker import Worker

log = logging.getLogger("sandbox.host")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sandbox.host", description=__doc__.splitlines()[0])
    parser.add_argument("--app", default=None, help="module:attribute of the FunctionApp (default: the one "
                        "FunctionApp/DFApp instance in function_app.py, found as the Python worker finds it)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7071, help="0 = a free port")
    parser.add_argument("--timers", action="store_true", help="run timer triggers on their NCRONTAB schedule")
    parser.add_argument("--clock-url", help="the shared sandbox clock (<loginUrl>/_sandbox/clock)")
    parser.add_argument("--ca-bundle", help="CA bundle for an https clock URL")
    parser.add_argument("--keys-file", help="host keys JSON (created when missing)")
    parser.add_argument("--settings", help="local.settings.json-style file whose Values go into the environment")
    parser.add_argument("--task-hub", help="task hub name (default: host.json durableTask hubName or SandboxHub)")
    parser.add_argument("--log-level", default=os.environ.get("SANDBOX_HOST_LOG_LEVEL", "INFO"))
    parser.add_argument("--check", action="store_true", help="load and check the app, then exit")
    parser.add_argument("--start-race-ms", type=float,
                        default=float(os.environ.get("SANDBOX_HOST_START_RACE_MS") or 0),
                        help="wall-clock window between a start's existence check and its insert (Azure Storage's "
                             "create is check-then-insert); env SANDBOX_HOST_START_RACE_MS")
    parser.add_argument("--hop-delay-ms", type=float,
                        default=float(os.environ.get("SANDBOX_HOST_HOP_MS") or 0),
                        help="per-hop cost of the Durable backend: each activity dispatch and each message to an "
                             "orchestration waits this long, as behind the Azure Storage provider's queue polling "
                             "(engine.py, 'the per-hop cost'); env SANDBOX_HOST_HOP_MS; 0 = none")
    parser.add_argument("--strict-replay", action="store_true",
                        default=os.environ.get("SANDBOX_HOST_STRICT_REPLAY", "") in ("1", "true", "True"),
                        help="on replay also compare activity inputs, timer fireAt and child ids (DTFx compares "
                             "only action types and names); env SANDBOX_HOST_STRICT_REPLAY=1")
    return parser.parse_args(argv)


def durable_limit(durable: dict, name: str) -> int | None:
    """A durableTask concurrency throttle: the app setting AzureFunctionsJobHost__extensions__durableTask__<name>
    (app settings override host.json values on the Functions host: functions-host-json#override-hostjson-values),
    else host.json's value, else None (the engine's default, 10 x processors)."""
    value = os.environ.get(f"AzureFunctionsJobHost__extensions__durableTask__{name}", durable.get(name))
    if value in (None, ""):
        return None
    number = int(value)
    if number < 1:
        raise ValueError(f"durableTask.{name} must be a positive integer, not {value!r}")
    return number


def read_host_json(app_module) -> dict:
    directory = os.path.dirname(os.path.abspath(getattr(app_module, "__file__", "") or "."))
    path = os.path.join(directory, "host.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    return {}


class TimerScheduler:
    """Fires timer triggers on their NCRONTAB schedules, following the sandbox clock."""

    def __init__(self, server: HostServer, functions, clock) -> None:
        self.server = server
        self.clock = clock
        self.entries = []
        now = clock.epoch()
        for info in functions:
            if ":" in info.schedule and len(info.schedule.split()) == 1:   # TimeSpan "hh:mm:ss"
                h, m, s = info.schedule.split(".")[-1].split(":")
                days = int(info.schedule.split(".")[0]) if "." in info.schedule else 0
                interval = days * 86400 + int(h) * 3600 + int(m) * 60 + int(s)
                self.entries.append({"info": info, "interval": interval, "next": now + interval})
            else:
                self.entries.append({"info": info, "next": self._next(info.schedule, now)})

    @staticmethod
    def _next(schedule: str, after: float) -> float:
        start = datetime.fromtimestamp(after, tz=UTC)
        return croniter(schedule, start, second_at_beginning=True).get_next(float)

    async def run(self) -> None:
        for entry in self.entries:
            if entry["info"].run_on_startup:
                asyncio.get_running_loop().create_task(self.server.fire_timer(entry["info"], past_due=False))
        while True:
            try:
                now = await asyncio.get_running_loop().run_in_executor(None, self.clock.epoch)
            except Exception as error:
                log.warning("clock unavailable: %s", error)
                await asyncio.sleep(0.5)
                continue
            for entry in self.entries:
                if now >= entry["next"]:
                    # missed occurrences collapse into one past-due run, as on the real host
                    past_due = now - entry["next"] > 1.0
                    if "interval" in entry:
                        entry["next"] = now + entry["interval"]
                    else:
                        entry["next"] = self._next(entry["info"].schedule, now)
                    log.info("timer trigger %s fires (pastDue=%s)", entry["info"].name, past_due)
                    asyncio.get_running_loop().create_task(self.server.fire_timer(entry["info"], past_due))
            await asyncio.sleep(0.05)


async def serve(args: argparse.Namespace) -> int:
    if args.settings:
        # Read once at start, before anything is served: blocking here is harmless.
        values = json.loads(Path(args.settings).read_text(encoding="utf-8")).get("Values") or {}  # noqa: ASYNC240
        for key, value in values.items():
            os.environ.setdefault(key, str(value))
    try:
        module, app = import_app(args.app)
        functions = load_functions(app)
    except AppLoadError as error:
        print(f"sandbox host: the app is invalid: {error}", file=sys.stderr, flush=True)
        return 2
    if args.check:
        print(json.dumps({"functions": sorted(functions)}), flush=True)
        return 0
    host_json = read_host_json(module)
    durable = ((host_json.get("extensions") or {}).get("durableTask") or {})
    task_hub = args.task_hub or os.environ.get("SANDBOX_TASK_HUB") or durable.get("hubName") or "SandboxHub"
    if task_hub.startswith("%") and task_hub.endswith("%"):
        task_hub = os.environ.get(task_hub.strip("%"), "SandboxHub")
    route_prefix = ((host_json.get("extensions") or {}).get("http") or {}).get("routePrefix", "api")
    connection = os.environ.get("AzureWebJobsStorage")
    if not connection:
        print("sandbox host: the AzureWebJobsStorage setting is required (the task hub lives in Azurite)",
              file=sys.stderr, flush=True)
        return 2
    if connection == "UseDevelopmentStorage=true":
        connection = ("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJ"
                      "PLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
                      "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;")

    local_clock = not args.clock_url
    clock = Clock() if local_clock else RemoteClock(args.clock_url, args.ca_bundle, cache_seconds=0.1)
    keys = Keys.load(args.keys_file)
    worker = Worker()
    store = TaskHubStore(connection, task_hub)
    try:
        limits = {"activity_workers": durable_limit(durable, "maxConcurrentActivityFunctions"),
                  "orchestrator_workers": durable_limit(durable, "maxConcurrentOrchestratorFunctions")}
    except (TypeError, ValueError) as error:
        print(f"sandbox host: host.json: {error}", file=sys.stderr, flush=True)
        return 2
    engine = Engine(store, functions, worker, clock, start_race_ms=args.start_race_ms,
                    strict_replay=args.strict_replay, hop_delay_ms=args.hop_delay_ms, **limits)
    server = HostServer(functions, engine, worker, keys, clock, task_hub, route_prefix=route_prefix,
                        local_clock=local_clock, on_clock_advanced=engine.poke)

    public = web.AppRunner(server.public_app(), access_log=None, handle_signals=False)
    rpc = web.AppRunner(server.rpc_app(), access_log=None, handle_signals=False)
    await public.setup()
    await rpc.setup()
    site = web.TCPSite(public, args.host, args.port, reuse_address=True)
    await site.start()
    rpc_site = web.TCPSite(rpc, "127.0.0.1", 0)
    await rpc_site.start()
    port = site._server.sockets[0].getsockname()[1]
    rpc_port = rpc_site._server.sockets[0].getsockname()[1]
    shown_host = args.host if args.host not in ("0.0.0.0", "::") else "127.0.0.1"
    server.base_url = f"http://{shown_host}:{port}"
    server.rpc_base_url = f"http://127.0.0.1:{rpc_port}/durabletask/"

    await asyncio.get_running_loop().run_in_executor(None, engine.start)
    tasks = []
    timers = [f for f in functions.values() if f.kind == "timer"]
    if args.timers and timers:
        tasks.append(asyncio.get_running_loop().create_task(TimerScheduler(server, timers, clock).run()))

    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    print(json.dumps({
        "baseUrl": server.base_url, "functionKey": keys.default_function_key, "adminKey": keys.master,
        "pid": os.getpid(), "taskHub": task_hub, "rpcBaseUrl": server.rpc_base_url,
        "clockUrl": args.clock_url or f"{server.base_url}/_sandbox/clock", "functions": sorted(functions),
        "timers": bool(args.timers), "maxConcurrentActivityFunctions": engine.activity_workers,
        "maxConcurrentOrchestratorFunctions": engine.orchestrator_workers, "hopDelayMs": args.hop_delay_ms,
    }), flush=True)
    await stop.wait()
    log.info("stopping")
    for task in tasks:
        task.cancel()
    await public.cleanup()
    await rpc.cleanup()
    await asyncio.get_running_loop().run_in_executor(None, engine.stop)
    worker.close()
    store.close()
    return 0


def main(argv=None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level.upper(), logging.INFO), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)
    code = asyncio.run(serve(args))
    sys.stdout.flush()
    sys.stderr.flush()
    # user threads (a stuck activity) must not keep a stopped host alive
    os._exit(code)


if __name__ == "__main__":
    main()
