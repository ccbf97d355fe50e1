//! The manifest long-poll loop (SPEC §4, §5): asks the server for this
//! screen's manifest and hands each envelope to [`sync::Syncer`], which
//! verifies it, keeps it pending, fetches its media and activates it.
//!
//! One round ([`ManifestPoller::poll_once`]):
//! 1. finish what an earlier round (or a previous run) left: a pending
//!    manifest whose media are not all cached yet, or media of the active
//!    manifest that went missing (storage damage);
//! 2. `GET /api/v1/device/manifest?wait=…` with `If-None-Match`, the ETag
//!    of the last envelope seen, accepted or not, so a refused envelope is
//!    not fetched again and again (a round that failed on the box's side,
//!    not the envelope's, forgets the ETag so the envelope comes again);
//! 3. the envelope's exact bytes go to [`sync::Syncer::apply_envelope`].
//!    A refusal leaves trust state, cache and the playing manifest as they
//!    were; its reason becomes the heartbeat's `last_error`;
//! 4. an activation is handed to the playback loop through a watch channel.
//!
//! Failures are retried with capped exponential backoff and full jitter.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::backoff::Backoff;
use super::boot::{ManifestStore, Slot, StoreError};
use super::cache::MediaCache;
use super::client::{ClientError, DeviceClient, ManifestFetch};
use super::download::{Downloader, Incomplete};
use super::heartbeat::Health;
use super::run::until_stopped;
use super::sync::{Applied, SyncError, Syncer};
use crate::manifest::Manifest;
use crate::trust::{Clock, TrustState};

/// How long one manifest request waits on the server for a new publication.
pub const LONG_POLL: Duration = Duration::from_secs(60);

/// Why a round did not end with the newest manifest active.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    /// The server could not be asked.
    #[error("manifest sync: {0}")]
    Client(#[from] ClientError),
    /// The envelope was refused, or the box could not store it.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// Some media could not be cached; the manifest stays pending and the
    /// active one keeps playing.
    #[error("manifest version {version} not activated yet: {incomplete}")]
    Waiting {
        /// The pending version.
        version: u64,
        /// What is missing and why.
        incomplete: Incomplete,
    },
    /// Media of the active manifest could not be fetched again.
    #[error("media of the playing manifest missing: {0}")]
    Repair(#[source] Incomplete),
    /// Reading the manifest store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A blocking file task died.
    #[error("manifest sync: background file task failed: {0}")]
    Task(String),
}

/// What a round achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollOutcome {
    /// Nothing new.
    Unchanged,
    /// Nothing has been published for this screen yet.
    NothingPublished,
    /// This manifest version is now active.
    Activated(u64),
}

/// The active manifest as the playback loop sees it.
pub type ActiveManifest = Option<Arc<Manifest>>;

/// The manifest long-poll of one screen.
pub struct ManifestPoller {
    client: DeviceClient,
    syncer: Syncer,
    trust_dir: std::path::PathBuf,
    store: ManifestStore,
    cache: MediaCache,
    downloader: Downloader,
    health: Arc<Health>,
    active: watch::Sender<ActiveManifest>,
    etag: Option<String>,
    long_poll: Duration,
}

/// Runs blocking file work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, PollError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| PollError::Task(error.to_string()))
}

impl ManifestPoller {
    /// A poller syncing into `store` and `cache`, telling the playback loop
    /// about activations through `active`.
    pub fn new(
        client: DeviceClient,
        trust_dir: std::path::PathBuf,
        store: ManifestStore,
        cache: MediaCache,
        downloader: Downloader,
        health: Arc<Health>,
        active: watch::Sender<ActiveManifest>,
    ) -> Self {
        let syncer = Syncer::new(
            &trust_dir,
            store.clone(),
            cache.clone(),
            downloader.clone(),
            client.base_url().clone(),
        );
        Self {
            client,
            syncer,
            trust_dir,
            store,
            cache,
            downloader,
            health,
            active,
            etag: None,
            long_poll: LONG_POLL,
        }
    }

    /// Changes how long each manifest request waits on the server.
    pub fn with_long_poll(mut self, wait: Duration) -> Self {
        self.long_poll = wait;
        self
    }

