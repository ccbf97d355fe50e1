//! Screen identity on the server: enrollment with one-time pairing codes,
//! and the signed-request scheme every device call is authenticated with.
//!
//! # Signed device requests
//!
//! A box signs each request with its Ed25519 key (the one it enrolled):
//!
//! ```text
//! Authorization: Ekran-Device keyid="<hex key id>", ts="<unix ms>", nonce="<nonce>", sig="<base64 signature>"
//! ```
//!
//! - `keyid`: `keys::key_id` of the box's public key (hex SHA-256 of its SPKI DER).
//! - `ts`: the box's clock in UTC milliseconds; accepted within
//!   ±[`REPLAY_WINDOW_MS`] of the server's clock (every response carries a
//!   `Date` header a box without a real-time clock can use).
//! - `nonce`: 16–64 characters of `A-Z a-z 0-9 - _`, never reused by the key
//!   within the window (the server remembers nonces for twice the window).
//! - `sig`: standard base64 (with padding) of the Ed25519 signature over
//!   the UTF-8 string
//!
//! ```text
//! ekran-device-request-v1\n<METHOD>\n<path?query>\n<hex sha256 of body>\n<ts>\n<nonce>
//! ```
//!
//! where `<METHOD>` is uppercase, `<path?query>` is the request target
//! exactly as sent (e.g. `/api/v1/device/manifest?wait=30`), and the body
//! hash is that of the exact body bytes (of the empty string for none).
//! Unknown keys, bad signatures, stale timestamps and reused nonces are 401.
//! A proof-of-play upload spends its nonce inside the transaction that
//! stores its records ([`PendingDeviceRequest`]): the two commit together, a
//! replay is refused even while the first upload is still being stored,
//! and an upload refused for its content (400) leaves its nonce unspent.

use std::fmt::Write as _;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Method, header};
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand::Rng;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::AppState;
use super::auth::{Auth, Caller, Viewer};
use super::db::{Db, now_ms};
use super::error::AppError;
use crate::keys;

/// Name of the `Authorization` scheme of signed device requests.
pub const AUTH_SCHEME: &str = "Ekran-Device";
/// First line of the signed string; bump on any change of the format.
pub const SIGNING_CONTEXT: &str = "ekran-device-request-v1";
/// How far a request's timestamp may be from the server's clock.
pub const REPLAY_WINDOW_MS: i64 = 5 * 60 * 1000;
/// How long a pairing code stays valid.
pub const PAIRING_TTL_MS: i64 = 15 * 60 * 1000;
/// Largest body of a device request (a PoP batch).
pub const MAX_DEVICE_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Letters of pairing codes: no 0/O, 1/I/L, so codes read aloud survive.
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

/// The string a device signs (see the module docs).
pub fn signing_string(
    method: &str,
    path_and_query: &str,
    body_sha256_hex: &str,
    ts_ms: i64,
    nonce: &str,
) -> String {
    format!(
        "{SIGNING_CONTEXT}\n{}\n{path_and_query}\n{body_sha256_hex}\n{ts_ms}\n{nonce}",
        method.to_ascii_uppercase()
    )
}

/// Builds the `Authorization` header value for a request: the client side
/// of the scheme, used by the CLI, tests and the player agent.
pub fn sign_request(
    key: &SigningKey,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    ts_ms: i64,
) -> String {
    let nonce: String = {
        let mut rng = rand::thread_rng();
        (0..24)
            .map(|_| char::from(CODE_ALPHABET[rng.gen_range(0..CODE_ALPHABET.len())]))
            .collect()
    };
    let body_hash = hex::encode(Sha256::digest(body));
    let message = signing_string(method, path_and_query, &body_hash, ts_ms, &nonce);
    let signature = key.sign(message.as_bytes());
    format!(
        "{AUTH_SCHEME} keyid=\"{}\", ts=\"{ts_ms}\", nonce=\"{nonce}\", sig=\"{}\"",
        keys::key_id(&key.verifying_key()),
        base64::engine::general_purpose::STANDARD.encode(signature.to_bytes())
    )
}

