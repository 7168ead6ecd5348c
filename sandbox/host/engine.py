"""The durable engine: what the Durable Task extension does around the Python SDK's replay engine.

One *episode* consumes one message for an instance: the host appends ``OrchestratorStarted`` and
the message's event to the history, calls the registered orchestrator handle with the whole
history (past events ``IsPlayed``), compares the replayed actions with the history (non-determinism
is a failure), schedules the new actions (activities, timers, sub-orchestrations), performs the
retries of ``call_activity_with_retry`` (``TaskFailed`` -> ``TimerCreated``/``TimerFired`` ->
``TaskScheduled``), and commits the new events, the outgoing work and the instance state to the
task hub in one atomic write (one table entity per episode).

Event ids follow the SDK's own sequence: every task the SDK creates takes the next number, including
the retry timers and re-attempts it creates while replaying.  With one new message per episode,
an episode allocates ids either for the host-side retry step or for the orchestrator's new actions,
never both, so the host knows each id without peeking into the SDK.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from dateutil.parser import parse as parse_datetime

from .registry import FunctionInfo
from .taskhub import TaskHubStore
from .worker import Worker

log = logging.getLogger("sandbox.host.engine")

TERMINAL = {"Completed", "Failed", "Terminated"}
OOPROC_MARK = "\n\n$OutOfProcData$:"

# history event types (azure.durable_functions.models.history.HistoryEventType)
EXECUTION_STARTED, EXECUTION_COMPLETED, EXECUTION_FAILED, EXECUTION_TERMINATED = 0, 1, 2, 3
TASK_SCHEDULED, TASK_COMPLETED, TASK_FAILED = 4, 5, 6
SUB_CREATED, SUB_COMPLETED, SUB_FAILED = 7, 8, 9
TIMER_CREATED, TIMER_FIRED, ORCHESTRATOR_STARTED, ORCHESTRATOR_COMPLETED = 10, 11, 12, 13
EVENT_RAISED, CONTINUE_AS_NEW = 15, 16
EXECUTION_SUSPENDED, EXECUTION_RESUMED = 19, 20
SCHEDULING = {TASK_SCHEDULED, TIMER_CREATED, SUB_CREATED}
EVENT_NAMES = {0: "ExecutionStarted", 1: "ExecutionCompleted", 2: "ExecutionFailed", 3: "ExecutionTerminated",
               4: "TaskScheduled", 5: "TaskCompleted", 6: "TaskFailed", 7: "SubOrchestrationInstanceCreated",
               8: "SubOrchestrationInstanceCompleted", 9: "SubOrchestrationInstanceFailed", 10: "TimerCreated",
               11: "TimerFired", 12: "OrchestratorStarted", 13: "OrchestratorCompleted", 14: "EventSent",
               15: "EventRaised", 16: "ContinueAsNew", 19: "ExecutionSuspended", 20: "ExecutionResumed"}

# action types (azure.durable_functions.models.actions.ActionType)
A_ACTIVITY, A_ACTIVITY_RETRY, A_SUB, A_SUB_RETRY, A_CONTINUE, A_TIMER, A_EVENT = 0, 1, 2, 3, 4, 5, 6
A_ENTITY, A_HTTP, A_SIGNAL, A_ANY, A_ALL = 7, 8, 9, 11, 12
ACTION_NAMES = {0: "CallActivity", 1: "CallActivityWithRetry", 2: "CallSubOrchestrator",
                3: "CallSubOrchestratorWithRetry", 4: "ContinueAsNew", 5: "CreateTimer", 6: "WaitForExternalEvent",
                7: "CallEntity", 8: "CallHttp", 9: "SignalEntity"}

# Azure Storage provider defaults for long timers (maxTimerInterval 6 days, split into 3-day timers)
MAX_SHORT_TIMER = "6.00:00:00"
LONG_TIMER_INTERVAL = "3.00:00:00"


def default_concurrency() -> int:
    """host.json's maxConcurrentActivityFunctions / maxConcurrentOrchestratorFunctions when unset: "10X the number
    of processors on the current machine" (learn.microsoft.com/azure/azure-functions/durable/
    durable-functions-perf-and-scale#concurrency-throttles; the extension's Environment.ProcessorCount * 10)."""
    return 10 * (os.cpu_count() or 1)


