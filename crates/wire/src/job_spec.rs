//! Job management bodies, decoded strictly like the restore request (schema table, XML order
//! enforced unless lenient, unknown and duplicate members refused, no DTD): the job edit body
//! `<Job>` (put_jobs_id_actionedit.md), `JobCloneSpec` (post_jobs_id_actionclone.md) and
//! `CreateObjectInJobSpec` (post_jobs_id_includes.md); and `<JobScheduleOptions>`
//! (jobscheduleoptions.md), which the job entity carries and the edit body sends.
//!
//! The edit body is a job entity: attributes (`Name`, `Href`, …) are accepted as members, and
//! what a client sends back as it received it (links, `JobType`, `NextRun`, includes) is
//! accepted and not read, so a GET can be edited and PUT back.

use crate::error::DecodeError;
use crate::node::{attr, child, elem, list, ListStyle, Member, Node, Scalar};
use crate::restore_spec::schema::{Field, Fields, Group, Kind};
use crate::restore_spec::{decode_body, OrderPolicy};
use crate::Format;

const fn field(name: &'static str, kind: Kind) -> Field {
    Field::optional(name, kind)
}

const fn required(name: &'static str, kind: Kind) -> Field {
    Field::required(name, kind)
}

static DAY: Group = Group {
    name: "Day",
    fields: &[field("Name", Kind::Str), field("Value", Kind::Str)],
};

/// `<Schedule>`/`<TimePeriods>`: `<Day Name="…">` items, `"Days": [{"Name", "Value"}]` in JSON.
static TIME_PERIODS: Group = Group {
    name: "TimePeriods",
    fields: &[Field {
        name: "Day",
        alias: Some("Days"),
        kind: Kind::Repeated(&DAY),
        required: false,
    }],
};

static RETRY_OPTIONS: Group = Group {
    name: "RetryOptions",
    fields: &[
        field("RetryTimes", Kind::Int),
        field("RetryTimeout", Kind::Int),
        // The JSON example of resource_representation_for_ke.md spells it `RetrySpecified1`.
        Field {
            name: "RetrySpecified",
            alias: Some("RetrySpecified1"),
            kind: Kind::LaxBool,
            required: false,
        },
    ],
};

static OPTIONS_DAILY: Group = Group {
    name: "OptionsDaily",
    fields: &[
        field("Enabled", Kind::LaxBool),
        field("Kind", Kind::Str),
        field("Days", Kind::StrList),
        field("Time", Kind::Str),
        field("TimeOffsetUtc", Kind::NumOrStr),
    ],
};

static OPTIONS_MONTHLY: Group = Group {
    name: "OptionsMonthly",
    fields: &[
        field("Enabled", Kind::LaxBool),
        field("Time", Kind::Str),
        field("TimeOffsetUtc", Kind::NumOrStr),
        field("DayNumberInMonth", Kind::Str),
        field("DayOfWeek", Kind::Str),
        field("Months", Kind::StrList),
        field("DayOfMonth", Kind::Int),
    ],
};

static OPTIONS_PERIODICALLY: Group = Group {
    name: "OptionsPeriodically",
    fields: &[
        field("Enabled", Kind::LaxBool),
        field("Kind", Kind::Str),
        field("FullPeriod", Kind::Int),
        field("Schedule", Kind::Group(&TIME_PERIODS)),
    ],
};

static OPTIONS_CONTINUOUS: Group = Group {
    name: "OptionsContinuous",
    fields: &[
        field("Enabled", Kind::LaxBool),
        field("Schedule", Kind::Group(&TIME_PERIODS)),
    ],
};

static OPTIONS_BACKUP_WINDOW: Group = Group {
    name: "OptionsBackupWindow",
    fields: &[
        field("Enabled", Kind::LaxBool),
        field("TimePeriods", Kind::Group(&TIME_PERIODS)),
    ],
};

