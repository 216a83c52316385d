//! Fault injection, for people who test restore automation against emrest: rules that make the
//! next restore of a VM fail at 60%, a task hang until cancelled, every third poll of a task
//! answer 503, a session expire, a logon take five seconds.
//!
//! Off unless the server is started with `--allow-faults` ([`Faults::allow`]); rules live in the
//! server's memory and end with it. A rule names an operation ([`Operation`]), optionally a VM
//! and an account, when it fires ([`Fire`]) and what happens ([`Effect`]). The effects on
//! tasks go through the engines' own failure and cancel paths (the engine is asked to stop, and
//! stops as for any failure: nothing of the VM changed, staged disks discarded, a backup run's
//! new indexes dropped), so a fault never damages data that a real failure would not. The
//! effects on requests (a status, a delay, a hang, a dropped connection, an expired session)
//! are the server's (server/src/api/faults.rs); this module decides which rule fires.

use crate::error::{CoreError, CoreResult};
use crate::model::{now_millis, Millis};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The most rules one server holds.
pub const MAX_RULES: usize = 256;
/// The longest delay or stall a rule may ask for (an hour).
pub const MAX_MILLIS: u64 = 3_600_000;
/// The longest message a rule may carry, in characters.
pub const MAX_MESSAGE: usize = 1024;

/// Which restores a rule matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestoreMode {
    /// Restores that write every disk (QuickRollback false).
    Full,
    /// Restores with QuickRollback.
    QuickRollback,
}

impl RestoreMode {
    /// The spelling on the wire and in the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            RestoreMode::Full => "Full",
            RestoreMode::QuickRollback => "QuickRollback",
        }
    }
}

/// What a rule matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operation {
    /// A restore task, of either mode unless one is named.
    Restore(Option<RestoreMode>),
    /// A run of a backup job (its VM filter matches a job that includes the VM).
    Backup,
    /// A logon (`POST /api/sessionMngr`); its account filter is the user name logging on.
    Logon,
    /// An API request by route template (`/tasks/{ID}`, as `docs/openapi.json` names it without
    /// `/api`) and, when given, method.
    Request {
        method: Option<String>,
        route: String,
    },
}

impl Operation {
    /// Whether the effects of this operation are a task's (else a request's).
    pub fn is_task(&self) -> bool {
        matches!(self, Operation::Restore(_) | Operation::Backup)
    }

    /// The name on the wire and in the CLI.
    pub fn name(&self) -> &'static str {
        match self {
            Operation::Restore(_) => "Restore",
            Operation::Backup => "Backup",
            Operation::Logon => "Logon",
            Operation::Request { .. } => "Request",
        }
    }
}

/// When a matching rule fires.
#[derive(Clone, Debug, PartialEq)]
pub enum Fire {
    /// Every time.
    Always,
    /// The first N matches, then no more.
    First(u64),
    /// Every Nth match (the Nth, the 2Nth, ...).
    Every(u64),
    /// With this probability per match, drawn from a generator seeded with `seed`: the same
    /// seed gives the same sequence of firings.
    Chance { probability: f64, seed: u64 },
}

/// What happens when a rule fires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// The task fails when its progress reaches `percent` (or, for work that reaches the point
    /// of changing its target before that, right before it changes it), with `message` as its
    /// result: the task Finished with Success false, the session Failed, the target as any
    /// failed run leaves it.
    Fail { percent: u8, message: String },
    /// The task waits this long before it starts working; the request is answered this late.
    Delay { millis: u64 },
    /// The task waits until it is cancelled (or the rule removed, then goes on); the request is
    /// not answered until the client gives up (or the rule is removed).
    Hang,
    /// The task's progress stops at `percent` for `millis` (until cancelled when `None`).
    Stall { percent: u8, millis: Option<u64> },
    /// The request is answered this status with an Error body carrying `message`.
    Status { code: u16, message: String },
    /// The connection is closed half way through the response.
    Drop,
    /// The caller's logon session ends before the request is served (it gets the 401 of an
    /// expired session).
    ExpireSession,
}

