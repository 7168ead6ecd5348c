"""Table Storage through the simulator's `tables` / `taskhub` proxies (in front of the session's Azurite),
seen through azure-data-tables, the official SDK, unmodified: requests pass through untouched, and fault
rules answer in Table Storage's own error shape (`odata.error`, `x-ms-error-code`)."""

from __future__ import annotations

import json
import threading
import uuid

import pytest
import requests
from azure.core.exceptions import HttpResponseError
from azure.data.tables import TableServiceClient, UpdateMode

# azure-data-tables' TablesRetryPolicy: retry_status defaults to 3, so an error that persists is sent 4 times.
SDK_ATTEMPTS = 4


@pytest.fixture
def tables(simulator):
    """A TableServiceClient on the `tables` proxy (what the product's TABLES_CONNECTION_STRING is)."""
    with TableServiceClient.from_connection_string(simulator.info["tablesConnectionString"]) as service:
        yield service


@pytest.fixture
def taskhub(simulator):
    """A TableServiceClient on the `taskhub` proxy (what the sandbox host's AzureWebJobsStorage is)."""
    with TableServiceClient.from_connection_string(simulator.info["taskhubConnectionString"]) as service:
        yield service


@pytest.fixture
def table(tables, clean_faults):
    """A fresh table on the tables proxy; deleted afterwards (faults are cleared first)."""
    name = f"faults{uuid.uuid4().hex[:12]}"
    client = tables.create_table(name)
    yield client
    clean_faults.set_faults([])
    tables.delete_table(name)


def _served(simulator, since: int, origin: str, needle: str = "") -> list[dict]:
    return [r for r in simulator.requests_since(since)["requests"] if r["origin"] == origin and needle in r["path"]]


def test_the_description_names_both_proxies_and_their_connection_strings(simulator, azurite):
    info = simulator.info
    assert info["tablesUpstream"] == azurite.table_endpoint
    for origin in ("tables", "taskhub"):
        url = info[f"{origin}Url"]
        assert url.startswith("http://127.0.0.1:")
        assert url.endswith("/devstoreaccount1")
        assert url != azurite.table_endpoint
        assert f"TableEndpoint={url};" in info[f"{origin}ConnectionString"]
        assert "AccountName=devstoreaccount1;" in info[f"{origin}ConnectionString"]
    assert info["tablesUrl"] != info["taskhubUrl"]


def test_requests_pass_through_unchanged_including_a_transaction(simulator, azurite, table):
    before = simulator.requests_since(0)["next"]
    table.upsert_entity({"PartitionKey": "p1", "RowKey": "a", "Name": "first", "Count": 1}, mode=UpdateMode.REPLACE)
    table.upsert_entity({"PartitionKey": "p1", "RowKey": "a", "Extra": "merged"}, mode=UpdateMode.MERGE)
    table.create_entity({"PartitionKey": "p2", "RowKey": "o'brien", "Name": "quoted key"})
    # A transaction: one $batch request whose multipart body carries absolute URLs of the proxy.
    table.submit_transaction([("create", {"PartitionKey": "p3", "RowKey": str(i), "N": i}) for i in range(3)]
                             + [("upsert", {"PartitionKey": "p3", "RowKey": "3", "N": 3})])
    found = list(table.query_entities("PartitionKey eq @pk and N ge @n", parameters={"pk": "p3", "n": 1}))
    assert sorted(e["RowKey"] for e in found) == ["1", "2", "3"]
    entity = table.get_entity("p1", "a")
    assert (entity["Name"], entity["Extra"], entity["Count"]) == ("first", "merged", 1)
    assert table.get_entity("p2", "o'brien")["Name"] == "quoted key"
    # The same data is in Azurite itself: the proxy forwarded, it stores nothing.
    with TableServiceClient.from_connection_string(azurite.connection_string) as direct:
        assert direct.get_table_client(table.table_name).get_entity("p3", "2")["N"] == 2
    served = _served(simulator, before, "tables")
    assert {r["method"] for r in served} >= {"PUT", "PATCH", "POST", "GET"}
    assert any(r["path"].endswith("/$batch") and r["status"] == 202 for r in served)
    assert all(r["status"] < 400 for r in served), served


def test_a_latency_rule_on_tables_slows_but_changes_nothing(simulator, table):
    simulator.set_faults([{"origin": "tables", "latencyMs": 30}])
    table.upsert_entity({"PartitionKey": "p", "RowKey": "slow", "V": "ok"})
    assert table.get_entity("p", "slow")["V"] == "ok"


