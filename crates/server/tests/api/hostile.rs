//! Hostile input (issue 5 item 6): whatever a network sends, the answer is a 4xx with a
//! well-formed Error body in the negotiated format, and nothing changes: no VM, task, restore
//! session or account appears, and no file appears in the data folder.
//!
//! What restore_errors.rs, session.rs and security.rs already pin (a DOCTYPE with an external
//! entity on a restore, `VmNewName` "../../etc/evil", a garbage or dead session header on every
//! route) is not repeated here.

use crate::common::*;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use emrest_core::PointType;
use tower::ServiceExt;

const NS: &str = r#"xmlns="http://www.veeam.com/ent/v1.0""#;
const PORTAL_USER: &str = "urn:veeam:EnterpriseRole:d19a3d33-cb77-4ffe-94e6-001432483a4e";

/// Raw header pairs.
type Headers<'a> = Vec<(&'a str, &'a [u8])>;

/// Send raw bytes (bodies that are not UTF-8, headers that are not ASCII).
async fn send_raw(
    w: &World,
    method: Method,
    uri: &str,
    headers: &[(&str, &[u8])],
    body: Vec<u8>,
) -> Resp {
    let mut b = Request::builder()
        .method(method)
        .uri(uri)
        .header("Host", HOST);
    if !headers.iter().any(|(k, _)| {
        k.eq_ignore_ascii_case("X-RestSvcSessionId") || k.eq_ignore_ascii_case("Cookie")
    }) {
        b = b.header("X-RestSvcSessionId", &w.token);
    }
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let resp = w
        .app
        .clone()
        .oneshot(b.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    Resp::read(resp).await
}

/// Every file under the data folder (relative path), catalog files excluded: a bad request
/// must not leave one behind (a staging folder, a disk image, a config).
fn files(w: &World) -> Vec<String> {
    fn walk(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                if !rel.contains("catalog") {
                    out.push(rel);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(w._dir.path(), w._dir.path(), &mut out);
    out.sort();
    out
}

/// Everything a hostile request must leave alone.
#[derive(Debug, PartialEq)]
struct Trace {
    snapshot: Snapshot,
    accounts: serde_json::Value,
    files: Vec<String>,
}

async fn trace(w: &World) -> Trace {
    Trace {
        snapshot: w.snapshot().await,
        accounts: w.get_json("/api/security/accounts").await.json(),
        files: files(w),
    }
}

/// Assert `r` is an Error with this status in the format `accept` asked for; its Message.
fn error_in(r: &Resp, accept: &str, status: StatusCode, what: &str) -> String {
    assert_eq!(r.status, status, "{what}: {}", r.text());
    let m = if accept == JSON {
        r.json_error(status)
    } else {
        r.xml_error(status)
    };
    // A client-facing message names the problem; it never reflects a large input back.
    assert!(m.len() < 600, "{what}: message of {} bytes: {m}", m.len());
    m
}

fn both() -> [&'static str; 2] {
    [XML, JSON]
}

/// The routes that take a body: (what, path, root element of the body).
async fn body_routes(w: &World) -> Vec<(&'static str, String, &'static str)> {
    let point = w.point("web01", PointType::Full).await.id;
    let account = w.get_json("/api/security/accounts").await.json()["Refs"][0]["UID"]
        .as_str()
        .map(uuid_of)
        .unwrap();
    vec![
        (
            "restore",
            format!("/api/vmRestorePoints/{point}?action=restore"),
            "RestoreSpec",
        ),
        (
            "account",
            "/api/security/accounts".into(),
            "EnterpriseAccountCreateSpec",
        ),
        (
            "role",
            format!("/api/security/accounts/{account}/roles"),
            "EnterpriseAccountInRoleCreateSpec",
        ),
        (
            "scope",
            format!("/api/security/accounts/{account}/scopes"),
            "HierarchyScopeCreateSpec",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_over_the_limit_are_413_with_an_error_body_and_change_nothing() {
    let w = World::new(ONE_MIB).await;
    let before = trace(&w).await;
    let routes = body_routes(&w).await;
    // Just over the limit (64 KiB, the largest body a decoder reads), and far over it.
    for size in [64 * 1024 + 1, (1 << 20) + 1, 4 << 20] {
        for (what, uri, _) in &routes {
            for accept in both() {
                let mut body = format!("<RestoreSpec {NS}><VmRestoreSpec><VmNewName>").into_bytes();
                body.resize(size, b'a');
                let r = send_raw(
                    &w,
                    Method::POST,
                    uri,
                    &[
                        ("Content-Type", XML.as_bytes()),
                        ("Accept", accept.as_bytes()),
                    ],
                    body,
                )
                .await;
                let m = error_in(
                    &r,
                    accept,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("{what} {size}"),
                );
                assert!(m.contains("65536 bytes"), "{what}: {m}");
            }
        }
    }
    // A body at the limit is read and judged on its content.
    let (_, uri, _) = &routes[0];
    let mut body = format!("<RestoreSpec {NS}><VmRestoreSpec><VmNewName>").into_bytes();
    body.resize(64 * 1024, b'a');
    let r = send_raw(
        &w,
        Method::POST,
        uri,
        &[("Content-Type", XML.as_bytes())],
        body,
    )
    .await;
    let m = error_in(&r, XML, StatusCode::BAD_REQUEST, "64 KiB body");
    assert!(m.contains("VmNewName"), "{m}");
    assert_eq!(trace(&w).await, before);
}

/// The classic billion laughs: ten levels of ten references, 10^9 "lol"s if expanded.
fn billion_laughs(root: &str) -> String {
    let mut dtd = String::from("<!ENTITY lol \"lol\">");
    for i in 1..=9 {
        let prev = if i == 1 {
            "lol".to_string()
        } else {
            format!("lol{}", i - 1)
        };
        dtd.push_str(&format!(
            "<!ENTITY lol{i} \"{}\">",
            format!("&{prev};").repeat(10)
        ));
    }
    format!("<?xml version=\"1.0\"?><!DOCTYPE {root} [{dtd}]><{root} {NS}>&lol9;</{root}>")
}

#[tokio::test(flavor = "multi_thread")]
async fn dtds_external_entities_and_entity_bombs_are_400_and_never_expanded() {
    let w = World::new(ONE_MIB).await;
    let before = trace(&w).await;
    let routes = body_routes(&w).await;
    for (what, uri, root) in &routes {
        let bodies = [
            ("billion laughs", billion_laughs(root), "DOCTYPE"),
            (
                "external entity",
                format!("<!DOCTYPE {root} [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><{root} {NS}>&x;</{root}>"),
                "DOCTYPE",
            ),
            (
                "external parameter entity",
                format!("<!DOCTYPE {root} [<!ENTITY % p SYSTEM \"http://127.0.0.1:9/x.dtd\"> %p;]><{root} {NS}/>"),
                "DOCTYPE",
            ),
            (
                "external DTD",
                format!("<!DOCTYPE {root} SYSTEM \"http://127.0.0.1:9/x.dtd\"><{root} {NS}/>"),
                "DOCTYPE",
            ),
            (
                "an entity never declared",
                format!("<{root} {NS}>&lol9;</{root}>"),
                "lol9",
            ),
            (
                "a processing instruction",
                format!("<?xml-stylesheet href=\"http://127.0.0.1:9/x\"?><{root} {NS}/>"),
                "processing instruction",
            ),
        ];
        for (case, body, mentions) in bodies {
            for accept in both() {
                let r = w
                    .send(Req::post(uri).content_type(XML).accept(accept).body(&body))
                    .await;
                let m = error_in(
                    &r,
                    accept,
                    StatusCode::BAD_REQUEST,
                    &format!("{what}: {case}"),
                );
                assert!(m.contains(mentions), "{what}: {case}: {m}");
                assert!(
                    !m.contains("lollol") && !m.contains("root:"),
                    "{what}: {case}: {m}"
                );
            }
        }
    }
    assert_eq!(trace(&w).await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn deep_nesting_huge_elements_and_floods_of_elements_are_400_naming_the_limit() {
    let w = World::new(ONE_MIB).await;
    let before = trace(&w).await;
    let routes = body_routes(&w).await;
    let restore = &routes[0].1;
    let deep_xml = format!(
        "<RestoreSpec {NS}>{}{}</RestoreSpec>",
        "<VmRestoreSpec>".repeat(1500),
        "</VmRestoreSpec>".repeat(1500)
    );
    let deep_json = format!(
        "{{\"VmRestoreSpec\":{}{}}}",
        "[".repeat(20000),
        "]".repeat(20000)
    );
    let deep_json_objects = format!("{}{}", "{\"VmRestoreSpec\":".repeat(3000), "}".repeat(3000));
    let huge_text = format!(
        "<RestoreSpec {NS}><VmRestoreSpec><VmRestoreParameters><VmNewName>{}</VmNewName></VmRestoreParameters></VmRestoreSpec></RestoreSpec>",
        "n".repeat(60_000)
    );
    let huge_json_text = format!(
        "{{\"VmRestoreSpec\":{{\"PowerOnAfterRestore\":false,\"QuickRollback\":false,\"VmRestoreParameters\":{{\"VmRestorePointUid\":\"urn:veeam:VmRestorePoint:{}\",\"VmNewName\":\"{}\"}}}}}}",
        routes[0].1.split('/').nth(3).and_then(|s| s.split('?').next()).unwrap(),
        "n".repeat(60_000)
    );
    let huge_name = format!("<{0} {NS}/>", "R".repeat(60_000));
    let huge_attr = format!(
        "<RestoreSpec {NS} a=\"{}\"><VmRestoreSpec/></RestoreSpec>",
        "v".repeat(60_000)
    );
    let flood = format!(
        "<RestoreSpec {NS}><VmRestoreSpec>{}</VmRestoreSpec></RestoreSpec>",
        "<QuickRollback>false</QuickRollback>".repeat(1000)
    );
    let json_flood = format!(
        "{{\"VmRestoreSpec\":{{{}\"QuickRollback\":false}}}}",
        "\"QuickRollback\":false,".repeat(2000)
    );
    let cases: Vec<(&str, &str, String, &[&str])> = vec![
        (
            "XML nested 1500 deep",
            XML,
            deep_xml,
            &["nested too deeply"],
        ),
        ("JSON arrays nested 20000 deep", JSON, deep_json, &["JSON"]),
        (
            "JSON objects nested 3000 deep",
            JSON,
            deep_json_objects,
            &["JSON"],
        ),
        (
            "60 KB element text",
            XML,
            huge_text,
            &["VmNewName", "too long"],
        ),
        ("60 KB JSON string", JSON, huge_json_text, &["VmNewName"]),
        ("60 KB element name", XML, huge_name, &["not a name"]),
        ("60 KB attribute", XML, huge_attr, &["attribute"]),
        ("1000 elements", XML, flood, &["too many elements"]),
        ("2000 JSON members", JSON, json_flood, &["QuickRollback"]),
    ];
    for (what, ct, body, mentions) in cases {
        for accept in both() {
            let r = w
                .send(
                    Req::post(restore)
                        .content_type(ct)
                        .accept(accept)
                        .body(&body),
                )
                .await;
            let m = error_in(&r, accept, StatusCode::BAD_REQUEST, what);
            for want in mentions {
                assert!(m.contains(want), "{what}: {want:?} not in {m}");
            }
        }
    }
    assert_eq!(trace(&w).await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_that_are_not_utf8_are_400_in_xml_and_json() {
    let w = World::new(ONE_MIB).await;
    let before = trace(&w).await;
    let routes = body_routes(&w).await;
    let xml_head = format!("<RestoreSpec {NS}><VmRestoreSpec><VmRestoreParameters><VmNewName>");
    let xml_tail = "</VmNewName></VmRestoreParameters></VmRestoreSpec></RestoreSpec>";
    let json_head = "{\"VmRestoreSpec\":{\"VmRestoreParameters\":{\"VmNewName\":\"";
    let json_tail = "\"}}}";
    let bad: [(&str, &[u8]); 5] = [
        ("a lone continuation byte", b"\x80"),
        ("0xFF 0xFE", b"\xff\xfe"),
        ("an overlong slash", b"\xc0\xaf"),
        ("a UTF-16 surrogate in UTF-8", b"\xed\xa0\x80"),
        ("a truncated sequence", b"\xe2\x82"),
    ];
    for (what, uri, _) in &routes {
        for (case, bytes) in bad {
            for (ct, head, tail) in [
                (XML, xml_head.as_str(), xml_tail),
                (JSON, json_head, json_tail),
            ] {
                let mut body = head.as_bytes().to_vec();
                body.extend_from_slice(bytes);
                body.extend_from_slice(tail.as_bytes());
                for accept in both() {
                    let r = send_raw(
                        &w,
                        Method::POST,
                        uri,
                        &[
                            ("Content-Type", ct.as_bytes()),
                            ("Accept", accept.as_bytes()),
                        ],
                        body.clone(),
                    )
                    .await;
                    let m = error_in(
                        &r,
                        accept,
                        StatusCode::BAD_REQUEST,
                        &format!("{what} {ct}: {case}"),
                    );
                    assert!(m.contains("UTF-8"), "{what} {ct}: {case}: {m}");
                }
            }
        }
        // A whole UTF-16 document (BOM FF FE) is refused the same way.
        let utf16: Vec<u8> = std::iter::once(0xFEFFu16)
            .chain(format!("<RestoreSpec {NS}/>").encode_utf16())
            .flat_map(u16::to_le_bytes)
            .collect();
        let r = send_raw(
            &w,
            Method::POST,
            uri,
            &[("Content-Type", XML.as_bytes())],
            utf16,
        )
        .await;
        let m = error_in(&r, XML, StatusCode::BAD_REQUEST, &format!("{what} UTF-16"));
        assert!(m.contains("UTF-8"), "{what}: {m}");
    }
    assert_eq!(trace(&w).await, before);
}

/// JSON.md A1: the body's format comes from Content-Type, else from its first byte. EM itself
/// ignores Content-Type, so a wrong one (text/plain, curl's default form type) is not refused;
/// a body that is then neither XML nor JSON is a 400 saying so (http_response_codes.md lists
/// no 415).
#[tokio::test(flavor = "multi_thread")]
async fn content_type_picks_the_body_format_and_an_unreadable_body_is_400_saying_so() {
    let w = World::new(ONE_MIB).await;
    let before = trace(&w).await;
    let routes = body_routes(&w).await;
    let json_bad = r#"{"Nope":{}}"#;
    for (what, uri, root) in &routes {
        let xml_bad = format!("<{root} {NS}><Nope/></{root}>");
        let cases: Vec<(&str, Option<&str>, String, &str)> = vec![
            ("no Content-Type, XML body", None, xml_bad.clone(), "<Nope>"),
            (
                "no Content-Type, JSON body",
                None,
                json_bad.into(),
                "\"Nope\"",
            ),
            (
                "text/plain, XML body",
                Some("text/plain"),
                xml_bad.clone(),
                "<Nope>",
            ),
            (
                "form type, JSON body",
                Some("application/x-www-form-urlencoded"),
                json_bad.into(),
                "\"Nope\"",
            ),
            ("JSON type, XML body", Some(JSON), xml_bad.clone(), "JSON"),
            ("XML type, JSON body", Some(XML), json_bad.into(), "XML"),
            (
                "text/plain, text body",
                Some("text/plain"),
                "restore please".into(),
                "neither XML nor JSON",
            ),
            (
                "no type, binary body",
                None,
                "\u{1}\u{2}\u{3}".into(),
                "neither XML nor JSON",
            ),
            (
                "an unknown type, text body",
                Some("application/x-evil; charset=\"utf-7\""),
                "+ADw-RestoreSpec+AD4-".into(),
                "neither XML nor JSON",
            ),
        ];
        for (case, ct, body, mentions) in cases {
            for accept in both() {
                let mut req = Req::post(uri).accept(accept).body(&body);
                if let Some(ct) = ct {
                    req = req.content_type(ct);
                }
                let r = w.send(req).await;
                let m = error_in(
                    &r,
                    accept,
                    StatusCode::BAD_REQUEST,
                    &format!("{what}: {case}"),
                );
                assert!(
                    m.contains(mentions),
                    "{what}: {case}: {mentions:?} not in {m}"
                );
            }
        }
    }
    assert_eq!(trace(&w).await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_session_ids_in_the_cookie_or_the_header_are_401_with_an_error_body() {
    let w = World::new(ONE_MIB).await;
    let before = trace(&w).await;
    let b64 = |s: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, s);
    let huge = "A".repeat(16 * 1024);
    let huge_b64 = b64(uuid::Uuid::new_v4().to_string().repeat(200).as_bytes());
    let values: Vec<(&str, Vec<u8>)> = vec![
        ("not base64", b"%%%***".to_vec()),
        (
            "base64 of bytes that are not UTF-8",
            b64(b"\xff\xfe\xfd").into_bytes(),
        ),
        (
            "base64 of a non-GUID",
            b64(b"../../etc/passwd").into_bytes(),
        ),
        (
            "base64 of a GUID and more",
            b64(format!("{}x", uuid::Uuid::new_v4()).as_bytes()).into_bytes(),
        ),
        (
            "a nil GUID",
            b64(uuid::Uuid::nil().to_string().as_bytes()).into_bytes(),
        ),
        ("16 KiB", huge.clone().into_bytes()),
        ("base64 of 7 KiB", huge_b64.into_bytes()),
        ("bytes that are not ASCII", b"\xc3\xa9\xff\x80".to_vec()),
        ("SQL", b"' OR '1'='1".to_vec()),
        ("empty", Vec::new()),
    ];
    for (what, v) in &values {
        let mut cookie = b"X-RestSvcSessionId=".to_vec();
        cookie.extend_from_slice(v);
        let mut many = b"a=b; X-RestSvcSessionId; =; ;;X-RestSvcSessionId=".to_vec();
        many.extend_from_slice(v);
        let tries: Vec<(&str, Headers)> = vec![
            ("header", vec![("X-RestSvcSessionId", v.as_slice())]),
            ("cookie", vec![("Cookie", cookie.as_slice())]),
            ("cookie among junk", vec![("Cookie", many.as_slice())]),
            // The cookie wins over the header (JSON.md C5): a bad cookie is not rescued by a
            // good header.
            (
                "cookie beside a valid header",
                vec![
                    ("Cookie", cookie.as_slice()),
                    ("X-RestSvcSessionId", w.token.as_bytes()),
                ],
            ),
        ];
        for (how, headers) in tries {
            for accept in both() {
                let mut h = headers.clone();
                h.push(("Accept", accept.as_bytes()));
                let r = send_raw(
                    &w,
                    Method::GET,
                    "/api/vmRestorePoints?format=Entity",
                    &h,
                    Vec::new(),
                )
                .await;
                error_in(
                    &r,
                    accept,
                    StatusCode::UNAUTHORIZED,
                    &format!("{what} in {how}"),
                );
                assert!(r.header("www-authenticate").is_some(), "{what} in {how}");
                let r = send_raw(
                    &w,
                    Method::POST,
                    &format!(
                        "/api/vmRestorePoints/{}?action=restore",
                        uuid::Uuid::new_v4()
                    ),
                    &h,
                    Vec::new(),
                )
                .await;
                error_in(
                    &r,
                    accept,
                    StatusCode::UNAUTHORIZED,
                    &format!("POST, {what} in {how}"),
                );
            }
        }
    }
    assert_eq!(trace(&w).await, before);
}

/// VM names are the only API names that reach the inventory; they are stored in configs and
/// never used as paths, and still refused when they look like one (platform names.rs). Account
/// names live only in the catalog: a path-like one is a plain name and creates no file.
#[tokio::test(flavor = "multi_thread")]
async fn path_like_names_are_refused_or_stay_names_and_no_file_appears() {
    let w = World::new(ONE_MIB).await;
    let before = trace(&w).await;
    let point = w.point("web01", PointType::Full).await.id;
    let uri = format!("/api/vmRestorePoints/{point}?action=restore");
    for name in [
        "..",
        ".",
        "/etc/passwd",
        "..\\..\\windows",
        "a/../../b",
        "x\u{0}y",
        "line\nbreak",
        "\u{1b}[31mred",
        &"n".repeat(129),
    ] {
        let body = serde_json::json!({"VmRestoreSpec": {"PowerOnAfterRestore": false,
            "QuickRollback": false, "KeepOriginalVM": true,
            "VmRestoreParameters": {"VmRestorePointUid": format!("urn:veeam:VmRestorePoint:{point}"),
                "VmNewName": name}}})
        .to_string();
        for accept in both() {
            let r = w
                .send(
                    Req::post(&uri)
                        .content_type(JSON)
                        .accept(accept)
                        .body(&body),
                )
                .await;
            let m = error_in(
                &r,
                accept,
                StatusCode::BAD_REQUEST,
                &format!("VmNewName {name:?}"),
            );
            assert!(m.contains("VmNewName"), "{name:?}: {m}");
        }
    }
    assert_eq!(trace(&w).await, before);

    // An account named like a path is a name: created, listed as sent, no file made.
    let files_before = files(&w);
    let body = serde_json::json!({"AccountType": "User", "AccountName": "EVIL\\..\\..\\..\\tmp/x",
        "Roles": {"EnterpriseRoles": [{"EnterpriseRoleUid": PORTAL_USER}]}, "AllowRestoreAllVms": true})
    .to_string();
    let r = w
        .send(
            Req::post("/api/security/accounts")
                .content_type(JSON)
                .accept(JSON)
                .body(&body),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(files(&w), files_before);
}

/// Every `{ID}` route, with IDs that are not IDs of its kind: 400 naming the ID, short (a huge
/// ID is not echoed back), in both formats, nothing changed.
#[tokio::test(flavor = "multi_thread")]
async fn ids_that_are_not_uuids_are_400_on_every_id_route() {
    let w = World::new(ONE_MIB).await;
    let before = trace(&w).await;
    let routes: Vec<(Method, &str)> = vec![
        (Method::GET, "/api/logonSessions/{ID}"),
        (Method::DELETE, "/api/logonSessions/{ID}"),
        (Method::GET, "/api/backupServers/{ID}"),
        (Method::GET, "/api/backups/{ID}"),
        (Method::GET, "/api/backups/{ID}/restorePoints"),
        (Method::GET, "/api/restorePoints/{ID}"),
        (Method::GET, "/api/restorePoints/{ID}/vmRestorePoints"),
        (Method::GET, "/api/restorePoints/{ID}/backupFiles"),
        (Method::GET, "/api/vmRestorePoints/{ID}"),
        (Method::POST, "/api/vmRestorePoints/{ID}?action=restore"),
        (Method::GET, "/api/hierarchyRoots/{ID}"),
        (Method::GET, "/api/backupFiles/{ID}"),
        (Method::GET, "/api/tasks/{ID}"),
        (Method::DELETE, "/api/tasks/{ID}"),
        (Method::GET, "/api/restoreSessions/{ID}"),
        (Method::GET, "/api/restoreSessions/{ID}/log"),
        (Method::GET, "/api/security/accounts/{ID}"),
        (
            Method::POST,
            "/api/security/accounts/{ID}?action=toggleRestoreScopes",
        ),
        (Method::DELETE, "/api/security/accounts/{ID}"),
        (Method::GET, "/api/security/accounts/{ID}/roles"),
        (Method::POST, "/api/security/accounts/{ID}/roles"),
        (Method::GET, "/api/security/accounts/{ID}/roles/{ID}"),
        (Method::DELETE, "/api/security/accounts/{ID}/roles/{ID}"),
        (Method::GET, "/api/security/accounts/{ID}/scopes"),
        (Method::POST, "/api/security/accounts/{ID}/scopes"),
        (Method::GET, "/api/security/accounts/{ID}/scopes/{ID}"),
        (Method::DELETE, "/api/security/accounts/{ID}/scopes/{ID}"),
        (Method::GET, "/api/security/roles/{ID}"),
        (Method::GET, "/api/jobs/{ID}"),
        (Method::POST, "/api/jobs/{ID}?action=start"),
        (Method::GET, "/api/jobs/{ID}/includes"),
        (Method::GET, "/api/jobs/{ID}/backupSessions"),
        (Method::GET, "/api/backupSessions/{ID}"),
        (Method::POST, "/api/backupSessions/{ID}?action=stop"),
        (Method::GET, "/api/backupSessions/{ID}/taskSessions"),
        (Method::GET, "/api/backupTaskSessions/{ID}"),
        (Method::GET, "/api/repositories/{ID}"),
        (Method::GET, "/api/repositories/{ID}/backups"),
    ];
    let huge = "9".repeat(20_000);
    let ids = [
        "not-a-uuid",
        "%2e%2e",
        "..%2F..%2Fetc%2Fpasswd",
        "%00",
        "%FF%FE",
        "urn:veeam:NoSuchKind:1ed39e5b-06e1-4fbb-a106-52537b5e059e",
        "1ed39e5b-06e1-4fbb-a106-52537b5e059",
        "%27%20OR%20%271%27%3D%271",
        "task-99999999999999999999999999",
        huge.as_str(),
    ];
    for (method, template) in &routes {
        for id in ids {
            let uri = template.replace("{ID}", id);
            for accept in both() {
                let mut req = Req::new(method.clone(), &uri).accept(accept);
                if *method == Method::POST {
                    req = req.content_type(XML);
                }
                let r = w.send(req).await;
                let what = format!("{method} {}", &uri[..uri.len().min(80)]);
                let m = error_in(&r, accept, StatusCode::BAD_REQUEST, &what);
                assert!(m.contains("ID"), "{what}: {m}");
            }
        }
    }
    assert_eq!(trace(&w).await, before);
}

/// A query filter of nested groups is parsed by recursion: a URL of '(' once overflowed the
/// blocking thread's stack and aborted the whole server (found while writing the filter fuzz target).
#[tokio::test(flavor = "multi_thread")]
async fn a_filter_nested_beyond_the_limit_is_400_not_a_crash() {
    let w = World::new(ONE_MIB).await;
    // 20 000 levels: as deep as a URL allows (http caps a URI at 64 KiB).
    let deep = format!("{}name==a{}", "(".repeat(20_000), ")".repeat(20_000));
    for accept in both() {
        let r = w
            .send(Req::get(&format!("/api/query?type=VmRestorePoint&filter={deep}")).accept(accept))
            .await;
        let m = error_in(&r, accept, StatusCode::BAD_REQUEST, "deep filter");
        assert!(
            m.contains("nested too deeply") && m.contains("position 33"),
            "{m}"
        );
    }
    // The server still answers.
    assert_eq!(
        w.get_xml("/api/vmRestorePoints").await.status,
        StatusCode::OK
    );
}
