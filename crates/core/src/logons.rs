//! Logon sessions: logging on (local accounts and the directory), the caller behind a session,
//! listing and ending sessions.

use crate::error::{CoreError, CoreResult};
use crate::model::*;
use crate::{audit, security, Core};
use uuid::Uuid;

/// Logging on and off.
pub struct Logons<'a>(pub(crate) &'a Core);

crate::service!(Logons, Core);

impl Logons<'_> {
    /// Check credentials and open a logon session (no client address: CLI and tests).
    pub fn logon(&self, user: &str, password: &str) -> CoreResult<LogonSessionRecord> {
        self.logon_from(user, password, None)
    }

    /// Check credentials from a client address and open a logon session; throttled, audited.
    pub fn logon_from(
        &self,
        user: &str,
        password: &str,
        address: Option<std::net::IpAddr>,
    ) -> CoreResult<LogonSessionRecord> {
        let r = match self
            .directory
            .as_ref()
            .and_then(|d| Some((d, d.claim(user)?)))
        {
            Some((d, name)) => self.directory_logon(d, user, name, password, address),
            None => self.sessions.logon(&self.catalog, user, password, address),
        };
        self.metrics.logon(match &r {
            Ok(_) => "success",
            Err(CoreError::TooManyAttempts { .. }) => "throttled",
            Err(_) => "refused",
        });
        let action = if r.is_ok() {
            audit::Action::Logon
        } else {
            audit::Action::LogonFailed
        };
        self.audit_result(audit::Actor { user, address }, action, None, &r);
        r
    }

    /// The caller behind a live session.
    pub fn caller(&self, session: Uuid) -> CoreResult<Caller> {
        self.sessions.caller(&self.catalog, session)
    }

    /// The caller's own logon sessions, its current one first.
    pub fn logon_sessions(&self, caller: &Caller) -> CoreResult<Vec<LogonSessionRecord>> {
        self.sessions.list(caller)
    }

    /// One logon session.
    pub fn logon_session(&self, caller: &Caller, id: Uuid) -> CoreResult<LogonSessionRecord> {
        self.sessions.get(caller, id)
    }

    /// Log a session out.
    pub fn logout(&self, caller: &Caller, id: Uuid) -> CoreResult<()> {
        let r = self.sessions.logout(caller, id);
        let object = r.as_ref().ok().map(|s| s.user_name.clone());
        self.audit_result(caller.into(), audit::Action::Logoff, object.as_deref(), &r);
        r.map(|_| ())
    }

    /// emrest extension: every live logon session with its handle (administrators only).
    pub fn managed_logon_sessions(
        &self,
        caller: &Caller,
    ) -> CoreResult<Vec<(String, LogonSessionRecord)>> {
        security::authorize(caller, security::Permission::ManageAccounts)?;
        self.sessions.all()
    }

    /// emrest extension: end any account's logon session by its handle (administrators only).
    pub fn end_logon_session(&self, caller: &Caller, handle: &str) -> CoreResult<()> {
        let r = security::authorize(caller, security::Permission::ManageAccounts)
            .and_then(|_| self.sessions.end_by_handle(handle));
        let object = r.as_ref().ok().map(|s| s.user_name.clone());
        self.audit_result(caller.into(), audit::Action::Logoff, object.as_deref(), &r);
        r.map(|_| ())
    }
}
