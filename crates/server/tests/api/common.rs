//! The test world: a fresh data folder with the demo estate, the real router driven in-process,
//! a logged-on tester, and helpers to read XML and JSON bodies and disk hashes.

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use base64::Engine;
use emrest_core::demo::DemoOptions;
use emrest_core::{Core, CoreConfig, Owner, PointType, Role, VmRestorePointRecord};
use emrest_platform::{PowerState, VmInfo, VmKey};
use emrest_server::{router_with_cache, ApiOptions, ReplyCache};
use http_body_util::BodyExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

/// The Host every request carries unless a test says otherwise.
pub const HOST: &str = "emrest.test:9399";
/// `http://` + HOST + `/api`: links must start with this.
pub const BASE: &str = "http://emrest.test:9399/api";
/// The test account (a portal administrator).
pub const USER: &str = "tester";
pub const PASSWORD: &str = "correct horse";

pub const ONE_MIB: u64 = 1 << 20;

pub const XML: &str = "application/xml";
pub const JSON: &str = "application/json";

/// One isolated emrest: data folder, core, router and a logged-on session token.
pub struct World {
    pub core: Arc<Owner>,
    pub app: Router,
    /// The router's reply cache (its counters).
    pub cache: Arc<ReplyCache>,
    pub token: String,
    pub _dir: tempfile::TempDir,
}

impl World {
    /// A demo estate with disks of `disk_size` bytes and a logged-on tester.
    pub async fn new(disk_size: u64) -> World {
        World::with_options(disk_size, ApiOptions::default()).await
    }

    /// Same, with API options.
    pub async fn with_options(disk_size: u64, options: ApiOptions) -> World {
        World::with_config(disk_size, options, |_| {}).await
    }

    /// Same, with API options and core settings changed by `config`.
    pub async fn with_config(
        disk_size: u64,
        options: ApiOptions,
        config: impl FnOnce(&mut CoreConfig) + Send + 'static,
    ) -> World {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let core = tokio::task::spawn_blocking(move || {
            let mut cfg = CoreConfig {
                durability: emrest_repo::Durability::NoSync,
                ..CoreConfig::new(path)
            };
            config(&mut cfg);
            let (core, _) = Core::open(cfg).unwrap();
            core.create_demo(&DemoOptions { disk_size }).unwrap();
            core.add_account(USER, PASSWORD, Role::PortalAdministrator)
                .unwrap();
            Arc::new(core)
        })
        .await
        .unwrap();
        let (app, cache) = router_with_cache(Arc::clone(&**core), options);
        let mut world = World {
            core,
            app,
            cache,
            token: String::new(),
            _dir: dir,
        };
        world.token = world.logon(USER, PASSWORD).await;
        world
    }

    /// Log on through the API and return the session token.
    pub async fn logon(&self, user: &str, password: &str) -> String {
        let r = self
            .send(
                Req::post("/api/sessionMngr/?v=latest")
                    .basic(user, password)
                    .no_session(),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "logon failed: {}", r.text());
        r.header("X-RestSvcSessionId").unwrap().to_string()
    }

    /// Add an account in core and log it on through the API.
    pub async fn logon_new_account(&self, user: &str, role: Role) -> String {
        let core = self.core.clone();
        let u = user.to_string();
        tokio::task::spawn_blocking(move || core.add_account(&u, "pw-of-another", role).unwrap())
            .await
            .unwrap();
        self.logon(user, "pw-of-another").await
    }

    /// Send a request through the router; the tester's session header is added unless the
    /// request says otherwise.
    pub async fn send(&self, req: Req) -> Resp {
        self.send_via(&self.app, req).await
    }

