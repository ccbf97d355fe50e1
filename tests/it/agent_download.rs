//! Media downloads against small hostile HTTP servers on loopback: the
//! misbehaviour a real Ekran server never produces (cut connections,
//! ignored ranges, content changing mid-download, substituted bytes,
//! endless bodies, 1 byte/s trickles) and a disk that fills up.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ekran::agent::cache::{CacheError, MediaCache};
use ekran::agent::config::DownloadConfig;
use ekran::agent::download::{DownloadPolicy, Downloader};
use ekran::manifest::{Manifest, Media};
use rand::{Rng, SeedableRng};
use reqwest::Url;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the client asked for.
#[derive(Debug, Clone, Default)]
pub(crate) struct Seen {
    path: String,
    range: Option<String>,
    if_range: Option<String>,
}

/// How the server answers one request.
enum Reply {
    /// A file server: honours `Range` (if `honour_range`) when `If-Range`
    /// is absent or matches `etag`; optionally cuts the connection after
    /// `cut_after` body bytes.
    File {
        body: Vec<u8>,
        etag: &'static str,
        honour_range: bool,
        check_if_range: bool,
        cut_after: Option<usize>,
    },
    /// `200` without a length, then bytes for ever.
    Endless,
    /// `200` with the right length, then one byte per second.
    Trickle { body: Vec<u8> },
    /// Just a status.
    Status(u16),
}

type Replies = Arc<dyn Fn(usize, &Seen) -> Reply + Send + Sync>;

/// Starts a server on 127.0.0.1:0; returns its base URL and the requests it saw.
async fn serve(
    replies: impl Fn(usize, &Seen) -> Reply + Send + Sync + 'static,
) -> (Url, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let replies: Replies = Arc::new(replies);
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let (replies, log) = (replies.clone(), log.clone());
            tokio::spawn(async move {
                let _ = answer(stream, replies, log).await;
            });
        }
    });
    (url, seen)
}

async fn answer(
    mut stream: TcpStream,
    replies: Replies,
    log: Arc<Mutex<Vec<Seen>>>,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut seen = Seen {
        path: head.split(' ').nth(1).unwrap_or_default().to_owned(),
        ..Seen::default()
    };
    for line in head.lines().skip(1) {
        if let Some((name, value)) = line.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "range" => seen.range = Some(value.trim().to_owned()),
                "if-range" => seen.if_range = Some(value.trim().to_owned()),
                _ => {}
            }
        }
    }
    let index = {
        let mut log = log.lock().unwrap();
        log.push(seen.clone());
        log.len() - 1
    };
    match replies(index, &seen) {
        Reply::File {
            body,
            etag,
            honour_range,
            check_if_range,
            cut_after,
        } => {
            let from = seen
                .range
                .as_deref()
                .and_then(|range| range.strip_prefix("bytes="))
                .and_then(|range| range.strip_suffix('-'))
                .and_then(|from| from.parse::<usize>().ok())
                .filter(|_| honour_range)
                .filter(|_| {
                    !check_if_range || seen.if_range.as_deref().is_none_or(|tag| tag == etag)
                });
            let (status, extra, part) = match from {
                Some(from) => (
                    "206 Partial Content",
                    format!(
                        "Content-Range: bytes {from}-{}/{}\r\n",
                        body.len() - 1,
                        body.len()
                    ),
                    &body[from..],
                ),
                None => ("200 OK", String::new(), &body[..]),
            };
            let header = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nETag: {etag}\r\nAccept-Ranges: bytes\r\n{extra}Connection: close\r\n\r\n",
                part.len()
            );
            stream.write_all(header.as_bytes()).await?;
            stream
                .write_all(&part[..cut_after.unwrap_or(part.len()).min(part.len())])
                .await?;
        }
        Reply::Endless => {
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
                .await?;
            let chunk = vec![b'x'; 16 * 1024];
            loop {
                stream.write_all(&chunk).await?;
            }
        }
        Reply::Trickle { body } => {
            let header = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            stream.write_all(header.as_bytes()).await?;
            for byte in body {
                stream.write_all(&[byte]).await?;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        Reply::Status(code) => {
            let header =
                format!("HTTP/1.1 {code} Oops\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            stream.write_all(header.as_bytes()).await?;
        }
    }
    stream.shutdown().await
}

fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..len).map(|_| rng.r#gen()).collect()
}

