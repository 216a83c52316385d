//! The security API's account, role and scope create specs in XML and JSON (first byte);
//! the property is crates/wire/tests/fuzz_props.
#![no_main]

#[path = "../../crates/wire/tests/fuzz_props/mod.rs"]
#[allow(dead_code)]
mod fuzz_props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_props::security_spec(data));