/// The parsed parameters of an `Ekran-Device` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAuthHeader {
    /// Key id of the signer.
    pub key_id: String,
    /// Claimed time, UTC ms.
    pub ts_ms: i64,
    /// Single-use value.
    pub nonce: String,
    /// The 64-byte signature.
    pub signature: Signature,
}

/// Parses `Ekran-Device keyid="…", ts="…", nonce="…", sig="…"`.
pub fn parse_auth_header(value: &str) -> Result<DeviceAuthHeader, AppError> {
    let bad = |what: &str| {
        AppError::Unauthorized(format!("malformed {AUTH_SCHEME} authorization: {what}"))
    };
    let rest = value
        .strip_prefix(AUTH_SCHEME)
        .and_then(|rest| rest.strip_prefix(' '))
        .ok_or_else(|| bad("expected the Ekran-Device scheme"))?;
    let (mut key_id, mut ts, mut nonce, mut sig) = (None, None, None, None);
    for part in rest.split(',') {
        let (name, raw) = part
            .trim()
            .split_once('=')
            .ok_or_else(|| bad("expected name=\"value\" pairs"))?;
        let value = raw.trim().trim_matches('"').to_owned();
        match name.trim() {
            "keyid" => key_id = Some(value),
            "ts" => ts = Some(value),
            "nonce" => nonce = Some(value),
            "sig" => sig = Some(value),
            other => return Err(bad(&format!("unknown parameter {other:?}"))),
        }
    }
    let key_id = key_id.ok_or_else(|| bad("missing keyid"))?;
    let ts_ms = ts
        .ok_or_else(|| bad("missing ts"))?
        .parse::<i64>()
        .map_err(|_| bad("ts is not an integer of milliseconds"))?;
    let nonce = nonce.ok_or_else(|| bad("missing nonce"))?;
    if !(16..=64).contains(&nonce.len())
        || !nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(bad("nonce must be 16-64 characters of A-Z a-z 0-9 - _"));
    }
    let sig_bytes = base64::engine::general_purpose::STANDARD
        .decode(sig.ok_or_else(|| bad("missing sig"))?)
        .map_err(|_| bad("sig is not base64"))?;
    let signature = Signature::from_slice(&sig_bytes).map_err(|_| bad("sig is not 64 bytes"))?;
    Ok(DeviceAuthHeader {
        key_id,
        ts_ms,
        nonce,
        signature,
    })
}

/// An enrolled screen, as authenticated by its key.
#[derive(Debug, Clone)]
pub struct DeviceScreen {
    /// Screen id.
    pub id: String,
    /// Its key id.
    pub key_id: String,
    /// Its venue.
    pub venue_id: String,
    /// Its public key (PoP signatures are checked against it).
    pub key: VerifyingKey,
    /// The IANA time zone of its venue, read with the screen so that
    /// proof-of-play ingest credits plays to local days without a second query.
    pub timezone: String,
}

