//! Player-side acceptance of verified manifests and the persisted trust state.
//!
//! The rules of SPEC §4 live here as pure code with an injected [`Clock`]:
//! rollback, equal versions, expiry ("freeze": accepted but stale), root key
//! rotation N → N+1 only, a time floor that never decreases, and size caps
//! (the envelope's in [`crate::dsse`], the payload's and media's in
//! [`crate::manifest`]).
//! [`decide`] takes already-verified inputs and decides; [`accept`] composes
//! DSSE verification, payload parsing and [`decide`]; [`accept_in_dir`] adds
//! the state file, written only when a manifest is accepted, so nothing from
//! a rejected envelope ever reaches disk.
//!
//! Decision on `issued_at` in the future: it is accepted and raises the time
//! floor. A Pi boots without a real-time clock, often in 1970, and may sit
//! offline for weeks; the signed `issued_at` is its only trustworthy time
//! source (SPEC: "the last server-signed time"), and a box that refused it
//! as "too far ahead" of its stale floor could lock itself out of every new
//! manifest. A root that signs a wrong time is a compromised root, which
//! key rotation, not this check, has to answer.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::dsse::{self, DsseError};
use crate::manifest::{Manifest, ManifestError, RootKeys, is_sha256_hex};

/// Name of the state file inside the state directory.
pub const STATE_FILE: &str = "trust.json";

/// Layout version of the state file.
pub const STATE_FORMAT: u32 = 1;

/// Largest state file read back; a real one is a few KB.
const MAX_STATE_BYTES: u64 = 256 * 1024;

/// The source of "now". Injected so that every time rule is testable and so
/// that the player can feed it a clock that may be wrong (a Pi in 1970).
pub trait Clock {
    /// The current instant as this clock sees it.
    fn now(&self) -> Timestamp;
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that says what it is told: for tests and simulations.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<Timestamp>,
}

impl ManualClock {
    /// A clock stopped at `now`.
    pub fn new(now: Timestamp) -> Self {
        Self {
            now: Mutex::new(now),
        }
    }

