//! Sample representations shared by the integration tests (emrest's own values).
#![allow(dead_code)]

use emrest_wire::*;

pub const API: &str = "https://em.example.test:9398/api";
pub const SERVER_ID: &str = "0b6c1f9e-2f4a-4d0e-9a51-3c7d8e2f1a01";
pub const BACKUP_ID: &str = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e02";
pub const POINT_ID: &str = "2d3e4f5a-6b7c-4d8e-9fa0-1b2c3d4e5f03";
pub const VM_POINT_ID: &str = "3e4f5a6b-7c8d-4e9f-a0b1-2c3d4e5f6a04";
pub const ROOT_ID: &str = "4f5a6b7c-8d9e-4fa0-b1c2-3d4e5f6a7b05";
pub const FILE_ID: &str = "5a6b7c8d-9eaf-40b1-82d3-4e5f6a7b8c06";
pub const SESSION_ID: &str = "6b7c8d9e-af01-42c3-94e5-5f6a7b8c9d07";
pub const LOGON_ID: &str = "7c8d9eaf-0b12-43d4-a5f6-6a7b8c9d0e08";
pub const REPO_ID: &str = "8d9eaf0b-1c23-44e5-b607-7b8c9d0e1f09";

pub const SERVER_NAME: &str = "vbr01.example.test";
pub const JOB_NAME: &str = "Web tier nightly";
pub const VM: &str = "web-frontend-02";
pub const VM_REF: &str = "urn:VMware:Vm:4f5a6b7c-8d9e-4fa0-b1c2-3d4e5f6a7b05.vm-1207";

pub fn link(rel: &str, path: &str, name: Option<&str>, type_: Option<&str>) -> Link {
    Link::new(rel, format!("{API}{path}"), name, type_)
}

/// 2024-05-17T21:03:09.12Z, when the sample restore point was taken.
pub fn point_time() -> UtcTime {
    UtcTime::from_civil(2024, 5, 17, 21, 3, 9, 120).unwrap()
}

pub fn point_name() -> String {
    point_time().restore_point_name()
}

pub fn vm_point_name() -> String {
    format!("{VM}@{}", point_time().session_name_part())
}

pub fn session_start() -> UtcTime {
    UtcTime::from_civil(2024, 6, 2, 8, 15, 0, 0).unwrap()
}

pub fn session_name() -> String {
    format!("{VM}@{}", session_start().session_name_part())
}

pub fn enterprise_manager() -> EnterpriseManager {
    EnterpriseManager::new(API, &["v1_5", "v1_6", "v1_7"])
}

pub fn logon_session() -> LogonSession {
    LogonSession {
        href: format!("{API}/logonSessions/{LOGON_ID}"),
        links: vec![
            link("Up", "/", None, Some("EnterpriseManager")),
            link(
                "Down",
                "/backupServers",
                None,
                Some("BackupServerReferenceList"),
            ),
            link(
                "Down",
                "/vmRestorePoints",
                None,
                Some("VmRestorePointReferenceList"),
            ),
            link("Down", "/tasks", None, Some("TaskList")),
            link("Delete", &format!("/logonSessions/{LOGON_ID}"), None, None),
        ],
        user_name: "EXAMPLE\\restore-bot".to_owned(),
        session_id: LOGON_ID.to_owned(),
    }
}

pub fn vm_point_ref() -> EntityRef {
    EntityRef {
        type_: "VmRestorePointReference".to_owned(),
        href: format!("{API}/vmRestorePoints/{VM_POINT_ID}"),
        name: vm_point_name(),
        uid: urn("VmRestorePoint", VM_POINT_ID.parse().unwrap()),
        links: vec![
            link(
                "Up",
                &format!("/backupServers/{SERVER_ID}"),
                Some(SERVER_NAME),
                Some("BackupServerReference"),
            ),
            link(
                "Up",
                &format!("/restorePoints/{POINT_ID}"),
                Some(&point_name()),
                Some("RestorePointReference"),
            ),
            link(
                "Up",
                &format!("/backupFiles/{FILE_ID}"),
                Some("Web tier nightlyD2024-05-17T210309.vib"),
                Some("BackupFileReference"),
            ),
            link(
                "Alternate",
                &format!("/vmRestorePoints/{VM_POINT_ID}?format=Entity"),
                Some(&vm_point_name()),
                Some("VmRestorePoint"),
            ),
        ],
    }
}