    /// [`World::send`] through another router on the same core (other `ApiOptions`).
    pub async fn send_via(&self, app: &Router, req: Req) -> Resp {
        let mut b = Request::builder().method(req.method).uri(&req.uri);
        if !req
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("host"))
        {
            b = b.header("Host", HOST);
        }
        if req.session && !self.token.is_empty() {
            b = b.header("X-RestSvcSessionId", &self.token);
        }
        for (k, v) in &req.headers {
            b = b.header(k.as_str(), v.as_str());
        }
        let request = b.body(Body::from(req.body)).unwrap();
        let resp = app.clone().oneshot(request).await.unwrap();
        Resp::read(resp).await
    }

    /// GET with the tester's session, XML.
    pub async fn get_xml(&self, uri: &str) -> Resp {
        self.send(Req::get(uri)).await
    }

    /// GET with the tester's session, JSON.
    pub async fn get_json(&self, uri: &str) -> Resp {
        self.send(Req::get(uri).accept(JSON)).await
    }

    /// Blocking core work off the async workers.
    pub async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Owner) -> T + Send + 'static,
    ) -> T {
        let core = self.core.clone();
        tokio::task::spawn_blocking(move || f(&core)).await.unwrap()
    }

    /// The VM restore point of a VM, Full (the older one) or Increment (the latest).
    pub async fn point(&self, vm_name: &str, kind: PointType) -> VmRestorePointRecord {
        let name = vm_name.to_string();
        self.blocking(move |c| {
            c.view()
                .vm_restore_points(None)
                .unwrap()
                .into_iter()
                .find(|p| p.vm_name == name && p.point_type == kind)
                .unwrap_or_else(|| panic!("no {kind:?} point of VM {name}"))
        })
        .await
    }

    /// A VM by name (anywhere in the inventory).
    pub async fn vm(&self, name: &str) -> Option<VmInfo> {
        let name = name.to_string();
        self.blocking(move |c| {
            c.inventory()
                .vms()
                .unwrap()
                .into_iter()
                .find(|v| v.name == name)
        })
        .await
    }

    /// SHA-256 of each disk of a VM, by disk name.
    pub async fn vm_disks(&self, key: &VmKey) -> Vec<(String, String)> {
        let key = key.clone();
        self.blocking(move |c| {
            let vm = c.inventory().vm(&key).unwrap();
            vm.disks
                .iter()
                .map(|d| {
                    let f = c.inventory().open_disk(&key, &d.name, false).unwrap();
                    (
                        d.name.clone(),
                        emrest_core::report::sha256_reader(f).unwrap(),
                    )
                })
                .collect()
        })
        .await
    }

    /// SHA-256 of each disk of a restore point as stored in the repository.
    pub async fn point_disks(&self, point: &VmRestorePointRecord) -> Vec<(String, String)> {
        let disks = point.disks.clone();
        self.blocking(move |c| {
            disks
                .iter()
                .map(|d| (d.name.clone(), c.point_disk_sha256(&d.index).unwrap()))
                .collect()
        })
        .await
    }

    /// Everything a bad request must leave alone: every VM (name, place, power, disk hashes),
    /// the task list and the restore session list as the API shows them.
    pub async fn snapshot(&self) -> Snapshot {
        let vms = self
            .blocking(|c| {
                c.vm_report()
                    .unwrap()
                    .into_iter()
                    .map(|v| {
                        format!(
                            "{} {} {} {:?} {:?}",
                            v.hierarchy_obj_ref, v.name, v.datastore, v.power_state, v.disks
                        )
                    })
                    .collect()
            })
            .await;
        let tasks = self.get_json("/api/tasks").await.json();
        let sessions = self.get_json("/api/restoreSessions").await.json();
        Snapshot {
            vms,
            tasks,
            sessions,
        }
    }

    /// POST a restore of a VM restore point with a body in the given format.
    pub async fn restore(&self, point: uuid::Uuid, content_type: &str, body: &str) -> Resp {
        self.send(
            Req::post(&format!("/api/vmRestorePoints/{point}?action=restore"))
                .content_type(content_type)
                .body(body),
        )
        .await
    }

    /// Poll a task until it is Finished (a hang guard, not a timing assertion); returns the
    /// finished task as JSON.
    pub async fn wait_task(&self, task_id: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let r = self.get_json(&format!("/api/tasks/{task_id}")).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text());
            let task = r.json();
            if task["State"] == "Finished" {
                return task;
            }
            assert_eq!(task["State"], "Running", "unexpected task state: {task}");
            assert!(
                Instant::now() < deadline,
                "task {task_id} still running after 20 s"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Run a restore that must be accepted and succeed; returns (accepted task, finished task).
    pub async fn restore_ok(
        &self,
        point: uuid::Uuid,
        content_type: &str,
        body: &str,
    ) -> (serde_json::Value, serde_json::Value) {
        let r = self
            .send(
                Req::post(&format!("/api/vmRestorePoints/{point}?action=restore"))
                    .content_type(content_type)
                    .accept(JSON)
                    .body(body),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
        let accepted = r.json();
        let finished = self.wait_task(accepted["TaskId"].as_str().unwrap()).await;
        assert_eq!(
            finished["Result"]["Success"], true,
            "restore failed: {finished}"
        );
        (accepted, finished)
    }

    /// The restore session a finished task points to (its Related link), as JSON.
    pub async fn session_of(&self, task: &serde_json::Value) -> serde_json::Value {
        let href = link(task, "Related", "RestoreSession");
        let r = self.get_json(&path_of(&href)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        r.json()
    }

    /// The restore session log (emrest extension) of a finished task.
    pub async fn log_of(&self, task: &serde_json::Value) -> String {
        let session = self.session_of(task).await;
        let uid = session["UID"].as_str().unwrap();
        let id = uid.rsplit(':').next().unwrap();
        let r = self
            .get_xml(&format!("/api/restoreSessions/{id}/log"))
            .await;
        assert_eq!(r.status, StatusCode::OK);
        r.text()
    }

    /// Power a VM off (so a test can see PowerOnAfterRestore take effect).
    pub async fn power_off(&self, key: &VmKey) {
        let key = key.clone();
        self.blocking(move |c| {
            c.inventory()
                .set_power(&key, PowerState::PoweredOff)
                .unwrap()
        })
        .await
    }
}

/// What must not change.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    pub vms: Vec<String>,
    pub tasks: serde_json::Value,
    pub sessions: serde_json::Value,
}

/// A request to send.
pub struct Req {
    method: Method,
    uri: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    session: bool,
}

impl Req {
    pub fn new(method: Method, uri: &str) -> Req {
        Req {
            method,
            uri: uri.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
            session: true,
        }
    }
    pub fn get(uri: &str) -> Req {
        Req::new(Method::GET, uri)
    }
    pub fn post(uri: &str) -> Req {
        Req::new(Method::POST, uri)
    }
    pub fn delete(uri: &str) -> Req {
        Req::new(Method::DELETE, uri)
    }
    pub fn header(mut self, k: &str, v: &str) -> Req {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }
    pub fn accept(self, v: &str) -> Req {
        self.header("Accept", v)
    }
    pub fn content_type(self, v: &str) -> Req {
        self.header("Content-Type", v)
    }
    pub fn basic(self, user: &str, password: &str) -> Req {
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        self.header("Authorization", &format!("Basic {b64}"))
    }
    pub fn body(mut self, body: &str) -> Req {
        self.body = body.as_bytes().to_vec();
        self
    }
    /// Do not send the tester's session token.
    pub fn no_session(mut self) -> Req {
        self.session = false;
        self
    }
    /// Send this token instead of the tester's.
    pub fn token(self, token: &str) -> Req {
        self.no_session().header("X-RestSvcSessionId", token)
    }
}

/// A response, fully read.
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    /// Status, headers and the whole body of a router answer.
    pub async fn read(resp: axum::response::Response) -> Resp {
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        Resp {
            status,
            headers,
            body,
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
    pub fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or("")
    }
    /// The body as JSON; asserts the Content-Type says so.
    pub fn json(&self) -> serde_json::Value {
        assert_eq!(self.content_type(), JSON, "body: {}", self.text());
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    /// The body as an XML tree; asserts the Content-Type says so and the namespace is EM's.
    pub fn xml(&self) -> Elem {
        assert_eq!(self.content_type(), XML, "body: {}", self.text());
        let e = Elem::parse(&self.text());
        assert_eq!(
            e.attr("xmlns"),
            Some("http://www.veeam.com/ent/v1.0"),
            "{}",
            self.text()
        );
        e
    }
    /// Assert an Error body in XML with this status; returns its Message.
    pub fn xml_error(&self, status: StatusCode) -> String {
        assert_eq!(self.status, status, "body: {}", self.text());
        let e = self.xml();
        assert_eq!(e.name, "Error", "{}", self.text());
        assert_eq!(
            e.attr("StatusCode"),
            Some(status.as_u16().to_string().as_str())
        );
        let m = e.attr("Message").unwrap().to_string();
        assert!(!m.is_empty());
        m
    }
    /// Assert an Error body in JSON with this status; returns its Message.
    pub fn json_error(&self, status: StatusCode) -> String {
        assert_eq!(self.status, status, "body: {}", self.text());
        let e = self.json();
        assert_eq!(e["StatusCode"], status.as_u16(), "{e}");
        let m = e["Message"].as_str().unwrap().to_string();
        assert!(!m.is_empty());
        m
    }
    /// Assert an Error body in whichever format the response is; returns its Message.
    pub fn error(&self, status: StatusCode) -> String {
        if self.content_type() == JSON {
            self.json_error(status)
        } else {
            self.xml_error(status)
        }
    }
}

/// A parsed XML element: local name, attributes (namespace declarations included), children
/// and text.
#[derive(Debug, Clone)]
pub struct Elem {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Elem>,
    pub text: String,
}

impl Elem {
    pub fn parse(s: &str) -> Elem {
        use quick_xml::events::{BytesStart, Event};
        fn open(e: &BytesStart) -> Elem {
            Elem {
                name: String::from_utf8(e.local_name().as_ref().to_vec()).unwrap(),
                attrs: e
                    .attributes()
                    .map(|a| {
                        let a = a.unwrap();
                        (
                            String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                            a.unescape_value().unwrap().into_owned(),
                        )
                    })
                    .collect(),
                children: Vec::new(),
                text: String::new(),
            }
        }
        let mut reader = quick_xml::Reader::from_str(s);
        let mut stack: Vec<Elem> = Vec::new();
        let mut root = None;
        let mut finish = |stack: &mut Vec<Elem>, el: Elem| match stack.last_mut() {
            Some(parent) => parent.children.push(el),
            None => root = Some(el),
        };
        loop {
            match reader.read_event().unwrap() {
                Event::Start(e) => stack.push(open(&e)),
                Event::Empty(e) => {
                    let el = open(&e);
                    finish(&mut stack, el);
                }
                Event::End(_) => {
                    let el = stack.pop().unwrap();
                    finish(&mut stack, el);
                }
                Event::Text(t) => {
                    if let Some(top) = stack.last_mut() {
                        top.text.push_str(&t.unescape().unwrap());
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        assert!(stack.is_empty(), "unclosed elements in {s}");
        root.unwrap_or_else(|| panic!("no root element in {s:?}"))
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first child of that name.
    pub fn child(&self, name: &str) -> &Elem {
        self.children
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("<{}> has no <{name}>: {self:#?}", self.name))
    }

    /// All children of that name.
    pub fn all(&self, name: &str) -> Vec<&Elem> {
        self.children.iter().filter(|c| c.name == name).collect()
    }

    /// The text of a child element.
    pub fn text_of(&self, name: &str) -> &str {
        self.child(name).text.trim()
    }

    /// Children names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.children.iter().map(|c| c.name.as_str()).collect()
    }

    /// The Href of the link with this Rel (and Type when given).
    pub fn link(&self, rel: &str, type_: Option<&str>) -> String {
        self.child("Links")
            .all("Link")
            .into_iter()
            .find(|l| l.attr("Rel") == Some(rel) && (type_.is_none() || l.attr("Type") == type_))
            .and_then(|l| l.attr("Href"))
            .unwrap_or_else(|| panic!("no {rel} {type_:?} link in {self:#?}"))
            .to_string()
    }
}

/// The Href of a JSON representation's link with this Rel and Type.
pub fn link(rep: &serde_json::Value, rel: &str, type_: &str) -> String {
    rep["Links"]
        .as_array()
        .unwrap_or_else(|| panic!("no Links in {rep}"))
        .iter()
        .find(|l| l["Rel"] == rel && l["Type"] == type_)
        .and_then(|l| l["Href"].as_str())
        .unwrap_or_else(|| panic!("no {rel}/{type_} link in {rep}"))
        .to_string()
}

/// The path and query of an absolute Href of this server (asserting it is one).
pub fn path_of(href: &str) -> String {
    let rest = href
        .strip_prefix("http://emrest.test:9399")
        .unwrap_or_else(|| panic!("{href} is not a link to {BASE}"));
    assert!(rest.starts_with("/api/"), "{href}");
    rest.to_string()
}

/// The UUID at the end of a UID (`urn:veeam:<Kind>:<uuid>`).
pub fn uuid_of(uid: &str) -> String {
    uid.rsplit(':').next().unwrap().to_string()
}

/// An array member of a JSON body.
pub fn arr<'a>(v: &'a serde_json::Value, key: &str) -> &'a Vec<serde_json::Value> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} is not an array in {v}"))
}

/// The account ID of `name`, from `GET /security/accounts` (JSON refs, as veeam_em reads it).
pub async fn account_id(w: &World, name: &str) -> String {
    let j = w.get_json("/api/security/accounts").await.json();
    let r = arr(&j, "Refs")
        .iter()
        .find(|r| r["Name"] == name)
        .unwrap_or_else(|| panic!("no account {name}: {j}"));
    uuid_of(r["UID"].as_str().unwrap())
}

/// Poll the job's sessions until the newest one is Stopped (a hang guard, not a timing
/// assertion); returns it as JSON.
pub async fn wait_job_session(w: &World, job: &str, count: usize) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let j = w
            .get_json(&format!("/api/jobs/{job}/backupSessions?format=Entity"))
            .await
            .json();
        let sessions = arr(&j, "BackupJobSessions");
        if sessions.len() == count && sessions[count - 1]["State"] == "Stopped" {
            return sessions[count - 1].clone();
        }
        assert!(Instant::now() < deadline, "job still running: {j}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
