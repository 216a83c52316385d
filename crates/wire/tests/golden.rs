//! Golden files pin both encodings of every representation, byte for byte.
//!
//! `UPDATE_GOLDEN=1 cargo test -p emrest-wire --test golden` rewrites the files;
//! review every change against the reference pages before committing it.

mod common;

use std::fmt;
use std::path::PathBuf;

use common::*;
use emrest_wire::*;
use quick_xml::events::Event;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A JSON value that keeps member order (serde_json's map does not by default).
#[derive(Debug, Clone, PartialEq)]
enum J {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl<'de> Deserialize<'de> for J {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = J;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E>(self) -> Result<J, E> {
                Ok(J::Null)
            }
            fn visit_bool<E>(self, v: bool) -> Result<J, E> {
                Ok(J::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<J, E> {
                Ok(J::Num(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<J, E> {
                Ok(J::Num(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<J, E> {
                Ok(J::Num(v.to_string()))
            }
            fn visit_str<E>(self, v: &str) -> Result<J, E> {
                Ok(J::Str(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<J, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = s.next_element()? {
                    v.push(x);
                }
                Ok(J::Arr(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<J, A::Error> {
                let mut v = Vec::new();
                while let Some(kv) = m.next_entry()? {
                    v.push(kv);
                }
                Ok(J::Obj(v))
            }
        }
        d.deserialize_any(V)
    }
}

impl J {
    fn write(&self, out: &mut String) {
        match self {
            J::Null => out.push_str("null"),
            J::Bool(b) => out.push_str(&b.to_string()),
            J::Num(n) => out.push_str(n),
            J::Str(s) => out.push_str(&serde_json::to_string(s).unwrap()),
            J::Arr(v) => {
                out.push('[');
                for (i, x) in v.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    x.write(out);
                }
                out.push(']');
            }
            J::Obj(v) => {
                out.push('{');
                for (i, (k, x)) in v.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::to_string(k).unwrap());
                    out.push(':');
                    x.write(out);
                }
                out.push('}');
            }
        }
    }

    fn keys(&self) -> Vec<&str> {
        match self {
            J::Obj(v) => v.iter().map(|(k, _)| k.as_str()).collect(),
            _ => panic!("not an object: {self:?}"),
        }
    }

    fn get(&self, key: &str) -> &J {
        match self {
            J::Obj(v) => {
                &v.iter()
                    .find(|(k, _)| k == key)
                    .unwrap_or_else(|| panic!("no {key}"))
                    .1
            }
            _ => panic!("not an object"),
        }
    }

    fn items(&self) -> &[J] {
        match self {
            J::Arr(v) => v,
            _ => panic!("not an array: {self:?}"),
        }
    }
}

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

fn check_golden(file: &str, actual: &[u8]) {
    let path = golden_path(file);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", path.display()));
    assert_eq!(
        String::from_utf8_lossy(actual),
        String::from_utf8_lossy(&expected),
        "{file} differs from its golden file"
    );
}

/// Parses the XML back: well-formed, one root named `root` in the documented namespace.
fn check_xml(xml: &[u8], root: &str) -> Vec<(String, String)> {
    let text = std::str::from_utf8(xml).unwrap();
    assert!(text.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"));
    let mut r = quick_xml::Reader::from_str(text);
    r.config_mut().check_end_names = true;
    let mut depth = 0usize;
    let mut roots = 0;
    let mut root_attrs = Vec::new();
    loop {
        let ev = r.read_event().unwrap();
        match &ev {
            Event::Start(e) | Event::Empty(e) => {
                if depth == 0 {
                    roots += 1;
                    assert_eq!(e.name().as_ref(), root.as_bytes());
                    for a in e.attributes() {
                        let a = a.unwrap();
                        root_attrs.push((
                            String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                            a.unescape_value().unwrap().into_owned(),
                        ));
                    }
                }
                if matches!(ev, Event::Start(_)) {
                    depth += 1;
                }
            }
            Event::End(_) => depth -= 1,
            Event::Text(t) => {
                t.unescape().unwrap();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(depth, 0);
    assert_eq!(roots, 1, "one root element");
    assert!(root_attrs
        .iter()
        .any(|(k, v)| k == "xmlns" && v == NAMESPACE));
    root_attrs
}

/// Parses the JSON back, checks it re-encodes to the same bytes with member order
/// kept, and returns it.
fn check_json(json: &[u8]) -> J {
    serde_json::from_slice::<serde_json::Value>(json).expect("valid JSON");
    let v: J = serde_json::from_slice(json).unwrap();
    let mut again = String::new();
    v.write(&mut again);
    assert_eq!(again.as_bytes(), json, "JSON round trip");
    v
}

fn run(name: &str, rep: &impl Representation, root: &str) -> (Vec<(String, String)>, J) {
    let xml = encode(rep, Format::Xml);
    let json = encode(rep, Format::Json);
    check_golden(&format!("{name}.xml"), &xml);
    check_golden(&format!("{name}.json"), &json);
    let attrs = check_xml(&xml, root);
    let j = check_json(&json);
    // Every root attribute of the XML is a property of the JSON with the same value.
    for (k, v) in attrs.iter().filter(|(k, _)| !k.starts_with("xmlns")) {
        match j.get(k) {
            J::Str(s) => assert_eq!(s, v, "{name}: {k}"),
            J::Num(n) => assert_eq!(n, v, "{name}: {k}"),
            J::Bool(b) => assert_eq!(&b.to_string(), v, "{name}: {k}"),
            other => panic!("{name}: {k} is {other:?} in JSON"),
        }
    }
    (attrs, j)
}

fn assert_link_order(links: &J) {
    for l in links.items() {
        assert_eq!(l.keys(), ["Rel", "Href", "Name", "Type"]);
    }
}

/// Entities end with `Name, UID, Links, Href, Type` (JSON.md A5).
fn assert_entity_tail(j: &J) {
    let keys = j.keys();
    assert_eq!(
        keys[keys.len() - 5..],
        ["Name", "UID", "Links", "Href", "Type"],
        "{keys:?}"
    );
    assert_link_order(j.get("Links"));
}

#[test]
fn enterprise_manager_root() {
    let (_, j) = run(
        "enterprise_manager",
        &enterprise_manager(),
        "EnterpriseManager",
    );
    assert_eq!(j.keys(), ["SupportedVersions", "Links", "Href", "Type"]);
    assert_eq!(j.get("Href"), &J::Null);
    assert_eq!(j.get("Type"), &J::Null);
    let versions = j.get("SupportedVersions").get("SupportedVersions").items();
    assert_eq!(versions.len(), 3);
    assert_eq!(versions[2].keys(), ["Links", "Name"]);
    assert_eq!(versions[2].get("Name"), &J::Str("v1_7".into()));
    assert_eq!(
        versions[2].get("Links").items()[0].get("Href"),
        &J::Str(format!("{API}/sessionMngr/?v=v1_7"))
    );
    assert_link_order(j.get("Links"));
}

#[test]
fn logon_session() {
    let (_, j) = run("logon_session", &common::logon_session(), "LogonSession");
    assert_eq!(j.keys(), ["UserName", "SessionId", "Links", "Href", "Type"]);
    assert_link_order(j.get("Links"));
}

#[test]
fn logon_session_list() {
    let list: LogonSessionList = EntityList(vec![common::logon_session()]);
    let (_, j) = run("logon_sessions", &list, "LogonSessions");
    assert_eq!(j.keys(), ["LogonSessions"]);
}

#[test]
fn entity_reference() {
    let (attrs, j) = run("entity_ref", &vm_point_ref(), "EntityRef");
    assert_eq!(j.keys(), ["Links", "UID", "Name", "Href", "Type"]);
    let names: Vec<_> = attrs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names[..4], ["UID", "Name", "Href", "Type"]);
    assert_link_order(j.get("Links"));
}

#[test]
fn entity_references() {
    let (_, j) = run(
        "entity_references",
        &EntityReferences(vec![server_ref(), vm_point_ref()]),
        "EntityReferences",
    );
    assert_eq!(j.keys(), ["Refs"]);
    for r in j.get("Refs").items() {
        assert_eq!(r.keys(), ["Links", "UID", "Name", "Href", "Type"]);
    }
}

#[test]
fn empty_entity_references() {
    let (_, j) = run(
        "entity_references_empty",
        &EntityReferences(vec![]),
        "EntityReferences",
    );
    assert_eq!(j.get("Refs").items().len(), 0);
}

#[test]
fn backup_server() {
    let (_, j) = run("backup_server", &common::backup_server(), "BackupServer");
    assert_eq!(
        j.keys()[..5],
        [
            "Description",
            "Port",
            "Version",
            "WcfPort",
            "VbrCertificateThumbprint"
        ]
    );
    assert_eq!(j.get("Port"), &J::Num("9392".into()));
    assert_entity_tail(&j);
}

#[test]
fn backup_servers() {
    let list: BackupServers = EntityList(vec![common::backup_server()]);
    let (_, j) = run("backup_servers", &list, "BackupServers");
    assert_eq!(j.keys(), ["BackupServers"]);
    assert_entity_tail(&j.get("BackupServers").items()[0]);
}

#[test]
fn empty_entity_list_is_an_empty_array() {
    let list: BackupServers = EntityList(vec![]);
    let (_, j) = run("backup_servers_empty", &list, "BackupServers");
    assert_eq!(j.get("BackupServers"), &J::Arr(vec![]));
}

#[test]
fn backup() {
    let (_, j) = run("backup", &common::backup(), "Backup");
    assert_eq!(j.keys()[..2], ["Platform", "BackupType"]);
    assert_entity_tail(&j);
    let list: Backups = EntityList(vec![common::backup()]);
    run("backups", &list, "Backups");
}

#[test]
fn restore_point() {
    let (_, j) = run("restore_point", &common::restore_point(), "RestorePoint");
    assert_eq!(j.keys()[0], "BackupDateUTC");
    assert_eq!(j.get("Name"), &J::Str("May 17 2024  9:03PM".into()));
    assert_entity_tail(&j);
    let list: RestorePoints = EntityList(vec![common::restore_point()]);
    run("restore_points", &list, "RestorePoints");
}

#[test]
fn vm_restore_point() {
    let (_, j) = run(
        "vm_restore_point",
        &common::vm_restore_point(),
        "VmRestorePoint",
    );
    assert_eq!(
        j.keys()[..7],
        [
            "CreationTimeUTC",
            "VmName",
            "Algorithm",
            "PointType",
            "HierarchyObjRef",
            "SqlInfo",
            "VmDisplayName"
        ]
    );
    assert_entity_tail(&j);
    let list: VmRestorePoints = EntityList(vec![common::vm_restore_point()]);
    let (_, j) = run("vm_restore_points", &list, "VmRestorePoints");
    assert_eq!(j.keys(), ["VmRestorePoints"]);
}

#[test]
fn hierarchy_root() {
    let (_, j) = run("hierarchy_root", &common::hierarchy_root(), "HierarchyRoot");
    assert_eq!(j.keys()[..3], ["HierarchyRootId", "UniqueId", "HostType"]);
    assert_entity_tail(&j);
    let list: HierarchyRoots = EntityList(vec![common::hierarchy_root()]);
    run("hierarchy_roots", &list, "HierarchyRoots");
}

#[test]
fn backup_file() {
    let (_, j) = run("backup_file", &common::backup_file(), "BackupFile");
    assert_eq!(
        j.keys()[..7],
        [
            "FilePath",
            "BackupSize",
            "DataSize",
            "DeduplicationRatio",
            "CompressRatio",
            "CreationTimeUtc",
            "FileType"
        ]
    );
    assert_eq!(j.get("CompressRatio"), &J::Num("2".into()));
    assert_entity_tail(&j);
    let list: BackupFiles = EntityList(vec![common::backup_file()]);
    run("backup_files", &list, "BackupFiles");
}

#[test]
fn task_running_has_null_result() {
    let (_, j) = run("task_running", &common::task_running(), "Task");
    assert_eq!(
        j.keys(),
        [
            "TaskId",
            "State",
            "Operation",
            "Result",
            "Links",
            "Href",
            "Type"
        ]
    );
    assert_eq!(j.get("Result"), &J::Null);
}

#[test]
fn task_finished_has_result_object() {
    let (_, j) = run("task_finished", &common::task_finished(), "Task");
    assert_eq!(j.get("Result").keys(), ["Message", "Success"]);
    assert_eq!(j.get("Result").get("Success"), &J::Bool(true));
    let list: Tasks = EntityList(vec![common::task_finished()]);
    let (_, j) = run("tasks", &list, "Tasks");
    assert_eq!(j.keys(), ["Tasks"]);
}

#[test]
fn restore_session() {
    let (_, j) = run(
        "restore_session",
        &common::restore_session(),
        "RestoreSession",
    );
    assert_eq!(
        j.keys(),
        [
            "RestoredObjRef",
            "VmDisplayName",
            "JobUid",
            "JobName",
            "JobType",
            "CreationTimeUTC",
            "EndTimeUTC",
            "State",
            "Result",
            "Progress",
            "FailureMessage",
            "Name",
            "UID",
            "Links",
            "Href",
            "Type"
        ]
    );
    assert_entity_tail(&j);
    let list: RestoreSessions = EntityList(vec![common::restore_session()]);
    run("restore_sessions", &list, "RestoreSessions");
}

#[test]
fn error_bodies() {
    let (_, j) = run("error", &error_bad_request(), "Error");
    // Alphabetical, as the real server sends (JSON.md B11).
    assert_eq!(
        j.keys(),
        [
            "FirstChanceExceptionMessage",
            "Message",
            "StackTrace",
            "Status",
            "StatusCode"
        ]
    );
    run("error_with_exception", &error_with_exception(), "Error");
}

#[test]
fn fallback_error_bodies_parse() {
    check_xml(fallback_error_body(Format::Xml), "Error");
    let j = check_json(fallback_error_body(Format::Json));
    assert_eq!(j.get("StatusCode"), &J::Num("500".into()));
}

#[test]
fn sniffs_body_format() {
    assert_eq!(Format::sniff(b"  <?xml version"), Some(Format::Xml));
    assert_eq!(
        Format::sniff(b"\xEF\xBB\xBF\n{\"VmRestoreSpec\":{}}"),
        Some(Format::Json)
    );
    assert_eq!(Format::sniff(b"   "), None);
    assert_eq!(Format::sniff(b"a=b"), None);
}

#[test]
fn content_types() {
    assert_eq!(Format::Xml.content_type(), "application/xml");
    assert_eq!(Format::Json.content_type(), "application/json");
}

// ---- security (accounts_and_roles_intro.md) ----

const ACCOUNT_ID: &str = "9570aed1-7eff-4684-b77a-7735bdbe820d";
const ROLE_ID: &str = "d19a3d33-cb77-4ffe-94e6-001432483a4e";

fn account(flr: bool) -> EnterpriseAccount {
    let path = format!("/security/accounts/{ACCOUNT_ID}");
    EnterpriseAccount {
        href: format!("{API}{path}?format=Entity"),
        name: "TECH\\william.fox".into(),
        uid: format!("urn:veeam:EnterpriseAccount:{ACCOUNT_ID}"),
        links: vec![
            link("Alternate", &path, None, Some("EnterpriseAccountReference")),
            link(
                "Down",
                &format!("{path}/roles"),
                None,
                Some("EnterpriseAccountInRoleList"),
            ),
            link("Delete", &path, None, None),
        ],
        account_type: "User".into(),
        allow_restore_all_vms: false,
        flr_settings: flr.then(|| FileRestoreSettings {
            flr_inplace_only: true,
            flr_extention_restrictions: Some("doc,pptx".into()),
        }),
        sql_settings: flr.then_some(SqlRestoreSettings {
            deny_in_place_restore: true,
        }),
    }
}

#[test]
fn security_settings() {
    let rep = EnterpriseSecuritySettings {
        href: format!("{API}/security"),
        links: vec![
            link(
                "Down",
                "/security/accounts",
                None,
                Some("EnterpriseAccountReferenceList"),
            ),
            link("Create", "/security/accounts", None, None),
        ],
    };
    let (_, j) = run("security_settings", &rep, "EnterpriseSecuritySettings");
    assert_eq!(j.keys(), ["Links", "Href", "Type"]);
}

#[test]
fn enterprise_account_with_and_without_restore_settings() {
    let (_, j) = run("enterprise_account", &account(true), "EnterpriseAccount");
    assert_eq!(
        j.keys()[..4],
        [
            "AccountType",
            "AllowRestoreAllVms",
            "FlrSettings",
            "SqlSettings"
        ]
    );
    assert_eq!(
        j.get("FlrSettings").keys(),
        ["FlrInplaceOnly", "FlrExtentionRestrictions"]
    );
    assert_entity_tail(&j);
    // Unset settings: null in JSON, no element in XML (JSON.md A8).
    let (_, j) = run(
        "enterprise_account_plain",
        &account(false),
        "EnterpriseAccount",
    );
    assert_eq!(j.get("FlrSettings"), &J::Null);
    let xml = String::from_utf8(encode(&account(false), Format::Xml)).unwrap();
    assert!(!xml.contains("FlrSettings"), "{xml}");
}

#[test]
fn enterprise_accounts_and_roles_lists() {
    let list: EnterpriseAccounts = EntityList(vec![account(false)]);
    let (_, j) = run("enterprise_accounts", &list, "EnterpriseAccounts");
    assert_eq!(j.keys(), ["EnterpriseAccounts"]);
    let role = EnterpriseRole {
        href: format!("{API}/security/roles/{ROLE_ID}?format=Entity"),
        name: "Portal User".into(),
        uid: format!("urn:veeam:EnterpriseRole:{ROLE_ID}"),
        links: vec![link(
            "Alternate",
            &format!("/security/roles/{ROLE_ID}"),
            None,
            Some("EnterpriseRoleReference"),
        )],
    };
    let (_, j) = run("enterprise_role", &role, "EnterpriseRole");
    assert_entity_tail(&j);
    let list: EnterpriseRoles = EntityList(vec![role]);
    let (_, j) = run("enterprise_roles", &list, "EnterpriseRoles");
    assert_eq!(j.keys(), ["EnterpriseRoles"]);
}

#[test]
fn account_roles_and_scopes() {
    let href = format!("{API}/security/accounts/{ACCOUNT_ID}/roles/{ROLE_ID}");
    let roles: EnterpriseAccountInRoleList = EntityList(vec![EnterpriseAccountInRole {
        href: href.clone(),
        links: vec![Link::new("Delete", href, None, None)],
        role_name: "Portal User".into(),
    }]);
    let (_, j) = run("account_roles", &roles, "EnterpriseAccountInRoleList");
    let item = &j.get("EnterpriseAccountInRoleList").items()[0];
    assert_eq!(item.keys(), ["RoleName", "Links", "Href", "Type"]);
    let href = format!("{API}/security/accounts/{ACCOUNT_ID}/scopes/{ROLE_ID}");
    let scopes: EnterpriseAccountHierarchyScopes =
        EntityList(vec![EnterpriseAccountHierarchyScope {
            href: href.clone(),
            links: vec![Link::new(
                "Delete",
                href,
                None,
                Some("EnterpriseAccountHierarchyScope"),
            )],
            name: "Production".into(),
            hierarchy_root_name: "vcprod.tech.local".into(),
            platform: "VMware".into(),
            hierarchy_object_type: "Datastore".into(),
            state: "Processed".into(),
        }]);
    let (_, j) = run(
        "account_scopes",
        &scopes,
        "EnterpriseAccountHierarchyScopes",
    );
    let item = &j.get("EnterpriseAccountHierarchyScopes").items()[0];
    // scenario_restore_scope.md's element order.
    assert_eq!(
        item.keys(),
        [
            "Name",
            "HierarchyRootName",
            "Platform",
            "HierarchyObjectType",
            "State",
            "Links",
            "Href",
            "Type"
        ]
    );
}

// ---- backup jobs and sessions (issue 3) ----

const JOB_ID: &str = "9eaf0b1c-2d34-45f6-8718-8c9d0e1f2a0a";
const JOB_SESSION_ID: &str = "af0b1c2d-3e45-4607-9829-9d0e1f2a3b0b";
const TASK_SESSION_ID: &str = "b0c1d2e3-f456-4718-a93a-0e1f2a3b4c0c";
const OBJECT_ID: &str = "c1d2e3f4-0567-4829-ba4b-1f2a3b4c5d0d";

fn job_session_name() -> String {
    format!("{JOB_NAME}@{}", session_start().session_name_part())
}

fn object_in_job() -> ObjectInJob {
    ObjectInJob {
        href: format!("{API}/jobs/{JOB_ID}/includes/{OBJECT_ID}"),
        object_in_job_id: OBJECT_ID.to_owned(),
        hierarchy_obj_ref: VM_REF.to_owned(),
        name: VM.to_owned(),
        display_name: VM.to_owned(),
    }
}

fn job() -> Job {
    let path = format!("/jobs/{JOB_ID}");
    Job {
        href: format!("{API}{path}?format=Entity"),
        name: JOB_NAME.to_owned(),
        uid: format!("urn:veeam:Job:{JOB_ID}"),
        links: vec![
            link(
                "Up",
                &format!("/backupServers/{SERVER_ID}"),
                Some(SERVER_NAME),
                Some("BackupServerReference"),
            ),
            link("Alternate", &path, Some(JOB_NAME), Some("JobReference")),
            link(
                "Down",
                &format!("{path}/includes"),
                None,
                Some("ObjectInJobList"),
            ),
            link(
                "Down",
                &format!("{path}/backupSessions"),
                None,
                Some("BackupJobSessionReferenceList"),
            ),
            link("Start", &format!("{path}?action=start"), None, None),
            link("Stop", &format!("{path}?action=stop"), None, None),
            link("Retry", &format!("{path}?action=retry"), None, None),
        ],
        job_type: "Backup".to_owned(),
        platform: "VMware".to_owned(),
        description: "Created by emrest".to_owned(),
        schedule_configured: false,
        schedule_enabled: false,
        next_run: None,
        schedule: None,
        includes: vec![object_in_job()],
        retain_cycles: 7,
    }
}

/// A job run every weekday at 22:00 (+02:00), retried, inside a backup window.
fn scheduled_job() -> Job {
    let all_day = "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1";
    Job {
        schedule_configured: true,
        schedule_enabled: true,
        next_run: Some(UtcTime::from_unix_millis(1_772_395_200_000)),
        schedule: Some(emrest_wire::JobScheduleOptions {
            retry_options: Some(emrest_wire::RetryOptions {
                retry_times: Some(3),
                retry_timeout: Some(10),
                retry_specified: Some(true),
            }),
            options_daily: Some(emrest_wire::OptionsDaily {
                enabled: true,
                kind: Some("WeekDays".into()),
                days: ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
                    .map(String::from)
                    .to_vec(),
                time: Some("22:00:00.0000000+02:00".into()),
                time_offset_utc: Some("2".into()),
            }),
            options_backup_window: Some(emrest_wire::OptionsBackupWindow {
                enabled: true,
                time_periods: ["Sunday", "Monday"]
                    .map(|d| emrest_wire::DayHours {
                        name: d.into(),
                        value: all_day.into(),
                    })
                    .to_vec(),
            }),
            ..emrest_wire::JobScheduleOptions::default()
        }),
        ..job()
    }
}

#[test]
fn scheduled_job_entity() {
    let (_, j) = run("job_scheduled", &scheduled_job(), "Job");
    let daily = j
        .get("JobScheduleOptions")
        .get("Standart")
        .get("OptionsDaily");
    assert_eq!(
        daily.keys(),
        ["Kind", "Days", "Time", "TimeOffsetUtc", "Enabled"]
    );
}

fn job_session(running: bool) -> BackupJobSession {
    let path = format!("/backupSessions/{JOB_SESSION_ID}");
    let mut links = vec![
        link(
            "Up",
            &format!("/backupServers/{SERVER_ID}"),
            Some(SERVER_NAME),
            Some("BackupServerReference"),
        ),
        link(
            "Up",
            &format!("/jobs/{JOB_ID}"),
            Some(JOB_NAME),
            Some("JobReference"),
        ),
        link(
            "Alternate",
            &path,
            Some(&job_session_name()),
            Some("BackupJobSessionReference"),
        ),
        link(
            "Down",
            &format!("{path}/taskSessions"),
            None,
            Some("BackupTaskSessionReferenceList"),
        ),
        link("Stop", &format!("{path}?action=stop"), None, None),
    ];
    if !running {
        links.push(link(
            "Related",
            &format!("/restorePoints/{POINT_ID}"),
            Some(&point_name()),
            Some("RestorePointReference"),
        ));
    }
    BackupJobSession {
        href: format!("{API}{path}?format=Entity"),
        name: job_session_name(),
        uid: format!("urn:veeam:BackupJobSession:{JOB_SESSION_ID}"),
        links,
        job_uid: format!("urn:veeam:Job:{JOB_ID}"),
        job_name: JOB_NAME.to_owned(),
        job_type: "Backup".to_owned(),
        creation_time_utc: session_start(),
        end_time_utc: (!running).then(|| UtcTime::from_civil(2024, 6, 2, 8, 17, 30, 0).unwrap()),
        state: if running {
            SessionState::Working
        } else {
            SessionState::Stopped
        },
        result: if running {
            SessionResult::None
        } else {
            SessionResult::Success
        },
        progress: if running { 42 } else { 100 },
        failure_message: None,
        is_retry: false,
    }
}

fn task_session() -> BackupTaskSession {
    let path = format!("/backupTaskSessions/{TASK_SESSION_ID}");
    let name = format!("{VM}@{}", session_start().session_name_part());
    BackupTaskSession {
        href: format!("{API}{path}?format=Entity"),
        name: name.clone(),
        uid: format!("urn:veeam:BackupTaskSession:{TASK_SESSION_ID}"),
        vm_display_name: VM.to_owned(),
        links: vec![
            link(
                "Up",
                &format!("/backupServers/{SERVER_ID}"),
                Some(SERVER_NAME),
                Some("BackupServerReference"),
            ),
            link(
                "Up",
                &format!("/backupSessions/{JOB_SESSION_ID}"),
                Some(&job_session_name()),
                Some("BackupJobSessionReference"),
            ),
            link(
                "Alternate",
                &path,
                Some(&name),
                Some("BackupTaskSessionReference"),
            ),
            link(
                "Related",
                &format!("/vmRestorePoints/{VM_POINT_ID}?format=Entity"),
                Some(&vm_point_name()),
                Some("VmRestorePoint"),
            ),
        ],
        job_session_uid: format!("urn:veeam:BackupJobSession:{JOB_SESSION_ID}"),
        creation_time_utc: session_start(),
        end_time_utc: Some(UtcTime::from_civil(2024, 6, 2, 8, 17, 29, 500).unwrap()),
        state: BackupTaskSessionState::Completed,
        result: SessionResult::Success,
        reason: String::new(),
        total_size: 64424509440,
        vm_uid: VM_REF.to_owned(),
    }
}

#[test]
fn job_entity() {
    let (_, j) = run("job", &job(), "Job");
    assert_eq!(
        j.keys(),
        [
            "JobType",
            "Platform",
            "Description",
            "ScheduleConfigured",
            "ScheduleEnabled",
            "NextRun",
            "JobScheduleOptions",
            "JobInfo",
            "Name",
            "UID",
            "Links",
            "Href",
            "Type"
        ]
    );
    let info = j.get("JobInfo").get("BackupJobInfo");
    let objects = info.get("Includes").get("ObjectInJobs").items();
    assert_eq!(
        objects[0].keys(),
        [
            "ObjectInJobId",
            "HierarchyObjRef",
            "Name",
            "DisplayName",
            "GuestProcessingOptions",
            "Links",
            "Href",
            "Type"
        ]
    );
    assert_eq!(
        info.get("SimpleRetentionPolicy").get("RetainCycles"),
        &J::Num("7".into())
    );
    assert_entity_tail(&j);
    let list: EntityList<Job> = EntityList(vec![job()]);
    let (_, j) = run("jobs", &list, "Jobs");
    assert_eq!(j.keys(), ["Jobs"]);
}

#[test]
fn objects_in_job() {
    let (_, j) = run(
        "objects_in_job",
        &ObjectsInJob(vec![object_in_job()]),
        "ObjectsInJob",
    );
    // The JSON key is the property name, not the XML root (JSON.md A3).
    assert_eq!(j.keys(), ["ObjectInJobs"]);
    assert_eq!(j.get("ObjectInJobs").items()[0].get("Links"), &J::Null);
}

#[test]
fn backup_job_session() {
    let (_, j) = run(
        "backup_job_session",
        &job_session(false),
        "BackupJobSession",
    );
    // JSON.md A5, verified on a real v12 reply.
    assert_eq!(
        j.keys(),
        [
            "IsRetry",
            "JobUid",
            "JobName",
            "JobType",
            "CreationTimeUTC",
            "EndTimeUTC",
            "State",
            "Result",
            "Progress",
            "FailureMessage",
            "Name",
            "UID",
            "Links",
            "Href",
            "Type"
        ]
    );
    // veeam_exporter reads Links[0].Name as the backup server's name (JSON.md D3).
    let first = &j.get("Links").items()[0];
    assert_eq!(first.get("Type"), &J::Str("BackupServerReference".into()));
    assert_eq!(first.get("Name"), &J::Str(SERVER_NAME.into()));
    let (_, j) = run(
        "backup_job_session_running",
        &job_session(true),
        "BackupJobSession",
    );
    assert_eq!(j.get("Result"), &J::Str("None".into()));
    assert_eq!(j.get("EndTimeUTC"), &J::Null);
    let list: EntityList<BackupJobSession> = EntityList(vec![job_session(false)]);
    let (_, j) = run("backup_job_sessions", &list, "BackupJobSessions");
    assert_eq!(j.keys(), ["BackupJobSessions"]);
}

#[test]
fn backup_task_session() {
    let (attrs, j) = run("backup_task_session", &task_session(), "BackupTaskSession");
    assert_eq!(
        j.keys(),
        [
            "JobSessionUid",
            "CreationTimeUTC",
            "EndTimeUTC",
            "State",
            "Result",
            "Reason",
            "TotalSize",
            "VmUid",
            "VmDisplayName",
            "Name",
            "UID",
            "Links",
            "Href",
            "Type"
        ]
    );
    assert_eq!(j.get("Reason"), &J::Str(String::new()));
    assert_eq!(j.get("TotalSize"), &J::Num("64424509440".into()));
    assert!(attrs.iter().any(|(k, v)| k == "VmDisplayName" && v == VM));
    let list: EntityList<BackupTaskSession> = EntityList(vec![task_session()]);
    let (_, j) = run("backup_task_sessions", &list, "BackupTaskSessions");
    assert_eq!(j.keys(), ["BackupTaskSessions"]);
}

// ---- /repositories and /reports/summary (get_repositories_id.md, get_reports_summary*.md) ----

fn repository() -> Repository {
    let path = format!("/repositories/{REPO_ID}");
    Repository {
        href: format!("{API}{path}?format=Entity"),
        name: "emrest repository".into(),
        uid: format!("urn:veeam:Repository:{REPO_ID}"),
        links: vec![
            link(
                "Up",
                &format!("/backupServers/{SERVER_ID}"),
                Some(SERVER_NAME),
                Some("BackupServerReference"),
            ),
            link(
                "Alternate",
                &path,
                Some("emrest repository"),
                Some("RepositoryReference"),
            ),
            link(
                "Down",
                &format!("{path}/backups"),
                None,
                Some("BackupReferenceList"),
            ),
        ],
        capacity: 107_374_182_400,
        free_space: 53_687_091_200,
        kind: "LinuxLocal".into(),
    }
}

#[test]
fn repository_entity_and_list() {
    let (_, j) = run("repository", &repository(), "Repository");
    // Real member order (JSON.md A5, HAE-v12).
    assert_eq!(
        j.keys(),
        [
            "Capacity",
            "FreeSpace",
            "Kind",
            "Name",
            "UID",
            "Links",
            "Href",
            "Type"
        ]
    );
    assert_eq!(j.get("Capacity"), &J::Num("107374182400".into()));
    assert_entity_tail(&j);
    let list: RepositoryList = EntityList(vec![repository()]);
    let (_, j) = run("repositories", &list, "Repositories");
    assert_eq!(j.keys(), ["Repositories"]);
}

#[test]
fn summary_report_frames() {
    let (_, j) = run(
        "summary_report",
        &SummaryReport {
            href: format!("{API}/reports/summary"),
            links: vec![link(
                "Down",
                "/reports/summary/overview",
                None,
                Some("OverviewReportFrame"),
            )],
        },
        "SummaryReport",
    );
    assert_eq!(j.keys(), ["Links", "Href", "Type"]);

    let (_, j) = run(
        "overview_report_frame",
        &OverviewReportFrame {
            href: format!("{API}/reports/summary/overview"),
            links: Vec::new(),
            backup_servers: 1,
            proxy_servers: 0,
            repository_servers: 1,
            running_jobs: 0,
            scheduled_jobs: 0,
            successful_vm_latest_states: 5,
            warning_vm_latest_states: 0,
            failed_vm_latest_states: 1,
        },
        "OverviewReportFrame",
    );
    // The keys veeam_exporter reads, spelled as the real server does (JSON.md D3).
    assert_eq!(j.get("SuccessfulVmLastestStates"), &J::Num("5".into()));
    assert_eq!(j.get("Links"), &J::Null);

    let (_, j) = run(
        "vms_overview_report_frame",
        &VmsOverviewReportFrame {
            href: format!("{API}/reports/summary/vms_overview"),
            links: Vec::new(),
            protected_vms: 6,
            backed_up_vms: 6,
            replicated_vms: 0,
            restore_points: 12,
            full_backup_points_size: 1000,
            incremental_backup_points_size: 20,
            replica_restore_points_size: 0,
            source_vms_size: 70_944_288_914,
            success_backup_percents: 100,
            protected_vms_report_link: None,
        },
        "VmsOverviewReportFrame",
    );
    assert_eq!(
        j.keys()[..3],
        ["ProtectedVms", "BackedUpVms", "ReplicatedVms"]
    );
    assert_eq!(j.get("SourceVmsSize"), &J::Num("70944288914".into()));

    let (_, j) = run(
        "job_statistics_report_frame",
        &JobStatisticsReportFrame {
            href: format!("{API}/reports/summary/job_statistics"),
            links: Vec::new(),
            running_jobs: 0,
            scheduled_jobs: 0,
            scheduled_backup_jobs: 0,
            scheduled_replica_jobs: 0,
            total_job_runs: 3,
            successful_job_runs: 2,
            warnings_job_runs: 0,
            failed_job_runs: 1,
            max_job_duration: 42,
            max_backup_job_duration: 42,
            max_replica_job_duration: 0,
            max_duration_backup_job_name: JOB_NAME.into(),
            max_duration_replica_job_name: String::new(),
            backup_job_status_report_link: None,
        },
        "JobStatisticsReportFrame",
    );
    assert_eq!(j.get("MaxDurationBackupJobName"), &J::Str(JOB_NAME.into()));

    let (attrs, j) = run(
        "repository_report_frame",
        &RepositoryReportFrame {
            href: format!("{API}/reports/summary/repository"),
            links: Vec::new(),
            periods: vec![RepositoryPeriod {
                name: "emrest repository".into(),
                capacity: 100,
                free_space: 40,
                backup_size: 7,
            }],
            capacity_planning_report_link: None,
        },
        "RepositoryReportFrame",
    );
    // The `veeam` client reads Periods[i].FreeSpace and .Capacity (JSON.md D1).
    let p = &j.get("Periods").items()[0];
    assert_eq!(p.keys(), ["Name", "Capacity", "FreeSpace", "BackupSize"]);
    assert!(!attrs.iter().any(|(k, _)| k == "CapacityPlanningReportLink"));

    let (_, j) = run(
        "processed_vms_report_frame",
        &ProcessedVmsReportFrame {
            href: format!("{API}/reports/summary/processed_vms"),
            links: Vec::new(),
            days: vec![ProcessedVmsDay {
                timestamp: point_time(),
                replicated_vms: 0,
                backuped_vms: 6,
            }],
        },
        "ProcessedVmsReportFrame",
    );
    let d = &j.get("Days").items()[0];
    assert_eq!(d.keys(), ["Timestamp", "ReplicatedVms", "BackupedVms"]);
}

// ---- The query and lookup services (query_service.md, pagesize_and_page.md, querysvc.md,
// lookupsvc.md, lookup_query.md; JSON.md B9, B10) ----

/// Page 2 of 3 of a query: First, Previous, Next, Last, in that order.
fn paging_info(query: &str) -> PagingInfo {
    let page = |rel: &str, n: u32| {
        link(
            rel,
            &format!("/query?{query}&pageSize=1&page={n}"),
            None,
            None,
        )
    };
    PagingInfo {
        links: vec![
            page("First", 1),
            page("Previous", 1),
            page("Next", 3),
            page("Last", 3),
        ],
        page_num: 2,
        page_size: 1,
        pages_count: 3,
    }
}

fn assert_paging_info(j: &J) {
    let p = j.get("PagingInfo");
    assert_eq!(p.keys(), ["Links", "PageNum", "PageSize", "PagesCount"]);
    assert_link_order(p.get("Links"));
    let rels: Vec<&J> = p
        .get("Links")
        .items()
        .iter()
        .map(|l| l.get("Rel"))
        .collect();
    assert_eq!(
        rels,
        ["First", "Previous", "Next", "Last"]
            .map(|r| J::Str(r.into()))
            .iter()
            .collect::<Vec<_>>()
    );
    assert_eq!(p.get("PageNum"), &J::Num("2".into()));
}

#[test]
fn query_result_of_references() {
    let rep = QueryResult {
        content: QueryContent::Refs(vec![vm_point_ref()]),
        paging_info: paging_info("type=VmRestorePoint&filter=VmName%3d%3d%22web-frontend-02%22"),
    };
    let (_, j) = run("query_result_refs", &rep, "QueryResult");
    assert_eq!(
        j.keys(),
        ["Refs", "Entities", "Resources", "Links", "PagingInfo"]
    );
    assert_eq!(j.get("Refs").get("Refs").items().len(), 1);
    assert_eq!(j.get("Entities"), &J::Null);
    assert_eq!(j.get("Resources"), &J::Null);
    assert_eq!(j.get("Links"), &J::Null);
    assert_paging_info(&j);
}

#[test]
fn query_result_of_entities() {
    let rep = QueryResult {
        content: QueryContent::Entities(TypedList::of(&[common::vm_restore_point()])),
        paging_info: paging_info("type=VmRestorePoint&format=Entities"),
    };
    let (_, j) = run("query_result_entities", &rep, "QueryResult");
    let e = j.get("Entities");
    // Every member of the real EntitiesType, in its order, null except the one queried.
    assert_eq!(e.keys(), ENTITIES_MEMBERS);
    for (k, v) in match e {
        J::Obj(v) => v,
        _ => unreachable!(),
    } {
        assert_eq!(v == &J::Null, k != "VmRestorePoints", "{k}");
    }
    let points = e.get("VmRestorePoints").get("VmRestorePoints").items();
    assert_eq!(points[0].get("VmName"), &J::Str(VM.into()));
    assert_paging_info(&j);
}

#[test]
fn query_result_of_tasks_and_an_empty_result() {
    let rep = QueryResult {
        content: QueryContent::Tasks(vec![task_finished()]),
        paging_info: paging_info("type=Task&format=Entities"),
    };
    let (_, j) = run("query_result_tasks", &rep, "QueryResult");
    assert_eq!(j.get("Resources").keys(), RESOURCES_MEMBERS);
    assert_eq!(
        j.get("Resources").get("Tasks").get("Tasks").items().len(),
        1
    );

    let empty = QueryResult {
        content: QueryContent::Entities(TypedList::empty("Repositories", "Repository")),
        paging_info: PagingInfo {
            links: vec![
                link(
                    "First",
                    "/query?type=Repository&format=Entities&pageSize=100&page=1",
                    None,
                    None,
                ),
                link(
                    "Last",
                    "/query?type=Repository&format=Entities&pageSize=100&page=1",
                    None,
                    None,
                ),
            ],
            page_num: 1,
            page_size: 100,
            pages_count: 1,
        },
    };
    let (_, j) = run("query_result_empty", &empty, "QueryResult");
    // Clients call len() on the queried list: `[]`, never null (JSON.md A7.5).
    assert_eq!(
        j.get("Entities").get("Repositories").get("Repositories"),
        &J::Arr(Vec::new())
    );
}

#[test]
fn query_and_lookup_service_documents() {
    let up = link(
        "Up",
        &format!("/logonSessions/{LOGON_ID}"),
        None,
        Some("LogonSession"),
    );
    let svc = ServiceDocument::query_service(
        format!("{API}/querySvc"),
        vec![
            up.clone(),
            link(
                "Down",
                "/query?type=VmRestorePoint&format=Entities&sortAsc=name&pageSize=15&page=1",
                None,
                Some("VmRestorePointList"),
            ),
        ],
    );
    let (attrs, j) = run("query_svc", &svc, "QuerySvc");
    assert_eq!(j.keys(), ["Links", "Href", "Type"]);
    assert!(attrs.contains(&("Type".into(), "QueryService".into())));
    let svc = ServiceDocument::lookup_service(
        format!("{API}/lookupSvc"),
        vec![
            up,
            link(
                "Down",
                &format!("/lookup?host=urn%3aveeam%3aHierarchyRoot%3a{ROOT_ID}&name=*&type=Vm"),
                None,
                Some("HierarchyItemList"),
            ),
        ],
    );
    let (attrs, j) = run("lookup_svc", &svc, "LookupSvc");
    assert_eq!(j.keys(), ["Links", "Href", "Type"]);
    assert!(attrs.contains(&("Type".into(), "LookupService".into())));
}

#[test]
fn hierarchy_items() {
    let items: HierarchyItems = EntityList(vec![
        HierarchyItem {
            object_ref: VM_REF.into(),
            object_type: "Vm".into(),
            object_name: VM.into(),
        },
        HierarchyItem {
            object_ref: format!("urn:VMware:Datastore:{ROOT_ID}.datastore-12"),
            object_type: "Datastore".into(),
            object_name: "ssd-01".into(),
        },
    ]);
    let (_, j) = run("hierarchy_items", &items, "HierarchyItems");
    let first = &j.get("HierarchyItems").items()[0];
    // GOXSD member order (JSON.md B10); no links, no Href.
    assert_eq!(
        first.keys(),
        [
            "ObjectRef",
            "ObjectType",
            "ObjectName",
            "Links",
            "Href",
            "Type"
        ]
    );
    assert_eq!(first.get("Href"), &J::Null);
    assert_eq!(first.get("Type"), &J::Str("HierarchyItem".into()));
}