static OPTIONS_DAISY_CHAINING: Group = Group {
    name: "OptionsDaisyChaining",
    fields: &[
        field("Enabled", Kind::LaxBool),
        field("PreviousJobUid", Kind::Str),
    ],
};

/// jobscheduleoptions.md, in the order of resource_representation_for_ke.md's XML.
static STANDART: Group = Group {
    name: "Standart",
    fields: &[
        field("RetryOptions", Kind::Group(&RETRY_OPTIONS)),
        field("WaitForBackupCompletion", Kind::LaxBool),
        field("BackupCompetitionWaitingPeriodMin", Kind::Int),
        field("OptionsDaily", Kind::Group(&OPTIONS_DAILY)),
        field("OptionsMonthly", Kind::Group(&OPTIONS_MONTHLY)),
        field("OptionsPeriodically", Kind::Group(&OPTIONS_PERIODICALLY)),
        // The JSON example of put_jobs_id_actionedit.md spells it `OptionsContinious`.
        Field {
            name: "OptionsContinuous",
            alias: Some("OptionsContinious"),
            kind: Kind::Group(&OPTIONS_CONTINUOUS),
            required: false,
        },
        field("OptionsBackupWindow", Kind::Group(&OPTIONS_BACKUP_WINDOW)),
        field("OptionsDaisyChaining", Kind::Group(&OPTIONS_DAISY_CHAINING)),
    ],
};

/// Options of immediate backup copy jobs, which emrest does not have: only `null` is accepted.
static IMMEDIATE_COPY_MODE: Group = Group {
    name: "ImmediateCopyMode",
    fields: &[],
};

static JOB_SCHEDULE_OPTIONS: Group = Group {
    name: "JobScheduleOptions",
    fields: &[
        field("Standart", Kind::Group(&STANDART)),
        field("ImmediateCopyMode", Kind::Group(&IMMEDIATE_COPY_MODE)),
    ],
};

static SIMPLE_RETENTION_POLICY: Group = Group {
    name: "SimpleRetentionPolicy",
    fields: &[
        field("RetainCycles", Kind::Int),
        field("RetainDaysToKeep", Kind::Int),
        field("RetainLimitType", Kind::Str),
    ],
};

static BACKUP_JOB_INFO: Group = Group {
    name: "BackupJobInfo",
    fields: &[
        field("Includes", Kind::Ignored),
        field("GuestProcessingOptions", Kind::Ignored),
        field("AdvancedStorageOptions", Kind::Ignored),
        field("GfsRetentionPolicy", Kind::Ignored),
        field(
            "SimpleRetentionPolicy",
            Kind::Group(&SIMPLE_RETENTION_POLICY),
        ),
    ],
};

static NO_MEMBERS: Group = Group {
    name: "JobInfo",
    fields: &[],
};

static JOB_INFO: Group = Group {
    name: "JobInfo",
    fields: &[
        field("BackupJobInfo", Kind::Group(&BACKUP_JOB_INFO)),
        field("FileCopyJobInfo", Kind::Group(&NO_MEMBERS)),
        field("ReplicaJobInfo", Kind::Group(&NO_MEMBERS)),
        field("BackupCopyJobInfo", Kind::Group(&NO_MEMBERS)),
        field("ImmediateBackupCopyJobInfo", Kind::Group(&NO_MEMBERS)),
    ],
};

/// The edit body: a `<Job>` (get_jobs_id.md order; attributes in any order).
static JOB_EDIT: Group = Group {
    name: "Job",
    fields: &[
        field("Href", Kind::Ignored),
        field("Type", Kind::Ignored),
        field("Name", Kind::Str),
        field("UID", Kind::Ignored),
        field("Links", Kind::Ignored),
        field("JobType", Kind::Ignored),
        field("Platform", Kind::Ignored),
        field("Description", Kind::Str),
        field("ScheduleConfigured", Kind::LaxBool),
        field("ScheduleEnabled", Kind::LaxBool),
        field("NextRun", Kind::Ignored),
        field("JobScheduleOptions", Kind::Group(&JOB_SCHEDULE_OPTIONS)),
        field("JobInfo", Kind::Group(&JOB_INFO)),
    ],
};

