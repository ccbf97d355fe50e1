//! The agent's top level (SPEC §5): [`run`] ties enrollment, boot to play,
//! manifest sync, proof-of-play journal and upload, and heartbeats
//! together around a playback engine reached through [`PlaybackPort`].
//!
//! # Boot to play
//!
//! Before any network call, an enrolled box loads its trust state and the
//! last activated manifest from disk ([`super::boot`]) and starts playing
//! the items whose media are cached. A box without network plays what it
//! has for weeks; sync, upload and heartbeats start after that and retry
//! for ever in the background.
//!
//! # The playback port
//!
//! The agent decides *what* plays ([`crate::schedule`] over the active
//! manifest, restricted to media in the cache); the engine (GStreamer +
//! wgpu, or a test) decides *how*, and reports what really happened
//! through [`PlayEvents`]: started at the first presented frame, progress
//! about once a second, finished or failed with frame counts. Proof-of-play
//! records are made from these events — presented times, never scheduled
//! ones — and each is durable in the journal before the next item is asked
//! to start. Progress events checkpoint the play, so a power cut still
//! yields an `interrupted` record ending at the last presented frame.

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use jiff::{SignedDuration, Timestamp};
use rand::RngCore as _;
use tokio::sync::{Notify, mpsc, watch};

use super::backoff::Backoff;
use super::boot::{self, ManifestStore};
use super::cache::{CacheError, MediaCache};
use super::client::{ClientError, DeviceClient, ServerClock};
use super::config::PlayerConfig;
use super::download::{DownloadPolicy, Downloader};
use super::enroll::{self, EnrollError, EnrollOptions, PairingEvent};
use super::heartbeat::{self, Health, HeartbeatSources, Screenshots, SharedJournal, lock};
use super::journal::{DirStorage, Journal, JournalError, JournalOptions};
use super::poll::{ActiveManifest, ManifestPoller};
use super::upload::{PopTransport, UploadError, Uploader};
use super::watchdog::{self, Liveness, Watchdog};
use crate::manifest::{Item, Manifest, Overlay};
use crate::pop::PlayRecord;
use crate::pop::{Outcome, PlayBody};
use crate::schedule::{Decision, Schedule, Scheduler};
use crate::trust::Clock;

/// After every playable item failed in a row, wait this long before trying
/// again, so a broken set of clips does not spin the engine.
const FAILURE_PAUSE: Duration = Duration::from_secs(1);

/// With nothing pending, the upload loop still looks again this often, in
/// case an earlier failure left records behind without a new one arriving.
const UPLOAD_IDLE_RETRY: Duration = Duration::from_secs(60);

/// The device client as the upload loop's transport, keeping upload
/// failures as the heartbeat's last error.
struct HealthReportingTransport {
    client: DeviceClient,
    health: Arc<Health>,
}

impl PopTransport for HealthReportingTransport {
    async fn upload(&self, batch: &[PlayRecord]) -> Result<u64, UploadError> {
        let result = self.client.upload(batch).await;
        if let Err(error) = &result {
            self.health
                .set_error(self.client.clock().now(), error.to_string());
        }
        result
    }
}

/// How often the loop proves it is alive while no play is running. While
/// one is, the engine's events (Progress about once a second) do.
const IDLE_BEAT: Duration = Duration::from_secs(1);

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The data directory is unusable.
    #[error("cannot use the data directory {path}: {source}; check data_dir in the player config")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The media cache cannot be opened.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// The proof-of-play journal cannot be opened.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// Enrollment failed for good (not for network trouble, which is retried).
    #[error(transparent)]
    Enroll(#[from] EnrollError),
    /// The device client cannot be built (bad server URL).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A startup task died.
    #[error("agent startup task failed: {0}")]
    Task(String),
}

/// What the engine is asked to play.
#[derive(Debug, Clone, PartialEq)]
pub struct PlayRequest {
    /// Random id of this play; events name it.
    pub play_id: String,
    /// The manifest item (id, campaign, media, duration, fit…).
    pub item: Item,
    /// The verified media file in the cache.
    pub media_path: PathBuf,
    /// Version of the manifest the item comes from.
    pub manifest_version: u64,
    /// Overlays (ticker) to draw while it plays: those active when the
    /// play was decided.
    pub overlays: Vec<Overlay>,
}

