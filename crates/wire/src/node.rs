//! The generic element tree that every representation is turned into.
//!
//! One tree feeds both encoders ([`crate::xml`] and [`crate::json`]), so the two
//! encodings of a resource cannot drift apart.
//!
//! Member order differs between the encodings because Enterprise Manager serialises
//! the same .NET classes with two serializers (JSON.md A5):
//! - JSON (reflection order): the most-derived class's members first, then each base
//!   class's members; within a class, in declaration order. So an entity ends with
//!   `Name, UID` (EntityType) then `Links, Href, Type` (ResourceType).
//! - XML (XmlSerializer order): base classes first. So `<Links>` is the first child
//!   element and the root's attributes read `Href Type Name UID ...`, as the newer
//!   pages show (e.g. em_rest/backups_id.md, and `Href Name Type Rel` on `<Link>`).
//!
//! A [`Node`] therefore holds its members in *layers*, one per class, most-derived
//! first; each encoder walks the layers in its own direction.
//!
//! A tree borrows its strings from the representation it was built from (a [`Scalar`] is a
//! `Cow`), and a node keeps all its layers in one vector: building the tree of an entity list
//! allocates little beyond the list itself (bench/api.sh profile: malloc/free and string
//! clones were a quarter of the time of `GET /vmRestorePoints?format=Entity`).

use std::borrow::Cow;

/// A representation that can be encoded as XML and JSON.
pub trait Representation {
    /// Builds the element tree of this representation (borrowing its strings).
    fn to_node(&self) -> Node<'_>;
}

/// Most layers a node has (a class hierarchy's depth); see [`Node::layer`].
const MAX_LAYERS: usize = 6;

/// One element: a name and its members grouped by class layer (most-derived first).
#[derive(Debug, Clone, PartialEq)]
pub struct Node<'a> {
    /// Element name used when this node is the document root.
    pub name: &'static str,
    /// Every member, layer after layer (most-derived class first).
    members: Vec<Member<'a>>,
    /// Where each layer ends in `members`; the first `layer_count` entries are used.
    ends: [u16; MAX_LAYERS],
    layer_count: u8,
}

/// One member of a node: an XML attribute, a child element, or the element's text.
#[derive(Debug, Clone, PartialEq)]
pub enum Member<'a> {
    /// XML attribute; a plain JSON property.
    Attr {
        /// Attribute (and JSON property) name.
        name: &'static str,
        /// Value; `Null` omits the attribute in XML and gives `null` in JSON.
        value: Scalar<'a>,
    },
    /// Child element; a JSON property.
    Elem {
        /// Element (and JSON property) name.
        name: &'static str,
        /// Value; `Null` omits the element in XML and gives `null` in JSON.
        value: Value<'a>,
    },
    /// Text content of an element that also has attributes; JSON property `Value`
    /// (JSON.md A4: `<Day Name="Sunday">1,1</Day>` → `{"Name":"Sunday","Value":"1,1"}`).
    Text(Scalar<'a>),
}

/// A leaf value.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar<'a> {
    /// Unset: omitted in XML, `null` in JSON.
    Null,
    /// A string (an empty one is `<X />` in XML and `""` in JSON), borrowed from the
    /// representation where it can be.
    Str(Cow<'a, str>),
    /// A boolean: `true`/`false` in both encodings.
    Bool(bool),
    /// An integer: a JSON number.
    Int(i64),
    /// A floating-point number: a JSON number.
    Float(f64),
}

/// The value of a child element.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// A leaf.
    Scalar(Scalar<'a>),
    /// A nested element with members of its own (a JSON object).
    Node(Node<'a>),
    /// A repeated element (a JSON array).
    List(List<'a>),
}

/// How a list is laid out in XML; in JSON a list is always an array under the
/// member's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListStyle {
    /// Items sit inside a wrapper element named after the member:
    /// `<Links><Link/>…</Links>` ↔ `"Links": [ … ]` (JSON.md A6).
    Wrapped,
    /// Items sit directly in the parent element:
    /// `<EntityReferences><Ref/>…` ↔ `{"Refs": [ … ]}` (JSON.md A7.1).
    Inline,
}

/// A list of nodes.
#[derive(Debug, Clone, PartialEq)]
pub struct List<'a> {
    /// XML layout.
    pub style: ListStyle,
    /// XML element name of each item.
    pub item: &'static str,
    /// Items; `None` is omitted in XML and `null` in JSON.
    pub items: Option<Vec<Node<'a>>>,
}