def iso(moment: float | datetime) -> str:
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, tz=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def extension_json(value: Any) -> str:
    """JSON text as the extension's MessagePayloadDataConverter.Serialize writes it (Newtonsoft, Formatting.None)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def stored_input(action_input: str | None) -> str | None:
    """The stored input of an orchestration started from an SDK action (sub-orchestration, continue-as-new).

    The Python SDK puts the input in the action as JSON *text* (``df_dumps``); the extension's out-of-proc shim
    reads that property as a .NET string and passes it on as the input object, which
    MessagePayloadDataConverter.Serialize encodes once more: the stored input is a JSON string whose content is
    the SDK's JSON text.  (azure-functions-durable-extension OutOfProcOrchestrationShim / DurableClient)
    """
    return None if action_input is None else extension_json(action_input)


def short_id(*parts: Any) -> str:
    return hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()[:24]


class NonDeterminismError(Exception):
    pass


class Instance:
    def __init__(self, instance_id: str) -> None:
        self.id = instance_id
        self.name = ""
        self.status = "Pending"
        self.input: str | None = None
        self.output: str | None = None
        self.custom_status: str | None = None
        self.created = ""
        self.updated = ""
        self.execution_id = ""
        self.parent: dict | None = None
        self.episodes = 0
        self.history: list[dict] = []
        self.metas: list[dict] = []
        self.processed: set[str] = set()
        self.queue: deque[dict] = deque()
        self.persisted: set[str] = set()   # message ids with a row in the table

    def state(self) -> dict:
        return {"Name": self.name, "RuntimeStatus": self.status, "Input": self.input, "Output": self.output,
                "CustomStatus": self.custom_status, "CreatedTime": self.created, "LastUpdatedTime": self.updated,
                "ExecutionId": self.execution_id, "HistoryCount": len(self.history), "Episodes": self.episodes,
                "Parent": json.dumps(self.parent) if self.parent else None}

    def next_event_id(self) -> int:
        ids = [event["EventId"] for event in self.history if event["EventType"] in SCHEDULING]
        return max(ids) + 1 if ids else 0

    def scheduling_event(self, event_id: int) -> tuple[dict, dict] | None:
        for event, meta in zip(self.history, self.metas, strict=False):
            if event["EventType"] in SCHEDULING and event["EventId"] == event_id:
                return event, meta
        return None


class Engine:
    def __init__(self, store: TaskHubStore, functions: dict[str, FunctionInfo], worker: Worker, clock,
                 activity_workers: int | None = None, start_race_ms: float = 0.0, strict_replay: bool = False,
                 orchestrator_workers: int | None = None, hop_delay_ms: float = 0.0) -> None:
        self.store = store
        # the wall-clock window between a start's existence check and its insert (widened by tests)
        self.start_race_seconds = max(0.0, float(start_race_ms)) / 1000.0
        # opt-in: also compare activity / sub-orchestration inputs on replay (DTFx does not)
        self.strict_replay = strict_replay
        self.worker = worker
        self.clock = clock
        self.orchestrators = {f.durable_name.lower(): f for f in functions.values() if f.kind == "orchestrator"}
        self.activities = {f.durable_name.lower(): f for f in functions.values() if f.kind == "activity"}
        self.instances: dict[str, Instance] = {}
        self.lock = threading.RLock()
        self.wake = threading.Condition(self.lock)
        self.ready: deque[str] = deque()
        self.timers: list[tuple[float, int, str, dict]] = []
        self._timer_seq = 0
        # host.json durableTask maxConcurrentActivityFunctions / maxConcurrentOrchestratorFunctions, per host instance
        # as on the Functions host: at most that many activities run at once (the rest wait in the work-item queue),
        # and at most that many orchestration episodes (each instance is still processed by one thread at a time).
        self.activity_workers = max(1, int(activity_workers or default_concurrency()))
        self.orchestrator_workers = max(1, int(orchestrator_workers or default_concurrency()))
        self.activity_pool = ThreadPoolExecutor(max_workers=self.activity_workers, thread_name_prefix="activity")
        self.cleanup = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cleanup")
        self.busy: set[str] = set()        # instances an orchestration thread is processing now
        # The per-hop cost of the Durable backend (--hop-delay-ms): every message to an orchestration and every
        # activity work item becomes visible to its dispatcher this much later, as behind the Azure Storage provider's
        # queue polling. 0 = at once (the sandbox's own cost only). Wall-clock seconds, on a monotonic heap.
        self.hop_seconds = max(0.0, float(hop_delay_ms)) / 1000.0
        self.hops: list[tuple[float, int, Callable[[], None]]] = []
        self._hop_seq = 0
        self.stopping = False
        self.changed = threading.Condition(self.lock)   # notified on every committed episode
        self._threads: list[threading.Thread] = []
        self._enqueued_counter = 0

    # ---- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        self._recover()
        loops = [(self._dispatch_loop, f"orchestrations-{n}") for n in range(self.orchestrator_workers)]
        for target, name in [*loops, (self._timer_loop, "durable-timers")]:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        with self.lock:
            self.stopping = True
            self.wake.notify_all()
        for thread in self._threads:
            thread.join(timeout=5)
        self.activity_pool.shutdown(wait=False, cancel_futures=True)

    def poke(self) -> None:
        """Wake the timer loop (the clock moved)."""
        with self.lock:
            self.wake.notify_all()

    def set_hop_delay(self, milliseconds: float) -> None:
        """Change the per-hop cost while running (the sandbox host's admin route)."""
        with self.lock:
            self.hop_seconds = max(0.0, float(milliseconds)) / 1000.0

    # ---- the per-hop cost ------------------------------------------------------------------
    # On Azure, the Durable Task extension's Azure Storage provider moves every message through a queue: an activity's
    # work item through the work-item queue, and every message to an orchestration (its start, an activity's result,
    # a fired timer, an event) through a control queue. Each queue is polled with a random exponential back-off: 50 ms
    # after a message was found, growing up to maxQueuePollingInterval (host.json, default 30 s) while it stays empty
    # (learn.microsoft.com/azure/azure-functions/durable/durable-functions-azure-storage-provider#queue-polling;
    # Azure/durabletask src/DurableTask.AzureStorage BackoffPollingHelper and TaskHubQueue: minimum 50 ms). Microsoft's
    # own figure for a sequence of activities on that provider is "5 activities per second, per instance"
    # (durable-functions-perf-and-scale, Performance targets): about 200 ms per activity, two queue hops. The sandbox
    # host delivers at once; --hop-delay-ms / SANDBOX_HOST_HOP_MS adds that cost back, per hop, for benchmarks.

    def _after_hop(self, action: Callable[[], None]) -> None:
        """Run `action` (under the lock) once one hop has passed; at once without a hop delay."""
        with self.lock:
            if self.hop_seconds <= 0:
                action()
                return
            self._hop_seq += 1
            heapq.heappush(self.hops, (time.monotonic() + self.hop_seconds, self._hop_seq, action))
            self.wake.notify_all()

    def _deliver(self, inst: Instance, message: dict) -> None:
        """A new message for an orchestration: into its queue once the control-queue hop has passed."""
        def arrive() -> None:
            inst.queue.append(message)
            self._mark_ready(inst.id)
        self._after_hop(arrive)

    def _enqueued(self) -> float:
        # strictly increasing arrival stamp (wall time, only for ordering)
        with self.lock:
            self._enqueued_counter += 1
            return time.time() * 1e6 + (self._enqueued_counter % 1000) / 1000

    # ---- recovery -------------------------------------------------------------------------

    def _recover(self) -> None:
        data = self.store.load_all()
        stale: list[tuple[str, str]] = []
        for instance_id, item in data.items():
            sentinel = item["sentinel"]
            commits = item["commits"]
            state = commits[-1]["state"] if commits else sentinel
            inst = Instance(instance_id)
            if state:
                inst.name = state.get("Name") or ""
                inst.status = state.get("RuntimeStatus") or "Pending"
                inst.input, inst.output = state.get("Input"), state.get("Output")
                inst.custom_status = state.get("CustomStatus")
                inst.created = state.get("CreatedTime") or ""
                inst.updated = state.get("LastUpdatedTime") or ""
                inst.execution_id = state.get("ExecutionId") or ""
                inst.parent = json.loads(state["Parent"]) if state.get("Parent") else None
                inst.episodes = int(state.get("Episodes") or 0)
            # history of the current execution = the events of the commits since the last continue-as-new
            pending_messages: dict[str, dict] = {}
            scheduled: dict[int, dict] = {}
            for commit in commits:
                if commit["restart"]:
                    inst.history, inst.metas, scheduled = [], [], {}
                    pending_messages = {m["id"]: m for m in commit["messages"]}
                    continue
                for event, meta in commit["events"]:
                    inst.history.append(event)
                    inst.metas.append(meta)
                for message in commit["messages"]:
                    pending_messages[message["id"]] = message
                for work in commit["activities"]:
                    scheduled[work["taskId"]] = work
            for meta in inst.metas:
                if meta.get("msg"):
                    inst.processed.add(meta["msg"])
            finished = {e["TaskScheduledId"] for e in inst.history if e["EventType"] in (TASK_COMPLETED, TASK_FAILED)}
            if not state and not any(m["kind"] == "ExecutionStarted" for m in item["messages"]):
                continue
            self.instances[instance_id] = inst
            for message in item["messages"]:
                inst.persisted.add(message["id"])
                if message["id"] in inst.processed:
                    stale.append((instance_id, f"m-{message['id']}"))
                    continue
                pending_messages[message["id"]] = message
            done_ids = set()
            for activity in item["activities"]:
                if activity.get("done") and activity["executionId"] == inst.execution_id:
                    done = activity["done"]
                    done_ids.add(activity["taskId"])
                    inst.persisted.add(done["id"])
                    if done["id"] in inst.processed:
                        stale.append((instance_id, done["row"]))
                        continue
                    pending_messages[done["id"]] = done
            for message in pending_messages.values():
                if message["id"] in inst.processed:
                    continue
                stale_execution = message.get("executionId") not in (None, inst.execution_id)
                if stale_execution and message["kind"] != "ExecutionStarted":
                    continue
                if message.get("visibleAt"):
                    self._push_timer(instance_id, message)
                else:
                    inst.queue.append(message)
            if inst.status not in TERMINAL:
                for task_id, work in scheduled.items():
                    if task_id in finished or task_id in done_ids:
                        continue
                    log.info("re-running activity %s of %s (it was pending when the host stopped)",
                             work["name"], instance_id)
                    self._submit_activity(work)
            inst.queue = deque(sorted(inst.queue, key=lambda m: m["enqueued"]))
            if inst.queue:
                self.ready.append(instance_id)
        for instance_id, row in stale:
            self.store.delete(instance_id, row)

    # ---- client operations (called from HTTP handlers) ------------------------------------------

    def start_new(self, name: str, instance_id: str | None, input_json: str | None,
                  parent: dict | None = None) -> str:
        info = self.orchestrators.get(name.lower())
        if info is None:
            raise LookupError(f"The function '{name}' doesn't exist, is disabled, or is not an orchestrator "
                              "function. Additional info: the sandbox host knows the orchestrators "
                              f"{sorted(f.durable_name for f in self.orchestrators.values())}.")
        instance_id = instance_id or uuid.uuid4().hex
        # Like the Azure Storage provider, a start is check-then-insert, not atomic
        # (DurableTask.AzureStorage AzureStorageOrchestrationService.CreateTaskOrchestrationAsync): it reads the
        # instance row (FetchInstanceStatusAsync), refuses a start only if that row's status is one of the
        # dedupeStatuses (the extension's default OverridableExistingInstanceStates.NonRunningStates: a
        # running instance), enqueues the ExecutionStarted message, and only then inserts the row (or replaces
        # it with the ETag it read) in AzureTableTrackingStore.SetNewExecutionAsync, which swallows a 409 / 412
        # and returns false -- a result CreateTaskOrchestrationAsync ignores.  So two concurrent starts of one id
        # are both accepted; the one whose row write lost has an ExecutionStarted whose ExecutionId does not
        # match the Instances row, and OrchestrationSessionManager.DedupeExecutionStartedMessagesAsync discards
        # it (DuplicateMessageDetected).  One execution runs, with the winner's input.
        with self.lock:
            existing = self.instances.get(instance_id)
            if existing and existing.status not in TERMINAL:
                raise FileExistsError(f"An Orchestration instance with the status {existing.status} already exists.")
            seen_execution = existing.execution_id if existing else None   # the row's ETag, as read
        if self.start_race_seconds and parent is None:
            time.sleep(self.start_race_seconds)
        now = iso(self.clock.epoch())
        inst = Instance(instance_id)
        inst.name, inst.input, inst.parent = info.durable_name, input_json, parent
        inst.created = inst.updated = now
        inst.execution_id = uuid.uuid4().hex
        with self.lock:
            current = self.instances.get(instance_id)
            if (current.execution_id if current else None) != seen_execution:
                log.warning("DuplicateMessageDetected: discarding the ExecutionStarted of %s (execution %s): another "
                            "start wrote the instance row first", instance_id, inst.execution_id)
                return instance_id
            self.instances[instance_id] = inst   # this start's row write wins
        if existing:
            self.store.purge(instance_id)
        message = {"id": short_id("start", instance_id, inst.execution_id), "kind": "ExecutionStarted",
                   "enqueued": self._enqueued(), "name": info.durable_name, "input": input_json,
                   "executionId": inst.execution_id, "parent": parent}
        try:
            self.store.transact([("upsert", self.store.sentinel_entity(instance_id, inst.state())),
                                 ("upsert", self.store.message_entity(instance_id, message))])
        except Exception:
            # The ExecutionStarted message never reached the task hub: as in DTFx, whose enqueue comes first, no
            # instance exists and the caller sees the error.
            with self.lock:
                if self.instances.get(instance_id) is inst:
                    if existing is not None:
                        self.instances[instance_id] = existing
                    else:
                        del self.instances[instance_id]
            raise
        try:
            self.store.put_instance_row(instance_id, inst.state())
        except Exception:   # SetNewExecutionAsync's row write failing is swallowed too: the message runs it
            log.exception("instances row of %s not written", instance_id)
        inst.persisted.add(message["id"])
        self._deliver(inst, message)
        return instance_id

    def send(self, instance_id: str, kind: str, **payload: Any) -> str:
        """Persist and deliver a message (raise event, terminate) to an existing instance."""
        message = {"id": payload.pop("id", None) or uuid.uuid4().hex, "kind": kind, "enqueued": self._enqueued()}
        message.update(payload)
        self.store.upsert(self.store.message_entity(instance_id, message))
        with self.lock:
            inst = self.instances.get(instance_id)
            if inst is None:
                return message["id"]
            inst.persisted.add(message["id"])
            if message.get("visibleAt"):
                self._push_timer(instance_id, message)
            else:
                self._deliver(inst, message)
        return message["id"]

    def purge(self, instance_id: str) -> bool:
        with self.lock:
            inst = self.instances.get(instance_id)
            if inst is None or inst.status not in TERMINAL:
                return False
            del self.instances[instance_id]
        self.store.purge(instance_id)
        return True

    def get(self, instance_id: str) -> Instance | None:
        with self.lock:
            return self.instances.get(instance_id)

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.lock:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.changed.wait(remaining)
            return True

    # ---- loops ----------------------------------------------------------------------------

    def _mark_ready(self, instance_id: str) -> None:
        if instance_id not in self.ready:
            self.ready.append(instance_id)
        self.wake.notify_all()

    def _push_timer(self, instance_id: str, message: dict) -> None:
        # Callers may or may not hold the lock (recovery runs before the loops start): take it here, it is
        # re-entrant, so notify_all() always runs on an acquired condition.
        with self.lock:
            self._timer_seq += 1
            heapq.heappush(self.timers, (float(message["visibleAt"]), self._timer_seq, instance_id, message))
            self.wake.notify_all()

    def _timer_loop(self) -> None:
        while True:
            try:
                now = self.clock.epoch()
            except Exception as error:
                log.warning("clock unavailable: %s", error)
                now = None
            with self.lock:
                if self.stopping:
                    return
                while now is not None and self.timers and self.timers[0][0] <= now:
                    _, _, instance_id, message = heapq.heappop(self.timers)
                    inst = self.instances.get(instance_id)
                    if inst is not None:
                        self._deliver(inst, message)
                wait = 0.05
                while self.hops:
                    due = self.hops[0][0] - time.monotonic()
                    if due > 0:
                        wait = min(wait, due)
                        break
                    heapq.heappop(self.hops)[2]()
                self.wake.wait(wait)

    def _take_ready(self) -> str | None:
        """The first ready instance no other orchestration thread is processing; marked busy (lock held)."""
        for index, instance_id in enumerate(self.ready):
            if instance_id not in self.busy:
                del self.ready[index]
                self.busy.add(instance_id)
                return instance_id
        return None

    def _dispatch_loop(self) -> None:
        # maxConcurrentOrchestratorFunctions threads run this loop; an instance is processed by one at a time, as the
        # Azure Storage provider's control-queue partitions and OrchestrationSessionManager keep an instance on one
        # worker and one session.
        while True:
            with self.lock:
                instance_id = None
                while not self.stopping and (instance_id := self._take_ready()) is None:
                    self.wake.wait(0.5)
                if self.stopping:
                    return
                inst = self.instances.get(instance_id)
                message = self._next_message(inst) if inst is not None else None
                if message is None:
                    self.busy.discard(instance_id)
                    continue
            try:
                self._episode(inst, message)
            except Exception:
                log.exception("episode of %s failed in the host; retrying shortly", instance_id)
                time.sleep(0.2)
                with self.lock:
                    self.busy.discard(instance_id)
                    self._mark_ready(instance_id)
                continue
            with self.lock:
                for index, queued in enumerate(inst.queue):
                    if queued is message:
                        del inst.queue[index]
                        break
                self.busy.discard(instance_id)
                if self._next_message(inst) is not None and self.instances.get(instance_id) is inst:
                    self._mark_ready(instance_id)
                elif instance_id in self.ready:
                    self.wake.notify_all()   # marked ready while busy: another thread may take it now
                self.changed.notify_all()

    @staticmethod
    def _next_message(inst: Instance) -> dict | None:
        """The next message to process; a Suspended instance takes only Resume and Terminate, the others wait.

        DTFx (DurableTask.Core TaskOrchestrationDispatcher / OrchestrationRuntimeState) keeps the messages of a
        suspended instance and processes them after ExecutionResumed.
        """
        if inst.status != "Suspended":
            return inst.queue[0] if inst.queue else None
        return next((message for message in inst.queue if message["kind"] in ("Resume", "Terminate")), None)

    # ---- the episode ----------------------------------------------------------------------

    def _drop(self, inst: Instance, message: dict, why: str) -> None:
        log.debug("dropping %s for %s: %s", message["kind"], inst.id, why)
        if message["id"] in inst.persisted:
            self.store.delete(inst.id, message.get("row") or f"m-{message['id']}")
            inst.persisted.discard(message["id"])

    def _episode(self, inst: Instance, message: dict) -> None:
        kind = message["kind"]
        if message["id"] in inst.processed:
            return self._drop(inst, message, "already processed")
        if kind != "ExecutionStarted" and message.get("executionId") not in (None, inst.execution_id):
            return self._drop(inst, message, "for an earlier execution")
        if inst.status in TERMINAL:
            return self._drop(inst, message, f"instance is {inst.status}")
        if kind == "ExecutionStarted" and inst.history:
            return self._drop(inst, message, "already started")
        info = self.orchestrators.get(inst.name.lower())
        now = self.clock.epoch()
        stamp = iso(now)
        new: list[tuple[dict, dict]] = [({"EventType": ORCHESTRATOR_STARTED, "EventId": -1, "Timestamp": stamp},
                                         {"msg": message["id"]})]
        if kind == "Terminate":
            # ExecutionTerminatedEvent.Input and the instance's Output are the reason as given (not JSON); the
            # status API shows it through DurableClient.ParseToJToken (JSON if it parses, else the raw text)
            reason = message.get("reason")
            new.append(({"EventType": EXECUTION_TERMINATED, "EventId": -1, "Timestamp": stamp, "Input": reason}, {}))
            return self._finish(inst, message, new, "Terminated", reason, None, stamp,
                                failure=f"Sub-orchestration '{inst.name}' was terminated: {reason}")
        if kind in ("Suspend", "Resume"):
            suspend = kind == "Suspend"
            if (inst.status == "Suspended") == suspend:
                return self._drop(inst, message, f"instance is already {inst.status}")
            # DTFx appends ExecutionSuspended / ExecutionResumed without running the orchestrator
            new.append(({"EventType": EXECUTION_SUSPENDED if suspend else EXECUTION_RESUMED, "EventId": -1,
                         "Timestamp": stamp, "Reason": message.get("reason")}, {}))
            new.append(({"EventType": ORCHESTRATOR_COMPLETED, "EventId": -1, "Timestamp": stamp}, {}))
            return self._commit(inst, message, new, "Suspended" if suspend else "Running", stamp, [])
        new.append((self._event_for(inst, message, stamp), {}))

        if info is None:
            error = f"The orchestrator function '{inst.name}' doesn't exist in this app."
            return self._fail(inst, message, new, error, stamp)

        past = [dict(event, IsPlayed=True) for event in inst.history]
        fresh = [dict(event, IsPlayed=False) for event, _ in new]
        context = {
            # the extension embeds the stored input parsed once, as a JSON value (OrchestrationTriggerAttribute-
            # BindingProvider.OrchestrationContextToString: new JProperty("input", GetInputAsJson())), and the SDK's
            # get_input() decodes that value once more (DurableOrchestrationContext.get_input -> df_loads).
            "history": past + fresh, "input": json.loads(inst.input) if inst.input is not None else None,
            "instanceId": inst.id, "isReplaying": bool(past),
            "parentInstanceId": (inst.parent or {}).get("instanceId"), "upperSchemaVersion": 1,
            "upperSchemaVersionNew": 2, "maximumShortTimerDuration": MAX_SHORT_TIMER,
            "longRunningTimerIntervalDuration": LONG_TIMER_INTERVAL,
        }
        try:
            state = json.loads(self.worker.run_orchestrator(info, json.dumps(context)))
            failure = None
        except Exception as error:
            text = str(error)
            failure, _, data = text.partition(OOPROC_MARK)
            state = json.loads(data) if data else {"isDone": False, "actions": []}
            if not failure:
                failure = text or type(error).__name__
        custom = state.get("customStatus")
        inst.next_custom = json.dumps(custom) if custom is not None else inst.custom_status

        next_id = inst.next_event_id()
        outgoing: list[dict] = []   # activities / timers / children, applied after the commit
        try:
            actions = self._flatten(state.get("actions") or [])
            new_actions = self._match(inst, actions)
            # host-side retry steps (one message per episode: the SDK allocated these ids)
            retry_steps = self._retry_steps(inst, message, next_id, now, stamp, outgoing)
            new.extend(retry_steps)
            next_id += len(retry_steps)
        except NonDeterminismError as error:
            return self._fail(inst, message, new, str(error), stamp, plain=True)

        if failure is not None:
            return self._fail(inst, message, new, failure, stamp)

        continue_as_new = None
        for action in new_actions:
            action_type = action["actionType"]
            if action_type == A_CONTINUE:
                continue_as_new = action
                break
            if action_type in (A_ENTITY, A_HTTP, A_SIGNAL):
                return self._fail(inst, message, new, f"{ACTION_NAMES[action_type]} is not supported by the "
                                  "sandbox host", stamp)
            event, meta = self._schedule(inst, action, next_id, now, stamp, outgoing)
            new.append((event, meta))
            next_id += 1

        if state.get("isDone") and continue_as_new is None:
            output = state.get("output")
            return self._finish(inst, message, new, "Completed", json.dumps(output), output, stamp,
                                outgoing=outgoing)
        if continue_as_new is not None:
            return self._continue_as_new(inst, message, new, continue_as_new, stamp)
        new.append(({"EventType": ORCHESTRATOR_COMPLETED, "EventId": -1, "Timestamp": stamp}, {}))
        self._commit(inst, message, new, "Running", stamp, outgoing)

    def _event_for(self, inst: Instance, message: dict, stamp: str) -> dict:
        kind = message["kind"]
        base = {"EventId": -1, "Timestamp": stamp}
        if kind == "ExecutionStarted":
            started = {"EventType": EXECUTION_STARTED, "Name": message["name"], "Input": message.get("input"),
                       "Version": "", "OrchestrationInstance": {"InstanceId": inst.id,
                                                                "ExecutionId": inst.execution_id}}
            if message.get("parent"):
                started["ParentInstance"] = {"OrchestrationInstance": {
                    "InstanceId": message["parent"]["instanceId"],
                    "ExecutionId": message["parent"]["executionId"]}, "TaskScheduleId": message["parent"]["taskId"],
                    "Name": message["parent"].get("name")}
            return dict(base, **started)
        if kind == "TaskCompleted":
            return dict(base, EventType=TASK_COMPLETED, TaskScheduledId=message["taskId"], Result=message["result"])
        if kind == "TaskFailed":
            return dict(base, EventType=TASK_FAILED, TaskScheduledId=message["taskId"], Reason=message["reason"],
                        Details=message["details"])
        if kind == "TimerFired":
            return dict(base, EventType=TIMER_FIRED, TimerId=message["timerId"], FireAt=message["fireAt"])
        if kind == "EventRaised":
            return dict(base, EventType=EVENT_RAISED, Name=message["name"], Input=message.get("input"))
        if kind == "SubOrchestrationCompleted":
            return dict(base, EventType=SUB_COMPLETED, TaskScheduledId=message["taskId"], Result=message["result"])
        if kind == "SubOrchestrationFailed":
            return dict(base, EventType=SUB_FAILED, TaskScheduledId=message["taskId"], Reason=message["reason"],
                        Details=message["details"])
        raise ValueError(f"unknown message kind {kind}")

    @staticmethod
    def _flatten(actions: list) -> list[dict]:
        out: list[dict] = []

        def walk(item: Any) -> None:
            if isinstance(item, list):
                for child in item:
                    walk(child)
            elif item.get("actionType") in (A_ANY, A_ALL):
                walk(item.get("compoundActions") or [])
            else:
                out.append(item)
        walk(actions)
        return [action for action in out if action["actionType"] != A_EVENT]

    def _match(self, inst: Instance, actions: list[dict]) -> list[dict]:
        """Compare replayed actions with the history; return the new ones."""
        primaries = sorted(((event, meta) for event, meta in zip(inst.history, inst.metas, strict=False)
                            if event["EventType"] in SCHEDULING and meta.get("kind") == "primary"),
                           key=lambda pair: pair[0]["EventId"])
        for index, (action, (event, _)) in enumerate(zip(actions, primaries, strict=False)):
            problem = self._difference(action, event, self.strict_replay)
            if problem:
                raise NonDeterminismError(
                    f"Non-deterministic workflow detected: action #{index} of orchestrator '{inst.name}' "
                    f"(instance '{inst.id}') replayed as {self._describe_action(action)} but the history has "
                    f"{self._describe_event(event)} (EventId {event['EventId']}): {problem}. Orchestrator code "
                    "must be deterministic: use context.current_utc_datetime and context.new_uuid(), never "
                    "datetime.now(), random values or I/O.")
        return actions[len(primaries):]

    @staticmethod
    def _difference(action: dict, event: dict, strict: bool = False) -> str | None:
        """What differs between a replayed action and its history event, as DTFx checks it.

        DurableTask.Core TaskOrchestrationContext.HandleTaskScheduledEvent / HandleTimerCreatedEvent /
        HandleSubOrchestrationCreatedEvent compare the action's type at that sequence number and, for activities
        and sub-orchestrations, the name (OrdinalIgnoreCase) -- not the input, a timer's fireAt or a child's
        instance id (the Python SDK does no check of its own).  ``strict`` (--strict-replay) adds those.
        """
        kind = action["actionType"]
        expected = {A_ACTIVITY: TASK_SCHEDULED, A_ACTIVITY_RETRY: TASK_SCHEDULED, A_SUB: SUB_CREATED,
                    A_SUB_RETRY: SUB_CREATED, A_TIMER: TIMER_CREATED}.get(kind)
        if expected != event["EventType"]:
            return "the action type differs"
        if kind == A_TIMER:
            if strict and parse_datetime(action["fireAt"]) != parse_datetime(event["FireAt"]):
                return f"fireAt {action['fireAt']} != {event['FireAt']} (strict replay)"
            return None
        if action["functionName"].lower() != (event.get("Name") or "").lower():
            return "the function name differs"
        if not strict:
            return None
        if action.get("input") != event.get("Input"):
            return f"the input differs ({action.get('input')} != {event.get('Input')}; strict replay)"
        if kind in (A_SUB, A_SUB_RETRY) and action.get("instanceId") and action["instanceId"] != event.get(
                "InstanceId"):
            return "the sub-orchestration instance id differs (strict replay)"
        return None

    @staticmethod
    def _describe_action(action: dict) -> str:
        name = action.get("functionName") or action.get("fireAt") or ""
        return f"{ACTION_NAMES.get(action['actionType'], action['actionType'])} '{name}' with input " \
               f"{action.get('input')}"

    @staticmethod
    def _describe_event(event: dict) -> str:
        return f"{EVENT_NAMES[event['EventType']]} '{event.get('Name') or event.get('FireAt')}' with input " \
               f"{event.get('Input')}"

    def _retry_steps(self, inst: Instance, message: dict, next_id: int, now: float, stamp: str,
                     outgoing: list[dict]) -> list[tuple[dict, dict]]:
        kind = message["kind"]
        if kind in ("TaskFailed", "SubOrchestrationFailed"):
            found = inst.scheduling_event(message["taskId"])
            if not found:
                return []
            _, meta = found
            root, attempt = meta.get("root", message["taskId"]), meta.get("attempt", 1)
            options = meta.get("retry") or (inst.scheduling_event(root) or ({}, {}))[1].get("retry")
            if not options:
                return []
            coefficient = float(options.get("backoffCoefficient") or 1.0)
            delay_ms = float(options["firstRetryIntervalInMilliseconds"]) * coefficient ** (attempt - 1)
            if options.get("maxRetryIntervalInMilliseconds"):
                delay_ms = min(delay_ms, float(options["maxRetryIntervalInMilliseconds"]))
            fire_at = iso(now + delay_ms / 1000.0)
            event = {"EventType": TIMER_CREATED, "EventId": next_id, "Timestamp": stamp, "FireAt": fire_at}
            outgoing.append({"kind": "timer", "timerId": next_id, "fireAt": fire_at})
            return [(event, {"kind": "retry-timer", "root": root, "attempt": attempt})]
        if kind == "TimerFired":
            found = inst.scheduling_event(message["timerId"])
            if not found or found[1].get("kind") != "retry-timer":
                return []
            meta = found[1]
            root_event, root_meta = inst.scheduling_event(meta["root"])
            if meta["attempt"] >= int(root_meta["retry"]["maxNumberOfAttempts"]):
                return []   # the SDK fails the task now
            attempt = meta["attempt"] + 1
            event = dict(root_event, EventId=next_id, Timestamp=stamp)
            if root_event["EventType"] == SUB_CREATED:
                event["InstanceId"] = f"{root_event['InstanceId']}-{attempt}"
                outgoing.append({"kind": "child", "taskId": next_id, "name": event["Name"],
                                 "instanceId": event["InstanceId"], "input": event.get("Input")})
            else:
                outgoing.append({"kind": "activity", "taskId": next_id, "name": event["Name"],
                                 "input": event.get("Input")})
            return [(event, {"kind": "retry-attempt", "root": meta["root"], "attempt": attempt})]
        return []

    def _schedule(self, inst: Instance, action: dict, event_id: int, now: float, stamp: str,
                  outgoing: list[dict]) -> tuple[dict, dict]:
        kind = action["actionType"]
        meta: dict = {"kind": "primary"}
        if kind in (A_ACTIVITY_RETRY, A_SUB_RETRY):
            meta["retry"] = action["retryOptions"]
            meta["attempt"] = 1
            meta["root"] = event_id
        if kind in (A_ACTIVITY, A_ACTIVITY_RETRY):
            if action["functionName"].lower() not in self.activities:
                log.warning("activity '%s' does not exist; it will fail", action["functionName"])
            outgoing.append({"kind": "activity", "taskId": event_id, "name": action["functionName"],
                             "input": action.get("input")})
            return {"EventType": TASK_SCHEDULED, "EventId": event_id, "Timestamp": stamp,
                    "Name": action["functionName"], "Input": action.get("input")}, meta
        if kind == A_TIMER:
            if not action.get("isCanceled"):
                outgoing.append({"kind": "timer", "timerId": event_id, "fireAt": action["fireAt"]})
            return {"EventType": TIMER_CREATED, "EventId": event_id, "Timestamp": stamp,
                    "FireAt": action["fireAt"]}, meta
        if kind in (A_SUB, A_SUB_RETRY):
            child_id = action.get("instanceId") or f"{inst.id}:{event_id}"
            outgoing.append({"kind": "child", "taskId": event_id, "name": action["functionName"],
                             "instanceId": child_id, "input": action.get("input")})
            return {"EventType": SUB_CREATED, "EventId": event_id, "Timestamp": stamp,
                    "Name": action["functionName"], "InstanceId": child_id, "Input": action.get("input")}, meta
        raise ValueError(f"unexpected action {action}")

    # ---- endings --------------------------------------------------------------------------

    def _fail(self, inst: Instance, message: dict, new: list, error: str, stamp: str, plain: bool = False) -> None:
        text = error if plain else f"Orchestrator function '{inst.name}' failed: {error}"
        self._finish(inst, message, new, "Failed", json.dumps(text), None, stamp,
                     failure=f"Sub-orchestration '{inst.name}' failed: {text}")

    def _finish(self, inst: Instance, message: dict, new: list, status: str, output_json: str, output: Any,
                stamp: str, failure: str | None = None, outgoing: list | None = None) -> None:
        if status != "Terminated":
            new.append(({"EventType": EXECUTION_COMPLETED, "EventId": -1, "Timestamp": stamp,
                         "OrchestrationStatus": status, "Result": output_json}, {}))
            new.append(({"EventType": ORCHESTRATOR_COMPLETED, "EventId": -1, "Timestamp": stamp}, {}))
        outgoing = list(outgoing or [])
        if inst.parent:
            parent = inst.parent
            if status == "Completed":
                outgoing.append({"kind": "notify", "message": {
                    "id": short_id("subdone", inst.id, inst.execution_id), "kind": "SubOrchestrationCompleted",
                    "taskId": parent["taskId"], "result": output_json, "executionId": parent["executionId"]},
                    "to": parent["instanceId"]})
            else:
                outgoing.append({"kind": "notify", "message": {
                    "id": short_id("subdone", inst.id, inst.execution_id), "kind": "SubOrchestrationFailed",
                    "taskId": parent["taskId"], "reason": failure, "details": None,
                    "executionId": parent["executionId"]}, "to": parent["instanceId"]})
        # activities and timers of a finished instance are pointless; children are kept
        outgoing = [item for item in outgoing if item["kind"] in ("notify", "child")]
        self._commit(inst, message, new, status, stamp, outgoing, output=output_json)

    def _continue_as_new(self, inst: Instance, message: dict, new: list, action: dict, stamp: str) -> None:
        new.append(({"EventType": EXECUTION_COMPLETED, "EventId": -1, "Timestamp": stamp,
                     "OrchestrationStatus": "ContinuedAsNew", "Result": action.get("input")}, {}))
        # the new execution starts from an empty history with the new input
        execution_id = uuid.uuid4().hex
        new_input = stored_input(action.get("input"))
        start = {"id": short_id("start", inst.id, execution_id), "kind": "ExecutionStarted",
                 "enqueued": self._enqueued(), "name": inst.name, "input": new_input,
                 "executionId": execution_id, "parent": inst.parent}
        self._commit(inst, message, new, "Running", stamp, [], restart=(execution_id, new_input, start))

    # ---- commit ---------------------------------------------------------------------------

    def _commit(self, inst: Instance, message: dict, new: list, status: str, stamp: str, outgoing: list,
                restart: tuple | None = None, output: str | None = None) -> None:
        store = self.store
        episode = inst.episodes + 1
        activities: list[dict] = []
        timers: list[dict] = []
        notifications: list[tuple[str, dict]] = []
        children: list[dict] = []
        out_messages: list[dict] = []
        for item in outgoing:
            if item["kind"] == "activity":
                work = {"id": short_id(inst.execution_id, item["taskId"]), "instanceId": inst.id,
                        "executionId": inst.execution_id, "taskId": item["taskId"], "name": item["name"],
                        "input": item["input"], "episode": episode}
                activities.append(work)
            elif item["kind"] == "timer":
                timer = {"id": short_id("timer", inst.execution_id, item["timerId"]), "kind": "TimerFired",
                         "enqueued": self._enqueued(), "timerId": item["timerId"], "fireAt": item["fireAt"],
                         "visibleAt": parse_datetime(item["fireAt"]).timestamp(),
                         "executionId": inst.execution_id}
                timers.append(timer)
                out_messages.append(timer)
            elif item["kind"] == "notify":
                notifications.append((item["to"], item["message"]))
            elif item["kind"] == "child":
                children.append(item)

        # other partitions first (idempotent: deterministic ids, deduplicated on receipt)
        for child in children:
            self._start_child(inst, child)
        for target, note in notifications:
            note["enqueued"] = self._enqueued()
            store.upsert(store.message_entity(target, note))

        history = list(inst.history) + [event for event, _ in new]
        metas = list(inst.metas) + [meta for _, meta in new]
        execution_id, new_input = (restart[0], restart[1]) if restart is not None else (inst.execution_id, inst.input)
        if restart is not None:
            history, metas = [], []
            out_messages.append(restart[2])
        custom_status = getattr(inst, "next_custom", inst.custom_status)
        snapshot = dict(inst.state(), CustomStatus=custom_status, RuntimeStatus=status, LastUpdatedTime=stamp,
                        Episodes=episode, ExecutionId=execution_id, Input=new_input,
                        Output=output if status in TERMINAL else None)
        snapshot.pop("HistoryCount", None)
        # the commit point: one entity (atomic) holding the episode's events, the new state and its work
        store.commit_episode(inst.id, episode, {
            "events": [[event, meta] for event, meta in new], "state": snapshot, "restart": restart is not None,
            "executionId": inst.execution_id, "activities": activities, "messages": out_messages,
        })
        if message["id"] in inst.persisted:
            self.cleanup.submit(store.delete, inst.id, message.get("row") or f"m-{message['id']}")
        mirror = inst.status != status or status in TERMINAL or restart is not None or \
            custom_status != getattr(inst, "_mirrored_custom", None)
        with self.lock:
            inst.status, inst.updated, inst.episodes = status, stamp, episode
            inst.execution_id, inst.input = execution_id, new_input
            inst.history, inst.metas = history, metas
            inst.output = output if status in TERMINAL else None
            inst.custom_status = custom_status
            inst.persisted.discard(message["id"])
            if restart is None:
                inst.processed.add(message["id"])
            else:
                inst.processed = set()
                inst.queue.append(restart[2])
            for timer in timers:
                self._push_timer(inst.id, timer)
            for target, note in notifications:
                target_inst = self.instances.get(target)
                if target_inst is not None:
                    target_inst.persisted.add(note["id"])
                    self._deliver(target_inst, note)
        if mirror:
            inst._mirrored_custom = inst.custom_status
            try:
                store.put_instance_row(inst.id, inst.state())
            except Exception:
                log.exception("instances table update failed")
        for work in activities:
            self._submit_activity(work)

    def _start_child(self, parent: Instance, child: dict) -> None:
        info = self.orchestrators.get(child["name"].lower())
        parent_ref = {"instanceId": parent.id, "executionId": parent.execution_id, "taskId": child["taskId"],
                      "name": parent.name}
        if info is None:
            note = {"id": short_id("subdone", child["instanceId"], "missing"), "kind": "SubOrchestrationFailed",
                    "taskId": child["taskId"], "reason": f"The orchestrator function '{child['name']}' doesn't exist.",
                    "details": None, "executionId": parent.execution_id, "enqueued": self._enqueued()}
            self.store.upsert(self.store.message_entity(parent.id, note))
            with self.lock:
                parent.persisted.add(note["id"])
                self._deliver(parent, note)
            return
        with self.lock:
            existing = self.instances.get(child["instanceId"])
            if existing is not None and existing.parent == parent_ref:
                return   # already started by a previous attempt of this episode
        try:
            self.start_new(info.durable_name, child["instanceId"], stored_input(child.get("input")), parent=parent_ref)
        except FileExistsError as error:
            note = {"id": short_id("subdone", child["instanceId"], "exists"), "kind": "SubOrchestrationFailed",
                    "taskId": child["taskId"], "reason": str(error), "details": None,
                    "executionId": parent.execution_id, "enqueued": self._enqueued()}
            self.store.upsert(self.store.message_entity(parent.id, note))
            with self.lock:
                parent.persisted.add(note["id"])
                self._deliver(parent, note)

    # ---- activities -----------------------------------------------------------------------

    def _submit_activity(self, work: dict) -> None:
        # the work-item queue's hop, then one of maxConcurrentActivityFunctions slots
        self._after_hop(lambda: self.activity_pool.submit(self._run_activity, work))

    def _run_activity(self, work: dict) -> None:
        if self.stopping:
            return
        info = self.activities.get(work["name"].lower())
        if info is None:
            ok, value = False, (f"The activity function '{work['name']}' doesn't exist in this app.", None)
        else:
            ok, value = self.worker.run_activity(info, work["input"])
        if self.stopping:
            return   # the work item stays: the next host runs it again
        message = {"id": short_id("done", work["executionId"], work["taskId"]), "enqueued": self._enqueued(),
                   "executionId": work["executionId"], "taskId": work["taskId"]}
        if ok:
            message.update(kind="TaskCompleted", result=value)
        else:
            message.update(kind="TaskFailed", reason=value[0], details=value[1])
        instance_id = work["instanceId"]
        # the work item's row becomes the completion message: one atomic single-entity write
        message["row"] = f"a-{work['id']}"
        for attempt in range(20):
            try:
                self.store.upsert(self.store.activity_entity(instance_id, dict(work, done=message)))
                break
            except Exception as error:
                log.warning("storing the result of %s failed (%s); retrying", work["name"], error)
                time.sleep(0.1 * (attempt + 1))
        with self.lock:
            inst = self.instances.get(instance_id)
            if inst is None:
                return
            inst.persisted.add(message["id"])
            self._deliver(inst, message)
