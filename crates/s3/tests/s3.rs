//! The S3 storage against a real Garage (started by the tests): what it costs in requests,
//! and how it rides out a flaky store (a proxy between the two injects failures).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use emrest_repo::{Durability, NoControl, Repository, Storage};
use emrest_s3::{S3Location, S3Storage};
use emrest_testkit::garage::{garage, Garage};
use rand::{Rng, SeedableRng};

const CS: u32 = 16 * 1024;

fn storage(g: &Garage, url: &str, cache: Option<&std::path::Path>) -> S3Storage {
    S3Storage::with_key(S3Location::parse(url).unwrap(), &g.key_id, &g.secret, cache).unwrap()
}

fn random_file(len: usize, seed: u64) -> (tempfile::TempDir, std::fs::File, Vec<u8>) {
    let mut img = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill(&mut img[..]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("disk.img");
    std::fs::write(&path, &img).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    (dir, file, img)
}

fn fresh(g: &Garage, test: &str) -> S3Storage {
    let cache = tempfile::tempdir().unwrap().keep();
    storage(g, &g.fresh_url(test), Some(&cache))
}

#[test]
fn an_s3_bucket_keeps_the_storage_contract() {
    let Some(g) = garage() else { return };
    let s3 = fresh(g, "contract");
    emrest_repo::testing::behaves_as_a_storage(&s3);
    let counts = s3.requests().unwrap();
    assert!(counts.put >= 3 && counts.get >= 3, "{counts}");
    assert_eq!(counts.retries, 0, "{counts}");
}

#[test]
fn a_repository_in_an_s3_bucket_backs_up_restores_verifies_and_collects_garbage() {
    let Some(g) = garage() else { return };
    emrest_repo::testing::backs_up_restores_verifies_and_collects_garbage(Arc::new(fresh(
        g,
        "repository",
    )));
}

#[test]
fn a_backup_costs_one_put_per_pack_and_a_cached_node_opens_without_reading_packs() {
    let Some(g) = garage() else { return };
    let url = g.fresh_url("economy");
    let cache = tempfile::tempdir().unwrap();
    let s3 = Arc::new(storage(g, &url, Some(cache.path())));
    let repo = Repository::open_storage(s3.clone(), Durability::NoSync, CS).unwrap();
    let (_dir, src, img) = random_file(100 << 20, 7);
    let before = s3.requests().unwrap();
    let (index, _) = repo
        .backup_disk(&src, img.len() as u64, None, None, &NoControl)
        .unwrap();
    repo.put_index("p1.disk0", &index).unwrap();
    let backup = s3.requests().unwrap().since(&before);
    let packs = s3.list("packs/").unwrap().len() as u64;
    assert!(
        (2..=3).contains(&packs),
        "100 MiB in ~64 MiB packs: {packs}"
    );
    assert_eq!(
        backup.put,
        packs + 1,
        "one PUT per pack and one for the index: {backup}"
    );
    assert_eq!(backup.multipart, 0, "packs go up whole: {backup}");
    assert_eq!(backup.get, 0, "a backup reads nothing back: {backup}");

    // Another handle with the node's cache: no request for any pack's index.
    let warm = Arc::new(storage(g, &url, Some(cache.path())));
    let again = Repository::open_storage(warm.clone(), Durability::NoSync, CS).unwrap();
    let opened = warm.requests().unwrap();
    assert_eq!(opened.get, 1, "the config only: {opened}");
    assert_eq!(opened.head, 0, "{opened}");

    // A node with an empty cache fetches each pack's index with one ranged GET, once.
    let cold_cache = tempfile::tempdir().unwrap();
    let cold = Arc::new(storage(g, &url, Some(cold_cache.path())));
    let fresh = Repository::open_storage(cold.clone(), Durability::NoSync, CS).unwrap();
    let opened = cold.requests().unwrap();
    assert_eq!(opened.get, 1 + packs, "config and one per pack: {opened}");
    assert!(
        opened.bytes_down < packs * (512 << 10),
        "tails only: {opened}"
    );

    // Restoring reads the data by ranges and every chunk is checked: the bytes are equal.
    for repo in [&again, &fresh] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.img");
        let target = std::fs::File::create(&out).unwrap();
        let plan = repo.plan_restore(&index, None, &NoControl).unwrap();
        repo.apply_restore(&index, &plan, &target, &NoControl)
            .unwrap();
        assert!(std::fs::read(&out).unwrap() == img, "restored bytes differ");
    }
    let restore = cold.requests().unwrap().since(&opened);
    // Verifying reads runs of records too (8 MiB at most), never a request per chunk.
    let before = cold.requests().unwrap();
    let digests: Vec<_> = index.referenced().copied().collect();
    assert!(fresh.verify_chunks(&digests, &NoControl).is_empty());
    let verify = cold.requests().unwrap().since(&before);
    assert!(
        verify.get <= 100 / 8 + 2 * packs,
        "runs, not {} chunks: {verify}",
        digests.len()
    );
    assert!(
        restore.get <= 100 / 4 + 2 * packs,
        "4 MiB blocks shared by the workers, not a read per chunk (6,400) or run: {restore}"
    );
}

