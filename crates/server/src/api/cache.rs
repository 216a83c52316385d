//! Encoded answers of the hottest read-only GETs (`/vmRestorePoints` and `/tasks/{ID}`), kept
//! for the catalog version they were computed at, so that a repeated request costs a lookup and
//! a reference count instead of the catalog reads and the encoding (bench/api.sh profile: ~180 µs
//! of CPU per entity list).
//!
//! Correct by construction:
//! - the key holds every input of the body besides the catalog: the resource, the query string
//!   as sent, the format, the base URL of the links (scheme and Host), and what the caller may
//!   see ([`Sees`]);
//! - the catalog's part is the version ([`emrest_core::Catalog::data_version`]) read *before*
//!   the body is computed: any commit, by this process or another one on the same file, changes
//!   it, and an entry is only served while the version read for the request is still the one it
//!   was stored under;
//! - only 200 answers without extra headers are kept, and the lookup runs after the session was
//!   resolved and the permission checked (dispatch), so the 401/403 paths are the same as
//!   without it.
//!
//! Memory is bounded: at most [`MAX_ENTRIES`] bodies of at most [`MAX_BODY`] bytes each and
//! [`MAX_BYTES`] in all, the least recently used dropped first; a new catalog version drops
//! every entry of the old one.

use super::Ctx;
use crate::endpoint::Endpoint;
use crate::reply::{Payload, Reply};
use axum::body::Bytes;
use axum::http::{Method, StatusCode};
use emrest_core::security::RestoreScope;
use emrest_core::{Caller, Core, TaskId};
use emrest_wire::Format;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use uuid::Uuid;

/// Most answers kept at once.
const MAX_ENTRIES: usize = 256;
/// Most bytes kept at once (the bodies).
const MAX_BYTES: usize = 16 << 20;
/// A larger body is not kept.
const MAX_BODY: usize = 1 << 20;

/// The resources whose answers are kept.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Resource {
    VmRestorePoints,
    Task(TaskId),
}

/// What the caller may see, as far as the resource's answer depends on it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Sees {
    /// Everything (an administrator, or a restore scope of all VMs).
    Everything,
    /// The VMs inside this restore scope (`/vmRestorePoints`).
    Scope(RestoreScope),
    /// The tasks of this account (`/tasks/{ID}` for a caller who is not an administrator).
    Owner(Uuid),
}

/// Everything an answer depends on besides the catalog.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    resource: Resource,
    /// The query string as sent (paging links and `format=` repeat it): two spellings of the
    /// same query are two entries, never one answer for two queries.
    query: Option<String>,
    format: Format,
    /// `scheme://host/api`: every link of the body starts with it.
    base: String,
    sees: Sees,
}

impl Key {
    /// The key of a request, if its answer may be kept.
    fn of(ctx: &Ctx, caller: &Caller, method: &Method, endpoint: &Endpoint) -> Option<Key> {
        if method != Method::GET {
            return None;
        }
        let (resource, sees) = match endpoint {
            Endpoint::VmRestorePoints => (
                Resource::VmRestorePoints,
                if caller.sees_all_vms() {
                    Sees::Everything
                } else {
                    Sees::Scope(caller.scope().clone())
                },
            ),
            // A malformed ID is answered 400 by the route, never kept.
            Endpoint::Task(id) => (
                Resource::Task(*id.as_ref().ok()?),
                if caller.sees_all_tasks() {
                    Sees::Everything
                } else {
                    Sees::Owner(caller.account_id())
                },
            ),
            _ => return None,
        };
        Some(Key {
            resource,
            query: ctx.raw_query.clone(),
            format: ctx.format,
            base: ctx.base.clone(),
            sees,
        })
    }
}

struct Entry {
    body: Bytes,
    /// When it was last used ([`Inner::clock`]), for dropping the least recently used.
    used: u64,
}

struct Inner {
    /// The catalog version every entry was computed at.
    version: u64,
    entries: HashMap<Key, Entry>,
    bytes: usize,
    clock: u64,
}

/// How often the cache answered, for tests and the curious.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Requests answered from the cache.
    pub hits: u64,
    /// Cacheable requests computed (and then kept when the answer was a 200).
    pub misses: u64,
    /// Answers kept now.
    pub entries: usize,
    /// Bytes kept now.
    pub bytes: usize,
}

