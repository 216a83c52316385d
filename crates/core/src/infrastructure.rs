//! The infrastructure every logged-on caller sees alike: backup servers, the hierarchy roots
//! registered with them and the backup repositories. No answer here depends on who asks; the
//! caller-dependent reads are in view.rs.

use crate::error::{CoreError, CoreResult};
use crate::model::*;
use crate::summary::{filesystem_space, RepositoryRecord, REPOSITORY_KIND, REPOSITORY_NAME};
use crate::Core;
use emrest_platform::RootInfo;
use std::collections::HashMap;
use uuid::Uuid;

/// Backup servers, hierarchy roots and repositories.
pub struct Infrastructure<'a>(pub(crate) &'a Core);

crate::service!(Infrastructure, Core);

impl Infrastructure<'_> {
    /// All backup servers.
    pub fn backup_servers(&self) -> CoreResult<Vec<BackupServerRecord>> {
        self.catalog.backup_servers()
    }

    /// One backup server.
    pub fn backup_server(&self, id: Uuid) -> CoreResult<BackupServerRecord> {
        self.backup_servers()?
            .into_iter()
            .find(|s| s.id == id)
            .ok_or_else(|| CoreError::not_found("Backup server", id))
    }

    /// Hierarchy roots registered with a backup server.
    pub fn hierarchy_roots(&self) -> CoreResult<Vec<HierarchyRootRecord>> {
        let linked: HashMap<Uuid, Uuid> = self.catalog.hierarchy_roots()?.into_iter().collect();
        let mut roots: Vec<HierarchyRootRecord> = self
            .inventory
            .roots()?
            .into_iter()
            .filter_map(|r: RootInfo| {
                linked.get(&r.id).map(|server| HierarchyRootRecord {
                    id: r.id,
                    name: r.name,
                    kind: r.kind,
                    unique_id: r.unique_id,
                    backup_server_id: *server,
                })
            })
            .collect();
        roots.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(roots)
    }

    /// One hierarchy root.
    pub fn hierarchy_root(&self, id: Uuid) -> CoreResult<HierarchyRootRecord> {
        self.hierarchy_roots()?
            .into_iter()
            .find(|r| r.id == id)
            .ok_or_else(|| CoreError::not_found("Hierarchy root", id))
    }

    /// The backup repositories: emrest's one, when a backup server is registered.
    pub fn backup_repositories(&self) -> CoreResult<Vec<RepositoryRecord>> {
        let Some(server) = self.backup_servers()?.into_iter().next() else {
            return Ok(Vec::new());
        };
        let id = self.repository_id()?;
        // A repository in a folder reports that folder's file system; one in an object
        // store, which has no capacity to report, the node's data folder's.
        let root = self.repository().root();
        let dir = if root.as_os_str().is_empty() {
            self.data_dir().to_path_buf()
        } else {
            root.to_path_buf()
        };
        let (capacity, free_space) = filesystem_space(&dir)?;
        let backup_size = self
            .repository()
            .stored_bytes()
            .map_err(|e| CoreError::Internal(format!("repository size: {e}")))?;
        Ok(vec![RepositoryRecord {
            id,
            name: REPOSITORY_NAME.into(),
            kind: REPOSITORY_KIND,
            backup_server_id: server.id,
            capacity,
            free_space,
            backup_size,
        }])
    }

    /// One backup repository.
    pub fn backup_repository(&self, id: Uuid) -> CoreResult<RepositoryRecord> {
        self.backup_repositories()?
            .into_iter()
            .find(|r| r.id == id)
            .ok_or_else(|| CoreError::not_found("Repository", id))
    }
}
