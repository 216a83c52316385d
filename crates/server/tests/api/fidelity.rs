//! Fidelity of the served API as a whole: every XML answer reachable by following links
//! validates against docs/schema/emrest.xsd and no link is dead; a backup server's documented
//! sub-collections; deep paging with ties across page boundaries.

use crate::common::*;
use crate::query::insert_synthetic_points;
use axum::http::StatusCode;
use emrest_core::PointType;
use std::collections::{BTreeSet, HashSet, VecDeque};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn schema() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/schema/emrest.xsd")
}

/// Validates one XML document with xmllint; `Err` carries xmllint's messages. xmllint is
/// required (`scripts/test` installs libxml2-utils): without it this panics with the command that
/// installs it rather than skipping.
pub(crate) fn validate(xml: &[u8]) -> Result<(), String> {
    let mut child = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(schema())
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "xmllint is required: install it with `scripts/test --install-only` \
                 (or `apt-get install libxml2-utils`): {e}"
            )
        });
    child.stdin.take().unwrap().write_all(xml).unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Links a client follows with GET.
const FOLLOWED: &[&str] = &[
    "Up",
    "Down",
    "Alternate",
    "Related",
    "First",
    "Last",
    "Next",
];

#[tokio::test(flavor = "multi_thread")]
async fn every_reachable_xml_answer_matches_the_schema_and_no_link_is_dead() {
    let w = World::new(ONE_MIB).await;
    // A restore, so tasks and restore sessions exist to be crawled.
    let point = w.point("db01", PointType::Increment).await;
    w.restore_ok(
        point.id,
        JSON,
        r#"{"VmRestoreSpec":{"PowerOnAfterRestore":false,"QuickRollback":false}}"#,
    )
    .await;

    let mut queue: VecDeque<String> = VecDeque::from(vec![
        "/api/".to_string(),
        "/api/querySvc".into(),
        "/api/lookupSvc".into(),
        "/api/security".into(),
        "/api/reports/summary".into(),
        "/api/jobs".into(),
        "/api/repositories".into(),
        // Tasks link only to themselves with Delete: the one the restore made.
        "/api/tasks/task-1".into(),
    ]);
    // Every collection also as entities, and every query type with paging links.
    for c in [
        "backupServers",
        "backups",
        "restorePoints",
        "vmRestorePoints",
        "hierarchyRoots",
        "backupFiles",
        "restoreSessions",
        "jobs",
        "backupSessions",
        "backupTaskSessions",
        "repositories",
        "security/accounts",
        "security/roles",
    ] {
        queue.push_back(format!("/api/{c}"));
        queue.push_back(format!("/api/{c}?format=Entity"));
    }
    let mut seen: HashSet<String> = queue.iter().cloned().collect();
    let mut failures = Vec::new();
    let mut validated = BTreeSet::new();
    while let Some(uri) = queue.pop_front() {
        let r = w.get_xml(&uri).await;
        if r.status != StatusCode::OK {
            failures.push(format!("{uri}: {} {}", r.status, r.text()));
            continue;
        }
        if r.content_type() != XML {
            continue; // emrest's own extras (the restore log) are text
        }
        if let Err(e) = validate(&r.body) {
            failures.push(format!("{uri}:\n{e}"));
        }
        let root = r.xml();
        validated.insert(root.name.clone());
        let mut stack = vec![&root];
        while let Some(e) = stack.pop() {
            if e.name == "Link" && FOLLOWED.contains(&e.attr("Rel").unwrap_or("")) {
                let path = path_of(e.attr("Href").unwrap());
                // Keep the crawl bounded: one entity of each kind is enough once its
                // collection validated, but every distinct path is checked for being alive.
                if seen.len() < 400 && seen.insert(path.clone()) {
                    queue.push_back(path);
                }
            }
            stack.extend(e.children.iter());
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // The crawl reached every kind of answer emrest gives.
    for root in [
        "EnterpriseManager",
        "LogonSession",
        "EntityReferences",
        "BackupServer",
        "Backup",
        "RestorePoint",
        "VmRestorePoint",
        "HierarchyRoot",
        "BackupFile",
        "Task",
        "RestoreSession",
        "Job",
        "BackupJobSession",
        "BackupTaskSession",
        "Repository",
        "QuerySvc",
        "LookupSvc",
        "QueryResult",
        "HierarchyItems",
        "EnterpriseAccounts",
        "SummaryReport",
        "OverviewReportFrame",
    ] {
        assert!(
            validated.contains(root),
            "{root} not reached: {validated:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn error_bodies_and_bad_queries_match_the_schema() {
    let w = World::new(ONE_MIB).await;
    for uri in [
        "/api/query?type=VmRestorePoint&filter=Colour%3D%3Dred",
        "/api/query?type=Nope",
        "/api/backupServers/not-a-uuid",
        "/api/backupServers/5b1a3c10-0000-4000-8000-000000000000/repositories",
        "/api/nothing",
    ] {
        let r = w.get_xml(uri).await;
        assert!(r.status.is_client_error(), "{uri}: {}", r.status);
        validate(&r.body).unwrap_or_else(|e| panic!("{uri}: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_server_links_its_jobs_and_repositories_in_xml_and_json() {
    let w = World::new(ONE_MIB).await;
    let (server, jobs, repos) = w
        .blocking(|c| {
            (
                c.infrastructure().backup_servers().unwrap()[0].clone(),
                c.view().jobs().unwrap(),
                c.infrastructure().backup_repositories().unwrap(),
            )
        })
        .await;
    let e = w
        .get_json(&format!("/api/backupServers/{}?format=Entity", server.id))
        .await
        .json();
    // get_backupservers_id.md: Down links to /jobs and /repositories.
    let jobs_href = link(&e, "Down", "JobReferenceList");
    let repos_href = link(&e, "Down", "RepositoryReferenceList");
    assert!(jobs_href.ends_with(&format!("/api/backupServers/{}/jobs", server.id)));
    assert!(repos_href.ends_with(&format!("/api/backupServers/{}/repositories", server.id)));

    let want_jobs: BTreeSet<String> = jobs
        .iter()
        .filter(|j| j.backup_server_id == server.id)
        .map(|j| format!("urn:veeam:Job:{}", j.id))
        .collect();
    assert!(!want_jobs.is_empty());
    let want_repos: BTreeSet<String> = repos
        .iter()
        .map(|r| format!("urn:veeam:Repository:{}", r.id))
        .collect();
    for (href, want, item) in [
        (&jobs_href, &want_jobs, "Job"),
        (&repos_href, &want_repos, "Repository"),
    ] {
        let path = path_of(href);
        let refs = w.get_json(&path).await.json();
        let got: BTreeSet<String> = arr(&refs, "Refs")
            .iter()
            .map(|r| r["UID"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(&got, want, "{path}");
        let x = w.get_xml(&format!("{path}?format=Entity")).await.xml();
        let got: BTreeSet<String> = x
            .all(item)
            .iter()
            .map(|e| e.attr("UID").unwrap().to_string())
            .collect();
        assert_eq!(&got, want, "{path} entities");
    }
    // An ID as a full UID works; an unknown server is a 404, a bad ID a 400.
    let r = w
        .get_json(&format!(
            "/api/backupServers/urn:veeam:BackupServer:{}/repositories",
            server.id
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let unknown = uuid::Uuid::new_v4();
    let m = w
        .get_json(&format!("/api/backupServers/{unknown}/jobs"))
        .await
        .json_error(StatusCode::NOT_FOUND);
    assert!(m.contains(&unknown.to_string()), "{m}");
    let m = w
        .get_xml("/api/backupServers/xyz/repositories")
        .await
        .xml_error(StatusCode::BAD_REQUEST);
    assert!(m.contains("'xyz' is not a BackupServer ID"), "{m}");
}

/// Collect the IDs of every page of a query by following Next links (XML or JSON).
async fn all_pages(w: &World, first: &str, json: bool) -> Vec<String> {
    let mut uri = first.to_string();
    let mut ids = Vec::new();
    loop {
        let (page, next) = if json {
            let b = w.get_json(&uri).await.json();
            let page: Vec<String> = arr(&b["Refs"], "Refs")
                .iter()
                .map(|r| r["UID"].as_str().unwrap().to_string())
                .collect();
            let next = arr(&b["PagingInfo"], "Links")
                .iter()
                .find(|l| l["Rel"] == "Next")
                .map(|l| l["Href"].as_str().unwrap().to_string());
            (page, next)
        } else {
            let x = w.get_xml(&uri).await.xml();
            let page: Vec<String> = if x.children.iter().any(|c| c.name == "Refs") {
                x.child("Refs")
                    .all("Ref")
                    .iter()
                    .map(|r| r.attr("UID").unwrap().to_string())
                    .collect()
            } else {
                Vec::new()
            };
            let next = x
                .child("PagingInfo")
                .child("Links")
                .all("Link")
                .iter()
                .find(|l| l.attr("Rel") == Some("Next"))
                .map(|l| l.attr("Href").unwrap().to_string());
            (page, next)
        };
        ids.extend(page);
        match next {
            Some(href) => uri = path_of(&href),
            None => return ids,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn deep_paging_by_100_with_ties_across_pages_returns_each_point_once() {
    let w = World::new(ONE_MIB).await;
    w.blocking(|c| insert_synthetic_points(c, 10_000)).await;
    let all: BTreeSet<String> = w
        .blocking(|c| {
            c.view()
                .vm_restore_points(None)
                .unwrap()
                .iter()
                .map(|p| format!("urn:veeam:VmRestorePoint:{}", p.id))
                .collect()
        })
        .await;
    assert!(all.len() >= 10_000);
    // `Type` has two values over 10,000 points: every page boundary falls inside a tie, which
    // only the ID tiebreaker orders. Ascending and descending, XML and JSON, 100 a page.
    for (sort, json) in [("sortAsc=Type", false), ("sortDesc=Type", true)] {
        let ids = all_pages(
            &w,
            &format!("/api/query?type=VmRestorePoint&{sort}&pageSize=100"),
            json,
        )
        .await;
        let unique: BTreeSet<String> = ids.iter().cloned().collect();
        assert_eq!(unique.len(), ids.len(), "{sort}: a point on two pages");
        assert_eq!(unique, all, "{sort}: every point, once");
    }
    // Page 37 asked for directly equals page 37 reached by walking.
    let walked = all_pages(
        &w,
        "/api/query?type=VmRestorePoint&sortAsc=Type&pageSize=100",
        true,
    )
    .await;
    let p37 = w
        .get_json("/api/query?type=VmRestorePoint&sortAsc=Type&pageSize=100&page=37")
        .await
        .json();
    let direct: Vec<String> = arr(&p37["Refs"], "Refs")
        .iter()
        .map(|r| r["UID"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(direct, walked[3600..3700]);
}

fn openapi_file() -> Vec<u8> {
    std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json"))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_is_served_without_a_session_as_committed() {
    let w = World::new(ONE_MIB).await;
    for uri in ["/api/openapi.json", "/API/OpenAPI.json"] {
        let r = w.send(Req::get(uri).no_session()).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
        assert_eq!(r.content_type(), JSON);
        assert_eq!(
            r.body,
            openapi_file(),
            "{uri}: served document differs from the file"
        );
    }
    // XML asked for: still the JSON document (it has no XML form).
    let r = w.send(Req::get("/api/openapi.json").accept(XML)).await;
    assert_eq!(r.body, openapi_file());
}

#[tokio::test(flavor = "multi_thread")]
async fn every_documented_operation_is_routed() {
    let w = World::new(ONE_MIB).await;
    let doc: serde_json::Value = serde_json::from_slice(&openapi_file()).unwrap();
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete = path
            .replace("{ID}", &uuid::Uuid::new_v4().to_string())
            .replace("{RoleID}", &uuid::Uuid::new_v4().to_string())
            .replace("{ScopeID}", &uuid::Uuid::new_v4().to_string());
        for method in item.as_object().unwrap().keys() {
            let req = Req::new(
                method.to_uppercase().parse().unwrap(),
                &format!("/api{concrete}"),
            )
            .accept(JSON);
            let r = w.send(req).await;
            // Unknown IDs give 404 and missing bodies 400: the route exists either way.
            assert_ne!(
                r.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}: {}",
                r.text()
            );
            if r.status == StatusCode::NOT_FOUND {
                let m = r.json_error(StatusCode::NOT_FOUND);
                assert!(!m.contains("There is no resource"), "{method} {path}: {m}");
            }
            operations += 1;
        }
    }
    assert!(operations > 60, "{operations}");
}

/// Every other method on a documented path is 405, and `Allow` lists the documented ones.
#[tokio::test(flavor = "multi_thread")]
async fn every_undocumented_method_is_405_with_the_documented_ones_in_allow() {
    let w = World::new(ONE_MIB).await;
    let doc: serde_json::Value = serde_json::from_slice(&openapi_file()).unwrap();
    let mut refused = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete = path
            .replace("{ID}", &uuid::Uuid::new_v4().to_string())
            .replace("{RoleID}", &uuid::Uuid::new_v4().to_string())
            .replace("{ScopeID}", &uuid::Uuid::new_v4().to_string());
        let documented: BTreeSet<String> = item
            .as_object()
            .unwrap()
            .keys()
            .map(|m| m.to_uppercase())
            .collect();
        for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
            if documented.contains(method) {
                continue;
            }
            let req = Req::new(method.parse().unwrap(), &format!("/api{concrete}")).accept(JSON);
            let r = w.send(req).await;
            r.json_error(StatusCode::METHOD_NOT_ALLOWED);
            let allow: BTreeSet<String> = r
                .header("allow")
                .unwrap_or_else(|| panic!("{method} {path}: no Allow"))
                .split(", ")
                .map(str::to_string)
                .collect();
            assert_eq!(allow, documented, "{method} {path}");
            refused += 1;
        }
    }
    assert!(refused > 200, "{refused}");
}

/// The JSON golden files carry exactly the members their component schema lists.
#[test]
fn json_golden_files_have_the_members_of_their_schema() {
    let doc: serde_json::Value = serde_json::from_slice(&openapi_file()).unwrap();
    let schemas = &doc["components"]["schemas"];
    let golden = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../wire/tests/golden");
    let mut checked = 0;
    for entry in std::fs::read_dir(&golden).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        let schema = match stem.as_str() {
            "query_svc" | "lookup_svc" | "security_settings" | "summary_report" => {
                "ServiceDocument".to_string()
            }
            "task_running" | "task_finished" => "Task".into(),
            "backup_job_session_running" => "BackupJobSession".into(),
            "job_scheduled" => "Job".into(),
            "enterprise_account_plain" => "EnterpriseAccount".into(),
            "entity_references_empty" => "EntityReferences".into(),
            "backup_servers_empty" => "BackupServers".into(),
            "error_with_exception" => "Error".into(),
            "account_roles" => "EnterpriseAccountInRoleList".into(),
            "account_scopes" => "EnterpriseAccountHierarchyScopes".into(),
            s if s.starts_with("query_result") => "QueryResult".into(),
            s => s
                .split('_')
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .unwrap()
                        .to_uppercase()
                        .chain(c)
                        .collect::<String>()
                })
                .collect(),
        };
        let schema = &schemas[&schema];
        let props = schema["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{stem}: no schema {schema}"));
        let body: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let keys: BTreeSet<&String> = body.as_object().unwrap().keys().collect();
        let want: BTreeSet<&String> = props.keys().collect();
        assert_eq!(keys, want, "{stem}");
        checked += 1;
    }
    assert!(checked > 50, "{checked}");
}
