//! Applying a manifest envelope from the server (SPEC §4): verify and
//! accept it with the trust rules, keep it as the pending manifest, fetch
//! its media, and activate it atomically once every file is verified; then
//! evict media nothing needs any more (those on screen or prerolled go
//! once the playback loop lets go of them, see [`MediaCache::hold`]).
//!
//! Order matters for power cuts: the pending manifest is written before the
//! trust state records its version, so a box that accepted version N+1 always
//! has N+1 on disk to finish; the active manifest changes only by the one
//! rename in [`ManifestStore::activate_pending`]. A rejected envelope writes
//! nothing at all. Fetching the envelope (long-poll with ETag) is the
//! device-API client's job; it hands the bytes to [`Syncer::apply_envelope`].

use jiff::Timestamp;
use reqwest::Url;

use super::boot::{ManifestStore, Slot, StoreError};
use super::cache::{CacheError, MediaCache};
use super::download::{Downloader, Incomplete};
use crate::dsse::{self, MANIFEST_PAYLOAD_TYPE};
use crate::trust::{self, Acceptance, Clock, TrustError, TrustState};

/// What applying an envelope (or resuming a pending manifest) led to.
#[derive(Debug)]
pub enum Applied {
    /// The version already active (or pending): nothing new.
    Unchanged,
    /// The manifest is now active: the player switches to it.
    Activated {
        /// Its version.
        version: u64,
        /// Already past its expiry: play it, report stale.
        stale: bool,
    },
    /// Accepted, but some media are not cached yet: the old manifest keeps
    /// playing, the reason goes into the next heartbeat, and
    /// [`Syncer::resume_pending`] tries again later.
    Waiting {
        /// The pending manifest's version.
        version: u64,
        /// What is missing and why.
        incomplete: Incomplete,
    },
}

/// Why an envelope could not be applied at all.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The trust rules refused it (bad signature, rollback, wrong screen…);
    /// nothing was written, the last good manifest keeps playing.
    #[error("manifest rejected: {0}")]
    Rejected(#[source] TrustError),
    /// The trust state could not be read or written (storage trouble, or
    /// the box is not enrolled).
    #[error("trust state: {0}")]
    TrustState(#[source] TrustError),
    /// The accepted manifest could not be stored.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The media cache failed (not a download problem: those are `Waiting`).
    #[error(transparent)]
    Cache(#[from] CacheError),
}

/// Applies manifests for one screen.
pub struct Syncer {
    trust_dir: std::path::PathBuf,
    store: ManifestStore,
    cache: MediaCache,
    downloader: Downloader,
    /// Media URLs in manifests are relative to this (the server URL).
    base: Url,
}

impl Syncer {
    /// A syncer over the box's trust directory, manifest store and cache.
    pub fn new(
        trust_dir: &std::path::Path,
        store: ManifestStore,
        cache: MediaCache,
        downloader: Downloader,
        base: Url,
    ) -> Self {
        Self {
            trust_dir: trust_dir.to_owned(),
            store,
            cache,
            downloader,
            base,
        }
    }

    /// Verifies `envelope` (the exact bytes received) against the trust
    /// state, stores it as pending, fetches its media and activates it when
    /// all are verified.
    pub async fn apply_envelope(
        &self,
        envelope: &[u8],
        clock: &(dyn Clock + Sync),
    ) -> Result<Applied, SyncError> {
        let state = TrustState::load(&self.trust_dir).map_err(SyncError::TrustState)?;
        let acceptance = match trust::accept(&state, envelope, clock) {
            Ok(acceptance) => acceptance,
            Err(error) => {
                tracing::warn!(screen = %state.screen_id, %error, "manifest rejected; the last good one keeps playing");
                return Err(SyncError::Rejected(error));
            }
        };
        match acceptance {
            Acceptance::Unchanged => self.resume_pending(clock).await,
            Acceptance::New {
                manifest,
                new_state,
                ..
            } => {
                // `accept` verified these bytes against the pinned root; this
                // only recovers the exact payload it verified.
                let keys = state
                    .root
                    .verifying_keys()
                    .map_err(|error| SyncError::Rejected(TrustError::PinnedRootUnusable(error)))?;
                let verified = dsse::verify(
                    envelope,
                    MANIFEST_PAYLOAD_TYPE,
                    &keys,
                    state.root.threshold as usize,
                )
                .map_err(|error| SyncError::Rejected(error.into()))?;
                self.store
                    .save(Slot::Pending, envelope, &verified.payload, &manifest)?;
                new_state
                    .save(&self.trust_dir)
                    .map_err(SyncError::TrustState)?;
                tracing::info!(screen = %state.screen_id, version = manifest.version, "manifest accepted; fetching its media");
                self.resume_pending(clock).await
            }
        }
    }

    /// Fetches what the pending manifest still lacks and activates it once
    /// complete (also after a restart, or when the last round failed).
    pub async fn resume_pending(&self, clock: &(dyn Clock + Sync)) -> Result<Applied, SyncError> {
        let Some(pending) = self.store.load(Slot::Pending)? else {
            return Ok(Applied::Unchanged);
        };
        let state = TrustState::load(&self.trust_dir).map_err(SyncError::TrustState)?;
        let now: Timestamp = state.now(clock);
        let manifest = &pending.manifest;
        let keep = self.store.media_in_use();
        // Media an earlier activation left for the playback loop to let go
        // of stay, if this manifest needs them again.
        self.cache.cancel_eviction(&keep);
        match self
            .downloader
            .ensure(&self.cache, manifest, &self.base, &keep, now)
            .await
        {
            Ok(_ready) => {
                self.store.activate_pending()?;
                let stale = trust::is_stale(&state, manifest, clock);
                let eviction = self.cache.evict(&self.store.media_in_use())?;
                tracing::info!(
                    version = manifest.version,
                    stale,
                    evicted = eviction.files,
                    "manifest activated"
                );
                Ok(Applied::Activated {
                    version: manifest.version,
                    stale,
                })
            }
            Err(incomplete) => {
                tracing::warn!(version = manifest.version, %incomplete, "manifest waits for its media; the active one keeps playing");
                Ok(Applied::Waiting {
                    version: manifest.version,
                    incomplete,
                })
            }
        }
    }
}