/// The cache of encoded answers (see the module).
pub struct ReplyCache {
    inner: Mutex<Inner>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl Default for ReplyCache {
    fn default() -> Self {
        ReplyCache {
            inner: Mutex::new(Inner {
                version: 0,
                entries: HashMap::new(),
                bytes: 0,
                clock: 0,
            }),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }
}

impl ReplyCache {
    /// Counters and size.
    pub fn stats(&self) -> CacheStats {
        let (entries, bytes) = self
            .inner
            .lock()
            .map(|i| (i.entries.len(), i.bytes))
            .unwrap_or_default();
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries,
            bytes,
        }
    }

    /// Look a request up, after its caller was resolved and authorized.
    pub(super) fn lookup<'c>(
        &'c self,
        core: &Core,
        ctx: &Ctx,
        caller: &Caller,
        method: &Method,
        endpoint: &Endpoint,
    ) -> Lookup<'c> {
        let Some(key) = Key::of(ctx, caller, method, endpoint) else {
            return Lookup::Off;
        };
        // Read before the body is computed: a commit while it is computed changes the version,
        // and what is stored under this one is then never served.
        let version = match core.data_version() {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!("reply cache off for this request: {e}");
                return Lookup::Off;
            }
        };
        if let Ok(mut inner) = self.inner.lock() {
            if inner.version == version {
                inner.clock += 1;
                let now = inner.clock;
                if let Some(e) = inner.entries.get_mut(&key) {
                    e.used = now;
                    let body = e.body.clone();
                    drop(inner);
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    return Lookup::Hit(Reply::bytes(StatusCode::OK, ctx.format, body));
                }
            }
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        Lookup::Miss(Pending {
            cache: self,
            key,
            version,
        })
    }

    fn put(&self, key: Key, version: u64, body: Bytes) {
        if body.len() > MAX_BODY {
            return;
        }
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let inner = &mut *inner;
        if inner.version != version {
            // Every entry was computed at another version: none can be served any more. (A
            // request that read its version before a commit and finishes after it may bring
            // the old one back: its entry is dropped by the next newer one.)
            inner.entries.clear();
            inner.bytes = 0;
            inner.version = version;
        }
        if let Some(old) = inner.entries.remove(&key) {
            inner.bytes -= old.body.len();
        }
        while !inner.entries.is_empty()
            && (inner.entries.len() >= MAX_ENTRIES || inner.bytes + body.len() > MAX_BYTES)
        {
            let Some(oldest) = inner
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(e) = inner.entries.remove(&oldest) {
                inner.bytes -= e.body.len();
            }
        }
        inner.clock += 1;
        inner.bytes += body.len();
        let used = inner.clock;
        inner.entries.insert(key, Entry { body, used });
    }
}

/// What the cache has for a request.
pub(super) enum Lookup<'c> {
    /// Not a cacheable request (or the catalog version could not be read).
    Off,
    /// The answer, as computed earlier at the current catalog version.
    Hit(Reply),
    /// To be computed, then handed to [`Pending::keep`].
    Miss(Pending<'c>),
}

/// A cacheable request being computed.
pub(super) struct Pending<'c> {
    cache: &'c ReplyCache,
    key: Key,
    version: u64,
}

impl Pending<'_> {
    /// Keep the computed answer when it is a plain 200.
    pub(super) fn keep(self, reply: &Reply) {
        if reply.status != StatusCode::OK || !reply.headers.is_empty() {
            return;
        }
        if let Payload::Bytes(body) = &reply.body {
            self.cache.put(self.key, self.version, body.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: usize) -> Key {
        Key {
            resource: Resource::Task(TaskId(n as i64)),
            query: None,
            format: Format::Json,
            base: "http://h/api".into(),
            sees: Sees::Everything,
        }
    }

    fn has(c: &ReplyCache, n: usize) -> bool {
        c.inner.lock().unwrap().entries.contains_key(&key(n))
    }

    #[test]
    fn the_least_recently_used_answer_goes_first_and_a_new_version_drops_all() {
        let c = ReplyCache::default();
        for n in 0..MAX_ENTRIES {
            c.put(key(n), 7, Bytes::from(vec![b'x'; 10]));
        }
        assert_eq!(c.stats().entries, MAX_ENTRIES);
        // Use 0, then add one more: 1 (the least recently used) goes.
        c.inner
            .lock()
            .unwrap()
            .entries
            .get_mut(&key(0))
            .unwrap()
            .used = u64::MAX;
        c.put(key(MAX_ENTRIES), 7, Bytes::from_static(b"new"));
        let s = c.stats();
        assert_eq!(s.entries, MAX_ENTRIES);
        assert_eq!(s.bytes, (MAX_ENTRIES - 1) * 10 + 3);
        assert!(has(&c, 0) && !has(&c, 1) && has(&c, MAX_ENTRIES));
        // Too large a body is not kept; bytes stay bounded.
        c.put(key(1), 7, Bytes::from(vec![0; MAX_BODY + 1]));
        assert!(!has(&c, 1));
        for n in 0..4 {
            c.put(key(n), 7, Bytes::from(vec![0; MAX_BODY]));
        }
        assert!(c.stats().bytes <= MAX_BYTES);
        // Another catalog version: every older answer is dropped.
        c.put(key(9), 8, Bytes::from_static(b"v8"));
        let s = c.stats();
        assert_eq!((s.entries, s.bytes), (1, 2));
    }
}
