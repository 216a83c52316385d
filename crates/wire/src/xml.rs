//! XML encoder for the element tree.
//!
//! Output follows what Enterprise Manager's XmlSerializer writes: an XML
//! declaration, the root's own attributes followed by the namespace declarations
//! (the real `<Error>` body in JSON.md B11 and em_rest/backups_id.md), two-space
//! indentation, `<X />` for empty elements, and lower-case `true`/`false`.

use crate::node::{List, ListStyle, Member, Node, Scalar, Value};
use std::borrow::Cow;

/// Namespace of every Enterprise Manager REST document.
pub const NAMESPACE: &str = "http://www.veeam.com/ent/v1.0";
/// Namespace declared as `xmlns:xsd` on every root element.
pub const XSD_NAMESPACE: &str = "http://www.w3.org/2001/XMLSchema";
/// Namespace declared as `xmlns:xsi` on every root element.
pub const XSI_NAMESPACE: &str = "http://www.w3.org/2001/XMLSchema-instance";

const DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n";

const ROOT_NAMESPACES: [(&str, &str); 3] = [
    ("xmlns", NAMESPACE),
    ("xmlns:xsd", XSD_NAMESPACE),
    ("xmlns:xsi", XSI_NAMESPACE),
];

/// Encodes `node` as a complete XML document.
pub fn encode_document(node: &Node) -> Vec<u8> {
    let mut out = String::with_capacity(node.size_hint() * 5 / 4 + 512);
    out.push_str(DECLARATION);
    write_element(&mut out, node.name, node, 0, &ROOT_NAMESPACES);
    out.push('\n');
    out.into_bytes()
}

/// The start of a document whose root element `root` holds a list of items (no attributes of
/// its own): what [`encode_document`] writes before the first item.
pub(crate) fn list_open(out: &mut String, root: &str) {
    out.push_str(DECLARATION);
    out.push('<');
    out.push_str(root);
    for (k, v) in ROOT_NAMESPACES {
        out.push(' ');
        out.push_str(k);
        out.push_str("=\"");
        escape_attr(out, v);
        out.push('"');
    }
}

/// One item of such a list, after [`list_open`] (`first`) or the item before it.
pub(crate) fn list_item(out: &mut String, first: bool, item: &str, node: &Node) {
    if first {
        out.push('>');
    }
    out.push('\n');
    indent(out, 1);
    write_element(out, item, node, 1, &[]);
}

/// The end of such a list: the root closed, or self-closing when it holds no item.
pub(crate) fn list_close(out: &mut String, root: &str, empty: bool) {
    if empty {
        out.push_str(" />\n");
    } else {
        out.push_str("\n</");
        out.push_str(root);
        out.push_str(">\n");
    }
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

/// Writes `<name attrs>children</name>` for `node`, starting at the current position.
fn write_element(
    out: &mut String,
    name: &str,
    node: &Node,
    depth: usize,
    extra_attrs: &[(&str, &str)],
) {
    // XML puts base-class members first: walk the layers from the base up.
    let members = || node.layers().rev().flatten();

    out.push('<');
    out.push_str(name);
    for m in members() {
        if let Member::Attr { name, value } = m {
            if let Some(text) = scalar_text(value) {
                out.push(' ');
                out.push_str(name);
                out.push_str("=\"");
                escape_attr(out, &text);
                out.push('"');
            }
        }
    }
    for (k, v) in extra_attrs {
        out.push(' ');
        out.push_str(k);
        out.push_str("=\"");
        escape_attr(out, v);
        out.push('"');
    }

    let text: Option<Cow<'_, str>> = members().find_map(|m| match m {
        Member::Text(s) => scalar_text(s),
        _ => None,
    });
    let has_children = members().any(|m| match m {
        Member::Elem { value, .. } => writes_something(value),
        _ => false,
    });

    if !has_children {
        match text {
            Some(t) if !t.is_empty() => {
                out.push('>');
                escape_text(out, &t);
                out.push_str("</");
                out.push_str(name);
                out.push('>');
            }
            _ => out.push_str(" />"),
        }
        return;
    }

    out.push('>');
    // Mixed content is never produced by the representations; text is dropped
    // in favour of the children should a node carry both.
    for m in members() {
        if let Member::Elem { name, value } = m {
            write_member(out, name, value, depth + 1);
        }
    }
    out.push('\n');
    indent(out, depth);
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

fn writes_something(value: &Value) -> bool {
    match value {
        Value::Scalar(s) => !matches!(s, Scalar::Null),
        Value::Node(_) => true,
        Value::List(List { style, items, .. }) => match (style, items) {
            (_, None) => false,
            (ListStyle::Wrapped, Some(_)) => true,
            (ListStyle::Inline, Some(items)) => !items.is_empty(),
        },
    }
}