/// What happened to a play, as the engine saw it on screen.
#[derive(Debug, Clone, PartialEq)]
pub enum PlayEvent {
    /// The first frame was presented.
    Started {
        /// When it reached the screen.
        presented_at: Timestamp,
        /// The decoder element in use (`v4l2h264dec`, `avdec_h264`…), if any.
        decoder: Option<String>,
    },
    /// Still playing (about once a second): checkpointed for power cuts.
    Progress {
        /// The last presented frame.
        last_presented_at: Timestamp,
        /// Frames presented so far in this play.
        frames_presented: u64,
        /// Frames dropped so far in this play.
        frames_dropped: u64,
    },
    /// Played to its end (or its duration for stills).
    Finished {
        /// The first presented frame.
        first_presented_at: Timestamp,
        /// The last presented frame.
        last_presented_at: Timestamp,
        /// Frames presented in this play.
        frames_presented: u64,
        /// Frames dropped in this play.
        frames_dropped: u64,
    },
    /// Could not be played (decoder error, stall, unreadable file).
    Failed {
        /// What went wrong, for the heartbeat.
        reason: String,
        /// Frames presented before the failure.
        frames_presented: u64,
        /// Frames dropped before the failure.
        frames_dropped: u64,
        /// The last presented frame, if any was.
        last_presented_at: Option<Timestamp>,
    },
}

/// The engine's way back to the agent for one play.
#[derive(Debug, Clone)]
pub struct PlayEvents {
    play_id: String,
    sender: mpsc::UnboundedSender<(String, PlayEvent)>,
}

impl PlayEvents {
    /// Reports an event of this play. Events of a play the agent no longer
    /// waits for (stopped, superseded) are ignored.
    pub fn send(&self, event: PlayEvent) {
        // A closed channel means the agent is shutting down: nothing to tell.
        let _ = self.sender.send((self.play_id.clone(), event));
    }

    /// The play these events belong to.
    pub fn play_id(&self) -> &str {
        &self.play_id
    }
}

/// The playback engine as the agent sees it. Calls never block: the
/// engine starts work and answers through [`PlayEvents`].
pub trait PlaybackPort: Send + 'static {
    /// Start `request` now (after the current play, if any, without a gap).
    fn play(&mut self, request: PlayRequest, events: PlayEvents);

    /// What follows the current play, committed when it starts: preroll
    /// it so the switch shows no gap. Unless [`Self::stop`] comes first,
    /// the next [`Self::play`] is this request (same `play_id`), made once
    /// the current play's record is durable; an engine that already
    /// switched to it holds its events until then.
    fn preroll(&mut self, _next: &PlayRequest) {}

    /// Nothing may play now: show the configured fallback (logo or black).
    fn show_fallback(&mut self);

    /// Enrollment news: show the pairing code, or stop showing it.
    fn show_pairing(&mut self, _event: &PairingEvent) {}

    /// Stop the current play (pre-emption by a higher tier, or shutdown).
    fn stop(&mut self);

    /// Where the heartbeat loop asks for screenshots of what is on screen
    /// (asked once, before playback starts); `None`: this engine takes none.
    fn screenshots(&self) -> Option<Screenshots> {
        None
    }

    /// How the heartbeat learns the graphics backend and adapter the
    /// engine renders with (asked once, before playback starts).
    fn graphics(&self) -> Option<heartbeat::GraphicsProbe> {
        None
    }
}

