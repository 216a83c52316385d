//! Backup jobs and their sessions: `<Job>` (em_rest/jobs_id.md, get_jobs_id.md),
//! `<ObjectInJob>`/`<ObjectsInJob>` (jobs_id_includes.md), `<BackupJobSession>`
//! (backupsessions_id.md) and `<BackupTaskSession>` (backuptasksessions_id.md).

use super::{entity_layer, resource_layer, Entity, JobSessionLayer, Link};
use super::{SessionResult, SessionState};
use crate::node::{attr, child, elem, list, ListStyle, Node, Representation, Scalar};
use crate::time::UtcTime;

/// A VM processed by a job (`<ObjectInJob>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInJob {
    /// `…/jobs/<job>/includes/<id>`.
    pub href: String,
    /// ID of the object within the job.
    pub object_in_job_id: String,
    /// `urn:<Platform>:Vm:<root>.<ref>`.
    pub hierarchy_obj_ref: String,
    /// VM name.
    pub name: String,
    /// Name shown in the console.
    pub display_name: String,
}

impl Representation for ObjectInJob {
    fn to_node(&self) -> Node<'_> {
        let ObjectInJob {
            href,
            object_in_job_id,
            hierarchy_obj_ref,
            name,
            display_name,
        } = self;
        // Member order of the real JSON on em_rest/resource_representation_for_ke.md; an
        // ObjectInJob has no links (`"Links": null`, no `<Links>`).
        Node::new("ObjectInJob")
            .layer(vec![
                elem("ObjectInJobId", object_in_job_id),
                elem("HierarchyObjRef", hierarchy_obj_ref),
                elem("Name", name),
                elem("DisplayName", display_name),
                child("GuestProcessingOptions", None),
            ])
            .layer(resource_layer(&[], href, "ObjectInJob"))
    }
}

/// `GET /jobs/{ID}/includes`: XML `<ObjectsInJob>`, JSON `{"ObjectInJobs": […]}` (JSON.md A3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectsInJob(pub Vec<ObjectInJob>);

fn object_list(items: &[ObjectInJob]) -> crate::node::Member<'_> {
    list(
        "ObjectInJobs",
        ListStyle::Inline,
        "ObjectInJob",
        Some(items.iter().map(Representation::to_node).collect()),
    )
}

impl Representation for ObjectsInJob {
    fn to_node(&self) -> Node<'_> {
        let ObjectsInJob(items) = self;
        Node::new("ObjectsInJob").layer(vec![object_list(items)])
    }
}

/// A backup job entity (em_rest/get_jobs_id.md), `JobType` Backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// URL of the entity.
    pub href: String,
    /// Job name.
    pub name: String,
    /// `urn:veeam:Job:<uuid>`.
    pub uid: String,
    /// Up (backup server), Alternate, Down (includes, sessions), Start, Stop, Retry.
    pub links: Vec<Link>,
    /// `Backup`.
    pub job_type: String,
    /// `VMware`, `HyperV`, `vCloud`.
    pub platform: String,
    /// Description given at creation.
    pub description: String,
    /// Whether a schedule is set.
    pub schedule_configured: bool,
    /// Whether the schedule is enabled.
    pub schedule_enabled: bool,
    /// Next scheduled run; unset without a schedule.
    pub next_run: Option<UtcTime>,
    /// The schedule (jobscheduleoptions.md); unset without one.
    pub schedule: Option<crate::JobScheduleOptions>,
    /// The VMs the job backs up (`JobInfo/BackupJobInfo/Includes`).
    pub includes: Vec<ObjectInJob>,
    /// Restore points kept (`SimpleRetentionPolicy/RetainCycles`).
    pub retain_cycles: i64,
}

impl Representation for Job {
    fn to_node(&self) -> Node<'_> {
        let Job {
            href,
            name,
            uid,
            links,
            job_type,
            platform,
            description,
            schedule_configured,
            schedule_enabled,
            next_run,
            schedule,
            includes,
            retain_cycles,
        } = self;
        // Short-term retention counts restore points (RetainLimitType Cycles), as on
        // em_rest/jobs_id.md; options emrest does not have are null (absent in XML).
        let retention = Node::new("SimpleRetentionPolicy").layer(vec![
            elem("RetainCycles", *retain_cycles),
            elem("RetainDaysToKeep", Scalar::Null),
            elem("RetainLimitType", "Cycles"),
        ]);
        let backup_info = Node::new("BackupJobInfo").layer(vec![
            child(
                "Includes",
                Some(Node::new("Includes").layer(vec![object_list(includes)])),
            ),
            child("GuestProcessingOptions", None),
            child("AdvancedStorageOptions", None),
            child("GfsRetentionPolicy", None),
            child("SimpleRetentionPolicy", Some(retention)),
        ]);
        // JobInfo member order of the real JSON (em_rest/resource_representation_for_ke.md).
        let job_info = Node::new("JobInfo").layer(vec![
            child("BackupJobInfo", Some(backup_info)),
            child("FileCopyJobInfo", None),
            child("ReplicaJobInfo", None),
            child("BackupCopyJobInfo", None),
            child("ImmediateBackupCopyJobInfo", None),
        ]);
        Node::new(Self::ELEMENT)
            .layer(vec![
                elem("JobType", job_type),
                elem("Platform", platform),
                elem("Description", description),
                elem("ScheduleConfigured", *schedule_configured),
                elem("ScheduleEnabled", *schedule_enabled),
                elem("NextRun", *next_run),
                child(
                    "JobScheduleOptions",
                    schedule.as_ref().map(crate::JobScheduleOptions::to_node),
                ),
                child("JobInfo", Some(job_info)),
            ])
            .layer(entity_layer(name, uid))
            .layer(resource_layer(links, href, Self::ELEMENT))
    }
}