    /// Moves the clock to `now`, forwards or backwards.
    pub fn set(&self, now: Timestamp) {
        *self
            .now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = now;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self
            .now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Why a manifest envelope was rejected or the trust state is unusable.
/// Every rejection leaves the trust state and the playing manifest as they were.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// The envelope did not verify against the pinned root: oversize,
    /// malformed, wrong payloadType, unknown key, bad signature, threshold
    /// not met.
    #[error("manifest envelope rejected: {0}")]
    Envelope(#[from] DsseError),
    /// The pinned root in the trust state cannot be used; re-enroll.
    #[error("the pinned root keys are unusable ({0}); re-enroll the screen")]
    PinnedRootUnusable(#[source] ManifestError),
    /// The payload is authentic but not a valid manifest.
    #[error("manifest payload rejected: {0}")]
    Manifest(#[from] ManifestError),
    /// Compiled for another screen.
    #[error(
        "manifest is for screen {found:?} but this screen is {expected:?}; check the server's screen mapping"
    )]
    WrongScreen {
        /// This screen's id.
        expected: String,
        /// The manifest's `screen_id`.
        found: String,
    },
    /// A lower version than the one accepted.
    #[error("rollback: manifest version {offered} is lower than the accepted version {accepted}")]
    Rollback {
        /// The version offered.
        offered: u64,
        /// The version accepted before.
        accepted: u64,
    },
    /// The accepted version again, with different content: the signer
    /// issued two manifests under one version.
    #[error(
        "manifest version {version} was already accepted with different content \
         (payload sha256 {accepted_sha256}, now {offered_sha256}); versions must never be reused"
    )]
    VersionReused {
        /// The version.
        version: u64,
        /// Digest of the payload accepted before.
        accepted_sha256: String,
        /// Digest of the payload offered now.
        offered_sha256: String,
    },
    /// Root version more than one ahead of the pinned one.
    #[error(
        "root key version {offered} skips ahead of the pinned version {pinned}: only version {next} \
         can be rotated to, signed by the keys of {pinned} and {next}"
    )]
    RootVersionSkip {
        /// The pinned root version.
        pinned: u32,
        /// The version the manifest claims.
        offered: u32,
        /// The only acceptable next version.
        next: u32,
    },
    /// Root version below the pinned one.
    #[error("root key version {offered} is older than the pinned version {pinned}")]
    RootDowngrade {
        /// The pinned root version.
        pinned: u32,
        /// The version the manifest claims.
        offered: u32,
    },
    /// Same root version as pinned, but other keys or threshold.
    #[error(
        "manifest claims root version {version} with keys or a threshold other than the pinned ones"
    )]
    RootMismatch {
        /// The root version.
        version: u32,
    },
    /// A rotation to N+1 that the new keys did not sign (enough).
    #[error(
        "root key rotation to version {version} is not signed by a threshold of the new keys: {reason}"
    )]
    RotationNotSignedByNewRoot {
        /// The new root version.
        version: u32,
        /// Why the new keys' verification failed.
        reason: String,
    },
    /// Reading or writing the state directory failed.
    #[error("trust state {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The state file exists but cannot be trusted; re-enroll the screen.
    #[error("trust state {} is unusable: {reason}; re-enroll the screen", path.display())]
    CorruptState {
        /// The state file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// What a screen trusts: the root pinned at enrollment (or rotated to
/// since), the last accepted manifest, and the time floor. Persisted as
/// JSON in [`STATE_FILE`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustState {
    /// [`STATE_FORMAT`].
    pub format: u32,
    /// This screen's id; manifests for any other screen are refused.
    pub screen_id: String,
    /// The pinned root key set.
    pub root: RootKeys,
    /// Version of the last accepted manifest, if any.
    pub manifest_version: Option<u64>,
    /// Lowercase hex SHA-256 of that manifest's payload bytes.
    pub manifest_sha256: Option<String>,
    /// Earliest instant "now" can be: never decreases.
    pub time_floor: Timestamp,
}

impl TrustState {
    /// The state of a freshly enrolled screen: `root` pinned, no manifest
    /// yet, the floor at the clock's now.
    pub fn enroll(screen_id: &str, root: RootKeys, clock: &dyn Clock) -> Result<Self, TrustError> {
        root.validate("root")?;
        Ok(Self {
            format: STATE_FORMAT,
            screen_id: screen_id.to_owned(),
            root,
            manifest_version: None,
            manifest_sha256: None,
            time_floor: clock.now(),
        })
    }

    /// Checks the invariants a loaded state must hold.
    pub fn validate(&self) -> Result<(), String> {
        if self.format != STATE_FORMAT {
            return Err(format!(
                "format {} is not the supported {STATE_FORMAT}",
                self.format
            ));
        }
        if self.screen_id.trim().is_empty() {
            return Err("screen_id is empty".into());
        }
        self.root
            .validate("root")
            .map_err(|error| error.to_string())?;
        match (&self.manifest_version, &self.manifest_sha256) {
            (None, None) => Ok(()),
            (Some(_), Some(sha)) if is_sha256_hex(sha) => Ok(()),
            (Some(_), Some(sha)) => Err(format!("manifest_sha256 {sha:?} is not a SHA-256")),
            _ => Err("manifest_version and manifest_sha256 must be set together".into()),
        }
    }

    /// "Now" as the trust rules see it: the clock, but never before the floor.
    pub fn now(&self, clock: &dyn Clock) -> Timestamp {
        self.time_floor.max(clock.now())
    }

    /// Raises the floor to the clock's now, if that is later.
    pub fn observe_clock(&mut self, clock: &dyn Clock) {
        self.time_floor = self.now(clock);
    }

    /// Raises the floor to a server-signed instant, if that is later.
    pub fn observe_server_time(&mut self, signed_at: Timestamp) {
        self.time_floor = self.time_floor.max(signed_at);
    }

