//! Boot to play (SPEC §5): what the box plays before it talks to anyone.
//!
//! The agent keeps two accepted manifests on disk, in `manifests/` under
//! the data directory:
//! - `active.json`: the manifest that plays, and
//! - `pending.json`: a newer accepted manifest whose media are still
//!   downloading.
//!
//! Each file holds the exact payload bytes the root signed (and the
//! envelope as received), with the payload's SHA-256 to catch storage
//! damage. Activation is one atomic rename of `pending.json` over
//! `active.json` followed by a directory fsync, so a power cut leaves the
//! old or the new manifest active, never a mix. [`boot`] reads the trust
//! state and the active manifest and decides what is playable: the items
//! whose media are in the cache. It never fails: whatever is unreadable is
//! logged and treated as absent, because a box that plays something beats
//! a box that shows an error.

use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use super::cache::MediaCache;
use crate::manifest::{Item, Manifest, Media};
use crate::trust::{self, Clock, TrustState};

/// Why a stored manifest could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file operation failed.
    #[error("manifest store: {op} {path} failed: {source}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file is damaged or does not hold what it claims.
    #[error(
        "manifest store: {path} is damaged ({reason}); it is ignored until the server sends a manifest again"
    )]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Which stored manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// The one that plays.
    Active,
    /// Accepted, media still downloading.
    Pending,
}

impl Slot {
    fn file_name(self) -> &'static str {
        match self {
            Self::Active => "active.json",
            Self::Pending => "pending.json",
        }
    }
}

/// A stored manifest file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredManifest {
    /// The manifest's version (for humans reading the file).
    version: u64,
    /// Lowercase hex SHA-256 of the payload bytes.
    payload_sha256: String,
    /// The exact payload bytes, base64.
    payload: String,
    /// The envelope exactly as received.
    envelope: String,
}

/// An accepted manifest read back from disk.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredManifestEntry {
    /// The parsed, validated manifest.
    pub manifest: Manifest,
    /// SHA-256 of its payload (what the trust state pins).
    pub payload_sha256: String,
    /// The envelope exactly as received.
    pub envelope: Vec<u8>,
}

/// The `manifests/` directory.
#[derive(Debug, Clone)]
pub struct ManifestStore {
    dir: PathBuf,
}

impl ManifestStore {
    /// The store in `dir` (created on first save).
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
        }
    }

    fn path(&self, slot: Slot) -> PathBuf {
        self.dir.join(slot.file_name())
    }

    /// Stores an accepted manifest: the exact `payload` the root signed,
    /// its parse, and the `envelope` as received. Atomic and durable.
    pub fn save(
        &self,
        slot: Slot,
        envelope: &[u8],
        payload: &[u8],
        manifest: &Manifest,
    ) -> Result<(), StoreError> {
        let io = |op, path: &Path| {
            let path = path.to_owned();
            move |source| StoreError::Io { op, path, source }
        };
        std::fs::create_dir_all(&self.dir).map_err(io("create", &self.dir))?;
        let stored = StoredManifest {
            version: manifest.version,
            payload_sha256: trust::payload_sha256(payload),
            payload: BASE64.encode(payload),
            envelope: String::from_utf8_lossy(envelope).into_owned(),
        };
        let bytes =
            serde_json::to_vec_pretty(&stored).expect("a stored manifest serialises to JSON");
        let temp = self.dir.join(format!(".{}.tmp", slot.file_name()));
        let mut file = std::fs::File::create(&temp).map_err(io("create", &temp))?;
        file.write_all(&bytes).map_err(io("write", &temp))?;
        file.sync_all().map_err(io("fsync", &temp))?;
        drop(file);
        let target = self.path(slot);
        std::fs::rename(&temp, &target).map_err(io("rename", &temp))?;
        self.sync_dir()
    }

    /// Reads a stored manifest; `Ok(None)` if there is none.
    pub fn load(&self, slot: Slot) -> Result<Option<StoredManifestEntry>, StoreError> {
        let path = self.path(slot);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StoreError::Io {
                    op: "read",
                    path,
                    source,
                });
            }
        };
        let damaged = |reason: String| StoreError::Damaged {
            path: path.clone(),
            reason,
        };
        let stored: StoredManifest =
            serde_json::from_slice(&bytes).map_err(|error| damaged(error.to_string()))?;
        let payload = BASE64
            .decode(&stored.payload)
            .map_err(|error| damaged(format!("payload: {error}")))?;
        let actual = trust::payload_sha256(&payload);
        if actual != stored.payload_sha256 {
            return Err(damaged(format!(
                "payload hashes to {actual}, recorded {}",
                stored.payload_sha256
            )));
        }
        let manifest = Manifest::from_json(&payload).map_err(|error| damaged(error.to_string()))?;
        if manifest.version != stored.version {
            return Err(damaged(format!(
                "payload is version {}, recorded {}",
                manifest.version, stored.version
            )));
        }
        Ok(Some(StoredManifestEntry {
            manifest,
            payload_sha256: stored.payload_sha256,
            envelope: stored.envelope.into_bytes(),
        }))
    }

    /// Makes the pending manifest the active one: one rename, then a
    /// directory fsync. Call only once all its media are verified.
    pub fn activate_pending(&self) -> Result<(), StoreError> {
        let pending = self.path(Slot::Pending);
        std::fs::rename(&pending, self.path(Slot::Active)).map_err(|source| StoreError::Io {
            op: "rename",
            path: pending,
            source,
        })?;
        self.sync_dir()
    }

    /// Forgets the pending manifest (superseded by a newer one).
    pub fn discard_pending(&self) -> Result<(), StoreError> {
        let pending = self.path(Slot::Pending);
        match std::fs::remove_file(&pending) {
            Err(source) if source.kind() != std::io::ErrorKind::NotFound => Err(StoreError::Io {
                op: "remove",
                path: pending,
                source,
            }),
            _ => self.sync_dir(),
        }
    }

    /// SHA-256s of every media file the active and pending manifests need:
    /// what eviction must keep.
    pub fn media_in_use(&self) -> HashSet<String> {
        [Slot::Active, Slot::Pending]
            .into_iter()
            .filter_map(|slot| self.load(slot).ok().flatten())
            .flat_map(|entry| {
                entry
                    .manifest
                    .items
                    .into_iter()
                    .map(|item| item.media.sha256)
            })
            .collect()
    }

    fn sync_dir(&self) -> Result<(), StoreError> {
        std::fs::File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|source| StoreError::Io {
                op: "fsync",
                path: self.dir.clone(),
                source,
            })
    }
}

