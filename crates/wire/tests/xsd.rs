//! The published XML schema (docs/schema/emrest.xsd) describes what emrest emits and accepts:
//! every golden XML file and every request fixture validates against it with `xmllint`, and
//! the schema refuses what a strict XML client refuses (unknown, misplaced or misspelt
//! elements, `True` for a boolean).
//!
//! xmllint (Debian package `libxml2-utils`) is required: `scripts/test` installs it. Without it
//! these tests fail with the command that installs it; they do not skip.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use emrest_wire::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn schema() -> PathBuf {
    root().join("docs/schema/emrest.xsd")
}

fn xmllint() -> Command {
    let ok = Command::new("xmllint")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "xmllint is required to validate XML against docs/schema/emrest.xsd: \
         install it with `scripts/test --install-only` (or `apt-get install libxml2-utils`)"
    );
    let mut c = Command::new("xmllint");
    c.arg("--noout").arg("--schema").arg(schema());
    c
}

fn xml_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .collect();
    v.sort();
    v
}

/// Validates files; panics with xmllint's messages when any fails.
fn validate_files(files: &[PathBuf]) {
    let out = xmllint().args(files).output().unwrap();
    assert!(
        out.status.success(),
        "documents do not match docs/schema/emrest.xsd:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Validates one document given as text; returns xmllint's messages on failure.
fn validate_text(xml: &str) -> Result<(), String> {
    let mut child = xmllint()
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(xml.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn every_golden_xml_file_is_valid_against_the_schema() {
    let files = xml_files(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden"));
    assert!(files.len() > 50, "golden files not found: {files:?}");
    validate_files(&files);
}

#[test]
fn every_request_fixture_is_valid_and_is_accepted_by_the_decoders() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/requests");
    let files = xml_files(&dir);
    assert!(files.len() >= 7, "request fixtures not found: {files:?}");
    validate_files(&files);
    for f in &files {
        let body = std::fs::read(f).unwrap();
        let name = f.file_name().unwrap().to_string_lossy();
        let decoded = if name.starts_with("restore_spec") {
            decode_restore_spec(&body, Format::Xml, OrderPolicy::Strict).map(|_| ())
        } else if name.starts_with("enterprise_account_create_spec") {
            decode_account_create_spec(&body, Format::Xml, OrderPolicy::Strict).map(|_| ())
        } else if name.starts_with("enterprise_account_in_role_create_spec") {
            decode_role_create_spec(&body, Format::Xml, OrderPolicy::Strict).map(|_| ())
        } else if name.starts_with("hierarchy_scope_create_spec") {
            decode_scope_create_spec(&body, Format::Xml, OrderPolicy::Strict).map(|_| ())
        } else if name.starts_with("job_edit") {
            emrest_wire::decode_job_edit_spec(&body, Format::Xml, OrderPolicy::Strict).map(|_| ())
        } else if name.starts_with("job_clone_spec") {
            emrest_wire::decode_job_clone_spec(&body, Format::Xml, OrderPolicy::Strict).map(|_| ())
        } else if name.starts_with("create_object_in_job_spec") {
            emrest_wire::decode_create_object_in_job_spec(&body, Format::Xml, OrderPolicy::Strict)
                .map(|_| ())
        } else {
            panic!("{name}: no decoder for this fixture");
        };
        decoded.unwrap_or_else(|e| panic!("{name} is refused by emrest: {e}"));
    }
}

const NS: &str = r#"xmlns="http://www.veeam.com/ent/v1.0""#;

#[test]
fn the_schema_refuses_what_strict_clients_refuse() {
    let golden = |name: &str| {
        std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("tests/golden")
                .join(name),
        )
        .unwrap()
    };
    let task = golden("task_finished.xml");
    assert!(validate_text(&task).is_ok());
    let cases = [
        (
            "an unknown element",
            task.replace("<TaskId>", "<Colour>red</Colour><TaskId>"),
            "Colour",
        ),
        (
            "elements out of order",
            task.replace("<State>Finished</State>", "").replace(
                "</TaskId>",
                "</TaskId><Operation>x</Operation><State>Finished</State>",
            ),
            "Operation",
        ),
        (
            "a boolean in upper case",
            task.replace(r#"Success="true""#, r#"Success="True""#),
            "Success",
        ),
        (
            "a misspelt state",
            task.replace("<State>Finished</State>", "<State>finished</State>"),
            "State",
        ),
        (
            "a foreign namespace",
            task.replace(NS, r#"xmlns="urn:example:other""#),
            "Task",
        ),
        (
            "a request element out of order",
            format!(
                "<RestoreSpec {NS}><VmRestoreSpec><QuickRollback>true</QuickRollback>\
                 <PowerOnAfterRestore>true</PowerOnAfterRestore></VmRestoreSpec></RestoreSpec>"
            ),
            "PowerOnAfterRestore",
        ),
        (
            "both spellings of power-on",
            format!(
                "<RestoreSpec {NS}><VmRestoreSpec><PowerOnAfterRestore>true</PowerOnAfterRestore>\
                 <PowerOnAfter>true</PowerOnAfter></VmRestoreSpec></RestoreSpec>"
            ),
            "PowerOnAfter",
        ),
        (
            "paging without its page number",
            golden("query_result_refs.xml").replace(r#"PageNum="2" "#, ""),
            "PageNum",
        ),
    ];
    for (what, xml, named) in cases {
        let e = validate_text(&xml).expect_err(what);
        assert!(e.contains(named), "{what}: {e}");
    }
}