/// Loads the enrolled screen with this key id.
pub async fn screen_by_key(db: &Db, key_id: &str) -> Result<Option<DeviceScreen>, AppError> {
    let row = sqlx::query(
        "SELECT s.id, s.key_id, s.venue_id, s.public_key_pem, v.timezone FROM screens s \
         JOIN venues v ON v.id = s.venue_id WHERE s.key_id = $1",
    )
    .bind(key_id)
    .fetch_optional(db.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let pem: String = row.try_get("public_key_pem")?;
    let key = keys::verifying_key_from_pem(&pem).map_err(AppError::internal)?;
    Ok(Some(DeviceScreen {
        id: row.try_get("id")?,
        key_id: row.try_get("key_id")?,
        venue_id: row.try_get("venue_id")?,
        key,
        timezone: row.try_get("timezone")?,
    }))
}

/// Checks time and signature of a parsed header against `key`, then spends its nonce.
async fn verify_signed(
    db: &Db,
    header: DeviceAuthHeader,
    key: &VerifyingKey,
    method: &Method,
    path_and_query: &str,
    body_sha256: &[u8; 32],
) -> Result<(), AppError> {
    check_signature(header, key, method, path_and_query, body_sha256)?
        .spend(db.pool())
        .await
}

/// Checks time and signature of a parsed header against `key`; the nonce
/// it returns (the header's own strings) is still to be spent.
fn check_signature(
    header: DeviceAuthHeader,
    key: &VerifyingKey,
    method: &Method,
    path_and_query: &str,
    body_sha256: &[u8; 32],
) -> Result<Nonce, AppError> {
    let now = now_ms();
    if (now - header.ts_ms).abs() > REPLAY_WINDOW_MS {
        return Err(AppError::Unauthorized(format!(
            "request timestamp {} is more than {} s from the server's clock ({now}); set the box's clock from the Date header",
            header.ts_ms,
            REPLAY_WINDOW_MS / 1000
        )));
    }
    let body_hash = hex::encode(body_sha256);
    let message = signing_string(
        method.as_str(),
        path_and_query,
        &body_hash,
        header.ts_ms,
        &header.nonce,
    );
    key.verify_strict(message.as_bytes(), &header.signature).map_err(|_| {
        AppError::Unauthorized(
            "device request signature does not verify (method, path, body or time differ from what was signed)".into(),
        )
    })?;
    Ok(Nonce {
        key_id: header.key_id,
        nonce: header.nonce,
        expires_at_ms: now + 2 * REPLAY_WINDOW_MS,
    })
}

/// The nonce of a request whose signature holds, not yet spent: the
/// request may act only once [`Nonce::spend`] succeeded (a replay fails
/// there with 401). Spent only after the signature holds, so nobody can
/// burn a box's nonces.
#[must_use = "a request acts only after spending its nonce, else it can be replayed"]
#[derive(Debug)]
pub struct Nonce {
    key_id: String,
    nonce: String,
    expires_at_ms: i64,
}

impl Nonce {
    /// Records the nonce as used: on the pool, or inside the transaction
    /// that does what the request asks, so that the two commit together
    /// (a concurrent replay then waits for that transaction and is refused).
    pub async fn spend<'e, E>(self, executor: E) -> Result<(), AppError>
    where
        E: sqlx::Executor<'e, Database = sqlx::Any>,
    {
        let fresh = sqlx::query(
            "INSERT INTO device_nonces (key_id, nonce, expires_at_ms) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(self.key_id)
        .bind(self.nonce)
        .bind(self.expires_at_ms)
        .execute(executor)
        .await?;
        if fresh.rows_affected() == 0 {
            return Err(AppError::Unauthorized(
                "replayed device request (nonce already used)".into(),
            ));
        }
        Ok(())
    }
}

/// Deletes nonces past their replay window. Run periodically.
pub async fn prune_nonces(db: &Db) -> Result<u64, AppError> {
    let result = sqlx::query("DELETE FROM device_nonces WHERE expires_at_ms < $1")
        .bind(now_ms())
        .execute(db.pool())
        .await?;
    Ok(result.rows_affected())
}

fn device_header(parts: &Parts) -> Result<DeviceAuthHeader, AppError> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            AppError::Unauthorized(format!(
                "missing {AUTH_SCHEME} authorization (signed device request)"
            ))
        })?;
    parse_auth_header(value)
}

fn path_and_query(parts: &Parts) -> String {
    parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned())
}

/// The enrolled screen whose key id the header names, or why there is none
/// (401: unknown key, or a key whose pairing still waits for approval).
async fn signing_screen(
    state: &AppState,
    header: &DeviceAuthHeader,
) -> Result<DeviceScreen, AppError> {
    if let Some(screen) = screen_by_key(state.db(), &header.key_id).await? {
        return Ok(screen);
    }
    let pending: Option<i64> = sqlx::query_scalar(
        "SELECT expires_at_ms FROM pairings WHERE key_id = $1 AND used_at_ms IS NULL ORDER BY expires_at_ms DESC LIMIT 1",
    )
    .bind(&header.key_id)
    .fetch_optional(state.db().pool())
    .await?;
    Err(AppError::Unauthorized(match pending {
        Some(expires) if expires > now_ms() => {
            "screen key not enrolled yet: its pairing code is waiting for approval".to_owned()
        }
        _ => format!("unknown screen key {}: enroll the box first", header.key_id),
    }))
}