/// Runs the agent until `shutdown` completes: boot to play from disk, then
/// enrollment if needed, sync, uploads and heartbeats in the background.
pub async fn run(
    config: PlayerConfig,
    playback: impl PlaybackPort,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError> {
    run_with_clock(config, playback, Arc::new(ServerClock::system()), shutdown).await
}

/// [`run`] with the box clock given (a [`crate::trust::ManualClock`] in
/// 1970 for tests of clock correction).
pub async fn run_with_clock(
    config: PlayerConfig,
    playback: impl PlaybackPort,
    clock: Arc<ServerClock>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError> {
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });

    // Everything on disk first; none of it touches the network.
    let opening = config.clone();
    let clock_for_boot = clock.clone();
    let (cache, journal, store, identity, boot_state) =
        tokio::task::spawn_blocking(move || open_local(&opening, &*clock_for_boot))
            .await
            .map_err(|error| AgentError::Task(error.to_string()))??;
    let journal: SharedJournal = Arc::new(Mutex::new(journal));
    let health = Arc::new(Health::new());
    let (active_sender, active) = watch::channel::<ActiveManifest>(None);
    if let Some(entry) = boot_state.as_ref().and_then(|state| state.active.clone()) {
        let floor = boot_state
            .as_ref()
            .and_then(|state| state.trust.as_ref())
            .map_or_else(|| clock.now(), |trust| trust.time_floor);
        health.set_manifest(entry.manifest.version, entry.manifest.expires_at, floor);
        active_sender.send_replace(Some(Arc::new(entry.manifest)));
    }
    for problem in boot_state.iter().flat_map(|state| &state.problems) {
        health.set_error(clock.now(), problem.clone());
    }

    let key = match &identity {
        Some(identity) => identity.key.clone(),
        None => {
            let path = config.screen_key_path();
            tokio::task::spawn_blocking(move || enroll::load_or_create_screen_key(&path))
                .await
                .map_err(|error| AgentError::Task(error.to_string()))??
        }
    };
    let screenshots = playback.screenshots();
    let graphics = playback.graphics();
    let appended = Arc::new(Notify::new());
    let liveness = Liveness::new();
    let start_playing = |port, screen_id: String, active| {
        let playback_loop = PlaybackLoop {
            port,
            journal: journal.clone(),
            key: key.clone(),
            screen_id,
            health: health.clone(),
            cache: cache.clone(),
            appended: appended.clone(),
            clock: clock.clone(),
            liveness: liveness.clone(),
            scheduler: Scheduler::new(),
            playable: None,
            current: None,
            committed_next: None,
            retry_at: None,
            failures_in_a_row: 0,
        };
        let playing = tokio::spawn(playback_loop.run(active, stopped.clone()));
        watchdog::notify_ready();
        if let Some(watchdog) = Watchdog::from_env(liveness.clone()) {
            let mut watchdog_stop = stopped.clone();
            tokio::spawn(async move {
                tokio::select! {
                    () = watchdog.run() => {}
                    () = until_stopped(&mut watchdog_stop) => {}
                }
            });
        }
        playing
    };

    // Boot to play: an enrolled box plays before it talks to anyone.
    let (mut unenrolled_port, mut playing) = match &identity {
        Some(identity) => (
            None,
            Some(start_playing(
                playback,
                identity.trust.screen_id.clone(),
                active.clone(),
            )),
        ),
        None => (Some(playback), None),
    };
    let client = match DeviceClient::new(&config.server_url, key.clone(), clock.clone()) {
        Ok(client) => client,
        Err(error) => match playing.take() {
            // Playing what it has beats stopping: keep at it, offline.
            Some(playing) => {
                tracing::error!(%error, "cannot talk to the server; playing offline");
                health.set_error(clock.now(), error.to_string());
                return playing
                    .await
                    .map_err(|error| AgentError::Task(error.to_string()));
            }
            None => return Err(error.into()),
        },
    };
    if let Some(mut port) = unenrolled_port.take() {
        let mut waiting = stopped.clone();
        let enrolled = enroll::enroll(
            &client,
            &config.trust_dir(),
            &EnrollOptions::from_config(&config),
            |event| port.show_pairing(&event),
            async move {
                until_stopped(&mut waiting).await;
            },
        )
        .await;
        let screen_id = match enrolled {
            Ok(trust) => trust.screen_id,
            Err(EnrollError::ShutDown) => return Ok(()),
            Err(error) => return Err(error.into()),
        };
        playing = Some(start_playing(port, screen_id, active.clone()));
    }
    let Some(playing) = playing else {
        return Err(AgentError::Task("playback loop never started".to_owned()));
    };

    let downloader = Downloader::with_client(
        client.http().clone(),
        DownloadPolicy::from(&config.download),
    )
    .with_authorization(Arc::new(client.clone()));
    let poller = ManifestPoller::new(
        client.clone(),
        config.trust_dir(),
        store,
        cache.clone(),
        downloader,
        health.clone(),
        active_sender,
    );
    let syncing = tokio::spawn(poller.run(
        Backoff::new(config.sync.backoff_base, config.sync.backoff_cap),
        stopped.clone(),
    ));
    let uploader = Uploader::new(journal.clone(), config.sync.upload_batch_size);
    let transport = HealthReportingTransport {
        client: client.clone(),
        health: health.clone(),
    };
    let upload_backoff = Backoff::new(config.sync.backoff_base, config.sync.backoff_cap);
    let mut upload_stop = stopped.clone();
    let uploading = tokio::spawn(async move {
        tokio::select! {
            () = uploader.run(transport, upload_backoff, appended, UPLOAD_IDLE_RETRY) => {}
            () = until_stopped(&mut upload_stop) => {}
        }
    });
    let beating = tokio::spawn(heartbeat::run_heartbeats(
        client,
        HeartbeatSources {
            health,
            cache,
            journal,
            data_dir: config.data_dir.clone(),
            graphics,
        },
        config.sync.heartbeat_interval,
        screenshots,
        stopped,
    ));
    for task in [playing, syncing, uploading, beating] {
        task.await
            .map_err(|error| AgentError::Task(error.to_string()))?;
    }
    tracing::info!("agent stopped");
    Ok(())
}

