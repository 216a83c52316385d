//! The `<Error>` body every failed request carries, and the crate's decode error.
//!
//! Error policy: encoding never fails (the encoders write into memory and every
//! value has a representation); decoding a request body fails with a
//! [`DecodeError`] whose message is safe to show to the client (it names the
//! offending element and never echoes more than a short value). A server maps a
//! `DecodeError` to 400; anything else it cannot encode falls back to
//! [`fallback_error_body`].

use crate::node::{attr, elem, Node, Representation};
use crate::Format;

/// The `<Error>` representation (JSON.md B11, em_rest/http_response_codes.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// Client-facing message.
    pub message: String,
    /// HTTP status code, repeated in the body.
    pub status_code: u16,
    /// Message of the first-chance exception, when there is one worth showing.
    pub first_chance_exception_message: Option<String>,
    /// Stack trace; emrest never sends one.
    pub stack_trace: Option<String>,
    /// Status text.
    pub status: Option<String>,
}

impl Error {
    /// An error body with only a message and a status code.
    pub fn new(status_code: u16, message: impl Into<String>) -> Self {
        Error {
            message: message.into(),
            status_code,
            first_chance_exception_message: None,
            stack_trace: None,
            status: None,
        }
    }
}

impl Representation for Error {
    fn to_node(&self) -> Node<'_> {
        let Error {
            message,
            status_code,
            first_chance_exception_message,
            stack_trace,
            status,
        } = self;
        // The real JSON is alphabetical — `FirstChanceExceptionMessage, Message,
        // StackTrace, Status, StatusCode` — and the real XML has attributes
        // `Message StatusCode` and the child `FirstChanceExceptionMessage`
        // (JSON.md A5, B11).
        Node::new("Error").layer(vec![
            elem(
                "FirstChanceExceptionMessage",
                first_chance_exception_message,
            ),
            attr("Message", message),
            elem("StackTrace", stack_trace),
            attr("Status", status),
            attr("StatusCode", *status_code),
        ])
    }
}

const FALLBACK_XML: &[u8] = b"<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Error Message=\"Internal server error.\" StatusCode=\"500\" xmlns=\"http://www.veeam.com/ent/v1.0\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" />\n";
const FALLBACK_JSON: &[u8] = b"{\"FirstChanceExceptionMessage\":null,\"Message\":\"Internal server error.\",\"StackTrace\":null,\"Status\":null,\"StatusCode\":500}";

/// A fixed 500 Error body, for when building the real response failed.
pub fn fallback_error_body(format: Format) -> &'static [u8] {
    match format {
        Format::Xml => FALLBACK_XML,
        Format::Json => FALLBACK_JSON,
    }
}

/// A request body that cannot be accepted; its message is meant for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DecodeError {
    /// The element (or JSON property) at fault, when there is one.
    pub element: Option<String>,
    /// What is wrong, naming the element and what was expected.
    pub message: String,
}

impl DecodeError {
    /// An error about the element `element`.
    pub(crate) fn at(element: &str, message: impl Into<String>) -> Self {
        DecodeError {
            element: Some(element.to_owned()),
            message: message.into(),
        }
    }

    /// An error about the body as a whole.
    pub(crate) fn body(message: impl Into<String>) -> Self {
        DecodeError {
            element: None,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_bodies_equal_the_encoded_error() {
        let e = Error::new(500, "Internal server error.");
        assert_eq!(crate::encode(&e, Format::Xml), FALLBACK_XML);
        assert_eq!(crate::encode(&e, Format::Json), FALLBACK_JSON);
    }
}
