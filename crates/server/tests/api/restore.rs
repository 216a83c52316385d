//! Entire-VM restore end to end, one test per mode: the request goes through the API, the task
//! is followed to its end, and the restored disks are compared by SHA-256 with the restore
//! point's bytes in the repository.

use crate::common::*;
use axum::http::StatusCode;
use emrest_core::PointType;
use emrest_platform::PowerState;
use std::os::unix::fs::FileExt;

/// The repository's chunk size.
const CHUNK: u64 = emrest_repo::DEFAULT_CHUNK_SIZE as u64;

const NS: &str = r#"xmlns="http://www.veeam.com/ent/v1.0" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance""#;

/// `<RestoreSpec><VmRestoreSpec>` with the given elements, as the seed page writes it.
fn xml_spec(inner: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<RestoreSpec {NS}>\n  <VmRestoreSpec>\n{inner}  </VmRestoreSpec>\n</RestoreSpec>\n"
    )
}

/// The whole bytes of every disk of a VM.
async fn disk_bytes(w: &World, key: &emrest_platform::VmKey) -> Vec<(String, Vec<u8>)> {
    let key = key.clone();
    w.blocking(move |c| {
        let vm = c.inventory().vm(&key).unwrap();
        vm.disks
            .iter()
            .map(|d| {
                let f = c.inventory().open_disk(&key, &d.name, false).unwrap();
                let mut buf = vec![0u8; d.size as usize];
                f.read_exact_at(&mut buf, 0).unwrap();
                (d.name.clone(), buf)
            })
            .collect()
    })
    .await
}