/// Extractor: a signed device request from an enrolled screen, with its body.
pub struct DeviceRequest {
    /// The authenticated screen.
    pub screen: DeviceScreen,
    /// The exact body bytes that were signed.
    pub body: Bytes,
}

impl FromRequest<AppState> for DeviceRequest {
    type Rejection = AppError;

    /// A [`PendingDeviceRequest`] whose signature is waited for and whose
    /// nonce is spent at once.
    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let pending = PendingDeviceRequest::from_request(request, state).await?;
        pending
            .signature
            .wait()
            .await?
            .spend(state.db().pool())
            .await?;
        Ok(Self {
            screen: pending.screen,
            body: pending.body,
        })
    }
}

/// Extractor: a device request of an enrolled screen whose signature is
/// still being checked (on a thread of its own for a large body) while
/// the handler reads the body; its nonce is then to be spent by the
/// handler, inside the transaction that does the work. A proof-of-play
/// upload parses its records meanwhile: hashing a batch of 500 records
/// (about 320 KB) takes about 0.15 ms. The handler may do nothing but read
/// the body until [`SignatureCheck::wait`] has returned the nonce: no
/// check, no write, no answer but the refusal.
pub struct PendingDeviceRequest {
    /// The screen the request names by its key id (not authenticated yet).
    pub screen: DeviceScreen,
    /// The body as received.
    pub body: Bytes,
    /// The check of the body's hash and the request's signature.
    pub signature: SignatureCheck,
}

impl FromRequest<AppState> for PendingDeviceRequest {
    type Rejection = AppError;

    /// Reads the body while the screen is looked up, then starts checking
    /// the signature.
    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (parts, body) = request.into_parts();
        let header = device_header(&parts)?;
        let (body, screen) = tokio::join!(
            read_chunks(body, MAX_DEVICE_BODY_BYTES, content_length(&parts)),
            signing_screen(state, &header)
        );
        let body = body?;
        let screen = screen?;
        let signature = SignatureCheck::start(
            header,
            screen.key,
            parts.method.clone(),
            path_and_query(&parts),
            body.clone(),
        );
        Ok(Self {
            screen,
            body,
            signature,
        })
    }
}

/// The check of a [`PendingDeviceRequest`]'s body hash and signature:
/// done at once for a small body, else running on the blocking pool.
#[must_use = "a request acts only once its signature holds"]
pub struct SignatureCheck(Check);

enum Check {
    Done(Result<Nonce, AppError>),
    Running {
        task: tokio::task::JoinHandle<Result<Nonce, AppError>>,
        /// [`Check::RUNNING`] until the task has decided, then
        /// [`Check::HOLDS`] or [`Check::FAILS`].
        outcome: std::sync::Arc<std::sync::atomic::AtomicU8>,
    },
}

impl Check {
    const RUNNING: u8 = 0;
    const HOLDS: u8 = 1;
    const FAILS: u8 = 2;
}

impl SignatureCheck {
    /// Bodies smaller than this are checked at once, on the calling
    /// thread: hashing them costs less than handing them to another.
    const INLINE_BELOW: usize = 16 * 1024;

    /// Starts the check. The thread it runs on only ever computes (the
    /// body has arrived), so a slow client holds none.
    fn start(
        header: DeviceAuthHeader,
        key: VerifyingKey,
        method: Method,
        path_and_query: String,
        body: Bytes,
    ) -> Self {
        let inline = body.len() < Self::INLINE_BELOW;
        let check = move || {
            let body_sha256: [u8; 32] = Sha256::digest(&body).into();
            check_signature(header, &key, &method, &path_and_query, &body_sha256)
        };
        if inline {
            return Self(Check::Done(check()));
        }
        let outcome = std::sync::Arc::new(std::sync::atomic::AtomicU8::new(Check::RUNNING));
        let task = tokio::task::spawn_blocking({
            let outcome = std::sync::Arc::clone(&outcome);
            move || {
                let checked = check();
                let settled = if checked.is_ok() {
                    Check::HOLDS
                } else {
                    Check::FAILS
                };
                outcome.store(settled, std::sync::atomic::Ordering::Release);
                checked
            }
        });
        Self(Check::Running { task, outcome })
    }

