//! Scenario files: a world described in TOML (hierarchy roots, datastores, storage profiles,
//! templates, VMs with their disks and power state, backup jobs with how many restore points
//! and how much changes between them, accounts with roles and scopes), built by
//! `emrest demo --scenario FILE`. The built-in demo is one such file
//! (`docs/scenarios/demo.toml`, compiled in). The format is documented in `docs/scenarios.md`.
//!
//! A file is checked whole before anything is created: a syntax error, an unknown key, a job
//! naming a VM that no root has, two VMs of one name... each is refused with its line.

use crate::error::{CoreError, CoreResult};
use crate::model::{now_millis, BackupServerRecord};
use crate::security::{EnterpriseRole, ScopeItem};
use crate::Owner;
use emrest_platform::{DiskInfo, PlatformKind, PowerState, VmKey};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use toml::Spanned;
use uuid::Uuid;

/// The built-in demo world.
pub const DEMO: &str = include_str!("../../../docs/scenarios/demo.toml");

/// A scenario, as read from its file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    #[serde(default)]
    backup_server: BackupServer,
    /// Size of a disk that gives none (`--disk-size` when absent here).
    disk_size: Option<Spanned<String>>,
    #[serde(default, rename = "roots")]
    roots: Vec<Root>,
    #[serde(default)]
    jobs: Vec<Job>,
    #[serde(default)]
    accounts: Vec<Account>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BackupServer {
    name: String,
    #[serde(default = "default_server_description")]
    description: String,
}

fn default_server_description() -> String {
    "emrest backup server".into()
}

