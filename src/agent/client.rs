//! The device-API HTTP client (SPEC §7 "Device API"): every request the box
//! makes to the server, signed with the screen key.
//!
//! # Signing
//!
//! Each request carries
//! `Authorization: Ekran-Device keyid="…", ts="…", nonce="…", sig="…"`,
//! an Ed25519 signature over
//! `ekran-device-request-v1\n<METHOD>\n<path?query>\n<hex sha256 of body>\n<ts>\n<nonce>`
//! (the scheme documented in the server's `device` module; a test checks
//! this client against the server's own verifier). The path is taken from
//! the URL actually sent, so what is signed is what the server sees.
//!
//! # Clock
//!
//! A Pi has no real-time clock and may boot in 1970; the server refuses
//! timestamps more than a few minutes from its own clock. [`ServerClock`]
//! learns the offset between the box's clock and the server's `Date`
//! header (every response carries one) and is the agent's clock: request
//! timestamps, the trust time floor (through [`trust::Clock`]) and
//! proof-of-play times all read it. A request refused for its timestamp is
//! signed again once with the corrected clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signer as _, SigningKey};
use jiff::{SignedDuration, Timestamp};
use rand::Rng as _;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, DATE, ETAG, HeaderValue, IF_NONE_MATCH};
use reqwest::{Method, StatusCode, Url};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::download::AuthorizeRequest;
use super::upload::{PopTransport, UploadError};
use crate::keys;
use crate::pop::PlayRecord;
use crate::trust::{self, Clock};

/// Name of the `Authorization` scheme (must equal the server's).
pub const AUTH_SCHEME: &str = "Ekran-Device";
/// First line of the signed string (must equal the server's).
pub const SIGNING_CONTEXT: &str = "ekran-device-request-v1";
/// Enrollment: the box registers its key and gets a pairing code.
pub const ENROLL_PATH: &str = "/api/v1/enroll";
/// Who the server thinks this box is, and the key to pin.
pub const IDENTITY_PATH: &str = "/api/v1/device/self";
/// The signed manifest, with ETag and long-poll.
pub const MANIFEST_PATH: &str = "/api/v1/device/manifest";
/// Proof-of-play batch upload.
pub const POP_PATH: &str = "/api/v1/device/pop";
/// Health report.
pub const HEARTBEAT_PATH: &str = "/api/v1/device/heartbeat";
/// A screenshot the server asked for in a heartbeat answer (`PUT`, PNG).
pub const SCREENSHOT_PATH: &str = "/api/v1/device/screenshot";
/// Largest screenshot the server takes (its limit on the `PUT` body).
pub const MAX_SCREENSHOT_BYTES: usize = 4 * 1024 * 1024;

