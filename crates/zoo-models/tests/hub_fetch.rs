//! The weights cache against a small HTTP/1.1 server on the loopback address (started by
//! each test), reached through the mirror setting as `ZOO_WEIGHTS_MIRROR` sets it: download
//! and checksum, cache hits without the network, resume after a cut connection (and restart
//! when the server ignores ranges), checksum mismatch, 404, no server.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use zoo_models::hub::fetch::sha256_of;
use zoo_models::hub::{Checksum, FetchError, Fetcher, WeightFile};

/// The served file: 100 kB of a fixed pattern.
fn payload() -> Vec<u8> {
    (0..100_000u32).map(|i| (i * 31 % 251) as u8).collect()
}

/// What the server saw.
#[derive(Default)]
struct Log {
    requests: AtomicUsize,
    ranges: Mutex<Vec<Option<u64>>>,
}

/// Serves `payload()` under `/ok/…` (ranges honoured), `/cut/…` (the first answer stops
/// half-way through the body, later ones honour ranges), `/cut-norange/…` (the same cut,
/// then ranges ignored), and 404 elsewhere. One request per connection.
fn serve() -> (String, Arc<Log>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let log = Arc::new(Log::default());
    let seen = log.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            answer(stream, &seen);
        }
    });
    (addr, log)
}

fn answer(mut stream: TcpStream, log: &Log) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    reader.read_line(&mut request_line).unwrap();
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_string();
    let mut range = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
        let lower = header.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("range: bytes=") {
            range = v.trim().trim_end_matches('-').parse::<u64>().ok();
        }
    }
    let n = log.requests.fetch_add(1, Ordering::SeqCst);
    log.ranges.lock().unwrap().push(range);
    let body = payload();
    let total = body.len();
    let mode = path.split('/').nth(1).unwrap_or("");
    let cut_now = matches!(mode, "cut" | "cut-norange") && n == 0;
    let honour_range = matches!(mode, "ok" | "cut");
    let head = |status: &str, extra: &str, len: usize| {
        format!("HTTP/1.1 {status}\r\nContent-Length: {len}\r\nConnection: close\r\n{extra}\r\n")
    };
    let response: Vec<u8> = match mode {
        "ok" | "cut" | "cut-norange" => match range.filter(|_| honour_range) {
            Some(start) if start as usize >= total => head(
                "416 Range Not Satisfiable",
                &format!("Content-Range: bytes */{total}\r\n"),
                0,
            )
            .into_bytes(),
            Some(start) => {
                let start = start as usize;
                let mut r = head(
                    "206 Partial Content",
                    &format!("Content-Range: bytes {start}-{}/{total}\r\n", total - 1),
                    total - start,
                )
                .into_bytes();
                r.extend_from_slice(&body[start..]);
                r
            }
            None => {
                let mut r = head("200 OK", "", total).into_bytes();
                let end = if cut_now { total / 2 } else { total };
                r.extend_from_slice(&body[..end]);
                r
            }
        },
        _ => head("404 Not Found", "", 0).into_bytes(),
    };
    stream.write_all(&response).ok();
    stream.flush().ok();
    // Dropping the stream closes the connection: mid-body for a cut answer.
}

/// A fresh cache directory.
fn cache(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zoo-hub-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    dir
}

/// Every file under `dir`.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// The payload's SHA-256, computed by the cache's own hasher on a scratch copy (the hasher
/// itself is checked against a published test vector below).
fn payload_sha256(dir: &Path) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let scratch = dir.join("scratch");
    std::fs::write(&scratch, payload()).unwrap();
    let digest = sha256_of(&scratch).unwrap();
    std::fs::remove_file(&scratch).unwrap();
    digest
}

fn spec<'a>(name: &'a str, url: &'a str, checksum: Checksum<'a>) -> WeightFile<'a> {
    WeightFile {
        name,
        url,
        checksum,
    }
}

/// One test's server, cache directory, payload digest and fetcher (through the mirror).
struct Case {
    mirror: String,
    log: Arc<Log>,
    dir: PathBuf,
    sha: String,
    fetcher: Fetcher,
}

fn case(name: &str) -> Case {
    let (mirror, log) = serve();
    let dir = cache(name);
    let sha = payload_sha256(&dir);
    let fetcher = Fetcher::new(&dir).with_mirror(Some(mirror.clone()));
    Case {
        mirror,
        log,
        dir,
        sha,
        fetcher,
    }
}

