//! Entity collections (`?format=Entity` on a collection):
//! XML `<BackupServers><BackupServer>…`, JSON `{"BackupServers":[…]}`
//! (em_rest/representation_collections.md, JSON.md A7.2).

use super::{
    Backup, BackupFile, BackupServer, HierarchyRoot, LogonSession, ManagedLogonSession,
    RestorePoint, RestoreSession, Task, VmRestorePoint,
};
use crate::node::{list, ListStyle, Node, Representation};

/// An entity representation that can be listed in an entity collection.
pub trait Entity: Representation {
    /// Element name of one entity, also its `Type` value (e.g. `BackupServer`).
    const ELEMENT: &'static str;
    /// Root element of the collection and its JSON array's key (e.g. `BackupServers`).
    const LIST: &'static str;
}

/// An entity collection of `T`.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityList<T>(pub Vec<T>);

impl<T> Default for EntityList<T> {
    fn default() -> Self {
        EntityList(Vec::new())
    }
}

impl<T: Entity> Representation for EntityList<T> {
    fn to_node(&self) -> Node<'_> {
        let EntityList(items) = self;
        // An empty collection is `[]`, never null: some clients call len() on it
        // (JSON.md A7.5).
        Node::new(T::LIST).layer(vec![list(
            T::LIST,
            ListStyle::Inline,
            T::ELEMENT,
            Some(items.iter().map(Representation::to_node).collect()),
        )])
    }
}

macro_rules! entity {
    ($ty:ty, $element:literal, $list:literal) => {
        impl Entity for $ty {
            const ELEMENT: &'static str = $element;
            const LIST: &'static str = $list;
        }
    };
}

entity!(BackupServer, "BackupServer", "BackupServers");
entity!(Backup, "Backup", "Backups");
entity!(RestorePoint, "RestorePoint", "RestorePoints");
entity!(VmRestorePoint, "VmRestorePoint", "VmRestorePoints");
entity!(HierarchyRoot, "HierarchyRoot", "HierarchyRoots");
entity!(BackupFile, "BackupFile", "BackupFiles");
// em_rest/get_tasks.md: `<Tasks>`.
entity!(Task, "Task", "Tasks");
entity!(crate::FaultRule, "FaultRule", "FaultRules");
entity!(RestoreSession, "RestoreSession", "RestoreSessions");
// em_rest/get_loginsessions.md: `<LogonSessions>`; JSON.md D3 reads `LogonSessions`.
entity!(LogonSession, "LogonSession", "LogonSessions");
// emrest extension: `GET /api/emrest/logonSessions`.
entity!(
    ManagedLogonSession,
    "ManagedLogonSession",
    "ManagedLogonSessions"
);

/// `GET /backupServers?format=Entity`.
pub type BackupServers = EntityList<BackupServer>;
/// `GET /backups?format=Entity`.
pub type Backups = EntityList<Backup>;
/// `GET /restorePoints?format=Entity`.
pub type RestorePoints = EntityList<RestorePoint>;
/// `GET /vmRestorePoints?format=Entity`.
pub type VmRestorePoints = EntityList<VmRestorePoint>;
/// `GET /hierarchyRoots?format=Entity`.
pub type HierarchyRoots = EntityList<HierarchyRoot>;
/// `GET /backupFiles?format=Entity`.
pub type BackupFiles = EntityList<BackupFile>;
/// `GET /tasks`.
pub type Tasks = EntityList<Task>;
/// `GET /restoreSessions?format=Entity`.
pub type RestoreSessions = EntityList<RestoreSession>;
/// `GET /logonSessions`.
pub type LogonSessionList = EntityList<LogonSession>;

// em_rest/get_repositories.md; JSON.md D3 reads `Repositories`.
entity!(super::Repository, "Repository", "Repositories");
/// `GET /repositories?format=Entity`.
pub type RepositoryList = EntityList<super::Repository>;
