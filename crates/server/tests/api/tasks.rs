//! Tasks and restore sessions: listing, reading, deleting, and who may see them.

use crate::common::*;
use axum::http::StatusCode;
use emrest_core::{PointType, Role};

#[tokio::test(flavor = "multi_thread")]
async fn tasks_are_listed_read_and_deleted() {
    let w = World::new(ONE_MIB).await;
    let j = w.get_json("/api/tasks").await.json();
    assert!(arr(&j, "Tasks").is_empty(), "{j}");
    let x = w.get_xml("/api/tasks").await.xml();
    assert_eq!(x.name, "Tasks");
    assert!(x.children.is_empty());

    let mut ids = Vec::new();
    for vm in ["web01", "db01"] {
        let p = w.point(vm, PointType::Increment).await;
        let (accepted, _) = w.restore_ok(p.id, XML, "").await;
        ids.push(accepted["TaskId"].as_str().unwrap().to_string());
    }
    assert_ne!(ids[0], ids[1]);

    let j = w.get_json("/api/tasks").await.json();
    let listed: Vec<&str> = arr(&j, "Tasks")
        .iter()
        .map(|t| {
            assert_eq!(t["Type"], "Task");
            assert_eq!(t["State"], "Finished");
            assert_eq!(t["Result"]["Success"], true);
            t["TaskId"].as_str().unwrap()
        })
        .collect();
    assert_eq!(listed.len(), 2);
    for id in &ids {
        assert!(listed.contains(&id.as_str()), "{id} not in {j}");
    }
    let x = w.get_xml("/api/tasks").await.xml();
    let listed: Vec<&str> = x.all("Task").iter().map(|t| t.text_of("TaskId")).collect();
    assert_eq!(listed.len(), 2);

    // Task IDs are case-insensitive like the rest of the path.
    let upper = ids[0].to_ascii_uppercase();
    let r = w.get_json(&format!("/api/tasks/{upper}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["TaskId"], ids[0].as_str());

    // DELETE → 204, then it is gone.
    let r = w.send(Req::delete(&format!("/api/tasks/{}", ids[0]))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    assert!(r.body.is_empty());
    let m = w
        .get_json(&format!("/api/tasks/{}", ids[0]))
        .await
        .json_error(StatusCode::NOT_FOUND);
    assert!(m.contains(&ids[0]), "{m}");
    w.get_xml(&format!("/api/tasks/{}", ids[0]))
        .await
        .xml_error(StatusCode::NOT_FOUND);
    let r = w.send(Req::delete(&format!("/api/tasks/{}", ids[0]))).await;
    r.xml_error(StatusCode::NOT_FOUND);
    let j = w.get_json("/api/tasks").await.json();
    let listed: Vec<&str> = arr(&j, "Tasks")
        .iter()
        .map(|t| t["TaskId"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [ids[1].as_str()]);
    // The other task is still there.
    assert_eq!(
        w.get_json(&format!("/api/tasks/{}", ids[1])).await.status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_tasks_are_404_and_malformed_task_ids_400() {
    let w = World::new(ONE_MIB).await;
    for id in ["task-1", "task-999999"] {
        let m = w
            .get_json(&format!("/api/tasks/{id}"))
            .await
            .json_error(StatusCode::NOT_FOUND);
        assert!(m.contains(id), "{m}");
        w.send(Req::delete(&format!("/api/tasks/{id}")))
            .await
            .xml_error(StatusCode::NOT_FOUND);
    }
    for id in ["1", "task-", "task-abc", "task-0", "task--1"] {
        let m = w
            .get_xml(&format!("/api/tasks/{id}"))
            .await
            .xml_error(StatusCode::BAD_REQUEST);
        assert!(m.contains(id), "{m}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_sessions_are_listed_as_references_and_entities() {
    let w = World::new(ONE_MIB).await;
    let j = w.get_json("/api/restoreSessions").await.json();
    assert!(arr(&j, "Refs").is_empty());

    let p = w.point("web01", PointType::Full).await;
    let (_, finished) = w.restore_ok(p.id, XML, "").await;
    let session = w.session_of(&finished).await;
    let uid = session["UID"].as_str().unwrap().to_string();
    let id = uuid_of(&uid);
    assert_eq!(uid, format!("urn:veeam:RestoreSession:{id}"));
    assert_eq!(session["VmDisplayName"], "web01");
    assert!(session["Name"].as_str().unwrap().starts_with("web01@"));

    let j = w.get_json("/api/restoreSessions").await.json();
    let refs = arr(&j, "Refs");
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0]["UID"], uid.as_str());
    assert_eq!(refs[0]["Type"], "RestoreSessionReference");
    assert_eq!(refs[0]["Href"], format!("{BASE}/restoreSessions/{id}"));
    assert_eq!(
        link(&refs[0], "Alternate", "RestoreSession"),
        format!("{BASE}/restoreSessions/{id}?format=Entity")
    );
    let x = w.get_xml("/api/restoreSessions").await.xml();
    assert_eq!(x.name, "EntityReferences");
    assert_eq!(x.all("Ref")[0].attr("UID"), Some(uid.as_str()));

    let j = w
        .get_json("/api/restoreSessions?format=Entity")
        .await
        .json();
    let items = arr(&j, "RestoreSessions");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0], session);
    let x = w.get_xml("/api/restoreSessions?format=Entity").await.xml();
    assert_eq!(x.name, "RestoreSessions");
    let s = x.child("RestoreSession");
    assert_eq!(s.text_of("State"), "Stopped");
    assert_eq!(s.text_of("Result"), "Success");

    // By bare UUID and by UID, as reference and entity.
    for path_id in [id.clone(), uid.clone()] {
        let r = w.get_json(&format!("/api/restoreSessions/{path_id}")).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json()["Type"], "RestoreSessionReference");
        let r = w
            .get_json(&format!("/api/restoreSessions/{path_id}?format=Entity"))
            .await;
        assert_eq!(r.json(), session);
    }

    // The log (emrest extension) is plain text, one timestamped line per event.
    let r = w.get_xml(&format!("/api/restoreSessions/{id}/log")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.content_type().starts_with("text/plain"),
        "{}",
        r.content_type()
    );
    let log = r.text();
    assert!(log.lines().count() >= 3, "{log}");
    assert!(log.contains("Restore requested by tester"), "{log}");
    assert!(
        log.lines().last().unwrap().contains("Restore completed"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn another_non_administrator_cannot_see_or_delete_someone_elses_task() {
    let w = World::new(ONE_MIB).await;
    let p = w.point("db01", PointType::Increment).await;
    let (accepted, finished) = w.restore_ok(p.id, XML, "").await;
    let task_id = accepted["TaskId"].as_str().unwrap();
    let session = w.session_of(&finished).await;
    let session_id = uuid_of(session["UID"].as_str().unwrap());

    let other = w.logon_new_account("operator", Role::RestoreOperator).await;
    let get = |uri: String| Req::get(&uri).token(&other).accept(JSON);
    let j = w.send(get("/api/tasks".into())).await.json();
    assert!(arr(&j, "Tasks").is_empty(), "{j}");
    let j = w.send(get("/api/restoreSessions".into())).await.json();
    assert!(arr(&j, "Refs").is_empty(), "{j}");
    w.send(get(format!("/api/tasks/{task_id}")))
        .await
        .json_error(StatusCode::NOT_FOUND);
    w.send(get(format!("/api/restoreSessions/{session_id}")))
        .await
        .json_error(StatusCode::NOT_FOUND);
    w.send(get(format!("/api/restoreSessions/{session_id}/log")))
        .await
        .json_error(StatusCode::NOT_FOUND);
    w.send(Req::delete(&format!("/api/tasks/{task_id}")).token(&other))
        .await
        .xml_error(StatusCode::NOT_FOUND);
    // Still there for its owner.
    assert_eq!(
        w.get_json(&format!("/api/tasks/{task_id}")).await.status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_catalog_failure_reading_a_task_is_a_500_not_a_404() {
    let w = World::new(ONE_MIB).await;
    let p = w.point("web01", PointType::Increment).await;
    let (accepted, _) = w.restore_ok(p.id, XML, "").await;
    let task_id = accepted["TaskId"].as_str().unwrap().to_string();
    // An unknown task is the client's mistake.
    w.get_json("/api/tasks/task-999")
        .await
        .json_error(StatusCode::NOT_FOUND);

    // The catalog loses the table under the server: the task may well exist, so the answer is
    // the server's fault, not "not found".
    let db = w.core.data_dir().join("catalog.db");
    tokio::task::spawn_blocking(move || {
        rusqlite::Connection::open(db)
            .unwrap()
            .execute_batch("ALTER TABLE tasks RENAME TO tasks_moved")
            .unwrap()
    })
    .await
    .unwrap();
    for uri in [
        format!("/api/tasks/{task_id}"),
        "/api/tasks/task-999".into(),
    ] {
        let m = w
            .get_json(&uri)
            .await
            .json_error(StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!m.contains("not found"), "{uri}: {m}");
        // The client is told where to look, not SQLite's words or the catalog's path.
        assert!(m.contains("under reference "), "{uri}: {m}");
        assert!(!m.contains("tasks") && !m.contains("catalog"), "{uri}: {m}");
    }
}
