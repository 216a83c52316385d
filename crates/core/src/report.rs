//! Listings for people and scripts (`emrest vm list`, `emrest point list`): what each VM's disks
//! and each restore point's disks hold, by SHA-256 of their bytes, so a restore can be checked
//! bit for bit from the outside.

use crate::error::{CoreError, CoreResult};
use crate::model::{PointType, VmRestorePointRecord};
use crate::Owner;
use emrest_platform::{PlatformKind, PowerState};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::io::Read;

/// One disk and the SHA-256 of its bytes.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct DiskReport {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

/// A VM of the inventory.
#[derive(Clone, Debug, Serialize)]
pub struct VmReport {
    pub name: String,
    pub platform: PlatformKind,
    pub hierarchy_root: String,
    pub hierarchy_root_id: String,
    pub hierarchy_obj_ref: String,
    pub datastore: String,
    pub power_state: PowerState,
    pub disks: Vec<DiskReport>,
}

/// A VM restore point.
#[derive(Clone, Debug, Serialize)]
pub struct PointReport {
    pub id: String,
    pub uid: String,
    pub vm_name: String,
    pub hierarchy_obj_ref: String,
    pub creation_time: String,
    pub point_type: PointType,
    pub disks: Vec<DiskReport>,
}

impl Owner {
    /// Every VM with the SHA-256 of each disk.
    pub fn vm_report(&self) -> CoreResult<Vec<VmReport>> {
        let roots = self.inventory().roots()?;
        let mut out = Vec::new();
        for vm in self.inventory().vms()? {
            let key = vm.key();
            let mut disks = Vec::new();
            for d in &vm.disks {
                let file = self.inventory().open_disk(&key, &d.name, false)?;
                disks.push(DiskReport {
                    name: d.name.clone(),
                    size: d.size,
                    sha256: sha256_reader(file)?,
                });
            }
            out.push(VmReport {
                hierarchy_root: roots
                    .iter()
                    .find(|r| r.id == vm.root)
                    .map(|r| r.name.clone())
                    .unwrap_or_default(),
                hierarchy_root_id: vm.root.to_string(),
                hierarchy_obj_ref: vm.hierarchy_obj_ref(),
                name: vm.name,
                platform: vm.kind,
                datastore: vm.datastore,
                power_state: vm.power,
                disks,
            });
        }
        Ok(out)
    }

    /// Every VM restore point with the SHA-256 of each disk's bytes as stored.
    pub fn point_report(&self) -> CoreResult<Vec<PointReport>> {
        self.view()
            .vm_restore_points(None)?
            .into_iter()
            .map(|p| self.one_point_report(p))
            .collect()
    }

    fn one_point_report(&self, p: VmRestorePointRecord) -> CoreResult<PointReport> {
        let mut disks = Vec::new();
        for d in &p.disks {
            disks.push(DiskReport {
                name: d.name.clone(),
                size: d.size,
                sha256: self.point_disk_sha256(&d.index)?,
            });
        }
        Ok(PointReport {
            uid: format!("urn:veeam:VmRestorePoint:{}", p.id),
            id: p.id.to_string(),
            vm_name: p.vm_name,
            hierarchy_obj_ref: p.hierarchy_obj_ref,
            creation_time: crate::time::iso(p.created),
            point_type: p.point_type,
            disks,
        })
    }

    /// SHA-256 of the bytes a disk index describes, read back from the repository.
    pub fn point_disk_sha256(&self, index_name: &str) -> CoreResult<String> {
        let index = self.repository().get_index(index_name)?;
        let mut h = Sha256::new();
        let zeros = vec![0u8; index.chunk_size as usize];
        for (i, c) in index.chunks.iter().enumerate() {
            let (_, len) = index.chunk_range(i);
            match c {
                None => h.update(&zeros[..len]),
                Some(d) => h.update(self.repository().read_chunk(d)?),
            }
        }
        Ok(hex::encode(h.finalize()))
    }
}

/// VM restore point IDs, comma-separated.
fn list(points: &std::collections::BTreeSet<uuid::Uuid>) -> String {
    let ids: Vec<String> = points.iter().map(|u| u.to_string()).collect();
    ids.join(", ")
}

/// SHA-256 of everything a reader yields.
pub fn sha256_reader(mut r: impl Read) -> CoreResult<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = r
            .read(&mut buf)
            .map_err(|e| CoreError::Internal(format!("reading a disk: {e}")))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

impl Owner {
    /// Re-read every chunk that any restore point references; one line per problem, naming the
    /// chunk (or index) and the VM restore points it breaks. A writing `Core` also records the
    /// damaged points, so the server refuses to restore from them (jobs.rs).
    pub fn verify_repository(&self) -> CoreResult<Vec<String>> {
        use std::collections::{BTreeMap, BTreeSet, HashMap};
        let mut problems = Vec::new();
        let mut damaged: HashMap<uuid::Uuid, String> = HashMap::new();
        let mut users: BTreeMap<emrest_repo::ChunkDigest, BTreeSet<uuid::Uuid>> = BTreeMap::new();
        for (point, name) in self.catalog().all_index_names()? {
            match self.repository().get_index(&name) {
                Ok(index) => {
                    for d in index.referenced() {
                        users.entry(*d).or_default().insert(point);
                    }
                }
                Err(e) => {
                    damaged.insert(point, format!("index {name}: {e}"));
                    problems.push(format!("index {name} of VM restore point {point}: {e}"))
                }
            }
        }
        // A pack whose own index is damaged gets one line for all its chunks.
        let mut packs: BTreeMap<String, BTreeSet<uuid::Uuid>> = BTreeMap::new();
        for p in self
            .repository()
            .verify_chunks(users.keys(), &emrest_repo::NoControl)
        {
            let digest = *p.digest();
            let affected = users.get(&digest).cloned().unwrap_or_default();
            let what = match p {
                emrest_repo::ChunkProblem::PackIndexCorrupt {
                    pack,
                    reason,
                    chunks,
                    ..
                } => {
                    let why = emrest_repo::PackDamage {
                        pack,
                        reason,
                        chunks,
                    }
                    .to_string();
                    for p in &affected {
                        damaged
                            .entry(*p)
                            .or_insert_with(|| format!("chunk {digest} cannot be read: {why}"));
                    }
                    packs.entry(why).or_default().extend(affected);
                    continue;
                }
                emrest_repo::ChunkProblem::Missing(d) => format!("chunk {d} is missing"),
                // "chunk … is corrupt: <reason> (the chunk's bytes in <pack> at offset <n> are
                // damaged)"
                other => other.to_string(),
            };
            for p in &affected {
                damaged.entry(*p).or_insert_with(|| what.clone());
            }
            problems.push(format!(
                "{what}; affects VM restore point(s) {}",
                list(&affected)
            ));
        }
        for damage in self.repository().damaged_packs() {
            let why = damage.to_string();
            if !packs.contains_key(&why) {
                // Listing none of the chunks restore points use (or none that can still be
                // recognised): reported all the same, the file is damaged.
                problems.push(why);
            }
        }
        for (why, affected) in packs {
            problems.push(format!(
                "{why}; affects VM restore point(s) {}",
                list(&affected)
            ));
        }
        if !self.config.read_only {
            self.mark_damaged(&damaged)?;
        }
        Ok(problems)
    }
}
