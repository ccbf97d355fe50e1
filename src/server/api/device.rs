//! Device endpoints (enrollment, identity, manifest with ETag and
//! long-poll, proof-of-play upload, heartbeat) and the operator's approval
//! of pairing codes. Device calls are signed requests, see
//! [`crate::server::device`].

use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::admin::load_screens;
use crate::server::AppState;
use crate::server::auth::{Admin, Auth};
use crate::server::db::now_ms;
use crate::server::device::{self, Approval, DeviceRequest, PendingDeviceRequest, read_limited};
use crate::server::error::{ApiJson, ApiQuery, AppError};
use crate::server::{ingest, publish};

/// Longest long-poll a device may ask for.
pub const MAX_WAIT_SECS: u64 = 120;
/// Largest heartbeat body.
const MAX_HEARTBEAT_BYTES: usize = 64 * 1024;
/// Long-polls re-read the database at least this often, in case a
/// cross-process notification was lost while the listener reconnected.
const RECHECK_EVERY: Duration = Duration::from_secs(10);

/// `POST /api/v1/enroll`: a box registers its key (signed with it) and gets a pairing code.
pub async fn enroll(State(state): State<AppState>, request: Request) -> Result<Response, AppError> {
    let (parts, body) = request.into_parts();
    let body = read_limited(body, 16 * 1024).await?;
    let pairing = device::enroll(&state, &parts, &body).await?;
    Ok((StatusCode::CREATED, axum::Json(pairing)).into_response())
}

/// `POST /api/v1/pairings/{code}/approve` (admin).
pub async fn approve(
    State(state): State<AppState>,
    _auth: Auth<Admin>,
    Path(code): Path<String>,
    ApiJson(approval): ApiJson<Approval>,
) -> Result<Response, AppError> {
    let screen_id = device::approve(&state, &code, &approval).await?;
    publish::recompile_screen(&state, &screen_id).await?;
    let screen = load_screens(state.db(), Some(&screen_id)).await?.pop();
    Ok((StatusCode::CREATED, axum::Json(screen)).into_response())
}

/// `GET /api/v1/device/self`: who the server thinks this box is, and the key to pin.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceSelf {
    /// The screen id manifests and PoP records must carry.
    pub screen_id: String,
    /// Venue id.
    pub venue: String,
    /// The venue's IANA time zone.
    pub timezone: String,
    /// Key id of the server's manifest signing key.
    pub server_key_id: String,
    /// The server's manifest signing key (SPKI PEM), to pin at enrollment.
    pub server_public_key_pem: String,
}

pub async fn whoami(
    State(state): State<AppState>,
    request: DeviceRequest,
) -> Result<impl IntoResponse, AppError> {
    let venue = super::admin::load_venue(state.db(), &request.screen.venue_id).await?;
    Ok(axum::Json(DeviceSelf {
        screen_id: request.screen.id,
        venue: venue.id,
        timezone: venue.timezone,
        server_key_id: state.signer().key_id.clone(),
        server_public_key_pem: state.signer().public_key_pem.clone(),
    }))
}

/// Query of the manifest fetch.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestQuery {
    /// Seconds to wait for a newer manifest when the one named by
    /// `If-None-Match` is still current (0: answer at once).
    #[serde(default)]
    wait: u64,
}

