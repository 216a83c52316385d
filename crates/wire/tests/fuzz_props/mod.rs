//! The properties the request-body fuzz targets check, shared by the fuzz targets (fuzz/) and the
//! corpus replay test (tests/fuzz_corpus.rs): whatever the bytes, a decoder returns (never panics,
//! never hangs: input is bounded by MAX_REQUEST_BODY and every loop consumes input), and an
//! error is a short, non-empty message that names its element when it has one.

use emrest_wire::{
    decode_account_create_spec, decode_create_object_in_job_spec, decode_job_clone_spec,
    decode_job_edit_spec, decode_password_spec, decode_restore_spec, decode_role_create_spec,
    decode_scope_create_spec, DecodeError, Format, OrderPolicy,
};

/// The first byte picks the format and the order policy; the rest is the body.
fn split(data: &[u8]) -> (Format, OrderPolicy, u8, &[u8]) {
    let (first, body) = match data.split_first() {
        Some((f, b)) => (*f, b),
        None => (0, data),
    };
    let format = if first & 1 == 0 {
        Format::Xml
    } else {
        Format::Json
    };
    let order = if first & 2 == 0 {
        OrderPolicy::Strict
    } else {
        OrderPolicy::Lenient
    };
    (format, order, first >> 2, body)
}

/// A decode error is well formed: a message a client can read, short (inputs are never echoed
/// at length), naming its element when it has one.
pub fn check_error(e: &DecodeError) {
    assert!(!e.message.trim().is_empty(), "empty message: {e:?}");
    assert!(
        e.message.len() <= 600,
        "message of {} bytes: {e:?}",
        e.message.len()
    );
    if let Some(el) = &e.element {
        let short: String = el.chars().take(20).collect();
        assert!(
            e.message.contains(&short),
            "message does not name element {el:?}: {e:?}"
        );
    }
}

/// `decode_restore_spec` on fuzz input.
pub fn restore_spec(data: &[u8]) {
    let (format, order, _, body) = split(data);
    if let Err(e) = decode_restore_spec(body, format, order) {
        check_error(&e);
    }
}

/// The security API's three decoders on fuzz input (the first byte also picks the decoder).
pub fn security_spec(data: &[u8]) {
    let (format, order, which, body) = split(data);
    let result = match which % 3 {
        0 => decode_account_create_spec(body, format, order).map(|_| ()),
        1 => decode_role_create_spec(body, format, order).map(|_| ()),
        _ => decode_scope_create_spec(body, format, order).map(|_| ()),
    };
    if let Err(e) = result {
        check_error(&e);
    }
}

/// The job management bodies (edit, clone, include) and the password extension's body on fuzz
/// input (the first byte also picks the decoder).
pub fn job_spec(data: &[u8]) {
    let (format, order, which, body) = split(data);
    let result = match which % 4 {
        0 => decode_job_edit_spec(body, format, order).map(|_| ()),
        1 => decode_job_clone_spec(body, format, order).map(|_| ()),
        2 => decode_create_object_in_job_spec(body, format, order).map(|_| ()),
        _ => decode_password_spec(body, format, order).map(|_| ()),
    };
    if let Err(e) = result {
        check_error(&e);
    }
}
