//! First start of a box (SPEC §5, §7): make the screen key, enroll it with
//! the server, show the pairing code until an operator approves it, then
//! pin the server's manifest key and persist the identity. A box that is
//! enrolled already ([`load_identity`]) skips all of this and never talks
//! to the server before it plays.
//!
//! Crash safety: the key is written (0600, atomically) before the first
//! request and reused after a restart, so a box restarted while waiting
//! gets the same pairing code back (the server returns the pending code
//! for a key while it is valid). A box approved but restarted before it
//! saved its identity finds its key "already enrolled" and fetches the
//! identity again. The trust state, written last and atomically, is what
//! makes the box count as enrolled.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ed25519_dalek::SigningKey;

use super::backoff::Backoff;
use super::client::{Approval, ClientError, DeviceClient, DeviceIdentity, EnrollAnswer, Pairing};
use super::config::PlayerConfig;
use crate::keys::{self, KeyError};
use crate::manifest::RootKeys;
use crate::trust::{Clock, TrustError, TrustState};

/// Longest wait between two "am I approved yet?" polls: an operator who
/// just typed the code should see the screen react within seconds.
const MAX_APPROVAL_POLL: Duration = Duration::from_secs(10);

/// Why the box could not enroll or load its identity.
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    /// The screen key could not be read or written.
    #[error("screen key: {0}")]
    Key(#[from] KeyError),
    /// The trust state could not be read or written.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// The data directory cannot be created.
    #[error("cannot create {path}: {source}; check data_dir in the player config")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The server's identity answer cannot be pinned.
    #[error(
        "the server's manifest key cannot be pinned: {reason}; check that server_url points at an Ekran server"
    )]
    ServerKey {
        /// What is wrong with it.
        reason: String,
    },
    /// The client cannot be used at all (bad server URL).
    #[error(transparent)]
    Client(ClientError),
    /// Shutdown was asked for before the operator approved the box.
    #[error("shut down while waiting for enrollment")]
    ShutDown,
}

/// What the agent knows about itself once enrolled.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The screen key: signs requests and proof-of-play records.
    pub key: SigningKey,
    /// The trust state with the pinned server key; its `screen_id` is ours.
    pub trust: TrustState,
}

/// What enrollment tells whoever shows things on the screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PairingEvent {
    /// Show this code (new, or renewed after the old one expired).
    Show(Pairing),
    /// Approved: stop showing the code.
    Approved {
        /// The screen id the server gave the box.
        screen_id: String,
    },
}

/// How often to ask whether the box was approved.
#[derive(Debug, Clone)]
pub struct EnrollOptions {
    /// First retry delay; doubled up to `poll_cap`, with jitter.
    pub poll_base: Duration,
    /// Longest delay between polls.
    pub poll_cap: Duration,
}

impl EnrollOptions {
    /// From the config's sync backoff, capped so approval is noticed quickly.
    pub fn from_config(config: &PlayerConfig) -> Self {
        Self {
            poll_base: config.sync.backoff_base,
            poll_cap: config.sync.backoff_cap.min(MAX_APPROVAL_POLL),
        }
    }
}

/// The screen key at `path`, made (PKCS#8 PEM, mode 0600, atomically) if
/// there is none yet.
pub fn load_or_create_screen_key(path: &Path) -> Result<SigningKey, EnrollError> {
    if path.exists() {
        return Ok(keys::read_signing_key(path)?);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| EnrollError::DataDir {
            path: dir.to_owned(),
            source,
        })?;
    }
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    keys::write_signing_key(path, &key)?;
    tracing::info!(key_id = %keys::key_id(&key.verifying_key()), path = %path.display(), "screen key generated");
    Ok(key)
}

/// The identity of an enrolled box, read from disk; `None` if the box has
/// not been enrolled (no trust state). A damaged trust state is an error
/// naming the file (the box must then be enrolled again).
pub fn load_identity(config: &PlayerConfig) -> Result<Option<Identity>, EnrollError> {
    let trust = match TrustState::load(&config.trust_dir()) {
        Ok(trust) => trust,
        Err(TrustError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(None);
        }
        Err(error) => return Err(error.into()),
    };
    let key = keys::read_signing_key(&config.screen_key_path())?;
    Ok(Some(Identity { key, trust }))
}