/// `GET /api/v1/device/manifest[?wait=SECONDS]`: the DSSE envelope exactly
/// as signed. `ETag` is the SHA-256 of the envelope bytes; with a matching
/// `If-None-Match` the answer is 304, after waiting up to `wait` seconds
/// for a new publication (returned as soon as it exists).
pub async fn manifest(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ManifestQuery>,
    headers: HeaderMap,
    request: DeviceRequest,
) -> Result<Response, AppError> {
    let screen_id = request.screen.id;
    let known = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().trim_matches('"').to_owned());
    let wait = Duration::from_secs(query.wait.min(MAX_WAIT_SECS));
    let deadline = tokio::time::Instant::now() + wait;
    // Subscribe before the first read, so a publication between the read
    // and the wait is not missed.
    let mut published = state.notifier().subscribe(&screen_id);
    let mut shutting_down = state.shutdown_signal();
    loop {
        let latest = publish::latest_publication(state.db(), &screen_id).await?;
        if let Some((version, envelope, etag)) = &latest
            && known.as_deref() != Some(etag.as_str())
        {
            let mut response = (StatusCode::OK, envelope.clone()).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            if let Ok(value) = HeaderValue::from_str(&format!("\"{etag}\"")) {
                headers.insert(header::ETAG, value);
            }
            headers.insert("x-ekran-manifest-version", HeaderValue::from(*version));
            return Ok(response);
        }
        let now = tokio::time::Instant::now();
        if now >= deadline || *shutting_down.borrow() {
            return match latest {
                Some((_, _, etag)) => {
                    let mut response = StatusCode::NOT_MODIFIED.into_response();
                    if let Ok(value) = HeaderValue::from_str(&format!("\"{etag}\"")) {
                        response.headers_mut().insert(header::ETAG, value);
                    }
                    Ok(response)
                }
                None => Err(AppError::NotFound(format!(
                    "no manifest has been published for screen {screen_id} yet"
                ))),
            };
        }
        let slice = (deadline - now).min(RECHECK_EVERY);
        tokio::select! {
            _ = published.changed() => {}
            () = tokio::time::sleep(slice) => {}
            _ = shutting_down.changed() => {}
        }
    }
}

/// `POST /api/v1/device/pop`: a JSON array of proof-of-play records.
pub async fn upload_pop(
    State(state): State<AppState>,
    request: PendingDeviceRequest,
) -> Result<impl IntoResponse, AppError> {
    let ack = ingest::ingest(&state, &request.screen, &request.body, request.signature).await?;
    Ok(axum::Json(ack))
}

/// `POST /api/v1/device/heartbeat`: a JSON object with the box's status
/// (version, manifest version, current item, decoder, frames, cache, uptime,
/// stale flag, last error…); stored as the screen's latest status. Answers
/// 200 with a [`HeartbeatAnswer`] (whether a screenshot is wanted).
pub async fn heartbeat(
    State(state): State<AppState>,
    request: DeviceRequest,
) -> Result<impl IntoResponse, AppError> {
    if request.body.len() > MAX_HEARTBEAT_BYTES {
        return Err(AppError::PayloadTooLarge(format!(
            "heartbeat is over {MAX_HEARTBEAT_BYTES} bytes"
        )));
    }
    let status: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&request.body)
        .map_err(|e| AppError::BadRequest(format!("heartbeat must be a JSON object: {e}")))?;
    let json = serde_json::to_string(&status).map_err(AppError::internal)?;
    sqlx::query(
        "INSERT INTO heartbeats (screen_id, received_at_ms, status_json) VALUES ($1, $2, $3) \
         ON CONFLICT (screen_id) DO UPDATE SET received_at_ms = excluded.received_at_ms, status_json = excluded.status_json",
    )
    .bind(&request.screen.id)
    .bind(now_ms())
    .bind(&json)
    .execute(state.db().pool())
    .await?;
    let screenshot_requested =
        crate::server::screenshots::is_requested(state.db(), &request.screen.id).await?;
    Ok(axum::Json(HeartbeatAnswer {
        screenshot_requested,
    }))
}

/// Answer to a heartbeat: what the server wants from the box next.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeartbeatAnswer {
    /// An operator asked for a screenshot: upload one with `PUT /api/v1/device/screenshot`.
    pub screenshot_requested: bool,
}

/// `PUT /api/v1/device/screenshot`: a PNG (at most 4 MiB) of what the
/// screen shows, stored as its latest screenshot; clears the request.
pub async fn upload_screenshot(
    State(state): State<AppState>,
    request: DeviceRequest,
) -> Result<impl IntoResponse, AppError> {
    crate::server::screenshots::store(state.db(), &request.screen.id, &request.body).await?;
    Ok(StatusCode::NO_CONTENT)
}