impl Effect {
    /// The name on the wire and in the CLI.
    pub fn name(&self) -> &'static str {
        match self {
            Effect::Fail { .. } => "Fail",
            Effect::Delay { .. } => "Delay",
            Effect::Hang => "Hang",
            Effect::Stall { .. } => "Stall",
            Effect::Status { .. } => "Status",
            Effect::Drop => "Drop",
            Effect::ExpireSession => "ExpireSession",
        }
    }
}

/// A rule as asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultSpec {
    pub operation: Operation,
    /// Only tasks on the VM of this name (restores: the point's VM; backups: a job including it).
    pub vm: Option<String>,
    /// Only work started by this account (logons: the user name logging on).
    pub account: Option<String>,
    pub fire: Fire,
    pub effect: Effect,
}

impl FaultSpec {
    /// Refuses a rule that could never fire or makes no sense, naming the member at fault.
    pub fn check(&self) -> CoreResult<()> {
        let task = self.operation.is_task();
        match (&self.effect, task) {
            (Effect::Fail { .. } | Effect::Stall { .. }, false) => {
                return Err(member(
                    "Effect",
                    format!(
                        "{} applies to tasks (Operation Restore or Backup), not to {}",
                        self.effect.name(),
                        self.operation.name()
                    ),
                ))
            }
            (Effect::Status { .. } | Effect::Drop | Effect::ExpireSession, true) => {
                return Err(member(
                    "Effect",
                    format!(
                        "{} applies to requests (Operation Logon or Request), not to {} tasks",
                        self.effect.name(),
                        self.operation.name()
                    ),
                ))
            }
            _ => {}
        }
        if self.operation == Operation::Logon && self.effect == Effect::ExpireSession {
            return Err(member(
                "Effect",
                "a logon has no session to expire yet: match the requests after it (Operation Request)",
            ));
        }
        if self.vm.is_some() && !task {
            return Err(member(
                "VmName",
                "a VM filter applies to restore and backup tasks, not to requests",
            ));
        }
        if let Operation::Request { route, method } = &self.operation {
            if !route.starts_with('/') {
                return Err(member(
                    "Route",
                    format!("'{route}' is not a route template: write it as docs/openapi.json does, e.g. /tasks/{{ID}}"),
                ));
            }
            if let Some(m) = method {
                if !["GET", "POST", "PUT", "DELETE"].contains(&m.as_str()) {
                    return Err(member(
                        "Method",
                        format!("'{m}' is not GET, POST, PUT or DELETE"),
                    ));
                }
            }
        }
        match &self.effect {
            Effect::Fail { percent, message } => {
                check_percent(*percent)?;
                check_message(message)?;
            }
            Effect::Stall { percent, millis } => {
                check_percent(*percent)?;
                if let Some(ms) = millis {
                    check_millis(*ms)?;
                }
            }
            Effect::Delay { millis } => check_millis(*millis)?,
            Effect::Status { code, message } => {
                if !(400..=599).contains(code) {
                    return Err(member(
                        "StatusCode",
                        format!("{code} is not an error status (400 to 599)"),
                    ));
                }
                check_message(message)?;
            }
            Effect::Hang | Effect::Drop | Effect::ExpireSession => {}
        }
        match self.fire {
            Fire::Always => {}
            Fire::First(0) | Fire::Every(0) => return Err(member("Count", "must be at least 1")),
            Fire::First(_) | Fire::Every(_) => {}
            Fire::Chance { probability, .. } => {
                if !(probability > 0.0 && probability <= 1.0) {
                    return Err(member(
                        "Probability",
                        format!("{probability} is not a probability above 0 and at most 1"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A 400 naming the member of the rule at fault, in its message too.
fn member(name: &str, message: impl Into<String>) -> CoreError {
    CoreError::invalid(
        name,
        format!("Invalid FaultRuleSpec: {name}: {}", message.into()),
    )
}

fn check_percent(p: u8) -> CoreResult<()> {
    if p > 99 {
        return Err(member(
            "Percent",
            format!("{p} is past the last progress a running task shows (0 to 99)"),
        ));
    }
    Ok(())
}

fn check_millis(ms: u64) -> CoreResult<()> {
    if ms > MAX_MILLIS {
        return Err(member(
            "DelayMs",
            format!("{ms} ms is longer than an hour ({MAX_MILLIS} ms)"),
        ));
    }
    Ok(())
}

fn check_message(m: &str) -> CoreResult<()> {
    if m.chars().count() > MAX_MESSAGE {
        return Err(member(
            "Message",
            format!("the message is longer than {MAX_MESSAGE} characters"),
        ));
    }
    Ok(())
}

/// A rule in force, with its counters.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultRule {
    pub id: Uuid,
    pub spec: FaultSpec,
    /// Who added it (an account name, or `uid N` for the admin channel).
    pub created_by: String,
    pub created: Millis,
    /// Times it matched.
    pub matched: u64,
    /// Times it fired.
    pub fired: u64,
}

/// Something that may be faulted.
#[derive(Clone, Copy, Debug)]
pub enum Event<'a> {
    /// A restore about to start.
    Restore {
        mode: RestoreMode,
        vm: &'a str,
        account: &'a str,
    },
    /// A backup job run about to start, over these VMs.
    Backup {
        vms: &'a [&'a str],
        account: &'a str,
    },
    /// An API request: its method, its route template (without `/api`) and the account of its
    /// session (logons: the user name logging on), when known.
    Request {
        method: &'a str,
        route: &'a str,
        account: Option<&'a str>,
    },
}

/// The route of a logon.
pub const LOGON_ROUTE: &str = "/sessionMngr";

struct Slot {
    rule: FaultRule,
    /// The generator of `Fire::Chance` (splitmix64).
    rng: u64,
}

impl Slot {
    fn matches(&self, event: &Event<'_>) -> bool {
        let spec = &self.rule.spec;
        let same = |want: &Option<String>, have: Option<&str>| match (want, have) {
            (None, _) => true,
            (Some(w), Some(h)) => w.eq_ignore_ascii_case(h),
            (Some(_), None) => false,
        };
        match (&spec.operation, event) {
            (Operation::Restore(want), Event::Restore { mode, vm, account }) => {
                want.is_none_or(|w| w == *mode)
                    && same(&spec.vm, Some(vm))
                    && same(&spec.account, Some(account))
            }
            (Operation::Backup, Event::Backup { vms, account }) => {
                spec.vm
                    .as_ref()
                    .is_none_or(|w| vms.iter().any(|v| w.eq_ignore_ascii_case(v)))
                    && same(&spec.account, Some(account))
            }
            (
                Operation::Logon,
                Event::Request {
                    method,
                    route,
                    account,
                },
            ) => {
                *method == "POST"
                    && route.eq_ignore_ascii_case(LOGON_ROUTE)
                    && same(&spec.account, *account)
            }
            (
                Operation::Request {
                    method: want_method,
                    route: want_route,
                },
                Event::Request {
                    method,
                    route,
                    account,
                },
            ) => {
                want_method.as_deref().is_none_or(|m| m == *method)
                    && want_route.eq_ignore_ascii_case(route)
                    && same(&spec.account, *account)
            }
            _ => false,
        }
    }

    /// Counts a match and says whether the rule fires on it.
    fn fires(&mut self) -> bool {
        self.rule.matched += 1;
        let fire = match self.rule.spec.fire {
            Fire::Always => true,
            Fire::First(n) => self.rule.fired < n,
            Fire::Every(n) => self.rule.matched.is_multiple_of(n),
            Fire::Chance { probability, .. } => {
                // splitmix64, then the top 53 bits as a fraction of 1.
                self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = self.rng;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^= z >> 31;
                ((z >> 11) as f64 / (1u64 << 53) as f64) < probability
            }
        };
        if fire {
            self.rule.fired += 1;
        }
        fire
    }
}

/// A rule that fired on a task, carried by the task's [`crate::restore::RunControl`].
#[derive(Debug)]
pub struct TaskFault {
    pub rule: Uuid,
    pub effect: Effect,
    /// Set once a `Fail` has fired: the task is ending with the rule's message.
    failed: AtomicBool,
    /// Set once a `Stall` has stalled.
    stalled: AtomicBool,
    /// Set while a `Stall` stalls: the run's other workers wait too.
    stalling: AtomicBool,
}

impl TaskFault {
    fn new(rule: Uuid, effect: Effect) -> TaskFault {
        TaskFault {
            rule,
            effect,
            failed: AtomicBool::new(false),
            stalled: AtomicBool::new(false),
            stalling: AtomicBool::new(false),
        }
    }

    /// The message of a `Fail` that has fired.
    pub fn failure(&self) -> Option<&str> {
        match &self.effect {
            Effect::Fail { message, .. } if self.failed.load(Ordering::SeqCst) => Some(message),
            _ => None,
        }
    }

    /// At `percent` done (`commit`: the work is about to change its target), whether the task
    /// must stop now as failed; stalls first when a `Stall` is due, until `cancelled` says
    /// stop. `reached` raises the shown progress to the rule's percent when it fires.
    pub(crate) fn check(
        &self,
        percent: u8,
        commit: bool,
        cancelled: &dyn Fn() -> bool,
        reached: &dyn Fn(u8),
    ) -> bool {
        match &self.effect {
            Effect::Fail { percent: at, .. } => {
                if self.failed.load(Ordering::SeqCst) {
                    return true;
                }
                if percent >= *at || commit {
                    reached(*at);
                    self.failed.store(true, Ordering::SeqCst);
                    return true;
                }
                false
            }
            Effect::Stall {
                percent: at,
                millis,
            } => {
                if (percent >= *at || commit) && !self.stalled.swap(true, Ordering::SeqCst) {
                    self.stalling.store(true, Ordering::SeqCst);
                    reached(*at);
                    let until = millis.map(|ms| Instant::now() + Duration::from_millis(ms));
                    while !cancelled() && until.is_none_or(|u| Instant::now() < u) {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    self.stalling.store(false, Ordering::SeqCst);
                }
                // The run's other workers hold still while one stalls.
                while self.stalling.load(Ordering::SeqCst) && !cancelled() {
                    std::thread::sleep(Duration::from_millis(10));
                }
                false
            }
            _ => false,
        }
    }
}

/// The rules of a server, and whether it takes any.
#[derive(Default)]
pub struct Faults {
    allowed: AtomicBool,
    slots: Mutex<Vec<Slot>>,
    /// Rules that match requests: requests skip the table while there are none.
    request_rules: AtomicUsize,
}

impl Faults {
    /// Takes rules from now on (`serve --allow-faults`).
    pub fn allow(&self) {
        self.allowed.store(true, Ordering::SeqCst);
    }

    /// Whether rules are taken.
    pub fn allowed(&self) -> bool {
        self.allowed.load(Ordering::SeqCst)
    }

    fn refuse_unless_allowed(&self) -> CoreResult<()> {
        if self.allowed() {
            Ok(())
        } else {
            Err(CoreError::Forbidden(
                "Fault injection is off on this server: start it with --allow-faults".into(),
            ))
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Slot>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn recount(&self, slots: &[Slot]) {
        let n = slots
            .iter()
            .filter(|s| !s.rule.spec.operation.is_task())
            .count();
        self.request_rules.store(n, Ordering::SeqCst);
    }

    /// Adds a rule (checked), made by `by`.
    pub(crate) fn add(&self, spec: FaultSpec, by: &str) -> CoreResult<FaultRule> {
        self.refuse_unless_allowed()?;
        spec.check()?;
        let mut slots = self.lock();
        if slots.len() >= MAX_RULES {
            return Err(CoreError::Conflict(format!(
                "{MAX_RULES} fault rules are in force, as many as a server holds: remove some first"
            )));
        }
        // Only `Chance` draws from the generator.
        let seed = match spec.fire {
            Fire::Chance { seed, .. } => seed,
            _ => 0,
        };
        let rule = FaultRule {
            id: Uuid::new_v4(),
            spec,
            created_by: by.to_string(),
            created: now_millis(),
            matched: 0,
            fired: 0,
        };
        slots.push(Slot {
            rule: rule.clone(),
            rng: seed,
        });
        self.recount(&slots);
        Ok(rule)
    }

    /// The rules in force, oldest first.
    pub(crate) fn list(&self) -> CoreResult<Vec<FaultRule>> {
        self.refuse_unless_allowed()?;
        Ok(self.lock().iter().map(|s| s.rule.clone()).collect())
    }

    /// Removes one rule; `false` when there is none of that ID.
    pub(crate) fn remove(&self, id: Uuid) -> CoreResult<bool> {
        self.refuse_unless_allowed()?;
        let mut slots = self.lock();
        let before = slots.len();
        slots.retain(|s| s.rule.id != id);
        self.recount(&slots);
        Ok(slots.len() < before)
    }

    /// Removes every rule; returns how many there were.
    pub(crate) fn clear(&self) -> CoreResult<usize> {
        self.refuse_unless_allowed()?;
        let mut slots = self.lock();
        let n = slots.len();
        slots.clear();
        self.recount(&slots);
        Ok(n)
    }

    /// Whether the rule is still in force (a hang waits while it is).
    pub fn in_force(&self, id: Uuid) -> bool {
        self.lock().iter().any(|s| s.rule.id == id)
    }

    /// Whether any rule may match a request: the server looks up a request's account only then.
    pub fn watches_requests(&self) -> bool {
        self.request_rules.load(Ordering::Relaxed) > 0
    }

    /// The first rule (oldest first) that matches `event` and fires on it. Every matching rule
    /// before it counts the match.
    pub fn fire(&self, event: &Event<'_>) -> Option<(Uuid, Effect)> {
        if !self.allowed() {
            return None;
        }
        let mut slots = self.lock();
        for slot in slots.iter_mut() {
            if slot.matches(event) && slot.fires() {
                tracing::info!(
                    "fault rule {} fired: {} on {:?}",
                    slot.rule.id,
                    slot.rule.spec.effect.name(),
                    event
                );
                return Some((slot.rule.id, slot.rule.spec.effect.clone()));
            }
        }
        None
    }

    /// [`Faults::fire`] for a task: the fault goes into its run control, for the engine.
    pub(crate) fn fire_task(&self, event: &Event<'_>, ctl: &crate::restore::RunControl) {
        if let Some((rule, effect)) = self.fire(event) {
            let _ = ctl.fault.set(Arc::new(TaskFault::new(rule, effect)));
        }
    }

    /// Before a task starts working: waits out a `Delay`, or a `Hang` until `cancelled` says
    /// stop or the rule is removed.
    pub(crate) fn before_work(&self, fault: &TaskFault, cancelled: &dyn Fn() -> bool) {
        let until = match &fault.effect {
            Effect::Delay { millis } => Some(Instant::now() + Duration::from_millis(*millis)),
            Effect::Hang => None,
            _ => return,
        };
        while !cancelled()
            && until.is_none_or(|u| Instant::now() < u)
            && (until.is_some() || self.in_force(fault.rule))
        {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Who changes the rules: an API caller (an administrator), or the admin channel's peer.
#[derive(Clone, Copy)]
pub enum Who<'a> {
    Caller(&'a crate::model::Caller),
    /// The admin channel (`emrest fault`), named by its peer (`uid 0`).
    Local(&'a str),
}

impl<'a> Who<'a> {
    fn actor(self) -> crate::audit::Actor<'a> {
        match self {
            Who::Caller(c) => c.into(),
            Who::Local(user) => crate::audit::Actor {
                user,
                address: None,
            },
        }
    }

    fn name(self) -> &'a str {
        match self {
            Who::Caller(c) => &c.user_name,
            Who::Local(user) => user,
        }
    }
}

impl FaultSpec {
    /// One line for logs and the audit log: `Restore(QuickRollback) VM web-01: Fail at 60%`.
    pub fn describe(&self) -> String {
        let mut s = match &self.operation {
            Operation::Restore(Some(m)) => format!("Restore({})", m.as_str()),
            Operation::Request { method, route } => {
                format!("Request {} {route}", method.as_deref().unwrap_or("*"))
            }
            op => op.name().to_string(),
        };
        if let Some(vm) = &self.vm {
            s.push_str(&format!(" VM {vm}"));
        }
        if let Some(a) = &self.account {
            s.push_str(&format!(" account {a}"));
        }
        s.push_str(&match &self.effect {
            Effect::Fail { percent, .. } => format!(": Fail at {percent}%"),
            Effect::Delay { millis } => format!(": Delay {millis} ms"),
            Effect::Stall { percent, millis } => match millis {
                Some(ms) => format!(": Stall at {percent}% for {ms} ms"),
                None => format!(": Stall at {percent}% until cancelled"),
            },
            Effect::Status { code, .. } => format!(": Status {code}"),
            e => format!(": {}", e.name()),
        });
        match self.fire {
            Fire::Always => {}
            Fire::First(1) => s.push_str(", the first time"),
            Fire::First(n) => s.push_str(&format!(", the first {n} times")),
            Fire::Every(n) => s.push_str(&format!(", every {} time", ordinal(n))),
            Fire::Chance { probability, seed } => {
                s.push_str(&format!(", with probability {probability} (seed {seed})"))
            }
        }
        s
    }
}

/// `3rd`, `11th`, `22nd`.
fn ordinal(n: u64) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// The rules' administration: administrators only (`Permission::ManageFaults`), every change
/// written to the audit log with who made it.
pub struct FaultAdmin<'a> {
    pub(crate) core: &'a crate::Core,
}

impl FaultAdmin<'_> {
    fn authorize(&self, who: Who<'_>) -> CoreResult<()> {
        match who {
            Who::Caller(c) => {
                crate::security::authorize(c, crate::security::Permission::ManageFaults)
            }
            Who::Local(_) => Ok(()),
        }
    }

    /// Adds a rule.
    pub fn add(&self, who: Who<'_>, spec: FaultSpec) -> CoreResult<FaultRule> {
        let detail = spec.describe();
        let r = self
            .authorize(who)
            .and_then(|()| self.core.faults.add(spec, who.name()));
        let object = r.as_ref().ok().map(|rule| rule.id.to_string());
        let outcome = crate::audit::Outcome::of(&r);
        let detail = match &r {
            Ok(_) => detail,
            Err(e) => format!("{detail}: {e}"),
        };
        self.core.audit.record(
            who.actor(),
            crate::audit::Action::FaultAdd,
            object.as_deref(),
            outcome,
            Some(&detail),
        );
        if let Ok(rule) = &r {
            tracing::warn!("fault rule {} added by {}: {detail}", rule.id, who.name());
        }
        r
    }

    /// The rules in force, oldest first.
    pub fn list(&self, who: Who<'_>) -> CoreResult<Vec<FaultRule>> {
        self.authorize(who)?;
        self.core.faults.list()
    }

    /// One rule.
    pub fn get(&self, who: Who<'_>, id: Uuid) -> CoreResult<FaultRule> {
        self.list(who)?
            .into_iter()
            .find(|r| r.id == id)
            .ok_or_else(|| CoreError::not_found("Fault rule", id.to_string()))
    }

    /// Removes one rule.
    pub fn remove(&self, who: Who<'_>, id: Uuid) -> CoreResult<()> {
        let r = self.authorize(who).and_then(|()| {
            if self.core.faults.remove(id)? {
                Ok(())
            } else {
                Err(CoreError::not_found("Fault rule", id.to_string()))
            }
        });
        self.core.audit_result(
            who.actor(),
            crate::audit::Action::FaultRemove,
            Some(&id.to_string()),
            &r,
        );
        r
    }

    /// The `ExpireSession` effect: ends a logon session as if it had been idle too long, so its
    /// token gets the 401 of an expired session from now on. No-op for a session not live.
    pub fn expire_session(&self, id: Uuid) {
        let _ = self
            .core
            .sessions
            .end_by_handle(&crate::auth::handle_of_id(id));
    }

    /// Removes every rule; returns how many there were.
    pub fn clear(&self, who: Who<'_>) -> CoreResult<usize> {
        let r = self.authorize(who).and_then(|()| self.core.faults.clear());
        self.core
            .audit_result(who.actor(), crate::audit::Action::FaultClear, None, &r);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(operation: Operation, fire: Fire, effect: Effect) -> FaultSpec {
        FaultSpec {
            operation,
            vm: None,
            account: None,
            fire,
            effect,
        }
    }

    fn request(route: &str) -> Event<'_> {
        Event::Request {
            method: "GET",
            route,
            account: Some("admin"),
        }
    }

    fn status(code: u16) -> Effect {
        Effect::Status {
            code,
            message: "injected".into(),
        }
    }

    #[test]
    fn nothing_is_taken_or_fired_unless_allowed() {
        let f = Faults::default();
        let s = spec(
            Operation::Request {
                method: None,
                route: "/tasks/{ID}".into(),
            },
            Fire::Always,
            status(503),
        );
        assert!(matches!(
            f.add(s.clone(), "admin"),
            Err(CoreError::Forbidden(_))
        ));
        assert!(f.fire(&request("/tasks/{ID}")).is_none());
        f.allow();
        f.add(s, "admin").unwrap();
        assert_eq!(f.fire(&request("/tasks/{ID}")).unwrap().1, status(503));
        assert!(f.fire(&request("/tasks")).is_none());
    }

    #[test]
    fn every_third_first_two_and_seeded_chance() {
        let f = Faults::default();
        f.allow();
        let route = |r: &str| Operation::Request {
            method: Some("GET".into()),
            route: r.into(),
        };
        f.add(spec(route("/a"), Fire::Every(3), status(503)), "x")
            .unwrap();
        f.add(spec(route("/b"), Fire::First(2), status(500)), "x")
            .unwrap();
        let fired = |r: &str| {
            (0..9)
                .map(|_| f.fire(&request(r)).is_some())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            fired("/a"),
            [false, false, true, false, false, true, false, false, true]
        );
        assert_eq!(fired("/b").iter().filter(|x| **x).count(), 2);
        let chance = |seed| {
            let g = Faults::default();
            g.allow();
            g.add(
                spec(
                    route("/c"),
                    Fire::Chance {
                        probability: 0.5,
                        seed,
                    },
                    status(503),
                ),
                "x",
            )
            .unwrap();
            (0..64)
                .map(|_| g.fire(&request("/c")).is_some())
                .collect::<Vec<_>>()
        };
        assert_eq!(chance(7), chance(7), "a seed repeats its sequence");
        assert_ne!(chance(7), chance(8));
        let n = chance(7).iter().filter(|x| **x).count();
        assert!((16..=48).contains(&n), "about half of 64 fire: {n}");
    }

    #[test]
    fn filters_and_modes() {
        let f = Faults::default();
        f.allow();
        let mut s = spec(
            Operation::Restore(Some(RestoreMode::QuickRollback)),
            Fire::Always,
            Effect::Hang,
        );
        s.vm = Some("web-01".into());
        s.account = Some("alice".into());
        f.add(s, "admin").unwrap();
        let restore = |mode, vm, account| Event::Restore { mode, vm, account };
        assert!(f
            .fire(&restore(RestoreMode::QuickRollback, "WEB-01", "Alice"))
            .is_some());
        assert!(f
            .fire(&restore(RestoreMode::Full, "web-01", "alice"))
            .is_none());
        assert!(f
            .fire(&restore(RestoreMode::QuickRollback, "web-02", "alice"))
            .is_none());
        assert!(f
            .fire(&restore(RestoreMode::QuickRollback, "web-01", "bob"))
            .is_none());
        let mut b = spec(Operation::Backup, Fire::Always, Effect::Hang);
        b.vm = Some("db-01".into());
        f.add(b, "admin").unwrap();
        let backup = |vms: &'static [&'static str]| Event::Backup {
            vms,
            account: "admin",
        };
        assert!(f.fire(&backup(&["web-01", "db-01"])).is_some());
        assert!(f.fire(&backup(&["web-01"])).is_none());
        f.add(
            spec(Operation::Logon, Fire::Always, Effect::Delay { millis: 5 }),
            "admin",
        )
        .unwrap();
        let logon = Event::Request {
            method: "POST",
            route: "/sessionMngr",
            account: Some("anyone"),
        };
        assert_eq!(f.fire(&logon).unwrap().1, Effect::Delay { millis: 5 });
        assert!(f.watches_requests());
        assert_eq!(f.clear().unwrap(), 3);
        assert!(!f.watches_requests());
    }

    #[test]
    fn nonsense_is_refused_naming_the_member() {
        let bad = |s: FaultSpec| match s.check() {
            Err(CoreError::Invalid { element, .. }) => element.unwrap_or_default(),
            other => panic!("accepted: {other:?}"),
        };
        let req = Operation::Request {
            method: None,
            route: "/tasks/{ID}".into(),
        };
        let fail = Effect::Fail {
            percent: 50,
            message: "x".into(),
        };
        assert_eq!(bad(spec(req.clone(), Fire::Always, fail.clone())), "Effect");
        assert_eq!(
            bad(spec(Operation::Backup, Fire::Always, status(503))),
            "Effect"
        );
        assert_eq!(
            bad(spec(
                Operation::Restore(None),
                Fire::Always,
                Effect::Fail {
                    percent: 100,
                    message: "x".into()
                }
            )),
            "Percent"
        );
        assert_eq!(
            bad(spec(req.clone(), Fire::Always, status(200))),
            "StatusCode"
        );
        assert_eq!(bad(spec(req.clone(), Fire::Every(0), status(503))), "Count");
        assert_eq!(
            bad(spec(
                req.clone(),
                Fire::Chance {
                    probability: 1.5,
                    seed: 1
                },
                status(503)
            )),
            "Probability"
        );
        let mut with_vm = spec(req, Fire::Always, status(503));
        with_vm.vm = Some("web-01".into());
        assert_eq!(bad(with_vm), "VmName");
        assert_eq!(
            bad(spec(Operation::Logon, Fire::Always, Effect::ExpireSession)),
            "Effect"
        );
    }

    #[test]
    fn a_fail_fires_at_its_percent_or_before_the_commit() {
        let t = TaskFault::new(
            Uuid::nil(),
            Effect::Fail {
                percent: 60,
                message: "disk on fire".into(),
            },
        );
        let shown = std::cell::Cell::new(0u8);
        let never = || false;
        assert!(!t.check(59, false, &never, &|p| shown.set(p)));
        assert_eq!(t.failure(), None);
        assert!(t.check(60, false, &never, &|p| shown.set(p)));
        assert_eq!(t.failure(), Some("disk on fire"));
        assert_eq!(shown.get(), 60);
        let early = TaskFault::new(
            Uuid::nil(),
            Effect::Fail {
                percent: 90,
                message: "m".into(),
            },
        );
        assert!(
            early.check(3, true, &never, &|_| {}),
            "fires before the commit"
        );
    }
}
