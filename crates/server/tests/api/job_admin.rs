//! Managing jobs through the API in XML and JSON: edit (name, description, retention,
//! schedule), toggle the schedule, add and remove VMs, clone and delete, each answered 202 with
//! a finished task; bad bodies answered 400 naming the element and changing nothing; unknown
//! IDs 404; conflicts (a taken name, a VM twice, a job's last VM) 400 as the other refused
//! job actions are.

use crate::common::*;
use axum::http::{Method, StatusCode};

const VCENTER_JOB: &str = "Backup Job vcenter01";

async fn job_id(w: &World, name: &str) -> String {
    let j = w.get_json("/api/jobs").await.json();
    let r = arr(&j, "Refs")
        .iter()
        .find(|r| r["Name"] == name)
        .unwrap_or_else(|| panic!("no job {name} in {j}"));
    uuid_of(r["UID"].as_str().unwrap())
}

async fn job_entity(w: &World, id: &str) -> serde_json::Value {
    w.get_json(&format!("/api/jobs/{id}?format=Entity"))
        .await
        .json()
}

/// A 202 whose task finished with Success and `Ok`, with the documented operation.
async fn accepted(w: &World, r: Resp, operation: &str) -> serde_json::Value {
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let id = if r.content_type().contains("xml") {
        let x = r.xml();
        assert_eq!(x.text_of("Operation"), operation);
        x.text_of("TaskId").to_string()
    } else {
        let t = r.json();
        assert_eq!(t["Operation"], operation);
        t["TaskId"].as_str().unwrap().to_string()
    };
    let task = w.wait_task(&id).await;
    assert_eq!(task["State"], "Finished");
    assert_eq!(task["Result"]["Success"], true, "{task}");
    assert_eq!(task["Result"]["Message"], "Ok");
    task
}

const DAILY_XML: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<Job Type="Job" Name="Backup Job vcenter01" xmlns="http://www.veeam.com/ent/v1.0">
  <Description>nightly web tier</Description>
  <ScheduleConfigured>true</ScheduleConfigured>
  <ScheduleEnabled>true</ScheduleEnabled>
  <JobScheduleOptions>
    <Standart>
      <RetryOptions>
        <RetryTimes>2</RetryTimes>
        <RetryTimeout>15</RetryTimeout>
        <RetrySpecified>true</RetrySpecified>
      </RetryOptions>
      <OptionsDaily Enabled="true">
        <Kind>SelectedDays</Kind>
        <Days>Monday</Days>
        <Days>Thursday</Days>
        <Time>22:30:00.0000000-07:00</Time>
      </OptionsDaily>
      <OptionsBackupWindow Enabled="true">
        <TimePeriods>
          <Day Name="Sunday">0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1,1</Day>
        </TimePeriods>
      </OptionsBackupWindow>
    </Standart>
  </JobScheduleOptions>
  <JobInfo>
    <BackupJobInfo>
      <SimpleRetentionPolicy>
        <RetainCycles>4</RetainCycles>
      </SimpleRetentionPolicy>
    </BackupJobInfo>
  </JobInfo>
