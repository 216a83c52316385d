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


def test_accounts_roles_and_scopes_through_the_client(em):
    roles = em.get_roles()
    assert {r["Name"] for r in roles} >= {"Portal Administrator", "Portal User", "VM Restore Operator"}
    operator = em.get_roles_by_name("VM Restore Operator")[0]
    assert em.get_role(operator["UUID"])["UID"] == operator["UID"]
    vc = em.get_hierarchy_roots_by_name("vcenter01")[0]
    found = em.get_lookup_service(host_uid=vc["UUID"], h_ref=None, obj_type="Vm", obj_name="web01")
    web = found["HierarchyItems"][0]

    # The client's JSON account spec (JSON.md D2), a restore scope of one VM.
    em.create_account(
        "LAB\\client-operator", "User", [operator["UID"]],
        h_scope_objects=[(web["ObjectRef"], web["ObjectName"])],
    )
    account = em.get_accounts_by_name("client-operator")[0]
    entity = em.get_account(account["UUID"])
    assert entity["AccountType"] == "User"
    assert entity["AllowRestoreAllVms"] is False
    in_roles = em.get_account_roles(account["UUID"])["EnterpriseAccountInRoleList"]
    assert [r["RoleName"] for r in in_roles] == ["VM Restore Operator"]
    scopes = em.get_account_scopes(account["UUID"])["EnterpriseAccountHierarchyScopes"]
    assert [s["Name"] for s in scopes] == ["web01"]

    # The All-VMs toggle answers 204 as the client expects.
    assert em.enable_all_vms_restore_scope_account(account["UUID"]) is True
    assert em.get_account(account["UUID"])["AllowRestoreAllVms"] is True

    user = em.get_roles_by_name("Portal User")[0]
    em.add_role_to_account(user["UID"], account["UUID"])
    names = {r["RoleName"] for r in em.get_account_roles(account["UUID"])["EnterpriseAccountInRoleList"]}
    assert names == {"VM Restore Operator", "Portal User"}
    em.remove_role_from_account(user["UUID"], account["UUID"])
    names = {r["RoleName"] for r in em.get_account_roles(account["UUID"])["EnterpriseAccountInRoleList"]}
    assert names == {"VM Restore Operator"}

    em.delete_account(account["UUID"])
    assert em.get_accounts_by_name("client-operator") == []
