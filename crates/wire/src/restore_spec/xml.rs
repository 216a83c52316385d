//! XML request decoding: a small, safe document reader, then [`super::schema`].
//!
//! Safety: DTDs, entity declarations and processing instructions are refused
//! (never expanded); only the five predefined entities and character references
//! are accepted in text. Nesting depth, element count and text size are bounded.

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

use super::schema::{self, decode_group, parse_bool, Fields, Group, Raw, Syntax};
use super::OrderPolicy;
use crate::error::DecodeError;
use crate::xml::{NAMESPACE, XSI_NAMESPACE};

/// Deepest element nesting accepted (the request needs 3).
const MAX_DEPTH: usize = 16;
/// Most elements accepted in one body.
const MAX_ELEMENTS: usize = 256;
/// Most text accepted in one element, in bytes.
const MAX_TEXT: usize = 8 * 1024;

/// One parsed element: local name, attributes (when the document allows them), child
/// elements and text.
#[derive(Debug)]
struct XElem {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<XElem>,
    text: String,
    /// This value is an attribute, turned into a member of its element.
    attribute: bool,
}

impl Raw for XElem {
    const SYNTAX: Syntax = Syntax::Xml;

    fn text(&self, name: &str) -> Result<Option<String>, DecodeError> {
        self.leaf(name)?;
        Ok(Some(self.text.clone()))
    }

    fn boolean(&self, name: &str) -> Result<Option<bool>, DecodeError> {
        self.leaf(name)?;
        parse_bool(Syntax::Xml, name, &self.text).map(Some)
    }

    fn lax_boolean(&self, name: &str) -> Result<Option<bool>, DecodeError> {
        self.leaf(name)?;
        schema::parse_bool_lax(Syntax::Xml, name, &self.text).map(Some)
    }

    fn members(self, name: &str) -> Result<Option<Vec<(String, Self)>>, DecodeError> {
        // Attributes come first, as members of their own; an element with attributes and
        // text (`<Day Name="Sunday">1,1,…</Day>`) gives its text as the member `Value`, the
        // name JSON uses (JSON.md A4).
        let with_value = !self.attrs.is_empty() && self.children.is_empty();
        if !with_value {
            self.container(name)?;
        }
        let mut out: Vec<(String, XElem)> = self
            .attrs
            .into_iter()
            .map(|(k, v)| (k.clone(), XElem::leaf_value(k, v, true)))
            .collect();
        if with_value && !self.text.trim().is_empty() {
            out.push((
                "Value".into(),
                XElem::leaf_value("Value".into(), self.text, false),
            ));
        }
        out.extend(self.children.into_iter().map(|c| (c.name.clone(), c)));
        Ok(Some(out))
    }

    fn items(self, _name: &str) -> Result<Vec<Self>, DecodeError> {
        Ok(vec![self])
    }

    fn integer(&self, name: &str) -> Result<Option<i64>, DecodeError> {
        self.leaf(name)?;
        schema::parse_int(Syntax::Xml, name, &self.text).map(Some)
    }

    fn is_attribute(&self) -> bool {
        self.attribute
    }
}

impl XElem {
    fn leaf_value(name: String, text: String, attribute: bool) -> XElem {
        XElem {
            name,
            attrs: Vec::new(),
            children: Vec::new(),
            text,
            attribute,
        }
    }

    fn leaf(&self, name: &str) -> Result<(), DecodeError> {
        match self.children.first() {
            None => Ok(()),
            Some(c) => Err(DecodeError::at(
                name,
                format!(
                    "element <{name}> must contain only text, found child element <{}>",
                    c.name
                ),
            )),
        }
    }

    fn container(&self, name: &str) -> Result<(), DecodeError> {
        if self.text.trim().is_empty() {
            Ok(())
        } else {
            Err(DecodeError::at(
                name,
                format!("element <{name}> must contain only elements, found text"),
            ))
        }
    }
}

