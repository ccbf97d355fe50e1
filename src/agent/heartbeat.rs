//! Health reporting (SPEC §5 "Health"): the agent's shared [`Health`]
//! record, written by sync, upload and the playback loop, and the
//! heartbeat loop that sends it to the server every `heartbeat_interval`.
//!
//! A heartbeat carries: agent version, manifest version, current item,
//! decoder, frames presented/dropped since the last delivered heartbeat,
//! cache use and quota, disk free, uptime, the stale flag, the last error
//! (with when it happened), the proof-of-play backlog and the clock
//! correction. Frame counts of a heartbeat that could not be delivered are
//! carried into the next one, so no frame is lost from the totals.
//!
//! # Screenshots on request
//!
//! The server's answer to a heartbeat may ask for a screenshot (an
//! operator pressed the button on the fleet page). The loop then asks the
//! playback side through [`Screenshots`] for a small PNG of exactly what
//! the screen shows (the composed frame with ticker and rotation), and
//! uploads it at once with a signed `PUT`. The request travels as a
//! [`ScreenshotRequest`] over a plain channel, so this module needs no GPU
//! code and the agent-only build keeps compiling; the engine answers it on
//! its render thread.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde::Serialize;
use tokio::sync::{oneshot, watch};

use super::cache::MediaCache;
use super::client::{DeviceClient, HeartbeatAnswer};
use super::journal::{DirStorage, Journal};
use crate::trust::Clock;

/// The journal as the agent's tasks share it.
pub type SharedJournal = Arc<Mutex<Journal<DirStorage>>>;

/// Locks a mutex, taking over a poisoned one: the data behind these locks
/// (counters, the journal's in-memory index) stays consistent even if a
/// holder panicked, and the agent must keep running.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What the agent currently knows about its own health.
#[derive(Debug)]
pub struct Health {
    started: Instant,
    inner: Mutex<HealthInner>,
}

#[derive(Debug, Default)]
struct HealthInner {
    manifest_version: Option<u64>,
    manifest_expires_at: Option<Timestamp>,
    time_floor: Option<Timestamp>,
    current_item: Option<String>,
    decoder: Option<String>,
    frames_presented: u64,
    frames_dropped: u64,
    last_error: Option<(Timestamp, String)>,
}

impl Default for Health {
    fn default() -> Self {
        Self::new()
    }
}

impl Health {
    /// A record with nothing known yet; uptime counts from now.
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            inner: Mutex::new(HealthInner::default()),
        }
    }

    /// Records an error for the next heartbeat (replacing an older one).
    pub fn set_error(&self, at: Timestamp, message: impl Into<String>) {
        lock(&self.inner).last_error = Some((at, message.into()));
    }

    /// Forgets the last error (sync recovered: a manifest was activated).
    pub fn clear_error(&self) {
        lock(&self.inner).last_error = None;
    }

    /// The last error, if any.
    pub fn last_error(&self) -> Option<String> {
        lock(&self.inner)
            .last_error
            .as_ref()
            .map(|(_, message)| message.clone())
    }

    /// The manifest now playing: its version and expiry, and the trust
    /// state's time floor (staleness is judged against both).
    pub fn set_manifest(&self, version: u64, expires_at: Timestamp, time_floor: Timestamp) {
        let mut inner = lock(&self.inner);
        inner.manifest_version = Some(version);
        inner.manifest_expires_at = Some(expires_at);
        inner.time_floor = Some(time_floor);
    }

    /// The version of the manifest now playing.
    pub fn manifest_version(&self) -> Option<u64> {
        lock(&self.inner).manifest_version
    }

    /// "Now" for scheduling: the clock, never before the trust time floor
    /// (a box that rebooted into 1970 offline keeps its schedule).
    pub fn now(&self, clock: &dyn Clock) -> Timestamp {
        let now = clock.now();
        lock(&self.inner)
            .time_floor
            .map_or(now, |floor| floor.max(now))
    }

    /// Whether the playing manifest is past its expiry (by the clock and the time floor).
    pub fn is_stale(&self, clock: &dyn Clock) -> bool {
        let inner = lock(&self.inner);
        match inner.manifest_expires_at {
            Some(expires_at) => {
                let now = inner
                    .time_floor
                    .map_or_else(|| clock.now(), |floor| floor.max(clock.now()));
                now >= expires_at
            }
            None => false,
        }
    }

    /// What is on screen now (`None`: fallback or nothing) and its decoder.
    pub fn set_current(&self, item: Option<String>, decoder: Option<String>) {
        let mut inner = lock(&self.inner);
        inner.current_item = item;
        if decoder.is_some() {
            inner.decoder = decoder;
        }
    }

    /// Counts frames presented and dropped since the last heartbeat.
    pub fn add_frames(&self, presented: u64, dropped: u64) {
        let mut inner = lock(&self.inner);
        inner.frames_presented = inner.frames_presented.saturating_add(presented);
        inner.frames_dropped = inner.frames_dropped.saturating_add(dropped);
    }

    fn take_frames(&self) -> (u64, u64) {
        let mut inner = lock(&self.inner);
        (
            std::mem::take(&mut inner.frames_presented),
            std::mem::take(&mut inner.frames_dropped),
        )
    }
}

