//! A long collection encoded piece by piece: the same bytes as [`crate::EntityList`] or
//! [`crate::EntityReferences`] of all the items, without holding every item (or its element
//! tree) at once. The server streams a large `GET /vmRestorePoints` this way.

use crate::node::Representation;
use crate::resources::Entity;
use crate::{json, xml, Format};

/// Encodes the items of one collection, in order, into a buffer the caller drains.
pub struct ListWriter {
    format: Format,
    /// The XML root element.
    root: &'static str,
    /// The XML element of one item.
    item: &'static str,
    items: usize,
    buf: String,
}

impl ListWriter {
    /// An entity collection of `T` (`?format=Entity`), as `EntityList<T>` encodes it.
    pub fn entities<T: Entity>(format: Format) -> ListWriter {
        ListWriter::new(format, T::LIST, T::LIST, T::ELEMENT)
    }

    /// A collection of references, as `EntityReferences` encodes it.
    pub fn references(format: Format) -> ListWriter {
        ListWriter::new(format, "EntityReferences", "Refs", "Ref")
    }

    fn new(format: Format, root: &'static str, key: &'static str, item: &'static str) -> Self {
        let mut buf = String::new();
        match format {
            Format::Xml => xml::list_open(&mut buf, root),
            Format::Json => json::list_open(&mut buf, key),
        }
        ListWriter {
            format,
            root,
            item,
            items: 0,
            buf,
        }
    }

    /// Appends one item.
    pub fn push(&mut self, item: &impl Representation) {
        let node = item.to_node();
        let first = self.items == 0;
        match self.format {
            Format::Xml => xml::list_item(&mut self.buf, first, self.item, &node),
            Format::Json => json::list_item(&mut self.buf, first, &node),
        }
        self.items += 1;
    }

    /// How many bytes are encoded and not yet taken.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The bytes encoded since the last take.
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf).into_bytes()
    }

    /// The rest of the document: what is pending and the end of the collection.
    pub fn finish(mut self) -> Vec<u8> {
        match self.format {
            Format::Xml => xml::list_close(&mut self.buf, self.root, self.items == 0),
            Format::Json => json::list_close(&mut self.buf),
        }
        self.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{encode, BackupServer, EntityList, EntityRef, EntityReferences, Link};

    fn server(i: usize) -> BackupServer {
        BackupServer {
            href: format!("https://h/api/backupServers/{i}?format=Entity"),
            name: format!("server <{i}> & \"co\""),
            uid: format!("urn:veeam:BackupServer:{i}"),
            links: vec![Link::fixed(
                "Alternate",
                format!("https://h/{i}"),
                None,
                None,
            )],
            description: String::new(),
            port: 9392,
            version: "12".into(),
            wcf_port: None,
            vbr_certificate_thumbprint: None,
        }
    }

    fn reference(i: usize) -> EntityRef {
        EntityRef {
            type_: "BackupServerReference".into(),
            href: format!("https://h/api/backupServers/{i}"),
            name: format!("s{i}"),
            uid: format!("urn:veeam:BackupServer:{i}"),
            links: Vec::new(),
        }
    }

    /// Pushes the items, taking the buffer after each as the server does, and joins the pieces.
    fn streamed<T: Representation>(mut w: ListWriter, items: &[T]) -> Vec<u8> {
        let mut out = w.take();
        for i in items {
            w.push(i);
            out.extend(w.take());
        }
        out.extend(w.finish());
        out
    }

    #[test]
    fn streamed_collections_are_the_documents_encoded_whole() {
        for format in [Format::Xml, Format::Json] {
            for n in [0, 1, 3] {
                let servers: Vec<_> = (0..n).map(server).collect();
                assert_eq!(
                    String::from_utf8(streamed(
                        ListWriter::entities::<BackupServer>(format),
                        &servers
                    )),
                    String::from_utf8(encode(&EntityList(servers.clone()), format)),
                    "{format:?}, {n} entities"
                );
                let refs: Vec<_> = (0..n).map(reference).collect();
                assert_eq!(
                    String::from_utf8(streamed(ListWriter::references(format), &refs)),
                    String::from_utf8(encode(&EntityReferences(refs.clone()), format)),
                    "{format:?}, {n} references"
                );
            }
        }
    }
}