/// Opens the cache, the journal and the manifest store, loads the identity
/// and decides what is playable, all from disk.
#[allow(clippy::type_complexity)]
fn open_local(
    config: &PlayerConfig,
    clock: &dyn Clock,
) -> Result<
    (
        MediaCache,
        Journal<DirStorage>,
        ManifestStore,
        Option<enroll::Identity>,
        Option<boot::BootState>,
    ),
    AgentError,
> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| AgentError::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    let cache = MediaCache::open(&config.cache_dir(), config.cache.quota_bytes)?;
    let journal_dir = config.journal_dir();
    let storage = DirStorage::new(&journal_dir).map_err(|source| AgentError::DataDir {
        path: journal_dir,
        source,
    })?;
    let (journal, report) = Journal::open(storage, JournalOptions::default())?;
    tracing::info!(pending = report.pending, "proof-of-play journal opened");
    let store = ManifestStore::new(&manifest_dir(config));
    let identity = match enroll::load_identity(config) {
        Ok(identity) => identity,
        Err(error) => {
            // The box must be enrolled again; the key, if readable, is reused.
            tracing::error!(%error, "identity unreadable; enrolling again");
            None
        }
    };
    let boot_state = identity
        .as_ref()
        .map(|_| boot::boot(&config.trust_dir(), &store, &cache, clock));
    Ok((cache, journal, store, identity, boot_state))
}

/// Where the accepted manifests (active, pending) live.
pub fn manifest_dir(config: &PlayerConfig) -> PathBuf {
    config.data_dir.join("manifests")
}

/// The play on screen.
struct CurrentPlay {
    play_id: String,
    /// The (playable) manifest it was scheduled from, and its index there.
    manifest: Arc<Manifest>,
    index: usize,
    stale: bool,
    first_presented: Option<Timestamp>,
    last_presented: Option<Timestamp>,
    frames_presented: u64,
    frames_dropped: u64,
}

/// Decides what plays, hands it to the engine, and journals what happened.
struct PlaybackLoop<P> {
    port: P,
    journal: SharedJournal,
    key: SigningKey,
    screen_id: String,
    health: Arc<Health>,
    cache: MediaCache,
    appended: Arc<Notify>,
    clock: Arc<ServerClock>,
    /// Fed by every playback event and, while the fallback shows, by the
    /// loop itself: systemd's watchdog pings stop when the engine stalls.
    liveness: Liveness,
    scheduler: Scheduler,
    /// The active manifest restricted to items whose media are cached.
    playable: Option<Arc<Manifest>>,
    current: Option<CurrentPlay>,
    /// The play committed to follow the current one (handed to the engine
    /// as a preroll when the current one started), with its manifest and index.
    committed_next: Option<(Arc<Manifest>, usize, PlayRequest)>,
    /// Showing the fallback until then (or until a new manifest).
    retry_at: Option<Timestamp>,
    failures_in_a_row: usize,
}