/// The body of a heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeartbeatReport {
    /// The agent's version (`CARGO_PKG_VERSION`).
    pub agent_version: String,
    /// When the box sent it (server-corrected clock).
    pub sent_at: Timestamp,
    /// Version of the manifest playing.
    pub manifest_version: Option<u64>,
    /// Item on screen now.
    pub current_item: Option<String>,
    /// Decoder used by the current or last clip.
    pub decoder: Option<String>,
    /// Graphics backend and adapter rendering the output (SPEC §5), e.g.
    /// "Vulkan · V3D 7.1 · integrated GPU · Mesa …"; `None` before the
    /// output is open.
    pub graphics: Option<String>,
    /// Frames presented since the last heartbeat.
    pub frames_presented: u64,
    /// Frames dropped since the last heartbeat.
    pub frames_dropped: u64,
    /// Bytes used by the media cache.
    pub cache_bytes: u64,
    /// `cache.quota_bytes`.
    pub cache_quota_bytes: u64,
    /// Free bytes on the data directory's filesystem.
    pub disk_free_bytes: Option<u64>,
    /// Seconds since the agent started.
    pub uptime_s: u64,
    /// Past the manifest's expiry: still playing, but stale.
    pub stale: bool,
    /// The last error (sync, download, upload, playback).
    pub last_error: Option<String>,
    /// When it happened.
    pub last_error_at: Option<Timestamp>,
    /// Proof-of-play records not yet acknowledged.
    pub pop_pending: usize,
    /// Highest acknowledged proof-of-play seq.
    pub pop_acked_seq: u64,
    /// How far the box clock is behind the server's, in ms.
    pub clock_offset_ms: i64,
}

/// Everything the heartbeat loop reads.
#[derive(Clone)]
pub struct HeartbeatSources {
    /// Shared health record.
    pub health: Arc<Health>,
    /// The media cache (for use and quota).
    pub cache: MediaCache,
    /// The journal (for the backlog).
    pub journal: SharedJournal,
    /// The data directory (for disk free).
    pub data_dir: PathBuf,
    /// Asks the engine which graphics backend and adapter it renders
    /// with; `None` for an engine that does not say.
    pub graphics: Option<GraphicsProbe>,
}

/// How the heartbeat asks the engine for its graphics backend and adapter.
pub type GraphicsProbe = fn() -> Option<String>;

impl HeartbeatSources {
    /// A report as of now; takes the frame counters (see [`Self::restore`]).
    pub fn report(&self, client: &DeviceClient) -> HeartbeatReport {
        let clock = client.clock();
        let (frames_presented, frames_dropped) = self.health.take_frames();
        let (pop_pending, pop_acked_seq) = {
            let journal = lock(&self.journal);
            (journal.pending_count(), journal.acknowledged_seq())
        };
        let inner = lock(&self.health.inner);
        let (last_error_at, last_error) = inner
            .last_error
            .clone()
            .map_or((None, None), |(at, message)| (Some(at), Some(message)));
        let report = HeartbeatReport {
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            sent_at: clock.now(),
            manifest_version: inner.manifest_version,
            current_item: inner.current_item.clone(),
            decoder: inner.decoder.clone(),
            graphics: self.graphics.and_then(|probe| probe()),
            frames_presented,
            frames_dropped,
            cache_bytes: self.cache.usage().unwrap_or(0),
            cache_quota_bytes: self.cache.quota_bytes(),
            disk_free_bytes: disk_free(&self.data_dir),
            uptime_s: self.health.started.elapsed().as_secs(),
            stale: false,
            last_error,
            last_error_at,
            pop_pending,
            pop_acked_seq,
            clock_offset_ms: clock.offset().as_millis() as i64,
        };
        drop(inner);
        HeartbeatReport {
            stale: self.health.is_stale(&**clock),
            ..report
        }
    }

    /// Puts back the frame counts of a report that was not delivered.
    pub fn restore(&self, report: &HeartbeatReport) {
        self.health
            .add_frames(report.frames_presented, report.frames_dropped);
    }
}

