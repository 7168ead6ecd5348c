"""The language-worker side: invoke user functions with their bindings, like the Python worker.

Sync functions run in a thread pool; async functions run on one long-lived event loop in its own
thread (the worker's loop: the durable client caches one aiohttp session per process, bound to it).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import traceback
import uuid
from collections.abc import Callable
from typing import Any

from azure.functions import meta
from azure.functions.durable_functions import ActivityTriggerConverter, OrchestrationTriggerConverter

from .registry import FunctionInfo


class InvocationContext:
    """What ``context: func.Context`` gives a function."""

    def __init__(self, function_name: str, function_directory: str = ".") -> None:
        self._invocation_id = str(uuid.uuid4())
        self._function_name = function_name
        self._function_directory = function_directory
        self._tls = threading.local()
        self._tls.invocation_id = self._invocation_id

    invocation_id = property(lambda self: self._invocation_id)
    function_name = property(lambda self: self._function_name)
    function_directory = property(lambda self: self._function_directory)
    thread_local_storage = property(lambda self: self._tls)
    trace_context = property(lambda self: None)
    retry_context = property(lambda self: None)


class Worker:
    def __init__(self, max_workers: int = 16) -> None:
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="fn")
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="worker-loop", daemon=True)
        self._thread.start()

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def _kwargs(self, info: FunctionInfo, trigger_value: Any, client_binding: Callable[[], str] | None) -> dict:
        kwargs = {info.trigger_param: trigger_value}
        for name in info.client_params:
            kwargs[name] = client_binding() if client_binding else None
        if info.wants_context:
            kwargs["context"] = InvocationContext(info.name)
        return kwargs

    def call_blocking(self, info: FunctionInfo, trigger_value: Any, client_binding=None) -> Any:
        """Call a function from a host thread and wait for it (async ones on the worker loop)."""
        kwargs = self._kwargs(info, trigger_value, client_binding)
        if info.is_async:
            return asyncio.run_coroutine_threadsafe(info.func(**kwargs), self.loop).result()
        return info.func(**kwargs)

    async def call_async(self, info: FunctionInfo, trigger_value: Any, client_binding=None) -> Any:
        """Call a function from the host's event loop without blocking it."""
        kwargs = self._kwargs(info, trigger_value, client_binding)
        if info.is_async:
            return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(info.func(**kwargs), self.loop))
        return await asyncio.get_running_loop().run_in_executor(self.pool, lambda: info.func(**kwargs))

    # ---- durable ---------------------------------------------------------------------------

    def run_orchestrator(self, info: FunctionInfo, context_json: str) -> str:
        """Call the registered orchestrator handle with the host-shaped context JSON."""
        context = OrchestrationTriggerConverter.decode(meta.Datum(type="json", value=context_json),
                                                       trigger_metadata=None)
        result = info.func(context)
        return OrchestrationTriggerConverter.encode(result, expected_type=None).value

    def run_activity(self, info: FunctionInfo, input_json: str | None) -> tuple[bool, Any]:
        """Run an activity; (True, result JSON) or (False, (reason, details))."""
        try:
            value = ActivityTriggerConverter.decode(meta.Datum(type="json", value=input_json or "null"),
                                                    trigger_metadata=None)
            result = self.call_blocking(info, value)
            return True, ActivityTriggerConverter.encode(result, expected_type=None).value
        except Exception as error:
            reason = f"Activity function '{info.durable_name}' failed: {type(error).__name__}: {error}"
            details = "".join(traceback.format_exception(error))[-4000:]
            return False, (reason, details)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.loop.call_soon_threadsafe(self.loop.stop)
