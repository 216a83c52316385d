//! A single-node Garage on loopback, started once per test process and stopped with it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The running store: its endpoint, a key pair allowed on [`Garage::bucket`].
#[derive(Debug)]
pub struct Garage {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The region it signs for.
    pub region: String,
    /// A bucket the key may read and write.
    pub bucket: String,
    /// The access key's ID (`AWS_ACCESS_KEY_ID`).
    pub key_id: String,
    /// The secret key (`AWS_SECRET_ACCESS_KEY`).
    pub secret: String,
    /// Its working folder (configuration, metadata, data, `garage.log`).
    pub dir: PathBuf,
    /// How long it took to start and set up.
    pub setup_time: Duration,
}

impl Garage {
    /// An `s3://` address of a fresh prefix of the bucket, named after `test`: every call
    /// gives a new one, so tests sharing the store never see each other's objects.
    pub fn fresh_url(&self, test: &str) -> String {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        format!(
            "s3://{}/{test}-{}-{n}?endpoint={}&region={}",
            self.bucket,
            std::process::id(),
            self.endpoint,
            self.region
        )
    }

    /// The environment a child process needs to reach the bucket.
    pub fn env(&self) -> [(&'static str, String); 2] {
        [
            ("AWS_ACCESS_KEY_ID", self.key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret.clone()),
        ]
    }
}

/// The process's Garage, started on first use; `None` (the test skips) when the `garage`
/// program is not installed, unless engines are required. Panics when it is installed but
/// does not start: that is a broken set-up, not a skip.
pub fn garage() -> Option<&'static Garage> {
    static STARTED: OnceLock<Option<Garage>> = OnceLock::new();
    STARTED
        .get_or_init(|| {
            let Some(program) = crate::find_program("EMREST_GARAGE", "garage") else {
                return crate::missing(
                    "garage is not installed (cargo install garage --locked --version 2.5.0)",
                );
            };
            Some(start(&program).unwrap_or_else(|e| panic!("cannot start Garage: {e}")))
        })
        .as_ref()
}

fn start(program: &Path) -> Result<Garage, String> {
    let began = Instant::now();
    let dir = crate::working_dir("emrest-garage-")?;
    let (s3, rpc, admin) = (crate::free_port(), crate::free_port(), crate::free_port());
    let region = "garage";
    let config = format!(
        r#"metadata_dir = "{d}/meta"
data_dir = "{d}/data"
db_engine = "sqlite"
replication_factor = 1
# Packs are compressed already: Garage compressing them again only costs CPU.
compression_level = "none"
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "{secret}"

[s3_api]
s3_region = "{region}"
api_bind_addr = "127.0.0.1:{s3}"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:{admin}"
"#,
        d = dir.display(),
        secret = random_hex(32),
    );
    let config_path = dir.join("garage.toml");
    std::fs::write(&config_path, config).map_err(|e| format!("write config: {e}"))?;
    let mut server = Command::new(program);
    server
        .arg("-c")
        .arg(&config_path)
        .arg("server")
        .env("RUST_LOG", "warn");
    crate::spawn_for_life_of_process(server, &dir.join("garage.log"))?;

    let garage = |args: &[&str]| -> Result<String, String> {
        let out = Command::new(program)
            .arg("-c")
            .arg(&config_path)
            .args(args)
            .output()
            .map_err(|e| format!("run garage {args:?}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "garage {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while garage(&["status"]).is_err() {
        if Instant::now() > deadline {
            return Err(format!(
                "not up after 60 s; see {}",
                dir.join("garage.log").display()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let node = garage(&["node", "id", "-q"])?;
    let node = node.trim().get(..64).ok_or("short node id")?.to_string();
    garage(&["layout", "assign", "-z", "dc1", "-c", "1G", &node])?;
    garage(&["layout", "apply", "--version", "1"])?;
    let key = garage(&["json-api", "CreateKey", r#"{"name":"emrest-tests"}"#])?;
    let key: serde_json::Value =
        serde_json::from_str(&key).map_err(|e| format!("CreateKey answer: {e}: {key}"))?;
    let field = |name: &str| {
        key[name]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("CreateKey answer has no {name}"))
    };
    let (key_id, secret) = (field("accessKeyId")?, field("secretAccessKey")?);
    let bucket = "emrest-tests";
    garage(&["bucket", "create", bucket])?;
    garage(&[
        "bucket", "allow", "--read", "--write", "--owner", bucket, "--key", &key_id,
    ])?;
    Ok(Garage {
        endpoint: format!("http://127.0.0.1:{s3}"),
        region: region.to_string(),
        bucket: bucket.to_string(),
        key_id,
        secret,
        dir,
        setup_time: began.elapsed(),
    })
}

/// `bytes` random bytes as hex, from the kernel.
fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut buf);
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}
