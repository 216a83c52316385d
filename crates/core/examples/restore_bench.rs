//! Restore benchmark: one VM with one disk of `--size` MiB (random, text-like and zero regions),
//! a full backup, 1% of its 4 KiB blocks changed, an incremental backup; then, side by side in
//! the same run:
//! - `cp` of the disk image (the baseline a user would compare with),
//! - a full restore through `Core` (staging, verify, swap),
//! - a QuickRollback after 1% of the blocks changed again.
//!
//! Run: `cargo run --release -p emrest-core --example restore_bench -- [size MiB] [work dir]`

use emrest_core::demo::{fill_disk, scribble};
use emrest_core::{BackupServerRecord, Core, CoreConfig, RestoreRequest, Role, TaskState};
use emrest_platform::{DiskInfo, PlatformKind, PowerState};
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let mib: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1024);
    let work = match args.get(2) {
        Some(p) => std::path::PathBuf::from(p),
        None => std::env::temp_dir().join(format!("emrest-bench-{}", std::process::id())),
    };
    let _ = std::fs::remove_dir_all(&work);
    let size = mib << 20;
    let (core, _) = Core::open(CoreConfig::new(work.join("data")))?;
    let server = BackupServerRecord {
        id: uuid::Uuid::new_v4(),
        name: "bench".into(),
        description: String::new(),
        port: 9392,
        version: "bench".into(),
    };
    core.catalog().insert_backup_server(&server)?;
    let inv = core.inventory();
    let root = inv.create_root(uuid::Uuid::new_v4(), "vc.bench", PlatformKind::VMware)?;
    core.catalog().insert_hierarchy_root(root.id, server.id)?;
    let ds = inv.add_datastore(root.id, "ds1", None)?;
    let disks = [DiskInfo {
        name: "disk-0".into(),
        size,
    }];
    let vm = inv.create_vm(
        root.id,
        &ds.object_ref,
        "bench-vm",
        &disks,
        PowerState::PoweredOn,
    )?;
    let key = vm.key();
    {
        let f = inv.open_disk(&key, "disk-0", true)?;
        fill_disk(&f, size, 42)?;
        f.sync_all()?;
    }
    let t = Instant::now();
    let full = core.backup_now("Bench Job", std::slice::from_ref(&key))?;
    let full_backup = t.elapsed();
    {
        let f = inv.open_disk(&key, "disk-0", true)?;
        scribble(&f, size, 1.0, 7)?;
    }
    let t = Instant::now();
    let incr = core.backup_now("Bench Job", std::slice::from_ref(&key))?;
    let incr_backup = t.elapsed();

    let points = core.vm_restore_points(None)?;
    let newest = points
        .iter()
        .max_by_key(|p| p.created)
        .ok_or("no point")?
        .id;
    core.add_account("bench", "bench", Role::PortalAdministrator)?;
    let caller = core.caller(core.logon("bench", "bench")?.id)?;

    // Baseline: cp of the same image, page cache warm as for the restore.
    let disk_path = work.join("copy.img");
    let src = emrest_platform::LocalInventory::open_read_only(&work.join("data/platforms"))?
        .disk_path(&key, "disk-0")?;
    let t = Instant::now();
    let st = std::process::Command::new("cp")
        .arg(&src)
        .arg(&disk_path)
        .status()?;
    let cp = t.elapsed();
    if !st.success() {
        return Err("cp failed".into());
    }
    std::fs::remove_file(&disk_path)?;
    // The restore makes its disks durable before it swaps them in; so does this baseline.
    let t = Instant::now();
    let st = std::process::Command::new("cp")
        .arg(&src)
        .arg(&disk_path)
        .status()?;
    std::fs::File::open(&disk_path)?.sync_all()?;
    let cp_sync = t.elapsed();
    if !st.success() {
        return Err("cp failed".into());
    }
    std::fs::remove_file(&disk_path)?;

    let run = |req: &RestoreRequest| -> Result<Duration, Box<dyn std::error::Error>> {
        let t = Instant::now();
        let task = core.start_restore(&caller, newest, req)?;
        loop {
            let r = core.task(&caller, task.id)?;
            if r.state == TaskState::Finished {
                let (ok, msg) = r.result.unwrap_or((false, "no result".into()));
                if !ok {
                    return Err(msg.into());
                }
                return Ok(t.elapsed());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    {
        let f = inv.open_disk(&key, "disk-0", true)?;
        scribble(&f, size, 1.0, 9)?;
    }
    let full_restore = run(&RestoreRequest::default())?;
    {
        let f = inv.open_disk(&key, "disk-0", true)?;
        scribble(&f, size, 1.0, 11)?;
    }
    let quick = run(&RestoreRequest {
        quick_rollback: true,
        ..Default::default()
    })?;

    let mbps = |d: Duration| size as f64 / 1e6 / d.as_secs_f64();
    println!("emrest restore benchmark: one {mib} MiB disk, 1% of 4 KiB blocks changed");
    println!(
        "{:<34} {:>9} {:>10} {:>8}",
        "operation", "seconds", "MB/s", "vs cp"
    );
    let row = |name: &str, d: Duration| {
        println!(
            "{name:<34} {:>9.3} {:>10.1} {:>8.2}",
            d.as_secs_f64(),
            mbps(d),
            d.as_secs_f64() / cp.as_secs_f64()
        )
    };
    row("cp of the disk image (baseline)", cp);
    row("cp + fsync of the copy", cp_sync);
    row("full backup", full_backup);
    row("incremental backup (1% changed)", incr_backup);
    row("full restore (staging + swap)", full_restore);
    row("quick rollback (1% changed)", quick);
    println!(
        "repository: full stored {} MB, incremental stored {} MB, total {} MB",
        full.bytes_stored / 1_000_000,
        incr.bytes_stored / 1_000_000,
        core.repository().stored_bytes()? / 1_000_000
    );
    drop(core);
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}
