//! Entity references: `<EntityRef>` and `<EntityReferences><Ref>…`
//! (em_rest/resource_representations.md, em_rest/representation_collections.md).

use super::{links_member, Link};
use crate::node::{attr, list, ListStyle, Node, Representation};

/// The reference representation of a resource (the default without `?format=Entity`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityRef {
    /// Reference type, e.g. `VmRestorePointReference`.
    pub type_: String,
    /// URL of the reference itself.
    pub href: String,
    /// Name of the resource.
    pub name: String,
    /// UID of the resource, e.g. `urn:veeam:VmRestorePoint:<uuid>`.
    pub uid: String,
    /// Links; the `Alternate` one points to `?format=Entity`.
    pub links: Vec<Link>,
}

impl Representation for EntityRef {
    fn to_node(&self) -> Node<'_> {
        let EntityRef {
            type_,
            href,
            name,
            uid,
            links,
        } = self;
        // One layer: JSON `Links, UID, Name, Href, Type` (JSON.md A5,
        // em_rest/resource_representations.md); XML attributes `UID Name Href Type`
        // (em_rest/backups_id.md).
        Node::new("EntityRef").layer(vec![
            links_member(links),
            attr("UID", uid),
            attr("Name", name),
            attr("Href", href),
            attr("Type", type_),
        ])
    }
}

/// A reference collection: XML `<EntityReferences><Ref …/>…`, JSON `{"Refs":[…]}`
/// (em_rest/representation_collections.md, JSON.md A7.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EntityReferences(pub Vec<EntityRef>);

impl Representation for EntityReferences {
    fn to_node(&self) -> Node<'_> {
        let EntityReferences(refs) = self;
        Node::new("EntityReferences").layer(vec![list(
            "Refs",
            ListStyle::Inline,
            "Ref",
            Some(refs.iter().map(Representation::to_node).collect()),
        )])
    }
}
