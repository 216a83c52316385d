//! Bad restore requests: each is a 400 whose Error body names the culprit, in the negotiated
//! format, and none of them starts a task or touches a VM.

use crate::common::*;
use axum::http::StatusCode;
use emrest_core::{PointType, VmRestorePointRecord};

const NS: &str = r#"xmlns="http://www.veeam.com/ent/v1.0" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance""#;

fn spec(inner: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><RestoreSpec {NS}><VmRestoreSpec>{inner}</VmRestoreSpec></RestoreSpec>"
    )
}

/// One bad request: what it is, the point it targets, the query, the body format and body, and
/// what the message must mention.
struct Case {
    what: &'static str,
    point: uuid::Uuid,
    query: &'static str,
    content_type: &'static str,
    body: String,
    mentions: Vec<String>,
}

/// The refs of the vCloud VM tenant-web's world: (point, another point, root, a datastore ref).
struct VcdWorld {
    point: VmRestorePointRecord,
    other_point: uuid::Uuid,
    datastore_ref: String,
}

async fn vcd(w: &World) -> VcdWorld {
    let point = w.point("tenant-web", PointType::Full).await;
    let other_point = w.point("tenant-web", PointType::Increment).await.id;
    let root = point.vm.root;
    let datastore_ref = w
        .blocking(move |c| {
            let kind = c.inventory().root(root).unwrap().kind;
            c.inventory().datastores(root).unwrap()[1].hierarchy_obj_ref(kind)
        })
        .await;
    VcdWorld {
        point,
        other_point,
        datastore_ref,
    }
}