/// How long the playback side may take to answer a screenshot request (it
/// answers on its next refresh; PNG encoding takes a few milliseconds).
pub const SCREENSHOT_TIMEOUT: Duration = Duration::from_secs(10);

/// One request for a screenshot, answered by the playback side with PNG
/// bytes or the reason it could not take one.
#[derive(Debug)]
pub struct ScreenshotRequest {
    reply: oneshot::Sender<Result<Vec<u8>, String>>,
}

impl ScreenshotRequest {
    /// Answers the request. An agent that stopped waiting ignores it.
    pub fn answer(self, png: Result<Vec<u8>, String>) {
        let _ = self.reply.send(png);
    }
}

/// The agent's end of the screenshot channel: given by the playback port
/// ([`super::run::PlaybackPort::screenshots`]), used by the heartbeat loop.
#[derive(Debug, Clone)]
pub struct Screenshots {
    requests: std::sync::mpsc::Sender<ScreenshotRequest>,
}

/// A connected pair: the agent's [`Screenshots`] and the receiver the
/// playback side drains (without blocking) once per refresh.
pub fn screenshot_channel() -> (Screenshots, std::sync::mpsc::Receiver<ScreenshotRequest>) {
    let (requests, receiver) = std::sync::mpsc::channel();
    (Screenshots { requests }, receiver)
}

impl Screenshots {
    /// Asks for a PNG of what is on screen now and waits for it (at most
    /// [`SCREENSHOT_TIMEOUT`]).
    pub async fn take(&self) -> Result<Vec<u8>, String> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(ScreenshotRequest { reply })
            .map_err(|_| "the playback engine is gone".to_owned())?;
        match tokio::time::timeout(SCREENSHOT_TIMEOUT, answer).await {
            Ok(Ok(png)) => png,
            Ok(Err(_)) => Err("the playback engine dropped the screenshot request".to_owned()),
            Err(_) => Err(format!(
                "the playback engine took no screenshot within {} s",
                SCREENSHOT_TIMEOUT.as_secs()
            )),
        }
    }
}

/// Takes a screenshot and uploads it; failures are logged (the server
/// asks again in its next answer while it still wants one).
async fn send_screenshot(client: &DeviceClient, screenshots: Option<&Screenshots>) {
    let Some(screenshots) = screenshots else {
        tracing::warn!("the server asked for a screenshot, but this playback engine takes none");
        return;
    };
    let png = match screenshots.take().await {
        Ok(png) => png,
        Err(reason) => {
            tracing::warn!(%reason, "screenshot not taken");
            return;
        }
    };
    let bytes = png.len();
    match client.upload_screenshot(png).await {
        Ok(()) => tracing::info!(bytes, "screenshot uploaded"),
        Err(error) => tracing::warn!(%error, "screenshot not delivered"),
    }
}

/// Free bytes for unprivileged users on the filesystem holding `path`.
pub fn disk_free(path: &std::path::Path) -> Option<u64> {
    let stat = rustix::fs::statvfs(path).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// Sends a heartbeat every `interval` until `shutdown` turns true. A
/// failed send is logged; its frame counts go into the next one. When the
/// answer asks for a screenshot, one is taken through `screenshots` and
/// uploaded before the next heartbeat.
pub async fn run_heartbeats(
    client: DeviceClient,
    sources: HeartbeatSources,
    interval: Duration,
    screenshots: Option<Screenshots>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = super::run::until_stopped(&mut shutdown) => return,
        }
        let report = {
            let (sources, client) = (sources.clone(), client.clone());
            // Cache use walks the cache directory: file work off the async threads.
            match tokio::task::spawn_blocking(move || sources.report(&client)).await {
                Ok(report) => report,
                Err(error) => {
                    tracing::error!(%error, "building the heartbeat failed");
                    continue;
                }
            }
        };
        let sent = tokio::select! {
            sent = client.heartbeat(&report) => sent,
            () = super::run::until_stopped(&mut shutdown) => return,
        };
        match sent {
            Ok(HeartbeatAnswer {
                screenshot_requested,
            }) => {
                tracing::debug!(
                    manifest = ?report.manifest_version,
                    stale = report.stale,
                    screenshot_requested,
                    "heartbeat sent"
                );
                if screenshot_requested {
                    tokio::select! {
                        () = send_screenshot(&client, screenshots.as_ref()) => {}
                        () = super::run::until_stopped(&mut shutdown) => return,
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%error, "heartbeat not delivered");
                sources.restore(&report);
            }
        }
    }
}