impl<P: PlaybackPort> PlaybackLoop<P> {
    async fn run(
        mut self,
        mut active: watch::Receiver<ActiveManifest>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let (sender, mut events) = mpsc::unbounded_channel();
        self.journal_interrupted_play().await;
        let initial = active.borrow_and_update().clone();
        self.set_manifest(initial).await;
        self.decide_and_play(&sender).await;
        let mut idle_tick = tokio::time::interval(IDLE_BEAT);
        loop {
            let wake = self.retry_at.map(|at| {
                let wait = at.duration_since(self.health.now(&*self.clock));
                Duration::try_from(wait).unwrap_or(Duration::ZERO)
            });
            tokio::select! {
                Some((play_id, event)) = events.recv() => {
                    self.liveness.beat();
                    self.on_event(&play_id, event, &sender).await;
                }
                _ = idle_tick.tick(), if self.current.is_none() => {
                    // Showing the fallback: nothing to wait for from the engine.
                    self.liveness.beat();
                }
                changed = active.changed() => {
                    if changed.is_err() {
                        // The sync task is gone (shutting down); keep playing.
                        continue;
                    }
                    let manifest = active.borrow_and_update().clone();
                    self.set_manifest(manifest).await;
                    if self.current.is_none() {
                        self.decide_and_play(&sender).await;
                    }
                }
                () = sleep_or_forever(wake) => {
                    self.retry_at = None;
                    if self.current.is_none() {
                        self.decide_and_play(&sender).await;
                    }
                }
                () = until_stopped(&mut shutdown) => {
                    self.committed_next = None;
                    self.port.stop();
                    self.end_current(Outcome::Interrupted, None).await;
                    return;
                }
            }
        }
    }

    /// A play cut by a power loss or kill before this start becomes its
    /// `interrupted` record now.
    async fn journal_interrupted_play(&mut self) {
        let journal = self.journal.clone();
        let key = self.key.clone();
        let written = tokio::task::spawn_blocking(move || -> Result<Option<u64>, JournalError> {
            let mut journal = lock(&journal);
            let Some(play) = journal.interrupted_play() else {
                return Ok(None);
            };
            let record = journal.append_play(play, &key)?;
            journal.clear_checkpoint()?;
            Ok(Some(record.body.seq))
        })
        .await;
        match written {
            Ok(Ok(Some(seq))) => {
                tracing::info!(
                    seq,
                    "play cut short by the last stop journaled as interrupted"
                );
                self.appended.notify_one();
            }
            Ok(Ok(None)) => {}
            Ok(Err(error)) => {
                self.report(format!("journaling the interrupted play failed: {error}"))
            }
            Err(error) => self.report(format!("journal task failed: {error}")),
        }
    }

    fn report(&self, message: String) {
        tracing::error!("{message}");
        self.health
            .set_error(self.health.now(&*self.clock), message);
    }

    /// Takes a new active manifest: the items whose media are cached.
    async fn set_manifest(&mut self, manifest: ActiveManifest) {
        let Some(manifest) = manifest else {
            self.playable = None;
            return;
        };
        let cache = self.cache.clone();
        let playable = tokio::task::spawn_blocking(move || {
            let mut playable = (*manifest).clone();
            playable.items.retain(|item| cache.contains(&item.media));
            playable
        })
        .await;
        match playable {
            Ok(playable) => {
                tracing::info!(
                    version = playable.version,
                    items = playable.items.len(),
                    "playing manifest"
                );
                self.scheduler.retain_items(&playable);
                self.playable = Some(Arc::new(playable));
                self.retry_at = None;
            }
            Err(error) => self.report(format!("cache check failed: {error}")),
        }
    }

