//! A throwaway PostgreSQL on a Unix socket, started once per test process and stopped with it:
//! `initdb` into a temporary folder (as the `postgres` user when the tests run as root, since
//! PostgreSQL refuses to run as root), then `postgres` listening on a socket only.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The running server.
#[derive(Debug)]
pub struct Postgres {
    /// The folder holding its socket (`.s.PGSQL.<port>`).
    pub socket_dir: PathBuf,
    /// Its port number (names the socket; nothing listens on TCP).
    pub port: u16,
    /// The superuser the tests connect as (trust authentication on the socket).
    pub user: String,
    /// Its binaries' folder (`psql` is there or on PATH).
    pub bin: PathBuf,
    /// How long `initdb` and the start took.
    pub setup_time: Duration,
}

impl Postgres {
    /// A `postgres://` URL of a new, empty database named after `test`.
    pub fn fresh_database(&self, test: &str) -> String {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "{}_{}_{}",
            test.replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""))
            .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
        self.url(&name)
    }

    /// The URL of database `db`.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://{}@localhost:{}/{db}?host={}",
            self.user,
            self.port,
            self.socket_dir.display()
        )
    }

    /// Runs `sql` in database `db` with `psql`; its output (unaligned, tuples only).
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let beside = self.bin.join("psql");
        let psql = if beside.is_file() {
            beside
        } else {
            PathBuf::from("psql")
        };
        let out = Command::new(psql)
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .arg("-h")
            .arg(&self.socket_dir)
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                &self.user,
                "-d",
                db,
                "-c",
                sql,
            ])
            .output()
            .map_err(|e| format!("run psql: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

/// The process's PostgreSQL, started on first use; `None` (the test skips) when PostgreSQL's
/// binaries are not installed, unless engines are required. Panics when they are installed
/// but it does not start.
pub fn postgres() -> Option<&'static Postgres> {
    static STARTED: OnceLock<Option<Postgres>> = OnceLock::new();
    STARTED
        .get_or_init(|| {
            let Some(bin) = bin_dir() else {
                return crate::missing(
                    "PostgreSQL is not installed (apt-get install postgresql; scripts/test does)",
                );
            };
            Some(start(&bin).unwrap_or_else(|e| panic!("cannot start PostgreSQL: {e}")))
        })
        .as_ref()
}

/// `EMREST_PG_BIN`, else the newest `/usr/lib/postgresql/<version>/bin` holding `initdb`.
fn bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("EMREST_PG_BIN").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// The user and group PostgreSQL runs as: ours, or `postgres`'s when we are root.
fn run_as() -> Result<Option<(u32, u32)>, String> {
    // SAFETY: getuid cannot fail and touches no memory.
    if unsafe { libc::getuid() } != 0 {
        return Ok(None);
    }
    let out = Command::new("id")
        .args(["-u", "postgres"])
        .output()
        .map_err(|e| format!("id: {e}"))?;
    let gid = Command::new("id")
        .args(["-g", "postgres"])
        .output()
        .map_err(|e| format!("id: {e}"))?;
    let parse = |o: &std::process::Output| -> Result<u32, String> {
        String::from_utf8_lossy(&o.stdout)
            .trim()
            .parse()
            .map_err(|_| {
                "running as root, and there is no postgres user to run PostgreSQL as".to_string()
            })
    };
    Ok(Some((parse(&out)?, parse(&gid)?)))
}

fn start(bin: &Path) -> Result<Postgres, String> {
    use std::os::unix::process::CommandExt;
    let began = Instant::now();
    let dir = crate::working_dir("emrest-postgres-")?;
    let (data, sockets) = (dir.join("data"), dir.join("sockets"));
    for d in [&data, &sockets] {
        std::fs::create_dir(d).map_err(|e| format!("create {}: {e}", d.display()))?;
    }
    let owner = run_as()?;
    if let Some((uid, gid)) = owner {
        for d in [&dir, &data, &sockets] {
            std::os::unix::fs::chown(d, Some(uid), Some(gid))
                .map_err(|e| format!("chown {}: {e}", d.display()))?;
        }
    }
    let mut initdb = Command::new(bin.join("initdb"));
    initdb
        .args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
            "-D",
        ])
        .arg(&data)
        .stdin(Stdio::null());
    if let Some((uid, gid)) = owner {
        initdb.uid(uid).gid(gid);
    }
    let out = initdb.output().map_err(|e| format!("run initdb: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let port = crate::free_port();
    let log = dir.join("postgres.log");
    let mut server = Command::new(bin.join("postgres"));
    server
        .arg("-D")
        .arg(&data)
        .arg("-k")
        .arg(&sockets)
        .args([
            "-p",
            &port.to_string(),
            "-c",
            "listen_addresses=",
            "-c",
            "fsync=off",
        ])
        .args(["-c", "max_connections=200"]);
    if let Some((uid, gid)) = owner {
        server.uid(uid).gid(gid);
    }
    crate::spawn_for_life_of_process(server, &log)?;
    let pg = Postgres {
        socket_dir: sockets,
        port,
        user: "postgres".into(),
        bin: bin.to_path_buf(),
        setup_time: Duration::ZERO,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Err(e) = pg.psql("postgres", "SELECT 1") {
        if Instant::now() > deadline {
            return Err(format!("not up after 60 s ({e}); see {}", log.display()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(Postgres {
        setup_time: began.elapsed(),
        ..pg
    })
}
