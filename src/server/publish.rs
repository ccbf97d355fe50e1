//! Publishing: a pushed playlist is checked, resolved against the media the
//! server holds, stored as its campaign's current playlist, and every
//! screen it targets (now or before) gets a freshly compiled, signed
//! manifest with the next version.
//!
//! Version allocation: `UPDATE screens SET manifest_version =
//! manifest_version + 1 … RETURNING` inside the publishing transaction. On
//! PostgreSQL the row lock serialises concurrent publishers (also across
//! server processes) and `publications`' primary key (screen, version)
//! refuses any duplicate; on SQLite there is one writer. Versions per
//! screen are therefore strictly increasing.
//!
//! Wake-up of long-polling devices: an in-process watch channel per screen;
//! on PostgreSQL each publication also sends `NOTIFY` so the other server
//! processes wake their waiters (see [`listen_for_publications`]).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sqlx::Row;
use tokio::sync::watch;

use super::AppState;
use super::api::media::{MediaInfo, load_media};
use super::db::{Backend, Db, get_u64, now_ms};
use super::error::AppError;
use crate::manifest::{self, Item, Manifest, Overlay, RootKeys};
use crate::{dsse, playlist};

/// PostgreSQL channel publications are announced on.
pub const NOTIFY_CHANNEL: &str = "ekran_publications";

/// Body of `POST /api/v1/playlists`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    /// The playlist's file name (for error locations), e.g. `june-26.toml`.
    pub file_name: String,
    /// The TOML source.
    pub source: String,
    /// Media path as written in the playlist → SHA-256 of the uploaded file.
    pub media: BTreeMap<String, String>,
}

/// What a publish did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublishResult {
    /// Campaign id of the playlist.
    pub campaign_id: String,
    /// Campaign name (what manifests and reports carry).
    pub campaign: String,
    /// Screens that got a new manifest, with its version.
    pub screens: Vec<ScreenVersion>,
    /// Things worth knowing that did not stop the publish.
    pub warnings: Vec<String>,
}

/// A screen and the manifest version it was given.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScreenVersion {
    /// Screen id.
    pub screen_id: String,
    /// New manifest version.
    pub version: u64,
}

/// The stored form of a playlist's targets.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct StoredTargets {
    venues: Vec<String>,
    groups: Vec<String>,
    screens: Vec<String>,
}

impl StoredTargets {
    fn matches(&self, screen: &ScreenInfo) -> bool {
        let targets = playlist::Targets {
            venues: self.venues.clone(),
            groups: self.groups.clone(),
            screens: self.screens.clone(),
        };
        let groups: Vec<&str> = screen.groups.iter().map(String::as_str).collect();
        targets.matches(&screen.id, &screen.venue_id, &groups)
    }
}

/// What compiling needs to know about a screen.
#[derive(Debug, Clone)]
struct ScreenInfo {
    id: String,
    venue_id: String,
    timezone: String,
    groups: Vec<String>,
}

/// Per-screen wake-up channels for long-polling manifest fetches.
#[derive(Debug, Default)]
pub struct PublishNotifier {
    channels: Mutex<HashMap<String, watch::Sender<u64>>>,
}

