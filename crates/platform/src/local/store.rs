//! On-disk records of the local driver and the file-system primitives it relies on:
//! atomic JSON writes, directory fsync, sparse files, space accounting.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::PlatformError;
use crate::model::{PlatformKind, PowerState};

/// Version of every JSON record below; bumped on incompatible change.
pub(super) const FORMAT: u32 = 1;
/// File name of a root's config.
pub(super) const ROOT_FILE: &str = "root.json";
/// File name of a VM's config.
pub(super) const VM_FILE: &str = "vm.json";
/// File name of a VM's pending disk-swap journal.
pub(super) const REPLACE_FILE: &str = "replace.json";
/// Folder, in each datastore, of staged disks and VMs being assembled or deleted.
pub(super) const STAGING_DIR: &str = ".staging";
/// Extension of raw disk images.
pub(super) const IMG_EXT: &str = "img";
/// Marker in the names of temporary files written by [`write_json_atomic`].
pub(super) const TMP_MARK: &str = ".tmp-";

/// `<root uuid>/root.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct RootConfig {
    pub format: u32,
    pub id: Uuid,
    pub name: String,
    pub kind: PlatformKind,
    pub unique_id: String,
    /// Next number for `vm-<n>`, `datastore-<n>`, `volume-<n>` refs.
    pub next_ref: u64,
    /// Next number for a `ds-<n>` datastore folder.
    pub next_datastore_folder: u64,
    pub datastores: Vec<DatastoreConfig>,
    pub storage_profiles: Vec<NamedRef>,
    pub templates: Vec<NamedRef>,
}

/// One datastore of a root.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct DatastoreConfig {
    pub object_ref: String,
    pub name: String,
    pub capacity: Option<u64>,
    /// Folder name under the root's folder (`ds-<n>`), never derived from user input.
    pub folder: String,
}

/// A storage profile or template: a ref and a name.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct NamedRef {
    pub object_ref: String,
    pub name: String,
}

/// `<vm folder>/vm.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct VmConfig {
    pub format: u32,
    pub object_ref: String,
    pub name: String,
    pub storage_profile: Option<String>,
    pub power: PowerState,
    pub disks: Vec<DiskConfig>,
}

/// One disk of a VM: its name, size and image file name (`disk-<i>.img`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct DiskConfig {
    pub name: String,
    pub size: u64,
    pub file: String,
}

/// `<vm folder>/replace.json`: a disk swap that was decided; rolled forward at open.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct ReplaceJournal {
    pub format: u32,
    pub disks: Vec<ReplaceEntry>,
}

/// One staged image (in the datastore's staging folder) to rename over a VM disk.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct ReplaceEntry {
    pub staged_file: String,
    pub disk: DiskConfig,
}

/// Writes `value` as `dir/name` so that readers see the old or the new file, never a
/// partial one: temporary name, fsync, rename, fsync of the folder.
pub(super) fn write_json_atomic<T: Serialize>(
    dir: &Path,
    name: &str,
    value: &T,
) -> Result<(), PlatformError> {
    let target = dir.join(name);
    let bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| PlatformError::corrupt(format!("encoding {}", target.display()), e))?;
    let tmp = dir.join(format!(".{name}{TMP_MARK}{}", Uuid::new_v4().simple()));
    let written = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, &target)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(PlatformError::io(
            format!("writing {}", target.display()),
            e,
        ));
    }
    sync_dir(dir)
}

/// Reads a JSON record, checking its format version.
pub(super) fn read_json<T: DeserializeOwned + Versioned>(path: &Path) -> Result<T, PlatformError> {
    let bytes =
        fs::read(path).map_err(|e| PlatformError::io(format!("reading {}", path.display()), e))?;
    let value: T = serde_json::from_slice(&bytes)
        .map_err(|e| PlatformError::corrupt(format!("parsing {}", path.display()), e))?;
    if value.format() != FORMAT {
        return Err(PlatformError::corrupt(
            format!("reading {}", path.display()),
            format!("unsupported format {} (expected {FORMAT})", value.format()),
        ));
    }
    Ok(value)
}

/// A record with a format version.
pub(super) trait Versioned {
    /// The record's format version.
    fn format(&self) -> u32;
}

impl Versioned for RootConfig {
    fn format(&self) -> u32 {
        self.format
    }
}

impl Versioned for VmConfig {
    fn format(&self) -> u32 {
        self.format
    }
}

impl Versioned for ReplaceJournal {
    fn format(&self) -> u32 {
        self.format
    }
}

/// Makes a folder's entries (creations, renames, removals) durable.
pub(super) fn sync_dir(dir: &Path) -> Result<(), PlatformError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| PlatformError::io(format!("syncing folder {}", dir.display()), e))
}

/// Creates a new sparse file of `size` zero bytes, open for reading and writing.
pub(super) fn create_sparse(path: &Path, size: u64) -> Result<File, PlatformError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| PlatformError::io(format!("creating {}", path.display()), e))?;
    if let Err(e) = file.set_len(size) {
        let _ = fs::remove_file(path);
        return Err(PlatformError::io(
            format!("sizing {} to {size} bytes", path.display()),
            e,
        ));
    }
    Ok(file)
}

/// Sum of the apparent sizes of all disk images under a datastore folder (VM disks,
/// staged disks, VMs being assembled or deleted).
pub(super) fn allocated_bytes(dir: &Path) -> Result<u64, PlatformError> {
    fn walk(dir: &Path, depth: u32, total: &mut u64) -> std::io::Result<()> {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let ty = entry.file_type()?;
            let path = entry.path();
            if ty.is_dir() && depth > 0 {
                walk(&path, depth - 1, total)?;
            } else if ty.is_file() && path.extension().is_some_and(|x| x == IMG_EXT) {
                *total = total.saturating_add(entry.metadata()?.len());
            }
        }
        Ok(())
    }
    let mut total = 0;
    walk(dir, 2, &mut total)
        .map_err(|e| PlatformError::io(format!("measuring {}", dir.display()), e))?;
    Ok(total)
}

/// Removes a file or a folder tree.
pub(super) fn remove_any(path: &Path) -> std::io::Result<()> {
    if fs::symlink_metadata(path)?.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    }
}