static BACKUP_JOB_CLONE_INFO: Group = Group {
    name: "BackupJobCloneInfo",
    fields: &[
        required("JobName", Kind::Str),
        required("FolderName", Kind::Str),
        required("RepositoryUid", Kind::Str),
        field("Description", Kind::Str),
    ],
};

/// post_jobs_id_actionclone.md: emrest's jobs are backup jobs, so only `BackupJobCloneInfo`.
static JOB_CLONE_SPEC: Group = Group {
    name: "JobCloneSpec",
    fields: &[required(
        "BackupJobCloneInfo",
        Kind::Group(&BACKUP_JOB_CLONE_INFO),
    )],
};

static CREATE_OBJECT_IN_JOB_SPEC: Group = Group {
    name: "CreateObjectInJobSpec",
    fields: &[
        required("HierarchyObjRef", Kind::Str),
        required("HierarchyObjName", Kind::Str),
        field("GuestProcessingOptions", Kind::Ignored),
    ],
};

/// One day of an hour grid: `<Day Name="Sunday">1,1,…</Day>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DayHours {
    /// `Sunday` … `Saturday`.
    pub name: String,
    /// 24 comma-separated `1`/`0`.
    pub value: String,
}

/// `<RetryOptions>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RetryOptions {
    /// Retries of a failed run.
    pub retry_times: Option<i64>,
    /// Minutes between retries.
    pub retry_timeout: Option<i64>,
    /// Whether retries are set.
    pub retry_specified: Option<bool>,
}

/// `<OptionsDaily>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OptionsDaily {
    /// The `Enabled` attribute.
    pub enabled: bool,
    /// `Everyday`, `WeekDays`, `SelectedDays`.
    pub kind: Option<String>,
    /// Weekday names.
    pub days: Vec<String>,
    /// `22:00:00.0000000-07:00`.
    pub time: Option<String>,
    /// UTC offset.
    pub time_offset_utc: Option<String>,
}

/// `<OptionsMonthly>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OptionsMonthly {
    /// The `Enabled` attribute.
    pub enabled: bool,
    /// Time of day.
    pub time: Option<String>,
    /// UTC offset.
    pub time_offset_utc: Option<String>,
    /// `First` … `Fourth`, `Last`, `OnDay`.
    pub day_number_in_month: Option<String>,
    /// Weekday name.
    pub day_of_week: Option<String>,
    /// Month names.
    pub months: Vec<String>,
    /// Day number with `OnDay`.
    pub day_of_month: Option<i64>,
}

/// `<OptionsPeriodically>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OptionsPeriodically {
    /// The `Enabled` attribute.
    pub enabled: bool,
    /// `Hours` or `Minutes`.
    pub kind: Option<String>,
    /// The period in those units.
    pub full_period: Option<i64>,
    /// Permitted hours.
    pub schedule: Vec<DayHours>,
}

/// `<OptionsContinuous>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OptionsContinuous {
    /// The `Enabled` attribute.
    pub enabled: bool,
    /// Permitted hours.
    pub schedule: Vec<DayHours>,
}

/// `<OptionsBackupWindow>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OptionsBackupWindow {
    /// The `Enabled` attribute.
    pub enabled: bool,
    /// Hours a run may be in.
    pub time_periods: Vec<DayHours>,
}

/// `<OptionsDaisyChaining>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OptionsDaisyChaining {
    /// The `Enabled` attribute.
    pub enabled: bool,
    /// `urn:veeam:Job:<uuid>` of the job to run after.
    pub previous_job_uid: Option<String>,
}