#[test]
fn sha256_matches_the_published_test_vector() {
    let dir = cache("vector");
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("abc");
    std::fs::write(&f, b"abc").unwrap();
    assert_eq!(
        sha256_of(&f).unwrap(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn fetch_verifies_then_serves_the_cache_without_network() {
    let Case {
        log,
        dir,
        sha,
        fetcher,
        ..
    } = case("ok");
    let file = spec(
        "tiny.test_v1",
        "https://weights.invalid/ok/tiny-00000000.pth",
        Checksum::Sha256Prefix(&sha[..8]),
    );
    let path = fetcher.fetch(&file).unwrap();
    assert_eq!(path, dir.join("tiny.test_v1/tiny-00000000.pth"));
    assert_eq!(std::fs::read(&path).unwrap(), payload());
    assert_eq!(files(&dir), vec![path.clone()], "nothing but the file");
    assert_eq!(log.requests.load(Ordering::SeqCst), 1);

    // Cached: no request, even with no server at all.
    assert_eq!(fetcher.fetch(&file).unwrap(), path);
    assert_eq!(log.requests.load(Ordering::SeqCst), 1);
    let offline = Fetcher::new(&dir).with_mirror(Some("http://127.0.0.1:1".into()));
    assert_eq!(offline.fetch(&file).unwrap(), path);
    assert_eq!(offline.cached(&file).unwrap(), Some(path.clone()));

    // A full checksum works the same; a corrupted cached file is dropped and fetched again.
    let full = spec(
        "tiny.test_v1",
        "https://weights.invalid/ok/tiny-00000000.pth",
        Checksum::Sha256(&sha),
    );
    std::fs::write(&path, b"corrupted").unwrap();
    assert_eq!(fetcher.fetch(&full).unwrap(), path);
    assert_eq!(std::fs::read(&path).unwrap(), payload());
    assert_eq!(log.requests.load(Ordering::SeqCst), 2);
}

#[test]
fn a_cut_connection_is_resumed_with_a_range_request() {
    let Case {
        mirror,
        log,
        dir,
        sha,
        fetcher,
    } = case("cut");
    let file = spec(
        "tiny.cut",
        "https://weights.invalid/cut/tiny.safetensors",
        Checksum::Sha256(&sha),
    );
    let err = fetcher.fetch(&file).unwrap_err();
    let message = err.to_string();
    let FetchError::Truncated {
        received,
        expected,
        part,
        ..
    } = err
    else {
        panic!("expected a truncated download, got {message}")
    };
    assert_eq!((received, expected), (50_000, Some(100_000)));
    assert!(
        message.contains("tiny.cut") && message.contains(&mirror),
        "{message}"
    );
    let cached = dir.join("tiny.cut/tiny.safetensors");
    assert!(!cached.exists(), "no file under the final name");
    assert_eq!(std::fs::metadata(&part).unwrap().len(), 50_000);

    let path = fetcher.fetch(&file).unwrap();
    assert_eq!(path, cached);
    assert_eq!(std::fs::read(&path).unwrap(), payload());
    assert_eq!(*log.ranges.lock().unwrap(), vec![None, Some(50_000)]);
    assert_eq!(files(&dir), vec![path], "the .part is gone");
}

#[test]
fn a_server_that_ignores_ranges_gets_a_fresh_download() {
    let Case {
        log,
        dir,
        sha,
        fetcher,
        ..
    } = case("norange");
    let file = spec(
        "tiny.norange",
        "https://weights.invalid/cut-norange/tiny.pth",
        Checksum::Sha256(&sha),
    );
    assert!(matches!(
        fetcher.fetch(&file),
        Err(FetchError::Truncated { .. })
    ));
    let path = fetcher.fetch(&file).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), payload());
    assert_eq!(*log.ranges.lock().unwrap(), vec![None, Some(50_000)]);
    assert_eq!(files(&dir), vec![path]);
}

#[test]
fn a_checksum_mismatch_leaves_nothing() {
    let Case {
        mirror,
        dir,
        fetcher,
        ..
    } = case("mismatch");
    let file = spec(
        "tiny.bad",
        "https://weights.invalid/ok/tiny-deadbeef.pth",
        Checksum::Sha256Prefix("deadbeef"),
    );
    let err = fetcher.fetch(&file).unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, FetchError::Checksum { .. }),
        "expected a mismatch, got {message}"
    );
    assert!(
        message.contains("tiny.bad")
            && message.contains(&format!("{mirror}/ok/tiny-deadbeef.pth"))
            && message.contains("deadbeef"),
        "{message}"
    );
    assert_eq!(files(&dir), Vec::<PathBuf>::new());
}

#[test]
fn not_found_and_no_server_are_clear_errors() {
    let Case {
        mirror,
        dir,
        fetcher,
        ..
    } = case("missing");
    let file = spec(
        "tiny.missing",
        "https://weights.invalid/missing/tiny.pth",
        Checksum::Unpublished,
    );
    let err = fetcher.fetch(&file).unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, FetchError::Status { status: 404, .. }),
        "{message}"
    );
    assert!(
        message.contains("tiny.missing") && message.contains(&format!("{mirror}/missing/tiny.pth")),
        "{message}"
    );

    // Nothing listens on a port just released.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let closed = format!("http://127.0.0.1:{port}");
    let err = Fetcher::new(&dir)
        .with_mirror(Some(closed.clone()))
        .fetch(&file)
        .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, FetchError::Network { .. }), "{message}");
    assert!(
        message.contains("tiny.missing") && message.contains(&closed),
        "{message}"
    );
    assert_eq!(files(&dir), Vec::<PathBuf>::new(), "nothing written");
}