impl PublishNotifier {
    /// A receiver that changes whenever `screen_id` gets a new manifest.
    pub fn subscribe(&self, screen_id: &str) -> watch::Receiver<u64> {
        let mut channels = self
            .channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        channels
            .entry(screen_id.to_owned())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// Wakes the waiters of `screen_id`.
    pub fn notify(&self, screen_id: &str) {
        let channels = self
            .channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(sender) = channels.get(screen_id) {
            sender.send_modify(|generation| *generation += 1);
        }
    }
}

/// Checks, stores and publishes a playlist.
pub async fn publish_playlist(
    state: &AppState,
    by: &str,
    request: PublishRequest,
) -> Result<PublishResult, AppError> {
    // Parse under the bare file name: media paths are then the strings as
    // written, the keys of `request.media`; nothing here touches the disk.
    let file_name = Path::new(&request.file_name).file_name().map_or_else(
        || "playlist.toml".into(),
        |name| name.to_string_lossy().into_owned(),
    );
    let parsed = playlist::parse(&request.source, Path::new(&file_name)).map_err(|errors| {
        AppError::BadRequest(format!("playlist {file_name} is invalid:\n{errors}"))
    })?;

    let db = state.db();
    let mut media: HashMap<String, MediaInfo> = HashMap::new();
    for (path, sha256) in &request.media {
        if let Some(info) = load_media(db, sha256).await? {
            media.insert(path.clone(), info);
        }
    }
    // A still is shown for its duration, a clip decoded: the file's real
    // content (sniffed at upload) must be of the kind its name promised.
    for item in &parsed.items {
        let key = item.media.to_string_lossy();
        if let Some(info) = media.get(key.as_ref()) {
            let is_still = info.mime.starts_with("image/");
            if is_still != (item.kind == playlist::MediaKind::Still) {
                return Err(AppError::BadRequest(format!(
                    "media {key:?} is named like {} but its content is {}",
                    item.mime, info.mime
                )));
            }
        }
    }
    let (items, overlays) = parsed.to_manifest_parts(|path: &Path| {
        let key = path.to_string_lossy();
        match (request.media.get(key.as_ref()), media.get(key.as_ref())) {
            (None, _) => Err(AppError::BadRequest(format!(
                "the request maps no SHA-256 to media {key:?}: push uploads and names every file"
            ))),
            (Some(sha256), None) => Err(AppError::BadRequest(format!(
                "media {key:?} ({sha256}) is not on the server: upload it first"
            ))),
            (Some(_), Some(info)) => Ok(manifest::Media {
                sha256: info.sha256.clone(),
                size: info.size,
                mime: info.mime.clone(),
                url: info.url.clone(),
            }),
        }
    })?;

    super::api::validate_id("campaign", &parsed.campaign_id)?;
    super::api::admin::ensure_campaign(db, &parsed.campaign_id, &parsed.campaign).await?;
    let targets = StoredTargets {
        venues: parsed.targets.venues.clone(),
        groups: parsed.targets.groups.clone(),
        screens: parsed.targets.screens.clone(),
    };
    let previous: Option<String> =
        sqlx::query_scalar("SELECT targets_json FROM playlists WHERE campaign_id = $1")
            .bind(&parsed.campaign_id)
            .fetch_optional(db.pool())
            .await?;
    let previous: StoredTargets = previous
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default();
    sqlx::query(
        "INSERT INTO playlists (campaign_id, file_name, source, targets_json, items_json, overlays_json, updated_at_ms, updated_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (campaign_id) DO UPDATE SET \
         file_name = excluded.file_name, source = excluded.source, targets_json = excluded.targets_json, \
         items_json = excluded.items_json, overlays_json = excluded.overlays_json, \
         updated_at_ms = excluded.updated_at_ms, updated_by = excluded.updated_by",
    )
    .bind(&parsed.campaign_id)
    .bind(&file_name)
    .bind(&request.source)
    .bind(json(&targets)?)
    .bind(json(&items)?)
    .bind(json(&overlays)?)
    .bind(now_ms())
    .bind(by)
    .execute(db.pool())
    .await?;

    let mut warnings = Vec::new();
    let mut screens = Vec::new();
    for screen in load_screen_infos(db).await? {
        if !(targets.matches(&screen) || previous.matches(&screen)) {
            continue;
        }
        if targets.matches(&screen) && screen.timezone != parsed.timezone {
            warnings.push(format!(
                "screen {} is in venue {} ({}); the playlist's dates are written for {} and are read in the venue's zone",
                screen.id, screen.venue_id, screen.timezone, parsed.timezone
            ));
        }
        let version = compile_screen(state, &screen).await?;
        screens.push(ScreenVersion {
            screen_id: screen.id.clone(),
            version,
        });
    }
    if screens.is_empty() {
        warnings.push("no enrolled screen matches the playlist's targets yet".into());
    }
    tracing::info!(campaign = %parsed.campaign, screens = screens.len(), by, "playlist published");
    Ok(PublishResult {
        campaign_id: parsed.campaign_id,
        campaign: parsed.campaign,
        screens,
        warnings,
    })
}

/// A value as JSON text for one of the `*_json` columns.
fn json<T: Serialize>(value: &T) -> Result<String, AppError> {
    serde_json::to_string(value).map_err(AppError::internal)
}

async fn load_screen_infos(db: &Db) -> Result<Vec<ScreenInfo>, AppError> {
    let rows = sqlx::query("SELECT s.id, s.venue_id, v.timezone FROM screens s JOIN venues v ON v.id = s.venue_id ORDER BY s.id")
        .fetch_all(db.pool())
        .await?;
    let members = sqlx::query("SELECT screen_id, group_id FROM screen_group_members")
        .fetch_all(db.pool())
        .await?;
    let mut groups: HashMap<String, Vec<String>> = HashMap::new();
    for row in &members {
        groups
            .entry(row.try_get("screen_id")?)
            .or_default()
            .push(row.try_get("group_id")?);
    }
    rows.iter()
        .map(|row| {
            let id: String = row.try_get("id")?;
            Ok(ScreenInfo {
                groups: groups.remove(&id).unwrap_or_default(),
                venue_id: row.try_get("venue_id")?,
                timezone: row.try_get("timezone")?,
                id,
            })
        })
        .collect()
}

/// Recompiles one screen's manifest (after enrollment or a change of venue
/// or groups). Returns the new version, or `None` for an unknown screen.
pub async fn recompile_screen(state: &AppState, screen_id: &str) -> Result<Option<u64>, AppError> {
    let screen = load_screen_infos(state.db())
        .await?
        .into_iter()
        .find(|screen| screen.id == screen_id);
    match screen {
        Some(screen) => Ok(Some(compile_screen(state, &screen).await?)),
        None => Ok(None),
    }
}

/// Compiles, signs and stores the next manifest of a screen from every
/// playlist that targets it; wakes its long-polls.
async fn compile_screen(state: &AppState, screen: &ScreenInfo) -> Result<u64, AppError> {
    let started = Instant::now();
    let db = state.db();
    let mut items: Vec<Item> = Vec::new();
    let mut overlays: Vec<Overlay> = Vec::new();
    let playlists = sqlx::query(
        "SELECT targets_json, items_json, overlays_json FROM playlists ORDER BY campaign_id",
    )
    .fetch_all(db.pool())
    .await?;
    for row in &playlists {
        let targets: StoredTargets =
            serde_json::from_str(&row.try_get::<String, _>("targets_json")?)
                .map_err(AppError::internal)?;
        if !targets.matches(screen) {
            continue;
        }
        let mut playlist_items: Vec<Item> =
            serde_json::from_str(&row.try_get::<String, _>("items_json")?)
                .map_err(AppError::internal)?;
        let mut playlist_overlays: Vec<Overlay> =
            serde_json::from_str(&row.try_get::<String, _>("overlays_json")?)
                .map_err(AppError::internal)?;
        items.append(&mut playlist_items);
        overlays.append(&mut playlist_overlays);
    }

    let signer = state.signer();
    let mut tx = db.begin_write().await?;
    let row = sqlx::query("UPDATE screens SET manifest_version = manifest_version + 1 WHERE id = $1 RETURNING manifest_version")
        .bind(&screen.id)
        .fetch_one(&mut *tx.tx)
        .await?;
    let version = get_u64(&row, "manifest_version")?;
    let issued_at = jiff::Timestamp::now();
    let ttl = jiff::SignedDuration::from_secs(
        i64::try_from(state.config().manifest_ttl_secs).unwrap_or(i64::MAX / 2),
    );
    let manifest = Manifest {
        schema: manifest::SCHEMA_VERSION,
        screen_id: screen.id.clone(),
        version,
        issued_at,
        expires_at: issued_at.checked_add(ttl).map_err(AppError::internal)?,
        timezone: screen.timezone.clone(),
        items,
        overlays,
        root: RootKeys {
            version: 1,
            keys: vec![signer.public_key_pem.clone()],
            threshold: 1,
        },
    };
    manifest.validate().map_err(|error| {
        AppError::BadRequest(format!(
            "the compiled manifest of screen {} is invalid: {error}",
            screen.id
        ))
    })?;
    let payload = manifest.to_json_bytes();
    if payload.len() > manifest::MAX_MANIFEST_BYTES {
        return Err(AppError::BadRequest(format!(
            "the manifest of screen {} would be {} bytes, over the players' limit of {}: target fewer items",
            screen.id,
            payload.len(),
            manifest::MAX_MANIFEST_BYTES
        )));
    }
    let envelope = dsse::sign(dsse::MANIFEST_PAYLOAD_TYPE, &payload, &[&signer.key]);
    let envelope_json = serde_json::to_string(&envelope).map_err(AppError::internal)?;
    let etag = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
        envelope_json.as_bytes(),
    ));
    sqlx::query("INSERT INTO publications (screen_id, version, envelope, etag, published_at_ms) VALUES ($1, $2, $3, $4, $5)")
        .bind(&screen.id)
        .bind(crate::server::db::to_i64(version))
        .bind(&envelope_json)
        .bind(&etag)
        .bind(issued_at.as_millisecond())
        .execute(&mut *tx.tx)
        .await?;
    if db.backend() == Backend::Postgres {
        // Delivered at commit to every server process listening.
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(NOTIFY_CHANNEL)
            .bind(&screen.id)
            .execute(&mut *tx.tx)
            .await?;
    }
    tx.commit().await?;
    state.notifier().notify(&screen.id);
    state.metrics().published(started.elapsed());
    tracing::info!(screen = %screen.id, version, "manifest published");
    Ok(version)
}

