//! Backup repositories and the summary reports (em_rest/get_repositories_id.md,
//! em_rest/get_reports_summary*.md). Element order is the XSD sequence (the frames' members
//! are not shown on the pages; JSON.md D3 lists the keys clients read).

use super::{entity_layer, resource_layer, Link};
use crate::node::{attr, elem, list, ListStyle, Node, Representation};
use crate::resources::Entity;
use crate::time::UtcTime;

/// A backup repository entity (em_rest/get_repositories_id.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    /// URL of the entity (`…?format=Entity`).
    pub href: String,
    /// Name of the repository.
    pub name: String,
    /// `urn:veeam:Repository:<uuid>`.
    pub uid: String,
    /// Up (backup server), Alternate and Down links.
    pub links: Vec<Link>,
    /// Total space of the volume holding the repository, in bytes.
    pub capacity: i64,
    /// Free space on that volume, in bytes.
    pub free_space: i64,
    /// `WindowsLocal`, `LinuxLocal`, `CifsShare`, …
    pub kind: String,
}

impl Representation for Repository {
    fn to_node(&self) -> Node<'_> {
        let Repository {
            href,
            name,
            uid,
            links,
            capacity,
            free_space,
            kind,
        } = self;
        // JSON order verified on a real v12 reply (JSON.md A5).
        Node::new(Self::ELEMENT)
            .layer(vec![
                elem("Capacity", *capacity),
                elem("FreeSpace", *free_space),
                elem("Kind", kind),
            ])
            .layer(entity_layer(name, uid))
            .layer(resource_layer(links, href, Self::ELEMENT))
    }
}

/// `GET /reports/summary`: links down to each report frame (em_rest/get_reports_summary.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryReport {
    /// URL of the report list.
    pub href: String,
    /// Down links to the frames.
    pub links: Vec<Link>,
}

impl Representation for SummaryReport {
    fn to_node(&self) -> Node<'_> {
        let SummaryReport { href, links } = self;
        Node::new("SummaryReport").layer(resource_layer(links, href, "SummaryReport"))
    }
}

/// `GET /reports/summary/overview` (em_rest/get_reports_summary_overview.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverviewReportFrame {
    /// URL of the resource.
    pub href: String,
    /// Links (`Links: null` when empty).
    pub links: Vec<Link>,
    /// `BackupServers`.
    pub backup_servers: i64,
    /// `ProxyServers`.
    pub proxy_servers: i64,
    /// `RepositoryServers`.
    pub repository_servers: i64,
    /// `RunningJobs`.
    pub running_jobs: i64,
    /// `ScheduledJobs`.
    pub scheduled_jobs: i64,
    /// `SuccessfulVmLastestStates`.
    pub successful_vm_latest_states: i64,
    /// `WarningVmLastestStates`.
    pub warning_vm_latest_states: i64,
    /// `FailedVmLastestStates`.
    pub failed_vm_latest_states: i64,
}

impl Representation for OverviewReportFrame {
    fn to_node(&self) -> Node<'_> {
        let OverviewReportFrame {
            href,
            links,
            backup_servers,
            proxy_servers,
            repository_servers,
            running_jobs,
            scheduled_jobs,
            successful_vm_latest_states,
            warning_vm_latest_states,
            failed_vm_latest_states,
        } = self;
        // "Lastest" is the real spelling (JSON.md D3).
        Node::new("OverviewReportFrame")
            .layer(vec![
                elem("BackupServers", *backup_servers),
                elem("ProxyServers", *proxy_servers),
                elem("RepositoryServers", *repository_servers),
                elem("RunningJobs", *running_jobs),
                elem("ScheduledJobs", *scheduled_jobs),
                elem("SuccessfulVmLastestStates", *successful_vm_latest_states),
                elem("WarningVmLastestStates", *warning_vm_latest_states),
                elem("FailedVmLastestStates", *failed_vm_latest_states),
            ])
            .layer(resource_layer(links, href, "OverviewReportFrame"))
    }
}