/// Largest answer read for anything but a manifest (identity, acks, errors).
const MAX_SMALL_RESPONSE_BYTES: usize = 1024 * 1024;
/// A clock differing from the server's by less than this is left alone:
/// `Date` has one-second resolution.
const CLOCK_TOLERANCE_MS: i64 = 2_000;
/// The server's replay window is ±5 minutes; a signature this far from the
/// server's time was refused for its timestamp and is worth signing again.
const TIMESTAMP_RETRY_MS: i64 = 4 * 60 * 1000;
/// Time for a request to complete, beyond any long-poll wait it asks for.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Letters of nonces (the server accepts `A-Z a-z 0-9 - _`).
const NONCE_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Why a device-API call failed. Each says what was attempted.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// `server_url` in the config cannot be used.
    #[error("server URL {url:?} is unusable: {reason}; fix server_url in the player config")]
    BadServerUrl {
        /// The configured URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No answer: DNS, connection refused, timeout, TLS.
    #[error("cannot reach the server for {method} {path}: {source}")]
    Unreachable {
        /// The request method.
        method: Method,
        /// The request path.
        path: String,
        /// What the HTTP stack said.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an error status.
    #[error("the server answered {status} to {method} {path}: {message}")]
    Status {
        /// The request method.
        method: Method,
        /// The request path.
        path: String,
        /// The status code.
        status: u16,
        /// The server's `error` message, or the body's start.
        message: String,
    },
    /// A body this box would send is over the server's limit.
    #[error("{path}: the body of {bytes} bytes is over the limit of {limit} bytes")]
    TooLarge {
        /// The request path.
        path: String,
        /// The body's size.
        bytes: usize,
        /// The most the server takes.
        limit: usize,
    },
    /// The answer is not what the API promises.
    #[error("the server's answer to {path} is malformed: {reason}")]
    BadResponse {
        /// The request path.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl ClientError {
    /// The HTTP status the server answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The agent's clock: the box's clock corrected by the offset to the
/// server's `Date` header, so a box that booted in 1970 signs requests and
/// judges expiry with the server's idea of now.
pub struct ServerClock {
    base: Arc<dyn Clock + Send + Sync>,
    offset_ms: AtomicI64,
}

impl std::fmt::Debug for ServerClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerClock")
            .field("offset_ms", &self.offset_ms.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl ServerClock {
    /// The system clock, not yet corrected.
    pub fn system() -> Self {
        Self::new(Arc::new(trust::SystemClock))
    }

    /// `base` (the box's clock; a [`trust::ManualClock`] in tests), not yet corrected.
    pub fn new(base: Arc<dyn Clock + Send + Sync>) -> Self {
        Self {
            base,
            offset_ms: AtomicI64::new(0),
        }
    }

    /// How far the server's clock is ahead of the box's.
    pub fn offset(&self) -> SignedDuration {
        SignedDuration::from_millis(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Learns from a server time seen now (a `Date` header). Returns true
    /// when the correction changed by more than the header's resolution.
    pub fn observe_server_time(&self, server_now: Timestamp) -> bool {
        let raw = server_now.as_millisecond() - self.base.now().as_millisecond();
        let current = self.offset_ms.load(Ordering::Relaxed);
        if (raw - current).abs() <= CLOCK_TOLERANCE_MS {
            return false;
        }
        self.offset_ms.store(raw, Ordering::Relaxed);
        tracing::info!(
            offset_s = raw / 1000,
            "box clock corrected from the server's Date header"
        );
        true
    }
}

impl Clock for ServerClock {
    fn now(&self) -> Timestamp {
        let base = self.base.now();
        base.checked_add(self.offset()).unwrap_or(base)
    }
}

/// What enrollment answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrollAnswer {
    /// A pairing code for the operator; valid until `expires_at_ms`.
    Pending(Pairing),
    /// The key is enrolled already (approved before a restart).
    AlreadyEnrolled,
}

/// A pairing code issued to this box.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pairing {
    /// Shown on the screen; the operator types it into `ekran screen approve`.
    pub code: String,
    /// Key id of the screen key that asked.
    pub key_id: String,
    /// When the code stops working, server time, UTC ms.
    pub expires_at_ms: i64,
}

/// Who the server thinks this box is (`GET /api/v1/device/self`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DeviceIdentity {
    /// The screen id manifests and proof-of-play records carry.
    pub screen_id: String,
    /// The venue the screen stands in.
    pub venue: String,
    /// The venue's IANA time zone.
    pub timezone: String,
    /// Key id of the server's manifest signing key.
    pub server_key_id: String,
    /// The server's manifest signing key (SPKI PEM), pinned at enrollment.
    pub server_public_key_pem: String,
}

/// Whether the box has been approved yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approval {
    /// Approved: the identity to persist.
    Enrolled(DeviceIdentity),
    /// Not (yet) known as a screen; the server's explanation.
    NotEnrolled(String),
}

/// A manifest fetch's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestFetch {
    /// A manifest envelope, exactly as received, and its ETag.
    Envelope {
        /// The raw bytes, verified later exactly as they are.
        bytes: Vec<u8>,
        /// The server's ETag, without quotes.
        etag: Option<String>,
    },
    /// The manifest named by `If-None-Match` is still current.
    NotModified,
    /// Nothing has been published for this screen yet.
    NonePublished,
}

/// The server's answer to a proof-of-play upload.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UploadAck {
    /// Highest seq such that every record up to it is stored and chained.
    pub acked_seq: u64,
    /// Records stored by this upload.
    #[serde(default)]
    pub stored: u64,
    /// Records the server already had.
    #[serde(default)]
    pub duplicates: u64,
    /// Records refused (bad hash, bad signature, fork).
    #[serde(default)]
    pub rejected: u64,
}