/// The latest publication of a screen: (version, envelope JSON, etag).
pub async fn latest_publication(
    db: &Db,
    screen_id: &str,
) -> Result<Option<(u64, String, String)>, AppError> {
    let row = sqlx::query(
        "SELECT version, envelope, etag FROM publications WHERE screen_id = $1 ORDER BY version DESC LIMIT 1",
    )
    .bind(screen_id)
    .fetch_optional(db.pool())
    .await?;
    row.map(|row| {
        Ok((
            get_u64(&row, "version")?,
            row.try_get("envelope")?,
            row.try_get("etag")?,
        ))
    })
    .transpose()
}

/// On PostgreSQL: forwards `NOTIFY`s of other server processes to this
/// process's waiters, reconnecting after a lost connection. Runs until the
/// process ends.
pub async fn listen_for_publications(state: AppState) {
    loop {
        match sqlx::postgres::PgListener::connect(state.db().url()).await {
            Ok(mut listener) => {
                if let Err(error) = listener.listen(NOTIFY_CHANNEL).await {
                    tracing::warn!(%error, "cannot LISTEN for publications");
                } else {
                    loop {
                        match listener.recv().await {
                            Ok(notification) => state.notifier().notify(notification.payload()),
                            Err(error) => {
                                tracing::warn!(%error, "publication listener lost its connection");
                                break;
                            }
                        }
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "cannot open the publication listener"),
        }
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
}