fn media_for(bytes: &[u8]) -> Media {
    Media {
        sha256: hex::encode(Sha256::digest(bytes)),
        size: bytes.len() as u64,
        mime: "video/mp4".to_owned(),
        url: "media/clip.mp4".to_owned(),
    }
}

/// Quick retries and a short throughput window so tests take about a second.
pub(crate) fn policy() -> DownloadPolicy {
    DownloadPolicy {
        min_throughput_bytes_per_s: 1000,
        throughput_window: Duration::from_millis(500),
        stall_timeout: Duration::from_secs(5),
        backoff_base: Duration::from_millis(5),
        backoff_cap: Duration::from_millis(20),
        max_attempts: 4,
        ..DownloadPolicy::from(&DownloadConfig::default())
    }
}

fn entries(dir: &Path) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

pub(crate) fn url_of(base: &Url, media: &Media) -> Url {
    base.join(&media.url).unwrap()
}

const CLIP_LEN: usize = 200_000;
const CUT_AT: usize = 70_000;

#[tokio::test]
async fn network_cut_resumes_from_the_offset() {
    let clip = random_bytes(CLIP_LEN, 1);
    let body = clip.clone();
    let (base, seen) = serve(move |index, _| Reply::File {
        body: body.clone(),
        etag: "\"v1\"",
        honour_range: true,
        check_if_range: true,
        cut_after: (index == 0).then_some(CUT_AT),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cache = MediaCache::open(dir.path(), 1 << 30).unwrap();
    let media = media_for(&clip);
    let path = Downloader::new(policy())
        .fetch(&cache, &media, &url_of(&base, &media))
        .await
        .unwrap();
    assert_eq!(std::fs::read(path).unwrap(), clip);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].range, None);
    assert_eq!(
        seen[1].range.as_deref(),
        Some(format!("bytes={CUT_AT}-").as_str()),
        "resumed at the offset"
    );
    assert_eq!(
        seen[1].if_range.as_deref(),
        Some("\"v1\""),
        "resumed only if the content is unchanged"
    );
    assert_eq!(entries(&dir.path().join("tmp")), 0);
}