/// What the box can do at boot, before any network.
#[derive(Debug, Clone)]
pub struct BootState {
    /// The persisted trust state; `None` means the box is not enrolled.
    pub trust: Option<TrustState>,
    /// The manifest to play, if any was ever activated.
    pub active: Option<StoredManifestEntry>,
    /// The active manifest's items whose media are in the cache.
    pub playable: Vec<Item>,
    /// Media of the active manifest missing from the cache (deleted as
    /// damaged, or the disk was replaced): fetched again once online.
    pub missing: Vec<Media>,
    /// The active manifest is past its expiry (by the time floor): play it,
    /// but report stale.
    pub stale: bool,
    /// Problems met while loading, for the first heartbeat.
    pub problems: Vec<String>,
}

/// Loads the trust state (`trust_dir`) and the active manifest (`store`)
/// and decides what is playable from `cache`. Never touches the network
/// and never fails: damage is reported in [`BootState::problems`].
pub fn boot(
    trust_dir: &Path,
    store: &ManifestStore,
    cache: &MediaCache,
    clock: &dyn Clock,
) -> BootState {
    let mut problems = Vec::new();
    let trust = match TrustState::load(trust_dir) {
        Ok(state) => Some(state),
        Err(trust::TrustError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            None
        }
        Err(error) => {
            tracing::error!(%error, "trust state unreadable; the box must be enrolled again");
            problems.push(error.to_string());
            None
        }
    };
    let active = match store.load(Slot::Active) {
        Ok(active) => active,
        Err(error) => {
            tracing::error!(%error, "active manifest unreadable");
            problems.push(error.to_string());
            None
        }
    };
    // The active manifest must belong to this screen and be one the trust
    // state accepted (the same payload if it is the accepted version; an
    // older one while the accepted version's media download).
    let active = active.filter(|entry| {
        let Some(state) = &trust else { return true };
        let manifest = &entry.manifest;
        let consistent = manifest.screen_id == state.screen_id
            && match state.manifest_version {
                Some(version) if version == manifest.version => {
                    state.manifest_sha256.as_deref() == Some(entry.payload_sha256.as_str())
                }
                Some(version) => manifest.version < version,
                None => false,
            };
        if !consistent {
            let problem = format!(
                "active manifest (screen {}, version {}) disagrees with the trust state (screen {}, version {:?}); not played",
                manifest.screen_id, manifest.version, state.screen_id, state.manifest_version
            );
            tracing::error!("{problem}");
            problems.push(problem);
        }
        consistent
    });

    let (mut playable, mut missing, mut stale) = (Vec::new(), Vec::new(), false);
    if let Some(entry) = &active {
        for item in &entry.manifest.items {
            if cache.contains(&item.media) {
                playable.push(item.clone());
            } else if !missing.contains(&item.media) {
                missing.push(item.media.clone());
            }
        }
        stale = match &trust {
            Some(state) => trust::is_stale(state, &entry.manifest, clock),
            None => clock.now() >= entry.manifest.expires_at,
        };
        tracing::info!(
            version = entry.manifest.version,
            playable = playable.len(),
            missing = missing.len(),
            stale,
            "boot: playing the last accepted manifest"
        );
    }
    BootState {
        trust,
        active,
        playable,
        missing,
        stale,
        problems,
    }
}