/// `<JobScheduleOptions><Standart>…` (jobscheduleoptions.md).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JobScheduleOptions {
    /// Retries.
    pub retry_options: Option<RetryOptions>,
    /// For SureBackup and backup copy jobs.
    pub wait_for_backup_completion: Option<bool>,
    /// Minutes to wait for a backup job (spelled as documented).
    pub backup_competition_waiting_period_min: Option<i64>,
    /// Daily runs.
    pub options_daily: Option<OptionsDaily>,
    /// Monthly runs.
    pub options_monthly: Option<OptionsMonthly>,
    /// Periodic runs.
    pub options_periodically: Option<OptionsPeriodically>,
    /// Continuous runs.
    pub options_continuous: Option<OptionsContinuous>,
    /// Backup window.
    pub options_backup_window: Option<OptionsBackupWindow>,
    /// Run after another job.
    pub options_daisy_chaining: Option<OptionsDaisyChaining>,
}

/// The job edit body (put_jobs_id_actionedit.md): what it sends, `None` for what it leaves.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JobEditSpec {
    /// The `Name` attribute (or property): the job's new name when it differs.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Whether a schedule is set.
    pub schedule_configured: Option<bool>,
    /// Whether it is on.
    pub schedule_enabled: Option<bool>,
    /// The schedule.
    pub schedule: Option<JobScheduleOptions>,
    /// `JobInfo/BackupJobInfo/SimpleRetentionPolicy/RetainCycles`.
    pub retain_cycles: Option<i64>,
    /// `…/RetainLimitType`, when sent.
    pub retain_limit_type: Option<String>,
}

/// `JobCloneSpec/BackupJobCloneInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JobCloneSpec {
    /// Name of the new job.
    pub job_name: String,
    /// Backup folder name.
    pub folder_name: String,
    /// `urn:veeam:Repository:<uuid>`.
    pub repository_uid: String,
    /// Description of the new job.
    pub description: Option<String>,
}

/// `CreateObjectInJobSpec`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CreateObjectInJobSpec {
    /// The VM: `urn:<Platform>:Vm:<root>.<ref>`.
    pub hierarchy_obj_ref: String,
    /// Its name.
    pub hierarchy_obj_name: String,
}

fn days(f: Option<Fields>) -> Vec<DayHours> {
    f.map(|mut g| {
        g.take_list("Day")
            .into_iter()
            .map(|mut d| DayHours {
                name: d.take_str("Name").unwrap_or_default(),
                value: d.take_str("Value").unwrap_or_default(),
            })
            .collect()
    })
    .unwrap_or_default()
}

fn schedule_options(mut f: Fields) -> JobScheduleOptions {
    let Some(mut s) = f.take_group("Standart") else {
        return JobScheduleOptions::default();
    };
    JobScheduleOptions {
        retry_options: s.take_group("RetryOptions").map(|mut r| RetryOptions {
            retry_times: r.take_int("RetryTimes"),
            retry_timeout: r.take_int("RetryTimeout"),
            retry_specified: r.take_bool("RetrySpecified"),
        }),
        wait_for_backup_completion: s.take_bool("WaitForBackupCompletion"),
        backup_competition_waiting_period_min: s.take_int("BackupCompetitionWaitingPeriodMin"),
        options_daily: s.take_group("OptionsDaily").map(|mut d| OptionsDaily {
            enabled: d.take_bool("Enabled").unwrap_or(false),
            kind: d.take_str("Kind"),
            days: d.take_strs("Days").unwrap_or_default(),
            time: d.take_str("Time"),
            time_offset_utc: d.take_str("TimeOffsetUtc"),
        }),
        options_monthly: s.take_group("OptionsMonthly").map(|mut m| OptionsMonthly {
            enabled: m.take_bool("Enabled").unwrap_or(false),
            time: m.take_str("Time"),
            time_offset_utc: m.take_str("TimeOffsetUtc"),
            day_number_in_month: m.take_str("DayNumberInMonth"),
            day_of_week: m.take_str("DayOfWeek"),
            months: m.take_strs("Months").unwrap_or_default(),
            day_of_month: m.take_int("DayOfMonth"),
        }),
        options_periodically: s.take_group("OptionsPeriodically").map(|mut p| {
            OptionsPeriodically {
                enabled: p.take_bool("Enabled").unwrap_or(false),
                kind: p.take_str("Kind"),
                full_period: p.take_int("FullPeriod"),
                schedule: days(p.take_group("Schedule")),
            }
        }),
        options_continuous: s
            .take_group("OptionsContinuous")
            .map(|mut c| OptionsContinuous {
                enabled: c.take_bool("Enabled").unwrap_or(false),
                schedule: days(c.take_group("Schedule")),
            }),
        options_backup_window: s.take_group("OptionsBackupWindow").map(|mut w| {
            OptionsBackupWindow {
                enabled: w.take_bool("Enabled").unwrap_or(false),
                time_periods: days(w.take_group("TimePeriods")),
            }
        }),
        options_daisy_chaining: s.take_group("OptionsDaisyChaining").map(|mut c| {
            OptionsDaisyChaining {
                enabled: c.take_bool("Enabled").unwrap_or(false),
                previous_job_uid: c.take_str("PreviousJobUid"),
            }
        }),
    }
}