    /// Without waiting: `Some(true)` once the signature is known to hold,
    /// `Some(false)` once it is known not to, `None` while it is checked.
    pub fn settled(&self) -> Option<bool> {
        match &self.0 {
            Check::Done(checked) => Some(checked.is_ok()),
            Check::Running { outcome, .. } => {
                match outcome.load(std::sync::atomic::Ordering::Acquire) {
                    Check::RUNNING => None,
                    settled => Some(settled == Check::HOLDS),
                }
            }
        }
    }

    /// Waits for the check: the request's nonce (still to be spent) when
    /// the signature holds, else the refusal (401).
    pub async fn wait(self) -> Result<Nonce, AppError> {
        match self.0 {
            Check::Done(checked) => checked,
            Check::Running { task, .. } => task.await.map_err(|e| {
                AppError::internal(format!("the device request's signature check failed: {e}"))
            })?,
        }
    }
}

/// The declared length of a request's body, if any.
fn content_length(parts: &Parts) -> Option<usize> {
    parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
}

/// Reads a whole body up to `limit` bytes (413 beyond).
pub async fn read_limited(body: Body, limit: usize) -> Result<Bytes, AppError> {
    read_chunks(body, limit, None).await
}

/// Reads a whole body up to `limit` bytes (413 beyond); `size_hint` (the
/// declared length) sizes the buffer once.
async fn read_chunks(
    body: Body,
    limit: usize,
    size_hint: Option<usize>,
) -> Result<Bytes, AppError> {
    use futures_util::StreamExt;
    let mut stream = body.into_data_stream();
    let mut collected = Vec::with_capacity(size_hint.unwrap_or(0).min(limit));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| AppError::BadRequest(format!("cannot read the request body: {e}")))?;
        if collected.len() + chunk.len() > limit {
            return Err(AppError::PayloadTooLarge(format!(
                "request body is larger than {limit} bytes"
            )));
        }
        collected.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(collected))
}

/// Extractor for bodiless reads open to both sides (media downloads): a
/// signed device request or a person's token of any role.
pub enum DeviceOrPerson {
    /// A screen box.
    Device(Box<DeviceScreen>),
    /// A person.
    Person(Caller),
}

impl FromRequestParts<AppState> for DeviceOrPerson {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let is_device = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with(AUTH_SCHEME));
        if is_device {
            let header = device_header(parts)?;
            let screen = signing_screen(state, &header).await?;
            verify_signed(
                state.db(),
                header,
                &screen.key,
                &parts.method,
                &path_and_query(parts),
                &Sha256::digest(b"").into(),
            )
            .await?;
            Ok(Self::Device(Box::new(screen)))
        } else {
            let auth = Auth::<Viewer>::from_request_parts(parts, state).await?;
            Ok(Self::Person(auth.caller))
        }
    }
}

/// A pairing code issued to a box.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Pairing {
    /// Show this on the screen; the operator types it into `ekran screen approve`.
    pub code: String,
    /// Key id of the key that asked.
    pub key_id: String,
    /// When the code stops working, UTC ms.
    pub expires_at_ms: i64,
}

/// A fresh 8-letter code, shown as `ABCD-EFGH`.
fn new_pairing_code() -> String {
    let mut rng = rand::thread_rng();
    let mut code = String::with_capacity(9);
    for i in 0..8 {
        if i == 4 {
            code.push('-');
        }
        let _ = write!(
            code,
            "{}",
            char::from(CODE_ALPHABET[rng.gen_range(0..CODE_ALPHABET.len())])
        );
    }
    code
}

/// Canonical form of a typed code: uppercase, with the dash in place.
pub fn normalize_code(typed: &str) -> String {
    let letters: String = typed
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if letters.len() == 8 {
        format!("{}-{}", &letters[..4], &letters[4..])
    } else {
        letters
    }
}

/// Body of `POST /api/v1/enroll`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// The box's public key, SPKI PEM.
    pub public_key: String,
}

