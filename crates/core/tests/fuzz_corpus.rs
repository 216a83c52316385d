//! Replays the committed filter fuzz corpus (tests/fuzz_corpus/filter/, minimised from
//! cargo-fuzz runs of fuzz/) through the same property the fuzz target checks.

mod fuzz_props;

use std::path::Path;

#[test]
fn filter_corpus_parses_round_trips_and_compiles_to_valid_sql() {
    let w = fuzz_props::World::new();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_corpus/filter");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            fuzz_props::filter(&w, &data)
        }));
        assert!(outcome.is_ok(), "{} fails its property", path.display());
        n += 1;
    }
    assert!(n > 0, "no corpus in {}", dir.display());
}
