//! The query service and the lookup service: every type and every filter operator in XML and
//! JSON, paging through many points, precise errors, lookups by root, name, type and ref.

use crate::common::*;
use axum::http::StatusCode;
use emrest_core::demo::SyntheticPoints;
use emrest_core::PointType;
use emrest_platform::PlatformKind;
use std::collections::{BTreeSet, HashSet};
use uuid::Uuid;

/// Percent-encode a query value (every byte but letters and digits).
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Where a type's items sit: (JSON path under the root, XML element path, item element, id key).
fn layout(t: &str, entities: bool) -> (Vec<&'static str>, &'static str, &'static str) {
    let (member, item) = match t.to_ascii_lowercase().as_str() {
        "vmrestorepoint" => ("VmRestorePoints", "VmRestorePoint"),
        "restorepoint" => ("RestorePoints", "RestorePoint"),
        "backup" => ("Backups", "Backup"),
        "backupfile" => ("BackupFiles", "BackupFile"),
        "backupserver" => ("BackupServers", "BackupServer"),
        "hierarchyroot" => ("HierarchyRoots", "HierarchyRoot"),
        "restoresession" => ("RestoreSessions", "RestoreSession"),
        "task" => return (vec!["Resources", "Tasks", "Tasks"], "Task", "TaskId"),
        "job" => ("Jobs", "Job"),
        "backupjobsession" => ("BackupJobSessions", "BackupJobSession"),
        "backuptasksession" => ("BackupTaskSessions", "BackupTaskSession"),
        "repository" => ("Repositories", "Repository"),
        other => panic!("no layout for {other}"),
    };
    if entities {
        (vec!["Entities", member, member], item, "UID")
    } else {
        (vec!["Refs", "Refs"], "Ref", "UID")
    }
}

/// The IDs (UIDs, or task IDs) of one page, read from a JSON body.
fn json_ids(body: &serde_json::Value, t: &str, entities: bool) -> Vec<String> {
    let (path, _, key) = layout(t, entities);
    let mut v = body;
    for p in &path {
        v = &v[*p];
    }
    v.as_array()
        .unwrap_or_else(|| panic!("{} is not a list in {body}", path.join(".")))
        .iter()
        .map(|i| i[key].as_str().unwrap().to_string())
        .collect()
}

/// The same from an XML body.
fn xml_ids(root: &Elem, t: &str, entities: bool) -> Vec<String> {
    let (path, item, key) = layout(t, entities);
    assert_eq!(root.name, "QueryResult");
    // JSON's extra wrapper level (`"Refs": {"Refs": …}`) is the item list itself in XML.
    let mut e = root;
    for p in &path[..path.len() - 1] {
        if e.children.iter().all(|c| c.name != *p) {
            return Vec::new();
        }
        e = e.child(p);
    }
    e.all(item)
        .into_iter()
        .map(|i| match i.attr(key) {
            Some(v) => v.to_string(),
            None => i.text_of(key).to_string(),
        })
        .collect()
}

/// Run a query in JSON and in XML; both must answer 200 with the same items in the same
/// order. Returns the IDs and the JSON body.
async fn query(w: &World, t: &str, rest: &str, entities: bool) -> (Vec<String>, serde_json::Value) {
    let fmt = if entities { "&format=Entities" } else { "" };
    let uri = format!("/api/query?type={t}{fmt}{rest}");
    let j = w.get_json(&uri).await;
    assert_eq!(j.status, StatusCode::OK, "{uri}: {}", j.text());
    let body = j.json();
    let x = w.get_xml(&uri).await;
    assert_eq!(x.status, StatusCode::OK, "{uri}: {}", x.text());
    let ids = json_ids(&body, t, entities);
    assert_eq!(
        xml_ids(&x.xml(), t, entities),
        ids,
        "{uri}: XML and JSON differ"
    );
    (ids, body)
}

/// Filter (refs and entities, XML and JSON) and return the set of matching IDs.
async fn filter(w: &World, t: &str, f: &str) -> BTreeSet<String> {
    let rest = format!("&filter={}&pageSize=100000", enc(f));
    let (refs, _) = query(w, t, &rest, false).await;
    let (ents, _) = query(w, t, &rest, true).await;
    if !t.eq_ignore_ascii_case("task") {
        assert_eq!(refs, ents, "{t} {f}: refs and entities differ");
    }
    let set: BTreeSet<String> = ents.iter().cloned().collect();
    assert_eq!(set.len(), ents.len(), "{t} {f}: an item listed twice");
    set
}

fn uids<T>(kind: &str, items: &[T], id: impl Fn(&T) -> Uuid) -> BTreeSet<String> {
    items
        .iter()
        .map(|i| format!("urn:veeam:{kind}:{}", id(i)))
        .collect()
}

/// The logon session behind a token (base64 of the session GUID).
fn session_of_token(token: &str) -> Uuid {
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(token)
        .unwrap();
    Uuid::parse_str(std::str::from_utf8(&raw).unwrap()).unwrap()
}

