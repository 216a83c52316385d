//! The query filter parser, its round trip and its SQL on a demo catalog; the property is
//! crates/core/tests/fuzz_props.
#![no_main]

#[path = "../../crates/core/tests/fuzz_props/mod.rs"]
mod fuzz_props;

use std::sync::OnceLock;

static WORLD: OnceLock<fuzz_props::World> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let w = WORLD.get_or_init(fuzz_props::World::new);
    fuzz_props::filter(w, data)
});
