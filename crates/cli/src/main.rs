//! `emrest`: the Enterprise Manager REST server and its maintenance verbs.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
mod admin;

use admin::{Driver, Request};
use emrest_core::report::DiskReport;
use emrest_core::{Core, CoreConfig, Owner};
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod schedule_args;

#[derive(Parser)]
#[command(
    name = "emrest",
    version,
    about = "A Veeam Backup Enterprise Manager REST API server that restores for real"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct DataArg {
    /// The data folder: catalog, repository, VM inventory, TLS key pair.
    #[arg(long, default_value = "./emrest-data", env = "EMREST_DATA")]
    data: PathBuf,
    /// The backup repository, when not in the data folder: a folder, or an S3-compatible
    /// bucket, s3://BUCKET[/PREFIX]?endpoint=http://HOST:PORT&region=REGION (key pair from
    /// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).
    #[arg(long, value_name = "URL", env = "EMREST_REPOSITORY")]
    repository: Option<String>,
    /// The VM inventory's datastores, when not in the data folder.
    #[arg(long, value_name = "DIR", env = "EMREST_INVENTORY")]
    inventory: Option<PathBuf>,
}

/// Repositories this process opened, to report their requests when it ends.
static OPENED_REPOSITORIES: std::sync::Mutex<Vec<Arc<emrest_core::Repository>>> =
    std::sync::Mutex::new(Vec::new());