impl Entity for Job {
    const ELEMENT: &'static str = "Job";
    const LIST: &'static str = "Jobs";
}

/// A backup job session entity (em_rest/get_backupsessions_id.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupJobSession {
    /// URL of the entity.
    pub href: String,
    /// `<job>@<yyyy-mm-dd hh:mm:ss>`.
    pub name: String,
    /// `urn:veeam:BackupJobSession:<uuid>`.
    pub uid: String,
    /// Up (backup server first: clients read `Links[0].Name`), Up (job), Alternate, Down
    /// (task sessions), Stop, Related (restore point made).
    pub links: Vec<Link>,
    /// UID of the job.
    pub job_uid: String,
    /// Name of the job.
    pub job_name: String,
    /// `Backup`.
    pub job_type: String,
    /// When the session started.
    pub creation_time_utc: UtcTime,
    /// When it ended.
    pub end_time_utc: Option<UtcTime>,
    /// State.
    pub state: SessionState,
    /// Result (`None` while running, JSON.md D3).
    pub result: SessionResult,
    /// Percent done.
    pub progress: i32,
    /// Why the session failed.
    pub failure_message: Option<String>,
    /// Whether the session retried a failed one.
    pub is_retry: bool,
}

impl Representation for BackupJobSession {
    fn to_node(&self) -> Node<'_> {
        let BackupJobSession {
            href,
            name,
            uid,
            links,
            job_uid,
            job_name,
            job_type,
            creation_time_utc,
            end_time_utc,
            state,
            result,
            progress,
            failure_message,
            is_retry,
        } = self;
        // BackupJobSessionEntityType adds IsRetry to JobSessionEntityType: first in JSON, last
        // in XML (JSON.md A5 verified order; em_rest/backupsessions_id.md).
        Node::new(Self::ELEMENT)
            .layer(vec![elem("IsRetry", *is_retry)])
            .layer(
                JobSessionLayer {
                    job_uid: job_uid.into(),
                    job_name: job_name.into(),
                    job_type,
                    creation_time_utc: *creation_time_utc,
                    end_time_utc: *end_time_utc,
                    state: state.as_str(),
                    result: result.as_str(),
                    progress: *progress,
                    failure_message,
                }
                .members(),
            )
            .layer(entity_layer(name, uid))
            .layer(resource_layer(links, href, Self::ELEMENT))
    }
}

impl Entity for BackupJobSession {
    const ELEMENT: &'static str = "BackupJobSession";
    const LIST: &'static str = "BackupJobSessions";
}

/// State of a backup task session (em_rest/get_backuptasksessions_id.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupTaskSessionState {
    /// Waiting for its turn.
    Pending,
    /// The VM is being backed up.
    InProgress,
    /// Done, see the result.
    Completed,
}

impl BackupTaskSessionState {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            BackupTaskSessionState::Pending => "Pending",
            BackupTaskSessionState::InProgress => "InProgress",
            BackupTaskSessionState::Completed => "Completed",
        }
    }
}

/// A backup task session entity: one VM of a job session
/// (em_rest/get_backuptasksessions_id.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupTaskSession {
    /// URL of the entity.
    pub href: String,
    /// `<vm>@<yyyy-mm-dd hh:mm:ss>`.
    pub name: String,
    /// `urn:veeam:BackupTaskSession:<uuid>`.
    pub uid: String,
    /// `VmDisplayName` attribute.
    pub vm_display_name: String,
    /// Up (backup server), Up (job session), Alternate, Related (VM restore point made).
    pub links: Vec<Link>,
    /// UID of the job session.
    pub job_session_uid: String,
    /// When the VM's processing started.
    pub creation_time_utc: UtcTime,
    /// When it ended.
    pub end_time_utc: Option<UtcTime>,
    /// State.
    pub state: BackupTaskSessionState,
    /// Result (`None` until completed).
    pub result: SessionResult,
    /// Why it failed; empty on success (`<Reason />`).
    pub reason: String,
    /// Size of the VM's disks in bytes.
    pub total_size: i64,
    /// The VM's HierarchyObjRef.
    pub vm_uid: String,
}

impl Representation for BackupTaskSession {
    fn to_node(&self) -> Node<'_> {
        let BackupTaskSession {
            href,
            name,
            uid,
            vm_display_name,
            links,
            job_session_uid,
            creation_time_utc,
            end_time_utc,
            state,
            result,
            reason,
            total_size,
            vm_uid,
        } = self;
        // JSON order verified on a real reply (JSON.md A5); VmDisplayName is an attribute.
        Node::new(Self::ELEMENT)
            .layer(vec![
                elem("JobSessionUid", job_session_uid),
                elem("CreationTimeUTC", *creation_time_utc),
                elem("EndTimeUTC", *end_time_utc),
                elem("State", state.as_str()),
                elem("Result", result.as_str()),
                elem("Reason", reason),
                elem("TotalSize", *total_size),
                elem("VmUid", vm_uid),
                attr("VmDisplayName", vm_display_name),
            ])
            .layer(entity_layer(name, uid))
            .layer(resource_layer(links, href, Self::ELEMENT))
    }
}

impl Entity for BackupTaskSession {
    const ELEMENT: &'static str = "BackupTaskSession";
    const LIST: &'static str = "BackupTaskSessions";
}
