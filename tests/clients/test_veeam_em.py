"""The PyPI client `veeam-em` 2022.11.0 (module `veeam_em`), unmodified, against emrest over
HTTPS. Every failure here is a fidelity bug in emrest (JSON.md D2 lists what it reads)."""

from datetime import datetime

import pytest
from veeam_em.exceptions import VeeamEmError
from veeam_em.manager import VeeamEm

from conftest import ADMIN_PASSWORD


@pytest.fixture(scope="module")
def em(server):
    client = VeeamEm(api_endpoint=server.https, ssl_verify=False)
    token = client.get_token("admin", ADMIN_PASSWORD)
    assert token
    return client


def test_logon_keeps_the_session_and_whoami_answers(em):
    assert em.session_data["UserName"] == "admin"
    assert "Links" not in em.session_data  # the client deletes them: they must exist
    me = em.whoami()
    assert me["SessionId"] == em.session_data["SessionId"]
    assert me["UserName"] == "admin"
    assert me["Type"] == "LogonSession"


def test_logon_sessions_list_this_session(em):
    sessions = em.get_logon_sessions()
    assert em.session_data["SessionId"] in [s["SessionId"] for s in sessions]


def test_hierarchy_roots_by_list_by_id_and_by_name(em):
    roots = em.get_hierarchy_roots()
    assert sorted(r["Name"] for r in roots) == [
        "hyperv01.lab.local", "vcd01.lab.local", "vcenter01.lab.local",
    ]
    for r in roots:
        one = em.get_hierarchy_root(r["UUID"])
        assert one["UID"] == r["UID"]
        assert one["UUID"] == r["UUID"]
        assert one["Type"] == "HierarchyRoot"
    vc = em.get_hierarchy_roots_by_name("VCENTER")
    assert [r["Name"] for r in vc] == ["vcenter01.lab.local"]


def test_an_unknown_hierarchy_root_raises_with_the_server_message(em):
    with pytest.raises(VeeamEmError) as e:
        em.get_hierarchy_root("00000000-0000-0000-0000-000000000000")
    assert "not found" in str(e.value)


def test_lookups_by_host_and_by_reference(em):
    vc = em.get_hierarchy_roots_by_name("vcenter01")[0]
    found = em.get_lookup_service(host_uid=vc["UUID"], h_ref=None, obj_type="Vm", obj_name="*")
    names = sorted(i["ObjectName"] for i in found["HierarchyItems"])
    assert names == ["db01", "web01"]
    web = next(i for i in found["HierarchyItems"] if i["ObjectName"] == "web01")
    assert web["ObjectType"] == "Vm"
    # The client builds a reference itself and looks it up (it sends `hierachyRef`).
    object_ref = web["ObjectRef"].split(".", 1)[1]
    ref = em.get_hierarchy_obj_ref_type("VMware", "Vm", vc["UUID"], object_ref, validate_h_root=True)
    assert ref == web["ObjectRef"]
    again = em.get_lookup_service(host_uid=None, h_ref=ref)
    assert [i["ObjectName"] for i in again["HierarchyItems"]] == ["web01"]
    datastores = em.get_lookup_service(host_uid=vc["UUID"], h_ref=None, obj_type="Datastore")
    assert {"datastore1", "datastore2"} <= {i["ObjectName"] for i in datastores["HierarchyItems"]}


def test_backup_task_sessions_page_through_the_query_service(em):
    # The demo runs 3 jobs twice: a task session per VM per run (6 VMs). The client pages
    # 2 at a time, newest first, reading Entities.BackupTaskSessions.BackupTaskSessions.
    sessions = em.get_backup_task_sessions(page_size=2)
    assert len(sessions) == 12
    assert len({s["UID"] for s in sessions}) == 12
    times = [datetime.fromisoformat(s["CreationTimeUTC"]) for s in sessions]
    assert times == sorted(times, reverse=True)
    assert {s["VmDisplayName"] for s in sessions} == {"web01", "db01", "app01", "file01", "tenant-web", "tenant-db"}
    assert all(s["State"] == "Completed" and s["Result"] == "Success" for s in sessions)
    assert all(s["JobSessionUid"].startswith("urn:veeam:BackupJobSession:") for s in sessions)


def test_paging_links_work_as_the_client_follows_them(em):
    # The client's own paging code path (get_backup_task_sessions): absolute Next Href,
    # requested again with v=latest added; stop when there is no Next.
    rv = em.request("/query", params=dict(type="VmRestorePoint", format="Entities", pageSize=5, page=1, sortDesc="CreationTime"))
    seen = []
    pages = 0
    while True:
        pages += 1
        data = rv["Entities"]["VmRestorePoints"]["VmRestorePoints"]
        assert isinstance(data, list)
        seen.extend(p["UID"] for p in data)
        info = rv["PagingInfo"]
        assert info["PageNum"] == pages
        nxt = [l for l in info["Links"] if l["Rel"] == "Next"]
        if not nxt:
            assert pages == info["PagesCount"]
            break
        rv = em.request(nxt[0]["Href"])
    assert len(seen) == len(set(seen)) == 12  # the demo: 6 VMs, a full and an increment each
    assert pages == 3


def test_query_errors_reach_the_caller(em):
    with pytest.raises(VeeamEmError) as e:
        em.request("/query", params=dict(type="VmRestorePoint", filter='Name="x"'))
    assert "position 5" in str(e.value)
