//! The Enterprise Manager REST wire format: one Rust type per representation, an
//! XML and a JSON encoder fed by one element tree, strict decoding of the restore
//! request, URNs and timestamps. No I/O, no HTTP.

#![warn(missing_docs)]

mod error;
mod fault_spec;
mod ids;
mod job_spec;
mod json;
pub mod node;
mod resources;
mod restore_spec;
mod security_spec;
mod stream;
mod time;
mod xml;

pub use error::{fallback_error_body, DecodeError, Error};
pub use fault_spec::{decode_fault_rule_spec, FaultRule, FaultRuleSpec};
pub use ids::{parse_id, urn};
pub use job_spec::{
    decode_create_object_in_job_spec, decode_job_clone_spec, decode_job_edit_spec,
    CreateObjectInJobSpec, DayHours, JobCloneSpec, JobEditSpec, JobScheduleOptions,
    OptionsBackupWindow, OptionsContinuous, OptionsDaily, OptionsDaisyChaining, OptionsMonthly,
    OptionsPeriodically, RetryOptions,
};
pub use node::{List, ListStyle, Member, Node, Representation, Scalar, Value};
pub use resources::{
    Backup, BackupFile, BackupFiles, BackupServer, BackupServers, Backups, EnterpriseManager,
    Entity, EntityList, EntityRef, EntityReferences, HierarchyItem, HierarchyItems, HierarchyRoot,
    HierarchyRoots, Link, LogonSession, LogonSessionList, ManagedLogonSession, PagingInfo,
    QueryContent, QueryResult, RestorePoint, RestorePoints, RestoreSession, RestoreSessions,
    ServiceDocument, SessionResult, SessionState, SupportedVersion, Task, TaskResult, TaskState,
    Tasks, TypedList, VmRestorePoint, VmRestorePoints, ENTITIES_MEMBERS, RESOURCES_MEMBERS,
};
pub use resources::{
    BackupJobSession, BackupTaskSession, BackupTaskSessionState, Job, ObjectInJob, ObjectsInJob,
};
pub use resources::{
    EnterpriseAccount, EnterpriseAccountHierarchyScope, EnterpriseAccountHierarchyScopes,
    EnterpriseAccountInRole, EnterpriseAccountInRoleList, EnterpriseAccounts, EnterpriseRole,
    EnterpriseRoles, EnterpriseSecuritySettings, FileRestoreSettings, SqlRestoreSettings,
};
pub use resources::{
    JobStatisticsReportFrame, OverviewReportFrame, ProcessedVmsDay, ProcessedVmsReportFrame,
    Repository, RepositoryList, RepositoryPeriod, RepositoryReportFrame, SummaryReport,
    VmsOverviewReportFrame,
};
pub use resources::{RestorableVm, RestorableVms};
pub use restore_spec::{
    decode_restore_spec, decode_restore_spec_with, OrderPolicy, RequiredPolicy, RestoreSpec,
    RestoreSpecPolicy, VCloudVmRestoreSpec, VmRestoreParameters, VmRestoreSpec,
};
pub use security_spec::{
    decode_account_create_spec, decode_password_spec, decode_role_create_spec,
    decode_scope_create_spec, EnterpriseAccountCreateSpec, FlrSettingsSpec, HierarchyScopeItem,
    SqlSettingsSpec,
};
pub use stream::ListWriter;
pub use time::UtcTime;

/// Largest request body any decoder here reads; a server refuses larger bodies (413) before
/// decoding, so the limit is the same for every body.
pub const MAX_REQUEST_BODY: usize = restore_spec::MAX_BODY;

/// At most `max` characters of `text`, with `…` when some were cut: how a client-supplied value
/// (or a parser message quoting one) appears in an error, never reflected back at length.
pub fn clip(text: &str, max: usize) -> String {
    let mut v: String = text.chars().take(max).collect();
    if text.chars().nth(max).is_some() {
        v.push('…');
    }
    v
}
pub use xml::NAMESPACE;

/// A wire encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `application/xml`, the default when `Accept` is absent.
    Xml,
    /// `application/json`.
    Json,
}

impl Format {
    /// The `Content-Type` of a body in this format; no charset, as the real server
    /// sends (JSON.md A1).
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Xml => "application/xml",
            Format::Json => "application/json",
        }
    }

    /// Guesses a body's format from its first non-blank character (`<` or `{`/`[`);
    /// for bodies whose `Content-Type` is missing or wrong (JSON.md A1).
    pub fn sniff(body: &[u8]) -> Option<Format> {
        let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
        match body.iter().find(|b| !b.is_ascii_whitespace())? {
            b'<' => Some(Format::Xml),
            b'{' | b'[' => Some(Format::Json),
            _ => None,
        }
    }
}

/// Encodes a representation as a complete XML document or a compact JSON body.
pub fn encode(rep: &impl Representation, format: Format) -> Vec<u8> {
    let node = rep.to_node();
    match format {
        Format::Xml => xml::encode_document(&node),
        Format::Json => json::encode_document(&node),
    }
}
