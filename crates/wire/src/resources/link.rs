//! `<Link>` (em_rest/links.md, em_rest/attributes_of_a_link_element.md).

use crate::node::{attr, Node, Representation};

/// A link to a related resource or an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Relationship: `Up`, `Down`, `Alternate`, `Related`, or an action (`Create`, `Delete`, `Restore`…).
    pub rel: String,
    /// Absolute URL of the target.
    pub href: String,
    /// Human-readable name of the target; may be skipped for collections and actions.
    pub name: Option<String>,
    /// Type of the target; absent on most action links.
    pub type_: Option<String>,
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
            rel: rel.to_owned(),
            href: href.into(),
            name: name.map(str::to_owned),
            type_: type_.map(str::to_owned),
        }
    }
}

impl Representation for Link {
    fn to_node(&self) -> Node {
        let Link {
            rel,
            href,
            name,
            type_,
        } = self;
        // JSON `Rel, Href, Name, Type` (JSON.md A5/A6); XML `Href Name Type Rel`
        // (base class first, as the newer pages, e.g. em_rest/backups_id.md, show).
        Node::new("Link").layer(vec![attr("Rel", rel)]).layer(vec![
            attr("Href", href),
            attr("Name", name),
            attr("Type", type_),
        ])
    }
}
