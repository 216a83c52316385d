//! A repository in an S3-compatible bucket (AWS S3, Garage, MinIO, Ceph RGW):
//! [`S3Storage`], the repository's [`Storage`] trait over signed HTTP requests. A crate of
//! its own so the repository itself stays free of HTTP and XML.
//!
//! What it costs and how it keeps that low:
//! - **Packs are objects**, ~64 MiB each, written with one `PUT` (multipart only above
//!   [`MULTIPART_ABOVE`]), so a GiB backed up costs ~16 PUTs plus its disk indexes.
//! - **Chunk existence never asks the bucket.** Opening a repository reads every pack's
//!   index; here that is the pack's tail, fetched with one ranged `GET` when the repository
//!   hints at it ([`StoredObject::will_need`] up to the object's end) and kept in the node's
//!   **metadata cache** (`<cache>/tails/…`). Packs are named by their content, so a cached
//!   tail never goes stale; a node that lost its cache rebuilds it from the bucket. Lengths
//!   come from the listing, so a cached pack costs no request at all.
//! - **Restores read by range**: one `GET` per run of adjacent records, as from a file.
//! - **Retries** with exponential back-off and jitter for 5xx, 429, timeouts and dropped
//!   connections; every write is idempotent (whole objects, content-addressed names).
//! - **No conditional writes**: Garage does not honour them, and nothing here needs them.
//! - Requests and bytes are counted ([`Storage::requests`]).

mod location;
mod sign;
mod xml;

pub use location::S3Location;

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime};

use ureq::http;

use emrest_repo::{ObjectMeta, ObjectVersion, ObjectWriter, RequestCounts, Storage, StoredObject};
use sign::{Signer, UNSIGNED_PAYLOAD};

/// Objects larger than this go up in parts of [`PART_SIZE`]; a pack (~64 MiB) is one PUT.
pub const MULTIPART_ABOVE: u64 = 128 << 20;
/// The size of one part of a multipart upload (S3 wants at least 5 MiB but for the last).
const PART_SIZE: u64 = 64 << 20;
/// Attempts per request before its error is returned.
const ATTEMPTS: u32 = 6;
/// The first back-off; doubled per attempt, with jitter, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Keys of objects never rewritten under the same name (content-addressed): their tails
/// may be cached for good.
const IMMUTABLE_PREFIXES: [&str; 2] = ["packs/", "dicts/"];
/// How much of a new immutable object's end its writer keeps in the cache: a full pack's
/// index and footer fit.
const KEPT_TAIL: u64 = 256 << 10;
/// Magic of a cached tail file.
const TAIL_MAGIC: [u8; 4] = *b"EMTL";
/// Header of a cached tail: magic, object length, start offset, BLAKE3 of the bytes.
const TAIL_HEADER: usize = 4 + 8 + 8 + 32;

/// An S3-compatible bucket (or a prefix in one) holding a repository.
#[derive(Clone)]
pub struct S3Storage {
    inner: Arc<Inner>,
}

struct Inner {
    location: S3Location,
    signer: Signer,
    session_token: Option<String>,
    /// Objects larger than this are uploaded in parts of `part_size`.
    multipart_above: u64,
    part_size: u64,
    agent: ureq::Agent,
    /// The node's metadata cache folder, when it has one.
    cache: Option<PathBuf>,
    /// Where objects being written are spooled before their upload.
    spool: PathBuf,
    /// Lengths of objects seen in listings, so opening one needs no `HEAD`.
    lengths: Mutex<HashMap<String, u64>>,
    /// Blocks of objects fetched for restores, shared among readers.
    blocks: Mutex<Blocks>,
    /// Uploads handed to threads by finished writers.
    uploads: Mutex<Uploads>,
    /// Signalled when an upload ends (a writer may be waiting for a free slot).
    upload_ended: std::sync::Condvar,
    counters: Counters,
}

impl std::fmt::Debug for S3Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Storage")
            .field("location", &self.inner.location)
            .field("signer", &self.inner.signer)
            .field("cache", &self.inner.cache)
            .finish_non_exhaustive()
    }
}

/// Uploads running at once; a writer finishing beyond them waits (bounding the spooled bytes).
const UPLOADS: usize = 4;

/// How an upload ended, once it has: the error's kind and message, for each who asks.
type Pending = OnceLock<Result<(), (io::ErrorKind, String)>>;

/// Uploads running or ended and not yet waited for, by key.
#[derive(Default)]
struct Uploads {
    pending: HashMap<String, Arc<Pending>>,
    running: usize,
}

/// Reads of at least this many bytes (and under [`BLOCK`]) are served from whole blocks.
const READ_AHEAD_FROM: u64 = 128 << 10;
/// The size (and alignment) of a block fetched for such reads.
const BLOCK: u64 = 4 << 20;
/// Blocks kept at most (64 MiB of memory), the least recently read dropped first.
const KEPT_BLOCKS: usize = 16;

/// A fetched block, or the error fetching it gave (kind and message, to hand to each reader).
type BlockSlot = OnceLock<Result<Arc<[u8]>, (io::ErrorKind, String)>>;

/// The blocks kept, by object key and block number, and their order of arrival.
#[derive(Default)]
struct Blocks {
    slots: HashMap<(String, u64), Arc<BlockSlot>>,
    order: std::collections::VecDeque<(String, u64)>,
}