</Job>"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_job_is_edited_and_its_schedule_toggled_in_xml_and_json() {
    let w = World::new(ONE_MIB).await;
    let job = job_id(&w, VCENTER_JOB).await;
    let before = job_entity(&w, &job).await;
    assert_eq!(before["ScheduleConfigured"], false);
    assert_eq!(before["JobScheduleOptions"], serde_json::Value::Null);

    let r = w
        .send(
            Req::new(Method::PUT, &format!("/api/jobs/{job}?action=edit"))
                .content_type(XML)
                .body(DAILY_XML),
        )
        .await;
    accepted(&w, r, "EditJob").await;
    let j = job_entity(&w, &job).await;
    assert_eq!(j["Description"], "nightly web tier");
    assert_eq!(j["ScheduleConfigured"], true);
    assert_eq!(j["ScheduleEnabled"], true);
    assert!(j["NextRun"].is_string(), "{j}");
    assert_eq!(
        j["JobInfo"]["BackupJobInfo"]["SimpleRetentionPolicy"]["RetainCycles"],
        4
    );
    let s = &j["JobScheduleOptions"]["Standart"];
    let daily = &s["OptionsDaily"];
    assert_eq!(daily["Enabled"], true);
    assert_eq!(daily["Kind"], "SelectedDays");
    assert_eq!(daily["Days"], serde_json::json!(["Monday", "Thursday"]));
    assert_eq!(daily["Time"], "22:30:00.0000000-07:00");
    assert_eq!(daily["TimeOffsetUtc"], "-7");
    assert_eq!(s["RetryOptions"]["RetryTimes"], 2);
    assert_eq!(s["RetryOptions"]["RetryTimeout"], 15);
    let window = arr(&s["OptionsBackupWindow"]["TimePeriods"], "Days");
    assert_eq!(window.len(), 7);
    assert_eq!(
        window[0]["Value"],
        "0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1,1"
    );
    // The query service sees the schedule too.
    let q = w
        .get_json("/api/query?type=Job&filter=ScheduleEnabled%3D%3Dtrue")
        .await
        .text();
    assert!(q.contains(&job), "{q}");
    // The same job in XML carries the schedule in the documented shape.
    let x = w
        .get_xml(&format!("/api/jobs/{job}?format=Entity"))
        .await
        .xml();
    let daily = x
        .child("JobScheduleOptions")
        .child("Standart")
        .child("OptionsDaily");
    assert_eq!(daily.attr("Enabled"), Some("true"));
    assert_eq!(daily.all("Days").len(), 2);
    assert!(x
        .child("Links")
        .all("Link")
        .iter()
        .any(|l| l.attr("Rel") == Some("ToggleScheduleEnabled")));

    // JSON: only the retries change; the rest of the schedule stays (a partial edit).
    let r = w
        .send(
            Req::new(Method::PUT, &format!("/api/jobs/{job}?action=edit"))
                .content_type(JSON)
                .accept(JSON)
                .body(r#"{"JobScheduleOptions": {"Standart": {"RetryOptions": {"RetryTimes": "5"}}}}"#),
        )
        .await;
    accepted(&w, r, "EditJob").await;
    let j = job_entity(&w, &job).await;
    let s = &j["JobScheduleOptions"]["Standart"];
    assert_eq!(s["RetryOptions"]["RetryTimes"], 5);
    assert_eq!(s["RetryOptions"]["RetryTimeout"], 15);
    assert_eq!(s["OptionsDaily"]["Kind"], "SelectedDays");

    // toggleScheduleEnabled switches it off (no next run) and on again.
    let toggle = format!("/api/jobs/{job}?action=toggleScheduleEnabled");
    accepted(&w, w.send(Req::post(&toggle)).await, "UpdateJob").await;
    let j = job_entity(&w, &job).await;
    assert_eq!(j["ScheduleEnabled"], false);
    assert_eq!(j["NextRun"], serde_json::Value::Null);
    accepted(
        &w,
        w.send(Req::post(&toggle).accept(JSON)).await,
        "UpdateJob",
    )
    .await;
    assert_eq!(job_entity(&w, &job).await["ScheduleEnabled"], true);

    // A monthly schedule replaces the daily one; then the name changes.
    let monthly = r#"{"Name": "Web monthly", "JobScheduleOptions": {"Standart": {
        "OptionsDaily": {"Enabled": false},
        "OptionsMonthly": {"Enabled": true, "Time": "01:00:00", "TimeOffsetUtc": 2,
          "DayNumberInMonth": "Last", "DayOfWeek": "Friday", "Months": ["June", "December"]}}}}"#;
    let r = w
        .send(
            Req::new(Method::PUT, &format!("/api/jobs/{job}?action=edit"))
                .content_type(JSON)
                .body(monthly),
        )
        .await;
    accepted(&w, r, "EditJob").await;
    let j = job_entity(&w, &job).await;
    assert_eq!(j["Name"], "Web monthly");
    // Its backup (restore points filed by the job's name) is renamed with it.
    let backups = w.get_json("/api/backups").await.json();
    let names: Vec<&str> = arr(&backups, "Refs")
        .iter()
        .filter_map(|b| b["Name"].as_str())
        .collect();
    assert!(names.contains(&"Web monthly"), "{names:?}");
    assert!(!names.contains(&VCENTER_JOB), "{names:?}");
    let s = &j["JobScheduleOptions"]["Standart"];
    assert_eq!(s["OptionsDaily"], serde_json::Value::Null);
    assert_eq!(s["OptionsMonthly"]["DayNumberInMonth"], "Last");
    assert_eq!(s["OptionsMonthly"]["Time"], "01:00:00.0000000+02:00");
    assert_eq!(
        s["OptionsMonthly"]["Months"],
        serde_json::json!(["June", "December"])
    );

    // Options sent all disabled remove the schedule too (another job).
    let other = job_id(&w, "Backup Job hyperv01").await;
    for body in [
        r#"{"JobScheduleOptions": {"Standart": {"OptionsDaily": {"Enabled": true, "Time": "03:00"}}}}"#,
        r#"{"JobScheduleOptions": {"Standart": {"OptionsDaily": {"Enabled": false}}}}"#,
    ] {
        let r = w
            .send(
                Req::new(Method::PUT, &format!("/api/jobs/{other}?action=edit"))
                    .content_type(JSON)
                    .body(body),
            )
            .await;
        accepted(&w, r, "EditJob").await;
        let configured = job_entity(&w, &other).await["ScheduleConfigured"].clone();
        assert_eq!(configured, body.contains("true"), "{body}");
    }
    // ScheduleConfigured false removes the schedule.
    let r = w
        .send(
            Req::new(Method::PUT, &format!("/api/jobs/{job}?action=edit"))
                .content_type(XML)
                .body(r#"<Job xmlns="http://www.veeam.com/ent/v1.0"><ScheduleConfigured>false</ScheduleConfigured></Job>"#),
        )
        .await;
    accepted(&w, r, "EditJob").await;
    let j = job_entity(&w, &job).await;
    assert_eq!(j["ScheduleConfigured"], false);
    assert_eq!(j["JobScheduleOptions"], serde_json::Value::Null);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_edit_bodies_are_refused_naming_the_element_and_change_nothing() {
    let w = World::new(ONE_MIB).await;
    let job = job_id(&w, VCENTER_JOB).await;
    let before = job_entity(&w, &job).await;
    let edit = |ct: &'static str, body: String| {
        Req::new(Method::PUT, &format!("/api/jobs/{job}?action=edit"))
            .content_type(ct)
            .body(&body)
    };
    let cases: Vec<(&str, String, &str)> = vec![
        // Out of order.
        (
            XML,
            DAILY_XML.replace(
                "<Description>nightly web tier</Description>\n  <ScheduleConfigured>true</ScheduleConfigured>",
                "<ScheduleConfigured>true</ScheduleConfigured>\n  <Description>nightly web tier</Description>",
            ),
            "Description",
        ),
        (XML, DAILY_XML.replace("<Days>Monday</Days>", "<Days>Moonday</Days>"), "Days"),
        (XML, DAILY_XML.replace("22:30:00", "26:30:00"), "Time"),
        (XML, DAILY_XML.replace("0,0,1,1</Day>", "0,1</Day>"), "TimePeriods"),
        (XML, DAILY_XML.replace("<RetainCycles>4", "<RetainCycles>0"), "RetainCycles"),
        (
            JSON,
            r#"{"JobScheduleOptions": {"Standart": {"OptionsDaily": {"Enabled": true, "Time": "01:00"},
               "OptionsPeriodically": {"Enabled": true, "Kind": "Hours", "FullPeriod": 2}}}}"#
                .into(),
            "OptionsPeriodically",
        ),
        (
            JSON,
            r#"{"JobScheduleOptions": {"Standart": {"OptionsPeriodically": {"Enabled": true, "Kind": "Minutes", "FullPeriod": 90}}}}"#
                .into(),
            "FullPeriod",
        ),
        (
            JSON,
            r#"{"JobScheduleOptions": {"Standart": {"OptionsDaisyChaining": {"Enabled": true, "PreviousJobUid": "urn:veeam:Job:00000000-0000-4000-8000-000000000000"}}}}"#
                .into(),
            "PreviousJobUid",
        ),
        (
            JSON,
            r#"{"JobScheduleOptions": {"Standart": {"OptionsContinuous": {"Enabled": true}}}}"#.into(),
            "OptionsContinuous",
        ),
        (JSON, r#"{"ScheduleConfigured": true}"#.into(), "JobScheduleOptions"),
        (JSON, r#"{"Colour": "blue"}"#.into(), "Colour"),
    ];
    for (ct, body, element) in cases {
        let r = w.send(edit(ct, body.clone()).accept(JSON)).await;
        let m = r.json_error(StatusCode::BAD_REQUEST);
        assert!(m.contains(element), "{element}: {m}\n{body}");
    }
    // PUT needs ?action=edit; an unknown job is 404; PATCH is not served.
    w.send(
        Req::new(Method::PUT, &format!("/api/jobs/{job}"))
            .content_type(XML)
            .body(DAILY_XML),
    )
    .await
    .xml_error(StatusCode::BAD_REQUEST);
    w.send(
        Req::new(
            Method::PUT,
            "/api/jobs/00000000-0000-4000-8000-000000000000?action=edit",
        )
        .content_type(XML)
        .body(DAILY_XML),
    )
    .await
    .xml_error(StatusCode::NOT_FOUND);
    let r = w
        .send(Req::new(Method::PATCH, &format!("/api/jobs/{job}")))
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.header("allow"), Some("GET, POST, PUT, DELETE"));
    assert_eq!(job_entity(&w, &job).await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn vms_are_added_to_and_removed_from_a_job() {
    let w = World::new(ONE_MIB).await;
    let job = job_id(&w, VCENTER_JOB).await;
    let includes = format!("/api/jobs/{job}/includes");
    let list = w.get_json(&includes).await.json();
    let objs = arr(&list, "ObjectInJobs").clone();
    assert_eq!(objs.len(), 2);
    // A VM of the same vCenter, made for the test.
    let vm = w
        .blocking(|c| {
            let web = c
                .inventory()
                .vms()
                .unwrap()
                .into_iter()
                .find(|v| v.name == "web01")
                .unwrap();
            let ds = c.inventory().datastores(web.root).unwrap()[0]
                .object_ref
                .clone();
            c.inventory()
                .create_vm(
                    web.root,
                    &ds,
                    "cache01",
                    &[emrest_platform::DiskInfo {
                        name: "disk-0".into(),
                        size: 1 << 20,
                    }],
                    emrest_platform::PowerState::PoweredOn,
                )
                .unwrap()
        })
        .await;
    let body = format!(
        r#"<CreateObjectInJobSpec xmlns="http://www.veeam.com/ent/v1.0"><HierarchyObjRef>{}</HierarchyObjRef><HierarchyObjName>cache01</HierarchyObjName></CreateObjectInJobSpec>"#,
        vm.hierarchy_obj_ref()
    );
    let r = w
        .send(Req::post(&includes).content_type(XML).body(&body))
        .await;
    accepted(&w, r, "UpdateJob").await;
    // Twice is refused.
    w.send(Req::post(&includes).content_type(XML).body(&body))
        .await
        .xml_error(StatusCode::BAD_REQUEST);
    let list = w.get_json(&includes).await.json();
    let objs = arr(&list, "ObjectInJobs").clone();
    assert_eq!(objs.len(), 3);
    let added = objs.iter().find(|o| o["Name"] == "cache01").expect("added");
    let oid = added["ObjectInJobId"].as_str().unwrap().to_string();
    let one = w.get_json(&format!("{includes}/{oid}")).await.json();
    assert_eq!(one["HierarchyObjRef"], vm.hierarchy_obj_ref());
    let x = w.get_xml(&format!("{includes}/{oid}")).await.xml();
    assert_eq!(x.name, "ObjectInJob");
    assert_eq!(x.text_of("Name"), "cache01");

    // A bad body names the missing element; an unknown VM is refused.
    let m = w
        .send(
            Req::post(&includes)
                .content_type(JSON)
                .accept(JSON)
                .body(r#"{"HierarchyObjName": "x"}"#),
        )
        .await
        .json_error(StatusCode::BAD_REQUEST);
    assert!(m.contains("HierarchyObjRef"), "{m}");
    w.send(Req::post(&includes).content_type(JSON).body(
        r#"{"HierarchyObjRef": "urn:VMware:Vm:00000000-0000-0000-0000-000000000000.vm-1", "HierarchyObjName": "x"}"#,
    ))
    .await
    .xml_error(StatusCode::BAD_REQUEST);

    // Removing: 202; unknown → 404; the last VM stays (400).
    accepted(
        &w,
        w.send(Req::delete(&format!("{includes}/{oid}")).accept(JSON))
            .await,
        "UpdateJob",
    )
    .await;
    w.get_json(&format!("{includes}/{oid}"))
        .await
        .json_error(StatusCode::NOT_FOUND);
    w.send(Req::delete(&format!("{includes}/{oid}")))
        .await
        .xml_error(StatusCode::NOT_FOUND);
    let first = objs[0]["ObjectInJobId"].as_str().unwrap().to_string();
    let second = objs[1]["ObjectInJobId"].as_str().unwrap().to_string();
    accepted(
        &w,
        w.send(Req::delete(&format!("{includes}/{first}"))).await,
        "UpdateJob",
    )
    .await;
    let m = w
        .send(Req::delete(&format!("{includes}/{second}")))
        .await
        .xml_error(StatusCode::BAD_REQUEST);
    assert!(m.contains("only VM"), "{m}");
    let list = w.get_json(&includes).await.json();
    assert_eq!(arr(&list, "ObjectInJobs").len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_is_cloned_and_deleted() {
    let w = World::new(ONE_MIB).await;
    let job = job_id(&w, VCENTER_JOB).await;
    let repos = w.get_json("/api/repositories").await.json();
    let repo = arr(&repos, "Refs")[0]["UID"].as_str().unwrap().to_string();
    let clone = |body: String| {
        Req::post(&format!("/api/jobs/{job}?action=clone"))
            .content_type(XML)
            .body(&body)
    };
    let spec = |name: &str, repo: &str| {
        format!(
            r#"<JobCloneSpec xmlns="http://www.veeam.com/ent/v1.0"><BackupJobCloneInfo><JobName>{name}</JobName><FolderName>{name}</FolderName><RepositoryUid>{repo}</RepositoryUid><Description>copy</Description></BackupJobCloneInfo></JobCloneSpec>"#
        )
    };
    let task = accepted(&w, w.send(clone(spec("Web copy", &repo))).await, "CloneJob").await;
    let copy = job_id(&w, "Web copy").await;
    // post_jobs_id_actionclone.md: the finished task links to the new job.
    assert_eq!(
        path_of(&link(&task, "Related", "Job")),
        format!("/api/jobs/{copy}?format=Entity")
    );
    let original = job_entity(&w, &job).await;
    let c = job_entity(&w, &copy).await;
    assert_eq!(c["Description"], "copy");
    let names = |j: &serde_json::Value| -> Vec<String> {
        arr(&j["JobInfo"]["BackupJobInfo"]["Includes"], "ObjectInJobs")
            .iter()
            .map(|o| o["HierarchyObjRef"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&c), names(&original));
    // In JSON too; a taken name is 400, a malformed repository UID 400, an unknown one 404.
    let json = format!(
        r#"{{"BackupJobCloneInfo": {{"JobName": "Web copy 2", "FolderName": "f", "RepositoryUid": "{repo}"}}}}"#
    );
    let r = w
        .send(
            Req::post(&format!("/api/jobs/{job}?action=clone"))
                .content_type(JSON)
                .accept(JSON)
                .body(&json),
        )
        .await;
    accepted(&w, r, "CloneJob").await;
    w.send(clone(spec("web copy", &repo)))
        .await
        .xml_error(StatusCode::BAD_REQUEST);
    let m = w
        .send(clone(spec("Other", "repo-1")))
        .await
        .xml_error(StatusCode::BAD_REQUEST);
    assert!(m.contains("RepositoryUid"), "{m}");
    w.send(clone(spec(
        "Other",
        "urn:veeam:Repository:00000000-0000-4000-8000-000000000000",
    )))
    .await
    .xml_error(StatusCode::NOT_FOUND);
    let m = w
        .send(clone(spec(&"n".repeat(51), &repo)))
        .await
        .xml_error(StatusCode::BAD_REQUEST);
    assert!(m.contains("50"), "{m}");

    // Delete: 202, then the job is gone; a second delete is 404.
    accepted(
        &w,
        w.send(Req::delete(&format!("/api/jobs/{copy}")).accept(JSON))
            .await,
        "DeleteJob",
    )
    .await;
    w.get_json(&format!("/api/jobs/{copy}"))
        .await
        .json_error(StatusCode::NOT_FOUND);
    w.send(Req::delete(&format!("/api/jobs/{copy}")))
        .await
        .xml_error(StatusCode::NOT_FOUND);
    // A job with sessions is deleted with them; its restore points stay.
    let r = w
        .send(Req::post(&format!("/api/jobs/{job}?action=start")))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert!(
        w.blocking(|c| c.jobs().wait_jobs_idle(std::time::Duration::from_secs(60)))
            .await
    );
    let points = w.get_json("/api/vmRestorePoints").await.json();
    accepted(
        &w,
        w.send(Req::delete(&format!("/api/jobs/{job}"))).await,
        "DeleteJob",
    )
    .await;
    assert_eq!(w.get_json("/api/vmRestorePoints").await.json(), points);
    // Only a Portal Administrator manages jobs.
    let other = w
        .logon_new_account("operator", emrest_core::Role::RestoreOperator)
        .await;
    w.send(Req::delete(&format!("/api/jobs/{job}")).token(&other))
        .await
        .xml_error(StatusCode::FORBIDDEN);
}
