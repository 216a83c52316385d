//! Replays the committed corpus of the `request_edges` fuzz target (tests/fuzz_corpus/) through
//! the property the target checks.

mod fuzz_props;

#[test]
fn request_edges_corpus_reads_without_panics() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_corpus/request_edges");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| fuzz_props::request_edges(&data));
        assert!(outcome.is_ok(), "{} fails its property", path.display());
        n += 1;
    }
    assert!(n > 0, "no corpus in {}", dir.display());
}
