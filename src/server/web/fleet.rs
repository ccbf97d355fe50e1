//! The operator's pages (admin): the fleet (every screen's venue, health
//! from its latest heartbeat, screenshot on request), pending pairing codes
//! to approve, and people's tokens.

use axum::Form;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use sqlx::Row;

use super::{OrPage, Web, WebError};
use crate::server::api::admin::load_screens;
use crate::server::auth::{self, Role};
use crate::server::db::now_ms;
use crate::server::device::{self, Approval};
use crate::server::{publish, screenshots};

/// A screen counts as online when its last heartbeat is this recent (the
/// same rule as the `/metrics` gauge).
pub const ONLINE_WITHIN_MS: i64 = 5 * 60 * 1000;

/// Decoder element names that mean a hardware decoder: V4L2 stateful or
/// stateless (Raspberry Pi, Rockchip…), VA-API, NVDEC, OpenMAX, Apple VT,
/// Windows D3D11/Media Foundation.
const HARDWARE_DECODER_PREFIXES: &[&str] = &[
    "v4l2", "va", "nv", "omx", "vtdec", "d3d11", "mf", "qsv", "msdk",
];

/// Whether a GStreamer decoder element name is a hardware decoder.
pub fn is_hardware_decoder(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    !name.starts_with("avdec")
        && HARDWARE_DECODER_PREFIXES
            .iter()
            .any(|prefix| name.starts_with(prefix))
}

/// One row of the fleet table.
#[derive(Debug, serde::Serialize)]
struct ScreenRow {
    id: String,
    name: String,
    venue: String,
    timezone: String,
    groups: Vec<String>,
    online: bool,
    last_heartbeat_ms: Option<i64>,
    current_item: Option<String>,
    published_version: u64,
    playing_version: Option<u64>,
    stale: bool,
    decoder: Option<String>,
    hardware_decoder: Option<bool>,
    graphics: Option<String>,
    frames_dropped: Option<u64>,
    frames_presented: Option<u64>,
    disk_free_bytes: Option<u64>,
    cache_bytes: Option<u64>,
    last_error: Option<String>,
    agent_version: Option<String>,
    screenshot_requested_ms: Option<i64>,
    screenshot_taken_ms: Option<i64>,
}

/// `GET /fleet` (admin).
pub async fn fleet(web: Web) -> Result<Response, Response> {
    web.require(Role::Admin)?;
    fleet_page(&web).await.map_err(IntoResponse::into_response)
}

