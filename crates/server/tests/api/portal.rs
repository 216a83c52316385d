//! The restore portal beside the API: the page and its files at `/` (the API at `/api`
//! unchanged), and `GET /api/emrest/vms`, the portal's list of the VMs a caller may restore,
//! which applies the restore scope exactly as `/vmRestorePoints` does.

use crate::common::*;
use axum::http::StatusCode;

#[tokio::test(flavor = "multi_thread")]
async fn the_portal_is_served_at_the_root_with_a_strict_content_security_policy() {
    let w = World::new(ONE_MIB).await;
    let page = w.send(Req::get("/").no_session()).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.content_type(), "text/html; charset=utf-8");
    let html = page.text();
    for label in ["User name", "Password", "Log on"] {
        assert!(html.contains(label), "the logon form has no '{label}'");
    }
    let csp = page.header("content-security-policy").unwrap_or("");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    for (path, kind) in [
        ("/portal/portal.js", "text/javascript"),
        ("/portal/portal.css", "text/css"),
        ("/portal/favicon.svg", "image/svg+xml"),
    ] {
        let r = w.send(Req::get(path).no_session()).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert!(
            r.content_type().starts_with(kind),
            "{path}: {}",
            r.content_type()
        );
        assert!(!r.body.is_empty(), "{path}");
    }
    // The API is where it was, and a path that is neither is the API's 404 with an Error body.
    let root = w.get_xml("/api").await;
    assert_eq!(root.status, StatusCode::OK);
    assert!(
        root.text().contains("<EnterpriseManager"),
        "{}",
        root.text()
    );
    let missing = w.send(Req::get("/portal/nothing.js").no_session()).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_portals_requests_get_a_401_without_the_basic_challenge() {
    let w = World::new(ONE_MIB).await;
    // Every other client keeps the documented challenge (http_authentication.md).
    let plain = w.send(Req::get("/api/backups").no_session()).await;
    assert_eq!(plain.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        plain.header("www-authenticate"),
        Some("Basic realm=\"RestSvc\"")
    );
    // The portal's script would otherwise get the browser's own password dialog.
    let portal = w
        .send(
            Req::post("/api/sessionMngr/?v=latest")
                .basic(USER, "wrong")
                .header("X-EMRest-Client", "portal")
                .accept(JSON)
                .no_session(),
        )
        .await;
    assert_eq!(portal.status, StatusCode::UNAUTHORIZED);
    assert_eq!(portal.header("www-authenticate"), None);
    assert_eq!(
        portal.json()["Message"],
        "Invalid user name or password.",
        "the API's message reaches the page"
    );
}

fn names(j: &serde_json::Value) -> Vec<String> {
    arr(j, "RestorableVms")
        .iter()
        .map(|v| v["Name"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_vm_list_shows_every_restorable_vm_with_its_place_power_and_newest_point() {
    let w = World::new(ONE_MIB).await;
    let web01 = w.vm("web01").await.unwrap();
    w.power_off(&web01.key()).await;
    let j = w.get_json("/api/emrest/vms").await.json();
    assert_eq!(
        names(&j),
        [
            "app01",
            "db01",
            "file01",
            "tenant-db",
            "tenant-web",
            "web01"
        ]
    );
    let vms = arr(&j, "RestorableVms");
    let web = vms.iter().find(|v| v["Name"] == "web01").unwrap();
    assert_eq!(web["Platform"], "VMware");
    assert_eq!(web["HierarchyRootName"], "vcenter01.lab.local");
    assert_eq!(web["PowerState"], "PoweredOff");
    assert_eq!(web["HierarchyObjRef"], web01.hierarchy_obj_ref().as_str());
    assert_eq!(web["RestorePointCount"], 2);
    // The newest point is the VM's newest point, named by the UID its Related link leads to.
    let newest = w
        .blocking(move |c| {
            c.view()
                .vm_restore_points(None)
                .unwrap()
                .into_iter()
                .filter(|p| p.vm_name == "web01")
                .max_by_key(|p| p.created)
                .unwrap()
        })
        .await;
    assert_eq!(
        web["LastRestorePointUid"],
        format!("urn:veeam:VmRestorePoint:{}", newest.id)
    );
    assert_eq!(web["LastRestorePointType"], "Increment");
    let related = web["Links"][0]["Href"].as_str().unwrap();
    assert_eq!(
        related,
        format!("{BASE}/vmRestorePoints/{}?format=Entity", newest.id)
    );
    let app = vms.iter().find(|v| v["Name"] == "app01").unwrap();
    assert_eq!(app["PowerState"], "PoweredOn");
    assert_eq!(app["Platform"], "HyperV");
    // The XML flavour carries the same members.
    let x = w.get_xml("/api/emrest/vms").await;
    assert_eq!(x.status, StatusCode::OK);
    let xml = x.text();
    assert_eq!(xml.matches("<RestorableVm ").count(), 6, "{xml}");
    assert!(xml.contains("<PowerState>PoweredOff</PowerState>"), "{xml}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scoped_operator_sees_only_the_vms_of_its_scope() {
    let w = World::new(ONE_MIB).await;
    let db01 = w.vm("db01").await.unwrap();
    let token =
        crate::security::scoped_operator(&w, "LAB\\db.operator", &db01.hierarchy_obj_ref()).await;
    let r = w
        .send(Req::get("/api/emrest/vms").token(&token).accept(JSON))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(names(&r.json()), ["db01"]);
    // Without a session there is no list at all.
    let r = w.send(Req::get("/api/emrest/vms").no_session()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}