impl Blocks {
    /// Moves `id` to the young end: blocks read again stay longest (a deduplicated chunk
    /// read from many places, say).
    fn used(&mut self, id: (String, u64)) {
        if let Some(at) = self.order.iter().position(|o| *o == id) {
            self.order.remove(at);
        }
        self.order.push_back(id);
    }
}

/// The request counters, by kind.
#[derive(Default)]
struct Counters {
    get: AtomicU64,
    put: AtomicU64,
    list: AtomicU64,
    head: AtomicU64,
    delete: AtomicU64,
    copy: AtomicU64,
    multipart: AtomicU64,
    retries: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
}

/// What a request is, for the counters.
#[derive(Clone, Copy, Debug)]
enum Op {
    Get,
    Put,
    List,
    Head,
    Delete,
    Copy,
    Multipart,
}

impl Counters {
    fn count(&self, op: Op) {
        let c = match op {
            Op::Get => &self.get,
            Op::Put => &self.put,
            Op::List => &self.list,
            Op::Head => &self.head,
            Op::Delete => &self.delete,
            Op::Copy => &self.copy,
            Op::Multipart => &self.multipart,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// A request's body.
#[derive(Clone, Copy)]
enum Payload<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// `len` bytes of a file from `offset` (a spooled object or one of its parts).
    File {
        file: &'a File,
        offset: u64,
        len: u64,
    },
}

/// How one attempt ended, for the retry loop.
enum Failure {
    /// Worth another attempt (5xx, 429, a dropped connection, a timeout).
    Transient(io::Error),
    /// Final.
    Fatal(io::Error),
}

/// A request: the method, the key (or the bucket), query pairs and extra headers.
struct Call<'a> {
    op: Op,
    method: &'static str,
    key: Option<&'a str>,
    query: &'a [(&'a str, &'a str)],
    headers: &'a [(&'a str, String)],
    payload: Payload<'a>,
}

impl S3Storage {
    /// The bucket at `location`, signing with the key pair in `AWS_ACCESS_KEY_ID` and
    /// `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN` when set). `cache` is the node's
    /// metadata cache folder (created when missing); without one, tails are kept in memory
    /// only and objects spool in the system's temporary folder. Checks nothing remote.
    pub fn new(location: S3Location, cache: Option<&Path>) -> io::Result<S3Storage> {
        let (access_key, secret_key) = location::credentials_from_env()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut storage = S3Storage::with_key(location, &access_key, &secret_key, cache)?;
        if let Some(inner) = Arc::get_mut(&mut storage.inner) {
            inner.session_token = std::env::var("AWS_SESSION_TOKEN")
                .ok()
                .filter(|t| !t.is_empty());
        }
        Ok(storage)
    }

    /// The bucket at `location`, signing with the given key pair (see [`S3Storage::new`]).
    pub fn with_key(
        location: S3Location,
        access_key: &str,
        secret_key: &str,
        cache: Option<&Path>,
    ) -> io::Result<S3Storage> {
        let spool = match cache {
            Some(dir) => {
                let spool = dir.join("spool");
                fs::create_dir_all(&spool)?;
                fs::create_dir_all(dir.join("tails"))?;
                spool
            }
            None => std::env::temp_dir(),
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_recv_response(Some(Duration::from_secs(120)))
            .max_idle_connections(64)
            .max_idle_connections_per_host(32)
            .build()
            .into();
        Ok(S3Storage {
            inner: Arc::new(Inner {
                signer: Signer {
                    access_key: access_key.to_string(),
                    secret_key: secret_key.to_string(),
                    region: location.region.clone(),
                },
                session_token: None,
                multipart_above: MULTIPART_ABOVE,
                part_size: PART_SIZE,
                location,
                agent,
                cache: cache.map(Path::to_path_buf),
                spool,
                lengths: Mutex::new(HashMap::new()),
                blocks: Mutex::new(Blocks::default()),
                uploads: Mutex::new(Uploads::default()),
                upload_ended: std::sync::Condvar::new(),
                counters: Counters::default(),
            }),
        })
    }

    /// Uploads objects larger than `above` in parts of `part_size` (at least 5 MiB, as S3
    /// wants), instead of [`MULTIPART_ABOVE`] and 64 MiB.
    pub fn with_multipart(mut self, above: u64, part_size: u64) -> S3Storage {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.multipart_above = above;
            inner.part_size = part_size.max(5 << 20);
        }
        self
    }

    /// Where it is.
    pub fn location(&self) -> &S3Location {
        &self.inner.location
    }

    /// Creates the bucket (for tests and first set-ups); an existing one of ours is fine.
    pub fn create_bucket(&self) -> io::Result<()> {
        let inner = &self.inner;
        inner.send(
            &Call {
                op: Op::Put,
                method: "PUT",
                key: None,
                query: &[],
                headers: &[],
                payload: Payload::Empty,
            },
            |status, _, body| match status {
                200 => Ok(()),
                409 if error_text(body).contains("BucketAlreadyOwnedByYou") => Ok(()),
                _ => Err(inner.status_error("create bucket", "", status, body)),
            },
        )
    }
}