#[test]
fn a_large_object_goes_up_in_parts_and_reads_back_equal() {
    let Some(g) = garage() else { return };
    let s3 = storage(g, &g.fresh_url("multipart"), None).with_multipart(6 << 20, 5 << 20);
    let (_dir, _, bytes) = random_file(12 << 20, 3);
    let mut w = s3.writer("packs/").unwrap();
    for piece in bytes.chunks(1 << 20) {
        w.write_all(piece).unwrap();
    }
    w.finish("packs/zz/big.pack").unwrap();
    s3.sync(&["packs/zz/big.pack"]).unwrap();
    let counts = s3.requests().unwrap();
    assert_eq!(
        counts.multipart,
        1 + 3 + 1,
        "start, 3 parts, complete: {counts}"
    );
    assert_eq!(s3.get("packs/zz/big.pack").unwrap().0, bytes);
    let o = s3.open("packs/zz/big.pack").unwrap();
    let mut mid = vec![0u8; 100_000];
    o.read_exact_at(&mut mid, 7 << 20).unwrap();
    assert_eq!(mid[..], bytes[7 << 20..(7 << 20) + 100_000]);
}

#[test]
fn a_wrong_secret_is_refused_with_the_stores_reason_and_no_retries() {
    let Some(g) = garage() else { return };
    let s3 = S3Storage::with_key(
        S3Location::parse(&g.fresh_url("denied")).unwrap(),
        &g.key_id,
        "not-the-secret",
        None,
    )
    .unwrap();
    let err = s3.put("config", b"x").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
    assert!(err.to_string().contains("HTTP 403"), "{err}");
    assert_eq!(s3.requests().unwrap().retries, 0);
}

/// What the proxy does to the `n`th request (counting from 0).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    Pass,
    /// Answers 500 without asking the store.
    Error500,
    /// Answers 503 SlowDown, as a throttling store does.
    SlowDown,
    /// Closes the connection without an answer.
    Drop,
    /// Waits before passing the request on.
    Delay(Duration),
}

/// A proxy on loopback in front of `upstream` that applies `plan` to each request. Every
/// connection carries one request (`connection: close` both ways).
fn faulty_proxy(upstream: &str, plan: fn(u64) -> Fault) -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let upstream = upstream.trim_start_matches("http://").to_string();
    let seen = Arc::new(AtomicU64::new(0));
    let counter = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let upstream = upstream.clone();
            std::thread::spawn(move || {
                let _ = serve_one(conn, &upstream, plan(n));
            });
        }
    });
    (format!("http://{addr}"), seen)
}

fn serve_one(mut client: TcpStream, upstream: &str, fault: Fault) -> io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut head = Vec::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if !lower.starts_with("connection:") {
            head.extend_from_slice(line.as_bytes());
        }
    }
    head.extend_from_slice(b"connection: close\r\n\r\n");
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    match fault {
        Fault::Drop => return client.shutdown(Shutdown::Both),
        Fault::Error500 | Fault::SlowDown => {
            let (status, code) = match fault {
                Fault::Error500 => ("500 Internal Server Error", "InternalError"),
                _ => ("503 Slow Down", "SlowDown"),
            };
            let xml = format!("<Error><Code>{code}</Code><Message>injected</Message></Error>");
            write!(
                client,
                "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{xml}",
                xml.len()
            )?;
            return client.shutdown(Shutdown::Both);
        }
        Fault::Delay(d) => std::thread::sleep(d),
        Fault::Pass => {}
    }
    let mut up = TcpStream::connect(upstream)?;
    up.write_all(&head)?;
    up.write_all(&body)?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer)?;
    // The store may not say it closes: tell the client, so it does not reuse the connection.
    let end = answer
        .windows(2)
        .position(|w| w == b"\r\n")
        .map_or(answer.len(), |p| p + 2);
    client.write_all(&answer[..end])?;
    client.write_all(b"connection: close\r\n")?;
    client.write_all(&answer[end..])?;
    client.shutdown(Shutdown::Both)
}

