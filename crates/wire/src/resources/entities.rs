//! Entity representations of the backup infrastructure (`?format=Entity`).
//!
//! Element order is the XSD sequence; each type's reference page is cited.

use super::{entity_layer, resource_layer, Entity, Link};
use crate::node::Representation;
use crate::node::{attr, elem, Node, Scalar};
use crate::time::UtcTime;

/// A backup server entity (em_rest/get_backupservers_id.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupServer {
    /// URL of the entity (`…?format=Entity`).
    pub href: String,
    /// Name of the backup server.
    pub name: String,
    /// `urn:veeam:BackupServer:<uuid>`.
    pub uid: String,
    /// Alternate, Edit, Delete, Down and action links.
    pub links: Vec<Link>,
    /// Description (empty is `<Description />`, as on em_rest/backupservers_id.md).
    pub description: String,
    /// Port used to collect data from the server (Int64).
    pub port: i64,
    /// Veeam Backup & Replication version.
    pub version: String,
    /// Certificate port of v12+ servers (UShort).
    pub wcf_port: Option<u16>,
    /// Certificate thumbprint of the server.
    pub vbr_certificate_thumbprint: Option<String>,
}

impl Representation for BackupServer {
    fn to_node(&self) -> Node<'_> {
        let BackupServer {
            href,
            name,
            uid,
            links,
            description,
            port,
            version,
            wcf_port,
            vbr_certificate_thumbprint,
        } = self;
        // JSON order verified on a real v12 reply (JSON.md A5, B6).
        Node::new(Self::ELEMENT)
            .layer(vec![
                elem("Description", description),
                elem("Port", *port),
                elem("Version", version),
                elem("WcfPort", *wcf_port),
                elem("VbrCertificateThumbprint", vbr_certificate_thumbprint),
            ])
            .layer(entity_layer(name, uid))
            .layer(resource_layer(links, href, Self::ELEMENT))
    }
}

/// A backup entity (em_rest/get_backups_id.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    /// URL of the entity.
    pub href: String,
    /// Name of the parent backup job.
    pub name: String,
    /// `urn:veeam:Backup:<uuid>`.
    pub uid: String,
    /// Up (repository, backup server), Alternate and Down links.
    pub links: Vec<Link>,
    /// Platform: `VMware`, `HyperV`, `vCloud`, …
    pub platform: String,
    /// Backup type: `Standard`, `ParentBackup`, `ChildBackup`.
    pub backup_type: String,
}

impl Representation for Backup {
    fn to_node(&self) -> Node<'_> {
        let Backup {
            href,
            name,
            uid,
            links,
            platform,
            backup_type,
        } = self;
        Node::new(Self::ELEMENT)
            .layer(vec![
                elem("Platform", platform),
                elem("BackupType", backup_type),
            ])
            .layer(entity_layer(name, uid))
            .layer(resource_layer(links, href, Self::ELEMENT))
    }
}

/// A restore point entity (em_rest/get_restorepoints_id.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestorePoint {
    /// URL of the entity.
    pub href: String,
    /// SQL-style name, see [`UtcTime::restore_point_name`].
    pub name: String,
    /// `urn:veeam:RestorePoint:<uuid>`.
    pub uid: String,
    /// Up (backup, backup server), Alternate and Down links.
    pub links: Vec<Link>,
    /// When the restore point was created.
    pub backup_date_utc: UtcTime,
}

impl Representation for RestorePoint {
    fn to_node(&self) -> Node<'_> {
        let RestorePoint {
            href,
            name,
            uid,
            links,
            backup_date_utc,
        } = self;
        Node::new(Self::ELEMENT)
            .layer(vec![elem("BackupDateUTC", *backup_date_utc)])
            .layer(entity_layer(name, uid))
            .layer(resource_layer(links, href, Self::ELEMENT))
    }
}

/// A VM restore point entity (em_rest/get_vmrestorepoints_id.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmRestorePoint {
    /// URL of the entity.
    pub href: String,
    /// `<vm>@<yyyy-mm-dd hh:mm:ss>`.
    pub name: String,
    /// `urn:veeam:VmRestorePoint:<uuid>`.
    pub uid: String,
    /// `VmDisplayName` attribute (shown on em_rest/scenario_vm_restore.md).
    pub vm_display_name: Option<String>,
    /// Restore, Up, Alternate, Down and Create links.
    pub links: Vec<Link>,
    /// When the restore point was created.
    pub creation_time_utc: UtcTime,
    /// Name of the VM.
    pub vm_name: Option<String>,
    /// `Full`, `ReversedIncremental`, `Incremental`, `SyntheticFull`.
    pub algorithm: String,
    /// `Full`, `Increment`, `ReverseIncrement`.
    pub point_type: String,
    /// Reference to the VM, e.g. `urn:VMware:Vm:<root>.<ref>`.
    pub hierarchy_obj_ref: Option<String>,
}