    /// Polls until `shutdown` turns true: rounds back to back (each waits on
    /// the server), with backoff after failures, which are logged and kept
    /// for the heartbeat.
    pub async fn run(mut self, mut backoff: Backoff, mut shutdown: watch::Receiver<bool>) {
        loop {
            let wait = self.long_poll;
            let round = tokio::select! {
                round = self.poll_once(wait) => round,
                () = until_stopped(&mut shutdown) => return,
            };
            match round {
                Ok(outcome) => {
                    tracing::debug!(?outcome, "sync round done");
                    backoff.reset();
                }
                Err(error) => {
                    tracing::warn!(%error, "sync round failed");
                    self.health
                        .set_error(self.client.clock().now(), error.to_string());
                    let delay = backoff.next_delay();
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = until_stopped(&mut shutdown) => return,
                    }
                }
            }
        }
    }

    /// One round: finish pending work, ask the server (waiting up to
    /// `wait`), verify, download and activate.
    pub async fn poll_once(&mut self, wait: Duration) -> Result<PollOutcome, PollError> {
        let clock = self.client.clock().clone();
        // Unfinished work (media still missing) must not keep the box from
        // hearing about a newer manifest, which may be the fix (a smaller
        // playlist): remember the problem, ask the server without waiting,
        // and report the problem only if nothing new came.
        let resumed = match self.syncer.resume_pending(&*clock).await {
            Ok(applied) => self.take_applied(applied).await,
            Err(error) => Err(error.into()),
        };
        let resumed = match resumed {
            Ok(outcome) => self.repair_active().await.map(|()| outcome),
            Err(error) => Err(error),
        };
        let wait = if resumed.is_err() {
            Duration::ZERO
        } else {
            wait
        };
        let fetched = self
            .client
            .fetch_manifest(self.etag.as_deref(), wait)
            .await?;
        match fetched {
            ManifestFetch::NotModified => resumed,
            ManifestFetch::NonePublished => resumed.map(|_| PollOutcome::NothingPublished),
            ManifestFetch::Envelope { bytes, etag } => {
                // Remember it even if it is refused: the next poll then waits
                // for something new instead of fetching the same bad bytes.
                self.etag = etag;
                let applied = self.syncer.apply_envelope(&bytes, &*clock).await;
                if let Err(SyncError::TrustState(_) | SyncError::Store(_) | SyncError::Cache(_)) =
                    &applied
                {
                    // The box, not the envelope, failed: fetch it again next round.
                    self.etag = None;
                }
                self.take_applied(applied?).await
            }
        }
    }

    /// Hands an activation to the playback loop; a manifest still waiting
    /// for media is an error for the heartbeat.
    async fn take_applied(&self, applied: Applied) -> Result<PollOutcome, PollError> {
        match applied {
            Applied::Unchanged => Ok(PollOutcome::Unchanged),
            Applied::Waiting {
                version,
                incomplete,
            } => Err(PollError::Waiting {
                version,
                incomplete,
            }),
            Applied::Activated { version, .. } => {
                let store = self.store.clone();
                let trust_dir = self.trust_dir.clone();
                let (active, state) =
                    blocking(move || (store.load(Slot::Active), TrustState::load(&trust_dir).ok()))
                        .await?;
                if let Some(entry) = active? {
                    let floor = state.map_or_else(|| self.client.clock().now(), |s| s.time_floor);
                    self.health.set_manifest(
                        entry.manifest.version,
                        entry.manifest.expires_at,
                        floor,
                    );
                    self.active.send_replace(Some(Arc::new(entry.manifest)));
                }
                self.health.clear_error();
                Ok(PollOutcome::Activated(version))
            }
        }
    }

    /// Fetches media of the active manifest that are missing from the cache
    /// (a damaged file was deleted, or the box booted with an incomplete
    /// cache), then tells the playback loop they are there.
    async fn repair_active(&self) -> Result<(), PollError> {
        let Some(active) = self.active.borrow().clone() else {
            return Ok(());
        };
        let cache = self.cache.clone();
        let manifest = active.clone();
        let complete = blocking(move || {
            manifest
                .items
                .iter()
                .all(|item| cache.contains(&item.media))
        })
        .await?;
        if complete {
            return Ok(());
        }
        let store = self.store.clone();
        let keep = blocking(move || store.media_in_use()).await?;
        let trust_dir = self.trust_dir.clone();
        let floor =
            blocking(move || TrustState::load(&trust_dir).ok().map(|s| s.time_floor)).await?;
        let now = self.client.clock().now();
        let now = floor.map_or(now, |floor| floor.max(now));
        self.downloader
            .ensure(&self.cache, &active, self.client.base_url(), &keep, now)
            .await
            .map_err(PollError::Repair)?;
        tracing::info!(
            version = active.version,
            "missing media of the active manifest fetched again"
        );
        self.active.send_replace(Some(active));
        Ok(())
    }
}
