"""kill -9 of the sandbox host mid-orchestration, restart: the instance completes from the task hub."""

from __future__ import annotations

import time
import uuid

from azure.data.tables import TableServiceClient


def _rows(connection: str, run: str) -> list[dict]:
    table = TableServiceClient.from_connection_string(connection).create_table_if_not_exists("HostAppSteps")
    return list(table.query_entities("PartitionKey eq @run", parameters={"run": run}))


def test_kill_9_mid_orchestration_then_restart_completes(make_host, storage_connection, tmp_path):
    keys = str(tmp_path / "keys.json")
    first = make_host(keys_file=keys).launch()
    run = f"run{uuid.uuid4().hex[:10]}"
    gate = tmp_path / "gate"
    instance = first.start("crash_resume", {"run": run, "gate": str(gate)})["id"]

    # wait until step 2's activity is running (it blocks on the gate file)
    deadline = time.monotonic() + 20
    while not any(r["Step"] == 2 and r["Phase"] == "started" for r in _rows(storage_connection, run)):
        assert time.monotonic() < deadline, "step 2 never started"
        time.sleep(0.02)
    assert first.status(instance)["runtimeStatus"] == "Running"
    first.kill()                                   # kill -9 of the host's process group
    gate.touch()

    second = make_host(keys_file=keys, task_hub=first.task_hub).launch()
    assert second.function_key == first.function_key   # keys come from the keys file
    status = second.wait(instance, timeout=30)
    assert status["runtimeStatus"] == "Completed", status
    assert [s.split(" by ")[0] for s in status["output"]] == ["step 0", "step 1", "step 2", "step 3"]

    rows = _rows(storage_connection, run)
    done = {r["Step"] for r in rows if r["Phase"] == "done"}
    assert done == {0, 1, 2, 3}                    # every activity's effect is observed at least once
    started_2 = [r for r in rows if r["Step"] == 2 and r["Phase"] == "started"]
    assert len(started_2) >= 2                     # the interrupted activity ran again after the restart
    assert {r["Pid"] for r in started_2} == {first.info["pid"], second.info["pid"]}
    # steps that had completed before the crash were not re-run
    assert len([r for r in rows if r["Step"] == 0 and r["Phase"] == "done"]) == 1
    assert second.stop() == 0
