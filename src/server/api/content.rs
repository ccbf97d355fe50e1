//! Content and reporting endpoints: publishing playlists, inspecting what a
//! screen was sent, airtime reports (JSON/CSV), audit findings, metrics.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::server::AppState;
use crate::server::auth::{Auth, Manager, Viewer};
use crate::server::db::{get_u64, now_ms};
use crate::server::error::{ApiJson, ApiQuery, AppError};
use crate::server::metrics::FleetGauges;
use crate::server::publish::{self, PublishRequest};
use crate::server::reports::{self, AirtimeQuery};

/// `POST /api/v1/playlists` (manager): publish a playlist.
pub async fn publish_playlist(
    State(state): State<AppState>,
    auth: Auth<Manager>,
    ApiJson(request): ApiJson<PublishRequest>,
) -> Result<Response, AppError> {
    let result = publish::publish_playlist(&state, &auth.caller.name, request).await?;
    Ok((StatusCode::CREATED, axum::Json(result)).into_response())
}

/// A stored playlist as listed.
#[derive(Debug, Serialize, Deserialize)]
pub struct PlaylistSummary {
    /// Campaign id.
    pub campaign_id: String,
    /// File name it was pushed as.
    pub file_name: String,
    /// Last push, UTC ms.
    pub updated_at_ms: i64,
    /// Token name that pushed it.
    pub updated_by: String,
}

pub async fn list_playlists(
    State(state): State<AppState>,
    _auth: Auth<Viewer>,
) -> Result<impl IntoResponse, AppError> {
    let rows = sqlx::query("SELECT campaign_id, file_name, updated_at_ms, updated_by FROM playlists ORDER BY campaign_id")
        .fetch_all(state.db().pool())
        .await?;
    let playlists = rows
        .iter()
        .map(|row| {
            Ok(PlaylistSummary {
                campaign_id: row.try_get("campaign_id")?,
                file_name: row.try_get("file_name")?,
                updated_at_ms: row.try_get("updated_at_ms")?,
                updated_by: row.try_get("updated_by")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(axum::Json(playlists))
}

/// `GET /api/v1/screens/{id}/manifest` (viewer): the latest envelope a screen was given.
pub async fn screen_manifest(
    State(state): State<AppState>,
    _auth: Auth<Viewer>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let (version, envelope, _) = publish::latest_publication(state.db(), &id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no manifest published for screen {id:?}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (
                "x-ekran-manifest-version"
                    .parse()
                    .map_err(AppError::internal)?,
                version.to_string(),
            ),
        ],
        envelope,
    )
        .into_response())
}

/// Query of the airtime report.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportParams {
    from: jiff::civil::Date,
    to: jiff::civil::Date,
    #[serde(default)]
    venue: Option<String>,
    #[serde(default)]
    campaign: Option<String>,
    /// `json` (default) or `csv`.
    #[serde(default)]
    format: Option<String>,
}

/// `GET /api/v1/reports/airtime?from=DATE&to=DATE[&venue=][&campaign=][&format=json|csv]` (viewer).
pub async fn airtime(
    State(state): State<AppState>,
    _auth: Auth<Viewer>,
    ApiQuery(params): ApiQuery<ReportParams>,
) -> Result<Response, AppError> {
    let query = AirtimeQuery {
        from: params.from,
        to: params.to,
        venue: params.venue,
        campaign: params.campaign,
    };
    let rows = reports::airtime(state.db(), &query).await?;
    match params.format.as_deref().unwrap_or("json") {
        "json" => Ok(axum::Json(rows).into_response()),
        "csv" => Ok((
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            reports::to_csv(&rows)?,
        )
            .into_response()),
        other => Err(AppError::BadRequest(format!(
            "unknown report format {other:?}: use json or csv"
        ))),
    }
}

/// An audit finding as listed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Finding {
    /// Screen.
    pub screen_id: String,
    /// `gap`, `fork`, `broken_link`, `bad_hash`, `bad_signature`.
    pub kind: String,
    /// The seq it concerns.
    pub seq: u64,
    /// Description.
    pub detail: String,
    /// When it was raised, UTC ms.
    pub created_at_ms: i64,
    /// When it was resolved (gaps that filled), if it was.
    pub resolved_at_ms: Option<i64>,
}

/// Query of the findings list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindingParams {
    #[serde(default)]
    screen: Option<String>,
}

/// `GET /api/v1/audit/findings[?screen=ID]` (viewer).
pub async fn findings(
    State(state): State<AppState>,
    _auth: Auth<Viewer>,
    ApiQuery(params): ApiQuery<FindingParams>,
) -> Result<impl IntoResponse, AppError> {
    let rows = sqlx::query(
        "SELECT screen_id, kind, seq, detail, created_at_ms, resolved_at_ms FROM audit_findings \
         WHERE ($1 = '' OR screen_id = $1) ORDER BY screen_id, seq, kind",
    )
    .bind(params.screen.as_deref().unwrap_or(""))
    .fetch_all(state.db().pool())
    .await?;
    let findings = rows
        .iter()
        .map(|row| {
            Ok(Finding {
                screen_id: row.try_get("screen_id")?,
                kind: row.try_get("kind")?,
                seq: get_u64(row, "seq")?,
                detail: row.try_get("detail")?,
                created_at_ms: row.try_get("created_at_ms")?,
                resolved_at_ms: row.try_get("resolved_at_ms")?,
            })
        })
        .collect::<Result<Vec<_>, AppError>>()?;
    Ok(axum::Json(findings))
}

/// A screen counts as online when it sent a heartbeat this recently.
const ONLINE_WITHIN_MS: i64 = 5 * 60 * 1000;

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, AppError> {
    let screens: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM screens")
        .fetch_one(state.db().pool())
        .await?;
    let recent = sqlx::query("SELECT status_json FROM heartbeats WHERE received_at_ms > $1")
        .bind(now_ms() - ONLINE_WITHIN_MS)
        .fetch_all(state.db().pool())
        .await?;
    let stale = recent
        .iter()
        .filter(|row| {
            row.try_get::<String, _>("status_json")
                .ok()
                .and_then(|json| serde_json::from_str::<serde_json::Value>(&json).ok())
                .is_some_and(|status| status["stale"] == serde_json::Value::Bool(true))
        })
        .count();
    let gauges = FleetGauges {
        screens: u64::try_from(screens).unwrap_or_default(),
        online: recent.len() as u64,
        stale: stale as u64,
    };
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics().render(gauges),
    ))
}

/// Query of the auditor's export.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportParams {
    from: jiff::civil::Date,
    to: jiff::civil::Date,
    #[serde(default)]
    campaign: Option<String>,
}

/// `GET /api/v1/audit/export?from=DATE&to=DATE[&campaign=NAME]` (viewer):
/// signed records, chains and screen keys for `ekran pop verify`.
pub async fn audit_export(
    State(state): State<AppState>,
    _auth: Auth<Viewer>,
    ApiQuery(params): ApiQuery<ExportParams>,
) -> Result<Response, AppError> {
    let bundle = crate::server::audit::export(
        state.db(),
        params.campaign.as_deref(),
        params.from,
        params.to,
    )
    .await?;
    let file_name = format!("ekran-pop-{}-{}.json", params.from, params.to);
    Ok((
        [(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{file_name}\""),
        )],
        axum::Json(bundle),
    )
        .into_response())
}
