"""GET /metrics read by the Prometheus project's own text parser (prometheus_client.parser):
a restore and a logon move the counters a monitoring system would alert on."""

import shutil
import tempfile
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from conftest import ADMIN_PASSWORD, Server


@pytest.fixture(scope="module")
def server():
    """A server of this module's own: its restore must not change what other modules see."""
    tmp = Path(tempfile.mkdtemp(prefix="emrest-metrics-"))
    s = Server(tmp / "data")
    try:
        yield s
    finally:
        s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def scrape(server):
    r = requests.get(f"{server.http}/metrics", timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_a_restore_and_logons_move_the_counters(server):
    before = scrape(server)
    s = requests.Session()
    s.trust_env = False
    r = s.post(f"{server.http}/api/sessionMngr/?v=latest", auth=("admin", "wrong"))
    assert r.status_code == 401
    r = s.post(f"{server.http}/api/sessionMngr/?v=latest", auth=("admin", ADMIN_PASSWORD))
    assert r.status_code == 201, r.text
    s.headers["X-RestSvcSessionId"] = r.headers["X-RestSvcSessionId"]
    s.headers["Accept"] = "application/json"
    points = s.get(f"{server.http}/api/vmRestorePoints", params={"format": "Entity"}).json()
    point = next(p for p in points["VmRestorePoints"] if p["VmName"] == "db01")
    restore = next(l["Href"] for l in point["Links"] if l["Rel"] == "Restore")
    r = s.post(restore, json={"VmRestoreSpec": {"PowerOnAfterRestore": False, "QuickRollback": False}})
    assert r.status_code == 202, r.text
    task = r.json()
    deadline = time.monotonic() + 60  # a hang guard, not a timing assertion
    while task["State"] != "Finished":
        assert time.monotonic() < deadline, task
        time.sleep(0.05)
        task = s.get(task["Href"]).json()
    assert task["Result"]["Success"] is True, task

    after = scrape(server)
    assert value(after, "emrest_logons_total", outcome="success") == value(before, "emrest_logons_total", outcome="success") + 1
    assert value(after, "emrest_logons_total", outcome="refused") == value(before, "emrest_logons_total", outcome="refused") + 1
    assert value(after, "emrest_runs_started_total", kind="restore") == value(before, "emrest_runs_started_total", kind="restore") + 1
    assert value(after, "emrest_runs_finished_total", kind="restore", result="success") == value(before, "emrest_runs_finished_total", kind="restore", result="success") + 1
    assert value(after, "emrest_restore_written_bytes_total") > value(before, "emrest_restore_written_bytes_total")
    assert value(after, "emrest_run_duration_seconds_count", kind="restore") >= 1
    # The restore's POST is counted under its route template, whatever the ID.
    assert value(after, "emrest_http_requests_total", method="POST", route="/vmRestorePoints/{ID}", status="202") >= 1
    assert value(after, "emrest_http_request_duration_seconds_count", method="GET", route="/tasks/{ID}") >= 1
    assert value(after, "emrest_repository_stored_bytes") > 0
    assert value(after, "emrest_repository_chunks") > 0
    assert value(after, "emrest_tasks_running", kind="restore") == 0


def test_the_metrics_are_not_on_the_https_listener_nor_under_api(server):
    r = requests.get(f"{server.https}/metrics", verify=False, timeout=10)
    assert r.status_code == 404
