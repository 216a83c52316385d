//! Replays the committed fuzz corpus (tests/fuzz_corpus/<target>/, minimised from cargo-fuzz
//! runs of fuzz/) through the same property checks the fuzz targets run, so every input that
//! once found a bug, and every input that reaches a distinct path, stays a regression test.

mod fuzz_props;

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{} fails its property", path.display());
        n += 1;
    }
    assert!(n > 0, "no corpus in {}", dir.display());
}

#[test]
fn restore_spec_corpus_decodes_without_panics_and_with_well_formed_errors() {
    replay("restore_spec", fuzz_props::restore_spec);
}

#[test]
fn security_spec_corpus_decodes_without_panics_and_with_well_formed_errors() {
    replay("security_spec", fuzz_props::security_spec);
}

#[test]
fn job_spec_corpus_decodes_without_panics_and_with_well_formed_errors() {
    replay("job_spec", fuzz_props::job_spec);
}
