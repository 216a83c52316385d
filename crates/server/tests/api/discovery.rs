//! Discovery: backup servers, backups, restore points, VM restore points, hierarchy roots and
//! backup files, as references and as entities, in XML and JSON.

use crate::common::*;
use axum::http::{Method, StatusCode};
use std::collections::BTreeSet;
use uuid::Uuid;

/// One collection: its path, its kind (as in `urn:veeam:<Kind>:`), the entity list's name, and
/// the IDs core says it holds.
struct Coll {
    path: String,
    kind: &'static str,
    list: &'static str,
    ids: BTreeSet<String>,
}

/// Every collection of the demo estate, top-level and nested, with what core holds.
async fn collections(w: &World) -> Vec<Coll> {
    w.blocking(|c| {
        let ids = |v: Vec<Uuid>| {
            v.into_iter()
                .map(|i| i.to_string())
                .collect::<BTreeSet<_>>()
        };
        let backups = c.view().backups().unwrap();
        let points = c.view().restore_points(None).unwrap();
        let mut v = vec![
            Coll {
                path: "/api/backupServers".into(),
                kind: "BackupServer",
                list: "BackupServers",
                ids: ids(c
                    .infrastructure()
                    .backup_servers()
                    .unwrap()
                    .iter()
                    .map(|s| s.id)
                    .collect()),
            },
            Coll {
                path: "/api/backups".into(),
                kind: "Backup",
                list: "Backups",
                ids: ids(backups.iter().map(|b| b.id).collect()),
            },
            Coll {
                path: "/api/restorePoints".into(),
                kind: "RestorePoint",
                list: "RestorePoints",
                ids: ids(points.iter().map(|p| p.id).collect()),
            },
            Coll {
                path: "/api/vmRestorePoints".into(),
                kind: "VmRestorePoint",
                list: "VmRestorePoints",
                ids: ids(c
                    .view()
                    .vm_restore_points(None)
                    .unwrap()
                    .iter()
                    .map(|p| p.id)
                    .collect()),
            },
            Coll {
                path: "/api/hierarchyRoots".into(),
                kind: "HierarchyRoot",
                list: "HierarchyRoots",
                ids: ids(c
                    .infrastructure()
                    .hierarchy_roots()
                    .unwrap()
                    .iter()
                    .map(|r| r.id)
                    .collect()),
            },
            Coll {
                path: "/api/backupFiles".into(),
                kind: "BackupFile",
                list: "BackupFiles",
                ids: ids(c
                    .view()
                    .backup_files(None)
                    .unwrap()
                    .iter()
                    .map(|f| f.id)
                    .collect()),
            },
        ];
        let b = &backups[0];
        v.push(Coll {
            path: format!("/api/backups/{}/restorePoints", b.id),
            kind: "RestorePoint",
            list: "RestorePoints",
            ids: ids(c
                .view()
                .restore_points(Some(b.id))
                .unwrap()
                .iter()
                .map(|p| p.id)
                .collect()),
        });
        let p = &points[0];
        v.push(Coll {
            path: format!("/api/restorePoints/{}/vmRestorePoints", p.id),
            kind: "VmRestorePoint",
            list: "VmRestorePoints",
            ids: ids(c
                .view()
                .vm_restore_points(Some(p.id))
                .unwrap()
                .iter()
                .map(|p| p.id)
                .collect()),
        });
        v.push(Coll {
            path: format!("/api/restorePoints/{}/backupFiles", p.id),
            kind: "BackupFile",
            list: "BackupFiles",
            ids: ids(c
                .view()
                .backup_files(Some(p.id))
                .unwrap()
                .iter()
                .map(|f| f.id)
                .collect()),
        });
        v
    })
    .await
}