def test_one_503_is_absorbed_by_the_sdks_retry(simulator, table):
    # upsert_entity merges by default: PATCH (Insert Or Merge Entity).
    simulator.set_faults([{"origin": "tables", "method": "PATCH", "status": 503, "count": 1}])
    before = simulator.requests_since(0)["next"]
    table.upsert_entity({"PartitionKey": "p", "RowKey": "retried", "V": 1})
    assert [r["status"] for r in _served(simulator, before, "tables", "RowKey='retried'")] == [503, 204]
    assert table.get_entity("p", "retried")["V"] == 1


@pytest.mark.parametrize(("status", "code", "message"), [
    (503, "ServerBusy", "The server is currently unable to receive requests. Please retry your request."),
    (500, "InternalError", "The server encountered an internal error. Please retry the request."),
])
def test_a_persistent_error_reaches_the_caller_after_the_sdks_retries_in_storages_shape(
        simulator, table, status, code, message):
    simulator.set_faults([{"origin": "tables", "method": "PATCH", "path": "RowKey='down'", "status": status}])
    before = simulator.requests_since(0)["next"]
    with pytest.raises(HttpResponseError) as caught:
        table.upsert_entity({"PartitionKey": "p", "RowKey": "down", "V": 1})
    error = caught.value
    assert error.status_code == status
    assert error.error_code == code
    assert error.message.startswith(message)
    assert "RequestId:" in error.message
    assert [r["status"] for r in _served(simulator, before, "tables", "RowKey='down'")] == [status] * SDK_ATTEMPTS
    # Other requests on the same origin are not touched by the rule.
    table.upsert_entity({"PartitionKey": "p", "RowKey": "up", "V": 2})


def test_errors_by_count_then_success(simulator, table):
    simulator.set_faults([{"origin": "tables", "method": "GET", "path": "RowKey='counted'", "status": 500,
                           "count": 2}])
    table.upsert_entity({"PartitionKey": "p", "RowKey": "counted", "V": 3})
    before = simulator.requests_since(0)["next"]
    assert table.get_entity("p", "counted")["V"] == 3
    assert [r["status"] for r in _served(simulator, before, "tables", "RowKey='counted'")] == [500, 500, 200]


def test_errors_by_rate_throttle_only_what_exceeds_the_rate(simulator, table):
    """Three requests released by a hold point at the same instant meet a 2-per-second rule: two pass, one
    gets 503 ServerBusy (no retry here, to see the raw outcome). The hold makes the burst exact."""
    simulator.set_faults([
        {"hold": "burst", "origin": "tables", "method": "PATCH", "path": "RowKey='rate", "count": 3},
        {"origin": "tables", "method": "PATCH", "path": "RowKey='rate", "status": 503, "ratePerSecond": 2},
    ])
    outcomes: dict[int, object] = {}

    def put(i: int) -> None:
        try:
            table.upsert_entity({"PartitionKey": "p", "RowKey": f"rate{i}", "V": i}, retry_total=0)
            outcomes[i] = "ok"
        except HttpResponseError as error:
            outcomes[i] = error

    threads = [threading.Thread(target=put, args=(i,), daemon=True) for i in range(3)]
    for thread in threads:
        thread.start()
    assert len(simulator.wait_held("burst", count=3)) == 3
    simulator.release("burst")
    for thread in threads:
        thread.join(timeout=60)
    errors = [o for o in outcomes.values() if o != "ok"]
    assert len(outcomes) == 3, outcomes
    assert len(errors) == 1, outcomes
    assert errors[0].status_code == 503
    assert errors[0].error_code == "ServerBusy"


def test_the_error_body_is_the_table_services_odata_error(simulator, table):
    simulator.set_faults([{"origin": "tables", "status": 503}])
    url = f"{simulator.info['tablesUrl']}/Tables"
    answer = requests.get(url, headers={"Accept": "application/json;odata=minimalmetadata",
                                        "x-ms-version": "2019-02-02"}, timeout=30)
    assert answer.status_code == 503
    assert answer.headers["x-ms-error-code"] == "ServerBusy"
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.headers["x-ms-request-id"]
    error = answer.json()["odata.error"]
    assert error["code"] == "ServerBusy"
    assert error["message"]["lang"] == "en-US"
    first, request_id, time = error["message"]["value"].split("\n")
    assert first == "The server is currently unable to receive requests. Please retry your request."
    assert request_id == f"RequestId:{answer.headers['x-ms-request-id']}"
    assert time.startswith("Time:")
    xml = requests.get(url, headers={"Accept": "application/atom+xml"}, timeout=30)
    assert xml.status_code == 503
    assert "<code>ServerBusy</code>" in xml.text


