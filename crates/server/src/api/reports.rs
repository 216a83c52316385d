//! `/reports/summary` and its frames (reports_summary.md, get_reports_summary*.md): thin
//! mappings of the figures core computes (emrest_core::summary).

use super::repositories::clamp;
use super::Ctx;
use crate::endpoint::ReportFrame;
use crate::reply::Reply;
use emrest_core::{Caller, CoreError};
use emrest_wire as wire;
use emrest_wire::Link;

fn frame_path(f: ReportFrame) -> String {
    format!("/reports/summary/{}", f.segment())
}

/// Every frame links up to the report list.
fn up(ctx: &Ctx) -> Vec<Link> {
    vec![Link::fixed(
        "Up",
        ctx.url("/reports/summary"),
        None,
        Some("SummaryReport"),
    )]
}

/// `GET /reports/summary`: the list of frames.
pub(super) fn get_reports_summary(ctx: &Ctx) -> Reply {
    let links = ReportFrame::ALL
        .iter()
        .map(|f| Link::fixed("Down", ctx.url(&frame_path(*f)), None, Some(f.element())))
        .collect();
    Reply::ok(
        ctx.format,
        &wire::SummaryReport {
            href: ctx.url("/reports/summary"),
            links,
        },
    )
}

/// `GET /reports/summary/<frame>`.
pub(super) fn get_report_frame(
    ctx: &Ctx,
    caller: &Caller,
    frame: ReportFrame,
) -> Result<Reply, CoreError> {
    let core = &ctx.core;
    let href = ctx.url(&frame_path(frame));
    let links = up(ctx);
    let n = |v: u64| clamp(v);
    Ok(match frame {
        ReportFrame::Overview => {
            let f = core.as_caller(caller).overview_figures()?;
            Reply::ok(
                ctx.format,
                &wire::OverviewReportFrame {
                    href,
                    links,
                    backup_servers: n(f.backup_servers),
                    proxy_servers: n(f.proxy_servers),
                    repository_servers: n(f.repository_servers),
                    running_jobs: n(f.running_jobs),
                    scheduled_jobs: n(f.scheduled_jobs),
                    successful_vm_latest_states: n(f.successful_vms),
                    warning_vm_latest_states: n(f.warning_vms),
                    failed_vm_latest_states: n(f.failed_vms),
                },
            )
        }
        ReportFrame::VmsOverview => {
            let f = core.as_caller(caller).vms_overview_figures()?;
            Reply::ok(
                ctx.format,
                &wire::VmsOverviewReportFrame {
                    href,
                    links,
                    protected_vms: n(f.protected_vms),
                    backed_up_vms: n(f.backed_up_vms),
                    replicated_vms: 0,
                    restore_points: n(f.restore_points),
                    full_backup_points_size: n(f.full_points_size),
                    incremental_backup_points_size: n(f.incremental_points_size),
                    replica_restore_points_size: 0,
                    source_vms_size: n(f.source_vms_size),
                    success_backup_percents: n(f.success_percent),
                    protected_vms_report_link: None,
                },
            )
        }
        ReportFrame::JobStatistics => {
            let f = core.as_caller(caller).job_statistics()?;
            Reply::ok(
                ctx.format,
                &wire::JobStatisticsReportFrame {
                    href,
                    links,
                    running_jobs: n(f.running_jobs),
                    scheduled_jobs: n(f.scheduled_jobs),
                    scheduled_backup_jobs: n(f.scheduled_jobs),
                    scheduled_replica_jobs: 0,
                    total_job_runs: n(f.total_runs),
                    successful_job_runs: n(f.successful_runs),
                    warnings_job_runs: n(f.warning_runs),
                    failed_job_runs: n(f.failed_runs),
                    max_job_duration: n(f.max_duration_secs),
                    max_backup_job_duration: n(f.max_duration_secs),
                    max_replica_job_duration: 0,
                    max_duration_backup_job_name: f.max_duration_job,
                    max_duration_replica_job_name: String::new(),
                    backup_job_status_report_link: None,
                },
            )
        }
        ReportFrame::Repository => {
            let periods = core
                .infrastructure()
                .backup_repositories()?
                .into_iter()
                .map(|r| wire::RepositoryPeriod {
                    name: r.name,
                    capacity: n(r.capacity),
                    free_space: n(r.free_space),
                    backup_size: n(r.backup_size),
                })
                .collect();
            Reply::ok(
                ctx.format,
                &wire::RepositoryReportFrame {
                    href,
                    links,
                    periods,
                    capacity_planning_report_link: None,
                },
            )
        }
        ReportFrame::ProcessedVms => {
            let days = core
                .as_caller(caller)
                .processed_vms()?
                .into_iter()
                .map(|d| wire::ProcessedVmsDay {
                    timestamp: wire::UtcTime::from_unix_millis(d.day),
                    replicated_vms: 0,
                    backuped_vms: n(d.backed_up_vms),
                })
                .collect();
            Reply::ok(
                ctx.format,
                &wire::ProcessedVmsReportFrame { href, links, days },
            )
        }
    })
}
