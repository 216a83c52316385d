//! What an operator's monitoring scrapes: counters and histograms of the work the server does,
//! in the Prometheus text format (`GET /metrics`, server crate). Events are counted where they
//! happen (logons in `Core::logon_from`, runs in the runner, bytes and gc in their engines,
//! requests in the server's handler); levels (tasks running and waiting, the repository's size)
//! are read when the metrics are scraped.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::time::Duration;

/// The `Content-Type` of [`Metrics::encode`]'s text.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Kind {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindResult {
    kind: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Route {
    route: &'static str,
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteStatus {
    route: &'static str,
    method: String,
    status: u16,
}

fn seconds_histogram() -> Histogram {
    // 1 ms to ~2 h.
    Histogram::new(exponential_buckets(0.001, 4.0, 12))
}

fn request_histogram() -> Histogram {
    // 0.5 ms to ~8 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 15))
}

/// The levels read at scrape time.
#[derive(Clone, Copy, Debug, Default)]
pub struct Levels {
    pub restores_running: u64,
    pub restores_waiting: u64,
    pub jobs_running: u64,
    pub repository_bytes: u64,
    pub repository_chunks: u64,
    /// What the repository's object store was sent so far (none for a folder).
    pub repository_requests: Option<emrest_repo::RequestCounts>,
}

/// Every metric, registered once.
pub struct Metrics {
    registry: Registry,
    logons: Family<Outcome, Counter>,
    runs_started: Family<Kind, Counter>,
    runs_finished: Family<KindResult, Counter>,
    run_seconds: Family<Kind, Histogram, fn() -> Histogram>,
    restore_bytes_written: Counter,
    backup_bytes_read: Counter,
    backup_bytes_stored: Counter,
    gc_bytes_reclaimed: Counter,
    requests: Family<RouteStatus, Counter>,
    request_seconds: Family<Route, Histogram, fn() -> Histogram>,
    tasks_running: Family<Kind, Gauge>,
    restores_waiting: Gauge,
    repository_bytes: Gauge,
    repository_chunks: Gauge,
    store_requests: Family<Kind, Counter>,
    store_retries: Counter,
    store_bytes: Family<Direction, Counter>,
    /// The object store's counts at the last scrape (its counters are its own; each scrape
    /// adds what changed since).
    store_seen: std::sync::Mutex<emrest_repo::RequestCounts>,
}

/// `direction="sent"` or `"received"`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Direction {
    direction: &'static str,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("emrest");
        let m = Metrics {
            logons: Family::default(),
            runs_started: Family::default(),
            runs_finished: Family::default(),
            run_seconds: Family::new_with_constructor(seconds_histogram),
            restore_bytes_written: Counter::default(),
            backup_bytes_read: Counter::default(),
            backup_bytes_stored: Counter::default(),
            gc_bytes_reclaimed: Counter::default(),
            requests: Family::default(),
            request_seconds: Family::new_with_constructor(request_histogram),
            tasks_running: Family::default(),
            restores_waiting: Gauge::default(),
            repository_bytes: Gauge::default(),
            repository_chunks: Gauge::default(),
            store_requests: Family::default(),
            store_retries: Counter::default(),
            store_bytes: Family::default(),
            store_seen: std::sync::Mutex::new(emrest_repo::RequestCounts::default()),
            registry: Registry::default(),
        };
        registry.register(
            "logons",
            "Logons by outcome: success, refused (wrong credentials) or throttled",
            m.logons.clone(),
        );
        registry.register(
            "runs_started",
            "Restores, backup job runs and garbage collections started (kind: restore, backup, gc)",
            m.runs_started.clone(),
        );
        registry.register(
            "runs_finished",
            "Restores, backup job runs and garbage collections finished, by result",
            m.runs_finished.clone(),
        );
        registry.register(
            "run_duration_seconds",
            "How long restores, backup job runs and garbage collections took",
            m.run_seconds.clone(),
        );
        registry.register(
            "restore_written_bytes",
            "Bytes restores wrote to VM disks",
            m.restore_bytes_written.clone(),
        );
        registry.register(
            "backup_read_bytes",
            "Bytes backup job runs read from VM disks",
            m.backup_bytes_read.clone(),
        );
        registry.register(
            "backup_stored_bytes",
            "Bytes backup job runs added to the repository",
            m.backup_bytes_stored.clone(),
        );
        registry.register(
            "gc_reclaimed_bytes",
            "Bytes garbage collection removed from the repository",
            m.gc_bytes_reclaimed.clone(),
        );
        registry.register(
            "http_requests",
            "API requests by route template, method and status",
            m.requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "API request latency by route template and method",
            m.request_seconds.clone(),
        );
        registry.register(
            "tasks_running",
            "Restores, backup job runs and garbage collections running now",
            m.tasks_running.clone(),
        );
        registry.register(
            "restores_waiting",
            "Restores admitted and waiting for a worker",
            m.restores_waiting.clone(),
        );
        registry.register(
            "repository_stored_bytes",
            "Bytes of the repository's pack files",
            m.repository_bytes.clone(),
        );
        registry.register(
            "repository_chunks",
            "Chunks stored in the repository",
            m.repository_chunks.clone(),
        );
        registry.register(
            "object_store_requests",
            "Requests sent to the repository's object store, by kind (get, put, list, head, delete, copy, multipart)",
            m.store_requests.clone(),
        );
        registry.register(
            "object_store_retries",
            "Object store requests repeated after a transient failure",
            m.store_retries.clone(),
        );
        registry.register(
            "object_store_bytes",
            "Bytes sent to and received from the repository's object store",
            m.store_bytes.clone(),
        );
        Metrics { registry, ..m }
    }

    /// A logon: `success`, `refused` or `throttled`.
    pub(crate) fn logon(&self, outcome: &'static str) {
        self.logons.get_or_create(&Outcome { outcome }).inc();
    }

    /// A run of `kind` (`restore`, `backup`, `gc`) started.
    pub(crate) fn run_started(&self, kind: &'static str) {
        self.runs_started.get_or_create(&Kind { kind }).inc();
    }

    /// A run of `kind` ended with `result` (`success`, `warning`, `failed`) after `took`.
    pub(crate) fn run_finished(&self, kind: &'static str, result: &'static str, took: Duration) {
        self.runs_finished
            .get_or_create(&KindResult { kind, result })
            .inc();
        self.run_seconds
            .get_or_create(&Kind { kind })
            .observe(took.as_secs_f64());
    }

    pub(crate) fn restore_written(&self, bytes: u64) {
        self.restore_bytes_written.inc_by(bytes);
    }

    pub(crate) fn backup_done(&self, read: u64, stored: u64) {
        self.backup_bytes_read.inc_by(read);
        self.backup_bytes_stored.inc_by(stored);
    }

    pub(crate) fn gc_reclaimed(&self, bytes: u64) {
        self.gc_bytes_reclaimed.inc_by(bytes);
    }

    /// An API request answered: its route template (`/vmRestorePoints/{ID}`), method, status
    /// and how long it took.
    pub fn request(&self, route: &'static str, method: &str, status: u16, took: Duration) {
        self.requests
            .get_or_create(&RouteStatus {
                route,
                method: method.to_string(),
                status,
            })
            .inc();
        self.request_seconds
            .get_or_create(&Route {
                route,
                method: method.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// Everything, in the Prometheus text format, with the levels given.
    pub fn encode(&self, levels: Levels) -> String {
        let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        for (kind, v) in [
            ("restore", levels.restores_running),
            ("backup", levels.jobs_running),
        ] {
            self.tasks_running
                .get_or_create(&Kind { kind })
                .set(gauge(v));
        }
        self.restores_waiting.set(gauge(levels.restores_waiting));
        self.repository_bytes.set(gauge(levels.repository_bytes));
        self.repository_chunks.set(gauge(levels.repository_chunks));
        if let Some(now) = levels.repository_requests {
            let mut seen = self
                .store_seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let d = now.since(&seen);
            for (kind, n) in [
                ("get", d.get),
                ("put", d.put),
                ("list", d.list),
                ("head", d.head),
                ("delete", d.delete),
                ("copy", d.copy),
                ("multipart", d.multipart),
            ] {
                self.store_requests.get_or_create(&Kind { kind }).inc_by(n);
            }
            self.store_retries.inc_by(d.retries);
            for (direction, n) in [("sent", d.bytes_up), ("received", d.bytes_down)] {
                self.store_bytes
                    .get_or_create(&Direction { direction })
                    .inc_by(n);
            }
            *seen = now;
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}
