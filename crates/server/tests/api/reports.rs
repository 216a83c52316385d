//! `/repositories` and `/reports/summary` with its frames, in XML and JSON, with figures that
//! agree with the demo estate and the real file system.

use crate::common::*;
use axum::http::StatusCode;
use emrest_core::Role;

#[tokio::test]
async fn the_repository_is_listed_with_real_space_and_links_in_both_formats() {
    let w = World::new(ONE_MIB).await;
    let refs = w.get_json("/api/repositories").await.json();
    let refs = arr(&refs, "Refs");
    assert_eq!(refs.len(), 1, "{refs:?}");
    let id = uuid_of(refs[0]["UID"].as_str().unwrap());
    // The same UUID on every request (kept in the catalog).
    let again = w.get_json("/api/repositories").await.json();
    assert_eq!(uuid_of(arr(&again, "Refs")[0]["UID"].as_str().unwrap()), id);

    let list = w.get_json("/api/repositories?format=Entity").await.json();
    let e = &arr(&list, "Repositories")[0];
    // Member order is checked by the wire golden tests; here every member is present.
    let mut keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "Capacity",
            "FreeSpace",
            "Href",
            "Kind",
            "Links",
            "Name",
            "Type",
            "UID"
        ]
    );
    assert_eq!(e["Kind"], "LinuxLocal");
    let cap = e["Capacity"].as_i64().unwrap();
    let free = e["FreeSpace"].as_i64().unwrap();
    assert!(free > 0 && free <= cap, "FreeSpace {free}, Capacity {cap}");
    // veeam_exporter reads Links[0].Name as the backup server (JSON.md D3).
    assert_eq!(e["Links"][0]["Rel"], "Up");
    assert_eq!(e["Links"][0]["Name"], "backup01.lab.local");
    let backups = w
        .get_json(&path_of(&link(e, "Down", "BackupReferenceList")))
        .await;
    assert_eq!(backups.status, StatusCode::OK, "{}", backups.text());
    let all = w.get_json("/api/backups").await.json();
    assert_eq!(arr(&backups.json(), "Refs").len(), arr(&all, "Refs").len());

    let x = w
        .get_xml(&format!("/api/repositories/{id}?format=Entity"))
        .await;
    assert_eq!(x.status, StatusCode::OK);
    let x = x.xml();
    assert_eq!(x.name, "Repository");
    assert_eq!(x.text_of("Capacity"), cap.to_string());
    assert_eq!(x.text_of("Kind"), "LinuxLocal");
    let r = w.get_xml(&format!("/api/repositories/{id}")).await.xml();
    assert_eq!(r.name, "EntityRef");
    assert_eq!(r.attr("Type"), Some("RepositoryReference"));
}

#[tokio::test]
async fn unknown_or_malformed_repository_ids_are_refused() {
    let w = World::new(ONE_MIB).await;
    let r = w
        .get_json("/api/repositories/00000000-0000-4000-8000-000000000001")
        .await;
    assert!(r.json_error(StatusCode::NOT_FOUND).contains("Repository"));
    let r = w.get_xml("/api/repositories/not-a-uuid").await;
    assert!(r.xml_error(StatusCode::BAD_REQUEST).contains("not-a-uuid"));
}

