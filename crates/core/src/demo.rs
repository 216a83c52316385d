//! The demo world (the built-in scenario, `docs/scenarios/demo.toml`: one backup server, a
//! vCenter, a Hyper-V host and a Cloud Director system, two VMs on each, a full backup of
//! everything, about 2% of each disk's blocks changed, and an incremental backup), and the disk
//! contents every scenario uses: disks that look like real ones (random, text-like and zero
//! regions) and scattered guest writes. Creating it twice changes nothing.

use crate::error::{CoreError, CoreResult};
use crate::model::now_millis;
use crate::Owner;
use emrest_platform::{PlatformKind, PowerState, VmKey};
use emrest_repo::NoControl;
use std::os::unix::fs::FileExt;
use uuid::Uuid;

/// Demo sizes.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Size of every demo disk, in bytes.
    pub disk_size: u64,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            disk_size: 64 << 20,
        }
    }
}

impl DemoOptions {
    /// Refuse sizes the demo cannot use (checked before anything is created).
    pub fn validate(&self) -> CoreResult<()> {
        if self.disk_size == 0 || !self.disk_size.is_multiple_of(4096) {
            return Err(CoreError::invalid(
                "disk-size",
                "the demo disk size must be a positive multiple of 4096 bytes",
            ));
        }
        Ok(())
    }
}

/// What `create_demo` did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct DemoSummary {
    pub created: bool,
    pub vms: usize,
    pub restore_points: usize,
}

/// Small deterministic generator (xorshift64*), so demo disks are reproducible.
pub struct Prng(u64);