impl Inner {
    /// Sends `call`, retrying transient failures, and hands the answer to `answer`
    /// (status, headers, body); `answer`'s I/O errors reading the body are transient too.
    fn send<T>(
        &self,
        call: &Call<'_>,
        mut answer: impl FnMut(u16, &http::HeaderMap, &mut dyn Read) -> Result<T, Failure>,
    ) -> io::Result<T> {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            let result = self.attempt(call).and_then(|mut response| {
                let status = response.status().as_u16();
                let headers = response.headers().clone();
                let mut reader = CountingReader {
                    inner: response.body_mut().as_reader(),
                    counted: &self.counters.bytes_down,
                };
                if status >= 500 || status == 429 {
                    let text = error_text(&mut reader);
                    return Err(Failure::Transient(io::Error::other(format!(
                        "{} {}: HTTP {status} {text}",
                        call.method,
                        self.describe(call.key.unwrap_or(""))
                    ))));
                }
                answer(status, &headers, &mut reader)
            });
            match result {
                Ok(v) => return Ok(v),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Transient(e)) if attempt >= ATTEMPTS => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("{e} (gave up after {attempt} attempts)"),
                    ))
                }
                Err(Failure::Transient(e)) => {
                    tracing::warn!(
                        "S3 request failed (attempt {attempt} of {ATTEMPTS}), retrying: {e}"
                    );
                    self.counters.retries.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(jitter(backoff));
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    attempt += 1;
                }
            }
        }
    }

    /// One attempt: signs and sends `call`.
    fn attempt(&self, call: &Call<'_>) -> Result<http::Response<ureq::Body>, Failure> {
        self.counters.count(call.op);
        let loc = &self.location;
        let path = sign::encode_path(&loc.raw_path(call.key));
        let query = sign::encode_query(call.query);
        let amz_date = sign::amz_date(SystemTime::now());
        let payload_hash = match call.payload {
            Payload::Empty => sign::sha256_hex(b""),
            Payload::Bytes(b) => sign::sha256_hex(b),
            Payload::File { .. } => UNSIGNED_PAYLOAD.to_string(),
        };
        let mut headers: Vec<(String, String)> = vec![
            ("host".into(), loc.request_host()),
            ("x-amz-content-sha256".into(), payload_hash.clone()),
            ("x-amz-date".into(), amz_date.clone()),
        ];
        if let Some(token) = &self.session_token {
            headers.push(("x-amz-security-token".into(), token.clone()));
        }
        for (k, v) in call.headers {
            headers.push((k.to_string(), v.clone()));
        }
        let authorization = self.signer.authorization(
            &sign::Request {
                method: call.method,
                path: &path,
                query: &query,
                headers: &headers,
                payload_hash: &payload_hash,
            },
            &amz_date,
        );
        let mut uri = format!("{}://{}{path}", loc.scheme, loc.request_host());
        if !query.is_empty() {
            let q: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            uri.push('?');
            uri.push_str(&q.join("&"));
        }
        let mut builder = http::Request::builder().method(call.method).uri(&uri);
        for (k, v) in &headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        builder = builder.header("authorization", authorization);
        let fatal =
            |e: http::Error| Failure::Fatal(io::Error::other(format!("bad request {uri}: {e}")));
        let sent = match call.payload {
            Payload::Empty => {
                let request = builder
                    .header("content-length", "0")
                    .body(())
                    .map_err(fatal)?;
                self.agent.run(request)
            }
            Payload::Bytes(bytes) => {
                let request = builder.body(bytes).map_err(fatal)?;
                let sent = self.agent.run(request);
                if sent.is_ok() {
                    self.counters
                        .bytes_up
                        .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                }
                sent
            }
            Payload::File { file, offset, len } => {
                let mut reader = FileRange {
                    file,
                    at: offset,
                    end: offset + len,
                };
                let request = builder
                    .header("content-length", len.to_string())
                    .body(ureq::SendBody::from_reader(&mut reader))
                    .map_err(fatal)?;
                let sent = self.agent.run(request);
                if sent.is_ok() {
                    self.counters.bytes_up.fetch_add(len, Ordering::Relaxed);
                }
                sent
            }
        };
        sent.map_err(|e| {
            let transient = matches!(
                e,
                ureq::Error::Io(_)
                    | ureq::Error::Timeout(_)
                    | ureq::Error::ConnectionFailed
                    | ureq::Error::Protocol(_)
            );
            let e = io::Error::other(format!(
                "{} {}: {e}",
                call.method,
                self.describe(call.key.unwrap_or(""))
            ));
            if transient {
                Failure::Transient(e)
            } else {
                Failure::Fatal(e)
            }
        })
    }

    fn describe(&self, key: &str) -> String {
        let loc = &self.location;
        format!("s3://{}/{}{key}", loc.bucket, loc.prefix)
    }

    /// The error for an unexpected `status`: `NotFound` for 404, `PermissionDenied` for
    /// 403 (with the store's explanation), else `Other`.
    fn status_error(&self, what: &str, key: &str, status: u16, body: &mut dyn Read) -> Failure {
        let text = error_text(body);
        let kind = match status {
            404 => io::ErrorKind::NotFound,
            403 => io::ErrorKind::PermissionDenied,
            _ => io::ErrorKind::Other,
        };
        Failure::Fatal(io::Error::new(
            kind,
            format!("{what} {}: HTTP {status} {text}", self.describe(key)),
        ))
    }

    /// The body of a 200 answer; any other status is [`Inner::status_error`].
    fn ok_body(
        &self,
        what: &str,
        key: &str,
        status: u16,
        body: &mut dyn Read,
    ) -> Result<Vec<u8>, Failure> {
        if status != 200 {
            return Err(self.status_error(what, key, status, body));
        }
        read_body(body)
    }

    /// A ranged `GET` of `buf.len()` bytes of `key` from `offset`.
    fn get_range(&self, key: &str, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let range = format!("bytes={}-{}", offset, offset + buf.len() as u64 - 1);
        self.send(
            &Call {
                op: Op::Get,
                method: "GET",
                key: Some(key),
                query: &[],
                headers: &[("range", range)],
                payload: Payload::Empty,
            },
            |status, headers, body| {
                let short = status == 416
                    || matches!(status, 200 | 206)
                        && content_length(headers).is_some_and(|n| n < buf.len() as u64);
                if short {
                    return Err(Failure::Fatal(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "{} ends before byte {}",
                            self.describe(key),
                            offset + buf.len() as u64
                        ),
                    )));
                }
                if status != 206 && !(status == 200 && offset == 0) {
                    return Err(self.status_error("read", key, status, body));
                }
                body.read_exact(buf).map_err(Failure::Transient)
            },
        )
    }

    /// A `PUT` of `len` bytes of `file` from offset 0 as `key`, in parts when large.
    fn upload(&self, key: &str, file: &File, len: u64) -> io::Result<()> {
        if len <= self.multipart_above {
            return self.put_payload(
                key,
                Payload::File {
                    file,
                    offset: 0,
                    len,
                },
            );
        }
        let id = self.send(
            &Call {
                op: Op::Multipart,
                method: "POST",
                key: Some(key),
                query: &[("uploads", "")],
                headers: &[],
                payload: Payload::Empty,
            },
            |status, _, body| {
                let text = self.ok_body("start upload of", key, status, body)?;
                xml::upload_id(&text).map_err(|e| Failure::Fatal(io::Error::other(e)))
            },
        )?;
        let parts = self.upload_parts(key, &id, file, len);
        let done = parts.and_then(|etags| self.complete_upload(key, &id, &etags));
        if done.is_err() {
            // Leaves no parts billed behind; a failure here is only logged by the store.
            let _ = self.send(
                &Call {
                    op: Op::Multipart,
                    method: "DELETE",
                    key: Some(key),
                    query: &[("uploadId", &id)],
                    headers: &[],
                    payload: Payload::Empty,
                },
                |_, _, _| Ok(()),
            );
        }
        done
    }

    fn upload_parts(&self, key: &str, id: &str, file: &File, len: u64) -> io::Result<Vec<String>> {
        let mut etags = Vec::new();
        let mut offset = 0;
        while offset < len {
            let part_len = self.part_size.min(len - offset);
            let number = (etags.len() + 1).to_string();
            let etag = self.send(
                &Call {
                    op: Op::Multipart,
                    method: "PUT",
                    key: Some(key),
                    query: &[("partNumber", &number), ("uploadId", id)],
                    headers: &[],
                    payload: Payload::File {
                        file,
                        offset,
                        len: part_len,
                    },
                },
                |status, headers, body| {
                    if status != 200 {
                        return Err(self.status_error("upload part of", key, status, body));
                    }
                    header(headers, "etag").ok_or_else(|| {
                        Failure::Fatal(io::Error::other("a part's answer has no ETag"))
                    })
                },
            )?;
            etags.push(etag);
            offset += part_len;
        }
        Ok(etags)
    }

    fn complete_upload(&self, key: &str, id: &str, etags: &[String]) -> io::Result<()> {
        let body = xml::complete_body(etags);
        self.send(
            &Call {
                op: Op::Multipart,
                method: "POST",
                key: Some(key),
                query: &[("uploadId", id)],
                headers: &[],
                payload: Payload::Bytes(body.as_bytes()),
            },
            |status, _, body| {
                let text = read_body(body)?;
                // S3 may answer 200 and still report an error in the body.
                match (status, xml::error(&text)) {
                    (200, None) => Ok(()),
                    (_, Some(e)) if e.starts_with("InternalError") || e.starts_with("SlowDown") => {
                        Err(Failure::Transient(io::Error::other(e)))
                    }
                    (_, e) => Err(Failure::Fatal(io::Error::other(format!(
                        "complete upload of {}: HTTP {status} {}",
                        self.describe(key),
                        e.unwrap_or_default()
                    )))),
                }
            },
        )
    }

    fn put_payload(&self, key: &str, payload: Payload<'_>) -> io::Result<()> {
        self.send(
            &Call {
                op: Op::Put,
                method: "PUT",
                key: Some(key),
                query: &[],
                headers: &[],
                payload,
            },
            |status, _, body| match status {
                200 => Ok(()),
                _ => Err(self.status_error("write", key, status, body)),
            },
        )
    }

    /// `HEAD` of `key`: length, modification time and version; `None` for 404.
    fn head(&self, key: &str) -> io::Result<Option<ObjectMeta>> {
        self.send(
            &Call {
                op: Op::Head,
                method: "HEAD",
                key: Some(key),
                query: &[],
                headers: &[],
                payload: Payload::Empty,
            },
            |status, headers, body| match status {
                200 => Ok(Some(meta_of(headers))),
                404 => Ok(None),
                _ => Err(self.status_error("inspect", key, status, body)),
            },
        )
    }

    /// Fills `buf` from `offset` of `key` when kept (or arriving) blocks hold it all.
    fn copy_kept(&self, key: &str, offset: u64, buf: &mut [u8]) -> bool {
        let end = offset + buf.len() as u64;
        let mut at = offset;
        while at < end {
            let number = at / BLOCK;
            let slot = {
                let mut blocks = self.blocks.lock().unwrap_or_else(PoisonError::into_inner);
                let id = (key.to_string(), number);
                match blocks.slots.get(&id).cloned() {
                    Some(slot) => {
                        blocks.used(id);
                        slot
                    }
                    None => return false,
                }
            };
            // A block being fetched by another reader is waited for: it is on its way already.
            let Ok(block) = slot.wait() else {
                return false;
            };
            let from = (at - number * BLOCK) as usize;
            let n = (block.len().saturating_sub(from)).min((end - at) as usize);
            if n == 0 {
                return false;
            }
            let to = (at - offset) as usize;
            buf[to..to + n].copy_from_slice(&block[from..from + n]);
            at += n as u64;
        }
        true
    }

    /// Block `number` of the `len`-byte object `key`, fetched once however many readers
    /// ask at the same time, and kept among the [`KEPT_BLOCKS`] read last.
    fn block(&self, key: &str, len: u64, number: u64) -> io::Result<Arc<[u8]>> {
        let slot = {
            let mut blocks = self.blocks.lock().unwrap_or_else(PoisonError::into_inner);
            let id = (key.to_string(), number);
            if let Some(slot) = blocks.slots.get(&id).cloned() {
                blocks.used(id);
                slot
            } else {
                let slot = Arc::new(OnceLock::new());
                blocks.slots.insert(id.clone(), Arc::clone(&slot));
                blocks.order.push_back(id);
                while blocks.order.len() > KEPT_BLOCKS {
                    if let Some(old) = blocks.order.pop_front() {
                        blocks.slots.remove(&old);
                    }
                }
                slot
            }
        };
        let fetched = slot.get_or_init(|| {
            let start = number * BLOCK;
            let mut bytes = vec![0u8; (len - start).min(BLOCK) as usize];
            self.get_range(key, start, &mut bytes)
                .map(|()| Arc::from(bytes))
                .map_err(|e| (e.kind(), e.to_string()))
        });
        match fetched {
            Ok(block) => Ok(Arc::clone(block)),
            Err((kind, message)) => {
                // Not kept: the next reader asks the store again.
                let mut blocks = self.blocks.lock().unwrap_or_else(PoisonError::into_inner);
                blocks.slots.remove(&(key.to_string(), number));
                Err(io::Error::new(*kind, message.clone()))
            }
        }
    }

    /// Waits for the upload of `key` when one is running or ended unreported; its error,
    /// once (the key is forgotten after).
    fn wait_upload(&self, key: &str) -> io::Result<()> {
        let pending = self
            .uploads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pending
            .get(key)
            .cloned();
        let Some(pending) = pending else {
            return Ok(());
        };
        let done = pending.wait().clone();
        self.uploads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pending
            .remove(key);
        done.map_err(|(kind, message)| io::Error::new(kind, message))
    }

    // ---- the metadata cache of immutable objects' tails ----

    fn tail_path(&self, key: &str) -> Option<PathBuf> {
        let cacheable = IMMUTABLE_PREFIXES.iter().any(|p| key.starts_with(p));
        match &self.cache {
            Some(dir) if cacheable && !key.contains("..") => Some(dir.join("tails").join(key)),
            _ => None,
        }
    }

    /// The cached tail of `key`, when there is a sound one: (object length, tail).
    fn cached_tail(&self, key: &str) -> Option<(u64, Tail)> {
        let bytes = fs::read(self.tail_path(key)?).ok()?;
        if bytes.len() < TAIL_HEADER || bytes[..4] != TAIL_MAGIC {
            return None;
        }
        let len = u64::from_le_bytes(bytes[4..12].try_into().ok()?);
        let start = u64::from_le_bytes(bytes[12..20].try_into().ok()?);
        let data = bytes[TAIL_HEADER..].to_vec();
        let sound = blake3::hash(&data).as_bytes() == &bytes[20..52]
            && start.checked_add(data.len() as u64) == Some(len);
        sound.then_some((len, Tail { start, bytes: data }))
    }

    /// Keeps `tail` of the `len`-byte object `key` in the cache (best effort: a cache that
    /// cannot be written only costs requests later).
    fn keep_tail(&self, key: &str, len: u64, tail: &Tail) {
        let Some(path) = self.tail_path(key) else {
            return;
        };
        let mut bytes = Vec::with_capacity(TAIL_HEADER + tail.bytes.len());
        bytes.extend_from_slice(&TAIL_MAGIC);
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes.extend_from_slice(&tail.start.to_le_bytes());
        bytes.extend_from_slice(blake3::hash(&tail.bytes).as_bytes());
        bytes.extend_from_slice(&tail.bytes);
        let Some(dir) = path.parent() else { return };
        let tmp = dir.join(format!(".tmp-{}-{}", std::process::id(), unique()));
        let written = fs::create_dir_all(dir)
            .and_then(|()| fs::write(&tmp, &bytes))
            .and_then(|()| fs::rename(&tmp, &path));
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
    }
}

