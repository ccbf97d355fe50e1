//! Fetching media into the [`MediaCache`] over HTTP (SPEC §4, §5), safe
//! against flaky links and hostile or broken servers:
//!
//! - streamed into `tmp/<sha>.part`, resumed with `Range` + `If-Range` (the
//!   ETag, or Last-Modified) after a cut; a `200` to a range request means
//!   the content changed or the server ignores ranges, so the temp file is
//!   truncated and written from zero, never appended to; a file that ran
//!   out of attempts is resumed by the next sync round of the same process
//!   (temp files are swept at start, see [`MediaCache::open`]);
//! - never more than the manifest's declared size: a longer body is an
//!   "endless data" attack and aborts the download;
//! - aborted when slower than a minimum throughput over a window, or when
//!   nothing arrives for the stall timeout; retried with capped exponential
//!   backoff and full jitter ([`super::backoff`]);
//! - optionally rate-limited (metered links);
//! - committed only through [`MediaCache::commit`] (fsync, size and
//!   SHA-256 check, rename, directory fsync).
//!
//! [`Downloader::ensure`] brings a whole manifest's media into the cache.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_RANGE, ETAG, HeaderMap, IF_RANGE, LAST_MODIFIED, RANGE};
use reqwest::{StatusCode, Url};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use tracing::Instrument;

use super::backoff::Backoff;
use super::cache::{CacheError, MediaCache, is_disk_full, remove_file};
use super::config::{DownloadConfig, HourWindow};
use crate::manifest::{Manifest, Media};

/// Adds the device's credentials to a request (the device-API client's
/// job: signed requests or a token). Media URLs may need them.
pub trait AuthorizeRequest: Send + Sync {
    /// Returns `request` with authentication added.
    fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder;
}

/// The limits a download runs under (from [`DownloadConfig`]).
#[derive(Debug, Clone)]
pub struct DownloadPolicy {
    /// Average rate cap in bytes per second; 0 = unlimited.
    pub rate_limit_bytes_per_s: u64,
    /// Local-time windows in which downloads may start; empty = any time.
    pub allowed_hours: Vec<HourWindow>,
    /// Floor below which an attempt is aborted.
    pub min_throughput_bytes_per_s: u64,
    /// Span the floor is measured over.
    pub throughput_window: Duration,
    /// Longest silence (connecting included) before an attempt is aborted.
    pub stall_timeout: Duration,
    /// First retry delay.
    pub backoff_base: Duration,
    /// Longest retry delay.
    pub backoff_cap: Duration,
    /// Attempts per file per [`Downloader::fetch`].
    pub max_attempts: u32,
}

impl From<&DownloadConfig> for DownloadPolicy {
    fn from(config: &DownloadConfig) -> Self {
        Self {
            rate_limit_bytes_per_s: config.rate_limit_bytes_per_s,
            allowed_hours: config.allowed_hours.clone(),
            min_throughput_bytes_per_s: config.min_throughput_bytes_per_s,
            throughput_window: config.throughput_window,
            stall_timeout: config.stall_timeout,
            backoff_base: config.backoff_base,
            backoff_cap: config.backoff_cap,
            max_attempts: config.max_attempts,
        }
    }
}

impl DownloadPolicy {
    /// The throughput floor actually applied: a rate limit below the floor
    /// would otherwise make every download abort itself.
    fn effective_floor(&self) -> u64 {
        match self.rate_limit_bytes_per_s {
            0 => self.min_throughput_bytes_per_s,
            limit => self.min_throughput_bytes_per_s.min(limit / 2),
        }
    }
}

/// Every file of a manifest is verified in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    /// The manifest's version.
    pub manifest_version: u64,
    /// Each media SHA-256 and its verified file.
    pub files: BTreeMap<String, PathBuf>,
}

/// Some media of a manifest could not be cached; the rest were.
#[derive(Debug, thiserror::Error)]
#[error(
    "manifest version {manifest_version}: {} of {total} media files missing{}",
    failures.len(),
    failures.first().map(|(_, error)| format!("; first: {error}")).unwrap_or_default()
)]
pub struct Incomplete {
    /// The manifest's version.
    pub manifest_version: u64,
    /// Distinct media files in the manifest.
    pub total: usize,
    /// Each missing file's SHA-256 and why (never empty).
    pub failures: Vec<(String, CacheError)>,
}