/// The server's answer to a heartbeat (`200` with this JSON object, or
/// `204` with no body, which means all fields are false).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct HeartbeatAnswer {
    /// An operator asked for a screenshot: send one (`PUT`
    /// [`SCREENSHOT_PATH`]) of what the screen shows now.
    #[serde(default)]
    pub screenshot_requested: bool,
}

/// A request body and its media type.
struct Body {
    bytes: Vec<u8>,
    content_type: &'static str,
}

impl Body {
    fn json(bytes: Vec<u8>) -> Self {
        Self {
            bytes,
            content_type: "application/json",
        }
    }
}

/// The signed-request client of one screen.
#[derive(Clone)]
pub struct DeviceClient {
    http: reqwest::Client,
    base: Url,
    key: Arc<SigningKey>,
    key_id: String,
    clock: Arc<ServerClock>,
}

impl std::fmt::Debug for DeviceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceClient")
            .field("base", &self.base.as_str())
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl DeviceClient {
    /// A client for the server at `server_url`, signing with `key`.
    pub fn new(
        server_url: &str,
        key: SigningKey,
        clock: Arc<ServerClock>,
    ) -> Result<Self, ClientError> {
        let bad = |reason: String| ClientError::BadServerUrl {
            url: server_url.to_owned(),
            reason,
        };
        let base = Url::parse(server_url).map_err(|error| bad(error.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(bad("expected an http:// or https:// URL".to_owned()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(20))
            .build()
            .map_err(|error| bad(format!("HTTP client: {error}")))?;
        let key_id = keys::key_id(&key.verifying_key());
        Ok(Self {
            http,
            base,
            key: Arc::new(key),
            key_id,
            clock,
        })
    }

    /// The server's base URL (media URLs in manifests are relative to it).
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// The HTTP client, shared with the media downloader.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Key id of the screen key.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The agent's (server-corrected) clock.
    pub fn clock(&self) -> &Arc<ServerClock> {
        &self.clock
    }

    /// The `Authorization` value for a request, signed now.
    pub fn authorization(&self, method: &Method, path_and_query: &str, body: &[u8]) -> String {
        let ts_ms = self.clock.now().as_millisecond();
        self.authorization_at(method, path_and_query, body, ts_ms)
    }

    fn authorization_at(
        &self,
        method: &Method,
        path_and_query: &str,
        body: &[u8],
        ts_ms: i64,
    ) -> String {
        let nonce: String = {
            let mut rng = rand::thread_rng();
            (0..24)
                .map(|_| char::from(NONCE_ALPHABET[rng.gen_range(0..NONCE_ALPHABET.len())]))
                .collect()
        };
        let message = format!(
            "{SIGNING_CONTEXT}\n{}\n{path_and_query}\n{}\n{ts_ms}\n{nonce}",
            method.as_str().to_ascii_uppercase(),
            hex::encode(Sha256::digest(body)),
        );
        let signature = self.key.sign(message.as_bytes());
        format!(
            "{AUTH_SCHEME} keyid=\"{}\", ts=\"{ts_ms}\", nonce=\"{nonce}\", sig=\"{}\"",
            self.key_id,
            BASE64.encode(signature.to_bytes())
        )
    }

    /// Sends a signed request; learns the server's clock from the answer and
    /// signs again once if the timestamp was refused for being off.
    async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Body>,
        if_none_match: Option<&str>,
        timeout: Duration,
    ) -> Result<reqwest::Response, ClientError> {
        let url = self
            .base
            .join(path_and_query)
            .map_err(|error| ClientError::BadServerUrl {
                url: self.base.to_string(),
                reason: format!("cannot append {path_and_query}: {error}"),
            })?;
        let signed_path = path_and_query_of(&url);
        let (body, content_type) = body.map_or((Vec::new(), "application/json"), |body| {
            (body.bytes, body.content_type)
        });
        let mut retried = false;
        loop {
            let ts_ms = self.clock.now().as_millisecond();
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .timeout(timeout)
                .header(
                    AUTHORIZATION,
                    self.authorization_at(&method, &signed_path, &body, ts_ms),
                );
            if !body.is_empty() {
                request = request
                    .header(CONTENT_TYPE, content_type)
                    .body(body.clone());
            }
            if let Some(etag) = if_none_match {
                request = request.header(IF_NONE_MATCH, format!("\"{etag}\""));
            }
            let response = request
                .send()
                .await
                .map_err(|source| ClientError::Unreachable {
                    method: method.clone(),
                    path: signed_path.clone(),
                    source,
                })?;
            let server_now = response
                .headers()
                .get(DATE)
                .and_then(|value| value.to_str().ok())
                .and_then(parse_http_date);
            if let Some(server_now) = server_now {
                self.clock.observe_server_time(server_now);
                let off_by = (server_now.as_millisecond() - ts_ms).abs();
                if response.status() == StatusCode::UNAUTHORIZED
                    && off_by > TIMESTAMP_RETRY_MS
                    && !retried
                {
                    tracing::warn!(
                        off_by_s = off_by / 1000,
                        "request refused with the box clock far from the server's; signing again with the corrected clock"
                    );
                    retried = true;
                    continue;
                }
            }
            return Ok(response);
        }
    }

    /// Sends and turns an error status into [`ClientError::Status`].
    async fn send_ok(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Body>,
    ) -> Result<reqwest::Response, ClientError> {
        let response = self
            .send(method.clone(), path_and_query, body, None, REQUEST_TIMEOUT)
            .await?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(status_error(method, path_and_query, response).await)
        }
    }

    /// `POST /api/v1/enroll`: registers the screen key (the request is
    /// signed with it, proving possession). Retrying is safe: the server
    /// returns the same code while it is valid.
    pub async fn enroll(&self) -> Result<EnrollAnswer, ClientError> {
        let body = serde_json::to_vec(&serde_json::json!({
            "public_key": keys::verifying_key_to_pem(&self.key.verifying_key()),
        }))
        .expect("a JSON object of one string serialises");
        let response = self
            .send(
                Method::POST,
                ENROLL_PATH,
                Some(Body::json(body)),
                None,
                REQUEST_TIMEOUT,
            )
            .await?;
        match response.status() {
            StatusCode::CONFLICT => Ok(EnrollAnswer::AlreadyEnrolled),
            status if status.is_success() => {
                let pairing: Pairing = read_json(response, ENROLL_PATH).await?;
                if pairing.key_id != self.key_id {
                    return Err(ClientError::BadResponse {
                        path: ENROLL_PATH.to_owned(),
                        reason: format!(
                            "pairing issued for key {} but this box's key is {}",
                            pairing.key_id, self.key_id
                        ),
                    });
                }
                Ok(EnrollAnswer::Pending(pairing))
            }
            _ => Err(status_error(Method::POST, ENROLL_PATH, response).await),
        }
    }

    /// `GET /api/v1/device/self`: the identity once approved.
    pub async fn identity(&self) -> Result<Approval, ClientError> {
        let response = self
            .send(Method::GET, IDENTITY_PATH, None, None, REQUEST_TIMEOUT)
            .await?;
        match response.status() {
            StatusCode::UNAUTHORIZED => Ok(Approval::NotEnrolled(
                error_message(response, IDENTITY_PATH).await,
            )),
            status if status.is_success() => Ok(Approval::Enrolled(
                read_json(response, IDENTITY_PATH).await?,
            )),
            _ => Err(status_error(Method::GET, IDENTITY_PATH, response).await),
        }
    }

    /// `GET /api/v1/device/manifest?wait=…`: waits up to `wait` for a
    /// manifest other than `etag`. The envelope is read up to the DSSE size
    /// cap and returned byte for byte.
    pub async fn fetch_manifest(
        &self,
        etag: Option<&str>,
        wait: Duration,
    ) -> Result<ManifestFetch, ClientError> {
        let path = format!("{MANIFEST_PATH}?wait={}", wait.as_secs());
        let response = self
            .send(Method::GET, &path, None, etag, REQUEST_TIMEOUT + wait)
            .await?;
        match response.status() {
            StatusCode::NOT_MODIFIED => Ok(ManifestFetch::NotModified),
            StatusCode::NOT_FOUND => Ok(ManifestFetch::NonePublished),
            StatusCode::OK => {
                let etag = response
                    .headers()
                    .get(ETAG)
                    .and_then(|value| value.to_str().ok())
                    .map(|value| value.trim().trim_matches('"').to_owned());
                let bytes = read_limited(response, crate::dsse::MAX_ENVELOPE_BYTES, &path).await?;
                Ok(ManifestFetch::Envelope { bytes, etag })
            }
            _ => Err(status_error(Method::GET, &path, response).await),
        }
    }

    /// `POST /api/v1/device/pop`: one batch of records, oldest first.
    pub async fn upload_pop(&self, records: &[PlayRecord]) -> Result<UploadAck, ClientError> {
        let body = serde_json::to_vec(records).expect("proof-of-play records serialise to JSON");
        let response = self
            .send_ok(Method::POST, POP_PATH, Some(Body::json(body)))
            .await?;
        read_json(response, POP_PATH).await
    }

    /// `POST /api/v1/device/heartbeat`: the box's health, a JSON object.
    /// The answer says whether the server wants something of the box
    /// (`204`, or an empty body, wants nothing).
    pub async fn heartbeat<T: Serialize>(
        &self,
        status: &T,
    ) -> Result<HeartbeatAnswer, ClientError> {
        let body = serde_json::to_vec(status).expect("a heartbeat serialises to JSON");
        let response = self
            .send_ok(Method::POST, HEARTBEAT_PATH, Some(Body::json(body)))
            .await?;
        if response.status() == StatusCode::NO_CONTENT {
            return Ok(HeartbeatAnswer::default());
        }
        let bytes = read_limited(response, MAX_SMALL_RESPONSE_BYTES, HEARTBEAT_PATH).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(HeartbeatAnswer::default());
        }
        serde_json::from_slice(&bytes).map_err(|error| ClientError::BadResponse {
            path: HEARTBEAT_PATH.to_owned(),
            reason: error.to_string(),
        })
    }

    /// `PUT /api/v1/device/screenshot`: a PNG of what the screen shows,
    /// at most [`MAX_SCREENSHOT_BYTES`].
    pub async fn upload_screenshot(&self, png: Vec<u8>) -> Result<(), ClientError> {
        if png.len() > MAX_SCREENSHOT_BYTES {
            return Err(ClientError::TooLarge {
                path: SCREENSHOT_PATH.to_owned(),
                bytes: png.len(),
                limit: MAX_SCREENSHOT_BYTES,
            });
        }
        let body = Body {
            bytes: png,
            content_type: "image/png",
        };
        self.send_ok(Method::PUT, SCREENSHOT_PATH, Some(body))
            .await
            .map(drop)
    }
}