/// The last bytes of an object, from `start` to its end.
#[derive(Debug)]
struct Tail {
    start: u64,
    bytes: Vec<u8>,
}

/// An object opened for ranged reads; its tail, once hinted at, is kept.
struct S3Object {
    inner: Arc<Inner>,
    key: String,
    len: u64,
    tail: Mutex<Option<Arc<Tail>>>,
}

impl StoredObject for S3Object {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let end = offset.checked_add(buf.len() as u64);
        if end.is_none_or(|end| end > self.len) {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{} is {} bytes; cannot read {} at {offset}",
                    self.inner.describe(&self.key),
                    self.len,
                    buf.len()
                ),
            ));
        }
        let tail = self
            .tail
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(tail) = tail.filter(|t| t.start <= offset) {
            let at = (offset - tail.start) as usize;
            buf.copy_from_slice(&tail.bytes[at..at + buf.len()]);
            return Ok(());
        }
        let len = buf.len() as u64;
        if !(READ_AHEAD_FROM..BLOCK).contains(&len) {
            // A chunk alone (a rollback's scattered reads, a deduplicated chunk) or a long
            // read: from a block already here, or as asked.
            if self.inner.copy_kept(&self.key, offset, buf) {
                return Ok(());
            }
            return self.inner.get_range(&self.key, offset, buf);
        }
        // A stretch of records read by a restore: the blocks around it are fetched whole
        // and shared, so its neighbours (read next, often by other workers) cost no request.
        let mut at = offset;
        while at < offset + len {
            let number = at / BLOCK;
            let block = self.inner.block(&self.key, self.len, number)?;
            let from = (at - number * BLOCK) as usize;
            let n = (block.len() - from).min((offset + len - at) as usize);
            let to = (at - offset) as usize;
            buf[to..to + n].copy_from_slice(&block[from..from + n]);
            at += n as u64;
        }
        Ok(())
    }

    /// A hint that reaches the object's end fetches everything from `offset` to the end in
    /// one request and keeps it (in the node's cache too, for an immutable object): that is
    /// how a pack's index is read. Other hints are ignored.
    fn will_need(&self, offset: u64, len: u64) {
        if offset.saturating_add(len) < self.len || offset >= self.len {
            return;
        }
        let mut kept = self.tail.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.as_ref().is_some_and(|t| t.start <= offset) {
            return;
        }
        let mut bytes = vec![0u8; (self.len - offset) as usize];
        // Advice only: a failed fetch leaves the reads to fetch (and report) for themselves.
        if self.inner.get_range(&self.key, offset, &mut bytes).is_ok() {
            let tail = Tail {
                start: offset,
                bytes,
            };
            self.inner.keep_tail(&self.key, self.len, &tail);
            *kept = Some(Arc::new(tail));
        }
    }
}