/// Fetches media into a [`MediaCache`].
#[derive(Clone)]
pub struct Downloader {
    client: reqwest::Client,
    policy: DownloadPolicy,
    authorize: Option<Arc<dyn AuthorizeRequest>>,
    /// Validators (ETag / Last-Modified) of partial temp files left by
    /// fetches that ran out of attempts, so the next sync round resumes
    /// them instead of starting over.
    partial: Arc<Mutex<HashMap<String, String>>>,
}

/// What one attempt ended with.
enum Attempt {
    /// The temp file holds `size` bytes.
    Complete,
    /// Try again (after a backoff) with what the temp file holds.
    Retry(CacheError),
}

impl Downloader {
    /// A downloader with its own HTTP client.
    pub fn new(policy: DownloadPolicy) -> Self {
        let client = reqwest::Client::builder()
            .connect_timeout(policy.stall_timeout)
            .build()
            .expect("the rustls HTTP client builds with static settings");
        Self::with_client(client, policy)
    }

    /// A downloader sharing the agent's HTTP client.
    pub fn with_client(client: reqwest::Client, policy: DownloadPolicy) -> Self {
        Self {
            client,
            policy,
            authorize: None,
            partial: Arc::default(),
        }
    }

    /// Adds the device's credentials to every media request.
    pub fn with_authorization(mut self, authorize: Arc<dyn AuthorizeRequest>) -> Self {
        self.authorize = Some(authorize);
        self
    }

    /// Whether downloads may run at `local_time` (the venue's time of day).
    pub fn allowed_at(&self, local_time: jiff::civil::Time) -> bool {
        self.policy.allowed_hours.is_empty()
            || self
                .policy
                .allowed_hours
                .iter()
                .any(|window| window.contains(local_time))
    }

    /// Brings every media file of `manifest` into the cache, fetching what
    /// is missing (URLs relative to `base`). Media outside `keep` (the
    /// accepted and pending manifests' media) may be evicted to make room;
    /// a manifest that cannot fit is refused as a whole before any download.
    /// `now` (the agent's time floor) decides `download.allowed_hours` in
    /// the manifest's time zone.
    pub async fn ensure(
        &self,
        cache: &MediaCache,
        manifest: &Manifest,
        base: &Url,
        keep: &HashSet<String>,
        now: jiff::Timestamp,
    ) -> Result<Ready, Incomplete> {
        let mut unique: BTreeMap<&str, &Media> = BTreeMap::new();
        for item in &manifest.items {
            unique.entry(&item.media.sha256).or_insert(&item.media);
        }
        let incomplete = |failures| Incomplete {
            manifest_version: manifest.version,
            total: unique.len(),
            failures,
        };
        let missing: Vec<&Media> = unique
            .values()
            .copied()
            .filter(|media| !cache.contains(media))
            .collect();

        if !missing.is_empty() {
            let local = jiff::tz::TimeZone::get(&manifest.timezone)
                .map(|tz| now.to_zoned(tz).time())
                .unwrap_or_else(|_| now.to_zoned(jiff::tz::TimeZone::UTC).time());
            if !self.allowed_at(local) {
                let failures = missing
                    .iter()
                    .map(|media| (media.sha256.clone(), CacheError::OutsideDownloadHours))
                    .collect();
                return Err(incomplete(failures));
            }
            let needed: u64 = missing.iter().map(|media| media.size).sum();
            let mut keep = keep.clone();
            keep.extend(unique.keys().map(|sha| (*sha).to_owned()));
            if let Err(error) = cache.make_room(needed, &keep) {
                tracing::error!(version = manifest.version, %error, "manifest does not fit in the media cache");
                return Err(incomplete(vec![(missing[0].sha256.clone(), error)]));
            }
        }

        let mut failures = Vec::new();
        for media in missing {
            let result = match resolve(base, media) {
                Ok(url) => self.fetch(cache, media, &url).await,
                Err(error) => Err(error),
            };
            if let Err(error) = result {
                tracing::warn!(sha = %media.sha256, %error, "media download failed");
                failures.push((media.sha256.clone(), error));
            }
        }
        if !failures.is_empty() {
            return Err(incomplete(failures));
        }
        let files = unique
            .keys()
            .map(|sha| cache.media_path(sha).map(|path| ((*sha).to_owned(), path)))
            .collect::<Result<_, _>>()
            .map_err(|error| incomplete(vec![(String::new(), error)]))?;
        Ok(Ready {
            manifest_version: manifest.version,
            files,
        })
    }