/// Proof-of-play batches go to `POST /api/v1/device/pop`; the answer's
/// `acked_seq` is what the delivery loop acknowledges in the journal.
impl PopTransport for DeviceClient {
    async fn upload(&self, batch: &[PlayRecord]) -> Result<u64, UploadError> {
        let ack = self
            .upload_pop(batch)
            .await
            .map_err(|error| UploadError::Transport(error.to_string()))?;
        if ack.rejected > 0 {
            tracing::error!(
                rejected = ack.rejected,
                "the server refused records of this box (bad hash, signature or fork); see its audit findings"
            );
        }
        Ok(ack.acked_seq)
    }
}

/// Media downloads are signed like every other device request.
impl AuthorizeRequest for DeviceClient {
    fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        // Keep a copy: a builder that fails to build is returned as it was,
        // so sending it reports the builder's own error.
        let Some(fallback) = request.try_clone() else {
            return request;
        };
        let (client, built) = request.build_split();
        let Ok(mut built) = built else {
            return fallback;
        };
        let path = path_and_query_of(built.url());
        let body = built
            .body()
            .and_then(reqwest::Body::as_bytes)
            .unwrap_or_default()
            .to_vec();
        let value = self.authorization(built.method(), &path, &body);
        match HeaderValue::from_str(&value) {
            Ok(value) => {
                built.headers_mut().insert(AUTHORIZATION, value);
                reqwest::RequestBuilder::from_parts(client, built)
            }
            Err(_) => fallback,
        }
    }
}

