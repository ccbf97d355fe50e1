//! Screenshots on request: an operator asks (`POST
//! /api/v1/screens/{id}/screenshot-request`), the box learns it from its
//! next heartbeat's answer (`{"screenshot_requested": true}`), uploads a
//! low-resolution PNG of exactly what it shows (`PUT
//! /api/v1/device/screenshot`, signed), and the latest one is kept per
//! screen with the time it arrived, clearing the request.
//!
//! The PNG is stored base64-encoded in a TEXT column: one query code path
//! over both backends (the schema uses only BIGINT and TEXT), and a
//! screenshot is small (at most [`MAX_SCREENSHOT_BYTES`]).

use base64::Engine;
use sqlx::Row;

use super::db::{Db, now_ms};
use super::error::AppError;

/// Largest screenshot accepted: 4 MiB.
pub const MAX_SCREENSHOT_BYTES: usize = 4 * 1024 * 1024;

/// The eight bytes every PNG file starts with.
pub const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];

/// A stored screenshot.
#[derive(Debug, Clone)]
pub struct Screenshot {
    /// The PNG bytes.
    pub png: Vec<u8>,
    /// When it arrived.
    pub taken_at: jiff::Timestamp,
}

/// What the fleet page shows about a screen's screenshots.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ScreenshotState {
    /// When a screenshot was asked for and not yet delivered.
    pub requested_at_ms: Option<i64>,
    /// When the latest screenshot arrived.
    pub taken_at_ms: Option<i64>,
}

/// Marks a screenshot as wanted from `screen_id`; 404 for an unknown screen.
pub async fn request(db: &Db, screen_id: &str) -> Result<i64, AppError> {
    let exists: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM screens WHERE id = $1")
        .bind(screen_id)
        .fetch_one(db.pool())
        .await?;
    if exists == 0 {
        return Err(AppError::NotFound(format!("unknown screen {screen_id:?}")));
    }
    let now = now_ms();
    sqlx::query(
        "INSERT INTO screen_screenshots (screen_id, requested_at_ms) VALUES ($1, $2) \
         ON CONFLICT (screen_id) DO UPDATE SET requested_at_ms = excluded.requested_at_ms",
    )
    .bind(screen_id)
    .bind(now)
    .execute(db.pool())
    .await?;
    tracing::info!(screen = screen_id, "screenshot requested");
    Ok(now)
}

/// Whether a screenshot is wanted from `screen_id`.
pub async fn is_requested(db: &Db, screen_id: &str) -> Result<bool, AppError> {
    let requested: Option<Option<i64>> =
        sqlx::query_scalar("SELECT requested_at_ms FROM screen_screenshots WHERE screen_id = $1")
            .bind(screen_id)
            .fetch_optional(db.pool())
            .await?;
    Ok(requested.flatten().is_some())
}

/// Checks and stores an uploaded screenshot as the screen's latest, clearing its request.
pub async fn store(db: &Db, screen_id: &str, png: &[u8]) -> Result<jiff::Timestamp, AppError> {
    if png.len() > MAX_SCREENSHOT_BYTES {
        return Err(AppError::PayloadTooLarge(format!(
            "screenshot is {} bytes, over the limit of {MAX_SCREENSHOT_BYTES}",
            png.len()
        )));
    }
    if !png.starts_with(&PNG_SIGNATURE) {
        return Err(AppError::UnsupportedMediaType(
            "a screenshot must be a PNG image (its bytes do not start with the PNG signature)"
                .into(),
        ));
    }
    let taken_at = jiff::Timestamp::now();
    sqlx::query(
        "INSERT INTO screen_screenshots (screen_id, requested_at_ms, png_base64, taken_at_ms) VALUES ($1, NULL, $2, $3) \
         ON CONFLICT (screen_id) DO UPDATE SET requested_at_ms = NULL, png_base64 = excluded.png_base64, taken_at_ms = excluded.taken_at_ms",
    )
    .bind(screen_id)
    .bind(base64::engine::general_purpose::STANDARD.encode(png))
    .bind(taken_at.as_millisecond())
    .execute(db.pool())
    .await?;
    tracing::info!(screen = screen_id, bytes = png.len(), "screenshot stored");
    Ok(taken_at)
}

/// The latest screenshot of `screen_id`, if one arrived.
pub async fn load(db: &Db, screen_id: &str) -> Result<Option<Screenshot>, AppError> {
    let row = sqlx::query(
        "SELECT png_base64, taken_at_ms FROM screen_screenshots WHERE screen_id = $1 AND png_base64 IS NOT NULL",
    )
    .bind(screen_id)
    .fetch_optional(db.pool())
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let encoded: String = row.try_get("png_base64")?;
    let taken_at_ms: i64 = row.try_get("taken_at_ms")?;
    Ok(Some(Screenshot {
        png: base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(AppError::internal)?,
        taken_at: jiff::Timestamp::from_millisecond(taken_at_ms).map_err(AppError::internal)?,
    }))
}

/// Request and arrival times of every screen that has either.
pub async fn states(
    db: &Db,
) -> Result<std::collections::HashMap<String, ScreenshotState>, AppError> {
    let rows =
        sqlx::query("SELECT screen_id, requested_at_ms, taken_at_ms FROM screen_screenshots")
            .fetch_all(db.pool())
            .await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get("screen_id")?,
                ScreenshotState {
                    requested_at_ms: row.try_get("requested_at_ms")?,
                    taken_at_ms: row.try_get("taken_at_ms")?,
                },
            ))
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(AppError::from)
}
