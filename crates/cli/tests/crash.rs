//! Crash safety of the real binary: `emrest serve` is killed with SIGKILL in the middle of a full
//! in-place restore, of a QuickRollback and of a backup job run, and `emrest gc` in the middle of a collection, at
//! seeded, repeatable moments. After each kill the server is started again (its crash recovery
//! runs) and the data folder must be whole:
//!
//! - restore: the task reads Finished with `Result Success="false"` and a message saying it
//!   was interrupted, the restore session Stopped/Failed, and every disk of the VM hashes
//!   exactly as before the restore — or, when the kill came after the journalled disk swap was
//!   committed, exactly as the restore point (the swap is rolled forward at open; never a mix);
//! - quick rollback: the same, where "rolled forward" means the rollback journal written
//!   before the first in-place write was found at open and every disk brought to the point
//!   (crates/core/src/rollback_journal.rs), which the session log says;
//! - backup: the job session reads Stopped/Failed "Interrupted" (the job's own task finished
//!   at once, as post_jobs_id_actionstart.md has it), and a restore point exists only if it was
//!   recorded whole;
//! - always: `emrest verify` is clean, no staging or temporary file is left in the inventory or
//!   the repository, every index file is named by a restore point, and SQLite's
//!   `PRAGMA integrity_check` on the catalog answers "ok".
//!
//! Kill moments are drawn by a small PRNG seeded from `EMREST_CRASH_SEED`, uniformly over
//! 0..120% of the duration of an uninterrupted run of the same operation measured first, so
//! they land in every phase. `EMREST_CRASH_KILLS` sets the number of kill points (default 60:
//! 18 full restores, 12 quick rollbacks, 15 backups, 15 collections); `EMREST_CRASH_ONLY=gc`
//! spends them all on collections.

mod common;

use common::*;
use emrest_core::{Core, CoreConfig, Owner, SessionResult, SessionState};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Demo disk size: big enough that a restore of file01 (two disks) lasts a few hundred ms.
const CRASH_DISK_SIZE: &str = "16M";
/// The VM restored in place, and the job backed up.
const RESTORE_VM: &str = "file01";
const BACKUP_JOB: &str = "Backup Job hyperv01";
/// A job with retention 1 whose runs leave garbage for `gc` to collect.
const CHURN_JOB: &str = "Churn";
const CHURN_VM: &str = "app01";

/// xorshift64*: small, seeded, repeatable.
struct Prng(u64);

impl Prng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A kill moment uniformly in 0..120% of `measured`.
    fn delay(&mut self, measured: Duration) -> Duration {
        let max = measured.as_micros() as u64 * 6 / 5;
        Duration::from_micros(self.next() % max.max(1))
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number")),
        Err(_) => default,
    }
}

/// How many kills landed while the operation ran, and how many after it had finished; where
/// they landed (by the last thing the operation logged) and what they left.
#[derive(Default, Debug)]
struct Tally {
    during: u32,
    after: u32,
    phases: BTreeMap<String, u32>,
}

impl Tally {
    fn landed(&mut self, phase: impl Into<String>) {
        *self.phases.entry(phase.into()).or_default() += 1;
    }
}

/// The phase a restore was in, from the last line its run logged (recovery's own lines aside).
fn restore_phase(log: &[emrest_core::LogLine]) -> &'static str {
    let last = log
        .iter()
        .rev()
        .map(|l| l.text.as_str())
        .find(|t| !t.starts_with("Recovery"))
        .unwrap_or_default();
    let recovery = log.iter().find(|l| l.text.starts_with("Recovery:"));
    if let Some(r) = recovery {
        // "(N chunks, M bytes rewritten)": N > 0 means the kill left a mix that was finished.
        if r.text.contains("(0 chunks") {
            "writes done, end not recorded (journal found, nothing to rewrite)"
        } else {
            "writing in place (journal found, blocks rewritten)"
        }
    } else if last.starts_with("Restore requested") {
        "queued"
    } else if last.starts_with("Restore started") {
        "staging the first disk"
    } else if last.contains("into staging") {
        "staging a later disk, or about to swap"
    } else if last.starts_with("Powering off") {
        "swapping"
    } else if last.contains("changed-block tracking") {
        "comparing, or writing in place after the last comparison"
    } else if last.contains("quick rollback wrote") {
        "writing a later disk in place, or recording the end"
    } else {
        "after the swap"
    }
}