def test_star_rules_leave_table_storage_alone(simulator, table, taskhub):
    simulator.set_faults([{"origin": "*", "status": 503}, {"origin": "*", "hold": "everything", "count": 100}])
    table.upsert_entity({"PartitionKey": "p", "RowKey": "star", "V": 1})
    assert table.get_entity("p", "star")["V"] == 1
    assert any(True for _ in taskhub.list_tables())
    assert simulator.admin("GET", "/holds")["everything"]["total"] == 0


def test_a_taskhub_rule_affects_the_taskhub_origin_only(simulator, table, taskhub):
    simulator.set_faults([{"origin": "taskhub", "status": 503}])
    before = simulator.requests_since(0)["next"]
    with pytest.raises(HttpResponseError) as caught:
        taskhub.create_table(f"hub{uuid.uuid4().hex[:10]}")
    assert caught.value.error_code == "ServerBusy"
    assert [r["status"] for r in _served(simulator, before, "taskhub")] == [503] * SDK_ATTEMPTS
    table.upsert_entity({"PartitionKey": "p", "RowKey": "unaffected", "V": 1})   # the tables origin is fine
    assert table.get_entity("p", "unaffected")["V"] == 1


def test_a_held_table_write_waits_for_its_release_and_a_released_503_is_retried(simulator, table):
    simulator.hold("write", origin="tables", method="PATCH", path="RowKey='held'")
    done = threading.Event()
    thread = threading.Thread(target=lambda: (table.upsert_entity({"PartitionKey": "p", "RowKey": "held", "V": 7}),
                                              done.set()), daemon=True)
    thread.start()
    [held] = simulator.wait_held("write")
    assert held["origin"] == "tables"
    assert held["method"] == "PATCH"
    assert "RowKey='held'" in held["path"]
    assert not done.is_set()
    table.upsert_entity({"PartitionKey": "p", "RowKey": "other", "V": 8})   # served while the first is held
    before = simulator.requests_since(0)["next"]
    simulator.release("write", status=503)   # the held write fails with ServerBusy; the SDK sends it again
    thread.join(timeout=60)
    assert done.is_set()
    assert [r["status"] for r in _served(simulator, before, "tables", "RowKey='held'")] == [503, 204]
    assert table.get_entity("p", "held")["V"] == 7


def test_a_raw_batch_body_with_absolute_urls_is_forwarded_byte_for_byte(simulator, table):
    """The SDK signs `$batch` with Shared Key over the canonicalized resource (no host) and its inner requests
    name the proxy's absolute URLs: Azurite accepts both as they are."""
    before = simulator.requests_since(0)["next"]
    table.submit_transaction([("upsert", {"PartitionKey": "b", "RowKey": str(i), "Body": json.dumps({"i": i})})
                              for i in range(5)])
    batch = [r for r in _served(simulator, before, "tables") if r["path"].endswith("$batch")]
    assert [r["status"] for r in batch] == [202]
    assert len(list(table.query_entities("PartitionKey eq @pk", parameters={"pk": "b"}))) == 5


def test_shared_key_lite_signatures_hold_through_the_proxy(simulator):
    """Shared Key Lite for the Table service signs only the date and the canonicalized resource
    ("/<account>/<path>"), not the host (learn.microsoft.com/rest/api/storageservices/authorize-with-shared-key):
    a request signed for the proxy's URL is valid at Azurite, since the path is forwarded unchanged."""
    import base64
    import hashlib
    import hmac
    from email.utils import formatdate
    from urllib.parse import urlsplit

    from sandbox.azurite import ACCOUNT_KEY, ACCOUNT_NAME

    url = f"{simulator.info['tablesUrl']}/Tables"
    date = formatdate(usegmt=True)
    resource = f"/{ACCOUNT_NAME}{urlsplit(url).path}"
    signature = base64.b64encode(hmac.new(base64.b64decode(ACCOUNT_KEY), f"{date}\n{resource}".encode(),
                                          hashlib.sha256).digest()).decode()
    answer = requests.get(url, timeout=30, headers={
        "x-ms-date": date, "x-ms-version": "2019-02-02", "Accept": "application/json;odata=nometadata",
        "Authorization": f"SharedKeyLite {ACCOUNT_NAME}:{signature}"})
    assert answer.status_code == 200, answer.text
    assert isinstance(answer.json()["value"], list)
    forged = requests.get(url, timeout=30, headers={
        "x-ms-date": date, "x-ms-version": "2019-02-02", "Accept": "application/json;odata=nometadata",
        "Authorization": f"SharedKeyLite {ACCOUNT_NAME}:{signature[:-4]}AAA="})
    assert forged.status_code == 403   # Azurite does check the signature: the success above is meaningful
