//! RestoreSpec in XML and JSON, strict and lenient order (first byte), through
//! `decode_restore_spec`; the property is crates/wire/tests/fuzz_props.
#![no_main]

#[path = "../../crates/wire/tests/fuzz_props/mod.rs"]
#[allow(dead_code)]
mod fuzz_props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_props::restore_spec(data));
