//! Query benchmark: `--points` VM restore points (default 100,000) in the catalog, 100 VMs per
//! restore point, one restore point an hour; then the latency of typical queries (median and
//! worst of `--runs` runs each), as `Core::query` runs them for `GET /api/query`:
//! - filtered, sorted and paged: one VM's points after a date, newest first, page 3 of 20;
//! - a date range over every VM, sorted by name, page 10 of 100;
//! - no filter, default order, the last page of 100 (the deepest OFFSET);
//! - an OR of two VMs with an enum comparison, sorted by creation time.
//!
//! Each shape prints its p50 and p99 over the runs.
//!
//! Run: `cargo run --release -p emrest-core --example query_bench -- [points] [runs] [work dir]`
//! (`EMREST_KEEP=1` keeps the catalog in `<work dir>/data`, to serve it or look at its plans;
//! `EMREST_DEMO=1` builds the demo in it first, for `bench/load.sh` to serve).
//!
//! Or over the world of a scenario file (real disks and backups), e.g. the large one:
//! `cargo run --release -p emrest-core --example query_bench -- docs/scenarios/large.toml 20`
//! (its VMs are named `vm-001`…, so the same shapes apply; dates are counted back from now).

use emrest_core::demo::SyntheticPoints;
use emrest_core::lookup::LookupRequest;
use emrest_core::query::QueryRequest;
use emrest_core::{BackupServerRecord, Core, CoreConfig, Role};
use emrest_platform::PlatformKind;
use std::time::{Duration, Instant};
use uuid::Uuid;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let scenario = args.get(1).filter(|a| a.ends_with(".toml")).cloned();
    let points: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let runs: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20);
    let work = match args.get(3) {
        Some(p) => std::path::PathBuf::from(p),
        None => std::env::temp_dir().join(format!("emrest-query-bench-{}", std::process::id())),
    };
    let _ = std::fs::remove_dir_all(&work);
    let (core, _) = Core::open(CoreConfig::new(work.join("data")))?;
    // EMREST_DEMO=1 builds the demo (real VMs and backups, 64 MiB disks) beside the synthetic
    // points: a large catalog bench/load.sh can restore from.
    if std::env::var_os("EMREST_DEMO").is_some() {
        core.create_demo(&emrest_core::demo::DemoOptions {
            disk_size: 64 << 20,
        })?;
    }
    let (points, dates) = match &scenario {
        Some(file) => {
            let text = std::fs::read_to_string(file)?;
            let t0 = Instant::now();
            let plan =
                emrest_core::scenario::Scenario::parse(&text, 64 << 10, &|v| std::env::var(v).ok())
                    .map_err(|e| format!("{file}: {e}"))?;
            let made = core.create_world(&plan)?;
            println!(
                "scenario {file}: {} VMs, {} VM restore points, built in {:.1} s",
                made.vms,
                made.restore_points,
                t0.elapsed().as_secs_f64()
            );
            let day = 24 * 3600 * 1000;
            let now = emrest_core::now_millis();
            let iso = emrest_core::time::iso;
            (
                made.restore_points,
                (iso(now - 5 * day), iso(now - 6 * day), iso(now - 3 * day)),
            )
        }
        None => {
            let server = BackupServerRecord {
                id: Uuid::new_v4(),
                name: "bench".into(),
                description: String::new(),
                port: 9392,
                version: "bench".into(),
            };
            let cat = core.catalog();
            cat.insert_backup_server(&server)?;
            let root =
                core.inventory()
                    .create_root(Uuid::new_v4(), "vc.bench", PlatformKind::VMware)?;
            cat.insert_hierarchy_root(root.id, server.id)?;
            // EMREST_BENCH_VMS=N puts N VMs in the bench root's inventory (empty 1 MiB disks):
            // the lookup service's cost follows the inventory, not the catalog.
            let inventory_vms: usize = std::env::var("EMREST_BENCH_VMS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if inventory_vms > 0 {
                let t0 = Instant::now();
                let ds = core.inventory().add_datastore(root.id, "bench-ds", None)?;
                let disks = [emrest_platform::DiskInfo {
                    name: "disk-0".into(),
                    size: 1 << 20,
                }];
                for i in 0..inventory_vms {
                    core.inventory().create_vm(
                        root.id,
                        &ds.object_ref,
                        &format!("inv-{i:05}"),
                        &disks,
                        emrest_platform::PowerState::PoweredOff,
                    )?;
                }
                println!(
                    "inventory: {inventory_vms} VMs created in {:.1} s",
                    t0.elapsed().as_secs_f64()
                );
            }
            let t0 = Instant::now();
            let made = SyntheticPoints {
                job: "Bench Job",
                vm_prefix: "vm-",
                file_prefix: "Bench",
                first_ref: 1000,
                base: 1_600_000_000_000,
            }
            .insert(cat, server.id, root.id, points)?
            .len();
            println!(
                "catalog: {made} VM restore points in {} restore points, inserted in {:.1} s",
                made.div_ceil(100),
                t0.elapsed().as_secs_f64()
            );
            (
                made,
                (
                    "2020-09-20T00:00:00Z".to_string(),
                    "2020-10-01T00:00:00Z".to_string(),
                    "2020-10-05T04:00:00Z".to_string(),
                ),
            )
        }
    };
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let (after, from, to) = dates;
    core.add_account("bench", "bench", Role::PortalAdministrator)?;
    let session = core.logons().logon("bench", "bench")?;
    let caller = core.logons().caller(session.id)?;
    let cases: [(&str, QueryRequest); 4] = [
        (
            "filter VmDisplayName==vm-042;CreationTime>=…, sortDesc=CreationTime, pageSize=50&page=3",
            QueryRequest {
                type_name: "VmRestorePoint",
                filter: Some(leak(format!("VmDisplayName==\"vm-042\";CreationTime>=\"{after}\""))),
                sort_desc: Some("CreationTime"),
                page_size: Some("50"),
                page: Some("3"),
                ..Default::default()
            },
        ),
        (
            "filter CreationTime range (1/10 of all), sortAsc=Name, pageSize=100&page=10",
            QueryRequest {
                type_name: "VmRestorePoint",
                filter: Some(leak(format!("CreationTime>={from};CreationTime<{to}"))),
                sort_asc: Some("Name"),
                page_size: Some("100"),
                page: Some("10"),
                ..Default::default()
            },
        ),
        (
            "no filter, default order, last page of 100",
            QueryRequest {
                type_name: "VmRestorePoint",
                page_size: Some("100"),
                page: Some(Box::leak(points.div_ceil(100).to_string().into_boxed_str())),
                ..Default::default()
            },
        ),
        (
            "filter (VmDisplayName==vm-001,VmDisplayName==vm-002);Type>Full, sortDesc=CreationTime",
            QueryRequest {
                type_name: "VmRestorePoint",
                filter: Some("(VmDisplayName==vm-001,VmDisplayName==vm-002);Type>Full"),
                sort_desc: Some("CreationTime"),
                page_size: Some("100"),
                ..Default::default()
            },
        ),
    ];
    // p50 and p99 of `runs` runs of `f` (p99: the run below which 99% fall, the worst under
    // 100 runs), with what the last run found.
    let time = |name: &str,
                runs: usize,
                f: &mut dyn FnMut() -> Result<String, Box<dyn std::error::Error>>|
     -> Result<Duration, Box<dyn std::error::Error>> {
        let mut times: Vec<Duration> = Vec::with_capacity(runs);
        let mut found = String::new();
        for _ in 0..runs.max(1) {
            let t = Instant::now();
            found = f()?;
            times.push(t.elapsed());
        }
        times.sort();
        let p99 = times[(times.len() * 99).div_ceil(100).saturating_sub(1)];
        println!(
            "{name}: p50 {:.2} ms, p99 {:.2} ms ({found})",
            times[times.len() / 2].as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
        );
        Ok(p99)
    };
    // The goal of a query shape; one that misses it shows the plans SQLite chooses for it.
    const GOAL: Duration = Duration::from_millis(20);
    let explain_miss =
        |p99: Duration, req: &QueryRequest| -> Result<(), Box<dyn std::error::Error>> {
            if p99 >= GOAL {
                println!("  misses {} ms; its plans:", GOAL.as_millis());
                let plans = core
                    .catalog()
                    .explain_queries(|| core.as_caller(&caller).query(req))?;
                for line in plans {
                    println!("  {line}");
                }
            }
            Ok(())
        };
    for (name, req) in &cases {
        let p99 = time(name, runs, &mut || {
            let page = core.as_caller(&caller).query(req)?;
            Ok(format!(
                "{} on the page, {} matching",
                items_len(&page.items),
                page.total
            ))
        })?;
        explain_miss(p99, req)?;
    }
    // The other types the query service serves, at the last page of their default order.
    for type_name in ["RestorePoint", "BackupFile", "Backup"] {
        let total = core
            .as_caller(&caller)
            .query(&QueryRequest {
                type_name,
                ..Default::default()
            })?
            .total;
        let last = Box::leak(total.div_ceil(100).max(1).to_string().into_boxed_str());
        let req = QueryRequest {
            type_name,
            page_size: Some("100"),
            page: Some(last),
            ..Default::default()
        };
        let p99 = time(
            &format!("{type_name}: no filter, last page of 100"),
            runs,
            &mut || {
                let page = core.as_caller(&caller).query(&req)?;
                Ok(format!(
                    "{} on the page, {} matching",
                    items_len(&page.items),
                    page.total
                ))
            },
        )?;
        explain_miss(p99, &req)?;
    }
    // The collections a client walks down to a point (the routes' own core calls, not
    // encoded): a backup's restore points, a restore point's VM restore points.
    let backup = core
        .as_caller(&caller)
        .backups()?
        .into_iter()
        .next()
        .ok_or("no backup")?;
    time("GET /backups/{ID}/restorePoints (core)", runs, &mut || {
        Ok(format!(
            "{} restore points",
            core.as_caller(&caller)
                .restore_points(Some(backup.id))?
                .len()
        ))
    })?;
    let point = core
        .view()
        .restore_points(Some(backup.id))?
        .into_iter()
        .next()
        .ok_or("no point")?;
    time(
        "GET /restorePoints/{ID}/vmRestorePoints (core)",
        runs,
        &mut || {
            Ok(format!(
                "{} VM restore points",
                core.as_caller(&caller)
                    .vm_restore_points(Some(point.id))?
                    .len()
            ))
        },
    )?;
    // The whole collection, as GET /vmRestorePoints lists it: every point, so a few runs only.
    time(
        "GET /vmRestorePoints, every point (core)",
        runs.min(3),
        &mut || {
            Ok(format!(
                "{} VM restore points",
                core.as_caller(&caller).vm_restore_points(None)?.len()
            ))
        },
    )?;
    // The lookup service (GET /lookup): a VM by root and name, and an object by its
    // HierarchyObjRef. Its cost follows the inventory (EMREST_BENCH_VMS), not the points.
    let view = core.as_caller(&caller);
    let root = view
        .infrastructure()
        .hierarchy_roots()?
        .into_iter()
        .find(|r| r.name == "vc.bench");
    if let Some(root) = root {
        let host = root.id.to_string();
        let vms = core.inventory().vms()?;
        let probe = vms
            .iter()
            .filter(|v| v.root == root.id)
            .nth(vms.len() / 2)
            .map(|v| (v.name.clone(), v.hierarchy_obj_ref()));
        if let Some((name, obj_ref)) = probe {
            for (label, req) in [
                (
                    "lookup host=<root>&name=<a VM>&type=Vm",
                    LookupRequest {
                        host: Some(&host),
                        name: Some(&name),
                        type_: Some("Vm"),
                        hierarchy_ref: None,
                    },
                ),
                (
                    "lookup hierarchyRef=<a VM>",
                    LookupRequest {
                        host: None,
                        name: None,
                        type_: None,
                        hierarchy_ref: Some(&obj_ref),
                    },
                ),
            ] {
                time(
                    &format!("{label} ({} VMs in the inventory)", vms.len()),
                    runs,
                    &mut || Ok(format!("{} found", view.lookup(&req)?.len())),
                )?;
            }
        }
    }
    // The same, read a batch at a time as a long answer is streamed: the time to read them
    // all, in bounded memory (the whole listing cannot be 20 ms: it is every point).
    time(
        "GET /vmRestorePoints, every point, by batch as streamed (core)",
        runs.min(3),
        &mut || {
            let mut n = 0;
            core.as_caller(&caller)
                .vm_restore_points_by_batch(None, &mut |v| {
                    n += v.len();
                    Ok(true)
                })?;
            Ok(format!("{n} VM restore points"))
        },
    )?;
    drop(core);
    // EMREST_KEEP=1 keeps the catalog (in the work dir's `data`) to serve or inspect it.
    if std::env::var_os("EMREST_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&work);
    } else {
        println!("kept: {}", work.join("data").display());
    }
    Ok(())
}

/// Records on a page of the types the bench queries.
fn items_len(items: &emrest_core::query::QueryItems) -> usize {
    use emrest_core::query::QueryItems as I;
    match items {
        I::VmRestorePoints(v) => v.len(),
        I::RestorePoints(v) => v.len(),
        I::Backups(v) => v.len(),
        I::BackupFiles(v) => v.len(),
        _ => 0,
    }
}