#[test]
fn a_flaky_store_is_retried_and_the_repository_comes_out_whole() {
    let Some(g) = garage() else { return };
    // Every third request fails, in turn with a 500, a 503 and a dropped connection;
    // others are slowed now and then.
    let (endpoint, seen) = faulty_proxy(&g.endpoint, |n| match n % 9 {
        2 => Fault::Error500,
        5 => Fault::SlowDown,
        8 => Fault::Drop,
        4 => Fault::Delay(Duration::from_millis(30)),
        _ => Fault::Pass,
    });
    let url = g.fresh_url("flaky").replace(&g.endpoint, &endpoint);
    let s3 = Arc::new(storage(g, &url, None));
    let repo = Repository::open_storage(s3.clone(), Durability::NoSync, CS).unwrap();
    let (_dir, src, img) = random_file(3 << 20, 11);
    let (index, _) = repo
        .backup_disk(&src, img.len() as u64, None, None, &NoControl)
        .unwrap();
    repo.put_index("p1.disk0", &index).unwrap();
    let again = Repository::open_storage(s3.clone(), Durability::NoSync, CS).unwrap();
    let loaded = again.get_index_shared("p1.disk0").unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("out.img");
    let target = std::fs::File::create(&out).unwrap();
    let plan = again.plan_restore(&loaded, None, &NoControl).unwrap();
    again
        .apply_restore(&loaded, &plan, &target, &NoControl)
        .unwrap();
    assert!(std::fs::read(&out).unwrap() == img, "restored bytes differ");
    let counts = s3.requests().unwrap();
    assert!(counts.retries >= 2, "the proxy failed some: {counts}");
    assert_eq!(
        counts.total(),
        seen.load(Ordering::SeqCst),
        "every attempt counted"
    );
}

#[test]
fn a_store_that_keeps_failing_gives_a_clear_error_after_its_attempts() {
    let Some(g) = garage() else { return };
    let (endpoint, seen) = faulty_proxy(&g.endpoint, |_| Fault::Error500);
    let url = g.fresh_url("down").replace(&g.endpoint, &endpoint);
    let s3 = storage(g, &url, None);
    let err = s3.put("config", b"x").unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("HTTP 500") && text.contains("gave up after 6 attempts"),
        "{text}"
    );
    assert_eq!(seen.load(Ordering::SeqCst), 6);
}

#[test]
fn touching_an_object_renews_its_time_for_garbage_collections_grace() {
    let Some(g) = garage() else { return };
    let s3 = fresh(g, "touch");
    s3.put("packs/ab/old.pack", b"pack bytes").unwrap();
    let before = s3.stat("packs/ab/old.pack").unwrap().unwrap();
    // S3 times have whole seconds.
    std::thread::sleep(Duration::from_millis(1100));
    s3.touch("packs/ab/old.pack").unwrap();
    let after = s3.stat("packs/ab/old.pack").unwrap().unwrap();
    assert!(
        after.modified > before.modified,
        "{before:?} then {after:?}"
    );
    assert_eq!(
        s3.get("packs/ab/old.pack").unwrap().0,
        b"pack bytes",
        "the bytes stay"
    );
    assert_eq!(
        s3.requests().unwrap().copy,
        1,
        "one server-side copy, no upload"
    );
}

#[test]
fn an_upload_that_fails_in_the_background_is_reported_by_sync_and_reads() {
    let Some(g) = garage() else { return };
    let (endpoint, _) = faulty_proxy(&g.endpoint, |_| Fault::Error500);
    let url = g.fresh_url("upload-fails").replace(&g.endpoint, &endpoint);
    let s3 = storage(g, &url, None);
    let mut w = s3.writer("packs/").unwrap();
    w.write_all(b"a pack that never arrives").unwrap();
    w.finish("packs/ab/lost.pack").unwrap();
    let err = s3.sync(&["packs/ab/lost.pack"]).unwrap_err();
    assert!(
        err.to_string().contains("gave up after 6 attempts"),
        "{err}"
    );
    // Reported once; the object is simply not there for later readers.
    s3.sync(&["packs/ab/lost.pack"]).unwrap();
}

#[test]
fn a_writing_open_sweeps_half_written_cache_files_and_keeps_the_good_ones() {
    let Some(g) = garage() else { return };
    let cache = tempfile::tempdir().unwrap();
    let url = g.fresh_url("sweep");
    let s3 = Arc::new(storage(g, &url, Some(cache.path())));
    let repo = Repository::open_storage(s3.clone(), Durability::NoSync, CS).unwrap();
    let (_dir, src, img) = random_file(1 << 20, 9);
    repo.backup_disk(&src, img.len() as u64, None, None, &NoControl)
        .unwrap();
    let tails = cache.path().join("tails/packs");
    let sub = std::fs::read_dir(&tails)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let leftover = sub.join(".tmp-123-4");
    std::fs::write(&leftover, b"half").unwrap();
    let kept = std::fs::read_dir(&sub).unwrap().count();
    let again = Arc::new(storage(g, &url, Some(cache.path())));
    Repository::open_storage(again.clone(), Durability::NoSync, CS).unwrap();
    assert!(!leftover.exists(), "the crash's leftover is gone");
    assert_eq!(
        std::fs::read_dir(&sub).unwrap().count(),
        kept - 1,
        "the tails stay"
    );
    assert_eq!(
        again.requests().unwrap().get,
        1,
        "and still serve: the config only"
    );
}
