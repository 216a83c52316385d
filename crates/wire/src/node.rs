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

/// A representation that can be encoded as XML and JSON.
pub trait Representation {
    /// Builds the element tree of this representation.
    fn to_node(&self) -> Node;
}

/// One element: a name and its members grouped by class layer (most-derived first).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Element name used when this node is the document root.
    pub name: &'static str,
    /// Member layers, most-derived class first (see the module docs).
    pub layers: Vec<Vec<Member>>,
}

/// One member of a node: an XML attribute, a child element, or the element's text.
#[derive(Debug, Clone, PartialEq)]
pub enum Member {
    /// XML attribute; a plain JSON property.
    Attr {
        /// Attribute (and JSON property) name.
        name: &'static str,
        /// Value; `Null` omits the attribute in XML and gives `null` in JSON.
        value: Scalar,
    },
    /// Child element; a JSON property.
    Elem {
        /// Element (and JSON property) name.
        name: &'static str,
        /// Value; `Null` omits the element in XML and gives `null` in JSON.
        value: Value,
    },
    /// Text content of an element that also has attributes; JSON property `Value`
    /// (JSON.md A4: `<Day Name="Sunday">1,1</Day>` → `{"Name":"Sunday","Value":"1,1"}`).
    Text(Scalar),
}

/// A leaf value.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// Unset: omitted in XML, `null` in JSON.
    Null,
    /// A string (an empty one is `<X />` in XML and `""` in JSON).
    Str(String),
    /// A boolean: `true`/`false` in both encodings.
    Bool(bool),
    /// An integer: a JSON number.
    Int(i64),
    /// A floating-point number: a JSON number.
    Float(f64),
}

/// The value of a child element.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A leaf.
    Scalar(Scalar),
    /// A nested element with members of its own (a JSON object).
    Node(Node),
    /// A repeated element (a JSON array).
    List(List),
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
pub struct List {
    /// XML layout.
    pub style: ListStyle,
    /// XML element name of each item.
    pub item: &'static str,
    /// Items; `None` is omitted in XML and `null` in JSON.
    pub items: Option<Vec<Node>>,
}

impl Node {
    /// A node with no members yet.
    pub fn new(name: &'static str) -> Self {
        Node {
            name,
            layers: Vec::new(),
        }
    }

    /// Appends a layer (call from the most-derived class towards the base).
    pub fn layer(mut self, members: Vec<Member>) -> Self {
        self.layers.push(members);
        self
    }
}

/// Builds an attribute member.
pub fn attr(name: &'static str, value: impl Into<Scalar>) -> Member {
    Member::Attr {
        name,
        value: value.into(),
    }
}

/// Builds a leaf child-element member.
pub fn elem(name: &'static str, value: impl Into<Scalar>) -> Member {
    Member::Elem {
        name,
        value: Value::Scalar(value.into()),
    }
}

/// Builds a nested child-element member; `None` is a null member.
pub fn child(name: &'static str, node: Option<Node>) -> Member {
    Member::Elem {
        name,
        value: match node {
            Some(n) => Value::Node(n),
            None => Value::Scalar(Scalar::Null),
        },
    }
}

/// Builds a list member.
pub fn list(
    name: &'static str,
    style: ListStyle,
    item: &'static str,
    items: Option<Vec<Node>>,
) -> Member {
    Member::Elem {
        name,
        value: Value::List(List { style, item, items }),
    }
}

impl From<String> for Scalar {
    fn from(v: String) -> Self {
        Scalar::Str(v)
    }
}

impl From<&str> for Scalar {
    fn from(v: &str) -> Self {
        Scalar::Str(v.to_owned())
    }
}

impl From<&String> for Scalar {
    fn from(v: &String) -> Self {
        Scalar::Str(v.clone())
    }
}

impl From<bool> for Scalar {
    fn from(v: bool) -> Self {
        Scalar::Bool(v)
    }
}

impl From<i64> for Scalar {
    fn from(v: i64) -> Self {
        Scalar::Int(v)
    }
}

impl From<i32> for Scalar {
    fn from(v: i32) -> Self {
        Scalar::Int(i64::from(v))
    }
}

impl From<u16> for Scalar {
    fn from(v: u16) -> Self {
        Scalar::Int(i64::from(v))
    }
}

impl From<f64> for Scalar {
    fn from(v: f64) -> Self {
        Scalar::Float(v)
    }
}

impl<T: Into<Scalar>> From<Option<T>> for Scalar {
    fn from(v: Option<T>) -> Self {
        match v {
            Some(v) => v.into(),
            None => Scalar::Null,
        }
    }
}

impl From<&Option<String>> for Scalar {
    fn from(v: &Option<String>) -> Self {
        match v {
            Some(v) => Scalar::Str(v.clone()),
            None => Scalar::Null,
        }
    }
}
