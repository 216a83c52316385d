//! `emrest`: the Enterprise Manager REST server and its maintenance verbs.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use emrest_core::demo::DemoOptions;
use emrest_core::report::DiskReport;
use emrest_core::{Core, CoreConfig, Role};
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

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
}

#[derive(Subcommand)]
enum Command {
    /// Serve the REST API (HTTPS on 0.0.0.0:9398, HTTP on 127.0.0.1:9399).
    Serve(ServeArgs),
    /// Create the demo world (idempotent): hierarchy roots, VMs, two backups of each.
    Demo {
        #[command(flatten)]
        data: DataArg,
        /// Size of each demo disk, e.g. 64M, 1G.
        #[arg(long, default_value = "64M", value_parser = parse_disk_size)]
        disk_size: u64,
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
    /// Re-read every chunk every restore point references and check its digest.
    Verify {
        #[command(flatten)]
        data: DataArg,
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
    /// Add an account (password from EMREST_PASSWORD or --password).
    Add {
        #[command(flatten)]
        data: DataArg,
        name: String,
        #[arg(long, env = "EMREST_PASSWORD", hide_env_values = true)]
        password: String,
        /// PortalAdministrator, RestoreOperator or PortalUser.
        #[arg(long, default_value = "PortalAdministrator")]
        role: String,
    },
    /// Change an account's password.
    Passwd {
        #[command(flatten)]
        data: DataArg,
        name: String,
        #[arg(long, env = "EMREST_PASSWORD", hide_env_values = true)]
        password: String,
    },
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
    /// Restores that run at once; more wait in state Starting.
    #[arg(long, default_value_t = 2)]
    restore_workers: usize,
    /// Idle minutes after which a logon session expires.
    #[arg(long, default_value_t = 15)]
    session_idle_minutes: u64,
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
    DemoOptions { disk_size }
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
fn open(data: &DataArg) -> Result<Arc<Core>> {
    open_with(data, |_| {})
}

/// Open an existing data folder to look only: works beside a running server.
fn open_read_only(data: &DataArg) -> Result<Arc<Core>> {
    require_data_folder(data)?;
    open_with(data, |c| c.read_only = true)
}

/// Open an existing data folder to change it.
fn open_existing(data: &DataArg) -> Result<Arc<Core>> {
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

fn open_with(data: &DataArg, config: impl FnOnce(&mut CoreConfig)) -> Result<Arc<Core>> {
    let mut cfg = CoreConfig::new(&data.data);
    config(&mut cfg);
    let (core, report) = Core::open(cfg)
        .with_context(|| format!("cannot open data folder {}", data.data.display()))?;
    if let Some(pw) = report.generated_admin_password {
        eprintln!("Created the account 'admin' with the generated password: {pw}");
        eprintln!("(shown once; set EMREST_ADMIN_PASSWORD before the first start to choose it)");
    }
    if report.interrupted_tasks > 0 {
        eprintln!(
            "{} task(s) were interrupted by the last stop and are marked failed",
            report.interrupted_tasks
        );
    }
    Ok(core)
}

fn make_demo(core: &Core, disk_size: u64) -> Result<()> {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_message("creating the demo world: VMs, full backup, changes, incremental backup");
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    let summary = core.create_demo(&DemoOptions { disk_size });
    bar.finish_and_clear();
    let summary = summary?;
    if summary.created {
        eprintln!(
            "Demo world created: {} VMs, {} VM restore points",
            summary.vms, summary.restore_points
        );
    } else {
        eprintln!(
            "Demo world already present: {} VMs, {} VM restore points",
            summary.vms, summary.restore_points
        );
    }
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("emrest: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Demo { data, disk_size } => {
            let core = open(&data)?;
            make_demo(&core, disk_size)
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
        Command::User { verb } => {
            match verb {
                UserVerb::Add {
                    data,
                    name,
                    password,
                    role,
                } => {
                    let role = Role::parse(&role).with_context(|| format!("unknown role '{role}' (PortalAdministrator, RestoreOperator, PortalUser)"))?;
                    open(&data)?.add_account(&name, &password, role)?;
                    eprintln!("Account '{name}' added");
                    Ok(())
                }
                UserVerb::Passwd {
                    data,
                    name,
                    password,
                } => {
                    open_existing(&data)?.set_password(&name, &password)?;
                    eprintln!("Password of '{name}' changed");
                    Ok(())
                }
            }
        }
        Command::Verify { data } => {
            let core = open_read_only(&data)?;
            let problems = core.verify_repository()?;
            if problems.is_empty() {
                println!("repository verified: no missing or corrupt chunk");
                Ok(())
            } else {
                for p in &problems {
                    println!("{p}");
                }
                bail!("{} problem(s) found", problems.len())
            }
        }
    }
}

/// Print rows under a header, columns as wide as their widest cell, each row followed by its
/// disks (name, size in bytes, SHA-256 of the bytes).
fn print_table(header: &[&str], rows: Vec<(Vec<String>, Vec<DiskReport>)>) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for (cells, _) in &rows {
        for (w, c) in widths.iter_mut().zip(cells) {
            *w = (*w).max(c.len());
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
    // The log goes to stderr like every other message; stdout is for data. Colour only on a terminal.
    tracing_subscriber::fmt()
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let core = open_with(&args.data, |c| {
        c.restore_workers = args.restore_workers.max(1);
        c.session_idle = std::time::Duration::from_secs(args.session_idle_minutes.max(1) * 60);
    })?;
    if args.demo {
        make_demo(&core, args.disk_size)?;
    }
    let config = emrest_server::ServerConfig {
        http,
        https,
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
        lenient_xml_order: args.lenient_xml_order,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(emrest_server::run(core, config, shutdown_signal()))?;
    Ok(())
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
