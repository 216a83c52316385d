//! Directory logon: `DOMAIN\name` and `name@domain` accounts authenticated by a real slapd
//! (slapd.rs) over LDAPS or StartTLS; a mapped group grants a role; a directory that is down
//! refuses its users with 401 and locks no one out.

use crate::common::*;
use crate::slapd::*;
use axum::http::StatusCode;
use emrest_core::directory::{DirectoryConfig, GroupRole, UserLocator};
use emrest_core::security::EnterpriseRole;
use emrest_core::throttle::ThrottleConfig;
use emrest_core::PointType;
use emrest_server::ApiOptions;
use std::time::Duration;

const PORTAL_USER: &str = "d19a3d33-cb77-4ffe-94e6-001432483a4e";

/// A directory configuration for the test slapd: LDAPS, its CA, the people template,
/// domains EXAMPLE and example.org, restorers → VM Restore Operator.
fn directory(s: &Slapd) -> DirectoryConfig {
    DirectoryConfig {
        url: s.ldaps_url.clone(),
        starttls: false,
        insecure: false,
        ca_file: Some(s.ca_file()),
        locate: UserLocator::Template(PEOPLE.into()),
        domains: vec!["EXAMPLE".into(), "example.org".into()],
        group_roles: vec![GroupRole {
            group_dn: RESTORERS.into(),
            role: EnterpriseRole::VmRestoreOperator,
        }],
        timeout: Duration::from_secs(3),
    }
}

async fn world(dir: DirectoryConfig) -> World {
    World::with_config(ONE_MIB, ApiOptions::default(), move |c| {
        c.directory = Some(dir);
        // Two failures lock a name from one address, so the tests can count them.
        c.logon_throttle = ThrottleConfig {
            max_failures: 2,
            ..ThrottleConfig::default()
        };
    })
    .await
}

/// POST /sessionMngr with Basic credentials, answering in `format`.
async fn logon(w: &World, user: &str, password: &str, format: &str) -> Resp {
    w.send(
        Req::post("/api/sessionMngr/?v=latest")
            .basic(user, password)
            .accept(format)
            .no_session(),
    )
    .await
}

