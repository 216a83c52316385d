"""Fault injection (docs/faults.md) as an unmodified client sees it: the PyPI client `veeam-em`
(module `veeam_em`) drives a restore through its generic request method, as restore scripts
built on it do, against a server started with --allow-faults; the rules are set with
`emrest fault add`, as the recipes say. Each test clears its rules and checks that the VMs it
did not restore are untouched and the repository verifies."""

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests
from veeam_em.exceptions import VeeamEmError
from veeam_em.manager import VeeamEm

from conftest import ADMIN_PASSWORD, Server

VM = "db01"


@pytest.fixture(scope="module")
def server():
    tmp = Path(tempfile.mkdtemp(prefix="emrest-faults-"))
    s = Server(tmp / "data", extra=("--allow-faults",))
    try:
        yield s
    finally:
        s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def em(server):
    client = VeeamEm(api_endpoint=server.https, ssl_verify=False, timeout=30)
    client.get_token("admin", ADMIN_PASSWORD)
    yield client
    server.cli("fault", "clear")
    subprocess.run([server.binary, "verify", "--data", str(server.data)], check=True,
                   capture_output=True)


def disks(server):
    return {v["name"]: {d["name"]: d["sha256"] for d in v["disks"]}
            for v in server.cli_json("vm", "list")}


def full_point(server):
    points = server.cli_json("point", "list")
    return next(p for p in points if p["vm_name"] == VM and p["point_type"] == "Full")


def start_restore(em, point):
    body = {"VmRestoreSpec": {"PowerOnAfterRestore": False, "QuickRollback": False,
                              "HierarchyRootUid": None}}
    return em.request(f"/vmRestorePoints/{point['id']}?action=restore",
                      method=em.POST, payload=body)


def wait_task(em, task, deadline_s=60):
    deadline = time.monotonic() + deadline_s  # a hang guard, not a timing assertion
    while True:
        t = em.request(task["Href"])
        if t["State"] == "Finished":
            return t
        assert time.monotonic() < deadline, f"task still running: {t}"
        time.sleep(0.05)


def test_the_next_restore_fails_at_50_percent_with_the_message_and_nothing_changes(server, em):
    before = disks(server)
    server.cli("fault", "add", "--on", "restore", "--vm", VM, "--first", "1",
               "--effect", "fail", "--percent", "50", "--message", "Datastore ds-01 is unreachable")
    task = wait_task(em, start_restore(em, full_point(server)))
    assert task["Result"] == {"Success": False, "Message": "Datastore ds-01 is unreachable"}
    assert disks(server) == before
    # Fired once: the script's retry succeeds and the VM is the point's.
    task = wait_task(em, start_restore(em, full_point(server)))
    assert task["Result"]["Success"] is True
    after = disks(server)
    point = full_point(server)
    assert after[VM] == {d["name"]: d["sha256"] for d in point["disks"]}
    assert {k: v for k, v in after.items() if k != VM} == {k: v for k, v in before.items() if k != VM}


def test_every_third_poll_answers_503_and_the_client_raises_with_the_message(server, em):
    task = start_restore(em, full_point(server))
    server.cli("fault", "add", "--on", "GET /tasks/{ID}", "--every", "3", "--effect", "status",
               "--status", "503", "--message", "Service is restarting")
    seen = []
    for _ in range(6):
        try:
            em.request(task["Href"])
            seen.append("ok")
        except VeeamEmError as e:
            assert "Service is restarting" in str(e)
            seen.append(503)
    assert seen == ["ok", "ok", 503, "ok", "ok", 503]
    server.cli("fault", "clear")
    assert wait_task(em, task)["Result"]["Success"] is True


def test_a_hung_task_runs_until_the_client_cancels_it(server, em):
    before = disks(server)
    server.cli("fault", "add", "--on", "restore", "--effect", "hang")
    task = start_restore(em, full_point(server))
    for _ in range(5):
        time.sleep(0.1)
        assert em.request(task["Href"])["State"] == "Running"
    em.request(task["Href"], method=em.DELETE)
    sessions = em.request("/restoreSessions", params={"format": "Entity"})["RestoreSessions"]
    deadline = time.monotonic() + 60  # a hang guard
    while sessions[-1]["State"] != "Stopped":
        assert time.monotonic() < deadline
        time.sleep(0.05)
        sessions = em.request("/restoreSessions", params={"format": "Entity"})["RestoreSessions"]
    assert sessions[-1]["Result"] == "Failed"
    assert "cancelled" in sessions[-1]["FailureMessage"]
    assert disks(server) == before


def test_a_stalled_restore_holds_its_progress(server, em):
    server.cli("fault", "add", "--on", "restore", "--first", "1", "--effect", "stall",
               "--percent", "40", "--delay-ms", "1500")
    task = start_restore(em, full_point(server))

    def newest():
        return em.request("/restoreSessions", params={"format": "Entity"})["RestoreSessions"][-1]

    deadline = time.monotonic() + 60  # a hang guard
    while newest()["Progress"] < 40:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    held = newest()
    time.sleep(0.3)
    assert newest()["Progress"] == held["Progress"] and newest()["State"] == "Working"
    # The stall ends by itself and the restore succeeds.
    assert wait_task(em, task)["Result"]["Success"] is True


def test_a_dropped_connection_and_a_hang_reach_the_client_as_its_own_errors(server, em):
    server.cli("fault", "add", "--on", "GET /backups", "--first", "1", "--effect", "drop")
    with pytest.raises(VeeamEmError) as e:
        em.request("/backups")
    assert isinstance(e.value.args[0], requests.exceptions.RequestException), e.value
    assert em.request("/backups", params={"format": "Entity"})["Backups"], "the next call is served"
    server.cli("fault", "add", "--on", "GET /repositories", "--effect", "hang")
    em.timeout = 1
    with pytest.raises(VeeamEmError) as e:
        em.request("/repositories")
    assert isinstance(e.value.args[0], requests.exceptions.Timeout), e.value


def test_an_expired_session_is_a_401_and_a_new_logon_recovers(server, em):
    server.cli("fault", "add", "--on", "/hierarchyRoots", "--first", "1",
               "--effect", "expire-session")
    with pytest.raises(VeeamEmError) as e:
        em.get_hierarchy_roots()
    assert "401" in str(e.value)
    with pytest.raises(VeeamEmError):
        em.whoami()
    em.get_token("admin", ADMIN_PASSWORD)
    assert len(em.get_hierarchy_roots()) == 3


def test_a_slow_logon_and_a_refused_one(server):
    server.cli("fault", "add", "--on", "logon", "--first", "1", "--effect", "delay",
               "--delay-ms", "800")
    client = VeeamEm(api_endpoint=server.https, ssl_verify=False, timeout=30)
    started = time.monotonic()
    assert client.get_token("admin", ADMIN_PASSWORD)
    assert time.monotonic() - started >= 0.8
    server.cli("fault", "add", "--on", "logon", "--first", "1", "--effect", "status",
               "--status", "503")
    with pytest.raises(requests.exceptions.HTTPError) as e:
        VeeamEm(api_endpoint=server.https, ssl_verify=False).get_token("admin", ADMIN_PASSWORD)
    assert e.value.response.status_code == 503
    server.cli("fault", "clear")
