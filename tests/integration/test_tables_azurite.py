"""azure-data-tables against the pinned Azurite: the Table Storage behaviour shared/state.py relies on."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import EdmType, EntityProperty, TableClient, TableServiceClient, UpdateMode

from sandbox.azurite import Azurite, AzuriteError


@pytest.fixture
def table(azurite: Azurite) -> Iterator[TableClient]:
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    name = "t" + uuid.uuid4().hex[:16]  # table names: alphanumeric, 3-63 chars, starting with a letter
    client = service.create_table(name)
    yield client
    service.delete_table(name)
    client.close()
    service.close()


def test_connection_string_shape(azurite: Azurite) -> None:
    assert azurite.connection_string.startswith("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;")
    assert f"TableEndpoint=http://127.0.0.1:{azurite.port}/devstoreaccount1;" in azurite.connection_string
    assert azurite.table_endpoint == f"http://127.0.0.1:{azurite.port}/devstoreaccount1"
    assert azurite.running
    assert azurite.pid > 0


def test_create_table_twice_conflicts(azurite: Azurite, table: TableClient) -> None:
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    with pytest.raises(ResourceExistsError):
        service.create_table(table.table_name)
    assert table.table_name in {t.name for t in service.list_tables()}


def test_upsert_and_get(table: TableClient) -> None:
    table.upsert_entity({"PartitionKey": "tenant-a", "RowKey": "mbx-1", "Status": "running", "Step": 1})
    table.upsert_entity({"PartitionKey": "tenant-a", "RowKey": "mbx-1", "Step": 2}, mode=UpdateMode.MERGE)
    entity = table.get_entity("tenant-a", "mbx-1")
    assert entity["Status"] == "running"
    assert entity["Step"] == 2
    assert entity.metadata["etag"]
    with pytest.raises(ResourceNotFoundError):
        table.get_entity("tenant-a", "missing")


def test_query_with_parameters_quotes_values(table: TableClient) -> None:
    tricky = "O'Brien's mailbox"
    table.upsert_entity({"PartitionKey": "p", "RowKey": "1", "Mailbox": tricky})
    table.upsert_entity({"PartitionKey": "p", "RowKey": "2", "Mailbox": "O"})
    table.upsert_entity({"PartitionKey": "q", "RowKey": "3", "Mailbox": tricky})

    found = list(
        table.query_entities("PartitionKey eq @pk and Mailbox eq @mbx", parameters={"pk": "p", "mbx": tricky})
    )
    assert [e["RowKey"] for e in found] == ["1"]
    assert found[0]["Mailbox"] == tricky

    # An injection attempt stays a literal value.
    injected = list(table.query_entities("Mailbox eq @mbx", parameters={"mbx": "x' or PartitionKey ne '"}))
    assert injected == []


def test_optimistic_concurrency_rejects_a_stale_etag(table: TableClient) -> None:
    table.create_entity({"PartitionKey": "p", "RowKey": "r", "Version": 1})
    first = table.get_entity("p", "r")
    stale_etag = first.metadata["etag"]

    first["Version"] = 2
    table.update_entity(
        first, mode=UpdateMode.REPLACE, etag=stale_etag, match_condition=MatchConditions.IfNotModified
    )
    current = table.get_entity("p", "r")
    assert current["Version"] == 2
    assert current.metadata["etag"] != stale_etag

    first["Version"] = 3
    with pytest.raises(ResourceModifiedError) as info:
        table.update_entity(
            first, mode=UpdateMode.REPLACE, etag=stale_etag, match_condition=MatchConditions.IfNotModified
        )
    assert info.value.status_code == 412
    assert table.get_entity("p", "r")["Version"] == 2

    with pytest.raises(ResourceModifiedError):
        table.delete_entity("p", "r", etag=stale_etag, match_condition=MatchConditions.IfNotModified)

    # Insert-if-absent: a second create is a conflict, not an overwrite.
    with pytest.raises(ResourceExistsError):
        table.create_entity({"PartitionKey": "p", "RowKey": "r", "Version": 99})


def test_int64_values(table: TableClient) -> None:
    big = 2**31
    huge = 2**62 + 7
    table.upsert_entity(
        {
            "PartitionKey": "p",
            "RowKey": "r",
            "Big": EntityProperty(big, EdmType.INT64),
            "Huge": EntityProperty(huge, EdmType.INT64),
            "Negative": EntityProperty(-(2**40), EdmType.INT64),
            "Small": 5,
        }
    )
    entity = table.get_entity("p", "r")
    # INT64 comes back as an EntityProperty (value, EdmType.INT64); INT32 as a plain int.
    assert entity["Big"] == EntityProperty(big, EdmType.INT64)
    assert entity["Huge"].value == huge
    assert entity["Negative"].value == -(2**40)
    assert entity["Small"] == 5

    found = list(table.query_entities("Huge eq @h", parameters={"h": huge}))
    assert [e["RowKey"] for e in found] == ["r"]

    # The pitfall the typed wrapper avoids: a plain int ≥ 2**31 is refused by the SDK.
    with pytest.raises(TypeError):
        table.upsert_entity({"PartitionKey": "p", "RowKey": "plain", "Big": big})


def _port_closed(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_stop_closes_the_port_and_ends_the_process() -> None:
    instance = Azurite().start()
    port, pid = instance.port, instance.pid
    assert port is not None
    assert not _port_closed(port)
    instance.stop()
    assert _port_closed(port)
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)  # the whole process group is gone
    assert not instance.running
    instance.stop()  # idempotent


def test_start_failure_reports_azurite_output() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        with pytest.raises(AzuriteError, match="EADDRINUSE") as info:
            Azurite(port=busy, startup_timeout=30).start()
    assert "exited with code" in str(info.value)