#[tokio::test]
async fn server_ignoring_range_restarts_from_zero() {
    let clip = random_bytes(CLIP_LEN, 2);
    let body = clip.clone();
    let (base, seen) = serve(move |index, _| Reply::File {
        body: body.clone(),
        etag: "\"v1\"",
        honour_range: false,
        check_if_range: false,
        cut_after: (index == 0).then_some(CUT_AT),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cache = MediaCache::open(dir.path(), 1 << 30).unwrap();
    let media = media_for(&clip);
    let path = Downloader::new(policy())
        .fetch(&cache, &media, &url_of(&base, &media))
        .await
        .unwrap();
    // Appending the full body to the 70,000 bytes already there would fail
    // the size and hash check; the file is exactly the clip.
    assert_eq!(std::fs::read(path).unwrap(), clip);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[1].range.as_deref(),
        Some(format!("bytes={CUT_AT}-").as_str())
    );
}

#[tokio::test]
async fn content_changed_mid_download_is_refetched_whole() {
    // A stale copy (v1) is cut mid-download; by the resume the server has
    // the file the manifest pins (v2): If-Range does not match, so it
    // answers 200 with all of v2.
    let stale = random_bytes(CLIP_LEN, 3);
    let fresh = random_bytes(CLIP_LEN, 4);
    let fresh_body = fresh.clone();
    let (base, seen) = serve(move |index, _| {
        if index == 0 {
            Reply::File {
                body: stale.clone(),
                etag: "\"v1\"",
                honour_range: true,
                check_if_range: true,
                cut_after: Some(CUT_AT),
            }
        } else {
            Reply::File {
                body: fresh_body.clone(),
                etag: "\"v2\"",
                honour_range: true,
                check_if_range: true,
                cut_after: None,
            }
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cache = MediaCache::open(dir.path(), 1 << 30).unwrap();
    let media = media_for(&fresh);
    let path = Downloader::new(policy())
        .fetch(&cache, &media, &url_of(&base, &media))
        .await
        .unwrap();
    assert_eq!(std::fs::read(path).unwrap(), fresh);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen[1].if_range.as_deref(), Some("\"v1\""));
}

#[tokio::test]
async fn content_changed_behind_a_server_that_ignores_if_range_is_caught_by_the_hash() {
    // A broken server serves the new content's tail as if nothing changed:
    // the spliced file fails verification and never enters the cache.
    let stale = random_bytes(CLIP_LEN, 5);
    let fresh = random_bytes(CLIP_LEN, 6);
    let fresh_body = fresh.clone();
    let (base, _seen) = serve(move |index, _| {
        if index == 0 {
            Reply::File {
                body: stale.clone(),
                etag: "\"v1\"",
                honour_range: true,
                check_if_range: false,
                cut_after: Some(CUT_AT),
            }
        } else {
            Reply::File {
                body: fresh_body.clone(),
                etag: "\"v2\"",
                honour_range: true,
                check_if_range: false,
                cut_after: None,
            }
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cache = MediaCache::open(dir.path(), 1 << 30).unwrap();
    let media = media_for(&fresh);
    let error = Downloader::new(policy())
        .fetch(&cache, &media, &url_of(&base, &media))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, CacheError::HashMismatch { sha256, .. } if *sha256 == media.sha256),
        "{error}"
    );
    assert_eq!(entries(&dir.path().join("media")), 0);
    assert_eq!(entries(&dir.path().join("tmp")), 0);
}

#[tokio::test]
async fn substituted_bytes_are_rejected_and_nothing_is_cached() {
    let pinned = random_bytes(50_000, 7);
    let substitute = random_bytes(50_000, 8);
    let (base, seen) = serve(move |_, _| Reply::File {
        body: substitute.clone(),
        etag: "\"x\"",
        honour_range: true,
        check_if_range: true,
        cut_after: None,
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cache = MediaCache::open(dir.path(), 1 << 30).unwrap();
    let media = media_for(&pinned);
    let error = Downloader::new(policy())
        .fetch(&cache, &media, &url_of(&base, &media))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, CacheError::HashMismatch { sha256, .. } if *sha256 == media.sha256),
        "{error}"
    );
    assert!(
        error.to_string().contains(&media.sha256),
        "the error names the media: {error}"
    );
    assert_eq!(entries(&dir.path().join("media")), 0);
    assert_eq!(entries(&dir.path().join("tmp")), 0);
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "a substitution is not retried"
    );
}

#[tokio::test]
async fn endless_body_stops_at_the_declared_size() {
    let (base, _seen) = serve(|_, _| Reply::Endless).await;
    let dir = tempfile::tempdir().unwrap();
    let cache = MediaCache::open(dir.path(), 1 << 30).unwrap();
    let media = media_for(&random_bytes(100_000, 9));
    let started = Instant::now();
    let error = tokio::time::timeout(
        Duration::from_secs(10),
        Downloader::new(policy()).fetch(&cache, &media, &url_of(&base, &media)),
    )
    .await
    .expect("an endless body must not hold the download")
    .unwrap_err();
    assert!(
        matches!(
            error,
            CacheError::BodyTooLong {
                declared: 100_000,
                ..
            }
        ),
        "{error}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(entries(&dir.path().join("media")), 0);
    assert_eq!(entries(&dir.path().join("tmp")), 0);
}

#[tokio::test]
async fn announced_oversize_body_is_refused_before_reading() {
    let big = random_bytes(60_000, 10);
    let (base, _seen) = serve(move |_, _| Reply::File {
        body: big.clone(),
        etag: "\"big\"",
        honour_range: true,
        check_if_range: true,
        cut_after: None,
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cache = MediaCache::open(dir.path(), 1 << 30).unwrap();
    let media = media_for(&random_bytes(50_000, 11));
    let error = Downloader::new(policy())
        .fetch(&cache, &media, &url_of(&base, &media))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            CacheError::BodyTooLong {
                declared: 50_000,
                ..
            }
        ),
        "{error}"
    );
}

#[tokio::test]
async fn trickle_is_aborted_by_the_throughput_floor() {
    let clip = random_bytes(1000, 12);
    let body = clip.clone();
    let (base, seen) = serve(move |_, _| Reply::Trickle { body: body.clone() }).await;
    let dir = tempfile::tempdir().unwrap();
    let cache = MediaCache::open(dir.path(), 1 << 30).unwrap();
    let media = media_for(&clip);
    let started = Instant::now();
    let downloader = Downloader::new(DownloadPolicy {
        max_attempts: 2,
        ..policy()
    });
    let error = tokio::time::timeout(
        Duration::from_secs(10),
        downloader.fetch(&cache, &media, &url_of(&base, &media)),
    )
    .await
    .expect("a trickle must not hold the download")
    .unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(error, CacheError::TooSlow { floor: 1000, .. }),
        "{error}"
    );
    assert!(
        elapsed < Duration::from_secs(3),
        "aborted after {elapsed:?}"
    );
    assert_eq!(
        seen.lock().unwrap().len(),
        2,
        "a trickle is retried (up to max_attempts)"
    );
    assert_eq!(entries(&dir.path().join("media")), 0);
}

#[tokio::test]
async fn server_errors_are_retried_and_client_errors_are_not() {
    let clip = random_bytes(10_000, 13);
    let body = clip.clone();
    let (base, seen) = serve(move |index, seen| {
        if seen.path.ends_with("missing") {
            Reply::Status(404)
        } else if index < 2 {
            Reply::Status(503)
        } else {
            Reply::File {
                body: body.clone(),
                etag: "\"a\"",
                honour_range: true,
                check_if_range: true,
                cut_after: None,
            }
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cache = MediaCache::open(dir.path(), 1 << 30).unwrap();
    let media = media_for(&clip);
    let downloader = Downloader::new(policy());
    downloader
        .fetch(&cache, &media, &url_of(&base, &media))
        .await
        .unwrap();
    assert_eq!(seen.lock().unwrap().len(), 3, "two 503s, then the file");

    let missing = Media {
        url: "media/missing".into(),
        ..media_for(b"other")
    };
    let error = downloader
        .fetch(&cache, &missing, &url_of(&base, &missing))
        .await
        .unwrap_err();
    assert!(
        matches!(error, CacheError::Http { status: 404, .. }),
        "{error}"
    );
    assert_eq!(seen.lock().unwrap().len(), 4, "a 404 is not retried");
}

#[tokio::test]
async fn rate_limit_slows_the_download() {
    let clip = random_bytes(40_000, 14);
    let body = clip.clone();
    let (base, _seen) = serve(move |_, _| Reply::File {
        body: body.clone(),
        etag: "\"a\"",
        honour_range: true,
        check_if_range: true,
        cut_after: None,
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cache = MediaCache::open(dir.path(), 1 << 30).unwrap();
    let media = media_for(&clip);
    let started = Instant::now();
    Downloader::new(DownloadPolicy {
        rate_limit_bytes_per_s: 80_000,
        ..policy()
    })
    .fetch(&cache, &media, &url_of(&base, &media))
    .await
    .unwrap();
    // 40,000 bytes at 80,000 bytes/s: at least (most of) half a second.
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
}

fn manifest(items: &[(&str, &Media)]) -> Manifest {
    let items: Vec<serde_json::Value> = items
        .iter()
        .map(|(id, media)| {
            serde_json::json!({
                "id": id, "campaign": "awareness",
                "media": media,
                "flight": {"start": "2026-06-01", "end": "2026-06-30"},
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({
        "schema": 1, "screen_id": "scr-test-1", "version": 7,
        "issued_at": "2026-06-01T00:00:00Z", "expires_at": "2026-07-01T00:00:00Z",
        "timezone": "Europe/Kyiv", "items": items,
        "root": {"version": 1, "keys": [], "threshold": 1},
    }))
    .unwrap()
}

/// Serves every clip by its URL path.
pub(crate) async fn serve_clips(clips: Vec<(Media, Vec<u8>)>) -> (Url, Arc<Mutex<Vec<Seen>>>) {
    serve(move |_, seen| {
        match clips.iter().find(|(media, _)| {
            seen.path.trim_start_matches('/') == media.url.trim_start_matches('/')
        }) {
            Some((_, bytes)) => Reply::File {
                body: bytes.clone(),
                etag: "\"e\"",
                honour_range: true,
                check_if_range: true,
                cut_after: None,
            },
            None => Reply::Status(404),
        }
    })
    .await
}

fn clip(seed: u64, len: usize) -> (Media, Vec<u8>) {
    let bytes = random_bytes(len, seed);
    let media = Media {
        url: format!("media/{seed}"),
        ..media_for(&bytes)
    };
    (media, bytes)
}

#[tokio::test]
async fn ensure_fetches_what_is_missing_evicts_the_unneeded_and_refuses_what_cannot_fit() {
    let (old, old_bytes) = clip(20, 30_000);
    let (a, a_bytes) = clip(21, 40_000);
    let (b, b_bytes) = clip(22, 40_000);
    let (huge, huge_bytes) = clip(23, 80_000);
    let (base, seen) = serve_clips(vec![
        (old.clone(), old_bytes),
        (a.clone(), a_bytes.clone()),
        (b.clone(), b_bytes.clone()),
        (huge.clone(), huge_bytes),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cache = MediaCache::open(dir.path(), 100_000).unwrap();
    let downloader = Downloader::new(policy());
    let now = jiff::Timestamp::from_second(1_782_460_800).unwrap();

    // The old manifest's clip is cached; the new manifest needs a and b: 80,000 more
    // bytes fit the 100,000-byte quota only once the old clip is evicted.
    let old_manifest = manifest(&[("old", &old)]);
    downloader
        .ensure(&cache, &old_manifest, &base, &HashSet::new(), now)
        .await
        .unwrap();
    let new_manifest = manifest(&[("a", &a), ("b", &b), ("a-again", &a)]);
    let ready = downloader
        .ensure(&cache, &new_manifest, &base, &HashSet::new(), now)
        .await
        .unwrap();
    assert_eq!(ready.manifest_version, 7);
    assert_eq!(ready.files.len(), 2);
    assert_eq!(std::fs::read(&ready.files[&a.sha256]).unwrap(), a_bytes);
    assert_eq!(std::fs::read(&ready.files[&b.sha256]).unwrap(), b_bytes);
    assert!(
        !cache.contains(&old),
        "media no manifest needs were evicted"
    );
    let requests = seen.lock().unwrap().len();
    assert_eq!(requests, 3, "each file fetched once");

    // A manifest that cannot fit beside the active one's media is refused
    // before any download, and the active media stay.
    let keep: HashSet<String> = [a.sha256.clone(), b.sha256.clone()].into();
    let too_big = manifest(&[("huge", &huge)]);
    let error = downloader
        .ensure(&cache, &too_big, &base, &keep, now)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error.failures[0].1,
            CacheError::QuotaExceeded { needed: 80_000, .. }
        ),
        "{error}"
    );
    assert_eq!(seen.lock().unwrap().len(), requests, "nothing downloaded");
    assert!(cache.contains(&a) && cache.contains(&b));
    assert!(cache.verify(&a).unwrap() && cache.verify(&b).unwrap());
}

#[tokio::test]
async fn ensure_waits_for_the_allowed_download_hours() {
    let (a, a_bytes) = clip(30, 1000);
    let (base, seen) = serve_clips(vec![(a.clone(), a_bytes)]).await;
    let dir = tempfile::tempdir().unwrap();
    let cache = MediaCache::open(dir.path(), 1 << 20).unwrap();
    let config: DownloadConfig = toml::from_str("allowed_hours = [\"01:00-05:00\"]").unwrap();
    let downloader = Downloader::new(DownloadPolicy {
        allowed_hours: config.allowed_hours,
        ..policy()
    });
    let plan = manifest(&[("a", &a)]);
    // 12:00 in Kyiv (UTC+3 in summer): outside the window.
    let noon = "2026-06-26T09:00:00Z".parse().unwrap();
    let error = downloader
        .ensure(&cache, &plan, &base, &HashSet::new(), noon)
        .await
        .unwrap_err();
    assert!(
        matches!(error.failures[0].1, CacheError::OutsideDownloadHours),
        "{error}"
    );
    assert!(seen.lock().unwrap().is_empty());
    // 02:00 in Kyiv: inside.
    let night = "2026-06-25T23:00:00Z".parse().unwrap();
    downloader
        .ensure(&cache, &plan, &base, &HashSet::new(), night)
        .await
        .unwrap();
}

/// A tiny filesystem that really runs out of space: a 64 KiB tmpfs when we
/// may mount one (root, as in CI), else `/dev/full` behind the temp file's
/// name (every write fails with ENOSPC).
pub(crate) struct TinyDisk {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) mounted: bool,
}

impl TinyDisk {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        Self { dir, mounted }
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        if self.mounted {
            let _ = std::process::Command::new("umount")
                .arg(self.dir.path())
                .status();
        }
    }
}

#[tokio::test]
async fn disk_full_during_download_leaves_the_cache_as_it_was() {
    let disk = TinyDisk::new();
    let (small, small_bytes) = clip(40, 8_000);
    let (large, large_bytes) = clip(41, 100_000);
    let (base, _seen) = serve_clips(vec![
        (small.clone(), small_bytes.clone()),
        (large.clone(), large_bytes),
    ])
    .await;
    let cache = MediaCache::open(disk.dir.path(), 1 << 30).unwrap();
    let downloader = Downloader::new(policy());
    downloader
        .fetch(&cache, &small, &url_of(&base, &small))
        .await
        .unwrap();
    if !disk.mounted {
        std::os::unix::fs::symlink("/dev/full", cache.temp_path(&large.sha256).unwrap()).unwrap();
    }
    eprintln!(
        "disk full simulated with {}",
        if disk.mounted {
            "a 64 KiB tmpfs"
        } else {
            "/dev/full"
        }
    );

    let error = downloader
        .fetch(&cache, &large, &url_of(&base, &large))
        .await
        .unwrap_err();
    assert!(matches!(error, CacheError::DiskFull { .. }), "{error}");
    assert_eq!(
        entries(&disk.dir.path().join("tmp")),
        0,
        "the partial file is removed"
    );
    assert!(!cache.contains(&large));
    assert!(
        cache.verify(&small).unwrap(),
        "media already cached are intact"
    );
    // With the space back, the download works.
    drop(cache);
}

#[tokio::test]
async fn next_sync_round_resumes_what_the_last_one_left() {
    let clip = random_bytes(CLIP_LEN, 15);
    let body = clip.clone();
    let (base, seen) = serve(move |index, _| Reply::File {
        body: body.clone(),
        etag: "\"v1\"",
        honour_range: true,
        check_if_range: true,
        cut_after: (index == 0).then_some(CUT_AT),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cache = MediaCache::open(dir.path(), 1 << 30).unwrap();
    let media = media_for(&clip);
    let downloader = Downloader::new(DownloadPolicy {
        max_attempts: 1,
        ..policy()
    });
    let error = downloader
        .fetch(&cache, &media, &url_of(&base, &media))
        .await
        .unwrap_err();
    assert!(
        matches!(error, CacheError::Interrupted { bytes, .. } if bytes == CUT_AT as u64),
        "{error}"
    );
    assert!(error.is_retryable());
    // The next round (same process) picks up at the offset.
    let path = downloader
        .fetch(&cache, &media, &url_of(&base, &media))
        .await
        .unwrap();
    assert_eq!(std::fs::read(path).unwrap(), clip);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen[1].range.as_deref(),
        Some(format!("bytes={CUT_AT}-").as_str())
    );
}