/// A read-only look at the data folder (beside a running server, or with none).
fn look(data: &Path) -> Owner {
    Core::open(CoreConfig {
        read_only: true,
        ..CoreConfig::new(data)
    })
    .expect("open the data folder read-only")
    .0
}

/// SHA-256 of each disk of a VM, by disk name.
fn vm_hashes(core: &Owner, vm: &str) -> BTreeMap<String, String> {
    let info = core
        .inventory()
        .vms()
        .expect("vms")
        .into_iter()
        .find(|v| v.name == vm)
        .unwrap_or_else(|| panic!("VM {vm} is gone"));
    info.disks
        .iter()
        .map(|d| {
            let f = core
                .inventory()
                .open_disk(&info.key(), &d.name, false)
                .expect("open disk");
            (
                d.name.clone(),
                emrest_core::report::sha256_reader(f).expect("hash disk"),
            )
        })
        .collect()
}

/// SHA-256 of each disk of a VM restore point, as the repository holds it.
fn point_hashes(core: &Owner, point: uuid::Uuid) -> BTreeMap<String, String> {
    let p = core.view().vm_restore_point(point).expect("point");
    p.disks
        .iter()
        .map(|d| {
            (
                d.name.clone(),
                core.point_disk_sha256(&d.index).expect("hash point disk"),
            )
        })
        .collect()
}

/// Leftovers of interrupted work: anything in a staging folder, temporary names (`.tmp-` in
/// the repository and the inventory), pending disk-swap journals.
fn leftovers(data: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![data.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("list {}: {e}", d.display())) {
            let e = e.expect("directory entry");
            let name = e.file_name().to_string_lossy().into_owned();
            let path = e.path();
            let in_staging = d.file_name().is_some_and(|n| n == ".staging");
            let journal = d.file_name().is_some_and(|n| n == "rollbacks");
            if in_staging || journal || name.contains(".tmp-") || name == "replace.json" {
                out.push(path.clone());
            }
            if e.file_type().expect("file type").is_dir() {
                todo.push(path);
            }
        }
    }
    out
}

/// Everything that must hold after any crash and restart.
fn assert_whole(data: &Path, what: &str) {
    let left = leftovers(data);
    assert!(left.is_empty(), "{what}: left behind: {left:?}");
    let core = look(data);
    core.catalog()
        .integrity_check()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let named: BTreeSet<String> = core
        .catalog()
        .all_index_names()
        .expect("index names")
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    let stored: BTreeSet<String> = core
        .repository()
        .list_indexes()
        .expect("indexes")
        .into_iter()
        .collect();
    assert!(
        named.is_subset(&stored),
        "{what}: restore points name missing indexes {:?}",
        named.difference(&stored).collect::<Vec<_>>()
    );
    assert_eq!(
        stored.difference(&named).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "{what}: index files no restore point names"
    );
    let run = emrest(&["verify", "--data", arg(data)]);
    assert!(
        run.status.success(),
        "{what}: verify failed:\n{}{}",
        run.stdout,
        run.stderr
    );
}

fn start(data: &Path) -> (Server, String) {
    let server = Server::start(ServerOptions {
        data,
        https: false,
        demo: false,
        admin_password: Some(ADMIN_PASSWORD),
    });
    let token = server.logon("admin", ADMIN_PASSWORD);
    (server, token)
}

fn get(server: &Server, token: &str, path: &str) -> Value {
    let r = server.call(token, "GET", path, None);
    assert_eq!(r.status, 200, "GET {path}: {}", r.text());
    r.json()
}

/// The path of an absolute link to this server.
fn path_of(server: &Server, href: &str) -> String {
    let base = format!("http://{}", server.http);
    href.strip_prefix(&base)
        .unwrap_or_else(|| panic!("link {href} is not on {base}"))
        .to_string()
}

fn related(v: &Value) -> String {
    v["Links"]
        .as_array()
        .expect("Links")
        .iter()
        .find(|l| l["Rel"] == "Related")
        .and_then(|l| l["Href"].as_str())
        .unwrap_or_else(|| panic!("no Related link in {v}"))
        .to_string()
}

