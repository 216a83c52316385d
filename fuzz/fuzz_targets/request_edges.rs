//! What the server reads from every request before a handler: path, query string, Basic
//! credentials, session header and cookie (five fields split by 0xFF); the property is
//! crates/server/tests/fuzz_props.
#![no_main]

#[path = "../../crates/server/tests/fuzz_props/mod.rs"]
mod fuzz_props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_props::request_edges(data));
