"""The task hub in Azure Table Storage (Azurite): instances, history and pending work.

Layout (one table pair per task hub, like the real Azure Storage provider's ``<hub>History`` /
``<hub>Instances`` tables):

``<hub>History``, partition = instance id:
  * ``sentinel``     the instance as created by the client (name, input, status Pending).
  * ``h-0000000042`` one committed orchestrator episode, written as ONE entity (so the commit is atomic):
                     its history events (the JSON the SDK is fed, plus host bookkeeping such as the
                     consumed message id), the instance state after it, and the work it scheduled
                     (activities to run, durable timers to arm).  A host killed at any point resumes from
                     the last commit: history = the events of the commits; pending work = scheduled work
                     whose result is not in the history yet (an activity that was running runs again:
                     at least once).
  * ``m-<id>``       a message for the instance from outside the episode (``ExecutionStarted``,
                     ``EventRaised``, ``Terminate``, a sub-orchestration's result); deleted once consumed.
  * ``a-<id>``       an activity's result (``TaskCompleted`` / ``TaskFailed``), one entity per work item.

``<hub>Instances``, partition = instance id, row = "": a query mirror of the sentinel.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterable
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableServiceClient, UpdateMode

MAX_BATCH = 100
MAX_PROPERTY_CHARS = 30000  # UTF-16 string properties are limited to 64 KiB


def _split(value: str | None, name: str) -> dict:
    """Store a possibly long string over several properties (Name, Name_1, ...)."""
    if value is None:
        return {}
    parts = [value[i:i + MAX_PROPERTY_CHARS] for i in range(0, len(value), MAX_PROPERTY_CHARS)] or [""]
    out = {name: parts[0]}
    for index, part in enumerate(parts[1:], start=1):
        out[f"{name}_{index}"] = part
    return out


def _join(entity: dict, name: str) -> str | None:
    if name not in entity:
        return None
    value = entity[name]
    index = 1
    while f"{name}_{index}" in entity:
        value += entity[f"{name}_{index}"]
        index += 1
    return value


class TaskHubStore:
    """Thin, thread-safe persistence for the sandbox task hub."""

    def __init__(self, connection_string: str, hub: str) -> None:
        self.hub = hub
        self._service = TableServiceClient.from_connection_string(connection_string)
        self._local = threading.local()
        self.history_table = f"{hub}History"
        self.instances_table = f"{hub}Instances"
        for name in (self.history_table, self.instances_table):
            with contextlib.suppress(ResourceExistsError):
                self._service.create_table(name)

    def _client(self, table: str):
        clients = getattr(self._local, "clients", None)
        if clients is None:
            clients = self._local.clients = {}
        if table not in clients:
            clients[table] = self._service.get_table_client(table)
        return clients[table]

    # ---- rows -----------------------------------------------------------------------------

    @staticmethod
    def sentinel_entity(instance_id: str, state: dict) -> dict:
        entity = {"PartitionKey": instance_id, "RowKey": "sentinel"}
        for key, value in state.items():
            if key in ("Input", "Output", "CustomStatus"):
                entity.update(_split(value, key))
            elif value is not None:
                entity[key] = value
        return entity

    @staticmethod
    def message_entity(instance_id: str, message: dict) -> dict:
        entity = {"PartitionKey": instance_id, "RowKey": f"m-{message['id']}",
                  "Enqueued": float(message["enqueued"]), "VisibleAt": float(message.get("visibleAt") or 0.0)}
        entity.update(_split(json.dumps(message), "Body"))
        if "episode" in message:
            entity["Episode"] = int(message["episode"])
        return entity

    @staticmethod
    def activity_entity(instance_id: str, item: dict) -> dict:
        entity = {"PartitionKey": instance_id, "RowKey": f"a-{item['id']}",
                  "Episode": int(item["episode"]), "ExecutionId": item["executionId"]}
        entity.update(_split(json.dumps(item), "Body"))
        return entity

    # ---- writes ---------------------------------------------------------------------------

    def transact(self, operations: list[tuple]) -> None:
        """Submit operations on one partition, in batches of 100 (the last batch commits)."""
        client = self._client(self.history_table)
        for start in range(0, len(operations), MAX_BATCH):
            chunk = operations[start:start + MAX_BATCH]
            if len(chunk) == 1 and chunk[0][0] == "upsert":
                client.upsert_entity(chunk[0][1], mode=UpdateMode.REPLACE)
            else:
                client.submit_transaction(chunk)

    MAX_COMMIT_CHARS = 450_000   # an entity is at most 1 MiB (strings are UTF-16)

    def commit_episode(self, instance_id: str, episode: int, record: dict) -> None:
        """Commit one orchestrator episode as ONE entity (atomic): events, new state, scheduled work."""
        body = json.dumps(record)
        if len(body) > self.MAX_COMMIT_CHARS:
            raise ValueError(f"episode {episode} of '{instance_id}' is too large for the sandbox task hub "
                             f"({len(body)} characters; fan out in smaller batches)")
        entity = {"PartitionKey": instance_id, "RowKey": f"h-{episode:010d}"}
        entity.update(_split(body, "Commit"))
        self._client(self.history_table).upsert_entity(entity, mode=UpdateMode.REPLACE)

    def upsert(self, entity: dict) -> None:
        self._client(self.history_table).upsert_entity(entity, mode=UpdateMode.REPLACE)

    def delete(self, instance_id: str, row_key: str) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            self._client(self.history_table).delete_entity(instance_id, row_key)

    def put_instance_row(self, instance_id: str, state: dict) -> None:
        entity = self.sentinel_entity(instance_id, state)
        entity["RowKey"] = ""
        self._client(self.instances_table).upsert_entity(entity, mode=UpdateMode.REPLACE)

    def purge(self, instance_id: str) -> None:
        client = self._client(self.history_table)
        rows = list(client.query_entities("PartitionKey eq @pk", parameters={"pk": instance_id},
                                          select=["PartitionKey", "RowKey"]))
        ops = [("delete", {"PartitionKey": instance_id, "RowKey": row["RowKey"]}) for row in rows]
        for start in range(0, len(ops), MAX_BATCH):
            client.submit_transaction(ops[start:start + MAX_BATCH])
        with contextlib.suppress(ResourceNotFoundError):
            self._client(self.instances_table).delete_entity(instance_id, "")

    # ---- load -----------------------------------------------------------------------------

    def load_all(self) -> dict[str, dict]:
        """Everything in the task hub, grouped by instance: sentinel, history, messages, activities."""
        out: dict[str, dict] = {}
        for entity in self._client(self.history_table).list_entities():
            instance = out.setdefault(entity["PartitionKey"],
                                      {"sentinel": None, "commits": [], "messages": [], "activities": []})
            row = entity["RowKey"]
            if row == "sentinel":
                state = {k: v for k, v in entity.items() if k not in ("PartitionKey", "RowKey")
                         and not k.split("_")[-1].isdigit()}
                for key in ("Input", "Output", "CustomStatus"):
                    state[key] = _join(entity, key)
                instance["sentinel"] = state
            elif row.startswith("h-"):
                instance["commits"].append((int(row[2:]), json.loads(_join(entity, "Commit"))))
            elif row.startswith("m-"):
                instance["messages"].append(json.loads(_join(entity, "Body")))
            elif row.startswith("a-"):
                instance["activities"].append(json.loads(_join(entity, "Body")))
        for instance in out.values():
            instance["commits"] = [commit for _, commit in sorted(instance["commits"], key=lambda item: item[0])]
            instance["messages"].sort(key=lambda message: message["enqueued"])
        return out

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._service.close()


def entities_ops(kind: str, entities: Iterable[dict]) -> list[tuple]:
    return [(kind, entity) for entity in entities]


def table_safe(instance_id: str) -> bool:
    """Whether an instance id can be a PartitionKey (no / \\ # ? or control characters)."""
    return bool(instance_id) and len(instance_id) <= 256 and not any(
        ch in instance_id for ch in "/\\#?") and all(ord(ch) >= 32 and ord(ch) != 127 for ch in instance_id)


def loads_or_none(text: Any) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text