    /// Path of the state file in `dir`.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(STATE_FILE)
    }

    /// Reads and validates the state file in `dir`.
    pub fn load(dir: &Path) -> Result<Self, TrustError> {
        let path = Self::path(dir);
        let io = |source| TrustError::Io {
            path: path.clone(),
            source,
        };
        let corrupt = |reason: String| TrustError::CorruptState {
            path: path.clone(),
            reason,
        };
        let size = fs::metadata(&path).map_err(io)?.len();
        if size > MAX_STATE_BYTES {
            return Err(corrupt(format!("{size} bytes, over {MAX_STATE_BYTES}")));
        }
        let bytes = fs::read(&path).map_err(io)?;
        let state: TrustState =
            serde_json::from_slice(&bytes).map_err(|error| corrupt(error.to_string()))?;
        state.validate().map_err(corrupt)?;
        Ok(state)
    }

    /// Writes the state file in `dir` atomically: a temporary file, fsynced,
    /// renamed over the old one, then the directory fsynced, so a power cut
    /// leaves either the old or the new state, never a torn one.
    pub fn save(&self, dir: &Path) -> Result<(), TrustError> {
        let path = Self::path(dir);
        let temp = dir.join(format!(".{STATE_FILE}.tmp"));
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| TrustError::Io { path, source }
        };
        let bytes =
            serde_json::to_vec_pretty(self).expect("a TrustState always serialises to JSON");
        let mut file = fs::File::create(&temp).map_err(io(&temp))?;
        file.write_all(&bytes).map_err(io(&temp))?;
        file.sync_all().map_err(io(&temp))?;
        drop(file);
        fs::rename(&temp, &path).map_err(io(&path))?;
        fs::File::open(dir)
            .and_then(|dir| dir.sync_all())
            .map_err(io(dir))
    }
}

/// Whether `manifest` is past its expiry by the state's time floor and the
/// clock: such a manifest keeps playing, but the screen reports itself stale.
pub fn is_stale(state: &TrustState, manifest: &Manifest, clock: &dyn Clock) -> bool {
    state.now(clock) >= manifest.expires_at
}

/// The outcome of an accepted envelope.
#[derive(Debug, Clone, PartialEq)]
pub enum Acceptance {
    /// A newer manifest: activate it (once its media are cached) and
    /// persist `new_state`.
    New {
        /// The validated manifest.
        manifest: Box<Manifest>,
        /// Already past its expiry: play it, but report stale.
        stale: bool,
        /// The state to persist: version, digest, floor, maybe a rotated root.
        new_state: Box<TrustState>,
    },
    /// The version already accepted, byte for byte: nothing to do.
    Unchanged,
}

/// Lowercase hex SHA-256 of a payload.
pub fn payload_sha256(payload: &[u8]) -> String {
    hex::encode(Sha256::digest(payload))
}