    fn request(&self, manifest: &Manifest, index: usize) -> Option<PlayRequest> {
        let item = manifest.items.get(index)?.clone();
        let media_path = self.cache.media_path(&item.media.sha256).ok()?;
        let mut id = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut id);
        Some(PlayRequest {
            play_id: hex::encode(id),
            item,
            media_path,
            manifest_version: manifest.version,
            // Tickers outside their flight or windows are not drawn.
            overlays: Schedule::new(manifest).map_or_else(
                |_| manifest.overlays.clone(),
                |schedule| {
                    schedule
                        .active_overlays(self.health.now(&*self.clock))
                        .into_iter()
                        .cloned()
                        .collect()
                },
            ),
        })
    }

    async fn decide_and_play(&mut self, sender: &mpsc::UnboundedSender<(String, PlayEvent)>) {
        // The engine may already show the committed play: it plays as
        // promised (a new manifest or window applies from the one after).
        if let Some((manifest, index, request)) = self.committed_next.take()
            && request.media_path.exists()
        {
            self.start_play(manifest, index, request, sender);
            return;
        }
        let Some(manifest) = self.playable.clone() else {
            self.show_fallback(None);
            return;
        };
        let schedule = match Schedule::new(&manifest) {
            Ok(schedule) => schedule,
            Err(error) => {
                self.report(error.to_string());
                self.show_fallback(None);
                return;
            }
        };
        let now = self.health.now(&*self.clock);
        match self.scheduler.decide(&schedule, now) {
            Decision::Play { index, .. } => {
                let Some(request) = self.request(&manifest, index) else {
                    self.show_fallback(None);
                    return;
                };
                self.start_play(manifest, index, request, sender);
            }
            Decision::Fallback { retry_at } => self.show_fallback(retry_at),
        }
    }

    fn start_play(
        &mut self,
        manifest: Arc<Manifest>,
        index: usize,
        request: PlayRequest,
        sender: &mpsc::UnboundedSender<(String, PlayEvent)>,
    ) {
        tracing::info!(item = %request.item.id, sha = %request.item.media.sha256, play = %request.play_id, "play");
        self.current = Some(CurrentPlay {
            play_id: request.play_id.clone(),
            manifest,
            index,
            stale: self.health.is_stale(&*self.clock),
            first_presented: None,
            last_presented: None,
            frames_presented: 0,
            frames_dropped: 0,
        });
        let events = PlayEvents {
            play_id: request.play_id.clone(),
            sender: sender.clone(),
        };
        self.port.play(request, events);
        self.hold_media();
    }

    fn show_fallback(&mut self, retry_at: Option<Timestamp>) {
        self.health.set_current(None, None);
        self.retry_at = retry_at;
        self.port.show_fallback();
        self.hold_media();
    }

    /// Tells the cache which media the engine has now (the play on screen
    /// and the committed one), so eviction after an activation spares them;
    /// media it deferred and nothing holds any more go now.
    fn hold_media(&self) {
        let held = self
            .current
            .iter()
            .map(|current| current.manifest.items[current.index].media.sha256.clone())
            .chain(
                self.committed_next
                    .iter()
                    .map(|(_, _, next)| next.item.media.sha256.clone()),
            )
            .collect();
        if self.cache.hold(held) {
            let cache = self.cache.clone();
            // Under the cache's lock it re-checks what is held: calls
            // finishing out of order cannot remove a file in use.
            tokio::task::spawn_blocking(move || {
                if let Err(error) = cache.evict_released() {
                    tracing::warn!(%error, "media cache: evicting released media failed");
                }
            });
        }
    }

    async fn on_event(
        &mut self,
        play_id: &str,
        event: PlayEvent,
        sender: &mpsc::UnboundedSender<(String, PlayEvent)>,
    ) {
        let Some(current) = self
            .current
            .as_mut()
            .filter(|current| current.play_id == play_id)
        else {
            tracing::debug!(play = play_id, "event of a play no longer current ignored");
            return;
        };
        match event {
            PlayEvent::Started {
                presented_at,
                decoder,
            } => {
                current.first_presented = Some(presented_at);
                current.last_presented = Some(presented_at);
                let item = &current.manifest.items[current.index];
                self.health.set_current(Some(item.id.clone()), decoder);
                // That first frame is on screen: a power cut before the
                // first progress event still yields a record that says so.
                self.count_frames(1, 0);
                self.checkpoint().await;
                self.preroll_next();
            }
            PlayEvent::Progress {
                last_presented_at,
                frames_presented,
                frames_dropped,
            } => {
                self.count_frames(frames_presented, frames_dropped);
                if let Some(current) = self.current.as_mut() {
                    current.last_presented = Some(last_presented_at);
                }
                self.checkpoint().await;
                self.preempt_if_needed(sender).await;
            }
            PlayEvent::Finished {
                first_presented_at,
                last_presented_at,
                frames_presented,
                frames_dropped,
            } => {
                self.count_frames(frames_presented, frames_dropped);
                if let Some(current) = self.current.as_mut() {
                    current.first_presented = Some(first_presented_at);
                    current.last_presented = Some(last_presented_at);
                }
                self.failures_in_a_row = 0;
                self.end_current(Outcome::Completed, None).await;
                self.decide_and_play(sender).await;
            }
            PlayEvent::Failed {
                reason,
                frames_presented,
                frames_dropped,
                last_presented_at,
            } => {
                self.count_frames(frames_presented, frames_dropped);
                if let Some(current) = self.current.as_mut() {
                    current.last_presented = last_presented_at.or(current.last_presented);
                }
                let playable = self.playable.as_ref().map_or(0, |m| m.items.len());
                self.failures_in_a_row += 1;
                self.end_current(Outcome::Failed, Some(reason)).await;
                if self.failures_in_a_row >= playable.max(1) {
                    // Everything failed: breathe before trying again.
                    self.failures_in_a_row = 0;
                    let pause =
                        SignedDuration::try_from(FAILURE_PAUSE).unwrap_or(SignedDuration::ZERO);
                    self.show_fallback(self.health.now(&*self.clock).checked_add(pause).ok());
                } else {
                    self.decide_and_play(sender).await;
                }
            }
        }
    }

    /// Adds the frames of the current play not yet counted to the heartbeat's counters.
    fn count_frames(&mut self, presented: u64, dropped: u64) {
        if let Some(current) = self.current.as_mut() {
            let new_presented = presented.saturating_sub(current.frames_presented);
            let new_dropped = dropped.saturating_sub(current.frames_dropped);
            current.frames_presented = current.frames_presented.max(presented);
            current.frames_dropped = current.frames_dropped.max(dropped);
            self.health.add_frames(new_presented, new_dropped);
        }
    }

    fn preroll_next(&mut self) {
        let Some(current) = &self.current else { return };
        // With nothing playable the fallback follows: decided at the end.
        let Some(playable) = self.playable.clone() else {
            return;
        };
        let Ok(schedule) = Schedule::new(&playable) else {
            return;
        };
        let item = &current.manifest.items[current.index];
        let expected = SignedDuration::from_millis(
            i64::try_from(item.duration_ms.unwrap_or(10_000)).unwrap_or(i64::MAX),
        );
        let started = current
            .first_presented
            .unwrap_or_else(|| self.health.now(&*self.clock));
        let decision = if Arc::ptr_eq(&playable, &current.manifest) {
            self.scheduler
                .next_after(&schedule, current.index, started, expected)
        } else {
            // A manifest activated since this play was decided: the next
            // play is its first, prerolled like any other so the switch
            // happens at this item's end without a gap. (Indices of the
            // current play refer to its old manifest: no history to add.)
            let ends_at = started.checked_add(expected).unwrap_or(started);
            self.scheduler.decide(&schedule, ends_at)
        };
        if let Decision::Play { index, .. } = decision
            && let Some(next) = self.request(&playable, index)
        {
            self.port.preroll(&next);
            self.committed_next = Some((playable, index, next));
            self.hold_media();
        }
    }

    async fn preempt_if_needed(&mut self, sender: &mpsc::UnboundedSender<(String, PlayEvent)>) {
        let (Some(current), Some(playable)) = (&self.current, &self.playable) else {
            return;
        };
        let Ok(schedule) = Schedule::new(playable) else {
            return;
        };
        // Indices of the current play refer to its own manifest: only
        // compare within the same one.
        if !Arc::ptr_eq(&current.manifest, playable) {
            return;
        }
        if let Some(index) =
            self.scheduler
                .preempting(&schedule, self.health.now(&*self.clock), current.index)
        {
            tracing::info!(item = %playable.items[index].id, "higher tier pre-empts the current play");
            self.committed_next = None;
            self.port.stop();
            self.end_current(Outcome::Interrupted, None).await;
            self.decide_and_play(sender).await;
        }
    }

    /// The record the current play would make if it ended now.
    fn body(&self, current: &CurrentPlay, outcome: Outcome) -> PlayBody {
        let item = &current.manifest.items[current.index];
        let now = self.health.now(&*self.clock);
        let started = current.first_presented.unwrap_or(now);
        let ended = current.last_presented.unwrap_or(started).max(started);
        PlayBody {
            screen_id: self.screen_id.clone(),
            seq: 0,
            play_id: current.play_id.clone(),
            item_id: item.id.clone(),
            campaign: item.campaign.clone(),
            media_sha256: item.media.sha256.clone(),
            manifest_version: current.manifest.version,
            started_at_ms: started.as_millisecond(),
            ended_at_ms: ended.as_millisecond(),
            duration_ms: u64::try_from(ended.as_millisecond() - started.as_millisecond())
                .unwrap_or(0),
            frames_presented: current.frames_presented,
            frames_dropped: current.frames_dropped,
            outcome,
            stale: current.stale,
        }
    }

    async fn checkpoint(&mut self) {
        let Some(current) = &self.current else { return };
        let body = self.body(current, Outcome::Interrupted);
        let play_id = body.play_id.clone();
        let journal = self.journal.clone();
        match tokio::task::spawn_blocking(move || lock(&journal).checkpoint(&body)).await {
            Ok(Ok(())) => tracing::debug!(play = %play_id, "play checkpointed"),
            Ok(Err(error)) => self.report(format!("checkpoint of the play failed: {error}")),
            Err(error) => self.report(format!("journal task failed: {error}")),
        }
    }

    /// Journals the current play with `outcome` (durably, before anything
    /// else starts) and records it in the scheduler's history.
    async fn end_current(&mut self, outcome: Outcome, failure: Option<String>) {
        let Some(current) = self.current.take() else {
            return;
        };
        // A play stopped before its first frame was never on screen: no record.
        if current.first_presented.is_none() && outcome != Outcome::Failed {
            return;
        }
        let body = self.body(&current, outcome);
        if let Some(reason) = &failure {
            let item = &current.manifest.items[current.index];
            self.report(format!("item {} failed to play: {reason}", item.id));
        }
        if let Ok(schedule) = Schedule::new(&current.manifest) {
            let played =
                SignedDuration::from_millis(i64::try_from(body.duration_ms).unwrap_or(i64::MAX));
            let started = Timestamp::from_millisecond(body.started_at_ms)
                .unwrap_or_else(|_| self.health.now(&*self.clock));
            self.scheduler
                .record_play(&schedule, current.index, started, played);
        }
        self.health.set_current(None, None);
        let journal = self.journal.clone();
        let key = self.key.clone();
        let appended = tokio::task::spawn_blocking(move || {
            let mut journal = lock(&journal);
            let record = journal.append_play(body, &key)?;
            journal.clear_checkpoint()?;
            Ok::<_, JournalError>(record.body.seq)
        })
        .await;
        match appended {
            Ok(Ok(seq)) => {
                tracing::debug!(seq, ?outcome, "play journaled");
                self.appended.notify_one();
            }
            Ok(Err(error)) => self.report(format!("journaling the play failed: {error}")),
            Err(error) => self.report(format!("journal task failed: {error}")),
        }
    }
}

/// Completes once `shutdown` turns true (or its sender is gone).
pub(crate) async fn until_stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

async fn sleep_or_forever(wait: Option<Duration>) {
    match wait {
        Some(wait) => tokio::time::sleep(wait).await,
        None => std::future::pending().await,
    }
}
