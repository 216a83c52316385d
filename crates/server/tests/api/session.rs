//! The root, logon and logon sessions, authentication on every route, and links built from the
//! request's Host.

use crate::common::*;
use axum::http::{Method, StatusCode};
use base64::Engine;
use emrest_core::Role;

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[tokio::test(flavor = "multi_thread")]
async fn root_needs_no_session_and_lists_versions_in_both_formats() {
    let w = World::new(ONE_MIB).await;

    let r = w.send(Req::get("/api/").no_session().accept(JSON)).await;
    assert_eq!(r.status, StatusCode::OK);
    let j = r.json();
    let versions: Vec<&str> = arr(&j["SupportedVersions"], "SupportedVersions")
        .iter()
        .map(|v| v["Name"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["v1_5", "v1_6", "v1_7"]);
    let v17 = &arr(&j["SupportedVersions"], "SupportedVersions")[2];
    assert_eq!(
        link(v17, "Create", "LogonSession"),
        format!("{BASE}/sessionMngr/?v=v1_7")
    );
    assert_eq!(
        link(&j, "Create", "LogonSession"),
        format!("{BASE}/sessionMngr/?v=latest")
    );
    assert_eq!(
        link(&j, "Down", "LogonSessionList"),
        format!("{BASE}/logonSessions")
    );
    // JSON.md B2: the root has no Href or Type of its own, shown as null.
    assert!(j["Href"].is_null() && j["Type"].is_null(), "{j}");

    // XML is the default without Accept; `/api` without the slash is the same resource.
    for path in ["/api/", "/api"] {
        let r = w.send(Req::get(path).no_session()).await;
        assert_eq!(r.status, StatusCode::OK);
        let x = r.xml();
        assert_eq!(x.name, "EnterpriseManager");
        let names: Vec<&str> = x
            .child("SupportedVersions")
            .all("SupportedVersion")
            .iter()
            .map(|v| v.attr("Name").unwrap())
            .collect();
        assert_eq!(names, ["v1_5", "v1_6", "v1_7"]);
        assert_eq!(
            x.link("Create", Some("LogonSession")),
            format!("{BASE}/sessionMngr/?v=latest")
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn logon_returns_201_with_token_equal_to_base64_of_session_id() {
    let w = World::new(ONE_MIB).await;
    for accept in [JSON, XML] {
        let r = w
            .send(
                Req::post("/api/sessionMngr/?v=latest")
                    .basic(USER, PASSWORD)
                    .accept(accept)
                    .no_session(),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let token = r.header("X-RestSvcSessionId").unwrap().to_string();
        let (session_id, user) =
            if accept == JSON {
                let j = r.json();
                assert_eq!(j["Type"], "LogonSession");
                let id = j["SessionId"].as_str().unwrap().to_string();
                assert_eq!(j["Href"], format!("{BASE}/logonSessions/{id}"));
                assert!(arr(&j, "Links")
                    .iter()
                    .any(|l| l["Rel"] == "Delete"
                        && l["Href"] == format!("{BASE}/logonSessions/{id}")));
                (id, j["UserName"].as_str().unwrap().to_string())
            } else {
                let x = r.xml();
                assert_eq!(x.name, "LogonSession");
                assert_eq!(x.attr("Type"), Some("LogonSession"));
                (
                    x.text_of("SessionId").to_string(),
                    x.text_of("UserName").to_string(),
                )
            };
        assert_eq!(user, USER);
        // JSON.md B1: clients compute the header themselves as base64(SessionId).
        assert_eq!(token, b64(&session_id));
        let cookie = r.header("set-cookie").unwrap();
        assert!(
            cookie.starts_with(&format!("X-RestSvcSessionId={token};")),
            "{cookie}"
        );
        assert!(cookie.contains("Path=/api"), "{cookie}");

        // The token works.
        let r = w.send(Req::get("/api/backupServers").token(&token)).await;
        assert_eq!(r.status, StatusCode::OK);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn logon_accepts_documented_versions_and_no_version_but_rejects_unknown_ones() {
    let w = World::new(ONE_MIB).await;
    for uri in [
        "/api/sessionMngr/?v=v1_7",
        "/api/sessionMngr/?v=V1_6",
        "/api/sessionMngr/?v=v1_4",
        "/api/sessionMngr/",
        "/api/sessionmngr?V=latest",
    ] {
        let r = w
            .send(Req::post(uri).basic(USER, PASSWORD).no_session())
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{uri}: {}", r.text());
    }
    for accept in [XML, JSON] {
        let r = w
            .send(
                Req::post("/api/sessionMngr/?v=v9_9")
                    .basic(USER, PASSWORD)
                    .accept(accept)
                    .no_session(),
            )
            .await;
        let m = r.error(StatusCode::BAD_REQUEST);
        assert!(m.contains("v9_9"), "{m}");
        assert!(r.header("X-RestSvcSessionId").is_none());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn logon_with_wrong_or_missing_credentials_is_401_with_error_and_challenge() {
    let w = World::new(ONE_MIB).await;
    let cases = [
        (
            "wrong password",
            Req::post("/api/sessionMngr/?v=latest").basic(USER, "nope"),
        ),
        (
            "unknown user",
            Req::post("/api/sessionMngr/?v=latest").basic("nobody", PASSWORD),
        ),
        ("no Authorization", Req::post("/api/sessionMngr/?v=latest")),
        (
            "not Basic",
            Req::post("/api/sessionMngr/?v=latest").header("Authorization", "Bearer abc"),
        ),
    ];
    for (i, (what, req)) in cases.into_iter().enumerate() {
        let json = i % 2 == 0;
        let req = if json { req.accept(JSON) } else { req };
        let r = w.send(req.no_session()).await;
        let m = r.error(StatusCode::UNAUTHORIZED);
        assert_eq!(r.content_type(), if json { JSON } else { XML }, "{what}");
        let challenge = r
            .header("www-authenticate")
            .unwrap_or_else(|| panic!("{what}"));
        assert!(
            challenge.to_ascii_lowercase().starts_with("basic"),
            "{what}"
        );
        assert!(challenge.contains("RestSvc"), "{what}: {challenge}");
        assert!(r.header("X-RestSvcSessionId").is_none(), "{what}");
        assert!(r.header("set-cookie").is_none(), "{what}");
        assert!(!m.contains(PASSWORD), "{what}: {m}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_session_cookie_alone_authenticates_and_wins_over_the_header() {
    let w = World::new(ONE_MIB).await;
    let cookie = format!("other=1; X-RestSvcSessionId={}", w.token);
    let r = w
        .send(
            Req::get("/api/backupServers")
                .no_session()
                .header("Cookie", &cookie),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // JSON.md C5: when both are sent, the cookie wins.
    let r = w
        .send(
            Req::get("/api/backupServers")
                .token("garbage")
                .header("Cookie", &cookie),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn logon_sessions_list_get_and_delete_ends_the_session() {
    let w = World::new(ONE_MIB).await;
    let session_id = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(&w.token)
            .unwrap(),
    )
    .unwrap();

    let j = w.get_json("/api/logonSessions").await.json();
    let ids: Vec<&str> = arr(&j, "LogonSessions")
        .iter()
        .map(|s| s["SessionId"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&session_id.as_str()), "{j}");
    let x = w.get_xml("/api/logonSessions").await.xml();
    assert_eq!(x.name, "LogonSessions");
    assert!(x
        .all("LogonSession")
        .iter()
        .any(|s| s.text_of("SessionId") == session_id));

    for id in [
        session_id.clone(),
        format!("urn:veeam:LogonSession:{session_id}"),
    ] {
        let r = w.get_json(&format!("/api/logonSessions/{id}")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let j = r.json();
        assert_eq!(j["SessionId"], session_id);
        assert_eq!(j["UserName"], USER);
    }
    let r = w
        .get_json(&format!("/api/logonSessions/{}", uuid::Uuid::new_v4()))
        .await;
    r.json_error(StatusCode::NOT_FOUND);

    // Logging out another session leaves ours alive.
    let other = w.logon(USER, PASSWORD).await;
    let other_id = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(&other)
            .unwrap(),
    )
    .unwrap();
    let r = w
        .send(Req::delete(&format!("/api/logonSessions/{other_id}")))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    assert!(r.body.is_empty());
    let r = w.send(Req::get("/api/backupServers").token(&other)).await;
    r.xml_error(StatusCode::UNAUTHORIZED);
    assert_eq!(w.get_xml("/api/backupServers").await.status, StatusCode::OK);

    // Logging out our own session: 204, then the token is dead.
    let r = w
        .send(Req::delete(&format!("/api/logonSessions/{session_id}")))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    let r = w.get_json("/api/backupServers").await;
    r.json_error(StatusCode::UNAUTHORIZED);
    let r = w.get_json("/api/logonSessions").await;
    r.json_error(StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_non_administrator_sees_only_its_own_logon_sessions() {
    let w = World::new(ONE_MIB).await;
    let user_token = w.logon_new_account("operator", Role::RestoreOperator).await;
    let admin_id = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(&w.token)
            .unwrap(),
    )
    .unwrap();
    let j = w
        .send(
            Req::get("/api/logonSessions")
                .token(&user_token)
                .accept(JSON),
        )
        .await
        .json();
    let users: Vec<&str> = arr(&j, "LogonSessions")
        .iter()
        .map(|s| s["UserName"].as_str().unwrap())
        .collect();
    assert_eq!(users, ["operator"]);
    let r = w
        .send(Req::delete(&format!("/api/logonSessions/{admin_id}")).token(&user_token))
        .await;
    // Someone else's logon session is an administrator's business: 403.
    r.xml_error(StatusCode::FORBIDDEN);
    // The administrator is still logged on, and sees its own session only: another user's
    // SessionId is that user's token.
    let j = w.get_json("/api/logonSessions").await.json();
    let listed: Vec<&str> = arr(&j, "LogonSessions")
        .iter()
        .map(|s| s["SessionId"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [admin_id.as_str()], "{j}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_callers_current_session_is_listed_first() {
    // The PyPI clients `veeam` and `veeam-exporter` log out by deleting LogonSessions[0].
    let w = World::new(ONE_MIB).await;
    let newer = w.logon(USER, PASSWORD).await;
    let newer_id = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(&newer)
            .unwrap(),
    )
    .unwrap();
    let oldest_id = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(&w.token)
            .unwrap(),
    )
    .unwrap();
    let j = w
        .send(Req::get("/api/logonSessions").token(&newer).accept(JSON))
        .await
        .json();
    let listed: Vec<&str> = arr(&j, "LogonSessions")
        .iter()
        .map(|s| s["SessionId"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [newer_id.as_str(), oldest_id.as_str()], "{j}");
    let j = w.get_json("/api/logonSessions").await.json();
    assert_eq!(
        arr(&j, "LogonSessions")[0]["SessionId"],
        oldest_id.as_str(),
        "{j}"
    );
}

/// Every route the API serves, with a method it accepts.
fn routes() -> Vec<(Method, String)> {
    let id = uuid::Uuid::new_v4();
    let mut v: Vec<(Method, String)> = [
        "/api/logonSessions",
        "/api/backupServers",
        "/api/backups",
        "/api/restorePoints",
        "/api/vmRestorePoints",
        "/api/hierarchyRoots",
        "/api/backupFiles",
        "/api/tasks",
        "/api/restoreSessions",
    ]
    .into_iter()
    .flat_map(|p| [p.to_string(), format!("{p}?format=Entity")])
    .map(|p| (Method::GET, p))
    .collect();
    for p in [
        format!("/api/logonSessions/{id}"),
        format!("/api/backupServers/{id}"),
        format!("/api/backups/{id}"),
        format!("/api/backups/{id}/restorePoints"),
        format!("/api/restorePoints/{id}"),
        format!("/api/restorePoints/{id}/vmRestorePoints"),
        format!("/api/restorePoints/{id}/backupFiles"),
        format!("/api/vmRestorePoints/{id}"),
        format!("/api/hierarchyRoots/{id}"),
        format!("/api/backupFiles/{id}"),
        "/api/tasks/task-1".to_string(),
        format!("/api/restoreSessions/{id}"),
        format!("/api/restoreSessions/{id}/log"),
    ] {
        v.push((Method::GET, p));
    }
    v.push((
        Method::POST,
        format!("/api/vmRestorePoints/{id}?action=restore"),
    ));
    v.push((Method::DELETE, "/api/tasks/task-1".into()));
    v.push((Method::DELETE, format!("/api/logonSessions/{id}")));
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_without_a_valid_session_is_401_with_an_error_body() {
    let w = World::new(ONE_MIB).await;
    // A session that existed once, now logged out.
    let dead = w.logon(USER, PASSWORD).await;
    let dead_id = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(&dead)
            .unwrap(),
    )
    .unwrap();
    let r = w
        .send(Req::delete(&format!("/api/logonSessions/{dead_id}")))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);

    let tokens: [Option<String>; 5] = [
        None,
        Some("garbage".into()),
        Some(b64("not-a-uuid")),
        Some(b64(&uuid::Uuid::new_v4().to_string())),
        Some(dead),
    ];
    for (method, uri) in routes() {
        for (i, token) in tokens.iter().enumerate() {
            let json = i % 2 == 1;
            let mut req = Req::new(method.clone(), &uri).no_session();
            if let Some(t) = token {
                req = req.token(t);
            }
            if json {
                req = req.accept(JSON);
            }
            if method == Method::POST {
                req = req.content_type(XML);
            }
            let r = w.send(req).await;
            assert_eq!(
                r.status,
                StatusCode::UNAUTHORIZED,
                "{method} {uri} with token {token:?}: {}",
                r.text()
            );
            let m = if json {
                r.json_error(StatusCode::UNAUTHORIZED)
            } else {
                r.xml_error(StatusCode::UNAUTHORIZED)
            };
            assert!(!m.is_empty());
            assert!(r.header("www-authenticate").is_some(), "{method} {uri}");
        }
    }
    // Nothing was started by the unauthenticated POSTs.
    let j = w.get_json("/api/tasks").await.json();
    assert!(arr(&j, "Tasks").is_empty(), "{j}");
}

#[tokio::test(flavor = "multi_thread")]
async fn links_are_built_from_the_request_host() {
    let w = World::new(ONE_MIB).await;
    const OTHER: &str = "http://example.test:9398/api/";
    let host = |r: Req| r.header("Host", "example.test:9398");

    let r = w
        .send(host(
            Req::post("/api/sessionMngr/?v=latest")
                .basic(USER, PASSWORD)
                .no_session(),
        ))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let hrefs = all_hrefs(&r.xml());
    assert!(hrefs.len() > 5);
    for h in &hrefs {
        assert!(h.starts_with(OTHER), "{h}");
    }

    for uri in [
        "/api/",
        "/api/backupServers",
        "/api/vmRestorePoints?format=Entity",
        "/api/hierarchyRoots",
        "/api/restorePoints?format=Entity",
    ] {
        let x = w.send(host(Req::get(uri))).await.xml();
        let hrefs = all_hrefs(&x);
        assert!(!hrefs.is_empty(), "{uri}");
        for h in &hrefs {
            assert!(h.starts_with(OTHER), "{uri}: {h}");
        }
        let j = w.send(host(Req::get(uri).accept(JSON))).await.json();
        let mut hrefs = Vec::new();
        json_hrefs(&j, &mut hrefs);
        assert!(!hrefs.is_empty(), "{uri}");
        for h in &hrefs {
            assert!(h.starts_with(OTHER), "{uri}: {h}");
        }
    }

    // A restore's task links too.
    let point = w.point("db01", emrest_core::PointType::Increment).await;
    let r = w
        .send(host(
            Req::post(&format!("/api/vmRestorePoints/{}?action=restore", point.id))
                .content_type(XML),
        ))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let x = r.xml();
    assert_eq!(
        x.attr("Href").unwrap(),
        format!("{OTHER}tasks/{}", x.text_of("TaskId"))
    );
    for h in all_hrefs(&x) {
        assert!(h.starts_with(OTHER), "{h}");
    }
    w.wait_task(x.text_of("TaskId")).await;
}

fn all_hrefs(e: &Elem) -> Vec<String> {
    let mut v: Vec<String> = e.attr("Href").map(String::from).into_iter().collect();
    for c in &e.children {
        v.extend(all_hrefs(c));
    }
    v
}

fn json_hrefs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                if k == "Href" {
                    if let Some(s) = x.as_str() {
                        out.push(s.to_string());
                    }
                } else {
                    json_hrefs(x, out);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| json_hrefs(x, out)),
        _ => {}
    }
}