/// Create `EXAMPLE\bob` as a Portal User through the API, without a password.
async fn create_bob(w: &World) {
    let body = serde_json::json!({
        "AllowRestoreAllVms": true,
        "AccountName": "EXAMPLE\\bob",
        "AccountType": "User",
        "Roles": {"EnterpriseRoles": [{"EnterpriseRoleUid": PORTAL_USER}]},
    });
    let r = w
        .send(
            Req::post("/api/security/accounts")
                .content_type(JSON)
                .accept(JSON)
                .body(&body.to_string()),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
}

/// POST a restore of web01's full point with `token`; the status.
async fn restore_as(w: &World, token: &str) -> Resp {
    let point = w.point("web01", PointType::Full).await;
    w.send(
        Req::post(&format!("/api/vmRestorePoints/{}?action=restore", point.id))
            .token(token)
            .accept(JSON),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_directory_account_logs_on_in_xml_and_json_and_uses_its_session() {
    let s = Slapd::start();
    let w = world(directory(&s)).await;
    create_bob(&w).await;

    let r = logon(&w, "EXAMPLE\\bob", BOB_PW, XML).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.xml().text_of("UserName"), "EXAMPLE\\bob");
    let token = r.header("X-RestSvcSessionId").unwrap().to_string();

    // The other spelling, any case of the domain, reaches the same account.
    let r = logon(&w, "bob@Example.ORG", BOB_PW, JSON).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["UserName"], "EXAMPLE\\bob");

    // The session works, with the account's role: a Portal User reads restore points but
    // may not restore.
    let r = w
        .send(Req::get("/api/vmRestorePoints").token(&token).accept(JSON))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    restore_as(&w, &token)
        .await
        .json_error(StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_directory_password_is_401_and_counts_towards_the_lockout() {
    let s = Slapd::start();
    let w = world(directory(&s)).await;
    create_bob(&w).await;
    for _ in 0..2 {
        let r = logon(&w, "EXAMPLE\\bob", "not bob's password", XML).await;
        let m = r.xml_error(StatusCode::UNAUTHORIZED);
        assert_eq!(m, "Invalid user name or password.");
    }
    // Two failures lock the name: the right password is refused too, for now.
    let r = logon(&w, "EXAMPLE\\bob", BOB_PW, JSON).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    // The other spelling of the name shares the count.
    let r = logon(&w, "bob@example.org", BOB_PW, JSON).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    // A user the directory does not know, with no account: the same 401.
    let r = logon(&w, "EXAMPLE\\nobody", "whatever", JSON).await;
    assert_eq!(
        r.json_error(StatusCode::UNAUTHORIZED),
        "Invalid user name or password."
    );
    // An empty password is never sent as an (anonymous, successful) bind.
    let r = logon(&w, "EXAMPLE\\alice", "", JSON).await;
    r.json_error(StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mapped_group_admits_its_members_with_its_role() {
    let s = Slapd::start();
    let w = world(directory(&s)).await;

    // alice has no account; her group makes her a VM Restore Operator.
    let r = logon(&w, "alice@example.org", ALICE_PW, JSON).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["UserName"], "EXAMPLE\\alice");
    let alice = r.header("X-RestSvcSessionId").unwrap().to_string();
    let r = restore_as(&w, &alice).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    w.wait_task(r.json()["TaskId"].as_str().unwrap()).await;
    // She is an account now, with no roles of her own (they come with each logon).
    let r = w.get_json("/api/security/accounts?format=Entity").await;
    assert!(r.text().contains("EXAMPLE\\\\alice"), "{}", r.text());
    let again = logon(&w, "EXAMPLE\\alice", ALICE_PW, XML).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text());

    // bob is in no mapped group and has no account: refused.
    let r = logon(&w, "EXAMPLE\\bob", BOB_PW, JSON).await;
    r.json_error(StatusCode::UNAUTHORIZED);
    // With an account as Portal User he logs on, but his role does not restore.
    create_bob(&w).await;
    let r = logon(&w, "EXAMPLE\\bob", BOB_PW, JSON).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let bob = r.header("X-RestSvcSessionId").unwrap().to_string();
    restore_as(&w, &bob).await.json_error(StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread")]
async fn group_roles_are_looked_up_at_every_logon() {
    let mut s = Slapd::start();
    let w = world(directory(&s)).await;
    create_bob(&w).await;
    let alice = logon(&w, "EXAMPLE\\alice", ALICE_PW, JSON).await;
    assert_eq!(alice.status, StatusCode::CREATED, "{}", alice.text());
    let bob_before = logon(&w, "EXAMPLE\\bob", BOB_PW, JSON).await;
    let bob_before = bob_before.header("X-RestSvcSessionId").unwrap().to_string();

    // bob joins the group, alice leaves it.
    s.modify(&format!(
        "dn: {RESTORERS}
changetype: modify
add: member
member: uid=bob,ou=people,{SUFFIX}
-
delete: member
member: uid=alice,ou=people,{SUFFIX}
"
    ));
    // alice has no roles of her own: refused from now on.
    let r = logon(&w, "EXAMPLE\\alice", ALICE_PW, JSON).await;
    r.json_error(StatusCode::UNAUTHORIZED);
    // bob's new session restores on top of his Portal User role; the one opened before he
    // joined keeps the roles it was opened with.
    let r = logon(&w, "EXAMPLE\\bob", BOB_PW, JSON).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let bob = r.header("X-RestSvcSessionId").unwrap().to_string();
    let r = restore_as(&w, &bob).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    w.wait_task(r.json()["TaskId"].as_str().unwrap()).await;
    restore_as(&w, &bob_before)
        .await
        .json_error(StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_directory_is_401_and_locks_no_one_out() {
    let mut s = Slapd::start();
    let w = world(directory(&s)).await;
    create_bob(&w).await;
    s.stop();
    // More attempts than lock a name: none counts, the directory was not asked.
    for _ in 0..4 {
        let r = logon(&w, "EXAMPLE\\bob", BOB_PW, XML).await;
        assert_eq!(
            r.xml_error(StatusCode::UNAUTHORIZED),
            "Invalid user name or password."
        );
    }
    // Local accounts keep logging on, from the same address.
    w.logon(USER, PASSWORD).await;
    // The directory is back: bob was not locked out.
    s.run();
    let r = logon(&w, "EXAMPLE\\bob", BOB_PW, JSON).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_directory_whose_certificate_is_not_trusted_is_401() {
    let s = Slapd::start();
    let mut d = directory(&s);
    d.ca_file = Some(s.other_ca_file());
    let w = world(d).await;
    create_bob(&w).await;
    for _ in 0..3 {
        let r = logon(&w, "EXAMPLE\\bob", BOB_PW, JSON).await;
        r.json_error(StatusCode::UNAUTHORIZED);
    }
    w.logon(USER, PASSWORD).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn starttls_over_ldap_logs_on() {
    let s = Slapd::start();
    let mut d = directory(&s);
    d.url = s.ldap_url.clone();
    d.starttls = true;
    let w = world(d).await;
    let r = logon(&w, "EXAMPLE\\alice", ALICE_PW, XML).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let r = logon(&w, "EXAMPLE\\alice", BOB_PW, XML).await;
    r.xml_error(StatusCode::UNAUTHORIZED);
}

/// Names crafted to widen a filter or rewrite a DN: each is refused with a plain 401, never
/// a 500 and never someone else's session.
const INJECTIONS: [&str; 7] = [
    "*",
    "alice*",
    "ali*",
    "alice)(uid=*",
    "*)(|(uid=*",
    "alice,ou=people,dc=example,dc=org",
    "x,uid=alice",
];

#[tokio::test(flavor = "multi_thread")]
async fn injection_attempts_in_the_user_name_fail_cleanly() {
    let s = Slapd::start();
    // The search form: an unescaped `ali*` would find alice and alice2, `*` everyone.
    let mut d = directory(&s);
    d.locate = UserLocator::Search {
        base: format!("ou=people,{SUFFIX}"),
        filter: "(&(objectClass=inetOrgPerson)(uid={user}))".into(),
        bind_dn: None,
        bind_password: None,
    };
    // Lockout off: every name is tried against the directory.
    let w = World::with_config(ONE_MIB, ApiOptions::default(), move |c| {
        c.directory = Some(d);
        c.logon_throttle = ThrottleConfig {
            max_failures: 0,
            ..ThrottleConfig::default()
        };
    })
    .await;
    let t = World::with_config(ONE_MIB, ApiOptions::default(), {
        let d = directory(&s);
        move |c| {
            c.directory = Some(d);
            c.logon_throttle = ThrottleConfig {
                max_failures: 0,
                ..ThrottleConfig::default()
            };
        }
    })
    .await;
    for w in [&w, &t] {
        for name in INJECTIONS {
            for user in [format!("EXAMPLE\\{name}"), format!("{name}@example.org")] {
                let r = logon(w, &user, ALICE_PW, JSON).await;
                assert_eq!(
                    r.json_error(StatusCode::UNAUTHORIZED),
                    "Invalid user name or password.",
                    "{user}"
                );
            }
        }
        // The honest name still works in both forms.
        let r = logon(w, "EXAMPLE\\alice", ALICE_PW, JSON).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    }
}

/// A loopback port that accepts one connection and never sends a byte; the connection is
/// held until the returned sender is dropped.
fn silent_directory() -> (u16, std::sync::mpsc::Sender<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let held = listener.accept();
        let _ = rx.recv();
        drop(held);
    });
    (port, tx)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_directory_that_never_answers_is_401_and_local_logons_go_on() {
    let s = Slapd::start();
    // LDAPS (the TLS handshake hangs), StartTLS (the extended operation hangs) and plain LDAP
    // (the bind hangs).
    for (scheme, starttls, insecure) in [
        ("ldaps", false, false),
        ("ldap", true, false),
        ("ldap", false, true),
    ] {
        let (port, _hold) = silent_directory();
        let mut d = directory(&s);
        d.url = format!("{scheme}://127.0.0.1:{port}");
        d.starttls = starttls;
        d.insecure = insecure;
        if insecure {
            d.ca_file = None;
        }
        d.timeout = Duration::from_secs(1);
        let w = world(d).await;
        create_bob(&w).await;
        // A hang guard, not a timing assertion: the logon must come back at all.
        let r = tokio::time::timeout(
            Duration::from_secs(30),
            logon(&w, "EXAMPLE\\bob", BOB_PW, JSON),
        )
        .await
        .unwrap_or_else(|_| panic!("{scheme} starttls={starttls}: logon hung"));
        r.json_error(StatusCode::UNAUTHORIZED);
        w.logon(USER, PASSWORD).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_search_as_a_service_account_finds_the_user_and_a_wrong_service_password_locks_no_one() {
    let s = Slapd::start();
    let search = |password: &str| {
        let mut d = directory(&s);
        d.locate = UserLocator::Search {
            base: SUFFIX.into(),
            filter: "(uid={user})".into(),
            bind_dn: Some(format!("cn=admin,{SUFFIX}")),
            bind_password: Some(password.into()),
        };
        d
    };
    let w = world(search("admin-secret")).await;
    let r = logon(&w, "alice@example.org", ALICE_PW, XML).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    logon(&w, "alice@example.org", BOB_PW, XML)
        .await
        .xml_error(StatusCode::UNAUTHORIZED);

    // The service account's password is wrong: the operator's mistake, not the user's.
    let w = world(search("not the admin secret")).await;
    for _ in 0..3 {
        logon(&w, "EXAMPLE\\alice", ALICE_PW, JSON)
            .await
            .json_error(StatusCode::UNAUTHORIZED);
    }
    w.logon(USER, PASSWORD).await;
}