impl Representation for VmRestorePoint {
    fn to_node(&self) -> Node<'_> {
        let VmRestorePoint {
            href,
            name,
            uid,
            vm_display_name,
            links,
            creation_time_utc,
            vm_name,
            algorithm,
            point_type,
            hierarchy_obj_ref,
        } = self;
        // XSD order `CreationTimeUTC, VmName, Algorithm, PointType, HierarchyObjRef,
        // SqlInfo`, then `@VmDisplayName` (JSON.md B5). emrest has no SQL
        // application info, so `SqlInfo` is always unset: `null` in JSON, absent in XML.
        Node::new(Self::ELEMENT)
            .layer(vec![
                elem("CreationTimeUTC", *creation_time_utc),
                elem("VmName", vm_name),
                elem("Algorithm", algorithm),
                elem("PointType", point_type),
                elem("HierarchyObjRef", hierarchy_obj_ref),
                elem("SqlInfo", Scalar::Null),
                attr("VmDisplayName", vm_display_name),
            ])
            .layer(entity_layer(name, uid))
            .layer(resource_layer(links, href, Self::ELEMENT))
    }
}

/// A hierarchy root (virtualization host) entity (em_rest/get_hierarchyroots_id.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HierarchyRoot {
    /// URL of the entity.
    pub href: String,
    /// Host name.
    pub name: String,
    /// `urn:veeam:HierarchyRoot:<uuid>`.
    pub uid: String,
    /// Up, Alternate and Related links.
    pub links: Vec<Link>,
    /// ID of the hierarchy root (the UUID of the UID).
    pub hierarchy_root_id: String,
    /// Unique ID of the host (vCenter InstanceUUID, Hyper-V DNS name…).
    pub unique_id: String,
    /// `ESX`, `VC`, `ESXi`, `HvServer`, `HvCluster`, `Scvmm`, `VcdSystem`.
    pub host_type: String,
}

impl Representation for HierarchyRoot {
    fn to_node(&self) -> Node<'_> {
        let HierarchyRoot {
            href,
            name,
            uid,
            links,
            hierarchy_root_id,
            unique_id,
            host_type,
        } = self;
        Node::new(Self::ELEMENT)
            .layer(vec![
                elem("HierarchyRootId", hierarchy_root_id),
                elem("UniqueId", unique_id),
                elem("HostType", host_type),
            ])
            .layer(entity_layer(name, uid))
            .layer(resource_layer(links, href, Self::ELEMENT))
    }
}

/// A backup file entity (em_rest/get_backupfiles_id.md).
#[derive(Debug, Clone, PartialEq)]
pub struct BackupFile {
    /// URL of the entity.
    pub href: String,
    /// File name.
    pub name: String,
    /// `urn:veeam:BackupFile:<uuid>`.
    pub uid: String,
    /// Up, Alternate, Related and Down links.
    pub links: Vec<Link>,
    /// Path of the file.
    pub file_path: String,
    /// Size of the file in bytes.
    pub backup_size: i64,
    /// Size of the backed-up data in bytes.
    pub data_size: i64,
    /// Deduplication ratio.
    pub deduplication_ratio: f64,
    /// Compression ratio.
    pub compress_ratio: f64,
    /// When the file was created.
    pub creation_time_utc: UtcTime,
    /// `vbk`, `vib` or `vrb`.
    pub file_type: String,
}

impl Representation for BackupFile {
    fn to_node(&self) -> Node<'_> {
        let BackupFile {
            href,
            name,
            uid,
            links,
            file_path,
            backup_size,
            data_size,
            deduplication_ratio,
            compress_ratio,
            creation_time_utc,
            file_type,
        } = self;
        // Note the spelling `CreationTimeUtc` here, unlike elsewhere
        // (em_rest/backupfiles_id.md).
        Node::new(Self::ELEMENT)
            .layer(vec![
                elem("FilePath", file_path),
                elem("BackupSize", *backup_size),
                elem("DataSize", *data_size),
                elem("DeduplicationRatio", *deduplication_ratio),
                elem("CompressRatio", *compress_ratio),
                elem("CreationTimeUtc", *creation_time_utc),
                elem("FileType", file_type),
            ])
            .layer(entity_layer(name, uid))
            .layer(resource_layer(links, href, Self::ELEMENT))
    }
}
