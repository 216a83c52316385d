//! The seed page (em_rest/post_vmrestorepoints_id_actionrestore.md): its request bodies, sent
//! as written with the demo estate's IDs in place of the page's, do what the page says.

use crate::common::*;
use axum::http::StatusCode;
use emrest_core::{PointType, VmRestorePointRecord};
use emrest_platform::PowerState;

/// The page's Example request body, verbatim.
const SEED_EXAMPLE_XML: &str = r#"<?xml version="1.0" encoding="utf-8"?> <RestoreSpec xmlns="http://www.veeam.com/ent/v1.0" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">   <VmRestoreSpec>     <PowerOnAfterRestore>false</PowerOnAfterRestore>     <QuickRollback>false</QuickRollback>     <KeepOriginalVM>true</KeepOriginalVM>   </VmRestoreSpec> </RestoreSpec>"#;

/// The page's vCloud Director XML representation, verbatim.
const SEED_VCLOUD_XML: &str = r#"<?xml version="1.0" encoding="utf-8"?> <RestoreSpec xmlns="http://www.veeam.com/ent/v1.0" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">   <VmRestoreSpec>     <PowerOnAfterRestore>false</PowerOnAfterRestore>     <HierarchyRootUid>urn:veeam:HierarchyRoot:1ed39e5b-06e1-4fbb-a106-52537b5e059e</HierarchyRootUid>     <QuickRollback>false</QuickRollback>     <VmRestoreParameters>       <VmRestorePointUid>urn:veeam:VmRestorePoint:af9396fb-99e6-4e94-a82a-914cc5a3f810</VmRestorePointUid>       <VmNewName>VM-restored</VmNewName>       <DatastoreRef>urn:vCloud:Datastore:1ed39e5b-06e1-4fbb-a106-52537b5e059e.urn:vcloud:datastore:9cfafa2e-e57b-4bc5-9690-933947c62b80</DatastoreRef>       <OrgVdcStorageProfileRef>urn:vCloud:OrgVdcStorageProfile:1ed39e5b-06e1-4fbb-a106-52537b5e059e.urn:vcloud:vdcstorageprofile:7e7ffe3a-33fa-4f9e-805b-c08b1a3645bf</OrgVdcStorageProfileRef>       <LinkedCloneVmTemplateRef/>     </VmRestoreParameters>   </VmRestoreSpec> </RestoreSpec>"#;

/// The page's JSON representation, verbatim (including the stray spaces the page has inside
/// the storage profile reference).
const SEED_VCLOUD_JSON: &str = r#"{   "VmRestoreSpec": {     "PowerOnAfterRestore": false,     "HierarchyRootUid": "urn:veeam:HierarchyRoot:1ed39e5b-06e1-4fbb-a106-52537b5e059e",     "QuickRollback": false,     "VmRestoreParameters": {       "VmRestorePointUid": "urn:veeam:VmRestorePoint:af9396fb-99e6-4e94-a82a-914cc5a3f810",       "VmNewName": "VM-restored",       "DatastoreRef": "urn:vCloud:Datastore:1ed39e5b-06e1-4fbb-a106-52537b5e059e.urn:vcloud:datastore:9cfafa2e-e57b-4bc5-9690-933947c62b80",       "OrgVdcStorageProfileRef": "urn:vCloud:OrgVdcStorageProfile:1ed39e5b-06e1-4fbb-a106-52537b5e059e.urn:vcloud:vdcstorageprofile:7e7ffe3a-33fa-4f9e-805b-c08b1a  3645bf",       "LinkedCloneVmTemplateRef": ""     }   }  }"#;

const SEED_ROOT: &str = "1ed39e5b-06e1-4fbb-a106-52537b5e059e";
const SEED_POINT: &str = "af9396fb-99e6-4e94-a82a-914cc5a3f810";
const SEED_DATASTORE: &str = "urn:vcloud:datastore:9cfafa2e-e57b-4bc5-9690-933947c62b80";
const SEED_PROFILE: &str = "urn:vcloud:vdcstorageprofile:7e7ffe3a-33fa-4f9e-805b-c08b1a3645bf";
const SEED_PROFILE_JSON: &str =
    "urn:vcloud:vdcstorageprofile:7e7ffe3a-33fa-4f9e-805b-c08b1a  3645bf";

