//! How a verb that changes the data folder reaches it, with or without a server running in it.
//!
//! A server holds the data folder's lock, so `emrest user passwd` cannot open the folder while
//! it runs. Instead the server listens on a Unix socket in the folder ([`SOCKET`]) that answers
//! only the folder's owner and root, checked with the peer's credentials (`SO_PEERCRED`), like
//! the folder itself (0700). Every state-changing verb is a [`Request`]; [`execute`] runs it
//! against a [`Core`]: in the CLI's own process when no server runs, in the server's when one
//! does. One function for both, so the output and the exit code are the same either way.
//!
//! The wire: per connection, one request as a JSON line, then one answer
//! (`{"Ok": Reply}` or `{"Err": "message"}`), then the server closes.

use anyhow::{anyhow, bail, Context, Result};
use emrest_core::faults::Who;
use emrest_core::security::{EnterpriseRole, ScopeItem};
use emrest_core::Owner;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

/// The channel's socket, in the data folder.
pub const SOCKET: &str = "admin.sock";

/// The longest request accepted (a request is a verb and a few names).
const MAX_REQUEST: u64 = 1 << 20;

/// A verb that changes the data folder, with its arguments. No `Debug`: it may hold a password.
#[derive(Serialize, Deserialize)]
#[serde(tag = "verb", rename_all = "snake_case")]
pub enum Request {
    Demo {
        disk_size: u64,
        /// A scenario file's text, and the values of the environment variables it names (read
        /// where the CLI runs).
        scenario: Option<(String, std::collections::HashMap<String, String>)>,
    },
    UserAdd {
        name: String,
        password: String,
        roles: Vec<String>,
        scopes: Vec<String>,
    },
    UserPasswd {
        name: String,
        password: String,
    },
    UserRole {
        name: String,
        role: String,
        add: bool,
    },
    ScopeAdd {
        name: String,
        obj_ref: String,
        display: Option<String>,
    },
    ScopeRemove {
        name: String,
        id: Uuid,
    },
    ScopeMode {
        name: String,
        all: bool,
    },
    JobCreate {
        name: String,
        vms: Vec<String>,
        retention: u32,
        description: String,
    },
    JobStart {
        name: String,
        as_user: String,
    },
    /// How far a started job is (polled while following it).
    JobProgress {
        job: Uuid,
        session: Uuid,
    },
    /// The summary of a job run that ended; `secs` is how long the caller followed it.
    JobFinish {
        session: Uuid,
        json: bool,
        secs: f64,
    },
    JobStop {
        name: String,
        as_user: String,
    },
    JobSchedule {
        name: String,
        as_user: String,
        schedule: Box<crate::schedule_args::ScheduleArgs>,
    },
    Gc {
        grace_minutes: u64,
        json: bool,
    },
    /// `emrest verify --mark`: verify, and record the damaged points.
    VerifyMark,
    /// `emrest fault add`: a `FaultRuleSpec` in JSON. `by` is set by the server: the peer.
    FaultAdd {
        spec: serde_json::Value,
        json: bool,
        by: String,
    },
    FaultList {
        json: bool,
        by: String,
    },
    FaultClear {
        id: Option<Uuid>,
        by: String,
    },
}

impl Request {
    /// The verb, for the log (never the arguments: they may hold a password).
    fn verb(&self) -> &'static str {
        match self {
            Request::Demo { .. } => "demo",
            Request::UserAdd { .. } => "user add",
            Request::UserPasswd { .. } => "user passwd",
            Request::UserRole { .. } => "user role",
            Request::ScopeAdd { .. } => "user scope add",
            Request::ScopeRemove { .. } => "user scope remove",
            Request::ScopeMode { .. } => "user scope mode",
            Request::JobCreate { .. } => "job create",
            Request::JobStart { .. } => "job start",
            Request::JobProgress { .. } => "job progress",
            Request::JobFinish { .. } => "job finish",
            Request::JobStop { .. } => "job stop",
            Request::JobSchedule { .. } => "job schedule",
            Request::Gc { .. } => "gc",
            Request::VerifyMark => "verify --mark",
            Request::FaultAdd { .. } => "fault add",
            Request::FaultList { .. } => "fault list",
            Request::FaultClear { .. } => "fault clear",
        }
    }

    /// Names who sent a fault verb (the audit log says who set each rule): the peer's uid.
    fn sent_by(&mut self, uid: u32) {
        if let Request::FaultAdd { by, .. }
        | Request::FaultList { by, .. }
        | Request::FaultClear { by, .. } = self
        {
            *by = format!("uid {uid}");
        }
    }
}