impl<'a> Node<'a> {
    /// A node with no members yet.
    pub fn new(name: &'static str) -> Self {
        Node {
            name,
            members: Vec::new(),
            ends: [0; MAX_LAYERS],
            layer_count: 0,
        }
    }

    /// A node with room for `members` members, so that adding its layers does not grow it.
    pub fn with_capacity(name: &'static str, members: usize) -> Self {
        Node {
            members: Vec::with_capacity(members),
            ..Node::new(name)
        }
    }

    /// Appends a layer (call from the most-derived class towards the base). A node has at
    /// most six layers; the members of any further one join the last.
    pub fn layer(mut self, members: impl IntoIterator<Item = Member<'a>>) -> Self {
        self.members.extend(members);
        let end = u16::try_from(self.members.len()).unwrap_or(u16::MAX);
        let n = usize::from(self.layer_count);
        debug_assert!(n < MAX_LAYERS, "node {} has too many layers", self.name);
        if n < MAX_LAYERS {
            self.ends[n] = end;
            self.layer_count += 1;
        } else {
            self.ends[MAX_LAYERS - 1] = end;
        }
        self
    }

    /// About how many bytes this node takes encoded (names, values and some punctuation, no
    /// indentation): the encoders size their output with it, so that a large answer is not
    /// copied over and over as its buffer grows.
    pub(crate) fn size_hint(&self) -> usize {
        fn scalar(s: &Scalar<'_>) -> usize {
            match s {
                Scalar::Str(v) => v.len(),
                _ => 8,
            }
        }
        let mut n = self.name.len() * 2 + 8;
        for m in &self.members {
            n += match m {
                Member::Attr { name, value } => name.len() + scalar(value) + 4,
                Member::Text(value) => scalar(value) + 8,
                Member::Elem { name, value } => {
                    name.len() * 2
                        + 8
                        + match value {
                            Value::Scalar(s) => scalar(s),
                            Value::Node(node) => node.size_hint(),
                            Value::List(l) => {
                                l.items.iter().flatten().map(|i| i.size_hint() + 8).sum()
                            }
                        }
                }
            };
        }
        n
    }

    /// The layers, most-derived class first; each encoder walks them in its own direction.
    pub fn layers(&self) -> impl DoubleEndedIterator<Item = &[Member<'a>]> + '_ {
        let ends = &self.ends[..usize::from(self.layer_count)];
        (0..ends.len()).map(move |i| {
            let start = if i == 0 { 0 } else { usize::from(ends[i - 1]) };
            &self.members[start..usize::from(ends[i])]
        })
    }
}

impl Node<'_> {
    /// The same tree owning its strings.
    pub fn into_owned(self) -> Node<'static> {
        Node {
            name: self.name,
            members: self.members.into_iter().map(Member::into_owned).collect(),
            ends: self.ends,
            layer_count: self.layer_count,
        }
    }
}

impl Member<'_> {
    fn into_owned(self) -> Member<'static> {
        match self {
            Member::Attr { name, value } => Member::Attr {
                name,
                value: value.into_owned(),
            },
            Member::Elem { name, value } => Member::Elem {
                name,
                value: match value {
                    Value::Scalar(s) => Value::Scalar(s.into_owned()),
                    Value::Node(n) => Value::Node(n.into_owned()),
                    Value::List(List { style, item, items }) => Value::List(List {
                        style,
                        item,
                        items: items.map(|v| v.into_iter().map(Node::into_owned).collect()),
                    }),
                },
            },
            Member::Text(s) => Member::Text(s.into_owned()),
        }
    }
}

