//! Real engines for emrest's tests, started by the tests on loopback: [`garage`] starts a
//! single-node Garage (an S3-compatible object store) once per test process, [`postgres`] a
//! throwaway PostgreSQL on a Unix socket.
//!
//! An engine whose program is not installed makes its tests skip with a line on standard
//! error, unless `EMREST_REQUIRE_ENGINES=1` (set by `.ci/run` and the README's test
//! command), which turns that into a failure: CI never passes by skipping.

pub mod garage;
pub mod postgres;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// True when a missing engine must fail the tests instead of skipping them.
pub fn engines_required() -> bool {
    std::env::var("EMREST_REQUIRE_ENGINES").is_ok_and(|v| v == "1")
}

/// The program `name`: from the environment variable `var` when set, else the first on
/// `PATH`, else in cargo's bin folder (where `cargo install` puts it).
pub fn find_program(var: &str, name: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(var).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|c| c.join("bin"));
    std::env::split_paths(&path)
        .chain(cargo_bin)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A free TCP port on 127.0.0.1 (free when asked; the engine binds it right after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port on 127.0.0.1: {e}"))
}

/// Skips (returns `None` after a line on standard error) or fails, per
/// [`engines_required`], because `what` is missing.
pub fn missing<T>(what: &str) -> Option<T> {
    if engines_required() {
        panic!(
            "{what} (EMREST_REQUIRE_ENGINES=1: the tests need it; see the README's test command)"
        );
    }
    eprintln!("skipped: {what} (set EMREST_REQUIRE_ENGINES=1 to make this a failure)");
    None
}

/// Names the process whose engine works in a folder (the engine dies with that process).
const OWNER_FILE: &str = "owner.pid";

/// A new working folder for an engine, `<temp>/<prefix>XXXX`, naming this process as its
/// owner; folders of ended processes with the same prefix are removed first.
pub(crate) fn working_dir(prefix: &str) -> Result<PathBuf, String> {
    remove_folders_of_ended_processes(prefix);
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|e| format!("temporary folder: {e}"))?
        .keep();
    std::fs::write(dir.join(OWNER_FILE), std::process::id().to_string())
        .map_err(|e| format!("write {OWNER_FILE}: {e}"))?;
    Ok(dir)
}

/// An engine's folder outlives its test process (nothing runs at exit): the next start removes
/// those whose process has ended.
fn remove_folders_of_ended_processes(prefix: &str) {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(prefix) {
            continue;
        }
        let Ok(owner) = std::fs::read_to_string(entry.path().join(OWNER_FILE)) else {
            // Another process may be between making the folder and naming itself.
            let young = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age < Duration::from_secs(300)));
            if !young {
                let _ = std::fs::remove_dir_all(entry.path());
            }
            continue;
        };
        let alive = owner
            .trim()
            .parse::<u32>()
            .is_ok_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Starts `cmd` (its output to `log`) from a thread that never ends, killed by the kernel when
/// that thread goes: when the test process exits, however it exits.
pub(crate) fn spawn_for_life_of_process(mut cmd: Command, log: &Path) -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    let out = std::fs::File::create(log).map_err(|e| format!("log file: {e}"))?;
    let err = out.try_clone().map_err(|e| format!("log file: {e}"))?;
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent. It runs after
    // the switch to the server's user (which would clear the setting).
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (tx, rx) = mpsc::channel::<Result<(), String>>();
    std::thread::Builder::new()
        .name("postgres-parent".into())
        .spawn(move || {
            let child: Result<Child, String> =
                cmd.spawn().map_err(|e| format!("start postgres: {e}"));
            let ok = child.is_ok();
            let _ = tx.send(child.map(|_| ()));
            if ok {
                loop {
                    std::thread::park();
                }
            }
        })
        .map_err(|e| format!("thread: {e}"))?;
    rx.recv().map_err(|e| format!("thread: {e}"))?
}