/// `YYYY-MM-DDThh:mm:ssZ` of a millisecond time (truncated to the second).
fn iso(ms: i64) -> String {
    emrest_core::time::iso(ms)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_type_answers_references_and_entities_in_xml_and_json() {
    let w = World::new(ONE_MIB).await;
    // One restore, so there is a task and a restore session to find.
    let point = w.point("web01", PointType::Full).await;
    let body = r#"{"VmRestoreSpec":{"PowerOnAfterRestore":false,"QuickRollback":false}}"#;
    w.restore_ok(point.id, JSON, body).await;

    let sid = session_of_token(&w.token);
    let expected: Vec<(&str, BTreeSet<String>)> = w
        .blocking(move |c| {
            let caller = c.logons().caller(sid).unwrap();
            vec![
                (
                    "VmRestorePoint",
                    uids(
                        "VmRestorePoint",
                        &c.view().vm_restore_points(None).unwrap(),
                        |p| p.id,
                    ),
                ),
                (
                    "RestorePoint",
                    uids(
                        "RestorePoint",
                        &c.view().restore_points(None).unwrap(),
                        |p| p.id,
                    ),
                ),
                (
                    "Backup",
                    uids("Backup", &c.view().backups().unwrap(), |b| b.id),
                ),
                (
                    "BackupFile",
                    uids("BackupFile", &c.view().backup_files(None).unwrap(), |f| {
                        f.id
                    }),
                ),
                (
                    "BackupServer",
                    uids(
                        "BackupServer",
                        &c.infrastructure().backup_servers().unwrap(),
                        |s| s.id,
                    ),
                ),
                (
                    "HierarchyRoot",
                    uids(
                        "HierarchyRoot",
                        &c.infrastructure().hierarchy_roots().unwrap(),
                        |r| r.id,
                    ),
                ),
                (
                    "RestoreSession",
                    uids(
                        "RestoreSession",
                        &c.as_caller(&caller).restore_sessions().unwrap(),
                        |s| s.id,
                    ),
                ),
                (
                    "Task",
                    c.as_caller(&caller)
                        .tasks()
                        .unwrap()
                        .iter()
                        .map(|t| t.id.to_string())
                        .collect(),
                ),
                ("Job", uids("Job", &c.view().jobs().unwrap(), |j| j.id)),
                (
                    "BackupJobSession",
                    uids(
                        "BackupJobSession",
                        &c.view().backup_sessions(None).unwrap(),
                        |s| s.id,
                    ),
                ),
                (
                    "BackupTaskSession",
                    uids(
                        "BackupTaskSession",
                        &c.view().backup_task_sessions(None).unwrap(),
                        |t| t.id,
                    ),
                ),
                (
                    "Repository",
                    uids(
                        "Repository",
                        &c.infrastructure().backup_repositories().unwrap(),
                        |r| r.id,
                    ),
                ),
            ]
        })
        .await;
    for (t, want) in expected {
        for entities in [false, true] {
            let (ids, body) = query(&w, t, "", entities).await;
            let got: BTreeSet<String> = ids.iter().cloned().collect();
            assert_eq!(got, want, "{t} entities={entities}");
            if matches!(
                t,
                "VmRestorePoint"
                    | "RestoreSession"
                    | "Task"
                    | "Backup"
                    | "Job"
                    | "BackupJobSession"
                    | "BackupTaskSession"
            ) {
                assert!(!got.is_empty(), "{t}: the demo should have some");
            }
            // JSON.md B9: the five members, unused ones null.
            let keys: Vec<&str> = body
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            let mut sorted = keys.clone();
            sorted.sort();
            assert_eq!(
                sorted,
                ["Entities", "Links", "PagingInfo", "Refs", "Resources"],
                "{t}"
            );
            assert!(body["Links"].is_null());
            match (t, entities) {
                ("Task", _) => {
                    assert!(body["Refs"].is_null() && body["Entities"].is_null());
                    assert!(body["Resources"]["Files"].is_null());
                }
                (_, false) => {
                    assert!(body["Entities"].is_null() && body["Resources"].is_null());
                }
                (_, true) => {
                    assert!(body["Refs"].is_null() && body["Resources"].is_null());
                    let ents = body["Entities"].as_object().unwrap();
                    assert_eq!(ents.len(), emrest_wire::ENTITIES_MEMBERS.len(), "{t}");
                    let used: Vec<_> = ents.iter().filter(|(_, v)| !v.is_null()).collect();
                    assert_eq!(used.len(), 1, "{t}: {body}");
                }
            }
            let paging = &body["PagingInfo"];
            assert_eq!(paging["PageNum"], 1);
            assert_eq!(paging["PageSize"], 100, "default page size (JSON.md C3)");
            assert_eq!(paging["PagesCount"], 1);
        }
    }
    // The entity member order is the real one (JSON.md B9).
    let text = w
        .get_json("/api/query?type=VmRestorePoint&format=entities")
        .await
        .text();
    assert!(
        text.starts_with(
            r#"{"Refs":null,"Entities":{"Jobs":null,"FailoverPlans":null,"Backups":null,"Replicas":null,"Repositories":null,"RestorePoints":null,"VmRestorePoints":{"VmRestorePoints":[{"CreationTimeUTC":"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#""SystemSessions":null},"Resources":null,"Links":null,"PagingInfo":{"Links":[{"Rel":"First","#),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_comparison_operator_filters_dates_in_xml_and_json() {
    let w = World::new(ONE_MIB).await;
    // 300 synthetic points in three restore points an hour apart, on whole seconds.
    w.blocking(|c| insert_synthetic_points(c, 300)).await;
    let points = w
        .blocking(|c| c.view().vm_restore_points(None).unwrap())
        .await;
    let pivot = SYNTHETIC_BASE + 3_600_000;
    type Cmp = fn(i64, i64) -> bool;
    let ops: [(&str, Cmp); 6] = [
        ("==", |a, b| a == b),
        ("!=", |a, b| a != b),
        ("<", |a, b| a < b),
        (">", |a, b| a > b),
        ("<=", |a, b| a <= b),
        (">=", |a, b| a >= b),
    ];
    // Dates as real clients send them: quoted with Z, quoted without Z, unquoted, with
    // fractions (JSON.md C7, get_query_backupjobsession.md).
    let forms = [
        format!("\"{}\"", iso(pivot)),
        format!("\"{}\"", iso(pivot).trim_end_matches('Z')),
        iso(pivot),
        iso(pivot).replace('Z', ".000000Z"),
    ];
    for (op, holds) in ops {
        let want = uids(
            "VmRestorePoint",
            &points
                .iter()
                .filter(|p| holds(p.created, pivot))
                .collect::<Vec<_>>(),
            |p| p.id,
        );
        assert!(!want.is_empty(), "operator {op} should match something");
        for form in &forms {
            let got = filter(&w, "VmRestorePoint", &format!("CreationTime{op}{form}")).await;
            assert_eq!(got, want, "CreationTime{op}{form}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn vm_restore_point_fields_strings_enums_uids_and_logic() {
    let w = World::new(ONE_MIB).await;
    let points = w
        .blocking(|c| c.view().vm_restore_points(None).unwrap())
        .await;
    let servers = w
        .blocking(|c| c.infrastructure().backup_servers().unwrap())
        .await;
    let all = uids("VmRestorePoint", &points, |p| p.id);
    let set = |pred: &dyn Fn(&emrest_core::VmRestorePointRecord) -> bool| {
        uids(
            "VmRestorePoint",
            &points.iter().filter(|p| pred(p)).collect::<Vec<_>>(),
            |p| p.id,
        )
    };
    let web_full = points
        .iter()
        .find(|p| p.vm_name == "web01" && p.point_type == PointType::Full)
        .unwrap();
    let name = emrest_core::catalog::vm_point_name(&web_full.vm_name, web_full.created);
    let rp_name =
        emrest_wire::UtcTime::from_unix_millis(web_full.restore_point_created).restore_point_name();
    let cases: Vec<(String, BTreeSet<String>)> = vec![
        // Strings: any case of field name and value.
        (
            "vmdisplayname==WEB01".into(),
            set(&|p| p.vm_name == "web01"),
        ),
        (
            "VmDisplayName!=\"web01\"".into(),
            set(&|p| p.vm_name != "web01"),
        ),
        (
            "VmDisplayName<\"c\"".into(),
            set(&|p| p.vm_name.as_str() < "c"),
        ),
        (
            "VmName>=db01".into(),
            set(&|p| p.vm_name.as_str() >= "db01"),
        ),
        (format!("Name==\"{name}\""), set(&|p| p.id == web_full.id)),
        (
            format!("RestorePointName==\"{rp_name}\""),
            // Names are to the minute: points of that minute share it.
            set(&|p| p.restore_point_created / 60_000 == web_full.restore_point_created / 60_000),
        ),
        (
            format!("HierarchyObjRef==\"{}\"", web_full.hierarchy_obj_ref),
            set(&|p| p.vm == web_full.vm),
        ),
        (
            format!("BackupServerName==\"{}\"", servers[0].name),
            all.clone(),
        ),
        // Enums, by name and by documented index (query_comparison.md).
        (
            "Type==full".into(),
            set(&|p| p.point_type == PointType::Full),
        ),
        (
            "type==Increment".into(),
            set(&|p| p.point_type == PointType::Increment),
        ),
        (
            "Type>Full".into(),
            set(&|p| p.point_type == PointType::Increment),
        ),
        (
            "Algorithm==Incremental".into(),
            set(&|p| p.point_type == PointType::Increment),
        ),
        (
            "Algorithm<=Full".into(),
            set(&|p| p.point_type == PointType::Full),
        ),
        // UIDs, full or bare.
        (
            format!("UID==\"urn:veeam:VmRestorePoint:{}\"", web_full.id),
            set(&|p| p.id == web_full.id),
        ),
        (
            format!("uid=={}", web_full.id),
            set(&|p| p.id == web_full.id),
        ),
        (
            format!("RestorePointId==\"{}\"", web_full.restore_point_id),
            set(&|p| p.restore_point_id == web_full.restore_point_id),
        ),
        (
            format!(
                "BackupServerUid==\"urn:veeam:BackupServer:{}\"",
                servers[0].id
            ),
            all.clone(),
        ),
        // AND, OR, grouping; ';' binds tighter than ','.
        (
            "VmDisplayName==web01;Type==Full".into(),
            set(&|p| p.vm_name == "web01" && p.point_type == PointType::Full),
        ),
        (
            "VmDisplayName==web01,VmDisplayName==db01".into(),
            set(&|p| p.vm_name == "web01" || p.vm_name == "db01"),
        ),
        (
            "Type==Full;VmDisplayName==web01,VmDisplayName==db01".into(),
            set(&|p| {
                (p.point_type == PointType::Full && p.vm_name == "web01") || p.vm_name == "db01"
            }),
        ),
        (
            "Type==Full;(VmDisplayName==web01,VmDisplayName==db01)".into(),
            set(&|p| {
                p.point_type == PointType::Full && (p.vm_name == "web01" || p.vm_name == "db01")
            }),
        ),
        ("VmDisplayName==\"nobody\"".into(), BTreeSet::new()),
    ];
    for (f, want) in cases {
        assert_eq!(filter(&w, "VmRestorePoint", &f).await, want, "filter {f}");
    }
    // Quotes inside values are doubled; a name with a quote simply matches nothing here.
    assert!(filter(&w, "VmRestorePoint", r#"VmDisplayName=="a""b""#)
        .await
        .is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn other_types_filter_on_their_documented_fields() {
    let w = World::new(ONE_MIB).await;
    let point = w.point("db01", PointType::Increment).await;
    let body = r#"{"VmRestoreSpec":{"PowerOnAfterRestore":false,"QuickRollback":false}}"#;
    w.restore_ok(point.id, JSON, body).await;
    let (backups, rps, files, servers, roots, repos) = w
        .blocking(|c| {
            (
                c.view().backups().unwrap(),
                c.view().restore_points(None).unwrap(),
                c.view().backup_files(None).unwrap(),
                c.infrastructure().backup_servers().unwrap(),
                c.infrastructure().hierarchy_roots().unwrap(),
                c.infrastructure().backup_repositories().unwrap(),
            )
        })
        .await;
    assert_eq!(repos.len(), 1);
    let hv = backups
        .iter()
        .find(|b| b.platform == PlatformKind::HyperV)
        .unwrap();
    let rp = &rps[0];
    let rp_name = emrest_wire::UtcTime::from_unix_millis(rp.created).restore_point_name();
    let vbk: Vec<_> = files
        .iter()
        .filter(|f| f.file_name.ends_with(".vbk"))
        .collect();
    assert!(!vbk.is_empty() && vbk.len() < files.len());
    let vc = roots
        .iter()
        .find(|r| r.kind == PlatformKind::VMware)
        .unwrap();

    let one = |kind: &str, id: Uuid| BTreeSet::from([format!("urn:veeam:{kind}:{id}")]);
    let cases: Vec<(&str, String, BTreeSet<String>)> = vec![
        ("Backup", "Platform==hyperv".into(), one("Backup", hv.id)),
        (
            "Backup",
            format!("Name==\"{}\"", hv.name),
            one("Backup", hv.id),
        ),
        (
            "Backup",
            format!("JobName==\"{}\"", hv.name),
            one("Backup", hv.id),
        ),
        (
            "Backup",
            "BackupType==Standard".into(),
            uids("Backup", &backups, |b| b.id),
        ),
        (
            "Backup",
            format!("JobUid==\"urn:veeam:Job:{}\"", Uuid::new_v4()),
            BTreeSet::new(),
        ),
        (
            "RestorePoint",
            format!("BackupName==\"{}\"", hv.name),
            uids(
                "RestorePoint",
                &rps.iter()
                    .filter(|p| p.backup_id == hv.id)
                    .collect::<Vec<_>>(),
                |p| p.id,
            ),
        ),
        (
            "RestorePoint",
            format!("Name==\"{rp_name}\""),
            uids(
                "RestorePoint",
                &rps.iter()
                    .filter(|p| p.created / 60_000 == rp.created / 60_000)
                    .collect::<Vec<_>>(),
                |p| p.id,
            ),
        ),
        (
            "RestorePoint",
            format!(
                "BackupUid=={};CreationTime<=\"{}\"",
                hv.id,
                iso(rp.created + 1000)
            ),
            uids(
                "RestorePoint",
                &rps.iter()
                    .filter(|p| {
                        p.backup_id == hv.id && p.created <= (rp.created + 1000) / 1000 * 1000
                    })
                    .collect::<Vec<_>>(),
                |p| p.id,
            ),
        ),
        (
            "BackupFile",
            "FileType==vbk".into(),
            uids("BackupFile", &vbk, |f| f.id),
        ),
        (
            "BackupFile",
            "BackupSize>0;CompressRatio>=0".into(),
            uids("BackupFile", &files, |f| f.id),
        ),
        (
            "BackupFile",
            format!("BackupName==\"{}\"", hv.name),
            uids(
                "BackupFile",
                &files
                    .iter()
                    .filter(|f| f.backup_id == hv.id)
                    .collect::<Vec<_>>(),
                |f| f.id,
            ),
        ),
        (
            "BackupServer",
            format!("Name==\"{}\"", servers[0].name),
            one("BackupServer", servers[0].id),
        ),
        (
            "BackupServer",
            format!("Port=={}", servers[0].port),
            one("BackupServer", servers[0].id),
        ),
        (
            "BackupServer",
            "Port!=1".into(),
            one("BackupServer", servers[0].id),
        ),
        (
            "HierarchyRoot",
            "HostType==VC".into(),
            one("HierarchyRoot", vc.id),
        ),
        (
            "HierarchyRoot",
            format!("Name==\"{}\"", vc.name),
            one("HierarchyRoot", vc.id),
        ),
        (
            "HierarchyRoot",
            format!("UniqueId==\"{}\"", vc.unique_id),
            one("HierarchyRoot", vc.id),
        ),
        (
            "HierarchyRoot",
            format!("BackupServerUid=={}", servers[0].id),
            uids("HierarchyRoot", &roots, |r| r.id),
        ),
        (
            "Job",
            "JobType==Backup;ScheduleEnabled==true".into(),
            BTreeSet::new(),
        ),
        (
            "BackupJobSession",
            "Result==Failed;CreationTime>=\"2025-08-15T06:00:00Z\"".into(),
            BTreeSet::new(),
        ),
        (
            "Repository",
            format!("FreeSpace>=0;Capacity>0;BackupServerUid=={}", servers[0].id),
            uids("Repository", &repos, |r| r.id),
        ),
        (
            "Repository",
            "Name==\"default backup repository\"".into(),
            uids("Repository", &repos, |r| r.id),
        ),
        ("Repository", "Capacity<0".into(), BTreeSet::new()),
        (
            "Backup",
            format!("RepositoryUid=={};RepositoryName!=x", repos[0].id),
            uids("Backup", &backups, |b| b.id),
        ),
    ];
    for (t, f, want) in cases {
        assert_eq!(filter(&w, t, &f).await, want, "{t} {f}");
    }
    // The restore made a session and a task.
    let sessions = filter(
        &w,
        "RestoreSession",
        "VmDisplayName==DB01;Result==Success;State==Stopped;EndTime>2000-01-01",
    )
    .await;
    assert_eq!(sessions.len(), 1);
    assert!(filter(&w, "RestoreSession", "Result>Success")
        .await
        .is_empty());
    assert_eq!(
        filter(&w, "RestoreSession", "Type==RestoreVm").await,
        sessions
    );
    assert_eq!(
        filter(&w, "Task", "State==Finished;Operation==StartVMRestore").await,
        BTreeSet::from(["task-1".to_string()])
    );
    assert_eq!(filter(&w, "Task", "TaskId==task-1").await.len(), 1);
    assert!(filter(&w, "Task", "TaskId>1").await.is_empty());
    assert!(filter(&w, "Task", "State==Running").await.is_empty());
}

/// When the first synthetic restore point was made (2020-09-13T12:26:40Z); the next ones
/// follow an hour apart.
const SYNTHETIC_BASE: i64 = 1_600_000_000_000;

#[tokio::test(flavor = "multi_thread")]
async fn jobs_and_backup_sessions_filter_sort_and_page() {
    let w = World::new(ONE_MIB).await;
    let (jobs, sessions, tasks) = w
        .blocking(|c| {
            (
                c.view().jobs().unwrap(),
                c.view().backup_sessions(None).unwrap(),
                c.view().backup_task_sessions(None).unwrap(),
            )
        })
        .await;
    // The demo: 3 jobs, 2 runs each, a task session per VM per run.
    assert_eq!((jobs.len(), sessions.len(), tasks.len()), (3, 6, 12));
    let vc = jobs
        .iter()
        .find(|j| j.name == "Backup Job vcenter01")
        .unwrap();
    let vc_sessions: Vec<_> = sessions.iter().filter(|s| s.job_id == vc.id).collect();
    assert_eq!(vc_sessions.len(), 2);
    let all = |kind: &str| match kind {
        "Job" => uids(kind, &jobs, |j| j.id),
        "BackupJobSession" => uids(kind, &sessions, |s| s.id),
        _ => uids(kind, &tasks, |t| t.id),
    };
    let none = BTreeSet::new();
    // The full runs are dated a day back: an hour after the newest of them splits the runs.
    let cut = sessions.iter().map(|s| s.created).min().unwrap() + 3_600_000;
    let split = iso(cut);
    let recent_sessions: BTreeSet<String> = sessions
        .iter()
        .filter(|s| s.created > cut)
        .map(|s| format!("urn:veeam:BackupJobSession:{}", s.id))
        .collect();
    assert_eq!(recent_sessions.len(), 3);
    // Task sessions are stamped when they run (not dated back): split them at the middle one,
    // to the millisecond.
    let mut task_times: Vec<i64> = tasks.iter().map(|t| t.created).collect();
    task_times.sort();
    let task_cut = task_times[task_times.len() / 2];
    let task_split = format!(
        "{}.{:03}Z",
        iso(task_cut).trim_end_matches('Z'),
        task_cut.rem_euclid(1000)
    );
    let recent_tasks: BTreeSet<String> = tasks
        .iter()
        .filter(|t| t.created > task_cut)
        .map(|t| format!("urn:veeam:BackupTaskSession:{}", t.id))
        .collect();
    assert!(!recent_tasks.is_empty() && recent_tasks.len() < tasks.len());
    let first = &vc_sessions[0];
    let first_tasks = uids(
        "BackupTaskSession",
        &tasks
            .iter()
            .filter(|t| t.session_id == first.id)
            .collect::<Vec<_>>(),
        |t| t.id,
    );
    assert_eq!(first_tasks.len(), 2, "web01 and db01");
    let web01 = uids(
        "BackupTaskSession",
        &tasks
            .iter()
            .filter(|t| t.vm_name == "web01")
            .collect::<Vec<_>>(),
        |t| t.id,
    );
    assert_eq!(web01.len(), 2);

    let cases: Vec<(&str, String, BTreeSet<String>)> = vec![
        (
            "Job",
            r#"Name=="Backup Job vcenter01""#.into(),
            uids("Job", &[vc], |j| j.id),
        ),
        (
            "Job",
            "name==\"backup job VCENTER01\"".into(),
            uids("Job", &[vc], |j| j.id),
        ),
        ("Job", "JobType==Backup".into(), all("Job")),
        (
            "Job",
            "Platform==VMware".into(),
            uids("Job", &[vc], |j| j.id),
        ),
        ("Job", "ScheduleEnabled==true".into(), none.clone()),
        (
            "Job",
            "BackupServerName==\"backup01.lab.local\"".into(),
            all("Job"),
        ),
        (
            "BackupJobSession",
            r#"JobName=="Backup Job vcenter01""#.into(),
            uids("BackupJobSession", &vc_sessions, |s| s.id),
        ),
        (
            "BackupJobSession",
            format!("JobUid==\"urn:veeam:Job:{}\"", vc.id),
            uids("BackupJobSession", &vc_sessions, |s| s.id),
        ),
        (
            "BackupJobSession",
            "Result==Success".into(),
            all("BackupJobSession"),
        ),
        ("BackupJobSession", "Result>Success".into(), none.clone()),
        (
            "BackupJobSession",
            "State==Stopped".into(),
            all("BackupJobSession"),
        ),
        ("BackupJobSession", "State==Working".into(), none.clone()),
        (
            "BackupJobSession",
            format!("CreationTime>\"{split}\""),
            recent_sessions.clone(),
        ),
        (
            "BackupJobSession",
            format!("CreationTime>\"{split}\";JobName==\"Backup Job vcenter01\""),
            uids("BackupJobSession", &vc_sessions[1..], |s| s.id),
        ),
        (
            "BackupJobSession",
            format!(
                "Name==\"{}\"",
                emrest_core::jobs::session_name(&vc.name, first.created)
            ),
            uids("BackupJobSession", &vc_sessions[..1], |s| s.id),
        ),
        (
            "BackupTaskSession",
            format!("JobSessionUid==\"urn:veeam:BackupJobSession:{}\"", first.id),
            first_tasks,
        ),
        ("BackupTaskSession", "VmDisplayName==web01".into(), web01),
        (
            "BackupTaskSession",
            "State==Completed".into(),
            all("BackupTaskSession"),
        ),
        (
            "BackupTaskSession",
            "Result==Success".into(),
            all("BackupTaskSession"),
        ),
        ("BackupTaskSession", "Result==Failed".into(), none.clone()),
        (
            "BackupTaskSession",
            format!("CreationTime>\"{task_split}\""),
            recent_tasks,
        ),
        (
            "BackupTaskSession",
            "EndTime!=\"2000-01-01\"".into(),
            all("BackupTaskSession"),
        ),
    ];
    for (t, f, want) in cases {
        assert_eq!(filter(&w, t, &f).await, want, "{t} {f}");
    }

    // sortDesc=CreationTime: newest first, ties by ID; paged 4 at a time, each exactly once.
    let mut by_time: Vec<(i64, String)> = tasks
        .iter()
        .map(|t| (t.created, format!("urn:veeam:BackupTaskSession:{}", t.id)))
        .collect();
    by_time.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let want: Vec<String> = by_time.into_iter().map(|(_, id)| id).collect();
    let mut got = Vec::new();
    for page in 1..=3 {
        let (ids, body) = query(
            &w,
            "BackupTaskSession",
            &format!("&sortDesc=CreationTime&pageSize=5&page={page}"),
            page % 2 == 0,
        )
        .await;
        assert_eq!(body["PagingInfo"]["PagesCount"], 3);
        assert_eq!(ids.len(), if page < 3 { 5 } else { 2 });
        got.extend(ids);
    }
    assert_eq!(got, want);
    let mut by_time: Vec<(i64, String)> = sessions
        .iter()
        .map(|s| (s.created, format!("urn:veeam:BackupJobSession:{}", s.id)))
        .collect();
    by_time.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let want: Vec<String> = by_time.into_iter().map(|(_, id)| id).collect();
    let (got, _) = query(&w, "BackupJobSession", "&sortDesc=CreationTime", false).await;
    assert_eq!(got, want);
    let (got, _) = query(&w, "Job", "&sortDesc=Name&pageSize=2&page=2", true).await;
    let mut names: Vec<_> = jobs.iter().map(|j| (j.name.clone(), j.id)).collect();
    names.sort();
    assert_eq!(got, [format!("urn:veeam:Job:{}", names[0].1)]);

    // Entities carry what the collections serve.
    let (_, body) = query(
        &w,
        "BackupJobSession",
        &format!("&filter={}", enc(r#"JobName=="Backup Job vcenter01""#)),
        true,
    )
    .await;
    let list = body["Entities"]["BackupJobSessions"]["BackupJobSessions"]
        .as_array()
        .unwrap();
    assert_eq!(list.len(), 2);
    for e in list {
        assert_eq!(e["JobName"], "Backup Job vcenter01");
        assert_eq!(e["Result"], "Success");
        assert_eq!(e["State"], "Stopped");
    }
    let (_, body) = query(
        &w,
        "Job",
        "&filter=Name%3D%3D%22Backup%20Job%20vcenter01%22",
        true,
    )
    .await;
    let job = &body["Entities"]["Jobs"]["Jobs"][0];
    assert_eq!(job["Name"], "Backup Job vcenter01");
    assert_eq!(
        job["JobInfo"]["BackupJobInfo"]["Includes"]["ObjectInJobs"]
            .as_array()
            .map(Vec::len),
        Some(2),
        "{job}"
    );

    // Unknown fields name the type's fields; a restore operator may not list jobs.
    let r = w
        .get_json(&format!(
            "/api/query?type=BackupTaskSession&filter={}",
            enc("JobName==x")
        ))
        .await;
    let e = r.json_error(StatusCode::BAD_REQUEST);
    assert!(
        e.contains("'JobName' is not a field of BackupTaskSession"),
        "{e}"
    );
    let operator = w
        .logon_new_account("operator", emrest_core::Role::RestoreOperator)
        .await;
    for t in ["Job", "BackupJobSession", "BackupTaskSession"] {
        let r = w
            .send(Req::get(&format!("/api/query?type={t}")).token(&operator))
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{t}: {}", r.text());
    }
}

/// Insert `n` synthetic VM restore points straight into the catalog (100 VMs per restore
/// point, one transaction per restore point). Returns their IDs.
pub fn insert_synthetic_points(core: &emrest_core::Owner, n: usize) -> Vec<Uuid> {
    let server = core.infrastructure().backup_servers().unwrap()[0].id;
    let root = core.infrastructure().hierarchy_roots().unwrap()[0].id;
    SyntheticPoints {
        job: "Synthetic Job",
        vm_prefix: "synth-",
        file_prefix: "Synthetic",
        first_ref: 90_000,
        base: SYNTHETIC_BASE,
    }
    .insert(core.catalog(), server, root, n)
    .unwrap()
}

/// Follow Next links from `first` (a path), collecting IDs; checks PagingInfo on every page.
async fn walk(w: &World, first: &str, json: bool, entities: bool) -> (Vec<String>, usize) {
    let mut uri = first.to_string();
    let mut all = Vec::new();
    let mut pages = 0;
    loop {
        pages += 1;
        let r = if json {
            w.get_json(&uri).await
        } else {
            w.get_xml(&uri).await
        };
        assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.text());
        let (ids, num, count, links) = if json {
            let b = r.json();
            let p = &b["PagingInfo"];
            let links: Vec<(String, String)> = arr(p, "Links")
                .iter()
                .map(|l| {
                    (
                        l["Rel"].as_str().unwrap().into(),
                        l["Href"].as_str().unwrap().into(),
                    )
                })
                .collect();
            (
                json_ids(&b, "VmRestorePoint", entities),
                p["PageNum"].as_u64().unwrap(),
                p["PagesCount"].as_u64().unwrap(),
                links,
            )
        } else {
            let x = r.xml();
            let p = x.child("PagingInfo");
            let links = p
                .child("Links")
                .all("Link")
                .iter()
                .map(|l| {
                    (
                        l.attr("Rel").unwrap().into(),
                        l.attr("Href").unwrap().into(),
                    )
                })
                .collect();
            (
                xml_ids(&x, "VmRestorePoint", entities),
                p.attr("PageNum").unwrap().parse().unwrap(),
                p.attr("PagesCount").unwrap().parse().unwrap(),
                links,
            )
        };
        assert_eq!(num, pages as u64);
        let rels: Vec<&str> = links.iter().map(|(r, _)| r.as_str()).collect();
        let mut want = vec!["First"];
        if num > 1 {
            want.push("Previous");
        }
        if num < count {
            want.push("Next");
        }
        want.push("Last");
        assert_eq!(rels, want, "page {num} of {count}");
        all.extend(ids);
        match links.iter().find(|(r, _)| r == "Next") {
            Some((_, href)) => uri = path_of(href),
            None => {
                assert_eq!(num, count, "the last page has no Next link");
                return (all, pages);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn paging_through_ten_thousand_points_returns_each_exactly_once() {
    let w = World::new(ONE_MIB).await;
    let inserted = w.blocking(|c| insert_synthetic_points(c, 10_000)).await;
    let total = w
        .blocking(|c| c.view().vm_restore_points(None).unwrap().len())
        .await;
    assert!(total >= 10_000);

    // JSON, references, default order, 1000 a page.
    let (ids, pages) = walk(
        &w,
        "/api/query?type=VmRestorePoint&pageSize=1000",
        true,
        false,
    )
    .await;
    assert_eq!(pages, total.div_ceil(1000));
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(ids.len(), total, "every point once");
    assert_eq!(unique.len(), total, "no point twice");
    for id in &inserted {
        assert!(unique.contains(&format!("urn:veeam:VmRestorePoint:{id}")));
    }

    // XML, entities, filtered and sorted by name then paged: still each once, in order.
    let f = enc("VmDisplayName>=synth-050;Type==Increment");
    let (ids, _) = walk(
        &w,
        &format!(
            "/api/query?type=VmRestorePoint&format=Entities&sortAsc=Name&filter={f}&pageSize=700"
        ),
        false,
        true,
    )
    .await;
    let points = w
        .blocking(|c| c.view().vm_restore_points(None).unwrap())
        .await;
    let mut want: Vec<_> = points
        .iter()
        .filter(|p| p.vm_name.as_str() >= "synth-050" && p.point_type == PointType::Increment)
        .map(|p| {
            (
                emrest_core::catalog::vm_point_name(&p.vm_name, p.created),
                p.id,
            )
        })
        .collect();
    want.sort();
    let want: Vec<String> = want
        .iter()
        .map(|(_, id)| format!("urn:veeam:VmRestorePoint:{id}"))
        .collect();
    assert_eq!(ids, want);

    // sortDesc by CreationTime: times never increase across pages.
    let (ids, _) = walk(
        &w,
        "/api/query?type=VmRestorePoint&sortDesc=CreationTime&pageSize=2500&format=entities",
        true,
        true,
    )
    .await;
    let created: std::collections::HashMap<String, i64> = points
        .iter()
        .map(|p| (format!("urn:veeam:VmRestorePoint:{}", p.id), p.created))
        .collect();
    assert!(ids.windows(2).all(|p| created[&p[0]] >= created[&p[1]]));
    assert_eq!(ids.len(), total);
}

#[tokio::test(flavor = "multi_thread")]
async fn paging_links_repeat_the_callers_parameters() {
    let w = World::new(ONE_MIB).await;
    let b = w
        .get_json(&format!(
            "/api/query?type=VmRestorePoint&format=Entities&filter={}&pageSize=2&page=2&v=latest",
            enc("CreationTime>=\"2000-01-01T00:00:00\"")
        ))
        .await
        .json();
    let p = &b["PagingInfo"];
    assert_eq!(
        (p["PageNum"].clone(), p["PageSize"].clone()),
        (2.into(), 2.into())
    );
    let first = arr(p, "Links")[0]["Href"].as_str().unwrap().to_string();
    assert_eq!(
        first,
        format!("{BASE}/query?type=VmRestorePoint&format=Entities&filter=CreationTime%3e%3d%222000-01-01T00%3a00%3a00%22&pageSize=2&page=1&v=latest")
    );
    // Without paging parameters they are appended; a page past the end is empty, not an error.
    let b = w.get_json("/api/query?type=Backup&page=9").await.json();
    assert!(arr(&b["Refs"], "Refs").is_empty());
    let links = arr(&b["PagingInfo"], "Links");
    assert_eq!(
        links[0]["Href"],
        format!("{BASE}/query?type=Backup&page=1&pageSize=100")
    );
    assert!(links.iter().all(|l| l["Rel"] != "Next"));
    // XML escapes the ampersands (special_symbols.md); a client that does not unescape them
    // still gets the page it asked for.
    let x = w.get_xml("/api/query?type=Backup&pageSize=1").await;
    assert!(
        x.text().contains("type=Backup&amp;pageSize=1&amp;page=2"),
        "{}",
        x.text()
    );
    let r = w
        .get_json("/api/query?type=Backup&amp;pageSize=1&amp;page=2")
        .await
        .json();
    assert_eq!(r["PagingInfo"]["PageNum"], 2);
    assert_eq!(r["PagingInfo"]["PageSize"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_queries_get_a_400_naming_the_problem_in_both_formats() {
    let w = World::new(ONE_MIB).await;
    let cases: Vec<(String, &str)> = vec![
        (
            format!("type=VmRestorePoint&filter={}", enc("Name=\"x\"")),
            "position 5 ('='): '=' is not an operator",
        ),
        (
            format!("type=VmRestorePoint&filter={}", enc("(Name==x")),
            "position 9 (end of filter): expected ')' to close the '(' at position 1",
        ),
        (
            format!("type=VmRestorePoint&filter={}", enc("Name==\"x")),
            "position 7",
        ),
        (
            format!("type=VmRestorePoint&filter={}", enc("Colour==red")),
            "'Colour' is not a field of VmRestorePoint",
        ),
        (
            format!("type=VmRestorePoint&filter={}", enc("CreationTime>soon")),
            "CreationTime expects a UTC date",
        ),
        (
            format!("type=Task&filter={}", enc("State==Sleeping")),
            "one of Running, OperationFinished, Finished",
        ),
        ("type=Bogus".into(), "Unknown query type 'Bogus'"),
        ("type=Replica".into(), "not supported by emrest yet"),
        ("format=Entities".into(), "needs a type parameter"),
        (
            "type=Backup&pageSize=0".into(),
            "pageSize must be a whole number greater than 0",
        ),
        (
            "type=Backup&page=-1".into(),
            "page must be a whole number greater than 0",
        ),
        (
            "type=Backup&format=Everything".into(),
            "format must be Entities or References",
        ),
        (
            "type=Backup&sortAsc=Colour".into(),
            "Cannot sort: 'Colour' is not a field of Backup",
        ),
    ];
    for (qs, needle) in cases {
        let uri = format!("/api/query?{qs}");
        let m = w.get_xml(&uri).await.xml_error(StatusCode::BAD_REQUEST);
        assert!(m.contains(needle), "{uri}: {m}");
        let m = w.get_json(&uri).await.json_error(StatusCode::BAD_REQUEST);
        assert!(m.contains(needle), "{uri}: {m}");
    }
    // Without a session: 401, like every other route.
    let r = w
        .send(Req::get("/api/query?type=Backup").no_session())
        .await;
    r.xml_error(StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn query_service_lists_a_query_per_type() {
    let w = World::new(ONE_MIB).await;
    let j = w.get_json("/api/querySvc").await.json();
    assert_eq!(j["Type"], "QueryService");
    assert_eq!(j["Href"], format!("{BASE}/querySvc"));
    let links = arr(&j, "Links");
    assert_eq!(links[0]["Rel"], "Up");
    assert_eq!(links[0]["Type"], "LogonSession");
    let down: Vec<&serde_json::Value> = links.iter().filter(|l| l["Rel"] == "Down").collect();
    assert_eq!(down.len(), 13);
    // Every link works, in both formats.
    for l in down {
        let href = l["Href"].as_str().unwrap();
        let path = path_of(href);
        let r = w.get_json(&path).await;
        assert_eq!(r.status, StatusCode::OK, "{href}: {}", r.text());
        assert_eq!(r.json()["PagingInfo"]["PageSize"], 15);
        assert_eq!(w.get_xml(&path).await.status, StatusCode::OK);
    }
    let x = w.get_xml("/api/querySvc").await.xml();
    assert_eq!(x.name, "QuerySvc");
    assert_eq!(x.attr("Type"), Some("QueryService"));
    // The logon session links to both services.
    let s = w.get_json("/api/logonSessions").await.json();
    let session = &arr(&s, "LogonSessions")[0];
    assert_eq!(
        link(session, "Down", "QueryService"),
        format!("{BASE}/querySvc")
    );
    assert_eq!(
        link(session, "Down", "LookupService"),
        format!("{BASE}/lookupSvc")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn lookup_finds_vms_datastores_profiles_and_roots() {
    let w = World::new(ONE_MIB).await;
    let (roots, vms) = w
        .blocking(|c| {
            (
                c.infrastructure().hierarchy_roots().unwrap(),
                c.inventory().vms().unwrap(),
            )
        })
        .await;
    // lookupSvc: one Vm lookup per root, each of which works.
    let svc = w.get_json("/api/lookupSvc").await.json();
    assert_eq!(svc["Type"], "LookupService");
    let downs: Vec<String> = arr(&svc, "Links")
        .iter()
        .filter(|l| l["Rel"] == "Down" && l["Type"] == "HierarchyItemList")
        .map(|l| l["Href"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(downs.len(), roots.len());
    let mut found = BTreeSet::new();
    for href in &downs {
        let b = w.get_json(&path_of(href)).await.json();
        for i in arr(&b, "HierarchyItems") {
            assert_eq!(i["ObjectType"], "Vm");
            assert_eq!(i["Type"], "HierarchyItem");
            assert!(i["Links"].is_null() && i["Href"].is_null());
            found.insert(i["ObjectRef"].as_str().unwrap().to_string());
        }
    }
    let all_vms: BTreeSet<String> = vms.iter().map(|v| v.hierarchy_obj_ref()).collect();
    assert_eq!(found, all_vms);

    let vc = roots
        .iter()
        .find(|r| r.kind == PlatformKind::VMware)
        .unwrap();
    let vcd = roots
        .iter()
        .find(|r| r.kind == PlatformKind::VCloud)
        .unwrap();
    let web = vms.iter().find(|v| v.name == "web01").unwrap();
    let host =
        |r: &emrest_core::HierarchyRootRecord| enc(&format!("urn:veeam:HierarchyRoot:{}", r.id));

    // By name and type, any case (get_lookup.md: name=dns&type=vm), in XML too.
    let uri = format!("/api/lookup?host={}&name=WEB01&type=vm", host(vc));
    let b = w.get_json(&uri).await.json();
    let items = arr(&b, "HierarchyItems");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["ObjectRef"], web.hierarchy_obj_ref());
    assert_eq!(items[0]["ObjectName"], "web01");
    let x = w.get_xml(&uri).await.xml();
    assert_eq!(x.name, "HierarchyItems");
    let item = x.child("HierarchyItem");
    assert_eq!(item.attr("Type"), Some("HierarchyItem"));
    assert_eq!(item.names(), ["ObjectRef", "ObjectType", "ObjectName"]);
    assert_eq!(item.text_of("ObjectRef"), web.hierarchy_obj_ref());

    // By reference, both spellings (veeam_em sends `hierachyRef`).
    for p in ["hierarchyRef", "hierachyRef"] {
        let b = w
            .get_json(&format!(
                "/api/lookup?{p}={}",
                enc(&web.hierarchy_obj_ref())
            ))
            .await
            .json();
        assert_eq!(arr(&b, "HierarchyItems").len(), 1, "{p}");
        assert_eq!(arr(&b, "HierarchyItems")[0]["ObjectName"], "web01");
    }

    // Datastores, storage profiles, templates and the root itself: what restore specs need.
    let names = |b: serde_json::Value| -> Vec<(String, String)> {
        arr(&b, "HierarchyItems")
            .iter()
            .map(|i| {
                (
                    i["ObjectType"].as_str().unwrap().to_string(),
                    i["ObjectName"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let ds = names(
        w.get_json(&format!("/api/lookup?host={}&type=Datastore", host(vc)))
            .await
            .json(),
    );
    assert!(
        ds.contains(&("Datastore".into(), "datastore1".into())),
        "{ds:?}"
    );
    let sp = names(
        w.get_json(&format!(
            "/api/lookup?host={}&type=OrgVdcStorageProfile&name=*",
            host(vcd)
        ))
        .await
        .json(),
    );
    assert!(
        !sp.is_empty() && sp.iter().all(|(t, _)| t == "OrgVdcStorageProfile"),
        "{sp:?}"
    );
    let sp_ref = w
        .blocking({
            let id = vcd.id;
            move |c| c.inventory().storage_profiles(id).unwrap()[0].hierarchy_obj_ref()
        })
        .await;
    let b = w
        .get_json(&format!("/api/lookup?hierarchyRef={}", enc(&sp_ref)))
        .await
        .json();
    assert_eq!(arr(&b, "HierarchyItems")[0]["ObjectRef"], sp_ref);
    let everything = names(
        w.get_json(&format!("/api/lookup?host={}", vcd.id))
            .await
            .json(),
    );
    assert_eq!(everything[0], ("VcdSystem".into(), vcd.name.clone()));
    for t in ["Datastore", "OrgVdcStorageProfile", "VappTemplate", "Vm"] {
        assert!(
            everything.iter().any(|(k, _)| k == t),
            "{t}: {everything:?}"
        );
    }
    // A documented type emrest has none of finds nothing; a wildcard narrows.
    assert!(names(
        w.get_json(&format!("/api/lookup?host={}&type=Cluster", host(vc)))
            .await
            .json()
    )
    .is_empty());
    let d = names(
        w.get_json(&format!("/api/lookup?host={}&type=Vm&name=d*", host(vc)))
            .await
            .json(),
    );
    assert_eq!(d, [("Vm".to_string(), "db01".to_string())]);

    // Errors.
    let m = w
        .get_json("/api/lookup?name=x")
        .await
        .json_error(StatusCode::BAD_REQUEST);
    assert!(m.contains("host="), "{m}");
    let m = w
        .get_xml(&format!("/api/lookup?host={}", Uuid::new_v4()))
        .await
        .xml_error(StatusCode::NOT_FOUND);
    assert!(m.contains("Hierarchy root"), "{m}");
    let m = w
        .get_json(&format!("/api/lookup?host={}&type=Tag", host(vcd)))
        .await
        .json_error(StatusCode::BAD_REQUEST);
    assert!(m.contains("'Tag' is not an object type of vCloud"), "{m}");
    let m = w
        .get_json("/api/lookup?hierarchyRef=urn:nothing")
        .await
        .json_error(StatusCode::BAD_REQUEST);
    assert!(m.contains("hierarchyRef"), "{m}");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_listed_version_logs_on_and_queries_ignore_v() {
    let w = World::new(ONE_MIB).await;
    let root = w
        .send(Req::get("/api/").accept(JSON).no_session())
        .await
        .json();
    let versions = arr(&root["SupportedVersions"], "SupportedVersions");
    assert!(!versions.is_empty());
    for v in versions {
        let create = link(v, "Create", "LogonSession");
        let r = w
            .send(
                Req::post(&path_of(&create))
                    .basic(USER, PASSWORD)
                    .no_session(),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{create}: {}", r.text());
        let token = r.header("x-restsvcsessionid").unwrap().to_string();
        let name = v["Name"].as_str().unwrap();
        // Outside sessionMngr `v` is ignored (JSON.md C4: veeam_em sends v=latest everywhere).
        for q in [format!("v={name}"), "v=latest".into(), "v=whatever".into()] {
            let r = w
                .send(
                    Req::get(&format!("/api/query?type=Backup&{q}"))
                        .accept(JSON)
                        .token(&token),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.text());
            let r = w
                .send(
                    Req::get(&format!("/api/lookupSvc?{q}"))
                        .accept(JSON)
                        .token(&token),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.text());
        }
    }
    let m = w
        .send(
            Req::post("/api/sessionMngr/?v=v0_1")
                .basic(USER, PASSWORD)
                .no_session()
                .accept(JSON),
        )
        .await
        .json_error(StatusCode::BAD_REQUEST);
    assert!(m.contains("'v0_1' is not supported"), "{m}");
}

/// A filter of many terms over a large page: `n` alternatives on the name.
fn heavy_filter(n: usize) -> String {
    (0..n)
        .map(|i| format!("Name==\"vm-{i}\""))
        .collect::<Vec<_>>()
        .join(",")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_query_past_its_cost_limit_is_a_400_naming_the_filter_and_writes_go_on() {
    // 10 thousand SQLite steps: enough for an ordinary query of the demo, not for a heavy one.
    let w = World::with_config(ONE_MIB, emrest_server::ApiOptions::default(), |c| {
        c.query_cost_limit = 10;
    })
    .await;
    let ok = w
        .get_json("/api/query?type=VmRestorePoint&filter=Name%3D%3D%22app01%22")
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    for t in ["VmRestorePoint", "RestorePoint"] {
        let uri = format!(
            "/api/query?type={t}&format=Entities&filter={}",
            enc(&heavy_filter(400))
        );
        let r = w.send(Req::get(&uri).accept(JSON)).await;
        let m = r.json_error(StatusCode::BAD_REQUEST);
        assert!(
            m.contains("filter") && m.contains("million SQLite steps"),
            "{t}: {m}"
        );
    }
    // The catalog is not held: a logon (a write) and a plain listing still answer.
    w.logon(USER, PASSWORD).await;
    assert_eq!(
        w.get_json("/api/vmRestorePoints").await.status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_vms_of_jobs_are_queried_by_name_job_and_backup_server_under_resources() {
    let w = World::new(ONE_MIB).await;
    let uri = |f: &str| {
        format!(
            "/api/query?type=ObjectInJob&sortAsc=JobName&filter={}",
            enc(f)
        )
    };
    // The demo's six VMs, two per job; a filter on the job and the backup server.
    let names = |j: &serde_json::Value| -> Vec<String> {
        arr(&j["Resources"]["ObjectsInJob"], "ObjectInJobs")
            .iter()
            .map(|o| o["Name"].as_str().unwrap().to_string())
            .collect()
    };
    let all = w.get_json("/api/query?type=ObjectInJob").await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.text());
    let all = all.json();
    assert_eq!(names(&all).len(), 6, "{all}");
    assert!(all["Refs"].is_null() && all["Entities"].is_null(), "{all}");
    let j = w
        .get_json(&uri(
            r#"BackupServerName=="backup01.lab.local";JobName=="Backup Job hyperv01""#,
        ))
        .await
        .json();
    let mut found = names(&j);
    found.sort();
    assert_eq!(found, ["app01", "file01"], "{j}");
    let one = &arr(&j["Resources"]["ObjectsInJob"], "ObjectInJobs")[0];
    let href = one["Href"].as_str().unwrap();
    // Its Href is the include itself.
    let r = w.get_json(&path_of(href)).await;
    assert_eq!(r.status, StatusCode::OK, "{href}: {}", r.text());
    assert_eq!(r.json()["Name"], one["Name"]);
    // By the job's UID, and by the object's own UID.
    let job_uid = w.get_json("/api/jobs").await.json()["Refs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["Name"] == "Backup Job vcd01")
        .unwrap()["UID"]
        .as_str()
        .unwrap()
        .to_string();
    let j = w.get_json(&uri(&format!("JobUid=={job_uid}"))).await.json();
    let mut found = names(&j);
    found.sort();
    assert_eq!(found, ["tenant-db", "tenant-web"]);
    let id = one["ObjectInJobId"].as_str().unwrap();
    let j = w.get_json(&uri(&format!("UID=={id}"))).await.json();
    assert_eq!(names(&j), [one["Name"].as_str().unwrap()]);
    // XML: the same under <Resources><ObjectsInJob>, valid against the schema.
    let x = w.get_xml(&uri(r#"JobName=="Backup Job hyperv01""#)).await;
    assert_eq!(x.status, StatusCode::OK);
    crate::fidelity::validate(&x.body).unwrap_or_else(|e| panic!("{e}\n{}", x.text()));
    let items = x
        .xml()
        .child("Resources")
        .child("ObjectsInJob")
        .all("ObjectInJob")
        .len();
    assert_eq!(items, 2);
    // An unknown field is named; a restore operator may not ask.
    let r = w.send(Req::get(&uri("Colour==red")).accept(JSON)).await;
    let m = r.json_error(StatusCode::BAD_REQUEST);
    assert!(m.contains("Colour") && m.contains("JobName"), "{m}");
    let op = w
        .logon_new_account("operator", emrest_core::Role::RestoreOperator)
        .await;
    let r = w
        .send(Req::get("/api/query?type=ObjectInJob").token(&op))
        .await;
    r.xml_error(StatusCode::FORBIDDEN);
}

/// Pages past the middle are read from the other end of the order: every page, in every order,
/// is exactly its slice of the whole list.
#[tokio::test(flavor = "multi_thread")]
async fn every_page_is_its_slice_of_the_whole_list_in_every_order() {
    let w = World::new(ONE_MIB).await;
    // Ten restore points of the demo's VMs, so pages of 3 reach far past the middle.
    for _ in 0..4 {
        w.blocking(|c| {
            let vms = c.inventory().vms().unwrap();
            for kind in PlatformKind::ALL {
                let keys: Vec<_> = vms
                    .iter()
                    .filter(|v| v.kind == kind)
                    .map(|v| v.key())
                    .collect();
                c.backup_now(&format!("Paging {kind:?}"), &keys).unwrap();
            }
        })
        .await;
    }
    for (t, rest) in [
        ("VmRestorePoint", ""),
        ("VmRestorePoint", "&sortAsc=Name"),
        ("VmRestorePoint", "&sortDesc=CreationTime"),
        ("VmRestorePoint", "&sortAsc=Type"),
        // Counted from the points' table alone (catalog/query.rs `lean_count`).
        ("VmRestorePoint", "&filter=Type==Increment&sortAsc=Name"),
        ("RestorePoint", ""),
        ("BackupFile", "&sortDesc=Name"),
        ("BackupFile", ""),
    ] {
        let (all, _) = query(&w, t, &format!("{rest}&pageSize=1000"), false).await;
        assert!(all.len() > 2 * 3, "{t}{rest}: {}", all.len());
        let size = 3;
        let pages = all.len().div_ceil(size);
        for page in 1..=pages + 1 {
            let (got, _) = query(&w, t, &format!("{rest}&pageSize={size}&page={page}"), true).await;
            let from = ((page - 1) * size).min(all.len());
            let to = (page * size).min(all.len());
            assert_eq!(got, all[from..to], "{t}{rest} page {page} of {pages}");
        }
    }
}