/// `emrest fault add`'s flags: what a rule matches, when it fires, what it does.
#[derive(clap::Args)]
pub struct FaultArgs {
    /// What the rule matches: restore, backup, logon, or a request by its route template as
    /// docs/openapi.json names it, with or without a method: 'GET /tasks/{ID}'.
    #[arg(long = "on", value_name = "OPERATION")]
    on: String,
    /// Restores of one mode only: full or quick-rollback.
    #[arg(long, value_name = "MODE")]
    mode: Option<String>,
    /// Tasks on this VM only (restores: the point's VM; backups: a job that includes it).
    #[arg(long, value_name = "NAME")]
    vm: Option<String>,
    /// Work of this account only (logons: the user name logging on).
    #[arg(long, value_name = "NAME")]
    account: Option<String>,
    /// Fire on the first N matches only.
    #[arg(long, value_name = "N", conflicts_with_all = ["every", "chance"])]
    first: Option<u64>,
    /// Fire on every Nth match.
    #[arg(long, value_name = "N", conflicts_with = "chance")]
    every: Option<u64>,
    /// Fire with this probability (0 to 1) per match.
    #[arg(long, value_name = "P")]
    chance: Option<f64>,
    /// The seed of --chance: the same seed fires on the same matches.
    #[arg(long, requires = "chance")]
    seed: Option<u64>,
    /// fail, delay, hang, stall (tasks); status, delay, hang, drop, expire-session (requests).
    #[arg(long, value_name = "EFFECT")]
    effect: String,
    /// Where fail and stall happen, in percent of the task (0 to 99).
    #[arg(long)]
    percent: Option<u8>,
    /// How long delay waits and stall stalls, in milliseconds.
    #[arg(long, value_name = "MS")]
    delay_ms: Option<u64>,
    /// The HTTP status of effect status (400 to 599).
    #[arg(long)]
    status: Option<u16>,
    /// The failed task's result (fail), or the Error body's message (status).
    #[arg(long)]
    message: Option<String>,
}