impl Storage for S3Storage {
    fn describe(&self, key: &str) -> String {
        self.inner.describe(key)
    }

    fn get(&self, key: &str) -> io::Result<(Vec<u8>, ObjectVersion)> {
        self.inner.wait_upload(key)?;
        let inner = &self.inner;
        inner.send(
            &Call {
                op: Op::Get,
                method: "GET",
                key: Some(key),
                query: &[],
                headers: &[],
                payload: Payload::Empty,
            },
            |status, headers, body| {
                if status != 200 {
                    return Err(inner.status_error("read", key, status, body));
                }
                let mut bytes = Vec::with_capacity(content_length(headers).unwrap_or(0) as usize);
                body.read_to_end(&mut bytes).map_err(Failure::Transient)?;
                if content_length(headers).is_some_and(|n| n != bytes.len() as u64) {
                    return Err(Failure::Transient(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("{} came short", inner.describe(key)),
                    )));
                }
                Ok((bytes, meta_of(headers).version))
            },
        )
    }

    fn open(&self, key: &str) -> io::Result<Arc<dyn StoredObject>> {
        self.inner.wait_upload(key)?;
        let inner = &self.inner;
        if let Some((len, tail)) = inner.cached_tail(key) {
            return Ok(Arc::new(S3Object {
                inner: Arc::clone(inner),
                key: key.to_string(),
                len,
                tail: Mutex::new(Some(Arc::new(tail))),
            }));
        }
        let listed = inner
            .lengths
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .copied();
        let len = match listed {
            Some(len) => len,
            None => match inner.head(key)? {
                Some(meta) => meta.len,
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("{} does not exist", inner.describe(key)),
                    ))
                }
            },
        };
        Ok(Arc::new(S3Object {
            inner: Arc::clone(inner),
            key: key.to_string(),
            len,
            tail: Mutex::new(None),
        }))
    }

    fn put(&self, key: &str, bytes: &[u8]) -> io::Result<()> {
        self.inner.put_payload(key, Payload::Bytes(bytes))
    }

    fn writer(&self, _prefix: &str) -> io::Result<Box<dyn ObjectWriter>> {
        Ok(Box::new(S3Writer {
            inner: Arc::clone(&self.inner),
            file: std::io::BufWriter::with_capacity(1 << 20, spool_file(&self.inner.spool)?),
            len: 0,
        }))
    }

    fn list(&self, prefix: &str) -> io::Result<Vec<String>> {
        let inner = &self.inner;
        let full = format!("{}{prefix}", inner.location.prefix);
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![("list-type", "2"), ("prefix", full.as_str())];
            if let Some(t) = &token {
                query.push(("continuation-token", t.as_str()));
            }
            let page = inner.send(
                &Call {
                    op: Op::List,
                    method: "GET",
                    key: None,
                    query: &query,
                    headers: &[],
                    payload: Payload::Empty,
                },
                |status, _, body| {
                    let text = inner.ok_body("list", prefix, status, body)?;
                    xml::list_page(&text).map_err(|e| {
                        Failure::Transient(io::Error::other(format!(
                            "list {}: {e}",
                            inner.describe(prefix)
                        )))
                    })
                },
            )?;
            let mut lengths = inner.lengths.lock().unwrap_or_else(PoisonError::into_inner);
            for (key, size) in page.objects {
                if let Some(key) = key.strip_prefix(&inner.location.prefix) {
                    lengths.insert(key.to_string(), size);
                    keys.push(key.to_string());
                }
            }
            drop(lengths);
            match page.next {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        keys.sort();
        Ok(keys)
    }

    fn stat(&self, key: &str) -> io::Result<Option<ObjectMeta>> {
        self.inner.wait_upload(key)?;
        self.inner.head(key)
    }

    /// S3 answers a `DELETE` of a missing key like one of an existing key: a `HEAD` first
    /// tells them apart, as the trait promises.
    fn delete(&self, key: &str) -> io::Result<()> {
        let inner = &self.inner;
        inner.wait_upload(key)?;
        if inner.head(key)?.is_none() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} does not exist", inner.describe(key)),
            ));
        }
        inner.send(
            &Call {
                op: Op::Delete,
                method: "DELETE",
                key: Some(key),
                query: &[],
                headers: &[],
                payload: Payload::Empty,
            },
            |status, _, body| match status {
                200 | 204 | 404 => Ok(()),
                _ => Err(inner.status_error("remove", key, status, body)),
            },
        )?;
        inner
            .lengths
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
        if let Some(path) = inner.tail_path(key) {
            let _ = fs::remove_file(path);
        }
        Ok(())
    }

    /// Copies the object onto itself with its metadata replaced: the store sets a new
    /// modification time, without the bytes crossing the network.
    fn touch(&self, key: &str) -> io::Result<()> {
        let inner = &self.inner;
        inner.wait_upload(key)?;
        let source = sign::encode_path(&format!(
            "{}/{}{key}",
            inner.location.bucket, inner.location.prefix
        ));
        inner.send(
            &Call {
                op: Op::Copy,
                method: "PUT",
                key: Some(key),
                query: &[],
                headers: &[
                    ("x-amz-copy-source", source),
                    ("x-amz-metadata-directive", "REPLACE".to_string()),
                ],
                payload: Payload::Empty,
            },
            |status, _, body| {
                let text = read_body(body)?;
                match (status, xml::error(&text)) {
                    (200, None) => Ok(()),
                    (404, _) => Err(Failure::Fatal(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("{} does not exist", inner.describe(key)),
                    ))),
                    (_, e) => Err(Failure::Fatal(io::Error::other(format!(
                        "touch {}: HTTP {status} {}",
                        inner.describe(key),
                        e.unwrap_or_default()
                    )))),
                }
            },
        )
    }

    /// Removes what a crash left in the node's cache: half-written tail files (`.tmp-*`).
    /// Called only by a writing open, which holds the data folder alone.
    fn remove_temporaries(&self) -> io::Result<()> {
        match &self.inner.cache {
            Some(dir) => emrest_repo::remove_temporaries_under(&dir.join("tails")),
            None => Ok(()),
        }
    }

    /// Waits for the uploads of `keys` still running, and reports the first that failed.
    fn sync(&self, keys: &[&str]) -> io::Result<()> {
        let mut first = Ok(());
        for key in keys {
            let done = self.inner.wait_upload(key);
            if first.is_ok() {
                first = done;
            }
        }
        first
    }

    /// AWS S3 lists what was written at once now, but not every S3-compatible store
    /// promises it.
    fn listing_may_lag(&self) -> bool {
        true
    }

    /// Drops the kept blocks (a pack's tail stays: it is checked against its own BLAKE3
    /// and, once parsed, against the index checksum the pack's footer holds).
    fn forget_reads(&self) {
        let mut blocks = self
            .inner
            .blocks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        blocks.slots.clear();
        blocks.order.clear();
    }

    fn requests(&self) -> Option<RequestCounts> {
        let c = &self.inner.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Some(RequestCounts {
            get: get(&c.get),
            put: get(&c.put),
            list: get(&c.list),
            head: get(&c.head),
            delete: get(&c.delete),
            copy: get(&c.copy),
            multipart: get(&c.multipart),
            retries: get(&c.retries),
            bytes_up: get(&c.bytes_up),
            bytes_down: get(&c.bytes_down),
        })
    }
}