async fn fleet_page(web: &Web) -> Result<Response, WebError> {
    let db = web.state.db();
    let screens = load_screens(db, None).await.or_page(web)?;
    let venues = sqlx::query("SELECT id, name, timezone FROM venues ORDER BY id")
        .fetch_all(db.pool())
        .await
        .or_page(web)?;
    let zone_of = |venue: &str| {
        venues
            .iter()
            .find(|row| row.try_get::<String, _>("id").ok().as_deref() == Some(venue))
            .and_then(|row| row.try_get::<String, _>("timezone").ok())
            .unwrap_or_else(|| "UTC".to_owned())
    };
    let shots = screenshots::states(db).await.or_page(web)?;
    let now = now_ms();
    let rows: Vec<ScreenRow> = screens
        .into_iter()
        .map(|screen| {
            let status = screen.status.clone().unwrap_or_default();
            let text = |key: &str| status.get(key).and_then(|v| v.as_str()).map(str::to_owned);
            let number = |key: &str| status.get(key).and_then(serde_json::Value::as_u64);
            let decoder = text("decoder");
            let shot = shots.get(&screen.id).cloned().unwrap_or_default();
            ScreenRow {
                timezone: zone_of(&screen.venue),
                online: screen
                    .last_heartbeat_ms
                    .is_some_and(|at| now - at <= ONLINE_WITHIN_MS),
                last_heartbeat_ms: screen.last_heartbeat_ms,
                current_item: text("current_item"),
                published_version: screen.manifest_version,
                playing_version: number("manifest_version"),
                stale: status.get("stale").and_then(serde_json::Value::as_bool) == Some(true),
                hardware_decoder: decoder.as_deref().map(is_hardware_decoder),
                decoder,
                graphics: text("graphics"),
                frames_dropped: number("frames_dropped"),
                frames_presented: number("frames_presented"),
                disk_free_bytes: number("disk_free_bytes"),
                cache_bytes: number("cache_bytes"),
                last_error: text("last_error"),
                agent_version: text("agent_version"),
                screenshot_requested_ms: shot.requested_at_ms,
                screenshot_taken_ms: shot.taken_at_ms,
                id: screen.id,
                name: screen.name,
                venue: screen.venue,
                groups: screen.groups,
            }
        })
        .collect();
    let pairings = sqlx::query(
        "SELECT code, key_id, created_at_ms, expires_at_ms FROM pairings \
         WHERE used_at_ms IS NULL AND expires_at_ms > $1 ORDER BY created_at_ms",
    )
    .bind(now)
    .fetch_all(db.pool())
    .await
    .or_page(web)?
    .iter()
    .map(|row| {
        Ok(minijinja::context! {
            code => row.try_get::<String, _>("code")?,
            key_id => row.try_get::<String, _>("key_id")?,
            created_at_ms => row.try_get::<i64, _>("created_at_ms")?,
            expires_at_ms => row.try_get::<i64, _>("expires_at_ms")?,
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()
    .or_page(web)?;
    let venue_list = venues
        .iter()
        .map(super::pages::venue_context)
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .or_page(web)?;
    Ok(web.render(
        "fleet.html",
        minijinja::context! {
            screens => rows,
            pairings => pairings,
            venues => venue_list,
            online_minutes => ONLINE_WITHIN_MS / 60_000,
        },
    ))
}

/// The approval form.
#[derive(Debug, Deserialize)]
pub struct ApproveForm {
    code: String,
    venue: String,
    /// Comma- or space-separated group ids.
    #[serde(default)]
    groups: String,
    #[serde(default)]
    screen_id: String,
    #[serde(default)]
    name: String,
}

/// `POST /fleet/approve` (admin): enrolls the box that shows the code.
pub async fn approve(web: Web, Form(form): Form<ApproveForm>) -> Result<Response, Response> {
    web.require(Role::Admin)?;
    let nonempty = |value: &str| Some(value.trim().to_owned()).filter(|v| !v.is_empty());
    let approval = Approval {
        venue: form.venue.trim().to_owned(),
        groups: form
            .groups
            .split([',', ' '])
            .map(str::trim)
            .filter(|group| !group.is_empty())
            .map(str::to_owned)
            .collect(),
        screen_id: nonempty(&form.screen_id),
        name: nonempty(&form.name),
    };
    let screen_id = device::approve(&web.state, form.code.trim(), &approval)
        .await
        .or_page(&web)
        .map_err(IntoResponse::into_response)?;
    publish::recompile_screen(&web.state, &screen_id)
        .await
        .or_page(&web)
        .map_err(IntoResponse::into_response)?;
    Ok(Redirect::to("/fleet").into_response())
}

/// The screenshot-request form.
#[derive(Debug, Deserialize)]
pub struct ScreenshotForm {
    screen: String,
}

/// `POST /fleet/screenshot` (admin): asks the screen for a screenshot.
pub async fn request_screenshot(
    web: Web,
    Form(form): Form<ScreenshotForm>,
) -> Result<Response, Response> {
    web.require(Role::Admin)?;
    screenshots::request(web.state.db(), &form.screen)
        .await
        .or_page(&web)
        .map_err(IntoResponse::into_response)?;
    Ok(Redirect::to(&format!("/fleet#screen-{}", form.screen)).into_response())
}

/// `GET /tokens` (admin).
pub async fn tokens(web: Web) -> Result<Response, Response> {
    web.require(Role::Admin)?;
    tokens_page(&web, None)
        .await
        .map_err(IntoResponse::into_response)
}

async fn tokens_page(web: &Web, created: Option<auth::NewToken>) -> Result<Response, WebError> {
    let tokens = auth::list_tokens(web.state.db()).await.or_page(web)?;
    Ok(web.render(
        "tokens.html",
        minijinja::context! { tokens => tokens, created => created },
    ))
}

/// The new-token form.
#[derive(Debug, Deserialize)]
pub struct TokenForm {
    name: String,
    role: String,
}

/// `POST /tokens` (admin): creates a token and shows its secret once.
pub async fn create_token(web: Web, Form(form): Form<TokenForm>) -> Result<Response, Response> {
    web.require(Role::Admin)?;
    let fail = |status, message: String| WebError::new(&web, status, message).into_response();
    let role: Role = form
        .role
        .parse()
        .map_err(|e: auth::UnknownRole| fail(StatusCode::BAD_REQUEST, e.to_string()))?;
    if form.name.trim().is_empty() {
        return Err(fail(StatusCode::BAD_REQUEST, web.t("tokens-name-required")));
    }
    let created = auth::create_token(web.state.db(), role, form.name.trim())
        .await
        .map_err(|e| fail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    tokens_page(&web, Some(created))
        .await
        .map_err(IntoResponse::into_response)
}

/// The revoke form.
#[derive(Debug, Deserialize)]
pub struct RevokeForm {
    id: String,
}

/// `POST /tokens/revoke` (admin).
pub async fn revoke_token(web: Web, Form(form): Form<RevokeForm>) -> Result<Response, Response> {
    web.require(Role::Admin)?;
    auth::revoke_token(web.state.db(), &form.id)
        .await
        .or_page(&web)
        .map_err(IntoResponse::into_response)?;
    Ok(Redirect::to("/tokens").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoders_are_told_apart() {
        for hardware in ["v4l2slh264dec", "vah264dec", "nvh264dec", "vtdec_hw"] {
            assert!(is_hardware_decoder(hardware), "{hardware}");
        }
        for software in ["avdec_h264", "openh264dec", "vp9dec", "pngdec"] {
            assert!(!is_hardware_decoder(software), "{software}");
        }
    }
}