pub fn server_ref() -> EntityRef {
    EntityRef {
        type_: "BackupServerReference".to_owned(),
        href: format!("{API}/backupServers/{SERVER_ID}"),
        name: SERVER_NAME.to_owned(),
        uid: urn("BackupServer", SERVER_ID.parse().unwrap()),
        links: vec![link(
            "Alternate",
            &format!("/backupServers/{SERVER_ID}?format=Entity"),
            Some(SERVER_NAME),
            Some("BackupServer"),
        )],
    }
}

pub fn backup_server() -> BackupServer {
    let s = format!("/backupServers/{SERVER_ID}");
    BackupServer {
        href: format!("{API}{s}?format=Entity"),
        name: SERVER_NAME.to_owned(),
        uid: urn("BackupServer", SERVER_ID.parse().unwrap()),
        links: vec![
            link(
                "Alternate",
                &s,
                Some(SERVER_NAME),
                Some("BackupServerReference"),
            ),
            link("Down", &format!("{s}/jobs"), None, Some("JobReferenceList")),
            link(
                "Down",
                &format!("{s}/repositories"),
                None,
                Some("RepositoryReferenceList"),
            ),
        ],
        description: String::new(),
        port: 9392,
        version: "12.1.2.172".to_owned(),
        wcf_port: Some(9405),
        vbr_certificate_thumbprint: None,
    }
}

pub fn backup() -> Backup {
    let b = format!("/backups/{BACKUP_ID}");
    Backup {
        href: format!("{API}{b}?format=Entity"),
        name: JOB_NAME.to_owned(),
        uid: urn("Backup", BACKUP_ID.parse().unwrap()),
        links: vec![
            link(
                "Up",
                &format!("/repositories/{REPO_ID}"),
                Some("Local repo"),
                Some("RepositoryReference"),
            ),
            link(
                "Up",
                &format!("/backupServers/{SERVER_ID}"),
                Some(SERVER_NAME),
                Some("BackupServerReference"),
            ),
            link("Alternate", &b, Some(JOB_NAME), Some("BackupReference")),
            link(
                "Down",
                &format!("{b}/restorePoints"),
                None,
                Some("RestorePointReferenceList"),
            ),
            link(
                "Down",
                &format!("{b}/backupFiles"),
                None,
                Some("BackupFileReferenceList"),
            ),
        ],
        platform: "VMware".to_owned(),
        backup_type: "Standard".to_owned(),
    }
}

pub fn restore_point() -> RestorePoint {
    let p = format!("/restorePoints/{POINT_ID}");
    RestorePoint {
        href: format!("{API}{p}?format=Entity"),
        name: point_name(),
        uid: urn("RestorePoint", POINT_ID.parse().unwrap()),
        links: vec![
            link(
                "Up",
                &format!("/backups/{BACKUP_ID}"),
                Some(JOB_NAME),
                Some("BackupReference"),
            ),
            link(
                "Up",
                &format!("/backupServers/{SERVER_ID}"),
                Some(SERVER_NAME),
                Some("BackupServerReference"),
            ),
            link(
                "Alternate",
                &p,
                Some(&point_name()),
                Some("RestorePointReference"),
            ),
            link(
                "Down",
                &format!("{p}/vmRestorePoints"),
                None,
                Some("VmRestorePointReferenceList"),
            ),
            link(
                "Down",
                &format!("{p}/backupFiles"),
                None,
                Some("BackupFileReferenceList"),
            ),
        ],
        backup_date_utc: point_time(),
    }
}

pub fn vm_restore_point() -> VmRestorePoint {
    let v = format!("/vmRestorePoints/{VM_POINT_ID}");
    VmRestorePoint {
        href: format!("{API}{v}?format=Entity"),
        name: vm_point_name(),
        uid: urn("VmRestorePoint", VM_POINT_ID.parse().unwrap()),
        vm_display_name: Some(VM.to_owned()),
        links: vec![
            link("Restore", &format!("{v}?action=restore"), None, None),
            link(
                "Up",
                &format!("/backupServers/{SERVER_ID}"),
                Some(SERVER_NAME),
                Some("BackupServerReference"),
            ),
            link(
                "Up",
                &format!("/restorePoints/{POINT_ID}"),
                Some(&point_name()),
                Some("RestorePointReference"),
            ),
            link(
                "Alternate",
                &v,
                Some(&vm_point_name()),
                Some("VmRestorePointReference"),
            ),
        ],
        creation_time_utc: point_time(),
        vm_name: Some(VM.to_owned()),
        algorithm: "Incremental".to_owned(),
        point_type: "Increment".to_owned(),
        hierarchy_obj_ref: Some(VM_REF.to_owned()),
    }
}