/// Decodes an XML `<RestoreSpec>` document into the chosen form and its fields.
pub(super) fn decode(
    text: &str,
    order: OrderPolicy,
) -> Result<(&'static Group, Fields), DecodeError> {
    let root = parse_document(text, false)?;
    if root.name != schema::ROOT {
        return Err(DecodeError::at(
            &root.name,
            format!(
                "root element must be <{}>, found <{}>",
                schema::ROOT,
                root.name
            ),
        ));
    }
    let ordered = order == OrderPolicy::Strict;
    let children = root.members(schema::ROOT)?;
    let children = children.unwrap_or_default();
    let choice = || {
        schema::SPECS
            .iter()
            .map(|g| format!("<{}>", g.name))
            .collect::<Vec<_>>()
            .join(" or ")
    };
    let mut chosen: Option<(&'static Group, XElem)> = None;
    for (_, child) in children {
        let Some(group) = schema::SPECS.iter().find(|g| g.name == child.name) else {
            return Err(DecodeError::at(
                &child.name,
                format!(
                    "unknown element <{}> in <{}>: expected {}",
                    child.name,
                    schema::ROOT,
                    choice()
                ),
            ));
        };
        if chosen.is_some() {
            return Err(DecodeError::at(
                &child.name,
                format!(
                    "element <{}> is not allowed here: <{}> contains exactly one of {}",
                    child.name,
                    schema::ROOT,
                    choice()
                ),
            ));
        }
        chosen = Some((group, child));
    }
    let Some((group, elem)) = chosen else {
        return Err(DecodeError::at(
            schema::ROOT,
            format!("element <{}> must contain {}", schema::ROOT, choice()),
        ));
    };
    let members = elem.members(group.name)?.unwrap_or_default();
    Ok((group, decode_group(group, members, ordered)?))
}

/// Decodes an XML document whose root element is `root`; with `attributes`, attributes are
/// members of their element (the job edit body sends `<Job Name="…">`, `<OptionsDaily
/// Enabled="true">`), otherwise they are refused.
pub(crate) fn decode_root_with(
    text: &str,
    root: &'static Group,
    order: OrderPolicy,
    attributes: bool,
) -> Result<Fields, DecodeError> {
    let doc = parse_document(text, attributes)?;
    if doc.name != root.name {
        return Err(DecodeError::at(
            &doc.name,
            format!("root element must be <{}>, found <{}>", root.name, doc.name),
        ));
    }
    let members = doc.members(root.name)?.unwrap_or_default();
    decode_group(root, members, order == OrderPolicy::Strict)
}

/// The parser's own messages quote the document (a mismatched end tag in full): they are cut
/// to a readable length so a hostile body is never echoed back at length.
fn malformed(e: impl std::fmt::Display) -> DecodeError {
    DecodeError::body(format!(
        "malformed XML: {}",
        crate::clip(&e.to_string(), 200)
    ))
}

fn is_xml_char(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Reads the document into an element tree, refusing anything unsafe.
fn parse_document(text: &str, attributes: bool) -> Result<XElem, DecodeError> {
    let mut reader = NsReader::from_str(text);
    {
        let config = reader.config_mut();
        config.trim_text(false);
        config.expand_empty_elements = false;
        config.check_end_names = true;
        config.check_comments = true;
    }

    let mut stack: Vec<XElem> = Vec::new();
    let mut root: Option<XElem> = None;
    let mut elements = 0usize;
    let mut first = true;

    loop {
        let (ns, event) = match reader.read_resolved_event() {
            Ok(x) => x,
            Err(e) => {
                let at = reader.error_position();
                return Err(malformed(format!("at byte {at}: {e}")));
            }
        };
        let at_start = std::mem::replace(&mut first, false);
        match event {
            Event::Decl(d) => {
                if !at_start {
                    return Err(malformed("XML declaration not at the start"));
                }
                if let Some(enc) = d.encoding() {
                    let enc = enc.map_err(malformed)?;
                    let enc = String::from_utf8_lossy(&enc).to_ascii_lowercase();
                    if enc != "utf-8" && enc != "utf8" {
                        return Err(DecodeError::body(format!(
                            "unsupported XML encoding {}: only utf-8 is accepted",
                            schema::shown(&enc)
                        )));
                    }
                }
            }
            Event::DocType(_) => {
                return Err(DecodeError::body(
                    "DOCTYPE declarations are not allowed in request bodies",
                ));
            }
            Event::PI(_) => {
                return Err(DecodeError::body(
                    "processing instructions are not allowed in request bodies",
                ));
            }
            Event::Comment(_) => {}
            Event::Start(_) | Event::Empty(_) if root.is_some() => {
                return Err(malformed("more than one root element"));
            }
            Event::Start(e) => {
                let ns = NsCheck::of(&ns);
                let el = open_element(&reader, ns, &e, stack.len(), &mut elements, attributes)?;
                stack.push(el);
            }
            Event::Empty(e) => {
                let ns = NsCheck::of(&ns);
                let el = open_element(&reader, ns, &e, stack.len(), &mut elements, attributes)?;
                close(&mut stack, &mut root, el);
            }
            Event::End(_) => {
                let Some(el) = stack.pop() else {
                    return Err(malformed("unexpected end tag"));
                };
                close(&mut stack, &mut root, el);
            }
            Event::Text(t) => {
                let s = t.unescape().map_err(malformed)?;
                add_text(&mut stack, &s)?;
            }
            Event::CData(c) => {
                let bytes = c.into_inner();
                let s = std::str::from_utf8(&bytes).map_err(malformed)?;
                add_text(&mut stack, s)?;
            }
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(malformed("unexpected end of document"));
    }
    root.ok_or_else(|| malformed("no root element"))
}

fn close(stack: &mut [XElem], root: &mut Option<XElem>, el: XElem) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(el),
        None => *root = Some(el),
    }
}

fn add_text(stack: &mut [XElem], s: &str) -> Result<(), DecodeError> {
    if let Some(c) = s.chars().find(|c| !is_xml_char(*c)) {
        return Err(malformed(format!(
            "character U+{:04X} is not allowed in XML",
            u32::from(c)
        )));
    }
    match stack.last_mut() {
        None if s.trim().is_empty() => Ok(()),
        None => Err(malformed("text outside the root element")),
        Some(el) => {
            if el.text.len() + s.len() > MAX_TEXT {
                return Err(DecodeError::at(
                    &el.name,
                    format!(
                        "element <{}> is too long: the limit is {MAX_TEXT} bytes",
                        el.name
                    ),
                ));
            }
            el.text.push_str(s);
            Ok(())
        }
    }
}

/// The namespace of an element, detached from the reader's borrow.
enum NsCheck {
    /// The documented namespace, or none at all (clients that build bodies by
    /// hand often leave it out).
    Accepted,
    /// Some other namespace.
    Other(String),
    /// A prefix that was never declared.
    Undeclared(String),
}

impl NsCheck {
    fn of(ns: &ResolveResult) -> Self {
        match ns {
            ResolveResult::Unbound => NsCheck::Accepted,
            ResolveResult::Bound(n) if n.as_ref() == NAMESPACE.as_bytes() => NsCheck::Accepted,
            ResolveResult::Bound(n) => NsCheck::Other(String::from_utf8_lossy(n.as_ref()).into()),
            ResolveResult::Unknown(p) => NsCheck::Undeclared(String::from_utf8_lossy(p).into()),
        }
    }
}

/// Checks a start tag (namespace, attributes, limits) and makes its element.
fn open_element(
    reader: &NsReader<&[u8]>,
    ns: NsCheck,
    e: &BytesStart,
    depth: usize,
    elements: &mut usize,
    attributes: bool,
) -> Result<XElem, DecodeError> {
    let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
    schema::check_name(Syntax::Xml, &name)?;
    if depth >= MAX_DEPTH {
        return Err(DecodeError::at(
            &name,
            format!("element <{name}> is nested too deeply: the limit is {MAX_DEPTH} levels"),
        ));
    }
    *elements += 1;
    if *elements > MAX_ELEMENTS {
        return Err(DecodeError::body(format!(
            "too many elements: the limit is {MAX_ELEMENTS}"
        )));
    }
    match ns {
        NsCheck::Accepted => {}
        NsCheck::Other(n) => {
            return Err(DecodeError::at(
                &name,
                format!(
                    "element <{name}> is in namespace {}: expected {NAMESPACE} or none",
                    schema::shown(&n)
                ),
            ));
        }
        NsCheck::Undeclared(p) => {
            return Err(DecodeError::at(
                &name,
                format!(
                    "element <{name}> uses undeclared namespace prefix {}",
                    schema::shown(&p)
                ),
            ));
        }
    }
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(malformed)?;
        if a.key.as_namespace_binding().is_some() {
            continue;
        }
        // xsi:* (e.g. xsi:schemaLocation) carries no data for us.
        if let (ResolveResult::Bound(n), _) = reader.resolve_attribute(a.key) {
            if n.as_ref() == XSI_NAMESPACE.as_bytes() {
                continue;
            }
        }
        let attr = String::from_utf8_lossy(a.key.as_ref()).into_owned();
        if attributes && !attr.contains(':') {
            schema::check_name(Syntax::Xml, &attr)?;
            let value = a.unescape_value().map_err(malformed)?.into_owned();
            attrs.push((attr, value));
            continue;
        }
        return Err(DecodeError::at(
            &name,
            format!(
                "unexpected attribute {} on element <{name}>",
                schema::shown(&attr)
            ),
        ));
    }
    Ok(XElem {
        name,
        attrs,
        children: Vec::new(),
        text: String::new(),
        attribute: false,
    })
}
