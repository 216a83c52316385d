//! JSON encoder for the element tree (JSON.md section A).
//!
//! The root element's name is dropped (A2); members keep their XML names (A3);
//! attributes are ordinary properties (A4); members come most-derived class first
//! (A5); unset members are `null` (A8); output is compact (A10).

use crate::node::{List, Member, Node, Scalar, Value};

/// Encodes `node` as a compact JSON object (the root element itself is dropped).
pub fn encode_document(node: &Node) -> Vec<u8> {
    let mut out = String::with_capacity(node.size_hint() + 256);
    write_object(&mut out, node);
    out.into_bytes()
}

/// The start of an object holding one list under `key`: what [`encode_document`] writes
/// before the first item.
pub(crate) fn list_open(out: &mut String, key: &str) {
    out.push('{');
    write_key(out, key);
    out.push('[');
}

/// One item of such a list, after [`list_open`] (`first`) or the item before it.
pub(crate) fn list_item(out: &mut String, first: bool, node: &Node) {
    if !first {
        out.push(',');
    }
    write_object(out, node);
}

/// The end of such a list.
pub(crate) fn list_close(out: &mut String) {
    out.push_str("]}");
}

fn write_object(out: &mut String, node: &Node) {
    out.push('{');
    let mut first = true;
    for m in node.layers().flatten() {
        if !first {
            out.push(',');
        }
        first = false;
        match m {
            Member::Attr { name, value } => {
                write_key(out, name);
                write_scalar(out, value);
            }
            Member::Elem { name, value } => {
                write_key(out, name);
                write_value(out, value);
            }
            Member::Text(value) => {
                write_key(out, "Value");
                write_scalar(out, value);
            }
        }
    }
    out.push('}');
}

fn write_key(out: &mut String, key: &str) {
    write_string(out, key);
    out.push(':');
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Scalar(s) => write_scalar(out, s),
        Value::Node(n) => write_object(out, n),
        Value::List(List { items, .. }) => match items {
            None => out.push_str("null"),
            Some(items) => {
                out.push('[');
                for (i, n) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    // An item that is only text (`<Days>Sunday</Days>`) is a bare JSON value
                    // (resource_representation_for_ke.md: `"Days": ["Sunday", …]`).
                    match n.layers().flatten().collect::<Vec<_>>().as_slice() {
                        [Member::Text(v)] => write_scalar(out, v),
                        _ => write_object(out, n),
                    }
                }
                out.push(']');
            }
        },
    }
}

fn write_scalar(out: &mut String, s: &Scalar) {
    match s {
        Scalar::Null => out.push_str("null"),
        Scalar::Str(v) => write_string(out, v),
        Scalar::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Scalar::Int(i) => push_fmt(out, format_args!("{i}")),
        // JSON has no representation for NaN or infinity.
        Scalar::Float(f) if !f.is_finite() => out.push_str("null"),
        Scalar::Float(f) => push_fmt(out, format_args!("{f}")),
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    // Copy the runs between escaped characters whole (bench/api.sh profile). Every character
    // that needs escaping is ASCII, so scanning bytes finds them and the cuts fall on
    // character boundaries.
    let bytes = s.as_bytes();
    let mut start = 0;
    let clean = clean_prefix(bytes);
    for (i, &b) in bytes.iter().enumerate().skip(clean) {
        let rep = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if rep.is_empty() {
            push_fmt(out, format_args!("\\u{b:04x}"));
        } else {
            out.push_str(rep);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// How many leading bytes of `bytes` need no escaping (none is `"`, `\\` or a control
/// character), eight at a time: most strings (URLs, names, UIDs) need none at all.
fn clean_prefix(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // The high bit of each byte of the result is set where a byte of `x` is below `n`
    // (bytes of 0x80 and above never are: `& !x`); a byte equal to `c` is a zero of x ^ c.
    let below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGH;
    let mut i = 0;
    while i + 8 <= bytes.len() {
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[i..i + 8]);
        let x = u64::from_le_bytes(word);
        if below(x, 0x20)
            | below(x ^ (ONES * u64::from(b'"')), 1)
            | below(x ^ (ONES * u64::from(b'\\')), 1)
            != 0
        {
            break;
        }
        i += 8;
    }
    i
}

/// Formats straight into the output, without a temporary string.
fn push_fmt(out: &mut String, args: std::fmt::Arguments<'_>) {
    use std::fmt::Write;
    // Writing to a String cannot fail.
    let _ = out.write_fmt(args);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::{attr, elem, Member};

    #[test]
    fn escapes_strings_and_writes_numbers() {
        let n = Node::new("X").layer(vec![
            elem("S", "a\"b\\c\n\u{1}é"),
            elem("I", -1i64),
            elem("F", 0.5f64),
            elem("N", f64::NAN),
            attr("B", true),
        ]);
        let s = String::from_utf8(encode_document(&n)).unwrap();
        assert_eq!(
            s,
            r#"{"S":"a\"b\\c\n\u0001é","I":-1,"F":0.5,"N":null,"B":true}"#
        );
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["S"], "a\"b\\c\n\u{1}é");
    }

    #[test]
    fn escapes_wherever_the_character_falls_in_a_long_string() {
        // Every position relative to the eight-byte steps of the scan, and bytes >= 0x80
        // around it (multi-byte characters are copied whole).
        for c in ['"', '\\', '\n', '\u{1}', '\u{1f}'] {
            for at in 0..20 {
                let mut v: String = "é-abcdefghijklmnopqrstuvwxyz".chars().take(at).collect();
                v.push(c);
                v.push_str("ü0123456789");
                let n = Node::new("X").layer(vec![elem("S", v.as_str())]);
                let out = String::from_utf8(encode_document(&n)).unwrap();
                let expected = serde_json::to_string(&v).unwrap();
                assert_eq!(out, format!("{{\"S\":{expected}}}"));
            }
        }
        let plain = "http://host:9399/api/vmRestorePoints/e9f5cbc4?format=Entity";
        let n = Node::new("X").layer(vec![elem("S", plain)]);
        let out = String::from_utf8(encode_document(&n)).unwrap();
        assert_eq!(out, format!("{{\"S\":\"{plain}\"}}"));
    }

    #[test]
    fn text_member_is_value_property() {
        // JSON.md A4: `<Day Name="Sunday">1,1</Day>` → `{"Name":"Sunday","Value":"1,1"}`.
        let n = Node::new("Day").layer(vec![attr("Name", "Sunday"), Member::Text("1,1".into())]);
        let s = String::from_utf8(encode_document(&n)).unwrap();
        assert_eq!(s, r#"{"Name":"Sunday","Value":"1,1"}"#);
    }
}