/// The path segment of a kind's collection.
fn segment(kind: &str) -> String {
    let mut s = kind.to_string();
    s[..1].make_ascii_lowercase();
    format!("{s}s")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_estate_is_what_discovery_shows() {
    let w = World::new(ONE_MIB).await;
    let cs = collections(&w).await;
    let count = |path: &str| cs.iter().find(|c| c.path == path).unwrap().ids.len();
    // One backup server; three roots with two VMs each; a full and an incremental backup of
    // each root's VMs.
    assert_eq!(count("/api/backupServers"), 1);
    assert_eq!(count("/api/hierarchyRoots"), 3);
    assert_eq!(count("/api/backups"), 3);
    assert_eq!(count("/api/restorePoints"), 6);
    assert_eq!(count("/api/vmRestorePoints"), 12);
    // The nested collections are strict subsets, so listing them filters something.
    for c in &cs[6..] {
        assert!(!c.ids.is_empty(), "{}", c.path);
        let top = cs.iter().find(|t| t.kind == c.kind).unwrap();
        assert!(
            c.ids.is_subset(&top.ids) && c.ids.len() < top.ids.len(),
            "{}",
            c.path
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn collections_list_references_by_default_in_both_formats() {
    let w = World::new(ONE_MIB).await;
    for c in collections(&w).await {
        let seg = segment(c.kind);
        // JSON: {"Refs":[…]} (JSON.md A7.1).
        let r = w.get_json(&c.path).await;
        assert_eq!(r.status, StatusCode::OK, "{}: {}", c.path, r.text());
        let j = r.json();
        let refs = arr(&j, "Refs");
        let mut got = BTreeSet::new();
        for rf in refs {
            let uid = rf["UID"].as_str().unwrap();
            let id = uuid_of(uid);
            assert_eq!(uid, format!("urn:veeam:{}:{id}", c.kind));
            assert_eq!(rf["Type"], format!("{}Reference", c.kind), "{}", c.path);
            assert_eq!(rf["Href"], format!("{BASE}/{seg}/{id}"));
            assert!(rf["Name"].as_str().is_some_and(|n| !n.is_empty()), "{rf}");
            assert_eq!(
                link(rf, "Alternate", c.kind),
                format!("{BASE}/{seg}/{id}?format=Entity")
            );
            got.insert(id);
        }
        assert_eq!(got, c.ids, "{}", c.path);

        // XML: <EntityReferences><Ref …/>.
        let x = w.get_xml(&c.path).await.xml();
        assert_eq!(x.name, "EntityReferences", "{}", c.path);
        assert_eq!(x.names().iter().filter(|n| **n != "Ref").count(), 0);
        let got: BTreeSet<String> = x
            .all("Ref")
            .iter()
            .map(|r| {
                assert_eq!(r.attr("Type").unwrap(), format!("{}Reference", c.kind));
                uuid_of(r.attr("UID").unwrap())
            })
            .collect();
        assert_eq!(got, c.ids, "{}", c.path);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn format_entity_lists_entities_in_both_formats() {
    let w = World::new(ONE_MIB).await;
    for c in collections(&w).await {
        let seg = segment(c.kind);
        let uri = format!("{}?format=Entity", c.path);
        let j = w.get_json(&uri).await.json();
        let items = arr(&j, c.list);
        let mut got = BTreeSet::new();
        for e in items {
            let id = uuid_of(e["UID"].as_str().unwrap());
            assert_eq!(e["Type"], c.kind, "{uri}");
            assert_eq!(e["Href"], format!("{BASE}/{seg}/{id}?format=Entity"));
            assert_eq!(
                link(e, "Alternate", &format!("{}Reference", c.kind)),
                format!("{BASE}/{seg}/{id}")
            );
            got.insert(id);
        }
        assert_eq!(got, c.ids, "{uri}");
        assert_eq!(j.as_object().unwrap().len(), 1, "{uri}: {j}");

        let x = w.get_xml(&uri).await.xml();
        assert_eq!(x.name, c.list, "{uri}");
        let got: BTreeSet<String> = x
            .children
            .iter()
            .map(|e| {
                assert_eq!(e.name, c.kind);
                assert_eq!(e.attr("Type"), Some(c.kind));
                uuid_of(e.attr("UID").unwrap())
            })
            .collect();
        assert_eq!(got, c.ids, "{uri}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn single_resources_by_uuid_or_uid_as_reference_or_entity() {
    let w = World::new(ONE_MIB).await;
    for c in collections(&w).await.into_iter().take(6) {
        let seg = segment(c.kind);
        let id = c.ids.iter().next().unwrap();
        let uid = format!("urn:veeam:{}:{id}", c.kind);
        let shouted = format!("URN:VEEAM:{}:{id}", c.kind.to_ascii_uppercase());
        for path_id in [id.clone(), uid.clone(), shouted] {
            let uri = format!("/api/{seg}/{path_id}");
            let r = w.get_json(&uri).await;
            assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.text());
            let j = r.json();
            assert_eq!(j["UID"], uid, "{uri}");
            assert_eq!(j["Type"], format!("{}Reference", c.kind), "{uri}");
            assert_eq!(j["Href"], format!("{BASE}/{seg}/{id}"));

            let uri = format!("/api/{seg}/{path_id}?format=Entity");
            let j = w.get_json(&uri).await.json();
            assert_eq!(j["UID"], uid, "{uri}");
            assert_eq!(j["Type"], c.kind, "{uri}");
            assert_eq!(j["Href"], format!("{BASE}/{seg}/{id}?format=Entity"));

            let x = w.get_xml(&uri).await.xml();
            assert_eq!(x.name, c.kind);
            assert_eq!(x.attr("UID"), Some(uid.as_str()));
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn paths_query_names_and_format_values_are_case_insensitive() {
    let w = World::new(ONE_MIB).await;
    let canonical = w
        .get_json("/api/vmRestorePoints?format=Entity")
        .await
        .json();
    for uri in [
        "/api/vmrestorepoints?format=Entity",
        "/API/VMRESTOREPOINTS?Format=entity",
        "/api/vmRestorePoints?FORMAT=ENTITIES",
        "/api/vmRestorePoints/?format=Entity&v=latest",
    ] {
        let r = w.get_json(uri).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
        assert_eq!(r.json(), canonical, "{uri}");
    }
    let refs = w.get_json("/api/vmRestorePoints").await.json();
    assert_eq!(w.get_json("/api/VmRestorePoints").await.json(), refs);
    assert_eq!(
        arr(&refs, "Refs").len(),
        arr(&canonical, "VmRestorePoints").len()
    );
    // A `format` value that is not Entity gives references.
    assert_eq!(
        w.get_json("/api/vmRestorePoints?format=Ref").await.json(),
        refs
    );

    let point = &arr(&canonical, "VmRestorePoints")[0];
    let id = uuid_of(point["UID"].as_str().unwrap());
    let r = w
        .get_json(&format!(
            "/api/VMRESTOREPOINTS/URN:VEEAM:VMRESTOREPOINT:{id}?FORMAT=entity"
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(&r.json(), point);
}

#[tokio::test(flavor = "multi_thread")]
async fn vm_restore_point_entity_links_restore_and_its_parents() {
    let w = World::new(ONE_MIB).await;
    let p = w.point("web01", emrest_core::PointType::Full).await;
    let uri = format!("/api/vmRestorePoints/{}?format=Entity", p.id);
    let j = w.get_json(&uri).await.json();
    assert_eq!(j["VmName"], "web01");
    assert_eq!(j["VmDisplayName"], "web01");
    assert_eq!(j["PointType"], "Full");
    assert_eq!(j["Algorithm"], "Full");
    assert_eq!(j["HierarchyObjRef"], p.hierarchy_obj_ref);
    assert!(j["CreationTimeUTC"].as_str().unwrap().ends_with('Z'));
    assert!(j["Name"].as_str().unwrap().starts_with("web01@"));
    let restore = arr(&j, "Links")
        .iter()
        .find(|l| l["Rel"] == "Restore")
        .unwrap_or_else(|| panic!("no Restore link: {j}"));
    assert_eq!(
        restore["Href"],
        format!("{BASE}/vmRestorePoints/{}?action=restore", p.id)
    );
    assert_eq!(
        link(&j, "Up", "RestorePointReference"),
        format!("{BASE}/restorePoints/{}", p.restore_point_id)
    );
    assert_eq!(
        link(&j, "Up", "BackupServerReference"),
        format!("{BASE}/backupServers/{}", p.backup_server_id)
    );

    let x = w.get_xml(&uri).await.xml();
    assert_eq!(x.attr("VmDisplayName"), Some("web01"));
    let href = x.link("Restore", None);
    assert!(href.ends_with("?action=restore"), "{href}");
    assert_eq!(href, restore["Href"].as_str().unwrap());
    // XSD element order (JSON.md B5): CreationTimeUTC, VmName, Algorithm, PointType,
    // HierarchyObjRef.
    let names: Vec<&str> = x.names().into_iter().filter(|n| *n != "Links").collect();
    assert_eq!(
        names,
        [
            "CreationTimeUTC",
            "VmName",
            "Algorithm",
            "PointType",
            "HierarchyObjRef"
        ]
    );

    // The incremental point says so.
    let inc = w.point("web01", emrest_core::PointType::Increment).await;
    let j = w
        .get_json(&format!("/api/vmRestorePoints/{}?format=Entity", inc.id))
        .await
        .json();
    assert_eq!(j["PointType"], "Increment");
}

#[tokio::test(flavor = "multi_thread")]
async fn hierarchy_roots_are_a_vcenter_a_hyperv_host_and_a_cloud_director() {
    let w = World::new(ONE_MIB).await;
    let j = w.get_json("/api/hierarchyRoots?format=Entity").await.json();
    let mut types: Vec<&str> = arr(&j, "HierarchyRoots")
        .iter()
        .map(|r| {
            let id = uuid_of(r["UID"].as_str().unwrap());
            assert_eq!(r["HierarchyRootId"], id.as_str());
            assert!(r["UniqueId"].as_str().is_some_and(|u| !u.is_empty()), "{r}");
            r["HostType"].as_str().unwrap()
        })
        .collect();
    types.sort();
    assert_eq!(types, ["HvServer", "VC", "VcdSystem"]);

    let x = w.get_xml("/api/hierarchyRoots?format=Entity").await.xml();
    let mut types: Vec<&str> = x
        .all("HierarchyRoot")
        .iter()
        .map(|r| r.text_of("HostType"))
        .collect();
    types.sort();
    assert_eq!(types, ["HvServer", "VC", "VcdSystem"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn nested_collections_link_up_to_their_parent() {
    let w = World::new(ONE_MIB).await;
    let rp = w
        .blocking(|c| c.view().restore_points(None).unwrap().remove(0))
        .await;
    let j = w
        .get_json(&format!("/api/restorePoints/{}/vmRestorePoints", rp.id))
        .await
        .json();
    for r in arr(&j, "Refs") {
        assert_eq!(
            link(r, "Up", "RestorePointReference"),
            format!("{BASE}/restorePoints/{}", rp.id)
        );
    }
    let j = w
        .get_json(&format!(
            "/api/backups/{}/restorePoints?format=Entity",
            rp.backup_id
        ))
        .await
        .json();
    for r in arr(&j, "RestorePoints") {
        assert_eq!(
            link(r, "Up", "BackupReference"),
            format!("{BASE}/backups/{}", rp.backup_id)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_ids_are_404_and_malformed_ids_are_400_naming_them() {
    let w = World::new(ONE_MIB).await;
    let unknown = Uuid::new_v4();
    for seg in [
        "backupServers",
        "backups",
        "restorePoints",
        "vmRestorePoints",
        "hierarchyRoots",
        "backupFiles",
        "restoreSessions",
    ] {
        for (i, uri) in [
            format!("/api/{seg}/{unknown}"),
            format!("/api/{seg}/{unknown}?format=Entity"),
        ]
        .into_iter()
        .enumerate()
        {
            let r = if i == 0 {
                w.get_xml(&uri).await
            } else {
                w.get_json(&uri).await
            };
            let m = r.error(StatusCode::NOT_FOUND);
            assert!(m.contains(&unknown.to_string()), "{uri}: {m}");
        }
        for (i, bad) in [
            "not-a-uuid",
            "12345",
            "urn:veeam:Nothing:0b6c1f9e-2f4a-4d0e-9a51-3c7d8e2f1a01",
        ]
        .into_iter()
        .enumerate()
        {
            let uri = format!("/api/{seg}/{bad}");
            let r = if i == 1 {
                w.get_json(&uri).await
            } else {
                w.get_xml(&uri).await
            };
            let m = r.error(StatusCode::BAD_REQUEST);
            assert!(m.contains(bad), "{uri}: {m}");
        }
    }
    for uri in [
        format!("/api/backups/{unknown}/restorePoints"),
        format!("/api/restorePoints/{unknown}/vmRestorePoints"),
        format!("/api/restorePoints/{unknown}/backupFiles"),
    ] {
        w.get_json(&uri).await.json_error(StatusCode::NOT_FOUND);
    }
    // A restore of an unknown point is a 404 too.
    let r = w
        .send(
            Req::post(&format!("/api/vmRestorePoints/{unknown}?action=restore")).content_type(XML),
        )
        .await;
    r.xml_error(StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_paths_are_404_and_wrong_methods_405_with_error_bodies() {
    let w = World::new(ONE_MIB).await;
    for uri in [
        "/api/nothing",
        "/api/backupServers/x/y/z",
        "/apix",
        // `/` is the restore portal's page (portal.rs); beside its files, nothing is served.
        "/nothing",
        "/portal/nothing.js",
        "/api/vmRestorePoints/abc/mounts/1",
    ] {
        w.get_xml(uri).await.xml_error(StatusCode::NOT_FOUND);
        w.get_json(uri).await.json_error(StatusCode::NOT_FOUND);
    }
    let id = w.point("web01", emrest_core::PointType::Full).await.id;
    for (method, uri) in [
        (Method::DELETE, "/api/backupServers".to_string()),
        (Method::POST, "/api/backups".to_string()),
        (Method::PUT, "/api/tasks".to_string()),
        (Method::DELETE, format!("/api/vmRestorePoints/{id}")),
        (Method::GET, "/api/sessionMngr/".to_string()),
        (Method::POST, "/api/".to_string()),
        (Method::PATCH, "/api/restoreSessions".to_string()),
    ] {
        let r = w.send(Req::new(method.clone(), &uri)).await;
        let m = r.xml_error(StatusCode::METHOD_NOT_ALLOWED);
        assert!(m.contains(method.as_str()), "{method} {uri}: {m}");
        let r = w.send(Req::new(method.clone(), &uri).accept(JSON)).await;
        r.json_error(StatusCode::METHOD_NOT_ALLOWED);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_method_is_405_with_the_served_methods_in_allow() {
    let w = World::new(ONE_MIB).await;
    let id = w.point("web01", emrest_core::PointType::Full).await.id;
    let account = Uuid::new_v4();
    for (method, uri, allow) in [
        (Method::DELETE, "/api/backupServers".to_string(), "GET"),
        (Method::GET, "/api/sessionMngr/".to_string(), "POST"),
        (Method::POST, "/api/".to_string(), "GET"),
        (Method::PUT, "/api/tasks/task-1".to_string(), "GET, DELETE"),
        (
            Method::DELETE,
            format!("/api/vmRestorePoints/{id}"),
            "GET, POST",
        ),
        // The method is checked before the ID: a malformed one does not turn the 405 into 400.
        (
            Method::DELETE,
            "/api/vmRestorePoints/not-an-id".to_string(),
            "GET, POST",
        ),
        (
            Method::PATCH,
            format!("/api/security/accounts/{account}"),
            "GET, POST, DELETE",
        ),
    ] {
        let r = w.send(Req::new(method.clone(), &uri)).await;
        let m = r.xml_error(StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            m,
            format!("Method {method} is not allowed on this resource")
        );
        assert_eq!(r.header("allow"), Some(allow), "{method} {uri}");
        let r = w.send(Req::new(method.clone(), &uri).accept(JSON)).await;
        let m = r.json_error(StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            m,
            format!("Method {method} is not allowed on this resource")
        );
        assert_eq!(r.header("allow"), Some(allow), "{method} {uri}");
    }
    // As for any route that needs a session, the session is checked first.
    let r = w
        .send(Req::new(Method::DELETE, "/api/backupServers").no_session())
        .await;
    r.xml_error(StatusCode::UNAUTHORIZED);
    assert_eq!(r.header("allow"), None);
}
