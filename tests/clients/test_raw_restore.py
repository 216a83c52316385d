"""A VM restore driven with plain `requests`, as scripts in the wild do it: log on, find the
restore point with the query service, POST the restore in XML or JSON, poll the task, follow
its Related link to the restore session; then check the disks with `emrest vm list --json`."""

import time
import xml.etree.ElementTree as ET

import pytest
import requests

from conftest import ADMIN_PASSWORD

NS = {"em": "http://www.veeam.com/ent/v1.0"}


@pytest.fixture(scope="module")
def session(server):
    s = requests.Session()
    s.verify = False
    # A CA bundle named in the environment (REQUESTS_CA_BUNDLE) would override verify=False.
    s.trust_env = False
    r = s.post(f"{server.https}/api/sessionMngr/?v=latest", auth=("admin", ADMIN_PASSWORD))
    assert r.status_code == 201, r.text
    s.headers["X-RestSvcSessionId"] = r.headers["X-RestSvcSessionId"]
    return s


def hashes(disks):
    return {d["name"]: d["sha256"] for d in disks}


def point_and_vm(server, vm_name, point_type):
    points = server.cli_json("point", "list")
    point = next(p for p in points if p["vm_name"] == vm_name and p["point_type"] == point_type)
    vm = next(v for v in server.cli_json("vm", "list") if v["name"] == vm_name)
    return point, vm


def wait(deadline_s, get):
    deadline = time.monotonic() + deadline_s  # a hang guard, not a timing assertion
    while True:
        done = get()
        if done is not None:
            return done
        assert time.monotonic() < deadline, "task still running"
        time.sleep(0.05)


def test_restore_in_json(server, session):
    point, vm = point_and_vm(server, "web01", "Full")
    # The VM holds the increment's data now; the full point differs.
    assert hashes(vm["disks"]) != hashes(point["disks"])
    h = {"Accept": "application/json"}
    flt = 'VmDisplayName=="web01";Type==Full'
    r = session.get(f"{server.https}/api/query", params={"type": "VmRestorePoint", "format": "Entities", "filter": flt}, headers=h)
    assert r.status_code == 200, r.text
    found = r.json()["Entities"]["VmRestorePoints"]["VmRestorePoints"]
    assert [p["UID"] for p in found] == [point["uid"]]
    restore = next(l["Href"] for l in found[0]["Links"] if l["Rel"] == "Restore")
    body = {"VmRestoreSpec": {"PowerOnAfterRestore": True, "QuickRollback": False}}
    r = session.post(restore, json=body, headers=h)
    assert r.status_code == 202, r.text
    task = r.json()
    assert task["State"] == "Running"

    def finished():
        t = session.get(task["Href"], headers=h).json()
        return t if t["State"] == "Finished" else None

    done = wait(60, finished)
    assert done["Result"]["Success"] is True, done
    related = next(l for l in done["Links"] if l["Rel"] == "Related" and l["Type"] == "RestoreSession")
    rs = session.get(related["Href"], headers=h).json()
    assert rs["Result"] == "Success" and rs["State"] == "Stopped"
    _, vm_after = point_and_vm(server, "web01", "Full")
    assert hashes(vm_after["disks"]) == hashes(point["disks"])
    assert vm_after["power_state"] == "PoweredOn"


def test_restore_in_xml(server, session):
    point, vm = point_and_vm(server, "file01", "Full")
    assert hashes(vm["disks"]) != hashes(point["disks"])
    flt = 'VmDisplayName=="file01";Type==Full'
    r = session.get(f"{server.https}/api/query", params={"type": "VmRestorePoint", "format": "Entities", "filter": flt})
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/xml", r.text
    root = ET.fromstring(r.content)
    found = root.findall("em:Entities/em:VmRestorePoints/em:VmRestorePoint", NS)
    assert [p.get("UID") for p in found] == [point["uid"]]
    restore = next(l.get("Href") for l in found[0].findall("em:Links/em:Link", NS) if l.get("Rel") == "Restore")
    body = (
        '<RestoreSpec xmlns="http://www.veeam.com/ent/v1.0">'
        "<VmRestoreSpec><PowerOnAfterRestore>false</PowerOnAfterRestore>"
        "<QuickRollback>false</QuickRollback></VmRestoreSpec></RestoreSpec>"
    )
    r = session.post(restore, data=body, headers={"Content-Type": "application/xml"})
    assert r.status_code == 202, r.text
    task = ET.fromstring(r.content)
    assert task.find("em:State", NS).text == "Running"
    href = task.get("Href")

    def finished():
        t = ET.fromstring(session.get(href).content)
        return t if t.find("em:State", NS).text == "Finished" else None

    done = wait(60, finished)
    assert done.find("em:Result", NS).get("Success") == "true"
    related = next(
        l for l in done.findall("em:Links/em:Link", NS)
        if l.get("Rel") == "Related" and l.get("Type") == "RestoreSession"
    )
    rs = ET.fromstring(session.get(related.get("Href")).content)
    assert rs.find("em:Result", NS).text == "Success"
    _, vm_after = point_and_vm(server, "file01", "Full")
    assert hashes(vm_after["disks"]) == hashes(point["disks"])


def test_restore_sessions_are_found_by_query_afterwards(server, session):
    r = session.get(
        f"{server.https}/api/query",
        params={"type": "RestoreSession", "format": "Entities", "filter": "Result==Success", "sortAsc": "VmDisplayName"},
        headers={"Accept": "application/json"},
    )
    assert r.status_code == 200, r.text
    names = [s["VmDisplayName"] for s in r.json()["Entities"]["RestoreSessions"]["RestoreSessions"]]
    assert names == ["file01", "web01"]