fn write_member(out: &mut String, name: &str, value: &Value, depth: usize) {
    match value {
        Value::Scalar(s) => {
            let Some(text) = scalar_text(s) else { return };
            out.push('\n');
            indent(out, depth);
            out.push('<');
            out.push_str(name);
            if text.is_empty() {
                out.push_str(" />");
            } else {
                out.push('>');
                escape_text(out, &text);
                out.push_str("</");
                out.push_str(name);
                out.push('>');
            }
        }
        Value::Node(n) => {
            out.push('\n');
            indent(out, depth);
            write_element(out, name, n, depth, &[]);
        }
        Value::List(List { style, item, items }) => {
            let Some(items) = items else { return };
            match style {
                ListStyle::Inline => {
                    for n in items {
                        out.push('\n');
                        indent(out, depth);
                        write_element(out, item, n, depth, &[]);
                    }
                }
                ListStyle::Wrapped => {
                    out.push('\n');
                    indent(out, depth);
                    out.push('<');
                    out.push_str(name);
                    if items.is_empty() {
                        out.push_str(" />");
                        return;
                    }
                    out.push('>');
                    for n in items {
                        out.push('\n');
                        indent(out, depth + 1);
                        write_element(out, item, n, depth + 1, &[]);
                    }
                    out.push('\n');
                    indent(out, depth);
                    out.push_str("</");
                    out.push_str(name);
                    out.push('>');
                }
            }
        }
    }
}

/// The XML text of a scalar; `None` for `Null` (the member is omitted).
fn scalar_text<'s>(s: &'s Scalar<'_>) -> Option<Cow<'s, str>> {
    match s {
        Scalar::Null => None,
        Scalar::Str(v) => Some(Cow::Borrowed(v)),
        Scalar::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        Scalar::Int(i) => Some(Cow::Owned(i.to_string())),
        Scalar::Float(f) => Some(Cow::Owned(float_text(*f))),
    }
}

/// xs:double lexical form (`INF`, `-INF`, `NaN` for the non-finite values).
fn float_text(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_owned()
    } else if f.is_infinite() {
        if f > 0.0 { "INF" } else { "-INF" }.to_owned()
    } else {
        f.to_string()
    }
}

/// Characters XML 1.0 cannot carry at all are replaced with U+FFFD so the
/// document always stays well-formed.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Appends `s` with each character `esc` replaces replaced, copying the runs between them
/// whole (per-character pushes were the top of the entity-list profile, bench/api.sh).
fn escape_with(out: &mut String, s: &str, esc: impl Fn(char) -> Option<&'static str>) {
    // Most values (hrefs, names, UIDs) are printable ASCII with nothing to escape.
    if s.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && !matches!(b, b'&' | b'<' | b'>' | b'"'))
    {
        out.push_str(s);
        return;
    }
    let mut start = 0;
    for (i, c) in s.char_indices() {
        if let Some(rep) = esc(c) {
            out.push_str(&s[start..i]);
            out.push_str(rep);
            start = i + c.len_utf8();
        }
    }
    out.push_str(&s[start..]);
}

fn escape_text(out: &mut String, s: &str) {
    escape_with(out, s, |c| match c {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        // A literal CR would be normalised away by the reader.
        '\r' => Some("&#xD;"),
        c if !is_xml_char(c) => Some("\u{FFFD}"),
        _ => None,
    })
}

fn escape_attr(out: &mut String, s: &str) {
    escape_with(out, s, |c| match c {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        '"' => Some("&quot;"),
        // Attribute-value normalisation would turn these into spaces.
        '\t' => Some("&#x9;"),
        '\n' => Some("&#xA;"),
        '\r' => Some("&#xD;"),
        c if !is_xml_char(c) => Some("\u{FFFD}"),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::{attr, elem};

    #[test]
    fn escapes_text_and_attributes() {
        let n = Node::new("X").layer(vec![attr("A", "a\"b<&>\t\n"), elem("T", "x<y & z>\r\u{1}")]);
        let s = String::from_utf8(encode_document(&n)).unwrap();
        assert!(s.contains("A=\"a&quot;b&lt;&amp;&gt;&#x9;&#xA;\""), "{s}");
        assert!(s.contains("<T>x&lt;y &amp; z&gt;&#xD;\u{FFFD}</T>"), "{s}");
    }

    #[test]
    fn text_member_becomes_element_content() {
        let n = Node::new("Day").layer(vec![
            attr("Name", "Sunday"),
            crate::node::Member::Text("1,1".into()),
        ]);
        let s = String::from_utf8(encode_document(&n)).unwrap();
        assert!(s.contains("<Day Name=\"Sunday\" xmlns="), "{s}");
        assert!(s.ends_with(">1,1</Day>\n"), "{s}");
    }
}