impl FaultArgs {
    /// The rule as a `FaultRuleSpec` in JSON; the server checks it whole.
    pub fn spec(&self) -> Result<serde_json::Value> {
        use serde_json::{json, Map, Value};
        let mut m = Map::new();
        let on = self.on.trim();
        let (operation, request) = match on.to_ascii_lowercase().as_str() {
            "restore" => ("Restore", None),
            "backup" => ("Backup", None),
            "logon" => ("Logon", None),
            _ => match on.split_once(char::is_whitespace) {
                Some((method, route)) if route.trim_start().starts_with('/') => {
                    ("Request", Some((Some(method.to_ascii_uppercase()), route.trim())))
                }
                _ if on.starts_with('/') => ("Request", Some((None, on))),
                _ => bail!(
                    "--on '{on}': expected restore, backup, logon or a route such as 'GET /tasks/{{ID}}'"
                ),
            },
        };
        m.insert("Operation".into(), json!(operation));
        if let Some(mode) = &self.mode {
            let mode = match mode.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
                "full" => "Full",
                "quickrollback" => "QuickRollback",
                _ => bail!("--mode '{mode}': expected full or quick-rollback"),
            };
            m.insert("RestoreMode".into(), json!(mode));
        }
        if let Some((method, route)) = request {
            if let Some(method) = method {
                m.insert("Method".into(), json!(method));
            }
            m.insert("Route".into(), json!(route));
        }
        if let Some(vm) = &self.vm {
            m.insert("VmName".into(), json!(vm));
        }
        if let Some(a) = &self.account {
            m.insert("AccountName".into(), json!(a));
        }
        if let Some(n) = self.first {
            m.insert("Fire".into(), json!("First"));
            m.insert("Count".into(), json!(n));
        } else if let Some(n) = self.every {
            m.insert("Fire".into(), json!("Every"));
            m.insert("Count".into(), json!(n));
        } else if let Some(p) = self.chance {
            m.insert("Fire".into(), json!("Chance"));
            m.insert("Probability".into(), json!(p));
            if let Some(seed) = self.seed {
                m.insert("Seed".into(), json!(seed));
            }
        }
        let effect = match self
            .effect
            .to_ascii_lowercase()
            .replace(['-', '_'], "")
            .as_str()
        {
            "fail" => "Fail",
            "delay" => "Delay",
            "hang" => "Hang",
            "stall" => "Stall",
            "status" => "Status",
            "drop" => "Drop",
            "expiresession" | "expire" => "ExpireSession",
            _ => bail!(
                "--effect '{}': expected fail, delay, hang, stall, status, drop or expire-session",
                self.effect
            ),
        };
        m.insert("Effect".into(), json!(effect));
        let numbers: [(&str, Option<Value>); 3] = [
            ("Percent", self.percent.map(|v| json!(v))),
            ("DelayMs", self.delay_ms.map(|v| json!(v))),
            ("StatusCode", self.status.map(|v| json!(v))),
        ];
        for (k, v) in numbers {
            if let Some(v) = v {
                m.insert(k.into(), v);
            }
        }
        if let Some(msg) = &self.message {
            m.insert("Message".into(), json!(msg));
        }
        Ok(Value::Object(m))
    }
}

/// A fault rule for `emrest fault` output: one line, or an object for `--json`.
fn fault_rule_line(r: &emrest_core::faults::FaultRule) -> String {
    format!(
        "{}  fired {}/{}  {}  (added by {})",
        r.id,
        r.fired,
        r.matched,
        r.spec.describe(),
        r.created_by
    )
}

fn fault_rule_json(r: &emrest_core::faults::FaultRule) -> serde_json::Value {
    serde_json::json!({
        "Id": r.id,
        "Description": r.spec.describe(),
        "CreatedBy": r.created_by,
        "Matched": r.matched,
        "Fired": r.fired,
    })
}

/// What a verb printed and whether it failed: the CLI prints it where it ran.
#[derive(Serialize, Deserialize, Default, Debug)]
pub struct Outcome {
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
    /// Set when the verb did its work but ends with a non-zero exit (verify found damage).
    pub failure: Option<String>,
}

impl Outcome {
    fn said(line: String) -> Outcome {
        Outcome {
            stderr: vec![line],
            ..Outcome::default()
        }
    }

    /// Print it; an error when the verb failed.
    pub fn print(self) -> Result<()> {
        for line in &self.stdout {
            println!("{line}");
        }
        for line in &self.stderr {
            eprintln!("{line}");
        }
        match self.failure {
            Some(f) => Err(anyhow!(f)),
            None => Ok(()),
        }
    }
}

#[derive(Serialize, Deserialize, Debug)]
pub enum Reply {
    Done(Outcome),
    Started {
        job: Uuid,
        session: Uuid,
    },
    Progress {
        running: bool,
        bytes_total: u64,
        bytes_done: u64,
        vms_done: usize,
        vms: usize,
    },
}

impl Reply {
    pub fn done(self) -> Result<Outcome> {
        match self {
            Reply::Done(o) => Ok(o),
            other => bail!("unexpected answer from the server: {other:?}"),
        }
    }
}

/// Where requests run: in this process, or in the server holding the data folder.
pub enum Driver {
    Local(Arc<Owner>),
    Server(PathBuf),
}

impl Driver {
    /// The running server when its channel answers; otherwise the folder, opened here by
    /// `open` (which fails, naming the other process, when something else holds it).
    pub fn connect(data: &Path, open: impl FnOnce() -> Result<Arc<Owner>>) -> Result<Driver> {
        let socket = data.join(SOCKET);
        // A socket left by a server that was killed refuses connections: open the folder.
        match std::os::unix::net::UnixStream::connect(&socket) {
            Ok(_) => Ok(Driver::Server(socket)),
            Err(_) => Ok(Driver::Local(open()?)),
        }
    }