impl Default for BackupServer {
    fn default() -> Self {
        BackupServer {
            name: "backup01.lab.local".into(),
            description: default_server_description(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Root {
    name: Spanned<String>,
    platform: Spanned<String>,
    #[serde(default = "default_datastores")]
    datastores: Vec<String>,
    #[serde(default)]
    storage_profiles: Vec<String>,
    #[serde(default)]
    templates: Vec<String>,
    #[serde(default)]
    vms: Vec<Vm>,
}

fn default_datastores() -> Vec<String> {
    vec!["datastore1".into()]
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Vm {
    /// The name; with `count`, `{n}` in it is replaced by 1, 2, ... (zero-padded to the width
    /// of `count`).
    name: Spanned<String>,
    #[serde(default = "one")]
    count: u32,
    /// How many disks of the default size.
    disks: Option<u32>,
    /// Or the size of each disk (`64M`, `1G`, `4096`).
    disk_sizes: Option<Vec<Spanned<String>>>,
    /// Default: the root's first datastore.
    datastore: Option<Spanned<String>>,
    #[serde(default)]
    power: Power,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Default, Deserialize, Clone, Copy)]
enum Power {
    #[default]
    PoweredOn,
    PoweredOff,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Job {
    name: Spanned<String>,
    /// VM names (of one platform); a name ending in `*` takes every VM whose name starts so.
    vms: Vec<Spanned<String>>,
    #[serde(default = "default_retention")]
    retention: u32,
    /// Runs made, one a day, the last one now: each run makes a restore point of every VM.
    #[serde(default = "one")]
    points: u32,
    /// Percent of each disk's 4 KiB blocks changed before each run after the first.
    #[serde(default = "default_change")]
    change_percent: f64,
    #[serde(default = "default_job_description")]
    description: String,
}

fn default_retention() -> u32 {
    crate::jobs::DEFAULT_RETENTION
}

fn default_change() -> f64 {
    2.0
}

fn default_job_description() -> String {
    "Created by emrest demo".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Account {
    name: Spanned<String>,
    roles: Vec<Spanned<String>>,
    /// VM or hierarchy root names; none lets the account restore every VM.
    #[serde(default)]
    scopes: Vec<Spanned<String>>,
    /// A password for a test world (a file is no place for a real one: see `password_env`).
    password: Option<String>,
    /// The environment variable holding the password.
    password_env: Option<Spanned<String>>,
}

/// Why a scenario was refused: the line (1-based) when the problem has one.
#[derive(Debug)]
pub struct ScenarioError {
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// A VM as the scenario makes it.
struct PlannedVm {
    root: usize,
    name: String,
    disks: Vec<u64>,
    datastore: String,
    power: PowerState,
}

/// What a checked scenario builds, in creation order.
pub struct Plan {
    scenario: Scenario,
    vms: Vec<PlannedVm>,
    /// The VMs of each job, as indexes into `vms`.
    job_vms: Vec<Vec<usize>>,
    kinds: Vec<PlatformKind>,
    passwords: Vec<Option<String>>,
}

fn size_of(text: &str) -> Option<u64> {
    let t = text.trim();
    let (num, mult) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => {
            let mult = match t[i..].to_ascii_uppercase().as_str() {
                "K" | "KB" | "KIB" => 1u64 << 10,
                "M" | "MB" | "MIB" => 1 << 20,
                "G" | "GB" | "GIB" => 1 << 30,
                _ => return None,
            };
            (&t[..i], mult)
        }
        None => (t, 1),
    };
    num.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|n| *n > 0 && n.is_multiple_of(4096))
}

impl Scenario {
    /// Read a scenario and check it whole; `disk_size` is the default disk size, `env` reads
    /// the environment variables `password_env` names.
    pub fn parse(
        text: &str,
        disk_size: u64,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Plan, ScenarioError> {
        let scenario: Scenario = toml::from_str(text).map_err(|e| ScenarioError {
            line: e.span().map(|s| line_of(text, s.start)),
            message: e.message().trim().to_string(),
        })?;
        scenario.check(text, disk_size, env)
    }

    fn check(
        self,
        text: &str,
        default_size: u64,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Plan, ScenarioError> {
        let at = |span: std::ops::Range<usize>, message: String| ScenarioError {
            line: Some(line_of(text, span.start)),
            message,
        };
        let default_size = match &self.disk_size {
            Some(s) => size_of(s.get_ref()).ok_or_else(|| {
                at(
                    s.span(),
                    format!(
                        "disk_size '{}' is not a positive multiple of 4096 bytes (e.g. 64M)",
                        s.get_ref()
                    ),
                )
            })?,
            None => default_size,
        };
        let mut kinds = Vec::new();
        let mut vms: Vec<PlannedVm> = Vec::new();
        let mut root_names = HashSet::new();
        for (ri, r) in self.roots.iter().enumerate() {
            let kind = PlatformKind::from_wire_platform(r.platform.get_ref()).ok_or_else(|| {
                at(
                    r.platform.span(),
                    format!(
                        "platform '{}' is not one of VMware, HyperV, vCloud",
                        r.platform.get_ref()
                    ),
                )
            })?;
            if !root_names.insert(r.name.get_ref().to_lowercase()) {
                return Err(at(
                    r.name.span(),
                    format!("a second root named '{}'", r.name.get_ref()),
                ));
            }
            if r.datastores.is_empty() {
                return Err(at(
                    r.name.span(),
                    format!("root '{}' has no datastore", r.name.get_ref()),
                ));
            }
            if kind != PlatformKind::VCloud && !(r.storage_profiles.is_empty()) {
                return Err(at(
                    r.name.span(),
                    format!(
                        "storage_profiles are for vCloud roots only ('{}' is {})",
                        r.name.get_ref(),
                        kind.wire_platform()
                    ),
                ));
            }
            if kind == PlatformKind::HyperV && !r.templates.is_empty() {
                return Err(at(r.name.span(), "a HyperV root has no templates".into()));
            }
            kinds.push(kind);
            let mut names = HashSet::new();
            for v in &r.vms {
                let sizes = match (&v.disks, &v.disk_sizes) {
                    (Some(_), Some(_)) => {
                        return Err(at(v.name.span(), "give disks or disk_sizes, not both".into()))
                    }
                    (Some(n), None) => vec![default_size; *n as usize],
                    (None, Some(list)) => list
                        .iter()
                        .map(|s| {
                            size_of(s.get_ref()).ok_or_else(|| {
                                at(s.span(), format!("disk size '{}' is not a positive multiple of 4096 bytes (e.g. 64M)", s.get_ref()))
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                    (None, None) => vec![default_size],
                };
                if sizes.is_empty() {
                    return Err(at(
                        v.name.span(),
                        format!("VM '{}' has no disk", v.name.get_ref()),
                    ));
                }
                let datastore = match &v.datastore {
                    Some(d) if r.datastores.contains(d.get_ref()) => d.get_ref().clone(),
                    Some(d) => {
                        return Err(at(
                            d.span(),
                            format!(
                                "root '{}' has no datastore '{}'",
                                r.name.get_ref(),
                                d.get_ref()
                            ),
                        ))
                    }
                    None => r.datastores[0].clone(),
                };
                if v.count == 0 || (v.count > 1 && !v.name.get_ref().contains("{n}")) {
                    return Err(at(
                        v.name.span(),
                        "count needs a name with {n} in it, and is at least 1".into(),
                    ));
                }
                let width = v.count.to_string().len();
                for n in 1..=v.count {
                    let name = v.name.get_ref().replace("{n}", &format!("{n:0width$}"));
                    if name.trim().is_empty() {
                        return Err(at(v.name.span(), "a VM needs a name".into()));
                    }
                    if !names.insert(name.to_lowercase()) {
                        return Err(at(
                            v.name.span(),
                            format!("a second VM named '{name}' on root '{}'", r.name.get_ref()),
                        ));
                    }
                    vms.push(PlannedVm {
                        root: ri,
                        name,
                        disks: sizes.clone(),
                        datastore: datastore.clone(),
                        power: match v.power {
                            Power::PoweredOn => PowerState::PoweredOn,
                            Power::PoweredOff => PowerState::PoweredOff,
                        },
                    });
                }
            }
        }
        let mut job_vms = Vec::new();
        let mut job_names = HashSet::new();
        for j in &self.jobs {
            if !job_names.insert(j.name.get_ref().to_lowercase()) {
                return Err(at(
                    j.name.span(),
                    format!("a second job named '{}'", j.name.get_ref()),
                ));
            }
            if j.points == 0 {
                return Err(at(j.name.span(), "points is at least 1".into()));
            }
            if !(0.0..=100.0).contains(&j.change_percent) {
                return Err(at(
                    j.name.span(),
                    "change_percent is between 0 and 100".into(),
                ));
            }
            let mut chosen: Vec<usize> = Vec::new();
            for pattern in &j.vms {
                let p = pattern.get_ref();
                let matches: Vec<usize> = vms
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| match p.strip_suffix('*') {
                        Some(prefix) => v.name.starts_with(prefix),
                        None => v.name.eq_ignore_ascii_case(p),
                    })
                    .map(|(i, _)| i)
                    .collect();
                if matches.is_empty() {
                    return Err(at(pattern.span(), format!("no VM named '{p}'")));
                }
                if p.strip_suffix('*').is_none() && matches.len() > 1 {
                    return Err(at(
                        pattern.span(),
                        format!("'{p}' names VMs on several roots; a job backs up VMs of one root kind, name them by a prefix*"),
                    ));
                }
                chosen.extend(
                    matches
                        .into_iter()
                        .filter(|i| !chosen.contains(i))
                        .collect::<Vec<_>>(),
                );
            }
            let platforms: HashSet<PlatformKind> =
                chosen.iter().map(|&i| kinds[vms[i].root]).collect();
            if platforms.len() > 1 {
                return Err(at(
                    j.name.span(),
                    format!(
                        "job '{}' mixes platforms: a job backs up VMs of one platform",
                        j.name.get_ref()
                    ),
                ));
            }
            job_vms.push(chosen);
        }
        let mut passwords = Vec::new();
        let mut account_names = HashSet::new();
        for a in &self.accounts {
            if !account_names.insert(a.name.get_ref().to_lowercase()) {
                return Err(at(
                    a.name.span(),
                    format!("a second account named '{}'", a.name.get_ref()),
                ));
            }
            if a.roles.is_empty() {
                return Err(at(
                    a.name.span(),
                    format!("account '{}' has no role", a.name.get_ref()),
                ));
            }
            for r in &a.roles {
                if EnterpriseRole::parse(r.get_ref()).is_none() {
                    return Err(at(r.span(), format!("unknown role '{}'", r.get_ref())));
                }
            }
            for s in &a.scopes {
                let known = vms.iter().any(|v| v.name.eq_ignore_ascii_case(s.get_ref()))
                    || self
                        .roots
                        .iter()
                        .any(|r| r.name.get_ref().eq_ignore_ascii_case(s.get_ref()));
                if !known {
                    return Err(at(
                        s.span(),
                        format!("no VM or root named '{}' to scope to", s.get_ref()),
                    ));
                }
            }
            let password = match (&a.password, &a.password_env) {
                (Some(_), Some(e)) => {
                    return Err(at(
                        e.span(),
                        "give password or password_env, not both".into(),
                    ))
                }
                (Some(p), None) => Some(p.clone()),
                (None, Some(var)) => Some(env(var.get_ref()).ok_or_else(|| {
                    at(
                        var.span(),
                        format!("the environment variable {} is not set", var.get_ref()),
                    )
                })?),
                (None, None) => None,
            };
            if password.as_deref() == Some("") {
                return Err(at(a.name.span(), "an empty password".into()));
            }
            passwords.push(password);
        }
        Ok(Plan {
            scenario: self,
            vms,
            job_vms,
            kinds,
            passwords,
        })
    }
}

/// The 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn io(context: &str) -> impl Fn(std::io::Error) -> CoreError + '_ {
    move |e| CoreError::Internal(format!("{context}: {e}"))
}

/// Run a job to the end; a failed run fails the scenario.
fn run_to_end(core: &Owner, job: Uuid, at: crate::model::Millis) -> CoreResult<()> {
    let s = core.jobs().run_job_now(job, at)?;
    if s.result != crate::model::SessionResult::Success {
        return Err(CoreError::Internal(format!(
            "backup job '{}' failed: {}",
            s.job_name,
            s.failure_message.unwrap_or_default()
        )));
    }
    Ok(())
}

const DAY_MS: i64 = 24 * 3600 * 1000;

impl Plan {
    /// How many VMs it makes.
    pub fn vm_count(&self) -> usize {
        self.vms.len()
    }

    /// Build the world into an empty data folder. Disks are filled and changed from seeds
    /// counted in creation order, so a scenario always gives the same bytes.
    pub(crate) fn build(&self, core: &Owner) -> CoreResult<()> {
        let s = &self.scenario;
        let server = BackupServerRecord {
            id: Uuid::new_v4(),
            name: s.backup_server.name.clone(),
            description: s.backup_server.description.clone(),
            port: 9392,
            version: env!("CARGO_PKG_VERSION").into(),
        };
        core.catalog().insert_backup_server(&server)?;
        let inv = core.inventory();
        let mut seed = 1u64;
        let mut keys: Vec<VmKey> = Vec::with_capacity(self.vms.len());
        let mut refs: HashMap<String, String> = HashMap::new();
        for (ri, r) in s.roots.iter().enumerate() {
            let kind = self.kinds[ri];
            let root = inv.create_root(Uuid::new_v4(), r.name.get_ref(), kind)?;
            refs.insert(
                r.name.get_ref().to_lowercase(),
                emrest_platform::hierarchy_obj_ref(
                    kind,
                    kind.root_type(),
                    root.id,
                    &root.id.to_string(),
                ),
            );
            let mut datastores = HashMap::new();
            for d in &r.datastores {
                let ds = inv.add_datastore(root.id, d, None)?;
                datastores.insert(d.clone(), ds.object_ref);
            }
            for p in &r.storage_profiles {
                inv.add_storage_profile(root.id, p)?;
            }
            for t in &r.templates {
                inv.add_template(root.id, t)?;
            }
            for v in self.vms.iter().filter(|v| v.root == ri) {
                let disks: Vec<DiskInfo> = v
                    .disks
                    .iter()
                    .enumerate()
                    .map(|(i, &size)| DiskInfo {
                        name: format!("disk-{i}"),
                        size,
                    })
                    .collect();
                let datastore = datastores.get(&v.datastore).cloned().unwrap_or_default();
                let vm = inv.create_vm(root.id, &datastore, &v.name, &disks, v.power)?;
                for d in &disks {
                    let f = inv.open_disk(&vm.key(), &d.name, true)?;
                    crate::demo::fill_disk(&f, d.size, seed).map_err(io("writing a disk"))?;
                    f.sync_all().map_err(io("flushing a disk"))?;
                    seed += 1;
                }
                refs.insert(v.name.to_lowercase(), vm.hierarchy_obj_ref());
                keys.push(vm.key());
            }
            core.catalog().insert_hierarchy_root(root.id, server.id)?;
        }
        let mut jobs = Vec::new();
        for (j, members) in s.jobs.iter().zip(&self.job_vms) {
            let vm_refs = members
                .iter()
                .map(|&i| inv.vm(&keys[i]).map(|vm| vm.hierarchy_obj_ref()))
                .collect::<Result<Vec<_>, _>>()?;
            let job =
                core.jobs()
                    .create_job(j.name.get_ref(), &vm_refs, j.retention, &j.description)?;
            jobs.push(job.id);
        }
        // Run by run: the first run of every job, then each later run after its VMs changed.
        let runs = s.jobs.iter().map(|j| j.points).max().unwrap_or(0);
        let now = now_millis();
        for run in 0..runs {
            for ((j, members), id) in s.jobs.iter().zip(&self.job_vms).zip(&jobs) {
                let skip = runs.saturating_sub(j.points);
                if run < skip {
                    continue;
                }
                if run > skip {
                    for &i in members {
                        let vm = inv.vm(&keys[i])?;
                        for d in &vm.disks {
                            crate::demo::scribble_tracked(
                                inv,
                                &keys[i],
                                &d.name,
                                d.size,
                                j.change_percent,
                                seed,
                            )?;
                            seed += 1;
                        }
                    }
                }
                let at = now - i64::from(runs - 1 - run) * DAY_MS;
                run_to_end(core, *id, at)?;
            }
        }
        for (a, password) in s.accounts.iter().zip(&self.passwords) {
            let roles = a
                .roles
                .iter()
                .filter_map(|r| EnterpriseRole::parse(r.get_ref()))
                .collect();
            let scopes = a
                .scopes
                .iter()
                .map(|n| ScopeItem {
                    obj_ref: refs.get(&n.get_ref().to_lowercase()).cloned(),
                    name: Some(n.get_ref().clone()),
                })
                .collect();
            core.add_scenario_account(a.name.get_ref(), password.as_deref(), roles, scopes)?;
        }
        Ok(())
    }
}

impl Owner {
    /// An account of a scenario: with a password or none (like one made through the API).
    fn add_scenario_account(
        &self,
        name: &str,
        password: Option<&str>,
        roles: Vec<EnterpriseRole>,
        scopes: Vec<ScopeItem>,
    ) -> CoreResult<Uuid> {
        let spec = crate::security::AccountSpec {
            name: name.to_string(),
            account_type: crate::security::AccountType::User,
            roles,
            allow_restore_all_vms: scopes.is_empty(),
            scopes,
            flr: None,
            sql: None,
            password_hash: password.map(crate::auth::hash_password).transpose()?,
        };
        self.create_account_as(crate::audit::LOCAL, &spec)
    }

    /// Build the world of a checked scenario, unless the catalog already has a backup server
    /// (then nothing changes).
    pub fn create_world(&self, plan: &Plan) -> CoreResult<crate::demo::DemoSummary> {
        if !self.infrastructure().backup_servers()?.is_empty() {
            return Ok(crate::demo::DemoSummary {
                created: false,
                vms: self.inventory().vms()?.len(),
                restore_points: self.view().vm_restore_points(None)?.len(),
            });
        }
        plan.build(self)?;
        Ok(crate::demo::DemoSummary {
            created: true,
            vms: self.inventory().vms()?.len(),
            restore_points: self.view().vm_restore_points(None)?.len(),
        })
    }
}