/// Handles an enrollment request: the body names the key, the request must
/// be signed by it (proof that the box holds the private key). Returns the
/// pending pairing (the same one while it is valid, so retries are safe).
pub async fn enroll(state: &AppState, parts: &Parts, body: &[u8]) -> Result<Pairing, AppError> {
    let request: EnrollRequest = serde_json::from_slice(body)
        .map_err(|e| AppError::BadRequest(format!("invalid enrollment request: {e}")))?;
    let key = keys::verifying_key_from_pem(&request.public_key)
        .map_err(|e| AppError::BadRequest(format!("invalid public key: {e}")))?;
    if key.is_weak() {
        return Err(AppError::BadRequest(
            "weak (small-order) Ed25519 public key refused".into(),
        ));
    }
    let key_id = keys::key_id(&key);
    let header = device_header(parts)?;
    if header.key_id != key_id {
        return Err(AppError::Unauthorized(
            "the enrollment request must be signed by the key it enrolls".into(),
        ));
    }
    verify_signed(
        state.db(),
        header,
        &key,
        &parts.method,
        &path_and_query(parts),
        &Sha256::digest(body).into(),
    )
    .await?;
    if let Some(screen) = screen_by_key(state.db(), &key_id).await? {
        return Err(AppError::Conflict(format!(
            "this key is already enrolled as screen {:?}",
            screen.id
        )));
    }
    let now = now_ms();
    let existing = sqlx::query(
        "SELECT code, expires_at_ms FROM pairings WHERE key_id = $1 AND used_at_ms IS NULL AND expires_at_ms > $2 \
         ORDER BY expires_at_ms DESC LIMIT 1",
    )
    .bind(&key_id)
    .bind(now)
    .fetch_optional(state.db().pool())
    .await?;
    if let Some(row) = existing {
        return Ok(Pairing {
            code: row.try_get("code")?,
            key_id,
            expires_at_ms: row.try_get("expires_at_ms")?,
        });
    }
    let expires_at_ms = now + PAIRING_TTL_MS;
    // A collision among 31^8 codes is unlikely but retried, never merged.
    for _ in 0..5 {
        let code = new_pairing_code();
        let inserted = sqlx::query(
            "INSERT INTO pairings (code, key_id, public_key_pem, created_at_ms, expires_at_ms) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (code) DO NOTHING",
        )
        .bind(&code)
        .bind(&key_id)
        .bind(keys::verifying_key_to_pem(&key))
        .bind(now)
        .bind(expires_at_ms)
        .execute(state.db().pool())
        .await?;
        if inserted.rows_affected() == 1 {
            tracing::info!(key_id = %key_id, code = %code, "pairing code issued");
            return Ok(Pairing {
                code,
                key_id,
                expires_at_ms,
            });
        }
    }
    Err(AppError::internal(
        "could not allocate a unique pairing code",
    ))
}

/// What an approval needs.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// Venue the screen stands in.
    pub venue: String,
    /// Groups to put it in (created if missing).
    #[serde(default)]
    pub groups: Vec<String>,
    /// Screen id; default `scr-<first 12 hex of the key id>`.
    #[serde(default)]
    pub screen_id: Option<String>,
    /// Display name; default the screen id.
    #[serde(default)]
    pub name: Option<String>,
}

