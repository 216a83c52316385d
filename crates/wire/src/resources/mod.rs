//! One Rust type per documented representation.
//!
//! Each `to_node` destructures its struct without `..`, so adding a field without
//! encoding it is a compile error.

mod entities;
mod jobs;
mod link;
mod list;
mod portal;
mod query;
mod reference;
mod repository;
mod restore_session;
mod root;
mod security;
mod task;

pub use entities::{Backup, BackupFile, BackupServer, HierarchyRoot, RestorePoint, VmRestorePoint};
pub use jobs::{
    BackupJobSession, BackupTaskSession, BackupTaskSessionState, Job, ObjectInJob, ObjectsInJob,
};
pub use link::Link;
pub use list::{
    BackupFiles, BackupServers, Backups, Entity, EntityList, HierarchyRoots, LogonSessionList,
    RepositoryList, RestorePoints, RestoreSessions, Tasks, VmRestorePoints,
};
pub use portal::{RestorableVm, RestorableVms};
pub use query::{
    HierarchyItem, HierarchyItems, PagingInfo, QueryContent, QueryResult, ServiceDocument,
    TypedList, ENTITIES_MEMBERS, RESOURCES_MEMBERS,
};
pub use reference::{EntityRef, EntityReferences};
pub use repository::{
    JobStatisticsReportFrame, OverviewReportFrame, ProcessedVmsDay, ProcessedVmsReportFrame,
    Repository, RepositoryPeriod, RepositoryReportFrame, SummaryReport, VmsOverviewReportFrame,
};
pub use restore_session::{RestoreSession, SessionResult, SessionState};
pub use root::{EnterpriseManager, LogonSession, ManagedLogonSession, SupportedVersion};
pub use security::{
    EnterpriseAccount, EnterpriseAccountHierarchyScope, EnterpriseAccountHierarchyScopes,
    EnterpriseAccountInRole, EnterpriseAccountInRoleList, EnterpriseAccounts, EnterpriseRole,
    EnterpriseRoles, EnterpriseSecuritySettings, FileRestoreSettings, SqlRestoreSettings,
};
pub use task::{Task, TaskResult, TaskState};

use crate::node::{attr, list as list_member, ListStyle, Member, Representation, Scalar};

/// The `Links` member: a wrapped list in XML, a plain array in JSON (JSON.md A6);
/// a resource without links gets `"Links": null` and no `<Links>` element.
pub(crate) fn links_member(links: &[Link]) -> Member<'_> {
    let items = if links.is_empty() {
        None
    } else {
        Some(links.iter().map(Representation::to_node).collect())
    };
    list_member("Links", ListStyle::Wrapped, "Link", items)
}

/// The EntityType layer: `Name`, `UID` attributes (JSON.md A5).
pub(crate) fn entity_layer<'a>(name: &'a str, uid: &'a str) -> [Member<'a>; 2] {
    [attr("Name", name), attr("UID", uid)]
}

/// The JobSessionEntityType layer that backup and restore sessions share (XSD order, JSON.md
/// A5/B4): `JobUid, JobName, JobType, CreationTimeUTC, EndTimeUTC, State, Result, Progress,
/// FailureMessage`.
pub(crate) struct JobSessionLayer<'a> {
    pub job_uid: Scalar<'a>,
    pub job_name: Scalar<'a>,
    pub job_type: &'a str,
    pub creation_time_utc: crate::time::UtcTime,
    pub end_time_utc: Option<crate::time::UtcTime>,
    pub state: &'static str,
    pub result: &'static str,
    pub progress: i32,
    pub failure_message: &'a Option<String>,
}

impl<'a> JobSessionLayer<'a> {
    /// The members, in order.
    pub(crate) fn members(self) -> Vec<Member<'a>> {
        let JobSessionLayer {
            job_uid,
            job_name,
            job_type,
            creation_time_utc,
            end_time_utc,
            state,
            result,
            progress,
            failure_message,
        } = self;
        vec![
            crate::node::elem("JobUid", job_uid),
            crate::node::elem("JobName", job_name),
            crate::node::elem("JobType", job_type),
            crate::node::elem("CreationTimeUTC", creation_time_utc),
            crate::node::elem("EndTimeUTC", end_time_utc),
            crate::node::elem("State", state),
            crate::node::elem("Result", result),
            crate::node::elem("Progress", progress),
            crate::node::elem("FailureMessage", failure_message),
        ]
    }
}

/// The ResourceType layer: `Links`, then `Href`, `Type` attributes (JSON.md A5).
pub(crate) fn resource_layer<'a>(
    links: &'a [Link],
    href: impl Into<Scalar<'a>>,
    type_: impl Into<Scalar<'a>>,
) -> [Member<'a>; 3] {
    [links_member(links), attr("Href", href), attr("Type", type_)]
}
