//! `emrest serve --ldap-*`: the flags reach the directory (a real slapd started by the test),
//! a directory that goes down is named in the server's log, and bad flags are refused in one
//! line before anything is created.

mod common;
#[path = "../../server/tests/api/slapd.rs"]
#[allow(dead_code)]
mod slapd;

use common::*;
use slapd::*;

#[test]
fn bad_directory_flags_fail_with_one_clear_line_and_create_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let d = arg(&data);
    let serve = |extra: &[&str]| {
        let mut a = vec![
            "serve",
            "--data",
            d,
            "--http",
            "127.0.0.1:0",
            "--https",
            "off",
        ];
        a.extend_from_slice(extra);
        emrest(&a)
    };
    let template = "uid={user},ou=people,dc=example,dc=org";
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "--ldap-url",
                "ldap://127.0.0.1:389",
                "--ldap-domain",
                "EXAMPLE",
                "--ldap-bind-template",
                template,
            ],
            "--ldap-insecure",
        ),
        (
            &[
                "--ldap-url",
                "ldaps://127.0.0.1:636",
                "--ldap-domain",
                "EXAMPLE",
            ],
            "--ldap-bind-template or --ldap-search-base",
        ),
        (
            &[
                "--ldap-url",
                "ldaps://127.0.0.1:636",
                "--ldap-bind-template",
                template,
            ],
            "--ldap-domain",
        ),
        (
            &[
                "--ldap-url",
                "ldaps://127.0.0.1:636",
                "--ldap-domain",
                "EXAMPLE",
                "--ldap-bind-template",
                "uid=x,dc=org",
            ],
            "{user}",
        ),
        (
            &[
                "--ldap-url",
                "ldaps://127.0.0.1:636",
                "--ldap-domain",
                "EXAMPLE",
                "--ldap-bind-template",
                template,
                "--ldap-group-role",
                "cn=g,dc=org=Wizard",
            ],
            "'Wizard' is not a role",
        ),
        (
            &[
                "--ldap-url",
                "ldaps://127.0.0.1:636",
                "--ldap-domain",
                "EXAMPLE",
                "--ldap-bind-template",
                template,
                "--ldap-ca-file",
                "/nonexistent/ca.pem",
            ],
            "cannot read /nonexistent/ca.pem",
        ),
        (&["--ldap-starttls"], "--ldap-url"),
    ];
    for (extra, needle) in cases {
        let run = serve(extra);
        assert!(!run.status.success(), "expected a failure: {run:?}");
        let first = run.stderr.lines().next().unwrap_or_default();
        assert!(
            run.stderr.contains(needle),
            "{needle:?} not in: {}",
            run.stderr
        );
        if first.starts_with("emrest: ") {
            assert_eq!(run.stderr.trim_end().lines().count(), 1, "{}", run.stderr);
        }
        assert!(!data.exists(), "serve {extra:?} left a data folder behind");
    }
}

#[test]
fn serve_logs_directory_users_on_and_names_a_directory_that_is_down() {
    let mut s = Slapd::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let ca = s.ca_file();
    let server = Server::start_with(
        ServerOptions {
            data: &data,
            https: false,
            demo: false,
            admin_password: Some("admin pw"),
        },
        &[
            "--ldap-url",
            &s.ldaps_url,
            "--ldap-ca-file",
            arg(&ca),
            "--ldap-search-base",
            "ou=people,dc=example,dc=org",
            "--ldap-user-filter",
            "(&(objectClass=inetOrgPerson)(uid={user}))",
            "--ldap-domain",
            "EXAMPLE",
            "--ldap-domain",
            "example.org",
            "--ldap-group-role",
            &format!("{RESTORERS}=VmRestoreOperator"),
        ],
    );
    let token = server.logon("alice@example.org", ALICE_PW);
    let me = server.call(&token, "GET", "/api/logonSessions", None);
    assert_eq!(me.status, 200, "{}", me.text());
    assert!(me.text().contains("EXAMPLE\\\\alice"), "{}", me.text());
    assert_eq!(server.logon_response("EXAMPLE\\bob", BOB_PW).status, 401);

    s.stop();
    let r = server.logon_response("EXAMPLE\\alice", ALICE_PW);
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(
        r.text().contains("Invalid user name or password."),
        "{}",
        r.text()
    );
    server.logon("admin", "admin pw");
    let log = server.stop();
    assert!(
        log.contains(&format!("directory {} unavailable", s.ldaps_url)),
        "{log}"
    );
}