#[tokio::test]
async fn the_summary_links_every_frame_and_each_frame_answers_in_both_formats() {
    let w = World::new(ONE_MIB).await;
    let s = w.get_json("/api/reports/summary").await.json();
    assert_eq!(s["Type"], "SummaryReport");
    let frames = [
        ("OverviewReportFrame", "/api/reports/summary/overview"),
        (
            "VmsOverviewReportFrame",
            "/api/reports/summary/vms_overview",
        ),
        (
            "JobStatisticsReportFrame",
            "/api/reports/summary/job_statistics",
        ),
        ("RepositoryReportFrame", "/api/reports/summary/repository"),
        (
            "ProcessedVmsReportFrame",
            "/api/reports/summary/processed_vms",
        ),
    ];
    for (element, path) in frames {
        assert_eq!(path_of(&link(&s, "Down", element)), path);
        let j = w.get_json(path).await;
        assert_eq!(j.status, StatusCode::OK, "{path}: {}", j.text());
        assert_eq!(j.json()["Type"], element);
        let x = w.get_xml(path).await;
        assert_eq!(x.status, StatusCode::OK, "{path}: {}", x.text());
        assert_eq!(x.xml().name, element);
    }
    let x = w.get_xml("/api/reports/summary").await.xml();
    assert_eq!(x.name, "SummaryReport");
    assert_eq!(x.child("Links").all("Link").len(), 5);
    assert_eq!(
        w.get_json("/api/reports/summary/nothing").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn report_figures_agree_with_the_demo_estate() {
    let w = World::new(ONE_MIB).await;
    let sessions = w
        .blocking(|c| c.view().backup_sessions(None).unwrap())
        .await;

    // veeam_exporter's keys (JSON.md D3).
    let o = w.get_json("/api/reports/summary/overview").await.json();
    assert_eq!(o["BackupServers"], 1);
    assert_eq!(o["RepositoryServers"], 1);
    assert_eq!(o["RunningJobs"], 0);
    let states = [
        "SuccessfulVmLastestStates",
        "WarningVmLastestStates",
        "FailedVmLastestStates",
    ];
    let total: i64 = states.iter().map(|k| o[k].as_i64().unwrap()).sum();
    assert_eq!(total, 6, "{o}");

    let v = w.get_json("/api/reports/summary/vms_overview").await.json();
    assert_eq!(v["ProtectedVms"], 6);
    assert_eq!(v["BackedUpVms"], 6);
    assert_eq!(v["RestorePoints"], 12);
    assert_eq!(v["ReplicatedVms"], 0);
    // Six VMs, each with its disks of ONE_MIB in the latest point.
    let disks: u64 = w
        .blocking(|c| {
            c.view()
                .vm_restore_points(None)
                .unwrap()
                .iter()
                .filter(|p| p.point_type == emrest_core::PointType::Increment)
                .map(|p| p.disks.iter().map(|d| d.size).sum::<u64>())
                .sum()
        })
        .await;
    assert_eq!(v["SourceVmsSize"].as_u64().unwrap(), disks);
    assert!(v["FullBackupPointsSize"].as_i64().unwrap() > 0, "{v}");
    let x = w.get_xml("/api/reports/summary/vms_overview").await.xml();
    assert_eq!(x.text_of("RestorePoints"), "12");

    let s = w
        .get_json("/api/reports/summary/job_statistics")
        .await
        .json();
    assert_eq!(s["TotalJobRuns"].as_u64().unwrap(), sessions.len() as u64);
    let runs: i64 = ["SuccessfulJobRuns", "WarningsJobRuns", "FailedJobRuns"]
        .iter()
        .map(|k| s[k].as_i64().unwrap())
        .sum();
    assert_eq!(runs as usize, sessions.len(), "{s}");

    // The `veeam` client reads Periods[i].FreeSpace and .Capacity (JSON.md D1).
    let r = w.get_json("/api/reports/summary/repository").await.json();
    let p = &arr(&r, "Periods")[0];
    let stored = w.blocking(|c| c.repository().stored_bytes().unwrap()).await;
    assert_eq!(p["BackupSize"].as_u64().unwrap(), stored);
    assert!(stored > 0);
    let (cap, free) = (
        p["Capacity"].as_i64().unwrap(),
        p["FreeSpace"].as_i64().unwrap(),
    );
    assert!(free > 0 && free <= cap);
    let x = w.get_xml("/api/reports/summary/repository").await.xml();
    assert_eq!(x.all("Period").len(), 1);

    // Each day counts the VMs that got a point that day (the demo dates its full backup a
    // day before its incremental one).
    let d = w
        .get_json("/api/reports/summary/processed_vms")
        .await
        .json();
    let days = arr(&d, "Days");
    assert_eq!(days.len(), 7);
    let created: Vec<(String, i64)> = w
        .blocking(|c| {
            c.view()
                .vm_restore_points(None)
                .unwrap()
                .iter()
                .map(|p| (p.vm_name.clone(), p.created))
                .collect()
        })
        .await;
    for day in days {
        let start = emrest_wire::UtcTime::parse_wire(day["Timestamp"].as_str().unwrap())
            .unwrap()
            .unix_millis();
        let vms: std::collections::BTreeSet<&str> = created
            .iter()
            .filter(|(_, t)| *t >= start && *t < start + 86_400_000)
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(
            day["BackupedVms"].as_u64().unwrap(),
            vms.len() as u64,
            "{d}"
        );
    }
    let processed: u64 = days
        .iter()
        .map(|d| d["BackupedVms"].as_u64().unwrap())
        .sum();
    assert!(processed >= 6, "{d}");
}

#[tokio::test]
async fn a_vm_restore_operator_may_not_read_repositories_or_reports() {
    let w = World::new(ONE_MIB).await;
    let operator = w.logon_new_account("operator", Role::RestoreOperator).await;
    for path in [
        "/api/repositories",
        "/api/reports/summary",
        "/api/reports/summary/overview",
        "/api/reports/summary/repository",
    ] {
        let r = w.send(Req::get(path).accept(JSON).token(&operator)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {}", r.text());
    }
    // A Portal User may (security_roles_concept.md).
    let user = w.logon_new_account("viewer", Role::PortalUser).await;
    let r = w
        .send(
            Req::get("/api/reports/summary/vms_overview")
                .accept(JSON)
                .token(&user),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}
