//! The job management bodies (JobEditSpec / schedule options, JobCloneSpec,
//! CreateObjectInJobSpec) and the password extension's AccountPasswordSpec, in XML and JSON
//! (first byte); the property is crates/wire/tests/fuzz_props.
#![no_main]

#[path = "../../crates/wire/tests/fuzz_props/mod.rs"]
#[allow(dead_code)]
mod fuzz_props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_props::job_spec(data));
