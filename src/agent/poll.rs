//! Manifest sync (SPEC §4, §5): long-poll the server for this screen's
//! manifest, verify it, fetch its media, and activate it atomically.
//!
//! One round ([`Syncer::sync_once`]):
//! 1. finish what an earlier round (or a previous run) left: a pending
//!    manifest whose media are not all cached yet, or media of the active
//!    manifest that went missing;
//! 2. `GET /api/v1/device/manifest?wait=…` with `If-None-Match` (the ETag
//!    of the last envelope seen, accepted or not, so a rejected envelope
//!    is not fetched again and again);
//! 3. the envelope's exact bytes go to [`trust::accept_in_dir`]: DSSE
//!    against the pinned root, rollback, freeze, rotation. A rejection
//!    leaves the trust state, the cache and the playing manifest as they
//!    were, and its reason becomes the heartbeat's `last_error`;
//! 4. an accepted manifest is stored as *pending* (exact payload and
//!    envelope, fsynced), its missing media are downloaded and verified
//!    into the cache, and only then is it made *active* by one atomic
//!    rename ([`ManifestStore::activate_pending`]); the playback loop is
//!    told through a watch channel, and media no manifest needs are evicted.
//!
//! The trust state records the accepted version at step 3, so a rollback
//! is refused even while the new manifest's media are still downloading;
//! the manifest that plays changes only at step 4, never half-way.
//! Failures are retried with capped exponential backoff and full jitter.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::backoff::Backoff;
use super::boot::{ManifestStore, Slot, StoreError, StoredManifestEntry};
use super::cache::{CacheError, MediaCache};
use super::client::{ClientError, DeviceClient, ManifestFetch};
use super::download::{Downloader, Incomplete};
use super::heartbeat::Health;
use crate::dsse;
use crate::manifest::Manifest;
use crate::trust::{self, Acceptance, Clock, TrustError, TrustState};

/// How long one manifest request waits on the server for a new publication.
pub const LONG_POLL: Duration = Duration::from_secs(60);

/// Why a sync round did not end with the newest manifest active.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The server could not be asked.
    #[error("manifest sync: {0}")]
    Client(#[from] ClientError),
    /// The envelope was refused; the last good manifest keeps playing.
    #[error("manifest rejected: {0}")]
    Rejected(#[source] TrustError),
    /// The trust state could not be read or written.
    #[error("trust state: {0}")]
    TrustState(#[source] TrustError),
    /// Storing or activating a manifest failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Some media could not be cached; the manifest stays pending.
    #[error("manifest not activated yet: {0}")]
    Media(#[from] Incomplete),
    /// The media cache failed.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// A blocking file task died.
    #[error("manifest sync: background file task failed: {0}")]
    Task(String),
}

/// What a round achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    /// Nothing new on the server.
    Unchanged,
    /// Nothing has been published for this screen yet.
    NothingPublished,
    /// This manifest version is now active.
    Activated(u64),
}

/// The active manifest as the playback loop sees it.
pub type ActiveManifest = Option<Arc<Manifest>>;

/// The manifest sync of one screen.
pub struct Syncer {
    client: DeviceClient,
    trust_dir: PathBuf,
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
) -> Result<T, SyncError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| SyncError::Task(error.to_string()))
}

impl Syncer {
    /// A syncer storing into `store` and `cache`, telling the playback loop
    /// about activations through `active`.
    pub fn new(
        client: DeviceClient,
        trust_dir: PathBuf,
        store: ManifestStore,
        cache: MediaCache,
        downloader: Downloader,
        health: Arc<Health>,
        active: watch::Sender<ActiveManifest>,
    ) -> Self {
        Self {
            client,
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

    /// Syncs until `shutdown` turns true: rounds back to back (each waits on
    /// the server), with backoff after failures. Errors are logged and kept
    /// for the heartbeat.
    pub async fn run(mut self, backoff: &mut Backoff, mut shutdown: watch::Receiver<bool>) {
        loop {
            let wait = self.long_poll;
            let round = tokio::select! {
                round = self.sync_once(wait) => round,
                () = super::run::until_stopped(&mut shutdown) => return,
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
                        () = super::run::until_stopped(&mut shutdown) => return,
                    }
                }
            }
        }
    }