fn wait_task(server: &Server, token: &str, task: &str) -> Value {
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        let t = get(server, token, &format!("/api/tasks/{task}"));
        if t["State"] == "Finished" {
            return t;
        }
        assert!(Instant::now() < deadline, "task {task} hangs");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The point of the restored VM whose disks differ from the VM's now.
fn pick_point(
    data: &Path,
) -> (
    uuid::Uuid,
    BTreeMap<String, String>,
    BTreeMap<String, String>,
) {
    let core = look(data);
    let now = vm_hashes(&core, RESTORE_VM);
    for p in core.view().vm_restore_points(None).expect("points") {
        if p.vm_name == RESTORE_VM {
            let ph = point_hashes(&core, p.id);
            if ph != now {
                return (p.id, now, ph);
            }
        }
    }
    panic!("every point of {RESTORE_VM} equals its disks")
}

fn restore_kills(data: &Path, rng: &mut Prng, kills: u32, quick: bool) -> Tally {
    let kind = if quick {
        "quick rollback"
    } else {
        "full restore"
    };
    let (mut server, mut token) = start(data);
    // One uninterrupted run measures the duration the kill moments are drawn from.
    let (point, _, after) = pick_point(data);
    let t0 = Instant::now();
    let task = post_restore(&server, &token, &point.to_string(), quick)["TaskId"]
        .as_str()
        .expect("TaskId")
        .to_string();
    let done = wait_task(&server, &token, &task);
    let measured = t0.elapsed();
    assert_eq!(done["Result"]["Success"], true, "{done}");
    assert_eq!(vm_hashes(&look(data), RESTORE_VM), after);
    eprintln!("restore: an uninterrupted {kind} of {RESTORE_VM} takes {measured:?}");

    let mut tally = Tally::default();
    for k in 0..kills {
        let (point, before, target) = pick_point(data);
        let delay = rng.delay(measured);
        let task = post_restore(&server, &token, &point.to_string(), quick)["TaskId"]
            .as_str()
            .expect("TaskId")
            .to_string();
        std::thread::sleep(delay);
        server.stop();
        (server, token) = start(data);
        let what = format!("{kind} kill {k} after {delay:?}");
        let t = get(&server, &token, &format!("/api/tasks/{task}"));
        assert_eq!(t["State"], "Finished", "{what}: {t}");
        let session = get(&server, &token, &path_of(&server, &related(&t)));
        assert_eq!(session["State"], "Stopped", "{what}: {session}");
        let core = look(data);
        let disks = vm_hashes(&core, RESTORE_VM);
        let session_id = session["UID"]
            .as_str()
            .and_then(|u| u.rsplit(':').next())
            .and_then(|u| uuid::Uuid::parse_str(u).ok())
            .expect("session UID");
        let log = core.catalog().session_log(session_id).expect("log");
        drop(core);
        if t["Result"]["Success"] == true {
            tally.after += 1;
            assert_eq!(session["Result"], "Success", "{what}: {session}");
            assert_eq!(disks, target, "{what}: finished, so restored");
        } else {
            tally.during += 1;
            let msg = t["Result"]["Message"].as_str().unwrap_or_default();
            assert!(msg.starts_with("Interrupted"), "{what}: {t}");
            assert_eq!(session["Result"], "Failed", "{what}: {session}");
            assert!(
                disks == before || disks == target,
                "{what}: the VM's disks are neither as before nor the point's: {disks:?}"
            );
            let left = if disks == before {
                "left as before"
            } else if quick {
                "rolled forward to the point"
            } else {
                "swap rolled forward"
            };
            tally.landed(format!("{} → {left}", restore_phase(&log)));
        }
        assert_whole(data, &what);
    }
    server.stop();
    tally
}

fn job_id(core: &Owner, name: &str) -> uuid::Uuid {
    core.view()
        .job_by_name(name)
        .expect("jobs")
        .unwrap_or_else(|| panic!("no job {name}"))
        .id
}

fn point_ids(core: &Owner) -> BTreeSet<uuid::Uuid> {
    core.view()
        .vm_restore_points(None)
        .expect("points")
        .iter()
        .map(|p| p.id)
        .collect()
}

/// The IDs of a job's backup sessions.
fn session_ids(data: &Path, job: uuid::Uuid) -> BTreeSet<uuid::Uuid> {
    look(data)
        .view()
        .backup_sessions(Some(job))
        .expect("sessions")
        .iter()
        .map(|s| s.id)
        .collect()
}

/// Start a job through the API (the task finishes at once; the job runs on).
fn post_job_start(server: &Server, token: &str, job: uuid::Uuid) {
    let r = server.call(
        token,
        "POST",
        &format!("/api/jobs/{job}?action=start"),
        None,
    );
    assert_eq!(r.status, 202, "job start: {}", r.text());
}

/// The one session of `job` not in `before`.
fn new_session(data: &Path, job: uuid::Uuid, before: &BTreeSet<uuid::Uuid>) -> uuid::Uuid {
    let new: Vec<uuid::Uuid> = session_ids(data, job).difference(before).copied().collect();
    assert_eq!(new.len(), 1, "one new backup session: {new:?}");
    new[0]
}

fn backup_kills(data: &Path, rng: &mut Prng, kills: u32) -> Tally {
    let job = job_id(&look(data), BACKUP_JOB);
    let (mut server, mut token) = start(data);
    let wait_session = |session: uuid::Uuid| {
        let deadline = Instant::now() + HANG_GUARD;
        loop {
            let s = look(data).view().backup_session(session).expect("session");
            if s.state == SessionState::Stopped {
                return s;
            }
            assert!(Instant::now() < deadline, "backup session {session} hangs");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    let before = session_ids(data, job);
    post_job_start(&server, &token, job);
    let done = wait_session(new_session(data, job, &before));
    assert_eq!(done.result, SessionResult::Success, "{done:?}");
    // From the session's own times: polling through a fresh read-only open is slower.
    let measured = Duration::from_millis((done.ended.expect("ended") - done.created).max(1) as u64);
    eprintln!("backup: an uninterrupted run of '{BACKUP_JOB}' takes {measured:?}");

    let mut tally = Tally::default();
    for k in 0..kills {
        let before = point_ids(&look(data));
        let sessions = session_ids(data, job);
        let delay = rng.delay(measured);
        post_job_start(&server, &token, job);
        std::thread::sleep(delay);
        server.stop();
        (server, token) = start(data);
        let session = new_session(data, job, &sessions);
        let what = format!("backup kill {k} after {delay:?}");
        let core = look(data);
        let s = core.view().backup_session(session).expect("session");
        assert_eq!(s.state, SessionState::Stopped, "{what}: {s:?}");
        let after = point_ids(&core);
        let new: Vec<_> = after.difference(&before).collect();
        if s.result == SessionResult::Success {
            tally.after += 1;
            assert_eq!(new.len(), 2, "{what}: one point per VM of the job");
        } else {
            tally.during += 1;
            assert_eq!(s.result, SessionResult::Failed, "{what}: {s:?}");
            assert!(
                s.failure_message
                    .as_deref()
                    .is_some_and(|m| m.starts_with("Interrupted")),
                "{what}: {s:?}"
            );
            // Recorded whole (one catalog transaction) or not at all.
            assert!(new.is_empty() || new.len() == 2, "{what}: {new:?}");
            tally.landed(if new.is_empty() {
                "before the point was recorded"
            } else {
                "after the point was recorded"
            });
        }
        // Every point recorded holds what the VM held (nothing writes to the VMs meanwhile).
        for p in &new {
            let vm = core.view().vm_restore_point(**p).expect("point").vm_name;
            assert_eq!(
                point_hashes(&core, **p),
                vm_hashes(&core, &vm),
                "{what}: point of {vm}"
            );
        }
        drop(core);
        assert_whole(data, &what);
    }
    server.stop();
    tally
}

/// Give `gc` something to do: change the churn VM and back it up with retention 1, so the
/// previous churn point's own chunks become garbage. Runs in this process (no server).
fn make_garbage(data: &Path, rng: &mut Prng) {
    let (core, _) = Core::open(CoreConfig::new(data)).expect("open to write");
    let vm = core
        .inventory()
        .vms()
        .expect("vms")
        .into_iter()
        .find(|v| v.name == CHURN_VM)
        .expect("churn VM");
    let job = match core.view().job_by_name(CHURN_JOB).expect("jobs") {
        Some(j) => j.id,
        None => {
            core.jobs()
                .create_job(CHURN_JOB, &[vm.hierarchy_obj_ref()], 1, "crash test")
                .expect("create job")
                .id
        }
    };
    let disk = &vm.disks[0];
    let mut block = vec![0u8; 64 << 10];
    for _ in 0..32 {
        for b in block.chunks_mut(8) {
            b.copy_from_slice(&rng.next().to_le_bytes());
        }
        let offset = rng.next() % (disk.size / block.len() as u64) * block.len() as u64;
        core.inventory()
            .write_disk(&vm.key(), &disk.name, offset, &block)
            .expect("guest write");
    }
    let s = core
        .jobs()
        .run_job_now(job, emrest_core::now_millis())
        .expect("churn run");
    assert_eq!(s.result, SessionResult::Success, "{s:?}");
}

fn gc_cmd(data: &Path) -> std::process::Command {
    let mut cmd = emrest_cmd();
    cmd.args(["gc", "--data", arg(data), "--grace-minutes", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

fn gc_kills(data: &Path, rng: &mut Prng, kills: u32) -> Tally {
    // Two churn runs, so the first one's point is garbage, then one uninterrupted collection.
    make_garbage(data, rng);
    make_garbage(data, rng);
    let t0 = Instant::now();
    let out = gc_cmd(data).output().expect("run gc");
    let measured = t0.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("gc: an uninterrupted collection takes {measured:?}");

    let mut tally = Tally::default();
    for k in 0..kills {
        make_garbage(data, rng);
        let delay = rng.delay(measured);
        let mut child = gc_cmd(data).spawn().expect("start gc");
        std::thread::sleep(delay);
        let finished = child.try_wait().expect("poll gc").is_some();
        let _ = child.kill();
        let status = child.wait().expect("reap gc");
        let what = format!("gc kill {k} after {delay:?}");
        if finished {
            assert!(status.success(), "{what}: gc failed on its own: {status}");
            tally.after += 1;
        } else {
            tally.during += 1;
        }
        // The server's start is the recovery; then everything must be whole and restorable.
        let (server, _) = start(data);
        assert_whole(data, &what);
        server.stop();
    }
    tally
}

#[test]
fn killed_restores_backups_and_collections_leave_the_data_folder_whole() {
    let seed = env_u64("EMREST_CRASH_SEED", 0x5eed_c0de_2024);
    let kills = env_u64("EMREST_CRASH_KILLS", 60).max(4) as u32;
    // `EMREST_CRASH_ONLY=gc` spends every kill point on collections.
    let only_gc = std::env::var("EMREST_CRASH_ONLY").is_ok_and(|v| v.trim() == "gc");
    let (restores, quicks, backups) = if only_gc {
        (0, 0, 0)
    } else {
        let restores = kills * 3 / 10;
        let quicks = kills / 5;
        (restores, quicks, (kills - restores - quicks) / 2)
    };
    let gcs = kills - restores - quicks - backups;
    eprintln!("crash harness: seed {seed:#x}, {kills} kill points ({restores} full restore, {quicks} quick rollback, {backups} backup, {gcs} gc)");
    let mut rng = Prng(seed.max(1));
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    emrest_env(
        &["demo", "--data", arg(&data), "--disk-size", CRASH_DISK_SIZE],
        &[("EMREST_ADMIN_PASSWORD", ADMIN_PASSWORD)],
    )
    .ok();
    let r = match restores {
        0 => Tally::default(),
        n => restore_kills(&data, &mut rng, n, false),
    };
    let q = match quicks {
        0 => Tally::default(),
        n => restore_kills(&data, &mut rng, n, true),
    };
    let b = match backups {
        0 => Tally::default(),
        n => backup_kills(&data, &mut rng, n),
    };
    let g = gc_kills(&data, &mut rng, gcs);
    for (op, t) in [
        ("full restore", &r),
        ("quick rollback", &q),
        ("backup", &b),
        ("gc", &g),
    ] {
        eprintln!(
            "crash harness: {op}: survived {} kill points ({} while running, {} after it had finished); {:?}",
            t.during + t.after,
            t.during,
            t.after,
            t.phases
        );
    }
    assert_eq!(
        r.during + r.after + q.during + q.after + b.during + b.after + g.during + g.after,
        kills
    );
}