/// An object being written: spooled to an unlinked file, uploaded by `finish`.
struct S3Writer {
    inner: Arc<Inner>,
    file: std::io::BufWriter<File>,
    len: u64,
}

impl ObjectWriter for S3Writer {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Hands the upload to a thread of its own (at most [`UPLOADS`] at once; a writer
    /// finishing beyond that waits for one to end), so the backup worker goes on reading and
    /// compressing while the store takes the pack. [`Storage::sync`] of the key, and any read
    /// of it in this process, waits for the upload and reports its failure.
    fn finish(self: Box<Self>, key: &str) -> io::Result<()> {
        let S3Writer { inner, file, len } = *self;
        let file = file.into_inner().map_err(|e| e.into_error())?;
        // The writing node keeps the new object's tail (a pack's index) without reading
        // it back: its next open needs no request for it.
        if inner.tail_path(key).is_some() {
            let start = len.saturating_sub(KEPT_TAIL);
            let mut bytes = vec![0u8; (len - start) as usize];
            if file.read_exact_at(&mut bytes, start).is_ok() {
                inner.keep_tail(key, len, &Tail { start, bytes });
            }
        }
        inner
            .lengths
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.to_string(), len);
        let pending: Arc<Pending> = Arc::new(OnceLock::new());
        {
            let mut uploads = inner.uploads.lock().unwrap_or_else(PoisonError::into_inner);
            while uploads.running >= UPLOADS {
                uploads = inner
                    .upload_ended
                    .wait(uploads)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            uploads.running += 1;
            uploads
                .pending
                .insert(key.to_string(), Arc::clone(&pending));
        }
        let (worker, name) = (Arc::clone(&inner), key.to_string());
        let upload = move || {
            let done = worker
                .upload(&name, &file, len)
                .map_err(|e| (e.kind(), e.to_string()));
            let _ = pending.set(done);
            let mut uploads = worker
                .uploads
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            uploads.running -= 1;
            worker.upload_ended.notify_all();
        };
        let spawned = std::thread::Builder::new()
            .name("s3-upload".into())
            .spawn(upload);
        if let Err(e) = spawned {
            // No thread: the slot taken above is given back and the caller hears why.
            let mut uploads = inner.uploads.lock().unwrap_or_else(PoisonError::into_inner);
            uploads.running -= 1;
            uploads.pending.remove(key);
            inner.upload_ended.notify_all();
            return Err(e);
        }
        Ok(())
    }
}

/// An unlinked file in `dir`: nothing is left behind, even by a crash.
fn spool_file(dir: &Path) -> io::Result<File> {
    let path = dir.join(format!(".tmp-spool-{}-{}", std::process::id(), unique()));
    let file = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    fs::remove_file(&path)?;
    Ok(file)
}

/// A number not given before in this process.
fn unique() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Reads `end - at` bytes of a file by position (no shared offset: retries reread).
struct FileRange<'a> {
    file: &'a File,
    at: u64,
    end: u64,
}