/// Enrolls the box whose key `client` signs with: gets a pairing code
/// (announced through `on_event` and the log), polls until an operator
/// approves it (renewing an expired code), then pins the server's key in a
/// fresh trust state saved in `trust_dir`. Network trouble is retried
/// with backoff for as long as it takes; only `shutdown` ends the wait.
pub async fn enroll(
    client: &DeviceClient,
    trust_dir: &Path,
    options: &EnrollOptions,
    mut on_event: impl FnMut(PairingEvent),
    shutdown: impl Future<Output = ()>,
) -> Result<TrustState, EnrollError> {
    tokio::pin!(shutdown);
    let clock = client.clock().clone();
    let mut backoff = Backoff::new(options.poll_base, options.poll_cap);
    let mut pairing: Option<Pairing> = None;
    loop {
        let code_expired = pairing
            .as_ref()
            .is_none_or(|current| clock.now().as_millisecond() >= current.expires_at_ms);
        if code_expired {
            match client.enroll().await {
                Ok(EnrollAnswer::Pending(issued)) => {
                    if pairing.as_ref() != Some(&issued) {
                        announce(&issued, clock.now());
                        on_event(PairingEvent::Show(issued.clone()));
                    }
                    pairing = Some(issued);
                }
                // Approved before a restart: the identity is one request away.
                Ok(EnrollAnswer::AlreadyEnrolled) => {}
                Err(error @ ClientError::BadServerUrl { .. }) => {
                    return Err(EnrollError::Client(error));
                }
                Err(error) => tracing::warn!(%error, "enrollment request failed; retrying"),
            }
        }
        match client.identity().await {
            Ok(Approval::Enrolled(identity)) => {
                let trust = persist_identity(&identity, trust_dir, &*clock)?;
                tracing::info!(screen = %identity.screen_id, venue = %identity.venue, server_key = %identity.server_key_id, "screen enrolled; server key pinned");
                on_event(PairingEvent::Approved {
                    screen_id: identity.screen_id,
                });
                return Ok(trust);
            }
            Ok(Approval::NotEnrolled(reason)) => {
                tracing::debug!(%reason, "waiting for the operator to approve the pairing code");
            }
            Err(error) => {
                tracing::warn!(%error, "cannot ask the server whether the box is approved")
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff.next_delay()) => {}
            () = &mut shutdown => return Err(EnrollError::ShutDown),
        }
    }
}

/// Logs the code where an installer looking at the console will see it.
fn announce(pairing: &Pairing, now: jiff::Timestamp) {
    let minutes_left = (pairing.expires_at_ms - now.as_millisecond()) / 60_000;
    tracing::warn!(
        code = %pairing.code,
        key_id = %pairing.key_id,
        "\n\n    ==============================\n      PAIRING CODE:  {}\n    ==============================\n    Approve this screen on the server: ekran screen approve {} --venue VENUE\n    (the code is valid for about {} more minutes)\n",
        pairing.code,
        pairing.code,
        minutes_left.max(0),
    );
}

/// Pins the server key from the identity answer and saves a fresh trust state.
fn persist_identity(
    identity: &DeviceIdentity,
    trust_dir: &Path,
    clock: &dyn Clock,
) -> Result<TrustState, EnrollError> {
    let server_key =
        keys::verifying_key_from_pem(&identity.server_public_key_pem).map_err(|error| {
            EnrollError::ServerKey {
                reason: error.to_string(),
            }
        })?;
    let key_id = keys::key_id(&server_key);
    if key_id != identity.server_key_id {
        return Err(EnrollError::ServerKey {
            reason: format!(
                "the key sent hashes to {key_id}, but the server names it {}",
                identity.server_key_id
            ),
        });
    }
    let root = RootKeys {
        version: 1,
        keys: vec![keys::verifying_key_to_pem(&server_key)],
        threshold: 1,
    };
    let trust = TrustState::enroll(&identity.screen_id, root, clock)?;
    std::fs::create_dir_all(trust_dir).map_err(|source| EnrollError::DataDir {
        path: trust_dir.to_owned(),
        source,
    })?;
    trust.save(trust_dir)?;
    Ok(trust)
}
