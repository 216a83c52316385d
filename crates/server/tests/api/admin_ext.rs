//! emrest's administration extensions: every account's logon sessions by handle (never by
//! SessionId, which is a token), ending one, and setting an account's password.

use crate::common::*;
use axum::http::{Method, StatusCode};
use base64::Engine;
use emrest_core::Role;

fn session_id(token: &str) -> String {
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(token)
            .unwrap(),
    )
    .unwrap()
}

fn put(uri: &str) -> Req {
    Req::new(Method::PUT, uri)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_administrator_lists_and_ends_any_session_by_a_handle_that_is_no_token() {
    let w = World::new(ONE_MIB).await;
    let operator = w.logon_new_account("operator", Role::RestoreOperator).await;
    let operator_id = session_id(&operator);

    let r = w.get_json("/api/emrest/logonSessions").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // Neither the SessionId nor the token of anyone appears.
    for secret in [&operator, &operator_id, &w.token, &session_id(&w.token)] {
        assert!(!r.text().contains(secret.as_str()), "{}", r.text());
    }
    let j = r.json();
    let listed = arr(&j, "ManagedLogonSessions");
    let mine: Vec<_> = listed.iter().filter(|s| s["Current"] == true).collect();
    assert_eq!(mine.len(), 1, "{j}");
    assert_eq!(mine[0]["UserName"], USER);
    let theirs = listed
        .iter()
        .find(|s| s["UserName"] == "operator")
        .unwrap_or_else(|| panic!("the operator's session is listed: {j}"));
    assert_eq!(theirs["Current"], false);
    let handle = theirs["Handle"].as_str().unwrap().to_string();
    assert_eq!(handle.len(), 32, "{handle}");

    // The XML answer matches the schema, and the one session by handle too.
    let x = w.get_xml("/api/emrest/logonSessions").await;
    assert_eq!(x.status, StatusCode::OK);
    crate::fidelity::validate(&x.body).unwrap_or_else(|e| panic!("{e}\n{}", x.text()));
    let one = w
        .get_xml(&format!("/api/emrest/logonSessions/{handle}"))
        .await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.text());
    crate::fidelity::validate(&one.body).unwrap_or_else(|e| panic!("{e}\n{}", one.text()));
    assert_eq!(one.xml().text_of("UserName"), "operator");

    // A non-administrator may not list or end sessions this way.
    let r = w
        .send(Req::get("/api/emrest/logonSessions").token(&operator))
        .await;
    r.xml_error(StatusCode::FORBIDDEN);
    let own_handle = mine[0]["Handle"].as_str().unwrap();
    let r = w
        .send(Req::delete(&format!("/api/emrest/logonSessions/{own_handle}")).token(&operator))
        .await;
    r.xml_error(StatusCode::FORBIDDEN);

    // Ending it: 204, the operator's token is refused from then on, and the handle is gone.
    let r = w
        .send(Req::delete(&format!("/api/emrest/logonSessions/{handle}")))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    let r = w
        .send(Req::get("/api/vmRestorePoints").token(&operator))
        .await;
    r.xml_error(StatusCode::UNAUTHORIZED);
    let r = w
        .send(Req::delete(&format!("/api/emrest/logonSessions/{handle}")).accept(JSON))
        .await;
    let m = r.json_error(StatusCode::NOT_FOUND);
    assert!(m.contains("Logon session"), "{m}");
    // The administrator's own session still works.
    assert_eq!(
        w.get_json("/api/vmRestorePoints").await.status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_account_created_through_the_api_gets_a_password_and_logs_on() {
    let w = World::new(ONE_MIB).await;
    let r = w
        .send(
            Req::post("/api/security/accounts")
                .content_type(JSON)
                .body(r#"{"AccountType":"User","AccountName":"CORP\\restorer","Roles":{"EnterpriseRoles":[{"EnterpriseRoleUid":"urn:veeam:EnterpriseRole:c11c0c38-ba8b-49c7-bf70-fc2058fff1e2"}]},"AllowRestoreAllVms":true}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id = account_id(&w, "CORP\\restorer").await;
    let path = format!("/api/emrest/accounts/{id}/password");

    // With no password yet it cannot log on.
    let r = w
        .send(
            Req::post("/api/sessionMngr/?v=latest")
                .basic("CORP\\restorer", "first pw")
                .no_session(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // JSON, then XML (which replaces it); each time it logs on with the new one only.
    let r = w
        .send(
            put(&path)
                .content_type(JSON)
                .body(r#"{"Password":"first pw"}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    let token = w.logon("CORP\\restorer", "first pw").await;
    assert_eq!(
        w.send(Req::get("/api/vmRestorePoints").token(&token))
            .await
            .status,
        StatusCode::OK
    );
    let r = w
        .send(put(&path).content_type(XML).body(
            r#"<AccountPasswordSpec xmlns="http://www.veeam.com/ent/v1.0"><Password>second pw</Password></AccountPasswordSpec>"#,
        ))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    w.logon("CORP\\restorer", "second pw").await;
    let r = w
        .send(
            Req::post("/api/sessionMngr/?v=latest")
                .basic("CORP\\restorer", "first pw")
                .no_session(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // Bad requests: 400 naming the element, and the password stays.
    for (ct, body, needle) in [
        (JSON, r#"{"Password":""}"#, "Password"),
        (JSON, r#"{}"#, "Password"),
        (JSON, "", "AccountPasswordSpec"),
        (JSON, r#"{"Password":"x","Extra":1}"#, "Extra"),
        (
            XML,
            "<AccountPasswordSpec xmlns=\"http://www.veeam.com/ent/v1.0\"/>",
            "Password",
        ),
    ] {
        let r = w
            .send(put(&path).content_type(ct).accept(JSON).body(body))
            .await;
        let m = r.json_error(StatusCode::BAD_REQUEST);
        assert!(m.contains(needle), "{body}: {m}");
    }
    w.logon("CORP\\restorer", "second pw").await;

    // Unknown account: 404; a non-administrator: 403.
    let r = w
        .send(
            put(&format!(
                "/api/emrest/accounts/{}/password",
                uuid::Uuid::new_v4()
            ))
            .content_type(JSON)
            .body(r#"{"Password":"x"}"#),
        )
        .await;
    r.xml_error(StatusCode::NOT_FOUND);
    let r = w
        .send(
            put(&path)
                .token(&token)
                .content_type(JSON)
                .body(r#"{"Password":"mine now"}"#),
        )
        .await;
    r.xml_error(StatusCode::FORBIDDEN);
    w.logon("CORP\\restorer", "second pw").await;
}