/// Decodes the job edit body (a `<Job>`).
pub fn decode_job_edit_spec(
    body: &[u8],
    format: Format,
    order: OrderPolicy,
) -> Result<JobEditSpec, DecodeError> {
    let mut f = decode_body(body, format, order, &JOB_EDIT, true)?;
    let retention = f
        .take_group("JobInfo")
        .and_then(|mut i| i.take_group("BackupJobInfo"))
        .and_then(|mut b| b.take_group("SimpleRetentionPolicy"));
    let (retain_cycles, retain_limit_type) = match retention {
        Some(mut r) => (r.take_int("RetainCycles"), r.take_str("RetainLimitType")),
        None => (None, None),
    };
    Ok(JobEditSpec {
        name: f.take_str("Name"),
        description: f.take_str("Description"),
        schedule_configured: f.take_bool("ScheduleConfigured"),
        schedule_enabled: f.take_bool("ScheduleEnabled"),
        schedule: f.take_group("JobScheduleOptions").map(schedule_options),
        retain_cycles,
        retain_limit_type,
    })
}

/// Decodes a `JobCloneSpec`.
pub fn decode_job_clone_spec(
    body: &[u8],
    format: Format,
    order: OrderPolicy,
) -> Result<JobCloneSpec, DecodeError> {
    let mut f = decode_body(body, format, order, &JOB_CLONE_SPEC, true)?;
    let mut i = f.take_group("BackupJobCloneInfo").unwrap_or_default();
    Ok(JobCloneSpec {
        job_name: i.take_str("JobName").unwrap_or_default(),
        folder_name: i.take_str("FolderName").unwrap_or_default(),
        repository_uid: i.take_str("RepositoryUid").unwrap_or_default(),
        description: i.take_str("Description"),
    })
}

/// Decodes a `CreateObjectInJobSpec`.
pub fn decode_create_object_in_job_spec(
    body: &[u8],
    format: Format,
    order: OrderPolicy,
) -> Result<CreateObjectInJobSpec, DecodeError> {
    let mut f = decode_body(body, format, order, &CREATE_OBJECT_IN_JOB_SPEC, true)?;
    Ok(CreateObjectInJobSpec {
        hierarchy_obj_ref: f.take_str("HierarchyObjRef").unwrap_or_default(),
        hierarchy_obj_name: f.take_str("HierarchyObjName").unwrap_or_default(),
    })
}

fn grid<'a>(name: &'static str, days: &'a [DayHours]) -> Node<'a> {
    let items = days
        .iter()
        .map(|d| {
            Node::new("Day").layer(vec![
                attr("Name", d.name.as_str()),
                Member::Text(d.value.as_str().into()),
            ])
        })
        .collect();
    Node::new(name).layer(vec![list("Days", ListStyle::Inline, "Day", Some(items))])
}