/// `path?query` of a URL, as the server sees the request target.
fn path_and_query_of(url: &Url) -> String {
    match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    }
}

/// Parses an HTTP `Date` (RFC 9110 IMF-fixdate, e.g. `Sun, 29 Nov 2026 09:06:47 GMT`).
pub fn parse_http_date(value: &str) -> Option<Timestamp> {
    jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(value)
        .ok()
}

/// Reads at most `limit` bytes of a body; more is an error, not truncation.
async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
    path: &str,
) -> Result<Vec<u8>, ClientError> {
    let too_large = || ClientError::BadResponse {
        path: path.to_owned(),
        reason: format!("body larger than {limit} bytes"),
    };
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| ClientError::BadResponse {
            path: path.to_owned(),
            reason: format!("body cut off: {error}"),
        })?
    {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

async fn read_json<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
    path: &str,
) -> Result<T, ClientError> {
    let bytes = read_limited(response, MAX_SMALL_RESPONSE_BYTES, path).await?;
    serde_json::from_slice(&bytes).map_err(|error| ClientError::BadResponse {
        path: path.to_owned(),
        reason: error.to_string(),
    })
}

/// The `error` of a JSON error body, or the start of whatever came.
async fn error_message(response: reqwest::Response, path: &str) -> String {
    match read_limited(response, MAX_SMALL_RESPONSE_BYTES, path).await {
        Ok(bytes) => serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|value| value.get("error")?.as_str().map(str::to_owned))
            .unwrap_or_else(|| {
                String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned()
            }),
        Err(error) => error.to_string(),
    }
}

