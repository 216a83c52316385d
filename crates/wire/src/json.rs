//! JSON encoder for the element tree (JSON.md section A).
//!
//! The root element's name is dropped (A2); members keep their XML names (A3);
//! attributes are ordinary properties (A4); members come most-derived class first
//! (A5); unset members are `null` (A8); output is compact (A10).

use crate::node::{List, Member, Node, Scalar, Value};

/// Encodes `node` as a compact JSON object (the root element itself is dropped).
pub fn encode_document(node: &Node) -> Vec<u8> {
    let mut out = String::with_capacity(4096);
    write_object(&mut out, node);
    out.into_bytes()
}

fn write_object(out: &mut String, node: &Node) {
    out.push('{');
    let mut first = true;
    for m in node.layers.iter().flatten() {
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
                    write_object(out, n);
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
        Scalar::Int(i) => out.push_str(&i.to_string()),
        // JSON has no representation for NaN or infinity.
        Scalar::Float(f) if !f.is_finite() => out.push_str("null"),
        Scalar::Float(f) => out.push_str(&f.to_string()),
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    // Copy the runs between escaped characters whole (bench/api.sh profile).
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let rep = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            '\u{8}' => "\\b",
            '\u{c}' => "\\f",
            c if (c as u32) < 0x20 => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if rep.is_empty() {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push_str(rep);
        }
        start = i + c.len_utf8();
    }
    out.push_str(&s[start..]);
    out.push('"');
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
    fn text_member_is_value_property() {
        // JSON.md A4: `<Day Name="Sunday">1,1</Day>` → `{"Name":"Sunday","Value":"1,1"}`.
        let n = Node::new("Day").layer(vec![attr("Name", "Sunday"), Member::Text("1,1".into())]);
        let s = String::from_utf8(encode_document(&n)).unwrap();
        assert_eq!(s, r#"{"Name":"Sunday","Value":"1,1"}"#);
    }
}