/// `<VmRestoreParameters>` for the vCloud point with the given pieces.
fn params(point_uid: &str, name: &str, datastore: &str, profile: &str) -> String {
    format!(
        "<VmRestoreParameters><VmRestorePointUid>{point_uid}</VmRestorePointUid><VmNewName>{name}</VmNewName><DatastoreRef>{datastore}</DatastoreRef><OrgVdcStorageProfileRef>{profile}</OrgVdcStorageProfileRef><LinkedCloneVmTemplateRef/></VmRestoreParameters>"
    )
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

async fn run(w: &World, cases: Vec<Case>) {
    let before = w.snapshot().await;
    for c in cases {
        let json = c.content_type == JSON;
        let mut req = Req::post(&format!("/api/vmRestorePoints/{}{}", c.point, c.query))
            .content_type(c.content_type)
            .body(&c.body);
        if json {
            req = req.accept(JSON);
        }
        let r = w.send(req).await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{}: {}",
            c.what,
            r.text()
        );
        let m = if json {
            r.json_error(StatusCode::BAD_REQUEST)
        } else {
            r.xml_error(StatusCode::BAD_REQUEST)
        };
        for want in &c.mentions {
            assert!(
                m.contains(want.as_str()),
                "{}: {want:?} not in {m:?}",
                c.what
            );
        }
        assert_eq!(w.snapshot().await, before, "{} changed something", c.what);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_xml_restore_requests_are_400_naming_the_element_and_change_nothing() {
    let w = World::new(ONE_MIB).await;
    let web01 = w.point("web01", PointType::Full).await;
    let v = vcd(&w).await;
    let vp = v.point.id;
    let root = v.point.vm.root;
    let uid = format!("urn:veeam:VmRestorePoint:{vp}");
    let unknown = uuid::Uuid::new_v4();
    let good = spec("<PowerOnAfterRestore>false</PowerOnAfterRestore>");
    let case = |what, point, body: String, mentions: Vec<String>| Case {
        what,
        point,
        query: "?action=restore",
        content_type: XML,
        body,
        mentions,
    };
    let cases = vec![
        case(
            "KeepOriginalVM with QuickRollback",
            web01.id,
            spec("<PowerOnAfterRestore>false</PowerOnAfterRestore><QuickRollback>true</QuickRollback><KeepOriginalVM>true</KeepOriginalVM>"),
            s(&["QuickRollback", "KeepOriginalVM"]),
        ),
        case(
            "out-of-order element",
            web01.id,
            spec("<QuickRollback>false</QuickRollback><PowerOnAfterRestore>true</PowerOnAfterRestore>"),
            s(&[
                "<PowerOnAfterRestore>",
                "out of order",
                "PowerOnAfterRestore, HierarchyRootUid, QuickRollback, KeepOriginalVM, VmRestoreParameters",
            ]),
        ),
        case(
            "out-of-order element inside VmRestoreParameters",
            vp,
            spec(&format!(
                "<PowerOnAfterRestore>false</PowerOnAfterRestore><VmRestoreParameters><VmNewName>x</VmNewName><VmRestorePointUid>{uid}</VmRestorePointUid></VmRestoreParameters>"
            )),
            s(&["<VmRestorePointUid>", "VmRestorePointUid, VmNewName, DatastoreRef"]),
        ),
        case(
            "unknown element",
            web01.id,
            spec("<PowerOnAfterRestore>false</PowerOnAfterRestore><RestoreEverything>true</RestoreEverything>"),
            s(&["<RestoreEverything>"]),
        ),
        case(
            "duplicate element",
            web01.id,
            spec("<QuickRollback>false</QuickRollback><QuickRollback>true</QuickRollback>"),
            s(&["<QuickRollback>", "more than once"]),
        ),
        case(
            "not a boolean",
            web01.id,
            spec("<QuickRollback>yes</QuickRollback>"),
            s(&["<QuickRollback>", "yes"]),
        ),
        case(
            "DOCTYPE with an external entity",
            web01.id,
            format!(
                "<?xml version=\"1.0\"?><!DOCTYPE RestoreSpec [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><RestoreSpec {NS}><VmRestoreSpec><VmNewName>&x;</VmNewName></VmRestoreSpec></RestoreSpec>"
            ),
            s(&["DOCTYPE"]),
        ),
        case(
            "malformed XML",
            web01.id,
            format!("<RestoreSpec {NS}><VmRestoreSpec><QuickRollback>false</VmRestoreSpec>"),
            vec![],
        ),
        case(
            "wrong root element",
            web01.id,
            format!("<JobCloneSpec {NS}/>"),
            s(&["JobCloneSpec"]),
        ),
        case(
            "HierarchyRootUid of no root",
            web01.id,
            spec(&format!(
                "<PowerOnAfterRestore>false</PowerOnAfterRestore><HierarchyRootUid>urn:veeam:HierarchyRoot:{unknown}</HierarchyRootUid>"
            )),
            vec!["HierarchyRootUid".into(), unknown.to_string()],
        ),
        case(
            "HierarchyRootUid of another root than the VM's",
            web01.id,
            spec(&format!(
                "<PowerOnAfterRestore>false</PowerOnAfterRestore><HierarchyRootUid>urn:veeam:HierarchyRoot:{root}</HierarchyRootUid>"
            )),
            s(&["HierarchyRootUid"]),
        ),
        case(
            "DatastoreRef that resolves to nothing",
            vp,
            spec(&format!(
                "<PowerOnAfterRestore>false</PowerOnAfterRestore><HierarchyRootUid>urn:veeam:HierarchyRoot:{root}</HierarchyRootUid><QuickRollback>false</QuickRollback>{}",
                params(
                    &uid,
                    "copy",
                    &format!("urn:vCloud:Datastore:{root}.urn:vcloud:datastore:{unknown}"),
                    ""
                )
            )),
            vec!["DatastoreRef".into(), unknown.to_string()],
        ),
        case(
            "DatastoreRef that is not a reference",
            vp,
            spec(&format!(
                "<PowerOnAfterRestore>false</PowerOnAfterRestore><HierarchyRootUid>urn:veeam:HierarchyRoot:{root}</HierarchyRootUid>{}",
                params(&uid, "copy", "datastore2", "")
            )),
            s(&["DatastoreRef", "datastore2"]),
        ),
        case(
            "OrgVdcStorageProfileRef that resolves to nothing",
            vp,
            spec(&format!(
                "<PowerOnAfterRestore>false</PowerOnAfterRestore><HierarchyRootUid>urn:veeam:HierarchyRoot:{root}</HierarchyRootUid>{}",
                params(
                    &uid,
                    "copy",
                    &v.datastore_ref,
                    &format!("urn:vCloud:OrgVdcStorageProfile:{root}.urn:vcloud:vdcstorageprofile:{unknown}")
                )
            )),
            s(&["OrgVdcStorageProfileRef"]),
        ),
        case(
            "VmRestorePointUid of another point than the URL's",
            vp,
            spec(&format!(
                "<PowerOnAfterRestore>false</PowerOnAfterRestore><HierarchyRootUid>urn:veeam:HierarchyRoot:{root}</HierarchyRootUid>{}",
                params(
                    &format!("urn:veeam:VmRestorePoint:{}", v.other_point),
                    "copy",
                    &v.datastore_ref,
                    ""
                )
            )),
            vec!["VmRestorePointUid".into(), v.other_point.to_string()],
        ),
        case(
            "VmRestoreParameters without VmRestorePointUid",
            vp,
            spec("<PowerOnAfterRestore>false</PowerOnAfterRestore><VmRestoreParameters><VmNewName>copy</VmNewName></VmRestoreParameters>"),
            s(&["<VmRestorePointUid>", "required"]),
        ),
        case(
            "VmNewName of an existing VM",
            vp,
            spec(&format!(
                "<PowerOnAfterRestore>false</PowerOnAfterRestore><HierarchyRootUid>urn:veeam:HierarchyRoot:{root}</HierarchyRootUid>{}",
                params(&uid, "tenant-db", "", "")
            )),
            s(&["VmNewName", "tenant-db"]),
        ),
        case(
            "VmNewName that would escape the datastore folder",
            vp,
            spec(&format!(
                "<PowerOnAfterRestore>false</PowerOnAfterRestore><HierarchyRootUid>urn:veeam:HierarchyRoot:{root}</HierarchyRootUid>{}",
                params(&uid, "../../etc/evil", "", "")
            )),
            s(&["VmNewName", "../../etc/evil"]),
        ),
        case(
            "QuickRollback with a new name",
            vp,
            spec(&format!(
                "<PowerOnAfterRestore>false</PowerOnAfterRestore><HierarchyRootUid>urn:veeam:HierarchyRoot:{root}</HierarchyRootUid><QuickRollback>true</QuickRollback>{}",
                params(&uid, "copy", "", "")
            )),
            s(&["QuickRollback"]),
        ),
        Case {
            query: "?action=bogus",
            ..case("unknown action", web01.id, good.clone(), s(&["bogus"]))
        },
        Case {
            query: "",
            ..case("no action", web01.id, good.clone(), s(&["action=restore"]))
        },
    ];
    run(&w, cases).await;
    // A malformed ID in the path.
    let before = w.snapshot().await;
    let r = w
        .send(
            Req::post("/api/vmRestorePoints/web01?action=restore")
                .content_type(XML)
                .body(&good),
        )
        .await;
    let m = r.xml_error(StatusCode::BAD_REQUEST);
    assert!(m.contains("web01"), "{m}");
    assert_eq!(w.snapshot().await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_json_restore_requests_are_400_naming_the_property_and_change_nothing() {
    let w = World::new(ONE_MIB).await;
    let web01 = w.point("web01", PointType::Full).await;
    let v = vcd(&w).await;
    let vp = v.point.id;
    let root = v.point.vm.root;
    let unknown = uuid::Uuid::new_v4();
    let case = |what, point, body: String, mentions: Vec<String>| Case {
        what,
        point,
        query: "?action=restore",
        content_type: JSON,
        body,
        mentions,
    };
    let cases = vec![
        case(
            "KeepOriginalVM with QuickRollback",
            web01.id,
            r#"{"VmRestoreSpec":{"PowerOnAfterRestore":false,"QuickRollback":true,"KeepOriginalVM":true}}"#.into(),
            s(&["QuickRollback", "KeepOriginalVM"]),
        ),
        case(
            "unknown property",
            web01.id,
            r#"{"VmRestoreSpec":{"PowerOnAfterRestore":false,"RestoreEverything":true}}"#.into(),
            s(&["RestoreEverything"]),
        ),
        case(
            "not a boolean",
            web01.id,
            r#"{"VmRestoreSpec":{"QuickRollback":"maybe"}}"#.into(),
            s(&["QuickRollback"]),
        ),
        case(
            "malformed JSON",
            web01.id,
            r#"{"VmRestoreSpec":{"QuickRollback":false"#.into(),
            vec![],
        ),
        case(
            "unknown root property",
            web01.id,
            r#"{"RestoreSpec":{"VmRestoreSpec":{}}}"#.into(),
            s(&["RestoreSpec"]),
        ),
        case(
            "HierarchyRootUid of no root",
            web01.id,
            format!(
                r#"{{"VmRestoreSpec":{{"PowerOnAfterRestore":false,"HierarchyRootUid":"urn:veeam:HierarchyRoot:{unknown}"}}}}"#
            ),
            vec!["HierarchyRootUid".into(), unknown.to_string()],
        ),
        case(
            "vCloud form with a DatastoreRef that resolves to nothing",
            vp,
            serde_json::json!({"vCloudVmRestoreSpec": {
                "PowerOnAfterRestore": false,
                "HierarchyRootUid": format!("urn:veeam:HierarchyRoot:{root}"),
                "VmRestoreParameters": {
                    "VmRestorePointUid": format!("urn:veeam:VmRestorePoint:{vp}"),
                    "VmNewName": "copy",
                    "DatastoreRef": format!("urn:vCloud:Datastore:{root}.urn:vcloud:datastore:{unknown}"),
                }
            }})
            .to_string(),
            s(&["DatastoreRef"]),
        ),
        case(
            "vCloud form with another point's VmRestorePointUid",
            vp,
            serde_json::json!({"vCloudVmRestoreSpec": {
                "PowerOnAfterRestore": false,
                "HierarchyRootUid": format!("urn:veeam:HierarchyRoot:{root}"),
                "VmRestoreParameters": {
                    "VmRestorePointUid": format!("urn:veeam:VmRestorePoint:{}", v.other_point),
                    "VmNewName": "copy",
                }
            }})
            .to_string(),
            s(&["VmRestorePointUid"]),
        ),
        Case {
            query: "?action=bogus",
            ..case("unknown action", web01.id, "{}".into(), s(&["bogus"]))
        },
    ];
    run(&w, cases).await;
}