/// The seed's IDs replaced by those of a vCloud VM restore point of the demo estate; the VM's
/// second datastore and the Gold storage profile stand in for the page's.
async fn substitute(
    w: &World,
    point: &VmRestorePointRecord,
    body: &str,
) -> (String, String, String) {
    let root = point.vm.root;
    let (ds, sp) = w
        .blocking(move |c| {
            let ds = c.inventory().datastores(root).unwrap()[1]
                .object_ref
                .clone();
            let sp = c.inventory().storage_profiles(root).unwrap()[0]
                .object_ref
                .clone();
            (ds, sp)
        })
        .await;
    let body = body
        .replace(SEED_ROOT, &root.to_string())
        .replace(SEED_POINT, &point.id.to_string())
        .replace(SEED_DATASTORE, &ds)
        .replace(SEED_PROFILE_JSON, &sp)
        .replace(SEED_PROFILE, &sp);
    (body, ds, sp)
}

/// The finished task as the page's second response shows it, in XML: Links (Delete, Related
/// RestoreSession), TaskId, State Finished, Operation StartVMRestore, Result Success with Ok.
async fn assert_finished_like_the_seed(w: &World, task_id: &str) {
    w.wait_task(task_id).await;
    let r = w.get_xml(&format!("/api/tasks/{task_id}")).await;
    assert_eq!(r.status, StatusCode::OK);
    let t = r.xml();
    assert_eq!(t.name, "Task");
    assert_eq!(t.attr("Type"), Some("Task"));
    let href = format!("{BASE}/tasks/{task_id}");
    assert_eq!(t.attr("Href"), Some(href.as_str()));
    assert_eq!(
        t.names(),
        ["Links", "TaskId", "State", "Operation", "Result"]
    );
    assert_eq!(t.text_of("TaskId"), task_id);
    assert_eq!(t.text_of("State"), "Finished");
    assert_eq!(t.text_of("Operation"), "StartVMRestore");
    assert_eq!(t.child("Result").attr("Success"), Some("true"));
    assert_eq!(t.child("Result").text_of("Message"), "Ok");
    let links = t.child("Links").all("Link");
    assert_eq!(links.len(), 2);
    assert_eq!(links[0].attr("Rel"), Some("Delete"));
    assert_eq!(links[0].attr("Type"), Some("Task"));
    assert_eq!(links[0].attr("Href"), Some(href.as_str()));
    assert_eq!(links[1].attr("Rel"), Some("Related"));
    assert_eq!(links[1].attr("Type"), Some("RestoreSession"));
    let related = links[1].attr("Href").unwrap();
    let id = related
        .strip_prefix(&format!("{BASE}/restoreSessions/"))
        .and_then(|r| r.strip_suffix("?format=Entity"))
        .unwrap_or_else(|| panic!("{related}"));
    uuid::Uuid::parse_str(id).unwrap();
}

/// Send a body as the page does (session header and Content-Type), XML answer.
async fn send_like_the_seed(w: &World, point: uuid::Uuid, content_type: &str, body: &str) -> Resp {
    w.send(
        Req::post(&format!("/api/vmRestorePoints/{point}?action=restore"))
            .content_type(content_type)
            .body(body),
    )
    .await
}