/// One line per repository paid by the request (S3) that this process sent requests to.
fn report_requests() {
    let opened = OPENED_REPOSITORIES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for repo in opened.iter() {
        if let Some(counts) = repo.requests().filter(|c| c.total() > 0) {
            eprintln!("emrest: repository {}: {counts}", repo.describe());
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Serve the REST API (HTTPS on 0.0.0.0:9398, HTTP on 127.0.0.1:9399).
    Serve(ServeArgs),
    /// Create the demo world (idempotent): hierarchy roots, VMs, two backups of each; or the
    /// world a scenario file describes (docs/scenarios.md).
    Demo {
        #[command(flatten)]
        data: DataArg,
        /// Size of each demo disk, e.g. 64M, 1G (a scenario's disks without a size of their own).
        #[arg(long, default_value = "64M", value_parser = parse_disk_size)]
        disk_size: u64,
        /// A scenario file (TOML) describing the world instead of the built-in demo.
        #[arg(long, value_name = "FILE")]
        scenario: Option<PathBuf>,
    },
    /// VMs of the inventory.
    Vm {
        #[command(subcommand)]
        verb: ListVerb,
    },
    /// VM restore points.
    Point {
        #[command(subcommand)]
        verb: ListVerb,
    },
    /// Accounts.
    User {
        #[command(subcommand)]
        verb: UserVerb,
    },
    /// Read the audit log: logons, logoffs, failed logons, restores, account changes.
    Audit {
        #[command(flatten)]
        data: DataArg,
        /// Print the JSON lines as stored.
        #[arg(long)]
        json: bool,
    },
    /// Copy the repository to another place (an S3-compatible bucket, another folder), then
    /// verify every restore point there. The server must be stopped; afterwards run every
    /// verb and the server with --repository naming the copy. An interrupted copy resumes.
    Move {
        #[command(flatten)]
        data: DataArg,
        /// Where the repository goes: s3://BUCKET[/PREFIX]?endpoint=http://HOST:PORT&region=R
        /// (key pair from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) or a folder.
        #[arg(long, value_name = "URL")]
        repository_to: String,
    },
    /// Re-read every chunk every restore point references and check its digest.
    Verify {
        #[command(flatten)]
        data: DataArg,
        /// Record the damaged restore points so the server refuses to restore from them (in the
        /// running server when there is one).
        #[arg(long)]
        mark: bool,
    },
    /// Backup jobs. Verbs that change the data folder (create, start, stop) run in the server
    /// when one holds the folder, through its admin channel; in this process otherwise.
    Job {
        #[command(subcommand)]
        verb: JobVerb,
    },
    /// Remove indexes no restore point names and chunks no index references (in the running
    /// server when there is one; it also does this on its own schedule).
    Gc {
        #[command(flatten)]
        data: DataArg,
        /// Keep unreferenced chunks younger than this many minutes.
        #[arg(long, default_value_t = 60)]
        grace_minutes: u64,
        /// Print what was removed as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Fault rules of the running server (started with --allow-faults): make the next restore
    /// of a VM fail at 50%, a task hang, every third poll answer 503 (docs/faults.md).
    Fault {
        #[command(subcommand)]
        verb: FaultVerb,
    },
}

#[derive(Subcommand)]
enum FaultVerb {
    /// Add a rule.
    #[command(after_help = FAULT_EXAMPLES)]
    Add {
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        rule: Box<admin::FaultArgs>,
        /// Print the rule as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the rules in force, with how often each matched and fired.
    List {
        #[command(flatten)]
        data: DataArg,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Remove one rule, or every rule.
    Clear {
        #[command(flatten)]
        data: DataArg,
        /// The rule's ID (from `emrest fault list`); every rule without it.
        id: Option<uuid::Uuid>,
    },
}

const FAULT_EXAMPLES: &str = "Examples:
  emrest fault add --on restore --vm web-01 --first 1 --effect fail --percent 50 --message 'Datastore unreachable'
  emrest fault add --on 'GET /tasks/{ID}' --every 3 --effect status --status 503
  emrest fault add --on restore --mode quick-rollback --effect hang
  emrest fault add --on logon --account alice --effect delay --delay-ms 5000
  emrest fault add --on '/vmRestorePoints' --first 1 --effect expire-session";

#[derive(Subcommand)]
enum JobVerb {
    /// List jobs with their last run.
    List {
        #[command(flatten)]
        data: DataArg,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Create a backup job over VMs named by name or HierarchyObjRef (one platform).
    Create {
        #[command(flatten)]
        data: DataArg,
        #[arg(long)]
        name: String,
        /// A VM name or HierarchyObjRef (urn:VMware:Vm:<root>.<ref>); repeat for more VMs.
        #[arg(long = "vm", required = true)]
        vms: Vec<String>,
        /// Restore points to keep; older ones are removed after a successful run.
        #[arg(long, default_value_t = emrest_core::jobs::DEFAULT_RETENTION)]
        retention: u32,
        #[arg(long, default_value = "Created by emrest job create")]
        description: String,
    },
    /// Run a job until it ends, in the running server or else in this process (Ctrl-C stops it
    /// cleanly, recording nothing).
    Start {
        #[command(flatten)]
        data: DataArg,
        name: String,
        /// Show a progress bar (bytes and VMs) while the job runs.
        #[arg(long)]
        wait: bool,
        /// Print the finished session and its task sessions as JSON.
        #[arg(long)]
        json: bool,
        /// The account the run is made as: its task is that account's (seen through the API
        /// by it and by administrators). It must be allowed to start jobs.
        #[arg(long = "as", value_name = "USER", default_value = emrest_core::ADMIN_ACCOUNT)]
        as_user: String,
    },
    /// Stop a job running in the server. One run by `emrest job start` with no server stops
    /// with Ctrl-C there.
    Stop {
        #[command(flatten)]
        data: DataArg,
        name: String,
        /// The account the stop is made as (see `job start --as`).
        #[arg(long = "as", value_name = "USER", default_value = emrest_core::ADMIN_ACCOUNT)]
        as_user: String,
    },
    /// Set, change, switch off or remove a job's schedule (the server's scheduler runs it).
    #[command(after_help = schedule_args::EXAMPLES)]
    Schedule {
        #[command(flatten)]
        data: DataArg,
        /// The job's name.
        name: String,
        #[command(flatten)]
        schedule: Box<schedule_args::ScheduleArgs>,
        /// The account the change is made as (see `job start --as`).
        #[arg(long = "as", value_name = "USER", default_value = emrest_core::ADMIN_ACCOUNT)]
        as_user: String,
    },
}

#[derive(Subcommand)]
enum ListVerb {
    /// List them, with the SHA-256 of every disk.
    List {
        #[command(flatten)]
        data: DataArg,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum UserVerb {
    /// Add an account (password from EMREST_PASSWORD, --password-stdin, a prompt on a terminal,
    /// or --password).
    Add {
        #[command(flatten)]
        data: DataArg,
        name: String,
        #[command(flatten)]
        password: PasswordArg,
        /// A role: PortalAdministrator, PortalUser, VmRestoreOperator (or RestoreOperator),
        /// FileRestoreOperator, ExchangeRestoreOperator, OracleRestoreOperator,
        /// SqlRestoreOperator. Repeat for several. Required: no account gets a role it was not
        /// given (an account with a --scope was once made an administrator by default).
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// Restore scope: a HierarchyObjRef (VM, hierarchy root or datastore). Repeat for
        /// several; without any, the account may restore every VM.
        #[arg(long = "scope")]
        scopes: Vec<String>,
    },
    /// List the accounts with their roles and restore scopes.
    List {
        #[command(flatten)]
        data: DataArg,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Change an account's password (also how an account created through the API gets one).
    Passwd {
        #[command(flatten)]
        data: DataArg,
        name: String,
        #[command(flatten)]
        password: PasswordArg,
    },
    /// Give an account a role or take one away.
    Role {
        #[command(flatten)]
        data: DataArg,
        name: String,
        #[arg(value_enum)]
        action: AddRemove,
        role: String,
    },
    /// Show or change an account's restore scope.
    Scope {
        #[command(flatten)]
        data: DataArg,
        name: String,
        #[command(subcommand)]
        verb: ScopeVerb,
    },
}

/// Where a password comes from: `--password-stdin`, else `--password` or EMREST_PASSWORD, else a
/// prompt when standard input is a terminal.
#[derive(Args)]
struct PasswordArg {
    /// The password. Other local users can read a command line: prefer EMREST_PASSWORD,
    /// --password-stdin or the prompt.
    #[arg(long, env = "EMREST_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    password_stdin: bool,
}

impl PasswordArg {
    fn read(self, account: &str) -> Result<String> {
        if self.password_stdin {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("cannot read the password from standard input")?;
            return Ok(strip_newline(line));
        }
        if let Some(p) = self.password {
            return Ok(p);
        }
        if !std::io::stdin().is_terminal() {
            bail!("no password given: set EMREST_PASSWORD, use --password-stdin, or run on a terminal to be asked");
        }
        let first = read_hidden(&format!("Password for '{account}': "))?;
        let again = read_hidden("The same password again: ")?;
        if first != again {
            bail!("the two passwords differ: nothing was changed");
        }
        Ok(first)
    }
}

fn strip_newline(mut line: String) -> String {
    while line.ends_with(['\n', '\r']) {
        line.pop();
    }
    line
}

/// Ask on the terminal with echo off.
fn read_hidden(prompt: &str) -> Result<String> {
    use std::io::Write;
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    // SAFETY: termios is plain data; tcgetattr fills it and tcsetattr only reads it.
    let mut term: libc::termios = unsafe { std::mem::zeroed() };
    let saved = (unsafe { libc::tcgetattr(0, &mut term) } == 0).then_some(term);
    if let Some(mut quiet) = saved {
        quiet.c_lflag &= !libc::ECHO;
        quiet.c_lflag |= libc::ECHONL;
        // SAFETY: as above.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &quiet) };
    }
    let mut line = String::new();
    let read = std::io::stdin().read_line(&mut line);
    if let Some(term) = saved {
        // SAFETY: as above.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &term) };
    }
    read.context("cannot read the password from the terminal")?;
    Ok(strip_newline(line))
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum AddRemove {
    Add,
    Remove,
}

#[derive(Subcommand)]
enum ScopeVerb {
    /// List the scope objects.
    List,
    /// Add a scope object (and restrict the account to its scope).
    Add {
        /// HierarchyObjRef of a VM, a hierarchy root or a datastore.
        obj_ref: String,
        /// Display name (default: the object ref).
        #[arg(long)]
        name: Option<String>,
    },
    /// Remove a scope object by its ID (see `list`).
    Remove { id: uuid::Uuid },
    /// Let the account restore every VM (`all`) or only its scope (`scoped`).
    Mode {
        #[arg(value_enum)]
        mode: ScopeMode,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ScopeMode {
    All,
    Scoped,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    data: DataArg,
    /// Create the demo world first if the data folder has none.
    #[arg(long)]
    demo: bool,
    /// Demo disk size when --demo creates the world.
    #[arg(long, default_value = "64M", value_parser = parse_disk_size)]
    disk_size: u64,
    /// With --demo: the world a scenario file describes instead of the built-in demo.
    #[arg(long, value_name = "FILE", requires = "demo")]
    scenario: Option<PathBuf>,
    /// HTTP listen address; "off" disables it.
    #[arg(long, default_value = "127.0.0.1:9399")]
    http: String,
    /// HTTPS listen address; "off" disables it.
    #[arg(long, default_value = "0.0.0.0:9398")]
    https: String,
    /// PEM certificate for HTTPS (default: self-signed, made on first start).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Accept XML request elements in any order (Enterprise Manager silently misreads them).
    #[arg(long)]
    lenient_xml_order: bool,
    /// Default a restore request's PowerOnAfterRestore, QuickRollback and HierarchyRootUid when
    /// left out, as Enterprise Manager does, instead of a 400 naming the member.
    #[arg(long)]
    lenient_restore_spec: bool,
    /// Restores that run at once; more wait in state Starting.
    #[arg(long, default_value_t = 2)]
    restore_workers: usize,
    /// Restores that may wait for a worker; past them a restore is refused with 503 and
    /// Retry-After, recording nothing.
    #[arg(long, default_value_t = 64)]
    restore_queue: usize,
    /// Idle minutes after which a logon session expires.
    #[arg(long, default_value_t = 15)]
    session_idle_minutes: u64,
    /// Failed logons (for one account name, or from one address) that lock further attempts
    /// out; 0 turns the lockout off.
    #[arg(long, default_value_t = 5)]
    logon_max_failures: u32,
    /// Minutes over which failed logons are counted.
    #[arg(long, default_value_t = 15)]
    logon_failure_window_minutes: u64,
    /// Minutes a lockout lasts.
    #[arg(long, default_value_t = 15)]
    logon_lockout_minutes: u64,
    /// Where GET /metrics (Prometheus text format) is served: `http` (the plain HTTP listener),
    /// an address for a listener of its own, or `off`.
    #[arg(long, default_value = "http")]
    metrics: String,
    /// A bearer token a scrape must send (Authorization: Bearer TOKEN); none by default.
    #[arg(long, env = "EMREST_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
    /// The most work one /query or /lookup may do, in thousands of SQLite steps (100000 is about
    /// a second of one core); a heavier query is stopped with a 400 naming the filter. Queries
    /// run on read-only connections, so even the heaviest never delays writes or logons.
    #[arg(long, default_value_t = emrest_core::catalog::DEFAULT_QUERY_BUDGET)]
    query_cost_limit: u64,
    /// Minutes between garbage collections of the repository; 0 turns them off.
    #[arg(long, default_value_t = 60)]
    gc_interval_minutes: u64,
    /// Unreferenced chunks younger than this many minutes survive a collection.
    #[arg(long, default_value_t = 60)]
    gc_grace_minutes: u64,
    /// Seconds a client has to send a request's headers, counted from the connection's start
    /// or the end of its last answer (so idle kept-alive connections close after it too).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    header_timeout_secs: u64,
    /// Seconds a client has to finish the TLS handshake.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    tls_handshake_timeout_secs: u64,
    /// Connections served at once; more are closed at once. Kept below the process's file
    /// descriptor limit (raised to its maximum at start) less a reserve for the data folder.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    max_connections: u64,
    /// Take fault rules (`emrest fault`, /api/emrest/faults) that make restores fail, tasks
    /// hang and requests answer errors, for testing clients (docs/faults.md). Never on by
    /// default; refused with a listener off loopback unless --allow-faults-remote.
    #[arg(long)]
    allow_faults: bool,
    /// With --allow-faults: also when a listener is reachable from other machines.
    #[arg(long, requires = "allow_faults")]
    allow_faults_remote: bool,
    /// Directory (LDAP) logon (boxed: the flags would make every command's value larger).
    #[command(flatten)]
    ldap: Box<LdapArgs>,
}

/// `serve`'s directory logon flags.
#[derive(Args)]
struct LdapArgs {
    /// Directory (LDAP) logon for DOMAIN\name and name@domain accounts: ldaps://host:636, or
    /// ldap://host:389 with --ldap-starttls (or --ldap-insecure).
    #[arg(long, value_name = "URL")]
    ldap_url: Option<String>,
    /// Upgrade the ldap:// connection with StartTLS.
    #[arg(long, requires = "ldap_url")]
    ldap_starttls: bool,
    /// Allow ldap:// without StartTLS: passwords cross the network in clear.
    #[arg(long, requires = "ldap_url")]
    ldap_insecure: bool,
    /// PEM file of the CA certificates the directory's certificate must chain to (default: the
    /// system's).
    #[arg(long, value_name = "PEM", requires = "ldap_url")]
    ldap_ca_file: Option<PathBuf>,
    /// The DN to bind as, with {user} for the name: 'uid={user},ou=people,dc=example,dc=org'.
    #[arg(
        long,
        value_name = "DN",
        requires = "ldap_url",
        conflicts_with = "ldap_search_base"
    )]
    ldap_bind_template: Option<String>,
    /// Find the user's DN by a subtree search under this base (with --ldap-user-filter).
    #[arg(long, value_name = "DN", requires = "ldap_url")]
    ldap_search_base: Option<String>,
    /// The search filter, with {user} for the name.
    #[arg(
        long,
        value_name = "FILTER",
        default_value = "(uid={user})",
        requires = "ldap_search_base"
    )]
    ldap_user_filter: String,
    /// Search as this service account (its password in EMREST_LDAP_BIND_PASSWORD); anonymous
    /// without it.
    #[arg(long, value_name = "DN", requires = "ldap_search_base")]
    ldap_bind_dn: Option<String>,
    /// A domain the directory answers for, as in DOMAIN\name or name@domain (repeatable; the
    /// first names accounts recorded at a group member's first logon).
    #[arg(long, value_name = "DOMAIN", requires = "ldap_url")]
    ldap_domain: Vec<String>,
    /// Members of a group get a role: 'cn=restorers,ou=groups,dc=example,dc=org=VmRestoreOperator'
    /// (repeatable); a member without an account may log on.
    #[arg(long, value_name = "GROUP_DN=ROLE", requires = "ldap_url", value_parser = emrest_core::directory::GroupRole::parse)]
    ldap_group_role: Vec<emrest_core::directory::GroupRole>,
    /// Seconds allowed for connecting to the directory and for each of its answers.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    ldap_timeout_secs: u64,
}

impl LdapArgs {
    /// The directory logon settings, checked; none without --ldap-url.
    fn directory(&self) -> Result<Option<emrest_core::directory::DirectoryConfig>> {
        use emrest_core::directory::{Directory, DirectoryConfig, UserLocator};
        let Some(url) = &self.ldap_url else {
            return Ok(None);
        };
        let locate = match (&self.ldap_bind_template, &self.ldap_search_base) {
            (Some(t), None) => UserLocator::Template(t.clone()),
            (None, Some(base)) => UserLocator::Search {
                base: base.clone(),
                filter: self.ldap_user_filter.clone(),
                bind_dn: self.ldap_bind_dn.clone(),
                bind_password: match &self.ldap_bind_dn {
                    Some(dn) => Some(std::env::var("EMREST_LDAP_BIND_PASSWORD").map_err(|_| {
                        anyhow::anyhow!(
                            "--ldap-bind-dn {dn}: set its password in EMREST_LDAP_BIND_PASSWORD"
                        )
                    })?),
                    None => None,
                },
            },
            _ => bail!("--ldap-url needs --ldap-bind-template or --ldap-search-base"),
        };
        let config = DirectoryConfig {
            url: url.clone(),
            starttls: self.ldap_starttls,
            insecure: self.ldap_insecure,
            ca_file: self.ldap_ca_file.clone(),
            locate,
            domains: self.ldap_domain.clone(),
            group_roles: self.ldap_group_role.clone(),
            timeout: std::time::Duration::from_secs(self.ldap_timeout_secs),
        };
        // Checked before the data folder is opened: a bad flag creates nothing.
        Directory::new(config.clone())?;
        Ok(Some(config))
    }
}

/// Descriptors kept for the catalog, the repository, disks and logs beside the connections.
const FD_RESERVE: u64 = 128;

/// Threads of the blocking pool per core (see `serve`).
const BLOCKING_THREADS_PER_CORE: usize = 8;

/// Raises the soft limit on open files to the hard one (where allowed) and returns the soft
/// limit in force.
fn raise_fd_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
    }
    Some(lim.rlim_cur)
}

fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => {
            let unit = s[i..].to_ascii_uppercase();
            let m: u64 = match unit.trim_end_matches("IB").trim_end_matches('B') {
                "" => 1,
                "K" => 1 << 10,
                "M" => 1 << 20,
                "G" => 1 << 30,
                _ => return Err(format!("unknown size unit in '{s}' (use K, M or G)")),
            };
            (&s[..i], m)
        }
        None => (s, 1),
    };
    num.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("'{s}' is not a size"))
}

/// A demo disk size, refused at parse time so a bad one creates nothing.
fn parse_disk_size(s: &str) -> Result<u64, String> {
    let disk_size = parse_size(s)?;
    emrest_core::demo::DemoOptions { disk_size }
        .validate()
        .map_err(|e| e.to_string())?;
    Ok(disk_size)
}

fn parse_addr(s: &str, flag: &str) -> Result<Option<SocketAddr>> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .with_context(|| format!("--{flag}: '{s}' is not an address like 127.0.0.1:9399"))
}

/// Open the data folder to change it: locks it, so this fails while a server runs in it.
fn open(data: &DataArg) -> Result<Arc<Owner>> {
    open_with(data, |_| {})
}

/// Open an existing data folder to look only: works beside a running server.
fn open_read_only(data: &DataArg) -> Result<Arc<Owner>> {
    require_data_folder(data)?;
    open_with(data, |c| c.read_only = true)
}

/// Open an existing data folder to change it.
fn open_existing(data: &DataArg) -> Result<Arc<Owner>> {
    require_data_folder(data)?;
    open(data)
}

/// A listing, check or password change never creates a data folder (a mistyped --data would
/// otherwise get a fresh, empty world and a new admin password).
fn require_data_folder(data: &DataArg) -> Result<()> {
    if !emrest_core::is_data_folder(&data.data) {
        bail!(
            "{} is not an emrest data folder (create one with `emrest demo` or `emrest serve`)",
            data.data.display()
        );
    }
    Ok(())
}

fn open_with(data: &DataArg, config: impl FnOnce(&mut CoreConfig)) -> Result<Arc<Owner>> {
    let mut cfg = CoreConfig::new(&data.data);
    cfg.repository = data.repository.clone();
    cfg.inventory = data.inventory.clone();
    config(&mut cfg);
    let (core, report) = Core::open(cfg)
        .with_context(|| format!("cannot open data folder {}", data.data.display()))?;
    if let Some(mode) = emrest_core::open_to_others(&data.data) {
        eprintln!(
            "Warning: the data folder {0} is readable by other users (mode {mode:o}); it holds \
             password hashes, the audit log and VM disks: chmod 700 {0}",
            data.data.display()
        );
    }
    if let Some(pw) = &report.generated_admin_password {
        eprintln!("Created the account 'admin' with the generated password: {pw}");
        eprintln!("(shown once; set EMREST_ADMIN_PASSWORD before the first start to choose it)");
    }
    for line in recovery_lines(&report, &data.data) {
        eprintln!("{line}");
    }
    OPENED_REPOSITORIES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(core.shared_repository());
    Ok(Arc::new(core))
}

/// What crash recovery did when the data folder was opened to write: one line per non-zero
/// count of the report, nothing when the last stop was clean.
fn recovery_lines(report: &emrest_core::OpenReport, data: &Path) -> Vec<String> {
    let emrest_core::OpenReport {
        generated_admin_password: _,
        interrupted_tasks,
        staging_removed,
        orphan_indexes_removed,
        rollbacks_rolled_forward,
        rollbacks_kept,
    } = report;
    let journals = emrest_core::rollback_journal::journal_dir(data);
    [
        (*interrupted_tasks, "task(s) were interrupted by the last stop and are marked failed".to_string()),
        (*staging_removed, "leftover(s) of an interrupted restore or inventory change were removed from the VM folders".to_string()),
        (*orphan_indexes_removed, "index(es) of an interrupted backup were removed (no restore point names them)".to_string()),
        (*rollbacks_rolled_forward, "restore(s) interrupted after changing their VM's disks, or before flushing them, were rolled forward: their VMs now hold the restore point".to_string()),
        (*rollbacks_kept, format!("rollback journal(s) could not be rolled forward and are kept in {} (the log names each and why): restores over their VMs are refused until the repository is repaired and the data folder opened again", journals.display())),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("Recovery: {n} {what}"))
    .collect()
}

/// Read and check a scenario file where the CLI runs: its text, and the values of the
/// environment variables it names (`password_env`), for whichever process builds the world.
fn read_scenario(
    path: &Path,
    disk_size: u64,
) -> Result<(String, std::collections::HashMap<String, String>)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the scenario {}", path.display()))?;
    let used = std::cell::RefCell::new(std::collections::HashMap::new());
    emrest_core::scenario::Scenario::parse(&text, disk_size, &|var| {
        let value = std::env::var(var).ok();
        if let Some(v) = &value {
            used.borrow_mut().insert(var.to_string(), v.clone());
        }
        value
    })
    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok((text, used.into_inner()))
}

/// Run `work` under a spinner that says what it does.
fn with_spinner<T>(message: &'static str, work: impl FnOnce() -> T) -> T {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_message(message);
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    let r = work();
    bar.finish_and_clear();
    r
}

/// Run a verb that changes an existing data folder: in the server holding it when one runs,
/// here otherwise.
/// `emrest fault`: only ever in the running server, where the rules live.
fn fault_command(verb: FaultVerb) -> Result<()> {
    let (data, request) = match verb {
        FaultVerb::Add { data, rule, json } => {
            let spec = rule.spec()?;
            (
                data,
                Request::FaultAdd {
                    spec,
                    json,
                    by: String::new(),
                },
            )
        }
        FaultVerb::List { data, json } => (
            data,
            Request::FaultList {
                json,
                by: String::new(),
            },
        ),
        FaultVerb::Clear { data, id } => (
            data,
            Request::FaultClear {
                id,
                by: String::new(),
            },
        ),
    };
    require_data_folder(&data)?;
    let folder = data.data.display().to_string();
    Driver::connect(&data.data, || {
        bail!("no emrest server is running in {folder}: fault rules live in a server started with --allow-faults")
    })?
    .call(&request)?
    .done()?
    .print()
}

fn change(data: &DataArg, request: &Request) -> Result<()> {
    require_data_folder(data)?;
    Driver::connect(&data.data, || open_existing(data))?
        .call(request)?
        .done()?
        .print()
}

fn main() {
    // The data folder holds password hashes, the audit log and VM disks: whatever this process
    // creates is its owner's alone (0700 folders, 0600 files).
    // SAFETY: umask only sets the process's file mode mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
    let result = run();
    report_requests();
    if let Err(e) = result {
        eprintln!("emrest: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve(_)) {
        // `emrest point list | head` ends quietly when head stops reading, as other tools do
        // (the server keeps SIGPIPE ignored: a client that goes away must not stop it).
        // SAFETY: restoring a signal's default disposition has no other effect.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Demo {
            data,
            disk_size,
            scenario,
        } => {
            // A bad file is refused before the data folder is opened or made.
            let scenario = scenario
                .map(|path| read_scenario(&path, disk_size))
                .transpose()?;
            let driver = Driver::connect(&data.data, || open(&data))?;
            with_spinner(
                "creating the world: VMs, full backups, changes, incremental backups",
                || {
                    driver.call(&Request::Demo {
                        disk_size,
                        scenario,
                    })
                },
            )?
            .done()?
            .print()
        }
        Command::Vm {
            verb: ListVerb::List { data, json },
        } => {
            let core = open_read_only(&data)?;
            let vms = core.vm_report()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&vms)?);
            } else {
                let rows = vms
                    .into_iter()
                    .map(|vm| {
                        let cells = vec![
                            vm.name,
                            format!("{:?}", vm.platform),
                            vm.hierarchy_root,
                            vm.datastore,
                            format!("{:?}", vm.power_state),
                        ];
                        (cells, vm.disks)
                    })
                    .collect();
                print_table(
                    &["NAME", "PLATFORM", "HIERARCHY ROOT", "DATASTORE", "POWER"],
                    rows,
                );
            }
            Ok(())
        }
        Command::Point {
            verb: ListVerb::List { data, json },
        } => {
            let core = open_read_only(&data)?;
            let points = core.point_report()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&points)?);
            } else {
                let rows = points
                    .into_iter()
                    .map(|p| {
                        let cells = vec![
                            p.id,
                            p.vm_name,
                            p.creation_time,
                            format!("{:?}", p.point_type),
                        ];
                        (cells, p.disks)
                    })
                    .collect();
                print_table(&["ID", "VM", "CREATED", "TYPE"], rows);
            }
            Ok(())
        }
        Command::User { verb } => user(verb),
        Command::Audit { data, json } => {
            require_data_folder(&data)?;
            let events = emrest_core::audit::read_events(&data.data)?;
            if json {
                for e in &events {
                    println!("{}", serde_json::to_string(e)?);
                }
            } else {
                let rows = events
                    .iter()
                    .map(|e| {
                        let cells = vec![
                            e.time.clone(),
                            e.user.clone(),
                            e.address.clone().unwrap_or_else(|| "-".into()),
                            e.action.clone(),
                            e.object.clone().unwrap_or_else(|| "-".into()),
                            e.outcome.clone(),
                        ];
                        (cells, Vec::new())
                    })
                    .collect();
                print_table(
                    &["TIME", "USER", "ADDRESS", "ACTION", "OBJECT", "OUTCOME"],
                    rows,
                );
            }
            Ok(())
        }
        Command::Job { verb } => job_command(verb),
        Command::Fault { verb } => fault_command(verb),
        Command::Gc {
            data,
            grace_minutes,
            json,
        } => change(
            &data,
            &Request::Gc {
                grace_minutes,
                json,
            },
        ),
        // Verify only looks, beside a running server too; with --mark it records the damaged
        // points (in the server when one runs), so restores from them are refused.
        Command::Move {
            data,
            repository_to,
        } => move_repository(&data, &repository_to),
        Command::Verify { data, mark: true } => change(&data, &Request::VerifyMark),
        Command::Verify { data, mark: false } => admin::verify(&*open_read_only(&data)?)?.print(),
    }
}

