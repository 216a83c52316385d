//! The reply cache of `GET /vmRestorePoints` and `GET /tasks/{ID}` (cache.rs): a repeated GET is
//! answered from it byte for byte, and never once the answer would differ: after any committed
//! change (a backup, retention, a task finishing or deleted, a scope changed, a commit by another
//! connection on the catalog file), for another caller's visibility, another format, query or
//! Host. Hits are counted through the router's cache counters.

use crate::common::*;
use axum::http::StatusCode;
use emrest_core::{PointType, Role};
use emrest_server::CacheStats;
use std::time::{Duration, Instant};

const ENTITIES: &str = "/api/vmRestorePoints?format=Entity";

fn get(uri: &str, token: &str, format: &str) -> Req {
    Req::get(uri).token(token).accept(format)
}

/// Send a GET and return the answer with the cache counters' change it caused.
async fn counted(w: &World, req: Req) -> (Resp, CacheStats) {
    let before = w.cache.stats();
    let r = w.send(req).await;
    let after = w.cache.stats();
    (
        r,
        CacheStats {
            hits: after.hits - before.hits,
            misses: after.misses - before.misses,
            ..after
        },
    )
}

/// GET twice: the second is served from the cache, byte for byte with the same headers as the
/// first. Returns the body.
async fn twice(w: &World, req: impl Fn() -> Req) -> Vec<u8> {
    let (first, s) = counted(w, req()).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    assert_eq!(s.hits + s.misses, 1, "a cacheable request");
    let (second, s) = counted(w, req()).await;
    assert_eq!((s.hits, s.misses), (1, 0), "second answer from the cache");
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(second.body, first.body, "byte-identical");
    assert_eq!(second.headers, first.headers);
    first.body
}

/// The next GET is computed again (not a hit) and returns its answer.
async fn recomputed(w: &World, req: Req) -> Resp {
    let (r, s) = counted(w, req).await;
    assert_eq!((s.hits, s.misses), (0, 1), "computed again, not served");
    r
}

fn names(j: &serde_json::Value) -> Vec<String> {
    field(j, "Name")
}

fn uids(j: &serde_json::Value) -> Vec<String> {
    field(j, "UID")
}