/// Turns a pending pairing into an enrolled screen. Single use: a second
/// approval of the same code, or one after expiry, is 410.
pub async fn approve(
    state: &AppState,
    typed_code: &str,
    approval: &Approval,
) -> Result<String, AppError> {
    let code = normalize_code(typed_code);
    let db = state.db();
    crate::server::api::admin::load_venue(db, &approval.venue).await?;
    for group in &approval.groups {
        crate::server::api::admin::ensure_group(db, group, group).await?;
    }
    let mut tx = db.begin_write().await?;
    let row = sqlx::query(
        "SELECT key_id, public_key_pem, expires_at_ms, used_at_ms FROM pairings WHERE code = $1",
    )
    .bind(&code)
    .fetch_optional(&mut *tx.tx)
    .await?
    .ok_or_else(|| AppError::NotFound(format!("unknown pairing code {code:?}")))?;
    let used: Option<i64> = row.try_get("used_at_ms")?;
    if used.is_some() {
        return Err(AppError::Gone(format!(
            "pairing code {code} was already used"
        )));
    }
    let expires: i64 = row.try_get("expires_at_ms")?;
    let now = now_ms();
    if expires <= now {
        return Err(AppError::Gone(format!(
            "pairing code {code} expired {} s ago: restart enrollment on the box to get a new code",
            (now - expires) / 1000
        )));
    }
    let key_id: String = row.try_get("key_id")?;
    let pem: String = row.try_get("public_key_pem")?;
    let screen_id = approval
        .screen_id
        .clone()
        .unwrap_or_else(|| format!("scr-{}", &key_id[..12.min(key_id.len())]));
    crate::server::api::validate_id("screen", &screen_id)?;
    // Conditional update: two concurrent approvals cannot both win.
    let claimed = sqlx::query("UPDATE pairings SET used_at_ms = $1, screen_id = $2 WHERE code = $3 AND used_at_ms IS NULL")
        .bind(now)
        .bind(&screen_id)
        .bind(&code)
        .execute(&mut *tx.tx)
        .await?;
    if claimed.rows_affected() == 0 {
        return Err(AppError::Gone(format!(
            "pairing code {code} was already used"
        )));
    }
    let inserted = sqlx::query(
        "INSERT INTO screens (id, name, venue_id, key_id, public_key_pem, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT DO NOTHING",
    )
    .bind(&screen_id)
    .bind(approval.name.as_deref().unwrap_or(&screen_id))
    .bind(&approval.venue)
    .bind(&key_id)
    .bind(&pem)
    .bind(now)
    .execute(&mut *tx.tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(AppError::Conflict(format!(
            "screen id {screen_id:?} or this key is already enrolled: choose another screen id"
        )));
    }
    crate::server::api::admin::set_screen_groups(&mut tx, &screen_id, &approval.groups).await?;
    tx.commit().await?;
    tracing::info!(screen = %screen_id, key_id = %key_id, venue = %approval.venue, "screen enrolled");
    Ok(screen_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_header_round_trips_and_binds_every_part() {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let header = sign_request(
            &key,
            "post",
            "/api/v1/device/pop?x=1",
            b"[]",
            1_700_000_000_000,
        );
        let parsed = parse_auth_header(&header).unwrap();
        assert_eq!(parsed.key_id, keys::key_id(&key.verifying_key()));
        assert_eq!(parsed.ts_ms, 1_700_000_000_000);
        let hash = hex::encode(Sha256::digest(b"[]"));
        let signed = signing_string(
            "POST",
            "/api/v1/device/pop?x=1",
            &hash,
            parsed.ts_ms,
            &parsed.nonce,
        );
        assert!(
            key.verifying_key()
                .verify_strict(signed.as_bytes(), &parsed.signature)
                .is_ok()
        );
        for (method, path, body) in [
            ("GET", "/api/v1/device/pop?x=1", &b"[]"[..]),
            ("POST", "/api/v1/device/pop", &b"[]"[..]),
            ("POST", "/api/v1/device/pop?x=1", &b"[{}]"[..]),
        ] {
            let other = signing_string(
                method,
                path,
                &hex::encode(Sha256::digest(body)),
                parsed.ts_ms,
                &parsed.nonce,
            );
            assert!(
                key.verifying_key()
                    .verify_strict(other.as_bytes(), &parsed.signature)
                    .is_err()
            );
        }
    }

    #[test]
    fn malformed_headers_are_refused_with_a_reason() {
        for bad in [
            "Bearer x",
            "Ekran-Device keyid=\"a\"",
            "Ekran-Device keyid=\"a\", ts=\"soon\", nonce=\"abcdefghijklmnop\", sig=\"AA==\"",
            "Ekran-Device keyid=\"a\", ts=\"1\", nonce=\"short\", sig=\"AA==\"",
            "Ekran-Device keyid=\"a\", ts=\"1\", nonce=\"abcdefghijklmnop\", sig=\"AA==\"",
        ] {
            assert!(
                matches!(parse_auth_header(bad), Err(AppError::Unauthorized(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn codes_normalize_from_what_people_type() {
        assert_eq!(normalize_code("abcd efgh"), "ABCD-EFGH");
        assert_eq!(normalize_code("ABCD-EFGH"), "ABCD-EFGH");
        let code = new_pairing_code();
        assert_eq!(normalize_code(&code), code);
    }
}
