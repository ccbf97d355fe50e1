//! People's management endpoints: tokens, venues (with their IANA time
//! zone), screen groups, screens and campaigns.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::validate_id;
use crate::server::AppState;
use crate::server::auth::{self, Admin, Auth, Manager, Role, Viewer};
use crate::server::db::{Db, DbError, now_ms};
use crate::server::error::{ApiJson, AppError};

/// `POST /api/v1/tokens` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    role: Role,
    name: String,
}

pub async fn list_tokens(
    State(state): State<AppState>,
    _auth: Auth<Admin>,
) -> Result<impl IntoResponse, AppError> {
    Ok(axum::Json(auth::list_tokens(state.db()).await?))
}

pub async fn create_token(
    State(state): State<AppState>,
    _auth: Auth<Admin>,
    ApiJson(body): ApiJson<CreateToken>,
) -> Result<impl IntoResponse, AppError> {
    if body.name.trim().is_empty() {
        return Err(AppError::BadRequest("token name must not be empty".into()));
    }
    let token = auth::create_token(state.db(), body.role, body.name.trim()).await?;
    Ok((StatusCode::CREATED, axum::Json(token)))
}

pub async fn revoke_token(
    State(state): State<AppState>,
    _auth: Auth<Admin>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    match auth::revoke_token(state.db(), &id).await? {
        0 => Err(AppError::NotFound(format!(
            "no live token with id or name {id:?}"
        ))),
        _ => Ok(StatusCode::NO_CONTENT),
    }
}

/// A venue as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Venue {
    /// Client-chosen id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// IANA time zone; reports and manifests use it.
    pub timezone: String,
}

/// `POST /api/v1/venues` body; `PUT` takes the same without `id`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VenueBody {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    timezone: String,
}

/// Refuses a time zone name that the IANA database does not know.
pub fn validate_timezone(name: &str) -> Result<(), AppError> {
    jiff::tz::TimeZone::get(name).map(|_| ()).map_err(|_| {
        AppError::BadRequest(format!(
            "unknown time zone {name:?}: use an IANA name such as Europe/Kyiv or UTC"
        ))
    })
}

fn venue_from_row(row: &AnyRow) -> Result<Venue, DbError> {
    Ok(Venue {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        timezone: row.try_get("timezone")?,
    })
}

/// Loads a venue or answers 404.
pub async fn load_venue(db: &Db, id: &str) -> Result<Venue, AppError> {
    let row = sqlx::query("SELECT id, name, timezone FROM venues WHERE id = $1")
        .bind(id)
        .fetch_optional(db.pool())
        .await?
        .ok_or_else(|| AppError::NotFound(format!("unknown venue {id:?}")))?;
    Ok(venue_from_row(&row)?)
}