impl Prng {
    /// Seeded generator; a zero seed is replaced.
    pub fn new(seed: u64) -> Prng {
        Prng(seed.max(1))
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Fill a buffer with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

const WORDS: &[&str] = &[
    "backup", "restore", "server", "disk", "error", "info", "warning", "session", "the", "of",
    "config", "user", "request", "time", "value", "ok", "job", "volume", "sector", "block",
];

/// Fill `buf` with log-like text.
fn fill_text(rng: &mut Prng, buf: &mut [u8]) {
    let mut i = 0;
    while i < buf.len() {
        let w = WORDS[(rng.next_u64() % WORDS.len() as u64) as usize].as_bytes();
        let sep: &[u8] = if rng.next_u64().is_multiple_of(12) {
            b"\n"
        } else {
            b" "
        };
        for &b in w.iter().chain(sep) {
            if i < buf.len() {
                buf[i] = b;
                i += 1;
            }
        }
    }
}

/// Write a realistic disk image through an open file: 1 MiB regions, about 60% random
/// (compressed or encrypted data), 15% text-like and the rest left as zeros, the mix of the
/// VM-like image the performance goals are stated for.
pub fn fill_disk(file: &std::fs::File, size: u64, seed: u64) -> std::io::Result<()> {
    let mut rng = Prng::new(seed);
    let region = 1u64 << 20;
    let mut buf = vec![0u8; region as usize];
    let mut off = 0;
    while off < size {
        let len = region.min(size - off) as usize;
        match rng.next_u64() % 20 {
            0..=11 => {
                rng.fill(&mut buf[..len]);
                file.write_all_at(&buf[..len], off)?;
            }
            12..=14 => {
                fill_text(&mut rng, &mut buf[..len]);
                file.write_all_at(&buf[..len], off)?;
            }
            _ => {}
        }
        off += region;
    }
    Ok(())
}

/// Simulate a guest writing: overwrite about `percent`% of the disk's 4 KiB blocks, scattered.
///
/// This writes straight into the image, bypassing the platform: changed-block tracking
/// becomes invalid (see [`scribble_tracked`] for guest writes the platform records).
pub fn scribble(file: &std::fs::File, size: u64, percent: f64, seed: u64) -> std::io::Result<u64> {
    let mut n = 0;
    scribble_with(size, percent, seed, |buf, off| {
        n += 1;
        file.write_all_at(buf, off)
    })?;
    file.sync_all()?;
    Ok(n * 4096)
}

/// [`scribble`] through [`Inventory::write_disk`], as a guest's writes the platform tracks.
pub fn scribble_tracked(
    inv: &dyn emrest_platform::Inventory,
    key: &VmKey,
    disk: &str,
    size: u64,
    percent: f64,
    seed: u64,
) -> Result<u64, emrest_platform::PlatformError> {
    let mut n = 0;
    scribble_with(size, percent, seed, |buf, off| {
        n += 1;
        inv.write_disk(key, disk, off, buf)
    })?;
    Ok(n * 4096)
}

/// The writes of a scribble: `percent`% of the 4 KiB blocks, random blocks with random bytes.
fn scribble_with<E>(
    size: u64,
    percent: f64,
    seed: u64,
    mut write: impl FnMut(&[u8], u64) -> Result<(), E>,
) -> Result<(), E> {
    let mut rng = Prng::new(seed);
    let blocks = size / 4096;
    let n = ((blocks as f64) * percent / 100.0).ceil() as u64;
    let mut buf = [0u8; 4096];
    for _ in 0..n {
        let b = rng.next_u64() % blocks.max(1);
        rng.fill(&mut buf);
        write(&buf, b * 4096)?;
    }
    Ok(())
}

impl Owner {
    /// Create the demo world (the built-in scenario, `docs/scenarios/demo.toml`) unless the
    /// catalog already has a backup server.
    pub fn create_demo(&self, opts: &DemoOptions) -> CoreResult<DemoSummary> {
        opts.validate()?;
        let plan =
            crate::scenario::Scenario::parse(crate::scenario::DEMO, opts.disk_size, &|_| None)
                .map_err(|e| CoreError::Internal(format!("the built-in demo scenario: {e}")))?;
        self.create_world(&plan)
    }

    /// Back up VMs into a named backup now (CLI `emrest backup`, tests).
    pub fn backup_now(
        &self,
        backup_name: &str,
        vms: &[VmKey],
    ) -> CoreResult<crate::backup::BackupRunStats> {
        let server = self
            .infrastructure()
            .backup_servers()?
            .into_iter()
            .next()
            .ok_or_else(|| {
                CoreError::Conflict(
                    "no backup server is registered; run `emrest demo` first".into(),
                )
            })?;
        let (_, stats) =
            crate::backup::run_backup(self, backup_name, server.id, vms, now_millis(), &NoControl)?;
        Ok(stats)
    }
}

/// A catalog filled without disk data, for query benchmarks and paging tests: VM restore points
/// of 100 VMs per restore point, one restore point an hour from `base`, every seventh a full.
pub struct SyntheticPoints<'a> {
    /// Backup job name; VM names are `<vm_prefix>NNN` and backup files `<file_prefix>N.vib`.
    pub job: &'a str,
    pub vm_prefix: &'a str,
    pub file_prefix: &'a str,
    /// The first VM's object reference number (`vm-<first_ref + v>`).
    pub first_ref: u32,
    /// Creation time of the first restore point.
    pub base: i64,
}

impl SyntheticPoints<'_> {
    /// Insert `n` VM restore points under `server` and hierarchy root `root`, one transaction
    /// per restore point; returns their IDs in insertion order.
    pub fn insert(
        &self,
        catalog: &crate::catalog::Catalog,
        server: Uuid,
        root: Uuid,
        n: usize,
    ) -> CoreResult<Vec<Uuid>> {
        use crate::catalog::NewVmPoint;
        use crate::{BackupFileRecord, PointType, RestorePointRecord};
        let backup = catalog.ensure_backup(self.job, PlatformKind::VMware, server, 0)?;
        let mut ids = Vec::with_capacity(n);
        let mut rp_i = 0i64;
        while ids.len() < n {
            let created = self.base + rp_i * 3_600_000;
            let rp = RestorePointRecord {
                id: Uuid::new_v4(),
                backup_id: backup.id,
                backup_name: backup.name.clone(),
                backup_server_id: server,
                created,
                point_type: if rp_i % 7 == 0 {
                    PointType::Full
                } else {
                    PointType::Increment
                },
            };
            let file = BackupFileRecord {
                id: Uuid::new_v4(),
                backup_id: backup.id,
                backup_name: backup.name.clone(),
                backup_server_id: server,
                restore_point_id: rp.id,
                file_name: format!("{}{rp_i}.vib", self.file_prefix),
                backup_size: 1,
                data_size: 1,
                created,
            };
            let vms: Vec<NewVmPoint> = (0..100.min(n - ids.len()))
                .map(|v| {
                    let object_ref = format!("vm-{}", self.first_ref as usize + v);
                    NewVmPoint {
                        id: Uuid::new_v4(),
                        obj_ref: format!("urn:VMware:Vm:{root}.{object_ref}"),
                        vm: VmKey { root, object_ref },
                        platform: PlatformKind::VMware,
                        vm_name: format!("{}{v:03}", self.vm_prefix),
                        datastore: "datastore-1".into(),
                        storage_profile: None,
                        power: PowerState::PoweredOn,
                        disks: Vec::new(),
                    }
                })
                .collect();
            ids.extend(vms.iter().map(|v| v.id));
            catalog.insert_restore_point(&rp, &file, &vms)?;
            rp_i += 1;
        }
        Ok(ids)
    }
}