    /// One round: finish pending work, ask the server (waiting up to
    /// `wait`), verify, download and activate.
    pub async fn sync_once(&mut self, wait: Duration) -> Result<SyncOutcome, SyncError> {
        let finished = self.finish_pending().await?;
        self.repair_active().await?;
        let fetched = self
            .client
            .fetch_manifest(self.etag.as_deref(), wait)
            .await?;
        match fetched {
            ManifestFetch::NotModified => {
                Ok(finished.map_or(SyncOutcome::Unchanged, SyncOutcome::Activated))
            }
            ManifestFetch::NonePublished => Ok(SyncOutcome::NothingPublished),
            ManifestFetch::Envelope { bytes, etag } => {
                // Remember it even if it is refused: the next poll then waits
                // for something new instead of fetching the same bad bytes.
                self.etag = etag;
                let outcome = self.consider(bytes).await;
                if let Err(SyncError::TrustState(_) | SyncError::Store(_) | SyncError::Task(_)) =
                    &outcome
                {
                    // The box, not the envelope, failed: fetch it again next round.
                    self.etag = None;
                }
                outcome
            }
        }
    }

    /// Verifies an envelope exactly as received and, if it is new, stores it
    /// as pending and tries to activate it.
    async fn consider(&mut self, envelope: Vec<u8>) -> Result<SyncOutcome, SyncError> {
        let trust_dir = self.trust_dir.clone();
        let clock = self.client.clock().clone();
        let store = self.store.clone();
        let stored = blocking(move || -> Result<bool, SyncError> {
            let acceptance = trust::accept_in_dir(&trust_dir, &envelope, &*clock).map_err(
                |error| match error {
                    TrustError::Io { .. } | TrustError::CorruptState { .. } => {
                        SyncError::TrustState(error)
                    }
                    other => SyncError::Rejected(other),
                },
            )?;
            let state = TrustState::load(&trust_dir).map_err(SyncError::TrustState)?;
            let accepted = match acceptance {
                Acceptance::New { manifest, .. } => Some(*manifest),
                Acceptance::Unchanged => {
                    // Accepted before. Active already, or pending already:
                    // nothing to store. Otherwise a crash came between
                    // accepting and storing it: store it now.
                    let version = state.manifest_version;
                    let present =
                        |slot| {
                            store.load(slot).ok().flatten().is_some_and(
                                |entry: StoredManifestEntry| {
                                    Some(entry.manifest.version) == version
                                },
                            )
                        };
                    if present(Slot::Active) || present(Slot::Pending) {
                        return Ok(false);
                    }
                    None
                }
            };
            // The exact payload bytes to store, from the envelope the trust
            // state now pins (its root may just have rotated).
            let (payload, parsed) = verified(&state, &envelope)?;
            let manifest = accepted.unwrap_or(parsed);
            store.save(Slot::Pending, &envelope, &payload, &manifest)?;
            tracing::info!(
                version = manifest.version,
                items = manifest.items.len(),
                "manifest accepted; fetching its media"
            );
            Ok(true)
        })
        .await??;
        if !stored {
            return Ok(SyncOutcome::Unchanged);
        }
        Ok(self
            .finish_pending()
            .await?
            .map_or(SyncOutcome::Unchanged, SyncOutcome::Activated))
    }