/// The page's 202 answer: a running StartVMRestore task with only a Delete link.
fn assert_accepted_like_the_seed(r: &Resp) -> String {
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let t = r.xml();
    assert_eq!(t.name, "Task");
    assert_eq!(t.names(), ["Links", "TaskId", "State", "Operation"]);
    assert_eq!(t.text_of("State"), "Running");
    assert_eq!(t.text_of("Operation"), "StartVMRestore");
    let links = t.child("Links").all("Link");
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].attr("Rel"), Some("Delete"));
    t.text_of("TaskId").to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_example_keep_original_vm_body_succeeds_as_documented() {
    let w = World::new(ONE_MIB).await;
    let point = w.point("app01", PointType::Full).await;
    let original = w.vm("app01").await.unwrap();
    let original_disks = w.vm_disks(&original.key()).await;
    let r = send_like_the_seed(&w, point.id, XML, SEED_EXAMPLE_XML).await;
    let task_id = assert_accepted_like_the_seed(&r);
    assert_finished_like_the_seed(&w, &task_id).await;
    let restored = w.vm("app01_restored").await.expect("app01_restored exists");
    assert_eq!(
        w.vm_disks(&restored.key()).await,
        w.point_disks(&point).await
    );
    assert_eq!(restored.power, PowerState::PoweredOff);
    assert_eq!(w.vm_disks(&original.key()).await, original_disks);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_vcloud_xml_body_succeeds_as_documented() {
    let w = World::new(ONE_MIB).await;
    let point = w.point("tenant-web", PointType::Full).await;
    let (body, ds, sp) = substitute(&w, &point, SEED_VCLOUD_XML).await;
    assert!(!body.contains(SEED_ROOT) && !body.contains(SEED_POINT));
    let r = send_like_the_seed(&w, point.id, XML, &body).await;
    let task_id = assert_accepted_like_the_seed(&r);
    assert_finished_like_the_seed(&w, &task_id).await;
    let vm = w.vm("VM-restored").await.expect("VM-restored exists");
    assert_eq!(vm.root, point.vm.root);
    assert_eq!(vm.datastore, ds);
    assert_eq!(vm.storage_profile.as_deref(), Some(sp.as_str()));
    assert_eq!(vm.power, PowerState::PoweredOff);
    assert_eq!(w.vm_disks(&vm.key()).await, w.point_disks(&point).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_vcloud_json_body_succeeds_as_documented() {
    let w = World::new(ONE_MIB).await;
    let point = w.point("tenant-db", PointType::Full).await;
    let (body, ds, sp) = substitute(&w, &point, SEED_VCLOUD_JSON).await;
    assert!(!body.contains("c08b1a  3645bf"));
    let r = w
        .send(
            Req::post(&format!("/api/vmRestorePoints/{}?action=restore", point.id))
                .content_type(JSON)
                .accept(JSON)
                .body(&body),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let t = r.json();
    assert_eq!(t["State"], "Running");
    assert_eq!(t["Operation"], "StartVMRestore");
    assert_eq!(t["Type"], "Task");
    assert_finished_like_the_seed(&w, t["TaskId"].as_str().unwrap()).await;
    let vm = w.vm("VM-restored").await.expect("VM-restored exists");
    assert_eq!(vm.datastore, ds);
    assert_eq!(vm.storage_profile.as_deref(), Some(sp.as_str()));
    assert_eq!(w.vm_disks(&vm.key()).await, w.point_disks(&point).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_json_storage_profile_with_stray_spaces_is_refused_by_name() {
    // The page's JSON sample carries a storage profile reference broken by two spaces; sent
    // with only the root and point replaced it names no storage profile, which is an error the
    // client must hear about, not a restore to some default.
    let w = World::new(ONE_MIB).await;
    let point = w.point("tenant-db", PointType::Full).await;
    let root = point.vm.root;
    let ds = w
        .blocking(move |c| {
            c.inventory().datastores(root).unwrap()[1]
                .object_ref
                .clone()
        })
        .await;
    let body = SEED_VCLOUD_JSON
        .replace(SEED_ROOT, &root.to_string())
        .replace(SEED_POINT, &point.id.to_string())
        .replace(SEED_DATASTORE, &ds);
    let before = w.snapshot().await;
    let r = w
        .send(
            Req::post(&format!("/api/vmRestorePoints/{}?action=restore", point.id))
                .content_type(JSON)
                .accept(JSON)
                .body(&body),
        )
        .await;
    let m = r.json_error(StatusCode::BAD_REQUEST);
    assert!(m.contains("OrgVdcStorageProfileRef"), "{m}");
    assert_eq!(w.snapshot().await, before);
}