    pub fn call(&self, request: &Request) -> Result<Reply> {
        match self {
            Driver::Local(core) => execute(core, request),
            Driver::Server(socket) => call_server(socket, request),
        }
    }
}

fn call_server(socket: &Path, request: &Request) -> Result<Reply> {
    let lost = || format!("the server's admin channel {} failed", socket.display());
    let mut stream = std::os::unix::net::UnixStream::connect(socket).with_context(lost)?;
    let mut line = serde_json::to_vec(request)?;
    line.push(b'\n');
    stream.write_all(&line).with_context(lost)?;
    stream
        .shutdown(std::net::Shutdown::Write)
        .with_context(lost)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).with_context(lost)?;
    if answer.is_empty() {
        bail!(
            "the server closed its admin channel {} without answering (see its log)",
            socket.display()
        );
    }
    let answer: std::result::Result<Reply, String> =
        serde_json::from_slice(&answer).with_context(lost)?;
    answer.map_err(|message| anyhow!(message))
}

// ---- the verbs ----

pub fn parse_role(role: &str) -> Result<EnterpriseRole> {
    EnterpriseRole::parse(role).with_context(|| {
        let known: Vec<&str> = EnterpriseRole::ALL.iter().map(|r| r.key()).collect();
        format!("unknown role '{role}' ({})", known.join(", "))
    })
}

fn scope_item(obj_ref: String, name: Option<String>) -> ScopeItem {
    ScopeItem {
        obj_ref: Some(obj_ref),
        name,
    }
}

pub fn find_job(core: &Owner, name: &str) -> Result<emrest_core::jobs::JobRecord> {
    core.view()
        .job_by_name(name)?
        .with_context(|| format!("there is no job named '{name}' (see `emrest job list`)"))
}