/// The acceptance rules on already-verified inputs.
///
/// `payload` is the exact payload the pinned root's threshold signed,
/// `manifest` its validated parse, `now` the clock's reading. When the
/// manifest rotates the root to the next version, `new_root_signed` is asked
/// whether a threshold of the new keys signed the envelope too.
pub fn decide(
    state: &TrustState,
    payload: &[u8],
    manifest: Manifest,
    now: Timestamp,
    new_root_signed: impl FnOnce(&RootKeys) -> Result<(), String>,
) -> Result<Acceptance, TrustError> {
    if manifest.screen_id != state.screen_id {
        return Err(TrustError::WrongScreen {
            expected: state.screen_id.clone(),
            found: manifest.screen_id,
        });
    }
    let offered_sha256 = payload_sha256(payload);
    if let Some(accepted) = state.manifest_version {
        if manifest.version < accepted {
            return Err(TrustError::Rollback {
                offered: manifest.version,
                accepted,
            });
        }
        if manifest.version == accepted {
            if state.manifest_sha256.as_deref() == Some(offered_sha256.as_str()) {
                return Ok(Acceptance::Unchanged);
            }
            return Err(TrustError::VersionReused {
                version: accepted,
                accepted_sha256: state.manifest_sha256.clone().unwrap_or_default(),
                offered_sha256,
            });
        }
    }
    let pinned = state.root.version;
    let offered = manifest.root.version;
    let root = if offered == pinned {
        if !same_root(&state.root, &manifest.root) {
            return Err(TrustError::RootMismatch { version: pinned });
        }
        state.root.clone()
    } else if offered < pinned {
        return Err(TrustError::RootDowngrade { pinned, offered });
    } else if Some(offered) == pinned.checked_add(1) {
        new_root_signed(&manifest.root).map_err(|reason| {
            TrustError::RotationNotSignedByNewRoot {
                version: offered,
                reason,
            }
        })?;
        manifest.root.clone()
    } else {
        return Err(TrustError::RootVersionSkip {
            pinned,
            offered,
            next: pinned.saturating_add(1),
        });
    };
    let time_floor = state.time_floor.max(now).max(manifest.issued_at);
    let stale = time_floor >= manifest.expires_at;
    let new_state = TrustState {
        format: STATE_FORMAT,
        screen_id: state.screen_id.clone(),
        root,
        manifest_version: Some(manifest.version),
        manifest_sha256: Some(offered_sha256),
        time_floor,
    };
    Ok(Acceptance::New {
        manifest: Box::new(manifest),
        stale,
        new_state: Box::new(new_state),
    })
}

/// Verifies an envelope exactly as received and applies the acceptance
/// rules: DSSE verification against a threshold of the pinned root keys
/// (which refuses anything over [`dsse::MAX_ENVELOPE_BYTES`] unread), then
/// the payload parsed and validated, then [`decide`] (which, for a rotation
/// to the next root, has the envelope verified again against a threshold of
/// the new keys). Pure: writes nothing.
pub fn accept(
    state: &TrustState,
    envelope: &[u8],
    clock: &dyn Clock,
) -> Result<Acceptance, TrustError> {
    let pinned_keys = state
        .root
        .verifying_keys()
        .map_err(TrustError::PinnedRootUnusable)?;
    let verified = dsse::verify(
        envelope,
        dsse::MANIFEST_PAYLOAD_TYPE,
        &pinned_keys,
        state.root.threshold as usize,
    )?;
    let manifest = Manifest::from_json(&verified.payload)?;
    decide(
        state,
        &verified.payload,
        manifest,
        clock.now(),
        |new_root| {
            let new_keys = new_root
                .verifying_keys()
                .map_err(|error| error.to_string())?;
            dsse::verify(
                envelope,
                dsse::MANIFEST_PAYLOAD_TYPE,
                &new_keys,
                new_root.threshold as usize,
            )
            .map(|_| ())
            .map_err(|error| error.to_string())
        },
    )
}

/// [`accept`] against the state persisted in `dir`: the new state is written
/// (atomically) only when a newer manifest is accepted, so a rejected
/// envelope leaves the directory untouched.
pub fn accept_in_dir(
    dir: &Path,
    envelope: &[u8],
    clock: &dyn Clock,
) -> Result<Acceptance, TrustError> {
    let state = TrustState::load(dir)?;
    let acceptance = match accept(&state, envelope, clock) {
        Ok(acceptance) => acceptance,
        Err(error) => {
            tracing::warn!(screen = %state.screen_id, %error, "manifest rejected; the last good one keeps playing");
            return Err(error);
        }
    };
    if let Acceptance::New {
        manifest,
        stale,
        new_state,
    } = &acceptance
    {
        new_state.save(dir)?;
        tracing::info!(
            screen = %state.screen_id,
            version = manifest.version,
            root_version = new_state.root.version,
            stale,
            "manifest accepted"
        );
    }
    Ok(acceptance)
}

