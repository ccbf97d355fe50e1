//! The HTTP API: one router, handlers grouped by resource. People's
//! endpoints live under `/api/v1` with bearer tokens; the device endpoints
//! under `/api/v1/device` with signed requests. The OpenAPI document
//! (`openapi.yaml` beside this file) is served at `/api/v1/openapi.yaml`.
//! The web dashboard's pages ([`super::web`]) are merged into the same router.

pub mod admin;
pub mod content;
pub mod device;
pub mod media;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post, put};

use super::AppState;
use super::error::AppError;

/// The API description, kept by hand next to the handlers.
pub const OPENAPI_YAML: &str = include_str!("openapi.yaml");

/// Longest id of a venue, group, screen or campaign.
pub const MAX_ID_LEN: usize = 64;

/// All routes with their state.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/v1/openapi.yaml", get(openapi))
        .route(
            "/api/v1/tokens",
            get(admin::list_tokens).post(admin::create_token),
        )
        .route("/api/v1/tokens/{id}", delete(admin::revoke_token))
        .route(
            "/api/v1/venues",
            get(admin::list_venues).post(admin::create_venue),
        )
        .route(
            "/api/v1/venues/{id}",
            get(admin::get_venue)
                .put(admin::update_venue)
                .delete(admin::delete_venue),
        )
        .route(
            "/api/v1/groups",
            get(admin::list_groups).post(admin::create_group),
        )
        .route("/api/v1/groups/{id}", delete(admin::delete_group))
        .route("/api/v1/screens", get(admin::list_screens))
        .route(
            "/api/v1/screens/{id}",
            get(admin::get_screen)
                .patch(admin::update_screen)
                .delete(admin::delete_screen),
        )
        .route(
            "/api/v1/screens/{id}/screenshot-request",
            post(admin::request_screenshot),
        )
        .route("/api/v1/screens/{id}/screenshot", get(admin::screenshot))
        .route(
            "/api/v1/campaigns",
            get(admin::list_campaigns).post(admin::create_campaign),
        )
        // The upload streams to disk under its own limit (`max_upload_bytes`).
        .route(
            "/api/v1/media",
            post(media::upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/api/v1/media/{sha256}", get(media::download))
        .route(
            "/api/v1/playlists",
            get(content::list_playlists).post(content::publish_playlist),
        )
        .route(
            "/api/v1/screens/{id}/manifest",
            get(content::screen_manifest),
        )
        .route("/api/v1/reports/airtime", get(content::airtime))
        .route("/api/v1/audit/findings", get(content::findings))
        .route("/api/v1/audit/export", get(content::audit_export))
        .route("/api/v1/enroll", post(device::enroll))
        .route("/api/v1/pairings/{code}/approve", post(device::approve))
        .route("/api/v1/device/self", get(device::whoami))
        .route("/api/v1/device/manifest", get(device::manifest))
        .route("/api/v1/device/pop", post(device::upload_pop))
        .route("/api/v1/device/heartbeat", post(device::heartbeat))
        .route("/api/v1/device/screenshot", put(device::upload_screenshot))
        .route("/metrics", get(content::metrics))
        // The web dashboard at `/` (HTML pages; its POSTs pass the CSRF check).
        .merge(super::web::router())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            super::web::csrf_guard,
        ))
        .layer(axum::middleware::from_fn(close_after_refused_body))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .with_state(state)
}

async fn healthz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<impl IntoResponse, AppError> {
    // Touch the database: a server whose database is gone is not healthy.
    sqlx::query("SELECT 1").execute(state.db().pool()).await?;
    Ok(axum::Json(serde_json::json!({ "status": "ok" })))
}

/// A request refused before its body was read (oversize, wrong type, no
/// rights) leaves unread bytes on the connection; hyper then drops the
/// connection, and a client reusing it would see a reset instead of the
/// next answer. Saying `Connection: close` on such refusals lets it know.
async fn close_after_refused_body(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let has_body = request.headers().contains_key(header::TRANSFER_ENCODING)
        || request
            .headers()
            .get(header::CONTENT_LENGTH)
            .is_some_and(|length| length != "0");
    let mut response = next.run(request).await;
    if has_body && !response.status().is_success() {
        response.headers_mut().insert(
            header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    response
}

/// Counts every answered request for `/metrics`.
async fn count_requests(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let response = next.run(request).await;
    state.metrics().request(response.status().as_u16());
    response
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/yaml")], OPENAPI_YAML)
}

async fn not_found(uri: axum::http::Uri) -> AppError {
    AppError::NotFound(format!("no such endpoint: {}", uri.path()))
}

/// Checks a client-chosen id (venue, group, screen, campaign): 1–64
/// characters of `a-z A-Z 0-9 - _ .`, not starting with a dot, so ids are
/// safe in URLs, file names and CSV cells.
pub fn validate_id(kind: &str, id: &str) -> Result<(), AppError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(AppError::BadRequest(format!(
            "invalid {kind} id {id:?}: use 1-{MAX_ID_LEN} characters of letters, digits, '-', '_' and '.', not starting with '.'"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_reject_path_tricks() {
        for good in ["carrefour-kyiv-1", "lobby_A", "v1.2"] {
            assert!(validate_id("venue", good).is_ok(), "{good}");
        }
        for bad in ["", "../etc", "a/b", ".hidden", "a b", "é", &"x".repeat(65)] {
            assert!(validate_id("venue", bad).is_err(), "{bad}");
        }
    }
}