/// Run one verb against an open data folder.
pub fn execute(core: &Arc<Owner>, request: &Request) -> Result<Reply> {
    let outcome = match request {
        Request::Demo {
            disk_size,
            scenario,
        } => {
            let s = match scenario {
                None => core.create_demo(&emrest_core::demo::DemoOptions {
                    disk_size: *disk_size,
                })?,
                Some((text, env)) => {
                    let plan = emrest_core::scenario::Scenario::parse(text, *disk_size, &|v| {
                        env.get(v).cloned()
                    })
                    .map_err(|e| anyhow!("the scenario, {e}"))?;
                    core.create_world(&plan)?
                }
            };
            Outcome::said(format!(
                "Demo world {}: {} VMs, {} VM restore points",
                if s.created {
                    "created"
                } else {
                    "already present"
                },
                s.vms,
                s.restore_points
            ))
        }
        Request::UserAdd {
            name,
            password,
            roles,
            scopes,
        } => {
            let roles = roles
                .iter()
                .map(|r| parse_role(r))
                .collect::<Result<Vec<_>>>()?;
            let scopes = scopes.iter().map(|s| scope_item(s.clone(), None)).collect();
            core.add_local_account(name, password, roles, scopes)?;
            Outcome::said(format!("Account '{name}' added"))
        }
        Request::UserPasswd { name, password } => {
            core.set_password(name, password)?;
            Outcome::said(format!("Password of '{name}' changed"))
        }
        Request::UserRole { name, role, add } => {
            let role = parse_role(role)?;
            core.change_role_local(name, role, *add)?;
            Outcome::said(format!(
                "{} {} '{name}'",
                role.name(),
                if *add { "given to" } else { "taken from" }
            ))
        }
        Request::ScopeAdd {
            name,
            obj_ref,
            display,
        } => {
            core.add_scopes_local(name, &[scope_item(obj_ref.clone(), display.clone())])?;
            core.set_allow_all_local(name, false)?;
            Outcome::said(format!(
                "Scope of '{name}' extended; it may restore only the VMs of its scope"
            ))
        }
        Request::ScopeRemove { name, id } => {
            core.remove_scope_local(name, *id)?;
            Outcome::said(format!("Scope object {id} removed from '{name}'"))
        }
        Request::ScopeMode { name, all } => {
            core.set_allow_all_local(name, *all)?;
            Outcome::said(format!(
                "'{name}' may now restore {}",
                if *all {
                    "every VM"
                } else {
                    "the VMs of its scope only"
                }
            ))
        }
        Request::JobCreate {
            name,
            vms,
            retention,
            description,
        } => {
            let job = core.jobs().create_job(name, vms, *retention, description)?;
            Outcome::said(format!(
                "Job '{}' created: {} VM(s), keeps {} restore point(s), urn:veeam:Job:{}",
                job.name,
                job.objects.len(),
                job.retention,
                job.id
            ))
        }
        Request::JobStart { name, as_user } => {
            let actor = core.jobs().local_actor(Some(as_user))?;
            let job = find_job(core, name)?;
            let (_, session) = core.jobs().start_job(&actor, job.id)?;
            return Ok(Reply::Started {
                job: job.id,
                session,
            });
        }
        Request::JobProgress { job, session } => {
            let running = core.jobs().job_running(*job);
            let s = core.view().backup_session(*session)?;
            let tasks = core.view().backup_task_sessions(Some(*session))?;
            let vms_done = tasks
                .iter()
                .filter(|t| t.state == emrest_core::jobs::TaskSessionState::Completed)
                .count();
            return Ok(Reply::Progress {
                running,
                bytes_total: s.bytes_total,
                bytes_done: s.bytes_done,
                vms_done,
                vms: tasks.len(),
            });
        }
        Request::JobFinish {
            session,
            json,
            secs,
        } => job_summary(core, *session, *json, *secs)?,
        Request::JobStop { name, as_user } => {
            let actor = core.jobs().local_actor(Some(as_user))?;
            let job = find_job(core, name)?;
            let task = core.jobs().stop_job(&actor, job.id)?;
            Outcome::said(task.result.map(|r| r.1).unwrap_or_default())
        }
        Request::JobSchedule {
            name,
            as_user,
            schedule,
        } => {
            let actor = core.jobs().local_actor(Some(as_user))?;
            let change = schedule.schedule(|previous| Ok(find_job(core, previous)?.id))?;
            let job = core
                .jobs()
                .set_job_schedule(&actor, name, change, schedule.enabled())?;
            let name_of = |id: Uuid| {
                core.view()
                    .job(id)
                    .map(|j| j.name)
                    .unwrap_or_else(|_| id.to_string())
            };
            Outcome::said(match &job.schedule {
                None => format!("Job '{}' has no schedule: it runs when started", job.name),
                Some(s) => format!(
                    "Job '{}' runs {}{}; next run: {}",
                    job.name,
                    crate::schedule_args::describe(s, name_of),
                    if job.schedule_enabled {
                        ""
                    } else {
                        " (switched off)"
                    },
                    job.upcoming_run(emrest_core::now_millis())
                        .map(emrest_core::time::iso)
                        .unwrap_or_else(|| "-".into())
                ),
            })
        }
        Request::Gc {
            grace_minutes,
            json,
        } => {
            let r = core
                .jobs()
                .collect_garbage(std::time::Duration::from_secs(grace_minutes * 60))?;
            let line = if *json {
                serde_json::to_string_pretty(&r)?
            } else {
                format!(
                    "gc: removed {} index(es) and {} chunk(s) ({}), kept {} chunk(s)",
                    r.indexes_removed,
                    r.chunks_removed,
                    human_bytes(r.bytes_removed),
                    r.chunks_kept
                )
            };
            Outcome {
                stdout: vec![line],
                ..Outcome::default()
            }
        }
        Request::VerifyMark => verify(core)?,
        Request::FaultAdd { spec, json, by } => {
            let spec = emrest_server::fault_spec_from_json(&serde_json::to_vec(spec)?)?;
            let rule = core.fault_admin().add(Who::Local(by), spec)?;
            Outcome {
                stdout: vec![if *json {
                    serde_json::to_string_pretty(&fault_rule_json(&rule))?
                } else {
                    fault_rule_line(&rule)
                }],
                ..Outcome::default()
            }
        }
        Request::FaultList { json, by } => {
            let rules = core.fault_admin().list(Who::Local(by))?;
            let stdout = if *json {
                let all: Vec<_> = rules.iter().map(fault_rule_json).collect();
                vec![serde_json::to_string_pretty(&all)?]
            } else {
                rules.iter().map(fault_rule_line).collect()
            };
            Outcome {
                stdout,
                ..Outcome::default()
            }
        }
        Request::FaultClear { id, by } => {
            let line = match id {
                Some(id) => {
                    core.fault_admin().remove(Who::Local(by), *id)?;
                    format!("fault rule {id} removed")
                }
                None => format!(
                    "{} fault rule(s) removed",
                    core.fault_admin().clear(Who::Local(by))?
                ),
            };
            Outcome::said(line)
        }
    };
    Ok(Reply::Done(outcome))
}