/// `GET /reports/summary/vms_overview` (em_rest/get_reports_summary_vms_overview.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmsOverviewReportFrame {
    /// URL of the resource.
    pub href: String,
    /// Links (`Links: null` when empty).
    pub links: Vec<Link>,
    /// `ProtectedVms`.
    pub protected_vms: i64,
    /// `BackedUpVms`.
    pub backed_up_vms: i64,
    /// `ReplicatedVms`.
    pub replicated_vms: i64,
    /// `RestorePoints`.
    pub restore_points: i64,
    /// `FullBackupPointsSize`.
    pub full_backup_points_size: i64,
    /// `IncrementalBackupPointsSize`.
    pub incremental_backup_points_size: i64,
    /// `ReplicaRestorePointsSize`.
    pub replica_restore_points_size: i64,
    /// `SourceVmsSize`.
    pub source_vms_size: i64,
    /// `SuccessBackupPercents`.
    pub success_backup_percents: i64,
    /// Link to an Enterprise Manager web report; emrest has none (null).
    pub protected_vms_report_link: Option<String>,
}

impl Representation for VmsOverviewReportFrame {
    fn to_node(&self) -> Node<'_> {
        let VmsOverviewReportFrame {
            href,
            links,
            protected_vms,
            backed_up_vms,
            replicated_vms,
            restore_points,
            full_backup_points_size,
            incremental_backup_points_size,
            replica_restore_points_size,
            source_vms_size,
            success_backup_percents,
            protected_vms_report_link,
        } = self;
        Node::new("VmsOverviewReportFrame")
            .layer(vec![
                elem("ProtectedVms", *protected_vms),
                elem("BackedUpVms", *backed_up_vms),
                elem("ReplicatedVms", *replicated_vms),
                elem("RestorePoints", *restore_points),
                elem("FullBackupPointsSize", *full_backup_points_size),
                elem(
                    "IncrementalBackupPointsSize",
                    *incremental_backup_points_size,
                ),
                elem("ReplicaRestorePointsSize", *replica_restore_points_size),
                elem("SourceVmsSize", *source_vms_size),
                elem("SuccessBackupPercents", *success_backup_percents),
                elem("ProtectedVmsReportLink", protected_vms_report_link),
            ])
            .layer(resource_layer(links, href, "VmsOverviewReportFrame"))
    }
}

/// `GET /reports/summary/job_statistics` (em_rest/get_reports_summary_statistics.md).
/// Durations are whole seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStatisticsReportFrame {
    /// URL of the resource.
    pub href: String,
    /// Links (`Links: null` when empty).
    pub links: Vec<Link>,
    /// `RunningJobs`.
    pub running_jobs: i64,
    /// `ScheduledJobs`.
    pub scheduled_jobs: i64,
    /// `ScheduledBackupJobs`.
    pub scheduled_backup_jobs: i64,
    /// `ScheduledReplicaJobs`.
    pub scheduled_replica_jobs: i64,
    /// `TotalJobRuns`.
    pub total_job_runs: i64,
    /// `SuccessfulJobRuns`.
    pub successful_job_runs: i64,
    /// `WarningsJobRuns`.
    pub warnings_job_runs: i64,
    /// `FailedJobRuns`.
    pub failed_job_runs: i64,
    /// `MaxJobDuration`.
    pub max_job_duration: i64,
    /// `MaxBackupJobDuration`.
    pub max_backup_job_duration: i64,
    /// `MaxReplicaJobDuration`.
    pub max_replica_job_duration: i64,
    /// `MaxDurationBackupJobName`.
    pub max_duration_backup_job_name: String,
    /// `MaxDurationReplicaJobName`.
    pub max_duration_replica_job_name: String,
    /// Link to an Enterprise Manager web report; emrest has none (null).
    pub backup_job_status_report_link: Option<String>,
}

impl Representation for JobStatisticsReportFrame {
    fn to_node(&self) -> Node<'_> {
        let JobStatisticsReportFrame {
            href,
            links,
            running_jobs,
            scheduled_jobs,
            scheduled_backup_jobs,
            scheduled_replica_jobs,
            total_job_runs,
            successful_job_runs,
            warnings_job_runs,
            failed_job_runs,
            max_job_duration,
            max_backup_job_duration,
            max_replica_job_duration,
            max_duration_backup_job_name,
            max_duration_replica_job_name,
            backup_job_status_report_link,
        } = self;
        Node::new("JobStatisticsReportFrame")
            .layer(vec![
                elem("RunningJobs", *running_jobs),
                elem("ScheduledJobs", *scheduled_jobs),
                elem("ScheduledBackupJobs", *scheduled_backup_jobs),
                elem("ScheduledReplicaJobs", *scheduled_replica_jobs),
                elem("TotalJobRuns", *total_job_runs),
                elem("SuccessfulJobRuns", *successful_job_runs),
                elem("WarningsJobRuns", *warnings_job_runs),
                elem("FailedJobRuns", *failed_job_runs),
                elem("MaxJobDuration", *max_job_duration),
                elem("MaxBackupJobDuration", *max_backup_job_duration),
                elem("MaxReplicaJobDuration", *max_replica_job_duration),
                elem("MaxDurationBackupJobName", max_duration_backup_job_name),
                elem("MaxDurationReplicaJobName", max_duration_replica_job_name),
                elem("BackupJobStatusReportLink", backup_job_status_report_link),
            ])
            .layer(resource_layer(links, href, "JobStatisticsReportFrame"))
    }
}