pub async fn list_venues(
    State(state): State<AppState>,
    _auth: Auth<Viewer>,
) -> Result<impl IntoResponse, AppError> {
    let rows = sqlx::query("SELECT id, name, timezone FROM venues ORDER BY id")
        .fetch_all(state.db().pool())
        .await?;
    let venues = rows
        .iter()
        .map(venue_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(axum::Json(venues))
}

pub async fn get_venue(
    State(state): State<AppState>,
    _auth: Auth<Viewer>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    Ok(axum::Json(load_venue(state.db(), &id).await?))
}

pub async fn create_venue(
    State(state): State<AppState>,
    _auth: Auth<Admin>,
    ApiJson(body): ApiJson<VenueBody>,
) -> Result<impl IntoResponse, AppError> {
    let id = body
        .id
        .ok_or_else(|| AppError::BadRequest("missing field `id`".into()))?;
    let venue = insert_venue(state.db(), &id, body.name.as_deref(), &body.timezone).await?;
    Ok((StatusCode::CREATED, axum::Json(venue)))
}

/// Creates a venue after checking its id and time zone; `name` defaults to
/// the id. An existing id is a conflict. The API and the dashboard both
/// create venues through here.
pub(crate) async fn insert_venue(
    db: &Db,
    id: &str,
    name: Option<&str>,
    timezone: &str,
) -> Result<Venue, AppError> {
    validate_id("venue", id)?;
    validate_timezone(timezone)?;
    let name = name.unwrap_or(id).to_owned();
    let inserted = sqlx::query(
        "INSERT INTO venues (id, name, timezone, created_at_ms) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(&name)
    .bind(timezone)
    .bind(now_ms())
    .execute(db.pool())
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(AppError::Conflict(format!("venue {id:?} already exists")));
    }
    tracing::info!(venue = id, timezone, "venue created");
    Ok(Venue {
        id: id.to_owned(),
        name,
        timezone: timezone.to_owned(),
    })
}

pub async fn update_venue(
    State(state): State<AppState>,
    _auth: Auth<Admin>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<VenueBody>,
) -> Result<impl IntoResponse, AppError> {
    if body.id.as_deref().is_some_and(|body_id| body_id != id) {
        return Err(AppError::BadRequest(
            "a venue's id cannot be changed".into(),
        ));
    }
    let venue = change_venue(state.db(), &id, body.name, &body.timezone).await?;
    Ok(axum::Json(venue))
}

/// Sets a venue's time zone and (when given) its name, after checking the
/// zone; an unknown venue is a 404.
pub(crate) async fn change_venue(
    db: &Db,
    id: &str,
    name: Option<String>,
    timezone: &str,
) -> Result<Venue, AppError> {
    validate_timezone(timezone)?;
    let venue = load_venue(db, id).await?;
    let name = name.unwrap_or(venue.name);
    sqlx::query("UPDATE venues SET name = $1, timezone = $2 WHERE id = $3")
        .bind(&name)
        .bind(timezone)
        .bind(id)
        .execute(db.pool())
        .await?;
    tracing::info!(venue = id, timezone, "venue updated");
    Ok(Venue {
        id: id.to_owned(),
        name,
        timezone: timezone.to_owned(),
    })
}

pub async fn delete_venue(
    State(state): State<AppState>,
    _auth: Auth<Admin>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    remove_venue(state.db(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a venue that has no screens; one with screens is a conflict
/// naming them (move or delete them first).
pub(crate) async fn remove_venue(db: &Db, id: &str) -> Result<(), AppError> {
    load_venue(db, id).await?;
    let screens = sqlx::query("SELECT id FROM screens WHERE venue_id = $1 ORDER BY id")
        .bind(id)
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(|row| row.try_get::<String, _>("id"))
        .collect::<Result<Vec<_>, _>>()?;
    if !screens.is_empty() {
        return Err(AppError::Conflict(format!(
            "venue {id:?} still has {} screen(s): {}; move or delete them first",
            screens.len(),
            screens.join(", ")
        )));
    }
    sqlx::query("DELETE FROM venues WHERE id = $1")
        .bind(id)
        .execute(db.pool())
        .await?;
    tracing::info!(venue = id, "venue deleted");
    Ok(())
}

/// A screen group as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Group {
    /// Client-chosen id; playlists target it.
    pub id: String,
    /// Display name.
    pub name: String,
}

/// `POST /api/v1/groups` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupBody {
    id: String,
    #[serde(default)]
    name: Option<String>,
}

pub async fn list_groups(
    State(state): State<AppState>,
    _auth: Auth<Viewer>,
) -> Result<impl IntoResponse, AppError> {
    let groups = list_id_names(state.db(), "screen_groups")
        .await?
        .into_iter()
        .map(|(id, name)| Group { id, name })
        .collect::<Vec<_>>();
    Ok(axum::Json(groups))
}

/// Creates a group if it does not exist yet; returns whether it was created.
pub async fn ensure_group(db: &Db, id: &str, name: &str) -> Result<bool, AppError> {
    validate_id("group", id)?;
    insert_id_name(db, "screen_groups", id, name).await
}

pub async fn create_group(
    State(state): State<AppState>,
    _auth: Auth<Admin>,
    ApiJson(body): ApiJson<GroupBody>,
) -> Result<impl IntoResponse, AppError> {
    let name = body.name.unwrap_or_else(|| body.id.clone());
    if !ensure_group(state.db(), &body.id, &name).await? {
        return Err(AppError::Conflict(format!(
            "group {:?} already exists",
            body.id
        )));
    }
    Ok((StatusCode::CREATED, axum::Json(Group { id: body.id, name })))
}

pub async fn delete_group(
    State(state): State<AppState>,
    _auth: Auth<Admin>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let result = sqlx::query("DELETE FROM screen_groups WHERE id = $1")
        .bind(&id)
        .execute(state.db().pool())
        .await?;
    if result.rows_affected() == 0 {
        return Err(AppError::NotFound(format!("unknown group {id:?}")));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// A screen as the API shows it, with its latest heartbeat.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Screen {
    /// Server-assigned or operator-chosen id; manifests and PoP records name it.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Venue it stands in.
    pub venue: String,
    /// Groups it belongs to.
    pub groups: Vec<String>,
    /// Key id (hex SHA-256 of the SPKI DER) of its enrolled key.
    pub key_id: String,
    /// Last manifest version published to it (0: none yet).
    pub manifest_version: u64,
    /// End of its contiguous verified proof-of-play chain.
    pub pop_acked_seq: u64,
    /// When its last heartbeat arrived, UTC ms.
    pub last_heartbeat_ms: Option<i64>,
    /// Its last heartbeat as sent.
    pub status: Option<serde_json::Value>,
}

/// Loads screens (one, or all when `id` is `None`) with groups and heartbeat.
pub async fn load_screens(db: &Db, id: Option<&str>) -> Result<Vec<Screen>, AppError> {
    let rows = sqlx::query(
        "SELECT s.id, s.name, s.venue_id, s.key_id, s.manifest_version, s.pop_acked_seq, \
         h.received_at_ms, h.status_json \
         FROM screens s LEFT JOIN heartbeats h ON h.screen_id = s.id \
         WHERE ($1 = '' OR s.id = $1) ORDER BY s.id",
    )
    .bind(id.unwrap_or(""))
    .fetch_all(db.pool())
    .await?;
    let members = sqlx::query(
        "SELECT screen_id, group_id FROM screen_group_members WHERE ($1 = '' OR screen_id = $1) ORDER BY group_id",
    )
    .bind(id.unwrap_or(""))
    .fetch_all(db.pool())
    .await?;
    let mut screens = Vec::with_capacity(rows.len());
    for row in &rows {
        let screen_id: String = row.try_get("id")?;
        let groups = members
            .iter()
            .filter(|m| m.try_get::<String, _>("screen_id").ok().as_deref() == Some(&screen_id))
            .map(|m| m.try_get("group_id"))
            .collect::<Result<Vec<String>, _>>()?;
        let status: Option<String> = row.try_get("status_json")?;
        screens.push(Screen {
            name: row.try_get("name")?,
            venue: row.try_get("venue_id")?,
            groups,
            key_id: row.try_get("key_id")?,
            manifest_version: crate::server::db::get_u64(row, "manifest_version")?,
            pop_acked_seq: crate::server::db::get_u64(row, "pop_acked_seq")?,
            last_heartbeat_ms: row.try_get("received_at_ms")?,
            status: status.and_then(|json| serde_json::from_str(&json).ok()),
            id: screen_id,
        });
    }
    Ok(screens)
}

pub async fn list_screens(
    State(state): State<AppState>,
    _auth: Auth<Viewer>,
) -> Result<impl IntoResponse, AppError> {
    Ok(axum::Json(load_screens(state.db(), None).await?))
}

pub async fn get_screen(
    State(state): State<AppState>,
    _auth: Auth<Viewer>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let screen = load_screens(state.db(), Some(&id))
        .await?
        .pop()
        .ok_or_else(|| AppError::NotFound(format!("unknown screen {id:?}")))?;
    Ok(axum::Json(screen))
}

/// `PATCH /api/v1/screens/{id}` body: fields left out stay as they are.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScreenPatch {
    /// New display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Venue to move the screen to (must exist).
    #[serde(default)]
    pub venue: Option<String>,
    /// Replaces the group list; unknown groups are created.
    #[serde(default)]
    pub groups: Option<Vec<String>>,
}

pub async fn update_screen(
    State(state): State<AppState>,
    _auth: Auth<Admin>,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<ScreenPatch>,
) -> Result<impl IntoResponse, AppError> {
    Ok(axum::Json(patch_screen(&state, &id, &patch).await?))
}

/// Applies a [`ScreenPatch`]: everything is checked (screen, venue, group
/// ids) before anything is stored, then the screen's manifest is
/// recompiled if its venue or groups changed. The API's `PATCH` and the
/// dashboard's venue page both go through here.
pub(crate) async fn patch_screen(
    state: &AppState,
    id: &str,
    patch: &ScreenPatch,
) -> Result<Screen, AppError> {
    let db = state.db();
    if load_screens(db, Some(id)).await?.is_empty() {
        return Err(AppError::NotFound(format!("unknown screen {id:?}")));
    }
    if let Some(venue) = &patch.venue {
        load_venue(db, venue).await?;
    }
    for group in patch.groups.iter().flatten() {
        validate_id("group", group)?;
    }
    for group in patch.groups.iter().flatten() {
        ensure_group(db, group, group).await?;
    }
    let mut tx = db.begin_write().await?;
    if let Some(name) = &patch.name {
        sqlx::query("UPDATE screens SET name = $1 WHERE id = $2")
            .bind(name)
            .bind(id)
            .execute(&mut *tx.tx)
            .await?;
    }
    if let Some(venue) = &patch.venue {
        sqlx::query("UPDATE screens SET venue_id = $1 WHERE id = $2")
            .bind(venue)
            .bind(id)
            .execute(&mut *tx.tx)
            .await?;
    }
    if let Some(groups) = &patch.groups {
        set_screen_groups(&mut tx, id, groups).await?;
    }
    tx.commit().await?;
    tracing::info!(screen = id, venue = ?patch.venue, groups = ?patch.groups, "screen updated");
    if patch.venue.is_some() || patch.groups.is_some() {
        // What the screen should play may have changed with its venue or groups.
        crate::server::publish::recompile_screen(state, id).await?;
    }
    load_screens(db, Some(id))
        .await?
        .pop()
        .ok_or_else(|| AppError::NotFound(format!("unknown screen {id:?}")))
}

/// Replaces a screen's group memberships inside a write transaction.
pub async fn set_screen_groups(
    tx: &mut crate::server::db::WriteTx,
    screen_id: &str,
    groups: &[String],
) -> Result<(), AppError> {
    sqlx::query("DELETE FROM screen_group_members WHERE screen_id = $1")
        .bind(screen_id)
        .execute(&mut *tx.tx)
        .await?;
    for group in groups {
        sqlx::query(
            "INSERT INTO screen_group_members (screen_id, group_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(screen_id)
        .bind(group)
        .execute(&mut *tx.tx)
        .await?;
    }
    Ok(())
}

pub async fn delete_screen(
    State(state): State<AppState>,
    _auth: Auth<Admin>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let result = sqlx::query("DELETE FROM screens WHERE id = $1")
        .bind(&id)
        .execute(state.db().pool())
        .await?;
    if result.rows_affected() == 0 {
        return Err(AppError::NotFound(format!("unknown screen {id:?}")));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// A campaign as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Campaign {
    /// Id; manifest items and PoP records carry it.
    pub id: String,
    /// Display name.
    pub name: String,
}

/// `POST /api/v1/campaigns` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignBody {
    id: String,
    #[serde(default)]
    name: Option<String>,
}

pub async fn list_campaigns(
    State(state): State<AppState>,
    _auth: Auth<Viewer>,
) -> Result<impl IntoResponse, AppError> {
    let campaigns = list_id_names(state.db(), "campaigns")
        .await?
        .into_iter()
        .map(|(id, name)| Campaign { id, name })
        .collect::<Vec<_>>();
    Ok(axum::Json(campaigns))
}

/// Creates a campaign if it does not exist; returns whether it was created.
pub async fn ensure_campaign(db: &Db, id: &str, name: &str) -> Result<bool, AppError> {
    validate_id("campaign", id)?;
    insert_id_name(db, "campaigns", id, name).await
}

pub async fn create_campaign(
    State(state): State<AppState>,
    _auth: Auth<Manager>,
    ApiJson(body): ApiJson<CampaignBody>,
) -> Result<impl IntoResponse, AppError> {
    let name = body.name.unwrap_or_else(|| body.id.clone());
    if !ensure_campaign(state.db(), &body.id, &name).await? {
        return Err(AppError::Conflict(format!(
            "campaign {:?} already exists",
            body.id
        )));
    }
    Ok((
        StatusCode::CREATED,
        axum::Json(Campaign { id: body.id, name }),
    ))
}

/// `(id, name)` rows of one of this module's id/name tables (screen groups,
/// campaigns), ordered by id. `table` is always a constant, never input.
async fn list_id_names(db: &Db, table: &'static str) -> Result<Vec<(String, String)>, AppError> {
    let rows = sqlx::query(&format!("SELECT id, name FROM {table} ORDER BY id"))
        .fetch_all(db.pool())
        .await?;
    let pairs = rows
        .iter()
        .map(|row| Ok((row.try_get("id")?, row.try_get("name")?)))
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(pairs)
}

/// Inserts `(id, name)` into an id/name table unless the id exists; returns
/// whether it was inserted. `table` is always a constant, never input.
async fn insert_id_name(
    db: &Db,
    table: &'static str,
    id: &str,
    name: &str,
) -> Result<bool, AppError> {
    let result = sqlx::query(&format!(
        "INSERT INTO {table} (id, name, created_at_ms) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING"
    ))
    .bind(id)
    .bind(name)
    .bind(now_ms())
    .execute(db.pool())
    .await?;
    Ok(result.rows_affected() == 1)
}

/// `POST /api/v1/screens/{id}/screenshot-request` (manager): the box
/// uploads a screenshot after its next heartbeat.
pub async fn request_screenshot(
    State(state): State<AppState>,
    _auth: Auth<Manager>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let requested_at_ms = crate::server::screenshots::request(state.db(), &id).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(serde_json::json!({ "screen_id": id, "requested_at_ms": requested_at_ms })),
    ))
}

/// `GET /api/v1/screens/{id}/screenshot` (manager): the latest screenshot
/// as `image/png`, its arrival time in `X-Ekran-Taken-At` (RFC 3339).
pub async fn screenshot(
    State(state): State<AppState>,
    _auth: Auth<Manager>,
    Path(id): Path<String>,
) -> Result<axum::response::Response, AppError> {
    let shot = crate::server::screenshots::load(state.db(), &id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no screenshot of screen {id:?} yet")))?;
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "image/png".to_owned()),
            (axum::http::header::CACHE_CONTROL, "no-store".to_owned()),
            (
                axum::http::HeaderName::from_static("x-ekran-taken-at"),
                shot.taken_at.to_string(),
            ),
        ],
        shot.png,
    )
        .into_response())
}