/// `emrest verify`: one line per problem, and a failure when there is any.
pub fn verify(core: &Owner) -> Result<Outcome> {
    let problems = core.verify_repository()?;
    if problems.is_empty() {
        return Ok(Outcome {
            stdout: vec!["repository verified: no missing or corrupt chunk".into()],
            ..Outcome::default()
        });
    }
    let failure = Some(format!("{} problem(s) found", problems.len()));
    Ok(Outcome {
        stdout: problems,
        stderr: Vec::new(),
        failure,
    })
}

/// The end of a job run: the session as JSON on request, one summary line, a failure when the
/// run failed.
fn job_summary(core: &Owner, session: Uuid, json: bool, secs: f64) -> Result<Outcome> {
    let s = core.view().backup_session(session)?;
    let tasks = core.view().backup_task_sessions(Some(session))?;
    let mut out = Outcome::default();
    if json {
        out.stdout.push(serde_json::to_string_pretty(
            &serde_json::json!({ "session": s, "task_sessions": tasks }),
        )?);
    }
    let read: u64 = tasks.iter().map(|t| t.bytes_read).sum();
    let stored: u64 = tasks.iter().map(|t| t.bytes_transferred).sum();
    let chunks: u64 = tasks.iter().map(|t| t.chunks_new).sum();
    let secs = secs.max(1e-3);
    let ok = tasks
        .iter()
        .filter(|t| t.result == emrest_core::SessionResult::Success)
        .count();
    out.stderr.push(format!(
        "{}: {:?}, {ok}/{} VM(s), read {} ({:.0} MB/s), stored {} in {chunks} new chunk(s), {:.1} s{}",
        emrest_core::jobs::session_name(&s.job_name, s.created),
        s.result,
        tasks.len(),
        human_bytes(read),
        read as f64 / 1e6 / secs,
        human_bytes(stored),
        secs,
        s.failure_message
            .as_deref()
            .map(|m| format!(" — {m}"))
            .unwrap_or_default()
    ));
    if s.result == emrest_core::SessionResult::Failed {
        out.failure = Some("the backup job failed".into());
    }
    Ok(out)
}

pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Follow a job started through `driver` to its end: a progress bar with `bar`, then its
/// summary (and the session as JSON with `json`). Ctrl-C asks the job to stop.
pub fn start_and_follow(
    driver: Arc<Driver>,
    name: &str,
    as_user: &str,
    bar: bool,
    json: bool,
) -> Result<()> {
    let started = std::time::Instant::now();
    let (job, session) = match driver.call(&Request::JobStart {
        name: name.into(),
        as_user: as_user.into(),
    })? {
        Reply::Started { job, session } => (job, session),
        other => bail!("unexpected answer from the server: {other:?}"),
    };
    {
        let driver = driver.clone();
        let stop = Request::JobStop {
            name: name.into(),
            as_user: as_user.into(),
        };
        // Ctrl-C asks the job to stop between chunks; the loop below sees it end.
        std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                if rt.block_on(tokio::signal::ctrl_c()).is_ok() {
                    let _ = driver.call(&stop);
                }
            }
        });
    }
    let pb = bar.then(|| {
        let pb = indicatif::ProgressBar::new(0);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {bytes}/{total_bytes} ({bytes_per_sec}) {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb
    });
    loop {
        let Reply::Progress {
            running,
            bytes_total,
            bytes_done,
            vms_done,
            vms,
        } = driver.call(&Request::JobProgress { job, session })?
        else {
            bail!("unexpected answer from the server to a progress request");
        };
        if !running {
            break;
        }
        if let Some(pb) = &pb {
            pb.set_length(bytes_total);
            pb.set_position(bytes_done);
            pb.set_message(format!("{vms_done}/{vms} VMs"));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    driver
        .call(&Request::JobFinish {
            session,
            json,
            secs: started.elapsed().as_secs_f64(),
        })?
        .done()?
        .print()
}

// ---- the server's side ----

/// The channel's listener, bound in the data folder by a server that holds the folder's lock.
pub struct Listener {
    listener: tokio::net::UnixListener,
    path: PathBuf,
    /// Who may use it besides root: the data folder's owner.
    owner: u32,
}

impl Listener {
    /// Bind the socket, replacing one left by a server that was killed (this process holds the
    /// folder's lock, so no other server is using it). Must be called inside the runtime.
    pub fn bind(data: &Path) -> Result<Listener> {
        let path = data.join(SOCKET);
        let owner = std::fs::metadata(data)
            .with_context(|| format!("cannot read {}", data.display()))?
            .uid();
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot remove {}", path.display())),
        }
        let listener = tokio::net::UnixListener::bind(&path)
            .with_context(|| format!("cannot listen on {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict {}", path.display()))?;
        Ok(Listener {
            listener,
            path,
            owner,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Answer requests until the task is dropped.
    pub async fn serve(self, core: Arc<Owner>) {
        loop {
            match self.listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(answer(stream, core.clone(), self.owner));
                }
                Err(e) => {
                    tracing::warn!("admin channel: cannot accept a connection: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn answer(mut stream: tokio::net::UnixStream, core: Arc<Owner>, owner: u32) {
    let uid = match stream.peer_cred() {
        Ok(cred) => cred.uid(),
        Err(e) => {
            tracing::warn!("admin channel: cannot read the peer's credentials: {e}");
            return;
        }
    };
    // The request is read whoever sent it: closing on unread bytes would reset the connection
    // before the refusal arrives.
    let mut body = Vec::new();
    if let Err(e) = (&mut stream).take(MAX_REQUEST).read_to_end(&mut body).await {
        tracing::warn!("admin channel: cannot read a request: {e}");
        return;
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        // A client checking that the server is there.
        return;
    }
    let answer: std::result::Result<Reply, String> = if uid != 0 && uid != owner {
        tracing::warn!("admin channel: refused a request from uid {uid} (only uid {owner}, the data folder's owner, and root may use it)");
        Err(format!(
            "the admin channel answers only the data folder's owner (uid {owner}) and root"
        ))
    } else {
        match serde_json::from_slice::<Request>(&body) {
            Err(e) => Err(format!("the server did not understand the request: {e}")),
            Ok(mut request) => {
                request.sent_by(uid);
                let verb = request.verb();
                if !matches!(request, Request::JobProgress { .. }) {
                    tracing::info!("admin channel: {verb} (uid {uid})");
                }
                match tokio::task::spawn_blocking(move || execute(&core, &request)).await {
                    Ok(r) => r.map_err(|e| format!("{e:#}")),
                    Err(e) => Err(format!("the server failed running {verb}: {e}")),
                }
            }
        }
    };
    match serde_json::to_vec(&answer) {
        Ok(bytes) => {
            if let Err(e) = stream.write_all(&bytes).await {
                tracing::warn!("admin channel: cannot answer: {e}");
            }
            let _ = stream.shutdown().await;
        }
        Err(e) => tracing::warn!("admin channel: cannot encode an answer: {e}"),
    }
}