    /// Downloads the pending manifest's missing media and activates it once
    /// all are verified in the cache. `Ok(None)` when nothing is pending.
    async fn finish_pending(&mut self) -> Result<Option<u64>, SyncError> {
        let store = self.store.clone();
        let trust_dir = self.trust_dir.clone();
        let pending = blocking(move || -> Result<Option<StoredManifestEntry>, SyncError> {
            let Some(pending) = store.load(Slot::Pending)? else {
                return Ok(None);
            };
            // Only the version the trust state accepted may become active.
            let state = TrustState::load(&trust_dir).map_err(SyncError::TrustState)?;
            if state.manifest_version != Some(pending.manifest.version)
                || state.manifest_sha256.as_deref() != Some(pending.payload_sha256.as_str())
            {
                tracing::warn!(
                    version = pending.manifest.version,
                    accepted = ?state.manifest_version,
                    "pending manifest is not the accepted one; discarded"
                );
                store.discard_pending()?;
                return Ok(None);
            }
            Ok(Some(pending))
        })
        .await??;
        let Some(pending) = pending else {
            return Ok(None);
        };
        let manifest = pending.manifest;
        self.download(&manifest).await?;

        let store = self.store.clone();
        let cache = self.cache.clone();
        let evicted = blocking(move || -> Result<_, SyncError> {
            store.activate_pending()?;
            // Only the active manifest's media are needed now.
            Ok(cache.evict(&store.media_in_use())?)
        })
        .await??;
        tracing::info!(
            version = manifest.version,
            evicted_files = evicted.files,
            evicted_bytes = evicted.bytes,
            "manifest activated"
        );
        let version = manifest.version;
        self.publish_active(manifest).await?;
        self.health.clear_error();
        Ok(Some(version))
    }

    /// Fetches media of the active manifest that are missing from the cache
    /// (a damaged file was deleted, or the box booted with an incomplete
    /// cache), then tells the playback loop they are there.
    async fn repair_active(&mut self) -> Result<(), SyncError> {
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
        self.download(&active).await?;
        tracing::info!(
            version = active.version,
            "missing media of the active manifest fetched again"
        );
        self.active.send_replace(Some(active));
        Ok(())
    }

    async fn download(&self, manifest: &Manifest) -> Result<(), SyncError> {
        let store = self.store.clone();
        let keep: HashSet<String> = blocking(move || store.media_in_use()).await?;
        let now = self.trust_now().await?;
        self.downloader
            .ensure(&self.cache, manifest, self.client.base_url(), &keep, now)
            .await?;
        Ok(())
    }

    /// Tells the playback loop and the health record about the new manifest.
    async fn publish_active(&self, manifest: Manifest) -> Result<(), SyncError> {
        let trust_dir = self.trust_dir.clone();
        let state = blocking(move || TrustState::load(&trust_dir))
            .await?
            .map_err(SyncError::TrustState)?;
        self.health
            .set_manifest(manifest.version, manifest.expires_at, state.time_floor);
        self.active.send_replace(Some(Arc::new(manifest)));
        Ok(())
    }

    /// "Now" by the agent's clock, never before the trust state's floor.
    async fn trust_now(&self) -> Result<jiff::Timestamp, SyncError> {
        let trust_dir = self.trust_dir.clone();
        let clock = self.client.clock().clone();
        let state = blocking(move || TrustState::load(&trust_dir))
            .await?
            .map_err(SyncError::TrustState)?;
        Ok(state.now(&*clock))
    }
}

/// The payload and manifest of an envelope the trust state accepted,
/// verified again against its (possibly just rotated) root.
fn verified(state: &TrustState, envelope: &[u8]) -> Result<(Vec<u8>, Manifest), SyncError> {
    let keys = state
        .root
        .verifying_keys()
        .map_err(|error| SyncError::TrustState(TrustError::PinnedRootUnusable(error)))?;
    let verified = dsse::verify(
        envelope,
        dsse::MANIFEST_PAYLOAD_TYPE,
        &keys,
        state.root.threshold as usize,
    )
    .map_err(|error| SyncError::Rejected(TrustError::Envelope(error)))?;
    let manifest = Manifest::from_json(&verified.payload)
        .map_err(|error| SyncError::Rejected(TrustError::Manifest(error)))?;
    Ok((verified.payload, manifest))
}