/// One repository in [`RepositoryReportFrame`]: `<Period>` in XML, an item of `Periods` in
/// JSON (JSON.md A7.4, D1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryPeriod {
    /// `Name`.
    pub name: String,
    /// `Capacity`.
    pub capacity: i64,
    /// `FreeSpace`.
    pub free_space: i64,
    /// `BackupSize`.
    pub backup_size: i64,
}

impl Representation for RepositoryPeriod {
    fn to_node(&self) -> Node<'_> {
        let RepositoryPeriod {
            name,
            capacity,
            free_space,
            backup_size,
        } = self;
        Node::new("Period").layer(vec![
            elem("Name", name),
            elem("Capacity", *capacity),
            elem("FreeSpace", *free_space),
            elem("BackupSize", *backup_size),
        ])
    }
}

/// `GET /reports/summary/repository` (em_rest/get_reports_summary_repository.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryReportFrame {
    /// URL of the resource.
    pub href: String,
    /// Links (`Links: null` when empty).
    pub links: Vec<Link>,
    /// `Periods`.
    pub periods: Vec<RepositoryPeriod>,
    /// Link to an Enterprise Manager web report; emrest has none (attribute omitted).
    pub capacity_planning_report_link: Option<String>,
}

impl Representation for RepositoryReportFrame {
    fn to_node(&self) -> Node<'_> {
        let RepositoryReportFrame {
            href,
            links,
            periods,
            capacity_planning_report_link,
        } = self;
        Node::new("RepositoryReportFrame")
            .layer(vec![
                list(
                    "Periods",
                    ListStyle::Inline,
                    "Period",
                    Some(periods.iter().map(Representation::to_node).collect()),
                ),
                attr("CapacityPlanningReportLink", capacity_planning_report_link),
            ])
            .layer(resource_layer(links, href, "RepositoryReportFrame"))
    }
}

/// One day of [`ProcessedVmsReportFrame`]: `<Day Timestamp=… ReplicatedVms=… BackupedVms=…/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessedVmsDay {
    /// Midnight UTC of the day.
    pub timestamp: UtcTime,
    /// `ReplicatedVms`.
    pub replicated_vms: i64,
    /// `BackupedVms`.
    pub backuped_vms: i64,
}

impl Representation for ProcessedVmsDay {
    fn to_node(&self) -> Node<'_> {
        let ProcessedVmsDay {
            timestamp,
            replicated_vms,
            backuped_vms,
        } = self;
        Node::new("Day").layer(vec![
            attr("Timestamp", timestamp.to_wire()),
            attr("ReplicatedVms", *replicated_vms),
            attr("BackupedVms", *backuped_vms),
        ])
    }
}

/// `GET /reports/summary/processed_vms` (em_rest/get_reports_summary_processed_vms.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessedVmsReportFrame {
    /// URL of the resource.
    pub href: String,
    /// Links (`Links: null` when empty).
    pub links: Vec<Link>,
    /// `Days`.
    pub days: Vec<ProcessedVmsDay>,
}

impl Representation for ProcessedVmsReportFrame {
    fn to_node(&self) -> Node<'_> {
        let ProcessedVmsReportFrame { href, links, days } = self;
        Node::new("ProcessedVmsReportFrame")
            .layer(vec![list(
                "Days",
                ListStyle::Inline,
                "Day",
                Some(days.iter().map(Representation::to_node).collect()),
            )])
            .layer(resource_layer(links, href, "ProcessedVmsReportFrame"))
    }
}