    /// Downloads one file into the cache (resuming, retrying with backoff
    /// up to `max_attempts`) and commits it. Returns the verified file.
    pub async fn fetch(
        &self,
        cache: &MediaCache,
        media: &Media,
        url: &Url,
    ) -> Result<PathBuf, CacheError> {
        let span = tracing::info_span!("download", sha = %media.sha256, total = media.size);
        self.fetch_with_retries(cache, media, url)
            .instrument(span)
            .await
    }

    async fn fetch_with_retries(
        &self,
        cache: &MediaCache,
        media: &Media,
        url: &Url,
    ) -> Result<PathBuf, CacheError> {
        let temp = cache.temp_path(&media.sha256)?;
        let mut backoff = Backoff::new(self.policy.backoff_base, self.policy.backoff_cap);
        // The validator of the bytes in the temp file, for If-Range.
        let mut validator = self.partial_validators().remove(&media.sha256);
        let mut attempt = 1;
        loop {
            match self.attempt(media, url, &temp, &mut validator).await {
                Ok(Attempt::Complete) => {
                    let path = cache.commit(media)?;
                    tracing::info!(sha = %media.sha256, bytes = media.size, total = media.size, "media verified and cached");
                    return Ok(path);
                }
                Ok(Attempt::Retry(error)) if attempt < self.policy.max_attempts => {
                    let delay = backoff.next_delay();
                    tracing::info!(%error, attempt, delay_ms = delay.as_millis() as u64, "download attempt failed, retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Ok(Attempt::Retry(error)) => {
                    // Keep the bytes (and what they are) for the next round.
                    if let Some(validator) = validator {
                        self.partial_validators()
                            .insert(media.sha256.clone(), validator);
                    }
                    return Err(error);
                }
                Err(error) => {
                    // Not worth resuming: the bytes are wrong or unwanted.
                    remove_file(&temp)?;
                    return Err(error);
                }
            }
        }
    }

    fn partial_validators(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.partial
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// One HTTP request. `Err` is final (temp file to be deleted);
    /// `Attempt::Retry` keeps the temp file for resuming.
    async fn attempt(
        &self,
        media: &Media,
        url: &Url,
        temp: &std::path::Path,
        validator: &mut Option<String>,
    ) -> Result<Attempt, CacheError> {
        let sha = &media.sha256;
        let io = |op: &'static str| {
            move |source: std::io::Error| {
                if is_disk_full(&source) {
                    CacheError::DiskFull {
                        sha256: sha.clone(),
                    }
                } else {
                    CacheError::Io {
                        op,
                        path: temp.to_owned(),
                        source,
                    }
                }
            }
        };
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(temp)
            .await
            .map_err(io("open"))?;
        let mut offset = file.metadata().await.map_err(io("stat"))?.len();
        if offset > media.size || (offset > 0 && validator.is_none()) {
            // Nothing to resume against safely: start over.
            file.set_len(0).await.map_err(io("truncate"))?;
            offset = 0;
        }
        if offset == media.size {
            return Ok(Attempt::Complete);
        }

        let mut request = self.client.get(url.clone());
        if offset > 0
            && let Some(validator) = validator.as_deref()
        {
            request = request
                .header(RANGE, format!("bytes={offset}-"))
                .header(IF_RANGE, validator);
        }
        if let Some(authorize) = &self.authorize {
            request = authorize.authorize(request);
        }
        let stall = self.policy.stall_timeout;
        let stalled = || CacheError::Stalled {
            sha256: sha.clone(),
            seconds: stall.as_secs(),
        };
        let mut response = match tokio::time::timeout(stall, request.send()).await {
            Err(_) => return Ok(Attempt::Retry(stalled())),
            Ok(Err(error)) => return Ok(Attempt::Retry(interrupted(media, offset, &error))),
            Ok(Ok(response)) => response,
        };

        let status = response.status();
        match status {
            StatusCode::PARTIAL_CONTENT if offset > 0 => {
                let (start, total) = content_range(response.headers()).unwrap_or((u64::MAX, None));
                if let Some(total) = total.filter(|total| *total != media.size) {
                    return Err(CacheError::SizeMismatch {
                        sha256: sha.clone(),
                        declared: media.size,
                        actual: total,
                    });
                }
                if start != offset {
                    file.set_len(0).await.map_err(io("truncate"))?;
                    *validator = None;
                    return Ok(Attempt::Retry(CacheError::Interrupted {
                        sha256: sha.clone(),
                        bytes: 0,
                        size: media.size,
                        reason: format!(
                            "asked for bytes from {offset}, the server sent a range from {start}; restarting"
                        ),
                    }));
                }
                tracing::info!(sha = %sha, bytes = offset, total = media.size, "resuming download");
            }
            StatusCode::OK => {
                if offset > 0 {
                    // Range ignored, or If-Range found the content changed:
                    // the body is the whole file. Start over, never append.
                    tracing::info!(sha = %sha, discarded = offset, "server sent the whole file; restarting from zero");
                    file.set_len(0).await.map_err(io("truncate"))?;
                    offset = 0;
                }
                if let Some(length) = response.content_length() {
                    if length > media.size {
                        return Err(CacheError::BodyTooLong {
                            sha256: sha.clone(),
                            declared: media.size,
                        });
                    }
                    if length < media.size {
                        return Err(CacheError::SizeMismatch {
                            sha256: sha.clone(),
                            declared: media.size,
                            actual: length,
                        });
                    }
                }
                *validator = response_validator(response.headers());
            }
            StatusCode::RANGE_NOT_SATISFIABLE => {
                file.set_len(0).await.map_err(io("truncate"))?;
                *validator = None;
                return Ok(Attempt::Retry(CacheError::Http {
                    sha256: sha.clone(),
                    url: url.to_string(),
                    status: status.as_u16(),
                }));
            }
            _ => {
                let error = CacheError::Http {
                    sha256: sha.clone(),
                    url: url.to_string(),
                    status: status.as_u16(),
                };
                return if error.is_retryable() {
                    Ok(Attempt::Retry(error))
                } else {
                    Err(error)
                };
            }
        }

        file.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(io("seek"))?;
        let floor = self.policy.effective_floor();
        let window = self.policy.throughput_window;
        let started = Instant::now();
        let mut received_this_attempt = 0u64;
        let mut window_start = started;
        let mut window_bytes = 0u64;
        let mut last_byte_at = started;
        let mut last_progress_log = started;
        loop {
            let deadline = (last_byte_at + stall).min(window_start + window);
            let next = tokio::time::timeout_at(deadline.into(), response.chunk()).await;
            let now = Instant::now();
            match next {
                Ok(Ok(Some(chunk))) => {
                    let room = media.size - offset;
                    if chunk.len() as u64 > room {
                        // Write only up to the declared size, then stop reading.
                        file.write_all(&chunk[..room as usize])
                            .await
                            .map_err(io("write"))?;
                        return Err(CacheError::BodyTooLong {
                            sha256: sha.clone(),
                            declared: media.size,
                        });
                    }
                    file.write_all(&chunk).await.map_err(io("write"))?;
                    offset += chunk.len() as u64;
                    received_this_attempt += chunk.len() as u64;
                    window_bytes += chunk.len() as u64;
                    last_byte_at = now;
                    if now.duration_since(last_progress_log) >= Duration::from_secs(5) {
                        tracing::info!(sha = %sha, bytes = offset, total = media.size, "downloading");
                        last_progress_log = now;
                    }
                    self.pace(received_this_attempt, started).await;
                }
                Ok(Ok(None)) => break,
                Ok(Err(error)) => {
                    file.flush().await.map_err(io("write"))?;
                    return Ok(Attempt::Retry(interrupted(media, offset, &error)));
                }
                Err(_timeout) if now.duration_since(last_byte_at) >= stall => {
                    file.flush().await.map_err(io("write"))?;
                    return Ok(Attempt::Retry(stalled()));
                }
                Err(_timeout) => {}
            }
            let elapsed = now.duration_since(window_start);
            if elapsed >= window {
                let bytes_per_s = (window_bytes as f64 / elapsed.as_secs_f64()) as u64;
                if bytes_per_s < floor {
                    file.flush().await.map_err(io("write"))?;
                    return Ok(Attempt::Retry(CacheError::TooSlow {
                        sha256: sha.clone(),
                        bytes_per_s,
                        floor,
                    }));
                }
                window_start = now;
                window_bytes = 0;
            }
        }
        file.flush().await.map_err(io("write"))?;
        if offset < media.size {
            return Ok(Attempt::Retry(CacheError::Interrupted {
                sha256: sha.clone(),
                bytes: offset,
                size: media.size,
                reason: "the body ended early".to_owned(),
            }));
        }
        Ok(Attempt::Complete)
    }

    /// Sleeps as long as needed to keep the average under the rate limit.
    async fn pace(&self, received: u64, started: Instant) {
        let limit = self.policy.rate_limit_bytes_per_s;
        if limit == 0 {
            return;
        }
        let due = Duration::from_secs_f64(received as f64 / limit as f64);
        let elapsed = started.elapsed();
        if due > elapsed {
            tokio::time::sleep(due - elapsed).await;
        }
    }
}

fn interrupted(media: &Media, bytes: u64, error: &reqwest::Error) -> CacheError {
    CacheError::Interrupted {
        sha256: media.sha256.clone(),
        bytes,
        size: media.size,
        reason: error.to_string(),
    }
}

/// The media URL: absolute, or relative to the server URL; http(s) only.
fn resolve(base: &Url, media: &Media) -> Result<Url, CacheError> {
    let bad = |reason: String| CacheError::BadUrl {
        sha256: media.sha256.clone(),
        url: media.url.clone(),
        reason,
    };
    let url = base
        .join(&media.url)
        .map_err(|error| bad(error.to_string()))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        scheme => Err(bad(format!("scheme {scheme} is not http or https"))),
    }
}

