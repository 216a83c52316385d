//! The caller of a session is cached between requests (bench/api.sh), yet every change to who
//! may do what takes effect on the very next request: a removed role answers 403, a narrowed
//! restore scope hides the VMs, a deleted account, a logoff or an idle timeout answers 401.
//! Each test first uses the session so that the cached caller is warm.

use crate::common::*;
use axum::http::StatusCode;
use emrest_core::security::EnterpriseRole;
use emrest_core::Role;
use std::time::Duration;

fn get(uri: &str, token: &str) -> Req {
    Req::get(uri).token(token).accept(JSON)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_removed_role_is_refused_on_the_next_request() {
    let w = World::new(ONE_MIB).await;
    let token = w.logon_new_account("bob", Role::PortalAdministrator).await;
    let id = account_id(&w, "bob").await;
    for _ in 0..2 {
        let r = w.send(get("/api/security/accounts", &token)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
    // Give a second role (the last one cannot be removed), then take the administrator's.
    let r = w
        .send(
            Req::post(&format!("/api/security/accounts/{id}/roles"))
                .content_type(JSON)
                .body(&format!(
                    r#"{{"EnterpriseRoleUid":"urn:veeam:EnterpriseRole:{}"}}"#,
                    EnterpriseRole::PortalUser.id()
                )),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let admin = EnterpriseRole::PortalAdministrator.id();
    let r = w
        .send(Req::delete(&format!(
            "/api/security/accounts/{id}/roles/{admin}"
        )))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    w.send(get("/api/security/accounts", &token))
        .await
        .json_error(StatusCode::FORBIDDEN);
    // The session itself lives on, with the role it has left.
    let r = w.send(get("/api/vmRestorePoints", &token)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_narrowed_restore_scope_hides_the_vms_on_the_next_request() {
    let w = World::new(ONE_MIB).await;
    let token = w.logon_new_account("carol", Role::RestoreOperator).await;
    let id = account_id(&w, "carol").await;
    let uri = "/api/vmRestorePoints?format=Entity";
    for _ in 0..2 {
        let j = w.send(get(uri, &token)).await.json();
        assert!(!arr(&j, "VmRestorePoints").is_empty(), "{j}");
    }
    // ToggleRestoreScopesEnabled: from all VMs to the (empty) scope list.
    let r = w
        .send(Req::post(&format!("/api/security/accounts/{id}")))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    let j = w.send(get(uri, &token)).await.json();
    assert!(arr(&j, "VmRestorePoints").is_empty(), "{j}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_account_is_refused_on_the_next_request() {
    let w = World::new(ONE_MIB).await;
    let token = w.logon_new_account("dave", Role::PortalUser).await;
    let id = account_id(&w, "dave").await;
    for _ in 0..2 {
        let r = w.send(get("/api/vmRestorePoints", &token)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
    let r = w
        .send(Req::delete(&format!("/api/security/accounts/{id}")))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    for uri in ["/api/vmRestorePoints", "/api/tasks", "/api/logonSessions"] {
        w.send(get(uri, &token))
            .await
            .json_error(StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_logged_off_session_is_refused_on_the_next_request() {
    let w = World::new(ONE_MIB).await;
    let token = w.logon(USER, PASSWORD).await;
    for _ in 0..2 {
        let r = w.send(get("/api/vmRestorePoints", &token)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
    // Log off by ID, as clients do: the ID is the token's decoded GUID.
    let session = String::from_utf8(
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &token).unwrap(),
    )
    .unwrap();
    let r = w
        .send(Req::delete(&format!("/api/logonSessions/{session}")).token(&token))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    for uri in ["/api/vmRestorePoints", "/api/tasks"] {
        w.send(get(uri, &token))
            .await
            .json_error(StatusCode::UNAUTHORIZED);
    }
    // The tester's own session is untouched.
    let r = w.get_json("/api/vmRestorePoints").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_used_and_then_left_idle_expires_with_401() {
    // Not a timed assertion: the session is used once (warming the cache) and must be gone
    // after it has certainly been idle longer than the timeout; how soon is not asserted.
    let w = World::with_config(ONE_MIB, Default::default(), |c| {
        c.session_idle = Duration::from_millis(300)
    })
    .await;
    let token = w.logon(USER, PASSWORD).await;
    let first = w.send(get("/api/vmRestorePoints", &token)).await;
    // On a loaded machine the first request may itself come after the timeout; either way
    // the session must be refused after a longer idle spell.
    assert!(
        [StatusCode::OK, StatusCode::UNAUTHORIZED].contains(&first.status),
        "{}",
        first.text()
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    for uri in ["/api/vmRestorePoints", "/api/tasks"] {
        w.send(get(uri, &token))
            .await
            .json_error(StatusCode::UNAUTHORIZED);
    }
}