impl Read for FileRange<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf.len().min((self.end - self.at) as usize);
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.at)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the spooled object ended early",
            ));
        }
        self.at += n as u64;
        Ok(n)
    }
}

/// Counts the bytes read through it.
struct CountingReader<'a, R> {
    inner: R,
    counted: &'a AtomicU64,
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counted.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// A whole answer's body; a connection that drops while it comes is worth another attempt.
fn read_body(body: &mut dyn Read) -> Result<Vec<u8>, Failure> {
    let mut bytes = Vec::new();
    body.read_to_end(&mut bytes).map_err(Failure::Transient)?;
    Ok(bytes)
}

/// The text of an error answer (at most 4 KiB read), for messages.
fn error_text(body: &mut dyn Read) -> String {
    let mut text = Vec::new();
    let _ = body.take(4096).read_to_end(&mut text);
    xml::error(&text).unwrap_or_else(|| String::from_utf8_lossy(&text).trim().to_string())
}

fn header(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    header(headers, "content-length").and_then(|v| v.parse().ok())
}

/// Length, time and version from an object's headers.
fn meta_of(headers: &http::HeaderMap) -> ObjectMeta {
    let len = content_length(headers).unwrap_or(0);
    let modified = header(headers, "last-modified")
        .and_then(|v| httpdate::parse_http_date(&v).ok())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let etag = header(headers, "etag").unwrap_or_default();
    let h = blake3::hash(etag.as_bytes());
    let h = h.as_bytes();
    let word = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&h[i * 8..i * 8 + 8]);
        u64::from_le_bytes(w)
    };
    let secs = modified
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    ObjectMeta {
        len,
        modified,
        version: ObjectVersion([word(0), word(1), word(2), word(3), len, secs, 0]),
    }
}

/// `d` plus up to half of it again, so retries of many workers spread out.
fn jitter(d: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|t| t.subsec_nanos())
        .unwrap_or(0);
    d + d.mul_f64(f64::from(nanos % 1000) / 2000.0)
}