/// Same threshold and the same set of keys (compared as keys, not as PEM
/// text, which may differ in line endings).
fn same_root(pinned: &RootKeys, offered: &RootKeys) -> bool {
    let key_set = |root: &RootKeys| -> Option<BTreeSet<[u8; 32]>> {
        root.verifying_keys()
            .ok()
            .map(|keys| keys.iter().map(|key| key.to_bytes()).collect())
    };
    pinned.threshold == offered.threshold
        && key_set(pinned).is_some()
        && key_set(pinned) == key_set(offered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use ed25519_dalek::pkcs8::EncodePublicKey as _;
    use proptest::prelude::*;

    fn pem(seed: u8) -> String {
        SigningKey::from_bytes(&[seed; 32])
            .verifying_key()
            .to_public_key_pem(Default::default())
            .unwrap()
    }

    fn root(version: u32, seeds: &[u8], threshold: u32) -> RootKeys {
        RootKeys {
            version,
            keys: seeds.iter().map(|&seed| pem(seed)).collect(),
            threshold,
        }
    }

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn manifest(version: u64) -> Manifest {
        serde_json::from_value(serde_json::json!({
            "schema": 1,
            "screen_id": "mall-01",
            "version": version,
            "issued_at": "2026-06-10T08:00:00Z",
            "expires_at": "2026-06-17T08:00:00Z",
            "timezone": "Asia/Dushanbe",
            "items": [],
            "root": root(1, &[1, 2], 2),
        }))
        .unwrap()
    }

    fn state() -> TrustState {
        let clock = ManualClock::new(ts("2026-06-01T00:00:00Z"));
        TrustState::enroll("mall-01", root(1, &[1, 2], 2), &clock).unwrap()
    }

    fn never_rotates(_: &RootKeys) -> Result<(), String> {
        panic!("no rotation expected")
    }

    /// Accepts `manifest` as its own serialisation at `now`.
    fn decide_at(
        state: &TrustState,
        manifest: Manifest,
        now: &str,
    ) -> Result<Acceptance, TrustError> {
        let payload = manifest.to_json_bytes();
        decide(state, &payload, manifest, ts(now), never_rotates)
    }

    fn accepted(result: Result<Acceptance, TrustError>) -> (Manifest, bool, TrustState) {
        match result {
            Ok(Acceptance::New {
                manifest,
                stale,
                new_state,
            }) => (*manifest, stale, *new_state),
            other => panic!("expected a new manifest, got {other:?}"),
        }
    }

    #[test]
    fn first_manifest_is_accepted_and_recorded() {
        let (manifest, stale, new_state) =
            accepted(decide_at(&state(), manifest(3), "2026-06-10T09:00:00Z"));
        assert!(!stale);
        assert_eq!(new_state.manifest_version, Some(3));
        assert_eq!(
            new_state.manifest_sha256,
            Some(payload_sha256(&manifest.to_json_bytes()))
        );
        assert_eq!(new_state.time_floor, ts("2026-06-10T09:00:00Z"));
        new_state.validate().unwrap();
    }

    #[test]
    fn higher_version_replaces_lower_is_rollback() {
        let (_, _, accepted_state) =
            accepted(decide_at(&state(), manifest(5), "2026-06-10T09:00:00Z"));
        accepted(decide_at(
            &accepted_state,
            manifest(9),
            "2026-06-10T09:00:00Z",
        ));
        assert!(matches!(
            decide_at(&accepted_state, manifest(4), "2026-06-10T09:00:00Z"),
            Err(TrustError::Rollback {
                offered: 4,
                accepted: 5
            })
        ));
    }

    #[test]
    fn equal_version_is_a_no_op_unless_the_content_differs() {
        let (_, _, accepted_state) =
            accepted(decide_at(&state(), manifest(5), "2026-06-10T09:00:00Z"));
        assert_eq!(
            decide_at(&accepted_state, manifest(5), "2026-06-11T09:00:00Z").unwrap(),
            Acceptance::Unchanged
        );
        let mut other = manifest(5);
        other.timezone = "Europe/Berlin".into();
        assert!(matches!(
            decide_at(&accepted_state, other, "2026-06-11T09:00:00Z"),
            Err(TrustError::VersionReused { version: 5, .. })
        ));
    }

    #[test]
    fn other_screens_manifest_is_refused() {
        let mut other = manifest(5);
        other.screen_id = "mall-02".into();
        assert!(matches!(
            decide_at(&state(), other, "2026-06-10T09:00:00Z"),
            Err(TrustError::WrongScreen { .. })
        ));
    }

    #[test]
    fn expired_manifest_is_accepted_but_stale() {
        let (_, stale, _) = accepted(decide_at(&state(), manifest(5), "2026-07-01T00:00:00Z"));
        assert!(stale);
        // Exactly at expires_at counts as expired.
        let (_, stale, _) = accepted(decide_at(&state(), manifest(5), "2026-06-17T08:00:00Z"));
        assert!(stale);
    }

    #[test]
    fn a_clock_back_in_1970_cannot_unexpire_a_manifest() {
        let (manifest, stale, new_state) =
            accepted(decide_at(&state(), manifest(5), "2026-07-01T00:00:00Z"));
        assert!(stale);
        let pi_after_power_cut = ManualClock::new(Timestamp::UNIX_EPOCH);
        assert!(is_stale(&new_state, &manifest, &pi_after_power_cut));
        assert_eq!(
            new_state.now(&pi_after_power_cut),
            ts("2026-07-01T00:00:00Z")
        );
    }

    #[test]
    fn staleness_at_acceptance_is_judged_by_the_floor_not_the_clock() {
        // Floor persisted after the expiry; the Pi rebooted into 1970.
        let mut late = state();
        late.time_floor = ts("2026-07-01T00:00:00Z");
        let (_, stale, new_state) = accepted(decide_at(&late, manifest(5), "1970-01-01T00:00:10Z"));
        assert!(stale);
        assert_eq!(new_state.time_floor, ts("2026-07-01T00:00:00Z"));
    }

    #[test]
    fn signed_issued_at_raises_the_floor_past_a_wrong_clock() {
        let (manifest, stale, new_state) =
            accepted(decide_at(&state(), manifest(5), "1970-01-01T00:00:10Z"));
        assert!(!stale);
        assert_eq!(new_state.time_floor, manifest.issued_at);
    }

    #[test]
    fn same_root_version_must_carry_the_pinned_keys() {
        let mut m = manifest(5);
        m.root = root(1, &[1, 3], 2);
        assert!(matches!(
            decide_at(&state(), m, "2026-06-10T09:00:00Z"),
            Err(TrustError::RootMismatch { version: 1 })
        ));
        let mut m = manifest(5);
        m.root.threshold = 1;
        assert!(matches!(
            decide_at(&state(), m, "2026-06-10T09:00:00Z"),
            Err(TrustError::RootMismatch { version: 1 })
        ));
        // Same keys in another order and with CRLF line endings: the same root.
        let mut m = manifest(5);
        m.root.keys = vec![pem(2).replace('\n', "\r\n"), pem(1)];
        accepted(decide_at(&state(), m, "2026-06-10T09:00:00Z"));
    }

    #[test]
    fn rotation_to_the_next_root_needs_the_new_keys_signature() {
        let mut m = manifest(5);
        m.root = root(2, &[3, 4, 5], 2);
        let payload = m.to_json_bytes();
        let mut asked = None;
        let (_, _, new_state) = accepted(decide(
            &state(),
            &payload,
            m.clone(),
            ts("2026-06-10T09:00:00Z"),
            |new_root| {
                asked = Some(new_root.clone());
                Ok(())
            },
        ));
        assert_eq!(asked, Some(root(2, &[3, 4, 5], 2)));
        assert_eq!(new_state.root, root(2, &[3, 4, 5], 2));

        let refused = decide(&state(), &payload, m, ts("2026-06-10T09:00:00Z"), |_| {
            Err("1 of 2 required signatures".into())
        });
        assert!(matches!(
            refused,
            Err(TrustError::RotationNotSignedByNewRoot { version: 2, reason }) if reason.contains("1 of 2")
        ));
    }

    #[test]
    fn root_may_not_skip_or_go_back() {
        let mut m = manifest(5);
        m.root = root(3, &[3, 4], 1);
        assert!(matches!(
            decide_at(&state(), m, "2026-06-10T09:00:00Z"),
            Err(TrustError::RootVersionSkip {
                pinned: 1,
                offered: 3,
                next: 2
            })
        ));
        let mut rotated = state();
        rotated.root = root(2, &[3, 4], 1);
        assert!(matches!(
            decide_at(&rotated, manifest(5), "2026-06-10T09:00:00Z"),
            Err(TrustError::RootDowngrade {
                pinned: 2,
                offered: 1
            })
        ));
    }

    #[test]
    fn state_round_trips_through_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let (_, _, new_state) = accepted(decide_at(&state(), manifest(5), "2026-06-10T09:00:00Z"));
        new_state.save(dir.path()).unwrap();
        assert_eq!(TrustState::load(dir.path()).unwrap(), new_state);
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![STATE_FILE], "no temporary file is left behind");
    }

    #[test]
    fn unusable_state_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            TrustState::load(dir.path()),
            Err(TrustError::Io { .. })
        ));
        let path = TrustState::path(dir.path());
        fs::write(&path, b"{\"format\":1,").unwrap();
        assert!(matches!(
            TrustState::load(dir.path()),
            Err(TrustError::CorruptState { .. })
        ));
        let mut broken = state();
        broken.manifest_version = Some(3);
        fs::write(&path, serde_json::to_vec(&broken).unwrap()).unwrap();
        let error = TrustState::load(dir.path()).unwrap_err().to_string();
        assert!(error.contains("must be set together"), "{error}");
        let mut broken = state();
        broken.root.threshold = 5;
        fs::write(&path, serde_json::to_vec(&broken).unwrap()).unwrap();
        assert!(matches!(
            TrustState::load(dir.path()),
            Err(TrustError::CorruptState { .. })
        ));
    }

    #[test]
    fn enrollment_refuses_an_unusable_root() {
        let clock = ManualClock::new(ts("2026-06-01T00:00:00Z"));
        assert!(TrustState::enroll("mall-01", root(1, &[1], 2), &clock).is_err());
    }

    proptest! {
        /// Whatever the clock does (1970 after a power cut, jumps back and
        /// forth) and whatever signed times arrive, the floor never
        /// decreases and is never below anything observed.
        #[test]
        fn time_floor_never_decreases(
            events in prop::collection::vec((any::<bool>(), 0i64..4_000_000_000), 1..64)
        ) {
            let clock = ManualClock::new(Timestamp::UNIX_EPOCH);
            let mut state = state();
            let mut highest = state.time_floor;
            for (from_server, seconds) in events {
                let instant = Timestamp::from_second(seconds).unwrap();
                let before = state.time_floor;
                if from_server {
                    state.observe_server_time(instant);
                } else {
                    clock.set(instant);
                    prop_assert!(state.now(&clock) >= before);
                    state.observe_clock(&clock);
                }
                highest = highest.max(instant);
                prop_assert!(state.time_floor >= before);
                prop_assert_eq!(state.time_floor, highest);
            }
        }

        /// Accepting manifests at arbitrary clock readings never lowers the floor.
        #[test]
        fn acceptance_never_lowers_the_floor(readings in prop::collection::vec(0i64..4_000_000_000, 1..16)) {
            let mut state = state();
            for (index, seconds) in readings.into_iter().enumerate() {
                let before = state.time_floor;
                let m = manifest(index as u64 + 1);
                let payload = m.to_json_bytes();
                let now = Timestamp::from_second(seconds).unwrap();
                let (_, _, next) = accepted(decide(&state, &payload, m, now, never_rotates));
                prop_assert!(next.time_floor >= before);
                prop_assert!(next.time_floor >= now);
                state = next;
            }
        }
    }
}