impl Scalar<'_> {
    /// The same value owning its string.
    pub fn into_owned(self) -> Scalar<'static> {
        match self {
            Scalar::Null => Scalar::Null,
            Scalar::Str(s) => Scalar::Str(Cow::Owned(s.into_owned())),
            Scalar::Bool(b) => Scalar::Bool(b),
            Scalar::Int(i) => Scalar::Int(i),
            Scalar::Float(f) => Scalar::Float(f),
        }
    }
}

/// Builds an attribute member.
pub fn attr<'a>(name: &'static str, value: impl Into<Scalar<'a>>) -> Member<'a> {
    Member::Attr {
        name,
        value: value.into(),
    }
}

/// Builds a leaf child-element member.
pub fn elem<'a>(name: &'static str, value: impl Into<Scalar<'a>>) -> Member<'a> {
    Member::Elem {
        name,
        value: Value::Scalar(value.into()),
    }
}

/// Builds a nested child-element member; `None` is a null member.
pub fn child<'a>(name: &'static str, node: Option<Node<'a>>) -> Member<'a> {
    Member::Elem {
        name,
        value: match node {
            Some(n) => Value::Node(n),
            None => Value::Scalar(Scalar::Null),
        },
    }
}

/// Builds a list member.
pub fn list<'a>(
    name: &'static str,
    style: ListStyle,
    item: &'static str,
    items: Option<Vec<Node<'a>>>,
) -> Member<'a> {
    Member::Elem {
        name,
        value: Value::List(List { style, item, items }),
    }
}

impl From<String> for Scalar<'_> {
    fn from(v: String) -> Self {
        Scalar::Str(Cow::Owned(v))
    }
}

impl<'a> From<&'a str> for Scalar<'a> {
    fn from(v: &'a str) -> Self {
        Scalar::Str(Cow::Borrowed(v))
    }
}

impl<'a> From<&'a String> for Scalar<'a> {
    fn from(v: &'a String) -> Self {
        Scalar::Str(Cow::Borrowed(v))
    }
}

impl<'a> From<Cow<'a, str>> for Scalar<'a> {
    fn from(v: Cow<'a, str>) -> Self {
        Scalar::Str(v)
    }
}

impl<'a> From<&'a Cow<'_, str>> for Scalar<'a> {
    fn from(v: &'a Cow<'_, str>) -> Self {
        Scalar::Str(Cow::Borrowed(v))
    }
}

impl From<bool> for Scalar<'_> {
    fn from(v: bool) -> Self {
        Scalar::Bool(v)
    }
}

impl From<i64> for Scalar<'_> {
    fn from(v: i64) -> Self {
        Scalar::Int(v)
    }
}

impl From<i32> for Scalar<'_> {
    fn from(v: i32) -> Self {
        Scalar::Int(i64::from(v))
    }
}

impl From<u16> for Scalar<'_> {
    fn from(v: u16) -> Self {
        Scalar::Int(i64::from(v))
    }
}

impl From<f64> for Scalar<'_> {
    fn from(v: f64) -> Self {
        Scalar::Float(v)
    }
}

impl<'a, T: Into<Scalar<'a>>> From<Option<T>> for Scalar<'a> {
    fn from(v: Option<T>) -> Self {
        match v {
            Some(v) => v.into(),
            None => Scalar::Null,
        }
    }
}

impl<'a> From<&'a Option<String>> for Scalar<'a> {
    fn from(v: &'a Option<String>) -> Self {
        match v {
            Some(v) => Scalar::Str(Cow::Borrowed(v)),
            None => Scalar::Null,
        }
    }
}

impl<'a> From<&'a Option<Cow<'_, str>>> for Scalar<'a> {
    fn from(v: &'a Option<Cow<'_, str>>) -> Self {
        match v {
            Some(v) => Scalar::Str(Cow::Borrowed(v)),
            None => Scalar::Null,
        }
    }
}
