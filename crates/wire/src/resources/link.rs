//! `<Link>` (em_rest/links.md, em_rest/attributes_of_a_link_element.md).

use crate::node::{attr, Node, Representation};
use std::borrow::Cow;

/// A link to a related resource or an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Relationship: `Up`, `Down`, `Alternate`, `Related`, or an action (`Create`, `Delete`, `Restore`…).
    pub rel: Cow<'static, str>,
    /// Absolute URL of the target.
    pub href: String,
    /// Human-readable name of the target; may be skipped for collections and actions.
    pub name: Option<String>,
    /// Type of the target; absent on most action links.
    pub type_: Option<Cow<'static, str>>,
}

impl Link {
    /// A link with a name and a type.
    pub fn new(
        rel: &str,
        href: impl Into<String>,
        name: Option<&str>,
        type_: Option<&str>,
    ) -> Self {
        Link {
            rel: Cow::Owned(rel.to_owned()),
            href: href.into(),
            name: name.map(str::to_owned),
            type_: type_.map(|t| Cow::Owned(t.to_owned())),
        }
    }

    /// [`Link::new`] for a relation and a type that are fixed words: the link allocates only
    /// its URL and its name (the server's answers are built of these).
    pub fn fixed(
        rel: &'static str,
        href: impl Into<String>,
        name: Option<&str>,
        type_: Option<&'static str>,
    ) -> Self {
        Link {
            rel: Cow::Borrowed(rel),
            href: href.into(),
            name: name.map(str::to_owned),
            type_: type_.map(Cow::Borrowed),
        }
    }
}

impl Representation for Link {
    fn to_node(&self) -> Node<'_> {
        let Link {
            rel,
            href,
            name,
            type_,
        } = self;
        // JSON `Rel, Href, Name, Type` (JSON.md A5/A6); XML `Href Name Type Rel`
        // (base class first, as the newer pages, e.g. em_rest/backups_id.md, show).
        Node::with_capacity("Link", 4)
            .layer([attr("Rel", rel)])
            .layer([attr("Href", href), attr("Name", name), attr("Type", type_)])
    }
}