pub fn hierarchy_root() -> HierarchyRoot {
    let h = format!("/hierarchyRoots/{ROOT_ID}");
    HierarchyRoot {
        href: format!("{API}{h}?format=Entity"),
        name: "vcsa.example.test".to_owned(),
        uid: urn("HierarchyRoot", ROOT_ID.parse().unwrap()),
        links: vec![
            link(
                "Up",
                &format!("/backupServers/{SERVER_ID}"),
                Some(SERVER_NAME),
                Some("BackupServerReference"),
            ),
            link(
                "Alternate",
                &h,
                Some("vcsa.example.test"),
                Some("HierarchyRootReference"),
            ),
        ],
        hierarchy_root_id: ROOT_ID.to_owned(),
        unique_id: "5C2D1A7E-93B4-4F0A-8E61-2B7C9D0E4F13".to_owned(),
        host_type: "VC".to_owned(),
    }
}

pub fn backup_file() -> BackupFile {
    let f = format!("/backupFiles/{FILE_ID}");
    let name = "Web tier nightlyD2024-05-17T210309.vib";
    BackupFile {
        href: format!("{API}{f}?format=Entity"),
        name: name.to_owned(),
        uid: urn("BackupFile", FILE_ID.parse().unwrap()),
        links: vec![
            link(
                "Up",
                &format!("/backups/{BACKUP_ID}"),
                Some(JOB_NAME),
                Some("BackupReference"),
            ),
            link("Alternate", &f, Some(name), Some("BackupFileReference")),
            link(
                "Down",
                &format!("{f}/vmRestorePoints"),
                None,
                Some("VmRestorePointReferenceList"),
            ),
        ],
        file_path: format!("D:\\Backups\\{JOB_NAME}\\{name}"),
        backup_size: 7_340_032,
        data_size: 21_474_836_480,
        deduplication_ratio: 1.5,
        compress_ratio: 2.0,
        creation_time_utc: point_time(),
        file_type: "vib".to_owned(),
    }
}

pub fn task_running() -> Task {
    Task {
        href: format!("{API}/tasks/task-7"),
        links: vec![link("Delete", "/tasks/task-7", None, Some("Task"))],
        task_id: "task-7".to_owned(),
        state: TaskState::Running,
        operation: "StartVMRestore".to_owned(),
        result: None,
    }
}

pub fn task_finished() -> Task {
    Task {
        links: vec![
            link("Delete", "/tasks/task-7", None, Some("Task")),
            link(
                "Related",
                &format!("/restoreSessions/{SESSION_ID}?format=Entity"),
                None,
                Some("RestoreSession"),
            ),
        ],
        state: TaskState::Finished,
        result: Some(TaskResult {
            success: true,
            message: "Ok".to_owned(),
        }),
        ..task_running()
    }
}

pub fn restore_session() -> RestoreSession {
    let r = format!("/restoreSessions/{SESSION_ID}");
    RestoreSession {
        href: format!("{API}{r}?format=Entity"),
        name: session_name(),
        uid: urn("RestoreSession", SESSION_ID.parse().unwrap()),
        vm_display_name: Some(VM.to_owned()),
        links: vec![
            link(
                "Up",
                &format!("/backupServers/{SERVER_ID}"),
                Some(SERVER_NAME),
                Some("BackupServerReference"),
            ),
            link(
                "Alternate",
                &r,
                Some(&session_name()),
                Some("RestoreSessionReference"),
            ),
            link(
                "Related",
                &format!("/vmRestorePoints/{VM_POINT_ID}"),
                Some(&vm_point_name()),
                Some("VmRestorePointReference"),
            ),
        ],
        job_uid: None,
        job_name: None,
        job_type: "RestoreVm".to_owned(),
        creation_time_utc: session_start(),
        end_time_utc: Some(UtcTime(session_start().0 + 94_250)),
        state: SessionState::Stopped,
        result: SessionResult::Success,
        progress: 100,
        failure_message: None,
        restored_obj_ref: Some(VM_REF.to_owned()),
    }
}

pub fn error_bad_request() -> Error {
    Error::new(
        400,
        "element <QuickRollback> is out of order in <VmRestoreSpec>",
    )
}

pub fn error_with_exception() -> Error {
    Error {
        first_chance_exception_message: Some(
            "Restore point was not found & cannot be used.".to_owned(),
        ),
        ..Error::new(404, "Restore point was not found & cannot be used.")
    }
}