fn field(j: &serde_json::Value, name: &str) -> Vec<String> {
    arr(j, "VmRestorePoints")
        .iter()
        .map(|p| p[name].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repeated_get_is_served_from_the_cache_byte_for_byte() {
    let w = World::new(ONE_MIB).await;
    let t = w.token.clone();
    for format in [XML, JSON] {
        let body = twice(&w, || get(ENTITIES, &t, format)).await;
        assert!(!body.is_empty());
    }
    let p = w.point("web01", PointType::Increment).await;
    let (accepted, _) = w.restore_ok(p.id, XML, "").await;
    let task = format!("/api/tasks/{}", accepted["TaskId"].as_str().unwrap());
    for format in [XML, JSON] {
        twice(&w, || get(&task, &t, format)).await;
    }
    let s = w.cache.stats();
    // The restore committed: only the task's two answers are of the current version.
    assert!(s.entries == 2 && s.bytes > 0, "{s:?}");
    // What is not cached is never counted: another endpoint, a POST.
    let (_, s) = counted(&w, get("/api/tasks", &t, JSON)).await;
    assert_eq!((s.hits, s.misses), (0, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn formats_queries_and_hosts_never_share_an_answer() {
    let w = World::new(ONE_MIB).await;
    let t = w.token.clone();
    let variants: Vec<(&str, &str, Option<&str>)> = vec![
        (ENTITIES, XML, None),
        (ENTITIES, JSON, None),
        ("/api/vmRestorePoints", XML, None),
        ("/api/vmRestorePoints", JSON, None),
        ("/api/vmRestorePoints?format=Entity&pageSize=1", JSON, None),
        (ENTITIES, JSON, Some("other.test:1234")),
    ];
    let req = |(uri, format, host): (&str, &str, Option<&str>)| {
        let r = get(uri, &t, format);
        match host {
            Some(h) => r.header("Host", h),
            None => r,
        }
    };
    let mut bodies = Vec::new();
    for v in &variants {
        // Each first GET is computed: no earlier variant's answer is taken for it.
        let first = recomputed(&w, req(*v)).await;
        assert_eq!(first.status, StatusCode::OK, "{}", first.text());
        assert_eq!(twice(&w, || req(*v)).await, first.body);
        bodies.push(first.body);
    }
    // Each its own answer: format, entity or reference list, Host in the links. (A query
    // parameter that changes nothing gives the same bytes, computed on their own: twice() saw
    // a miss first.)
    let distinct: std::collections::HashSet<&Vec<u8>> = bodies[..4].iter().collect();
    assert_eq!(distinct.len(), 4, "XML/JSON, entities/references differ");
    let other_host = String::from_utf8(bodies[5].clone()).unwrap();
    assert!(other_host.contains("http://other.test:1234/api/"));
    assert!(!other_host.contains(BASE));
    // Each variant is served its own answer again.
    for (v, body) in variants.iter().zip(&bodies) {
        let (r, s) = counted(&w, req(*v)).await;
        assert_eq!(s.hits, 1);
        assert_eq!(&r.body, body);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_and_retention_show_on_the_next_get() {
    let w = World::new(ONE_MIB).await;
    let t = w.token.clone();
    let vm = w.vm("web01").await.unwrap();
    let job = w
        .blocking(move |c| {
            c.jobs()
                .create_job("Cached", &[vm.hierarchy_obj_ref()], 1, "test")
                .unwrap()
                .id
        })
        .await;
    let before: serde_json::Value =
        serde_json::from_slice(&twice(&w, || get(ENTITIES, &t, JSON)).await).unwrap();
    let before = uids(&before);

    // A backup adds a point: the next GET lists it.
    let run = |n: usize| {
        let w = &w;
        async move {
            let r = w
                .send(Req::post(&format!("/api/jobs/{job}?action=start")).accept(JSON))
                .await;
            assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
            let s = wait_job_session(w, &job.to_string(), n).await;
            assert_eq!(s["Result"], "Success", "{s}");
        }
    };
    run(1).await;
    let r = recomputed(&w, get(ENTITIES, &t, JSON)).await;
    let after_one = uids(&r.json());
    assert_eq!(after_one.len(), before.len() + 1, "{after_one:?}");
    let added: Vec<_> = after_one.iter().filter(|n| !before.contains(n)).collect();
    assert_eq!(added.len(), 1, "{after_one:?}");
    twice(&w, || get(ENTITIES, &t, JSON)).await;

    // A second run with retention 1 removes the first run's point (after its session stopped:
    // poll, with a hang guard; a stale cached answer would never change).
    run(2).await;
    let r = recomputed(&w, get(ENTITIES, &t, JSON)).await;
    let fresh = uids(&r.json());
    assert!(
        fresh.iter().any(|u| !after_one.contains(u)),
        "the second run's point shows: {fresh:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let after_two = uids(&w.send(get(ENTITIES, &t, JSON)).await.json());
        if !after_two.contains(added[0]) {
            assert_eq!(after_two.len(), after_one.len(), "{after_two:?}");
            break;
        }
        assert!(Instant::now() < deadline, "retention did not show");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    twice(&w, || get(ENTITIES, &t, JSON)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_that_changes_shows_on_the_next_get() {
    let w = World::new(ONE_MIB).await;
    let t = w.token.clone();
    // A running task, as a restore has while it works, finished as the restore finishes it.
    let account = uuid::Uuid::parse_str(&account_id(&w, USER).await).unwrap();
    let task = w
        .blocking(move |c| {
            c.catalog()
                .insert_task("RestoreVm", None, account, 0)
                .unwrap()
                .id
        })
        .await;
    let uri = format!("/api/tasks/{task}");
    for format in [XML, JSON] {
        twice(&w, || get(&uri, &t, format)).await;
    }
    let j = w.get_json(&uri).await.json();
    assert_eq!(j["State"], "Running");
    w.blocking(move |c| c.catalog().finish_task(task, true, "done").unwrap())
        .await;
    let j = recomputed(&w, get(&uri, &t, JSON)).await.json();
    assert_eq!(j["State"], "Finished", "{j}");
    assert_eq!(j["Result"]["Message"], "done");
    let x = recomputed(&w, get(&uri, &t, XML)).await.xml();
    assert_eq!(x.text_of("State"), "Finished");

    // A real restore: polled until Finished (the cache would keep it Running otherwise).
    let p = w.point("web01", PointType::Increment).await;
    let (accepted, finished) = w.restore_ok(p.id, XML, "").await;
    assert_eq!(finished["State"], "Finished");
    let task = accepted["TaskId"].as_str().unwrap().to_string();
    let uri = format!("/api/tasks/{task}");
    twice(&w, || get(&uri, &t, JSON)).await;
    // Deleted: 404 on the next GET.
    let r = w.send(Req::delete(&uri)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    recomputed(&w, get(&uri, &t, JSON))
        .await
        .json_error(StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_commit_by_another_connection_on_the_catalog_file_shows_on_the_next_get() {
    let w = World::new(ONE_MIB).await;
    let t = w.token.clone();
    let before = twice(&w, || get(ENTITIES, &t, XML)).await;
    assert!(!String::from_utf8(before).unwrap().contains("renamed-vm"));
    // Another process's connection (the CLI writes the same file).
    let db = w.core.data_dir().join("catalog.db");
    tokio::task::spawn_blocking(move || {
        let c = rusqlite::Connection::open(db).unwrap();
        c.execute(
            "UPDATE vm_restore_points SET vm_name = 'renamed-vm' WHERE vm_name = 'web01'",
            [],
        )
        .unwrap()
    })
    .await
    .unwrap();
    let r = recomputed(&w, get(ENTITIES, &t, XML)).await;
    assert!(r.text().contains("renamed-vm"), "{}", r.text());
    twice(&w, || get(ENTITIES, &t, XML)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn callers_who_see_different_things_never_get_each_others_answer() {
    let w = World::new(ONE_MIB).await;
    let admin = w.token.clone();
    let admin2 = w
        .logon_new_account("admin2", Role::PortalAdministrator)
        .await;
    let carol = w.logon_new_account("carol", Role::RestoreOperator).await;
    let dave = w.logon_new_account("dave", Role::RestoreOperator).await;
    // Both restricted to their scope list (ToggleRestoreScopesEnabled); carol's holds web01.
    for name in ["carol", "dave"] {
        let id = account_id(&w, name).await;
        let r = w
            .send(Req::post(&format!("/api/security/accounts/{id}")))
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    }
    let web01 = w.point("web01", PointType::Full).await;
    let body = format!(
        r#"<HierarchyScopeCreateSpec xmlns="http://www.veeam.com/ent/v1.0"><HierarchyScopeItem><HierarchyObjRef>{}</HierarchyObjRef></HierarchyScopeItem></HierarchyScopeCreateSpec>"#,
        web01.hierarchy_obj_ref
    );
    let carol_id = account_id(&w, "carol").await;
    let r = w
        .send(
            Req::post(&format!("/api/security/accounts/{carol_id}/scopes"))
                .content_type(XML)
                .body(&body),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());

    let mut seen = Vec::new();
    for token in [&admin, &carol, &dave] {
        let body = twice(&w, || get(ENTITIES, token, JSON)).await;
        seen.push(names(&serde_json::from_slice(&body).unwrap()));
    }
    assert!(seen[0].len() > 2, "{:?}", seen[0]);
    assert!(!seen[1].is_empty(), "{:?}", seen[1]);
    assert!(
        seen[1].iter().all(|n| n.starts_with("web01@")),
        "{:?}",
        seen[1]
    );
    assert!(seen[2].is_empty(), "{:?}", seen[2]);
    // Another administrator sees what the first does: the same answer, from the cache.
    let (r, s) = counted(&w, get(ENTITIES, &admin2, JSON)).await;
    assert_eq!(s.hits, 1);
    assert_eq!(names(&r.json()), seen[0]);

    // A narrowed scope shows on the next GET: carol loses web01.
    let scopes = w
        .get_json(&format!("/api/security/accounts/{carol_id}/scopes"))
        .await
        .json();
    let href = arr(&scopes, "EnterpriseAccountHierarchyScopes")[0]["Href"]
        .as_str()
        .unwrap()
        .to_string();
    let r = w.send(Req::delete(&path_of(&href))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    let r = recomputed(&w, get(ENTITIES, &carol, JSON)).await;
    assert!(names(&r.json()).is_empty(), "{}", r.text());

    // A task of the administrator, cached for them, is still 404 to a restore operator and
    // 401 without a valid session.
    let p = w.point("web01", PointType::Increment).await;
    let (accepted, _) = w.restore_ok(p.id, XML, "").await;
    let uri = format!("/api/tasks/{}", accepted["TaskId"].as_str().unwrap());
    twice(&w, || get(&uri, &admin, JSON)).await;
    let (r, s) = counted(&w, get(&uri, &carol, JSON)).await;
    assert_eq!(s.hits, 0);
    r.json_error(StatusCode::NOT_FOUND);
    let (r, s) = counted(&w, get(&uri, "bm90LWEtc2Vzc2lvbg==", JSON)).await;
    assert_eq!((s.hits, s.misses), (0, 0));
    r.json_error(StatusCode::UNAUTHORIZED);
}