/// The number in `<prefix><N>` somewhere in the log.
fn number_after(log: &str, prefix: &str) -> u64 {
    let i = log
        .find(prefix)
        .unwrap_or_else(|| panic!("no {prefix:?} in log:\n{log}"));
    log[i + prefix.len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn full_restore_to_the_original_vm_writes_the_point_and_powers_on() {
    let w = World::new(ONE_MIB).await;
    let point = w.point("web01", PointType::Full).await;
    let vm = w.vm("web01").await.unwrap();
    let expected = w.point_disks(&point).await;
    assert_eq!(expected.len(), 2);
    // The VM has changed since the full backup, so a restore has something to do.
    assert_ne!(w.vm_disks(&vm.key()).await, expected);
    let db01 = w.vm("db01").await.unwrap();
    let db01_before = w.vm_disks(&db01.key()).await;
    w.power_off(&vm.key()).await;

    let body = xml_spec(
        "    <PowerOnAfterRestore>true</PowerOnAfterRestore>\n    <QuickRollback>false</QuickRollback>\n    <KeepOriginalVM>false</KeepOriginalVM>\n",
    );
    let r = w
        .send(
            Req::post(&format!("/api/vmRestorePoints/{}?action=restore", point.id))
                .content_type(XML)
                .body(&body),
        )
        .await;
    // post_vmrestorepoints_id_actionrestore.md: 202 and a running task with a Delete link.
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let task = r.xml();
    assert_eq!(task.name, "Task");
    assert_eq!(task.attr("Type"), Some("Task"));
    let task_id = task.text_of("TaskId").to_string();
    assert!(task_id.starts_with("task-"), "{task_id}");
    let href = format!("{BASE}/tasks/{task_id}");
    assert_eq!(task.attr("Href"), Some(href.as_str()));
    assert_eq!(task.text_of("State"), "Running");
    assert_eq!(task.text_of("Operation"), "StartVMRestore");
    assert!(
        task.all("Result").is_empty(),
        "a running task has no Result"
    );
    assert_eq!(task.link("Delete", Some("Task")), href);

    w.wait_task(&task_id).await;
    // The finished task, in XML as the seed page shows it.
    let r = w.get_xml(&format!("/api/tasks/{task_id}")).await;
    assert_eq!(r.status, StatusCode::OK);
    let done = r.xml();
    assert_eq!(done.text_of("State"), "Finished");
    assert_eq!(done.text_of("Operation"), "StartVMRestore");
    let result = done.child("Result");
    assert_eq!(result.attr("Success"), Some("true"));
    assert_eq!(result.text_of("Message"), "Ok");
    assert_eq!(done.link("Delete", Some("Task")), href);
    let session_href = done.link("Related", Some("RestoreSession"));
    assert!(
        session_href.starts_with(&format!("{BASE}/restoreSessions/"))
            && session_href.ends_with("?format=Entity"),
        "{session_href}"
    );

    // The restore session it points to.
    let s = w.get_xml(&path_of(&session_href)).await.xml();
    assert_eq!(s.name, "RestoreSession");
    assert_eq!(s.attr("VmDisplayName"), Some("web01"));
    assert_eq!(s.text_of("JobType"), "RestoreVm");
    assert_eq!(s.text_of("State"), "Stopped");
    assert_eq!(s.text_of("Result"), "Success");
    assert_eq!(s.text_of("Progress"), "100");
    assert_eq!(s.text_of("RestoredObjRef"), point.hierarchy_obj_ref);
    assert!(s.text_of("EndTimeUTC").ends_with('Z'));
    let j = w.get_json(&path_of(&session_href)).await.json();
    assert_eq!(j["Type"], "RestoreSession");
    assert_eq!(j["JobType"], "RestoreVm");
    assert_eq!(j["State"], "Stopped");
    assert_eq!(j["Result"], "Success");
    assert_eq!(j["Progress"], 100);
    assert_eq!(j["RestoredObjRef"], point.hierarchy_obj_ref);
    assert!(j["FailureMessage"].is_null());
    // restoresessions_id.md: Related → the VM restore point used, as a reference.
    assert_eq!(
        link(&j, "Related", "VmRestorePointReference"),
        format!("{BASE}/vmRestorePoints/{}", point.id)
    );

    // The VM holds the point's bytes, in place, and runs.
    let after = w.vm("web01").await.unwrap();
    assert_eq!(after.object_ref, vm.object_ref);
    assert_eq!(after.datastore, vm.datastore);
    assert_eq!(after.power, PowerState::PoweredOn);
    assert_eq!(w.vm_disks(&vm.key()).await, expected);
    // Nothing else moved.
    assert_eq!(w.vm_disks(&db01.key()).await, db01_before);
    assert!(w.vm("web01_restored").await.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn quick_rollback_writes_exactly_the_chunks_that_differ() {
    // 4 MiB disks: 64 chunks of 64 KiB each.
    let w = World::new(4 * ONE_MIB).await;
    let point = w.point("web01", PointType::Full).await;
    let vm = w.vm("web01").await.unwrap();
    let expected = w.point_disks(&point).await;
    let before = disk_bytes(&w, &vm.key()).await;

    let body = r#"{"VmRestoreSpec":{"PowerOnAfterRestore":false,"QuickRollback":true}}"#;
    let (accepted, finished) = w.restore_ok(point.id, JSON, body).await;
    assert_eq!(accepted["State"], "Running");
    assert_eq!(accepted["Operation"], "StartVMRestore");
    assert_eq!(finished["Result"]["Message"], "Ok");

    let after = disk_bytes(&w, &vm.key()).await;
    assert_eq!(w.vm_disks(&vm.key()).await, expected);
    // The chunks that had to change, counted from the bytes themselves.
    let chunk = CHUNK as usize;
    let differing: usize = before
        .iter()
        .zip(&after)
        .map(|((_, b), (_, a))| {
            b.chunks(chunk)
                .zip(a.chunks(chunk))
                .filter(|(x, y)| x != y)
                .count()
        })
        .sum();
    assert!(differing > 0);
    let log = w.log_of(&finished).await;
    assert!(
        log.contains("quick rollback of VM 'web01' in place"),
        "{log}"
    );
    // The demo's guest writes went through the platform: tracking limits what is examined.
    assert!(log.contains("changed-block tracking since"), "{log}");
    assert!(
        number_after(&log, "Restore completed: examined ") <= 128,
        "{log}"
    );
    assert_eq!(
        number_after(&log, " chunks, wrote "),
        differing as u64,
        "{log}"
    );
    let after_vm = w.vm("web01").await.unwrap();
    assert_eq!(after_vm.power, PowerState::PoweredOff);
}

#[tokio::test(flavor = "multi_thread")]
async fn quick_rollback_of_a_small_change_writes_one_chunk_of_many() {
    let w = World::new(4 * ONE_MIB).await;
    // The latest point equals the VM as it is now; change one 4 KiB block of disk-0 around
    // the platform (so its changed-block tracking is invalid and digests are compared).
    let point = w.point("web01", PointType::Increment).await;
    let vm = w.vm("web01").await.unwrap();
    let expected = w.point_disks(&point).await;
    assert_eq!(w.vm_disks(&vm.key()).await, expected);
    let key = vm.key();
    w.blocking(move |c| {
        let f = c.inventory().open_disk(&key, "disk-0", true).unwrap();
        f.write_all_at(&[0xAB; 4096], 2 * ONE_MIB + 8192).unwrap();
        f.sync_all().unwrap();
    })
    .await;
    assert_ne!(w.vm_disks(&vm.key()).await, expected);

    let body = r#"{"VmRestoreSpec":{"PowerOnAfterRestore":true,"QuickRollback":true,"KeepOriginalVM":false}}"#;
    let (_, finished) = w.restore_ok(point.id, JSON, body).await;
    assert_eq!(w.vm_disks(&vm.key()).await, expected);
    let log = w.log_of(&finished).await;
    assert!(
        log.contains(&format!("Disk disk-0: no valid changed-block tracking; examined {n} of {n} chunks by digest, 1 differ from the restore point", n = 4 * ONE_MIB / CHUNK)),
        "{log}"
    );
    assert!(
        log.contains("Disk disk-1: changed-block tracking since"),
        "{log}"
    );
    assert!(
        log.contains("Disk disk-0: quick rollback wrote 1 chunks (4096 bytes)"),
        "{log}"
    );
    assert!(
        log.contains("Disk disk-1: quick rollback wrote 0 chunks (0 bytes)"),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "Restore completed: examined {} chunks, wrote 1 chunks (4096 bytes)",
            4 * ONE_MIB / CHUNK
        )),
        "{log}"
    );
    assert_eq!(w.vm("web01").await.unwrap().power, PowerState::PoweredOn);
}

#[tokio::test(flavor = "multi_thread")]
async fn keep_original_vm_restores_beside_it_under_a_new_name() {
    let w = World::new(ONE_MIB).await;
    let point = w.point("web01", PointType::Full).await;
    let original = w.vm("web01").await.unwrap();
    let original_disks = w.vm_disks(&original.key()).await;
    let expected = w.point_disks(&point).await;
    assert_ne!(original_disks, expected);

    // The seed page's example body.
    let body = xml_spec(
        "    <PowerOnAfterRestore>false</PowerOnAfterRestore>\n    <QuickRollback>false</QuickRollback>\n    <KeepOriginalVM>true</KeepOriginalVM>\n",
    );
    let (_, finished) = w.restore_ok(point.id, XML, &body).await;

    let restored = w.vm("web01_restored").await.expect("web01_restored exists");
    assert_eq!(restored.root, original.root);
    assert_ne!(restored.object_ref, original.object_ref);
    assert_eq!(restored.datastore, point.datastore);
    assert_eq!(restored.power, PowerState::PoweredOff);
    assert_eq!(w.vm_disks(&restored.key()).await, expected);
    // The original is untouched, still running.
    let still = w.vm("web01").await.unwrap();
    assert_eq!(w.vm_disks(&original.key()).await, original_disks);
    assert_eq!(still.power, PowerState::PoweredOn);
    let session = w.session_of(&finished).await;
    assert_eq!(session["RestoredObjRef"], restored.hierarchy_obj_ref());

    // The name is now taken: the same request is refused, naming VmNewName.
    let r = w.restore(point.id, XML, &body).await;
    let m = r.xml_error(StatusCode::BAD_REQUEST);
    assert!(
        m.contains("web01_restored") && m.contains("VmNewName"),
        "{m}"
    );
}

/// The vCloud root, its datastore the VM is not on, and its storage profile named Silver.
async fn vcloud_targets(
    w: &World,
    point: &emrest_core::VmRestorePointRecord,
) -> (String, String, String, String) {
    let root = point.vm.root;
    let current = point.datastore.clone();
    w.blocking(move |c| {
        let kind = c.inventory().root(root).unwrap().kind;
        let ds = c
            .inventory()
            .datastores(root)
            .unwrap()
            .into_iter()
            .find(|d| d.object_ref != current)
            .unwrap();
        let sp = c
            .inventory()
            .storage_profiles(root)
            .unwrap()
            .into_iter()
            .find(|p| p.name == "Silver")
            .unwrap();
        (
            ds.hierarchy_obj_ref(kind),
            ds.object_ref,
            sp.hierarchy_obj_ref(),
            sp.object_ref,
        )
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn vcloud_restore_spec_in_xml_creates_the_named_vm_on_the_chosen_datastore() {
    let w = World::new(ONE_MIB).await;
    let point = w.point("tenant-web", PointType::Full).await;
    let original = w.vm("tenant-web").await.unwrap();
    let original_disks = w.vm_disks(&original.key()).await;
    let (ds_ref, ds, sp_ref, sp) = vcloud_targets(&w, &point).await;
    // The seed page's element order.
    let body = xml_spec(&format!(
        "    <PowerOnAfterRestore>true</PowerOnAfterRestore>
    <HierarchyRootUid>urn:veeam:HierarchyRoot:{root}</HierarchyRootUid>
    <QuickRollback>false</QuickRollback>
    <VmRestoreParameters>
      <VmRestorePointUid>urn:veeam:VmRestorePoint:{id}</VmRestorePointUid>
      <VmNewName>tenant-web-copy</VmNewName>
      <DatastoreRef>{ds_ref}</DatastoreRef>
      <OrgVdcStorageProfileRef>{sp_ref}</OrgVdcStorageProfileRef>
      <LinkedCloneVmTemplateRef/>
    </VmRestoreParameters>
",
        root = point.vm.root,
        id = point.id
    ));
    let (_, finished) = w.restore_ok(point.id, XML, &body).await;

    let vm = w.vm("tenant-web-copy").await.expect("the new VM exists");
    assert_eq!(vm.root, point.vm.root);
    assert_eq!(vm.datastore, ds);
    assert_ne!(vm.datastore, point.datastore);
    assert_eq!(vm.storage_profile.as_deref(), Some(sp.as_str()));
    assert_eq!(vm.power, PowerState::PoweredOn);
    assert_eq!(w.vm_disks(&vm.key()).await, w.point_disks(&point).await);
    assert_eq!(w.vm_disks(&original.key()).await, original_disks);
    let session = w.session_of(&finished).await;
    assert_eq!(session["RestoredObjRef"], vm.hierarchy_obj_ref());
    assert!(
        vm.hierarchy_obj_ref()
            .starts_with(&format!("urn:vCloud:Vm:{}.", point.vm.root)),
        "{}",
        vm.hierarchy_obj_ref()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn older_vcloud_vm_restore_spec_in_json_creates_the_named_vm() {
    let w = World::new(ONE_MIB).await;
    let point = w.point("tenant-db", PointType::Full).await;
    let original = w.vm("tenant-db").await.unwrap();
    let original_disks = w.vm_disks(&original.key()).await;
    let (ds_ref, ds, _, _) = vcloud_targets(&w, &point).await;
    let body = serde_json::json!({
        "vCloudVmRestoreSpec": {
            "PowerOnAfterRestore": false,
            "HierarchyRootUid": format!("urn:veeam:HierarchyRoot:{}", point.vm.root),
            "VmRestoreParameters": {
                "VmRestorePointUid": format!("urn:veeam:VmRestorePoint:{}", point.id),
                "VmNewName": "tenant-db-copy",
                "DatastoreRef": ds_ref,
                "OrgVdcStorageProfileRef": "",
                "LinkedCloneVmTemplateRef": ""
            }
        }
    })
    .to_string();
    w.restore_ok(point.id, JSON, &body).await;

    let vm = w.vm("tenant-db-copy").await.expect("the new VM exists");
    assert_eq!(vm.datastore, ds);
    assert_eq!(vm.power, PowerState::PoweredOff);
    let disks = w.vm_disks(&vm.key()).await;
    assert_eq!(disks.len(), 2);
    assert_eq!(disks, w.point_disks(&point).await);
    assert_eq!(w.vm_disks(&original.key()).await, original_disks);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_body_is_a_full_restore_to_the_original() {
    let w = World::new(ONE_MIB).await;
    // The second form also has the query as MORPH sends it: any case, plus a format=Entity the
    // action must ignore (JSON.md C2).
    for (vm_name, content_type, query) in [
        ("db01", None, "action=restore"),
        ("app01", Some(JSON), "Action=Restore&format=Entity"),
    ] {
        let point = w.point(vm_name, PointType::Full).await;
        let vm = w.vm(vm_name).await.unwrap();
        let expected = w.point_disks(&point).await;
        assert_ne!(w.vm_disks(&vm.key()).await, expected, "{vm_name}");
        let mut req = Req::post(&format!("/api/vmRestorePoints/{}?{query}", point.id)).accept(JSON);
        if let Some(ct) = content_type {
            req = req.content_type(ct);
        }
        let r = w.send(req).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{vm_name}: {}", r.text());
        let task = r.json();
        assert_eq!(task["State"], "Running");
        assert!(task["Result"].is_null());
        let done = w.wait_task(task["TaskId"].as_str().unwrap()).await;
        assert_eq!(done["Result"]["Success"], true, "{done}");
        assert_eq!(w.vm_disks(&vm.key()).await, expected, "{vm_name}");
        let after = w.vm(vm_name).await.unwrap();
        assert_eq!(after.object_ref, vm.object_ref);
        // PowerOnAfterRestore defaults to false.
        assert_eq!(after.power, PowerState::PoweredOff, "{vm_name}");
        let log = w.log_of(&done).await;
        assert!(
            log.contains(&format!("full restore of VM '{vm_name}' over the original")),
            "{log}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_documented_power_on_after_spelling_is_accepted() {
    // The seed page's table names the element PowerOnAfter; its examples PowerOnAfterRestore.
    let w = World::new(ONE_MIB).await;
    let point = w.point("file01", PointType::Full).await;
    let vm = w.vm("file01").await.unwrap();
    w.power_off(&vm.key()).await;
    let body = xml_spec(
        "    <PowerOnAfter>true</PowerOnAfter>\n    <QuickRollback>false</QuickRollback>\n",
    );
    w.restore_ok(point.id, XML, &body).await;
    assert_eq!(w.vm("file01").await.unwrap().power, PowerState::PoweredOn);
    assert_eq!(w.vm_disks(&vm.key()).await, w.point_disks(&point).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn lenient_xml_order_accepts_elements_in_any_order() {
    let w = World::with_options(
        ONE_MIB,
        emrest_server::ApiOptions {
            lenient_xml_order: true,
            ..Default::default()
        },
    )
    .await;
    let point = w.point("db01", PointType::Full).await;
    let vm = w.vm("db01").await.unwrap();
    w.power_off(&vm.key()).await;
    let body = xml_spec(
        "    <QuickRollback>false</QuickRollback>\n    <PowerOnAfterRestore>true</PowerOnAfterRestore>\n",
    );
    w.restore_ok(point.id, XML, &body).await;
    // Read as written, not silently dropped: the VM was powered on.
    assert_eq!(w.vm("db01").await.unwrap().power, PowerState::PoweredOn);
    assert_eq!(w.vm_disks(&vm.key()).await, w.point_disks(&point).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_without_quick_rollback_is_400_naming_it_and_changes_nothing() {
    // Enterprise Manager silently defaults a left-out 1/1 member; a script that forgot
    // QuickRollback would learn what it asked for only from the VM.
    let w = World::new(ONE_MIB).await;
    let point = w.point("file01", PointType::Full).await;
    let before = w.snapshot().await;
    let uri = format!(
        "/api/vmRestorePoints/{point}?action=restore",
        point = point.id
    );
    let xml = xml_spec("    <PowerOnAfterRestore>true</PowerOnAfterRestore>\n");
    let r = w.send(Req::post(&uri).content_type(XML).body(&xml)).await;
    let m = r.xml_error(StatusCode::BAD_REQUEST);
    assert!(
        m.contains("<QuickRollback>") && m.contains("is required in <VmRestoreSpec>"),
        "{m}"
    );
    let json = r#"{"VmRestoreSpec":{"QuickRollback":false}}"#;
    let r = w
        .send(Req::post(&uri).content_type(JSON).accept(JSON).body(json))
        .await;
    let m = r.json_error(StatusCode::BAD_REQUEST);
    assert!(
        m.contains("\"PowerOnAfterRestore\" (or \"PowerOnAfter\")"),
        "{m}"
    );
    assert_eq!(
        w.snapshot().await,
        before,
        "no task, no session, no disk changed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn lenient_restore_spec_defaults_left_out_members_as_enterprise_manager_does() {
    let w = World::with_options(
        ONE_MIB,
        emrest_server::ApiOptions {
            lenient_restore_spec: true,
            ..Default::default()
        },
    )
    .await;
    let point = w.point("db01", PointType::Full).await;
    let vm = w.vm("db01").await.unwrap();
    w.power_off(&vm.key()).await;
    let body = xml_spec("    <PowerOnAfterRestore>true</PowerOnAfterRestore>\n");
    w.restore_ok(point.id, XML, &body).await;
    // QuickRollback defaulted to false: a full restore, and the VM powered on as asked.
    assert_eq!(w.vm("db01").await.unwrap().power, PowerState::PoweredOn);
    assert_eq!(w.vm_disks(&vm.key()).await, w.point_disks(&point).await);
}