async fn status_error(method: Method, path: &str, response: reqwest::Response) -> ClientError {
    let status = response.status().as_u16();
    ClientError::Status {
        method,
        path: path.to_owned(),
        status,
        message: error_message(response, path).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::ManualClock;

    #[test]
    fn http_dates_parse() {
        let parsed = parse_http_date("Sun, 29 Nov 2026 09:06:47 GMT").unwrap();
        assert_eq!(parsed, "2026-11-29T09:06:47Z".parse::<Timestamp>().unwrap());
        assert!(parse_http_date("yesterday").is_none());
    }

    #[test]
    fn clock_in_1970_is_corrected_by_the_server_time() {
        let box_clock = Arc::new(ManualClock::new(Timestamp::UNIX_EPOCH));
        let clock = ServerClock::new(box_clock.clone());
        let server_now: Timestamp = "2026-11-29T09:00:00Z".parse().unwrap();
        assert!(clock.observe_server_time(server_now));
        assert_eq!(clock.now(), server_now);
        // The box's clock runs on; the correction follows it.
        box_clock.set(Timestamp::UNIX_EPOCH + SignedDuration::from_secs(10));
        assert_eq!(clock.now(), server_now + SignedDuration::from_secs(10));
        // A second's disagreement (the Date header's resolution) changes nothing.
        assert!(!clock.observe_server_time(server_now + SignedDuration::from_millis(10_900)));
    }

    #[test]
    fn signed_path_includes_the_query() {
        let url = Url::parse("http://h:1/api/v1/device/manifest?wait=30").unwrap();
        assert_eq!(path_and_query_of(&url), "/api/v1/device/manifest?wait=30");
    }
}