/// A strong validator usable in If-Range: a strong ETag, else Last-Modified.
fn response_validator(headers: &HeaderMap) -> Option<String> {
    let etag = headers
        .get(ETAG)
        .and_then(|value| value.to_str().ok())
        .filter(|etag| !etag.starts_with("W/"));
    etag.or_else(|| {
        headers
            .get(LAST_MODIFIED)
            .and_then(|value| value.to_str().ok())
    })
    .map(str::to_owned)
}

/// `Content-Range: bytes START-END/TOTAL` → (START, TOTAL if known).
fn content_range(headers: &HeaderMap) -> Option<(u64, Option<u64>)> {
    let value = headers.get(CONTENT_RANGE)?.to_str().ok()?;
    let range = value.strip_prefix("bytes ")?;
    let (span, total) = range.split_once('/')?;
    let (start, _end) = span.split_once('-')?;
    Some((start.trim().parse().ok()?, total.trim().parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_parses() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_RANGE, "bytes 100-199/200".parse().unwrap());
        assert_eq!(content_range(&headers), Some((100, Some(200))));
        headers.insert(CONTENT_RANGE, "bytes 5-9/*".parse().unwrap());
        assert_eq!(content_range(&headers), Some((5, None)));
        headers.insert(CONTENT_RANGE, "items 5-9/10".parse().unwrap());
        assert_eq!(content_range(&headers), None);
    }

    #[test]
    fn weak_etags_are_not_range_validators() {
        let mut headers = HeaderMap::new();
        headers.insert(ETAG, "W/\"abc\"".parse().unwrap());
        assert_eq!(response_validator(&headers), None);
        headers.insert(
            LAST_MODIFIED,
            "Sun, 29 Nov 2026 08:00:00 GMT".parse().unwrap(),
        );
        assert_eq!(
            response_validator(&headers).as_deref(),
            Some("Sun, 29 Nov 2026 08:00:00 GMT")
        );
        headers.insert(ETAG, "\"abc\"".parse().unwrap());
        assert_eq!(response_validator(&headers).as_deref(), Some("\"abc\""));
    }

    #[test]
    fn relative_urls_resolve_against_the_server_and_other_schemes_are_refused() {
        let base = Url::parse("https://signage.example.org/").unwrap();
        let mut media = Media {
            sha256: "ab".repeat(32),
            size: 1,
            mime: "image/png".into(),
            url: "/media/ab".into(),
        };
        assert_eq!(
            resolve(&base, &media).unwrap().as_str(),
            "https://signage.example.org/media/ab"
        );
        media.url = "file:///etc/passwd".into();
        assert!(matches!(
            resolve(&base, &media),
            Err(CacheError::BadUrl { .. })
        ));
    }

    #[test]
    fn a_rate_limit_lowers_the_throughput_floor() {
        let mut policy = DownloadPolicy::from(&DownloadConfig::default());
        assert_eq!(policy.effective_floor(), 4096);
        policy.rate_limit_bytes_per_s = 2000;
        assert_eq!(policy.effective_floor(), 1000);
    }
}