/// `emrest move`: copies the repository, then verifies every restore point in the copy as
/// `emrest verify --repository TO` would.
fn move_repository(data: &DataArg, to: &str) -> Result<()> {
    // Refused before anything is opened or copied.
    let location = emrest_core::repository_location(to)
        .map_err(|e| anyhow::anyhow!("--repository-to: {e}"))?;
    let core = open_existing(data)?;
    let from = core.repository().describe();
    let started = std::time::Instant::now();
    let (stats, requests) = with_spinner("copying the repository", || {
        core.copy_repository(location, &emrest_core::NoControl)
    })
    .with_context(|| format!("cannot copy the repository to {to}"))?;
    eprintln!(
        "copied {} object(s) ({:.1} MiB) from {from} in {:.1} s; {} were there already",
        stats.copied,
        stats.bytes as f64 / f64::from(1u32 << 20),
        started.elapsed().as_secs_f64(),
        stats.skipped
    );
    if let Some(counts) = requests {
        eprintln!("emrest: repository {to}: {counts}");
    }
    drop(core);
    let copy = DataArg {
        repository: Some(to.to_string()),
        ..data.clone()
    };
    let verified = with_spinner("verifying every restore point in the copy", || {
        admin::verify(&*open_read_only(&copy)?)
    })?;
    verified.print().context("the copy does not verify")?;
    eprintln!(
        "Every restore point verified in the copy. From now on run emrest with --repository '{to}' \
         (or EMREST_REPOSITORY); {from} is left as it was."
    );
    Ok(())
}