fn texts<'a>(name: &'static str, items: &'a [String]) -> Member<'a> {
    let nodes = items
        .iter()
        .map(|t| Node::new(name).layer(vec![Member::Text(t.as_str().into())]))
        .collect();
    list(name, ListStyle::Inline, name, Some(nodes))
}

/// An options element: its elements, then the `Enabled` attribute (last in JSON, as
/// resource_representation_for_ke.md shows).
fn options<'a>(name: &'static str, enabled: bool, members: Vec<Member<'a>>) -> Node<'a> {
    Node::new(name)
        .layer(members)
        .layer(vec![attr("Enabled", enabled)])
}

fn opt_str(v: &Option<String>) -> Scalar<'_> {
    v.as_deref().map(Scalar::from).unwrap_or(Scalar::Null)
}

impl JobScheduleOptions {
    /// The `<JobScheduleOptions>` element of a job entity.
    pub fn to_node(&self) -> Node<'_> {
        let JobScheduleOptions {
            retry_options,
            wait_for_backup_completion,
            backup_competition_waiting_period_min,
            options_daily,
            options_monthly,
            options_periodically,
            options_continuous,
            options_backup_window,
            options_daisy_chaining,
        } = self;
        let retry = retry_options.as_ref().map(|r| {
            let RetryOptions {
                retry_times,
                retry_timeout,
                retry_specified,
            } = r;
            Node::new("RetryOptions").layer(vec![
                elem(
                    "RetryTimes",
                    retry_times.map(Scalar::Int).unwrap_or(Scalar::Null),
                ),
                elem(
                    "RetryTimeout",
                    retry_timeout.map(Scalar::Int).unwrap_or(Scalar::Null),
                ),
                elem(
                    "RetrySpecified",
                    retry_specified.map(Scalar::Bool).unwrap_or(Scalar::Null),
                ),
            ])
        });
        let daily = options_daily.as_ref().map(|d| {
            options(
                "OptionsDaily",
                d.enabled,
                vec![
                    elem("Kind", opt_str(&d.kind)),
                    texts("Days", &d.days),
                    elem("Time", opt_str(&d.time)),
                    elem("TimeOffsetUtc", opt_str(&d.time_offset_utc)),
                ],
            )
        });
        let monthly = options_monthly.as_ref().map(|m| {
            options(
                "OptionsMonthly",
                m.enabled,
                vec![
                    elem("Time", opt_str(&m.time)),
                    elem("TimeOffsetUtc", opt_str(&m.time_offset_utc)),
                    elem("DayNumberInMonth", opt_str(&m.day_number_in_month)),
                    elem("DayOfWeek", opt_str(&m.day_of_week)),
                    texts("Months", &m.months),
                    elem(
                        "DayOfMonth",
                        m.day_of_month.map(Scalar::Int).unwrap_or(Scalar::Null),
                    ),
                ],
            )
        });
        let periodically = options_periodically.as_ref().map(|p| {
            options(
                "OptionsPeriodically",
                p.enabled,
                vec![
                    elem("Kind", opt_str(&p.kind)),
                    elem(
                        "FullPeriod",
                        p.full_period.map(Scalar::Int).unwrap_or(Scalar::Null),
                    ),
                    child("Schedule", Some(grid("Schedule", &p.schedule))),
                ],
            )
        });
        let continuous = options_continuous.as_ref().map(|c| {
            options(
                "OptionsContinuous",
                c.enabled,
                vec![child("Schedule", Some(grid("Schedule", &c.schedule)))],
            )
        });
        let window = options_backup_window.as_ref().map(|w| {
            options(
                "OptionsBackupWindow",
                w.enabled,
                vec![child(
                    "TimePeriods",
                    Some(grid("TimePeriods", &w.time_periods)),
                )],
            )
        });
        let chaining = options_daisy_chaining.as_ref().map(|c| {
            options(
                "OptionsDaisyChaining",
                c.enabled,
                vec![elem(
                    "PreviousJobUid",
                    c.previous_job_uid.as_deref().unwrap_or(""),
                )],
            )
        });
        let standart = Node::new("Standart").layer(vec![
            child("RetryOptions", retry),
            elem(
                "WaitForBackupCompletion",
                wait_for_backup_completion
                    .map(Scalar::Bool)
                    .unwrap_or(Scalar::Null),
            ),
            elem(
                "BackupCompetitionWaitingPeriodMin",
                backup_competition_waiting_period_min
                    .map(Scalar::Int)
                    .unwrap_or(Scalar::Null),
            ),
            child("OptionsDaily", daily),
            child("OptionsMonthly", monthly),
            child("OptionsPeriodically", periodically),
            child("OptionsContinuous", continuous),
            child("OptionsBackupWindow", window),
            child("OptionsDaisyChaining", chaining),
        ]);
        Node::new("JobScheduleOptions").layer(vec![
            child("Standart", Some(standart)),
            child("ImmediateCopyMode", None),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EDIT_XML: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<Job Type="Job" Href="https://localhost:9398/api/jobs/6c86549b-154f-4566-a76e-52bd64a33aea?format=Entity" Name="SQL Backup HV" UID="urn:veeam:Job:d1b85018-2769-45be-89bc-03f66b60e6cb" xmlns="http://www.veeam.com/ent/v1.0" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <Description>nightly</Description>
  <ScheduleConfigured>true</ScheduleConfigured>
  <ScheduleEnabled>true</ScheduleEnabled>
  <JobScheduleOptions>
    <Standart>
      <RetryOptions>
        <RetryTimes>5</RetryTimes>
      </RetryOptions>
      <OptionsDaily Enabled="true">
        <Kind>SelectedDays</Kind>
        <Days>Monday</Days>
        <Days>Friday</Days>
        <Time>22:00:00.0000000-07:00</Time>
        <TimeOffsetUtc>2</TimeOffsetUtc>
      </OptionsDaily>
      <OptionsBackupWindow Enabled="true">
        <TimePeriods>
          <Day Name="Sunday">1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1</Day>
        </TimePeriods>
      </OptionsBackupWindow>
    </Standart>
  </JobScheduleOptions>
</Job>"#;

    #[test]
    fn the_documented_edit_body_decodes_in_xml_and_json() {
        let x = decode_job_edit_spec(EDIT_XML.as_bytes(), Format::Xml, OrderPolicy::Strict)
            .expect("xml");
        assert_eq!(x.name.as_deref(), Some("SQL Backup HV"));
        assert_eq!(x.description.as_deref(), Some("nightly"));
        let s = x.schedule.expect("schedule");
        assert_eq!(s.retry_options.and_then(|r| r.retry_times), Some(5));
        let d = s.options_daily.expect("daily");
        assert!(d.enabled);
        assert_eq!(d.days, ["Monday", "Friday"]);
        assert_eq!(d.time.as_deref(), Some("22:00:00.0000000-07:00"));
        assert_eq!(d.time_offset_utc.as_deref(), Some("2"));
        let w = s.options_backup_window.expect("window");
        assert_eq!(w.time_periods[0].name, "Sunday");
        assert_eq!(w.time_periods[0].value.len(), 47);

        let j = r#"{"Description": "nightly", "ScheduleConfigured": true, "Name": "DB",
            "UID": "urn:veeam:Job:6c86549b-154f-4566-a76e-52bd64a33aea", "Type": "Job",
            "JobScheduleOptions": {"Standart": {"RetryOptions": {"RetryTimes": "3"},
              "OptionsDaily": {"Enabled": "true", "Kind": "Everyday", "Days": ["Sunday"],
                "Time": "22:00:00", "TimeOffsetUtc": 2},
              "OptionsPeriodically": {"Enabled": false, "Schedule": {"Days": [
                {"Name": "Sunday", "Value": "1,1"}]}}}, "ImmediateCopyMode": null},
            "JobInfo": {"BackupJobInfo": {"SimpleRetentionPolicy": {"RetainCycles": 9}}}}"#;
        let j =
            decode_job_edit_spec(j.as_bytes(), Format::Json, OrderPolicy::Strict).expect("json");
        assert_eq!(j.retain_cycles, Some(9));
        let s = j.schedule.expect("schedule");
        assert_eq!(
            s.options_daily.expect("daily").time_offset_utc.as_deref(),
            Some("2")
        );
        assert_eq!(s.options_periodically.expect("p").schedule[0].value, "1,1");
    }

    #[test]
    fn bad_edit_bodies_name_the_element() {
        let out_of_order = EDIT_XML.replace(
            "<Description>nightly</Description>\n  <ScheduleConfigured>true</ScheduleConfigured>",
            "<ScheduleConfigured>true</ScheduleConfigured>\n  <Description>nightly</Description>",
        );
        let e = decode_job_edit_spec(out_of_order.as_bytes(), Format::Xml, OrderPolicy::Strict)
            .expect_err("order");
        assert_eq!(e.element.as_deref(), Some("Description"));
        let e = decode_job_edit_spec(
            EDIT_XML
                .replace("<RetryTimes>5", "<RetryTimes>five")
                .as_bytes(),
            Format::Xml,
            OrderPolicy::Strict,
        )
        .expect_err("int");
        assert_eq!(e.element.as_deref(), Some("RetryTimes"));
        let e = decode_job_edit_spec(
            br#"{"JobScheduleOptions": {"Standart": {"OptionsHourly": {}}}}"#,
            Format::Json,
            OrderPolicy::Strict,
        )
        .expect_err("unknown");
        assert_eq!(e.element.as_deref(), Some("OptionsHourly"));
        let e = decode_job_clone_spec(
            br#"<JobCloneSpec><ReplicaJobCloneInfo/></JobCloneSpec>"#,
            Format::Xml,
            OrderPolicy::Strict,
        )
        .expect_err("replica");
        assert_eq!(e.element.as_deref(), Some("ReplicaJobCloneInfo"));
        let e = decode_create_object_in_job_spec(
            br#"{"HierarchyObjName": "web01"}"#,
            Format::Json,
            OrderPolicy::Strict,
        )
        .expect_err("required");
        assert_eq!(e.element.as_deref(), Some("HierarchyObjRef"));
    }

    #[test]
    fn schedule_options_encode_as_the_reference_shows() {
        let s = JobScheduleOptions {
            options_daily: Some(OptionsDaily {
                enabled: true,
                kind: Some("Everyday".into()),
                days: vec!["Sunday".into(), "Monday".into()],
                time: Some("22:00:00.0000000+00:00".into()),
                time_offset_utc: Some("0".into()),
            }),
            options_backup_window: Some(OptionsBackupWindow {
                enabled: true,
                time_periods: vec![DayHours {
                    name: "Sunday".into(),
                    value: "1,0".into(),
                }],
            }),
            ..JobScheduleOptions::default()
        };
        let node = s.to_node();
        let json = String::from_utf8(crate::json::encode_document(&node)).expect("utf8");
        assert!(
            json.contains(r#""OptionsDaily":{"Kind":"Everyday","Days":["Sunday","Monday"],"Time":"22:00:00.0000000+00:00","TimeOffsetUtc":"0","Enabled":true}"#),
            "{json}"
        );
        assert!(
            json.contains(r#""TimePeriods":{"Days":[{"Name":"Sunday","Value":"1,0"}]}"#),
            "{json}"
        );
        let xml = String::from_utf8(crate::xml::encode_document(&node)).expect("utf8");
        assert!(xml.contains(r#"<OptionsDaily Enabled="true">"#), "{xml}");
        assert!(xml.contains("<Days>Sunday</Days>"), "{xml}");
        assert!(xml.contains(r#"<Day Name="Sunday">1,0</Day>"#), "{xml}");
    }
}