fn user(verb: UserVerb) -> Result<()> {
    match verb {
        UserVerb::Add {
            data,
            name,
            password,
            roles,
            scopes,
        } => {
            // Checked before asking for a password.
            for r in &roles {
                admin::parse_role(r)?;
            }
            let password = password.read(&name)?;
            let driver = Driver::connect(&data.data, || open(&data))?;
            let request = Request::UserAdd {
                name,
                password,
                roles,
                scopes,
            };
            driver.call(&request)?.done()?.print()?;
        }
        UserVerb::List { data, json } => {
            let core = open_read_only(&data)?;
            let mut out = Vec::new();
            for a in core.accounts_local()? {
                let scopes = core.account_scopes_local(&a.name)?;
                out.push((a, scopes));
            }
            if json {
                let v: Vec<serde_json::Value> = out
                    .iter()
                    .map(|(a, scopes)| {
                        serde_json::json!({
                            "id": a.id,
                            "name": a.name,
                            "type": a.account_type.as_str(),
                            "roles": a.roles.iter().map(|r| r.key()).collect::<Vec<_>>(),
                            "allowRestoreAllVms": a.allow_restore_all_vms,
                            "hasPassword": a.has_password,
                            "scopes": scopes.iter().map(|s| serde_json::json!({
                                "id": s.id, "objRef": s.obj_ref.to_string(), "name": s.name,
                            })).collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                let rows = out
                    .iter()
                    .map(|(a, scopes)| {
                        let scope = if a.allow_restore_all_vms {
                            "all VMs".to_string()
                        } else {
                            scopes
                                .iter()
                                .map(|s| s.name.clone())
                                .collect::<Vec<_>>()
                                .join(", ")
                        };
                        let cells = vec![
                            a.name.clone(),
                            a.roles
                                .iter()
                                .map(|r| r.key())
                                .collect::<Vec<_>>()
                                .join(","),
                            scope,
                            if a.has_password { "set" } else { "none" }.to_string(),
                        ];
                        (cells, Vec::new())
                    })
                    .collect();
                print_table(&["NAME", "ROLES", "RESTORE SCOPE", "PASSWORD"], rows);
            }
        }
        UserVerb::Passwd {
            data,
            name,
            password,
        } => {
            require_data_folder(&data)?;
            let password = password.read(&name)?;
            change(&data, &Request::UserPasswd { name, password })?;
        }
        UserVerb::Role {
            data,
            name,
            action,
            role,
        } => {
            let add = matches!(action, AddRemove::Add);
            change(&data, &Request::UserRole { name, role, add })?;
        }
        UserVerb::Scope { data, name, verb } => match verb {
            ScopeVerb::List => {
                let core = open_read_only(&data)?;
                let a = core.account_named(&name)?;
                if a.allow_restore_all_vms {
                    eprintln!("'{name}' may restore every VM (the scope below is not enforced)");
                }
                let rows = core
                    .account_scopes_local(&name)?
                    .into_iter()
                    .map(|s| {
                        let cells = vec![s.id.to_string(), s.name, s.obj_ref.to_string()];
                        (cells, Vec::new())
                    })
                    .collect();
                print_table(&["ID", "NAME", "HIERARCHY OBJECT"], rows);
            }
            ScopeVerb::Add { obj_ref, name: n } => change(
                &data,
                &Request::ScopeAdd {
                    name,
                    obj_ref,
                    display: n,
                },
            )?,
            ScopeVerb::Remove { id } => change(&data, &Request::ScopeRemove { name, id })?,
            ScopeVerb::Mode { mode } => {
                let all = matches!(mode, ScopeMode::All);
                change(&data, &Request::ScopeMode { name, all })?;
            }
        },
    }
    Ok(())
}

fn job_command(verb: JobVerb) -> Result<()> {
    match verb {
        JobVerb::List { data, json } => {
            let core = open_read_only(&data)?;
            let jobs = core.view().jobs()?;
            let mut rows = Vec::new();
            for j in jobs {
                let last = core.view().backup_sessions(Some(j.id))?.pop();
                rows.push((j, last));
            }
            let now = emrest_core::now_millis();
            let names: std::collections::HashMap<uuid::Uuid, String> =
                rows.iter().map(|(j, _)| (j.id, j.name.clone())).collect();
            let name_of = |id: uuid::Uuid| names.get(&id).cloned().unwrap_or(id.to_string());
            if json {
                let v: Vec<_> = rows
                    .iter()
                    .map(|(j, last)| {
                        serde_json::json!({
                            "job": j,
                            "last_session": last,
                            "next_run": j.upcoming_run(now).map(emrest_core::time::iso),
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            let table: Vec<(Vec<String>, Vec<DiskReport>)> = rows
                .into_iter()
                .map(|(j, last)| {
                    let (result, when) = match last {
                        Some(s) => (format!("{:?}", s.result), emrest_core::time::iso(s.created)),
                        None => ("-".into(), "never".into()),
                    };
                    let vms: Vec<&str> = j.objects.iter().map(|o| o.name.as_str()).collect();
                    let next = match (&j.schedule, j.upcoming_run(now)) {
                        (None, _) => "-".to_string(),
                        (Some(_), _) if !j.schedule_enabled => "off".to_string(),
                        (Some(_), Some(t)) => emrest_core::time::iso(t),
                        (Some(s), None) => schedule_args::describe(s, name_of),
                    };
                    (
                        vec![
                            j.name.clone(),
                            j.platform.wire_platform().to_string(),
                            j.retention.to_string(),
                            vms.join(","),
                            result,
                            when,
                            next,
                        ],
                        Vec::new(),
                    )
                })
                .collect();
            print_table(
                &[
                    "NAME",
                    "PLATFORM",
                    "KEEP",
                    "VMS",
                    "LAST RESULT",
                    "LAST RUN",
                    "NEXT RUN",
                ],
                table,
            );
            Ok(())
        }
        JobVerb::Create {
            data,
            name,
            vms,
            retention,
            description,
        } => change(
            &data,
            &Request::JobCreate {
                name,
                vms,
                retention,
                description,
            },
        ),
        JobVerb::Start {
            data,
            name,
            wait,
            json,
            as_user,
        } => {
            require_data_folder(&data)?;
            let driver = Driver::connect(&data.data, || open_existing(&data))?;
            admin::start_and_follow(Arc::new(driver), &name, &as_user, wait, json)
        }
        JobVerb::Stop {
            data,
            name,
            as_user,
        } => {
            require_data_folder(&data)?;
            // With no server, opening to write fails while another process (an `emrest job
            // start`) holds the folder; when it succeeds, no job can be running anywhere.
            let driver = Driver::connect(&data.data, || {
                open_existing(&data).context(
                    "the job runs in the process holding the data folder: stop it there \
                     (Ctrl-C in `emrest job start`)",
                )
            })?;
            driver
                .call(&Request::JobStop { name, as_user })?
                .done()?
                .print()
        }
        JobVerb::Schedule {
            data,
            name,
            schedule,
            as_user,
        } => change(
            &data,
            &Request::JobSchedule {
                name,
                as_user,
                schedule,
            },
        ),
    }
}

/// Print rows under a header, columns as wide as their widest cell, each row followed by its
/// disks (name, size in bytes, SHA-256 of the bytes).
/// The longest cell a table shows, in characters; longer values end in `…` (`--json` has them
/// whole).
const CELL_MAX: usize = 100;

/// A stored value as a table shows it: control characters (a newline, a terminal escape) and
/// the Unicode controls that reorder text shown as escapes, so no value can draw a row of its
/// own or hide another; cut to [`CELL_MAX`] characters.
fn display_cell(value: &str) -> String {
    let mut out = String::new();
    for (n, c) in value.chars().enumerate() {
        if n == CELL_MAX {
            out.push('…');
            break;
        }
        let bidi = matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
        if c.is_control() || bidi {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn print_table(header: &[&str], rows: Vec<(Vec<String>, Vec<DiskReport>)>) {
    let rows: Vec<(Vec<String>, Vec<DiskReport>)> = rows
        .into_iter()
        .map(|(cells, disks)| (cells.iter().map(|c| display_cell(c)).collect(), disks))
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for (cells, _) in &rows {
        for (w, c) in widths.iter_mut().zip(cells) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[&str]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header);
    for (cells, disks) in &rows {
        line(&cells.iter().map(String::as_str).collect::<Vec<_>>());
        for d in disks {
            println!("    {:<8} {:>14} {}", d.name, d.size, d.sha256);
        }
    }
}

fn serve(args: ServeArgs) -> Result<()> {
    let http = parse_addr(&args.http, "http")?;
    let https = parse_addr(&args.https, "https")?;
    if http.is_none() && https.is_none() {
        bail!("both --http and --https are off: nothing to serve");
    }
    if args.allow_faults && !args.allow_faults_remote {
        if let Some(open) = [http, https]
            .into_iter()
            .flatten()
            .find(|a| !a.ip().is_loopback())
        {
            bail!(
                "--allow-faults with a listener on {open}, which other machines may reach: listen on loopback (e.g. --https 127.0.0.1:9398) or add --allow-faults-remote"
            );
        }
    }
    // The log goes to stderr like every other message; stdout is for data. Colour only on a terminal.
    tracing_subscriber::fmt()
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    // A bad scenario is refused before the data folder is opened or made.
    let scenario = args
        .scenario
        .as_deref()
        .map(|path| read_scenario(path, args.disk_size))
        .transpose()?;
    let directory = args.ldap.directory()?;
    let core = open_with(&args.data, |c| {
        c.directory = directory;
        c.restore_workers = args.restore_workers.max(1);
        c.restore_queue = args.restore_queue;
        c.session_idle = std::time::Duration::from_secs(args.session_idle_minutes.max(1) * 60);
        c.query_cost_limit = args.query_cost_limit;
        c.logon_throttle = emrest_core::throttle::ThrottleConfig {
            max_failures: args.logon_max_failures,
            window: std::time::Duration::from_secs(args.logon_failure_window_minutes.max(1) * 60),
            lockout: std::time::Duration::from_secs(args.logon_lockout_minutes.max(1) * 60),
        };
    })?;
    if args.demo {
        let request = Request::Demo {
            disk_size: args.disk_size,
            scenario,
        };
        with_spinner(
            "creating the world: VMs, full backups, changes, incremental backups",
            || admin::execute(&core, &request),
        )?
        .done()?
        .print()?;
    }
    if args.allow_faults {
        core.faults().allow();
        tracing::warn!(
            "fault injection is on (--allow-faults): administrators may make restores fail, tasks hang and requests answer errors"
        );
    }
    if args.gc_interval_minutes > 0 {
        core.jobs().schedule_gc(
            std::time::Duration::from_secs(args.gc_interval_minutes * 60),
            std::time::Duration::from_secs(args.gc_grace_minutes * 60),
        )?;
    }
    // Scheduled jobs (README.md "Schedules"): a pass every 10 seconds on the system clock.
    core.jobs().start_scheduler(
        std::sync::Arc::new(emrest_core::scheduler::SystemClock),
        std::time::Duration::from_secs(10),
    )?;
    let max_connections = match raise_fd_limit() {
        Some(fds) if fds.saturating_sub(FD_RESERVE) < args.max_connections => {
            let kept = fds.saturating_sub(FD_RESERVE).max(1);
            tracing::warn!(
                "--max-connections {} is more than the open-file limit ({fds}) allows: serving at most {kept} at once",
                args.max_connections
            );
            kept
        }
        _ => args.max_connections,
    };
    let metrics = emrest_server::MetricsConfig {
        listen: match args.metrics.as_str() {
            m if m.eq_ignore_ascii_case("http") => emrest_server::MetricsListen::Http,
            m => match parse_addr(m, "metrics")? {
                Some(addr) => emrest_server::MetricsListen::Addr(addr),
                None => emrest_server::MetricsListen::Off,
            },
        },
        token: args.metrics_token.filter(|t| !t.is_empty()),
    };
    let mut metrics = metrics;
    if metrics.listen == emrest_server::MetricsListen::Http && http.is_none() {
        tracing::info!("no metrics: --http is off (give --metrics an address to serve them)");
        metrics.listen = emrest_server::MetricsListen::Off;
    }
    let config = emrest_server::ServerConfig {
        http,
        https,
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
        lenient_xml_order: args.lenient_xml_order,
        lenient_restore_spec: args.lenient_restore_spec,
        limits: emrest_server::ConnLimits {
            header_read_timeout: std::time::Duration::from_secs(args.header_timeout_secs),
            tls_handshake_timeout: std::time::Duration::from_secs(args.tls_handshake_timeout_secs),
            max_connections: usize::try_from(max_connections).unwrap_or(usize::MAX),
        },
        metrics,
    };
    // The blocking pool runs the handlers that read or write the catalog, all CPU-bound work on
    // a few cores: more threads than a few per core only add stacks and malloc arenas (with 500
    // clients, tokio's default of 512 let hundreds start, and resident memory followed).
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    limit_malloc_arenas(cores);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS_PER_CORE * cores)
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async {
        // Verbs that change the data folder reach this server through its admin channel.
        let channel = match admin::Listener::bind(core.data_dir()) {
            Ok(listener) => {
                tracing::info!(
                    "admin channel on {} (the data folder's owner and root)",
                    listener.path().display()
                );
                Some(tokio::spawn(listener.serve(core.clone())))
            }
            Err(e) => {
                tracing::warn!("no admin channel ({e:#}): verbs that change the data folder need the server stopped");
                None
            }
        };
        let requests_log = log_repository_requests(core.shared_repository());
        let r = emrest_server::run(Arc::clone(&**core), config, shutdown_signal()).await;
        if let Some(log) = requests_log {
            log.abort();
        }
        if let Some(channel) = channel {
            channel.abort();
            let _ = channel.await;
        }
        r
    })?;
    Ok(())
}

/// glibc gives threads up to 8 malloc arenas per core, and each keeps what its threads freed:
/// with the blocking pool, restore workers and 500 clients that is resident memory nobody
/// uses. Two per core (unless `MALLOC_ARENA_MAX` says otherwise): bench/load.sh's peak went
/// from 188 MB to 167 MB, at 17,900 against 18,600 requests/s (within its run-to-run noise).
fn limit_malloc_arenas(cores: usize) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        let arenas =
            libc::c_int::try_from(cores * MALLOC_ARENAS_PER_CORE).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt only sets a tunable of the allocator; called before the runtime's
        // threads start. A refusal (0) leaves glibc's default, which is only more memory.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = cores;
}

/// Malloc arenas per core for `emrest serve` (see [`limit_malloc_arenas`]).
const MALLOC_ARENAS_PER_CORE: usize = 2;

/// For a repository paid by the request (S3): a log line each minute in which it was sent
/// any, with the minute's counts and the totals (the totals also go to stderr at exit).
fn log_repository_requests(
    repo: Arc<emrest_core::Repository>,
) -> Option<tokio::task::JoinHandle<()>> {
    let mut last = repo.requests()?;
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(now) = repo.requests() else { return };
            if now.total() > last.total() {
                tracing::info!(
                    "repository {}: in the last minute {}; since start {} requests",
                    repo.describe(),
                    now.since(&last),
                    now.total()
                );
                last = now;
            }
        }
    }))
}

/// Resolves on Ctrl-C or SIGTERM (what service managers and `docker stop` send).
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(e) => {
            tracing::warn!("cannot listen for SIGTERM: {e}");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
