//! Campaigns and playlists (manager): the playlist's TOML is uploaded or
//! edited in the page and validated by [`crate::playlist::parse`] (every
//! error with its line and column); media are named by the file names they
//! were uploaded under in the library; the schedule of a chosen screen and
//! day is previewed as a timeline by [`crate::schedule::simulate`] — the
//! scheduler the player runs — before publishing through the same code as
//! `ekran push`; the list shows which screen took which manifest version.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use axum::Form;
use axum::extract::Query;
use axum::response::{IntoResponse, Response};
use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use sqlx::Row;

use super::library::{name_map, probe_clip};
use super::{OrPage, Web, WebError};
use crate::manifest::{self, Item, Manifest, Overlay, RootKeys};
use crate::playlist::{self, Playlist};
use crate::schedule::{self, Schedule};
use crate::server::api::admin::{load_screens, load_venue};
use crate::server::auth::Role;
use crate::server::publish::{self, PublishRequest, PublishResult};

/// A clip's length when its file does not say (not an MP4 the server can
/// read): the preview assumes this and says so.
pub const ASSUMED_CLIP_SECS: i64 = 30;

/// Width of the timeline in SVG units: one per minute of the day.
const TIMELINE_WIDTH: f64 = 1440.0;

/// The playlist the editor opens with when nothing is loaded.
const NEW_PLAYLIST: &str = r#"campaign = "New campaign"
id = "new-campaign"
timezone = "UTC"

[targets]
groups = []

[flight]
start = 2027-01-01
end = 2027-12-31

[[item]]
id = "clip"
media = "clip.mp4"
"#;

/// `GET /playlists` (manager): stored playlists and what each screen took.
pub async fn playlists(web: Web) -> Result<Response, Response> {
    web.require(Role::Manager)?;
    playlists_page(&web)
        .await
        .map_err(IntoResponse::into_response)
}

async fn playlists_page(web: &Web) -> Result<Response, WebError> {
    let db = web.state.db();
    let playlists = sqlx::query(
        "SELECT p.campaign_id, c.name, p.file_name, p.updated_at_ms, p.updated_by FROM playlists p \
         JOIN campaigns c ON c.id = p.campaign_id ORDER BY p.campaign_id",
    )
    .fetch_all(db.pool())
    .await
    .or_page(web)?
    .iter()
    .map(|row| {
        Ok(minijinja::context! {
            campaign_id => row.try_get::<String, _>("campaign_id")?,
            campaign => row.try_get::<String, _>("name")?,
            file_name => row.try_get::<String, _>("file_name")?,
            updated_at_ms => row.try_get::<i64, _>("updated_at_ms")?,
            updated_by => row.try_get::<String, _>("updated_by")?,
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()
    .or_page(web)?;
    let published: HashMap<String, i64> = sqlx::query(
        "SELECT screen_id, MAX(published_at_ms) AS at FROM publications GROUP BY screen_id",
    )
    .fetch_all(db.pool())
    .await
    .or_page(web)?
    .iter()
    .map(|row| Ok((row.try_get("screen_id")?, row.try_get("at")?)))
    .collect::<Result<_, sqlx::Error>>()
    .or_page(web)?;
    let screens = load_screens(db, None)
        .await
        .or_page(web)?
        .into_iter()
        .map(|screen| {
            let playing = screen
                .status
                .as_ref()
                .and_then(|status| status.get("manifest_version"))
                .and_then(serde_json::Value::as_u64);
            minijinja::context! {
                id => screen.id.clone(),
                venue => screen.venue,
                published_version => screen.manifest_version,
                published_at_ms => published.get(&screen.id).copied(),
                playing_version => playing,
                took_latest => playing == Some(screen.manifest_version),
                last_heartbeat_ms => screen.last_heartbeat_ms,
            }
        })
        .collect::<Vec<_>>();
    Ok(web.render(
        "playlists.html",
        minijinja::context! { playlists => playlists, screens => screens },
    ))
}

/// Query of the editor: which stored playlist to open.
#[derive(Debug, Default, Deserialize)]
pub struct EditorQuery {
    /// Campaign id of the stored playlist; none for a new one.
    #[serde(default)]
    pub(super) campaign: Option<String>,
}

/// `GET /playlists/edit[?campaign=ID]` (manager).
pub async fn editor(web: Web, Query(query): Query<EditorQuery>) -> Result<Response, Response> {
    web.require(Role::Manager)?;
    let (file_name, source) = match query.campaign.as_deref().filter(|c| !c.is_empty()) {
        Some(campaign) => stored_playlist(&web, campaign)
            .await
            .map_err(IntoResponse::into_response)?,
        None => ("new-campaign.toml".to_owned(), NEW_PLAYLIST.to_owned()),
    };
    let form = EditorForm {
        file_name,
        source,
        ..EditorForm::default()
    };
    editor_page(&web, &form, Outcome::default())
        .await
        .map_err(IntoResponse::into_response)
}

/// The editor form.
#[derive(Debug, Default, Deserialize)]
pub struct EditorForm {
    #[serde(default)]
    file_name: String,
    #[serde(default)]
    source: String,
    /// `check`, `preview` or `publish`.
    #[serde(default)]
    action: String,
    /// Screen to preview.
    #[serde(default)]
    screen: String,
    /// Day to preview (`YYYY-MM-DD`, the venue's local date).
    #[serde(default)]
    day: String,
}

/// What the submitted action produced.
#[derive(Debug, Default, serde::Serialize)]
pub(super) struct Outcome {
    /// Problems, each with its `line:column` when it has one.
    pub(super) errors: Vec<Problem>,
    /// The playlist is valid and every media file is in the library.
    pub(super) valid: bool,
    summary: Option<Summary>,
    preview: Option<Preview>,
    published: Option<PublishResult>,
}

impl Outcome {
    /// 422 when anything was refused, else 200.
    pub(super) fn status(&self) -> axum::http::StatusCode {
        if self.errors.is_empty() {
            axum::http::StatusCode::OK
        } else {
            axum::http::StatusCode::UNPROCESSABLE_ENTITY
        }
    }
}

/// One problem with the playlist, where it is when it is in the text.
#[derive(Debug, serde::Serialize)]
pub(super) struct Problem {
    /// 1-based line in the playlist's TOML.
    pub(super) line: Option<usize>,
    /// 1-based column, in characters.
    pub(super) column: Option<usize>,
    /// What is wrong, in the words of the check.
    pub(super) message: String,
}

#[derive(Debug, serde::Serialize)]
struct Summary {
    campaign: String,
    campaign_id: String,
    timezone: String,
    flight_start: String,
    flight_end: String,
    items: usize,
    tickers: Vec<String>,
    media: BTreeMap<String, String>,
}

#[derive(Debug, serde::Serialize)]
struct Preview {
    screen: String,
    venue: String,
    timezone: String,
    day: String,
    targeted: bool,
    svg: minijinja::Value,
    rows: Vec<PreviewRow>,
    plays: usize,
    assumed_lengths: Vec<String>,
    other_campaigns: Vec<String>,
    ticker_minutes: i64,
}

#[derive(Debug, serde::Serialize)]
struct PreviewRow {
    item: String,
    campaign: String,
    plays: usize,
    seconds: f64,
    share: f64,
    first: String,
    last: String,
}

/// `POST /playlists/edit` (manager): check, preview or publish the playlist in the form.
pub async fn submit(web: Web, Form(form): Form<EditorForm>) -> Result<Response, Response> {
    let session = web.require(Role::Manager)?;
    let by = session.caller.name.clone();
    let file_name = safe_file_name(&form.file_name);
    let outcome = act(
        &web,
        &by,
        &file_name,
        &form.source,
        Action::from_name(&form.action),
        &form.screen,
        &form.day,
    )
    .await?;
    let status = outcome.status();
    let form = EditorForm { file_name, ..form };
    let mut response = editor_page(&web, &form, outcome)
        .await
        .map_err(IntoResponse::into_response)?;
    *response.status_mut() = status;
    Ok(response)
}

/// The base name of a submitted file name (never a path), `playlist.toml` when empty.
pub(super) fn safe_file_name(submitted: &str) -> String {
    Path::new(submitted.trim()).file_name().map_or_else(
        || "playlist.toml".to_owned(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// What to do with a valid playlist once it is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    /// Only check it.
    Check,
    /// Simulate a screen's day with it.
    Preview,
    /// Store and publish it.
    Publish,
}

impl Action {
    /// The action a form button names (`check` for anything else).
    pub(super) fn from_name(name: &str) -> Self {
        match name {
            "preview" => Action::Preview,
            "publish" => Action::Publish,
            _ => Action::Check,
        }
    }
}

/// Checks `source` with [`playlist::parse`] and the library, then previews
/// it on `screen` and `day` or publishes it: the one path both the TOML
/// editor and the structured form take.
// The error is the finished page the handler returns as is (see `Web::require`).
#[allow(clippy::result_large_err)]
pub(super) async fn act(
    web: &Web,
    by: &str,
    file_name: &str,
    source: &str,
    action: Action,
    screen: &str,
    day: &str,
) -> Result<Outcome, Response> {
    let mut outcome = Outcome::default();
    match playlist::parse(source, Path::new(file_name)) {
        Err(errors) => {
            outcome.errors = errors
                .iter()
                .map(|error| Problem {
                    line: error.location().map(|at| at.line),
                    column: error.location().map(|at| at.column),
                    message: match error {
                        playlist::PlaylistError::Malformed { message, .. } => message.clone(),
                        other => other.to_string(),
                    },
                })
                .collect();
        }
        Ok(parsed) => {
            let names = name_map(web.state.db())
                .await
                .or_page(web)
                .map_err(IntoResponse::into_response)?;
            let (media, missing) = resolve_media(&parsed, &names);
            outcome.errors = missing
                .into_iter()
                .map(|(item, path, at)| Problem {
                    line: Some(at.line),
                    column: Some(at.column),
                    message: web.t_with("editor-media-missing", &[("item", item), ("media", path)]),
                })
                .collect();
            outcome.valid = outcome.errors.is_empty();
            outcome.summary = Some(Summary {
                campaign: parsed.campaign.clone(),
                campaign_id: parsed.campaign_id.clone(),
                timezone: parsed.timezone.clone(),
                flight_start: parsed.flight.start.to_string(),
                flight_end: parsed.flight.end.to_string(),
                items: parsed.items.len(),
                tickers: parsed.tickers.iter().map(|t| t.text.clone()).collect(),
                media: media.clone(),
            });
            if outcome.valid {
                match action {
                    Action::Preview => {
                        outcome.preview = Some(
                            preview(web, &parsed, &media, screen, day)
                                .await
                                .map_err(IntoResponse::into_response)?,
                        );
                    }
                    Action::Publish => {
                        let request = PublishRequest {
                            file_name: file_name.to_owned(),
                            source: source.to_owned(),
                            media,
                        };
                        match publish::publish_playlist(&web.state, by, request).await {
                            Ok(result) => {
                                tracing::info!(campaign = %parsed.campaign_id, by, screens = result.screens.len(), "playlist published from the dashboard");
                                outcome.published = Some(result);
                            }
                            Err(error) if error.status().is_client_error() => {
                                outcome.errors.push(Problem {
                                    line: None,
                                    column: None,
                                    message: error.to_string(),
                                });
                            }
                            Err(error) => {
                                return Err(WebError::new(web, error.status(), error.to_string())
                                    .into_response());
                            }
                        }
                    }
                    Action::Check => {}
                }
            }
        }
    }
    Ok(outcome)
}

/// An item whose media file is not in the library: item id, media path, where it is named.
type MissingMedia = (String, String, playlist::Location);

/// Maps each item's media path to the SHA-256 of the library file of that
/// name (the path as written, else its base name); lists the items whose
/// file is not in the library.
fn resolve_media(
    parsed: &Playlist,
    names: &BTreeMap<String, String>,
) -> (BTreeMap<String, String>, Vec<MissingMedia>) {
    let mut media = BTreeMap::new();
    let mut missing = Vec::new();
    for item in &parsed.items {
        let key = parsed.media_path(item).to_string_lossy().into_owned();
        let base = item
            .media
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        match names.get(&key).or_else(|| names.get(&base)) {
            Some(sha256) => {
                media.insert(key, sha256.clone());
            }
            None => missing.push((item.id.clone(), key, item.media_at.clone())),
        }
    }
    (media, missing)
}

async fn editor_page(web: &Web, form: &EditorForm, outcome: Outcome) -> Result<Response, WebError> {
    let (screens, library) = screens_and_library(web).await?;
    Ok(web.render(
        "editor.html",
        minijinja::context! {
            file_name => form.file_name.clone(),
            source => form.source.clone(),
            screen => form.screen.clone(),
            day => form.day.clone(),
            screens => screens,
            library => library,
            outcome => outcome,
            assumed_clip_secs => ASSUMED_CLIP_SECS,
        },
    ))
}

/// The TOML editor opened on `source` (from the structured form).
pub(super) async fn editor_with_source(
    web: &Web,
    file_name: String,
    source: String,
) -> Result<Response, WebError> {
    let form = EditorForm {
        file_name,
        source,
        ..EditorForm::default()
    };
    editor_page(web, &form, Outcome::default()).await
}

/// The screens a preview can pick and the file names in the media library.
pub(super) async fn screens_and_library(web: &Web) -> Result<(Vec<String>, Vec<String>), WebError> {
    let db = web.state.db();
    let screens: Vec<String> = load_screens(db, None)
        .await
        .or_page(web)?
        .into_iter()
        .map(|screen| screen.id)
        .collect();
    let library: Vec<String> = name_map(db).await.or_page(web)?.into_keys().collect();
    Ok((screens, library))
}

/// The stored playlist of `campaign`: its file name and TOML; a 404 page when there is none.
pub(super) async fn stored_playlist(
    web: &Web,
    campaign: &str,
) -> Result<(String, String), WebError> {
    let row = sqlx::query("SELECT file_name, source FROM playlists WHERE campaign_id = $1")
        .bind(campaign)
        .fetch_optional(web.state.db().pool())
        .await
        .or_page(web)?;
    match row {
        Some(row) => Ok((
            row.try_get("file_name").or_page(web)?,
            row.try_get("source").or_page(web)?,
        )),
        None => Err(WebError::new(
            web,
            axum::http::StatusCode::NOT_FOUND,
            web.t_with("playlist-unknown", &[("campaign", campaign.to_owned())]),
        )),
    }
}

/// What another stored playlist contributes to a screen.
#[derive(Debug, Deserialize, Default)]
struct StoredTargets {
    #[serde(default)]
    venues: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    screens: Vec<String>,
}

/// Simulates the chosen screen's day with this playlist in place of its
/// stored version, next to every other playlist that targets the screen.
async fn preview(
    web: &Web,
    parsed: &Playlist,
    media: &BTreeMap<String, String>,
    screen: &str,
    day: &str,
) -> Result<Preview, WebError> {
    let db = web.state.db();
    let bad = |message: String| WebError::new(web, axum::http::StatusCode::BAD_REQUEST, message);
    let screen = load_screens(db, Some(screen.trim()))
        .await
        .or_page(web)?
        .pop()
        .ok_or_else(
            || bad(web.t_with("editor-unknown-screen", &[("screen", screen.to_owned())])),
        )?;
    let venue = load_venue(db, &screen.venue).await.or_page(web)?;
    let zone = jiff::tz::TimeZone::get(&venue.timezone).map_err(|e| bad(e.to_string()))?;
    let groups: Vec<&str> = screen.groups.iter().map(String::as_str).collect();
    let targeted = parsed.targets.matches(&screen.id, &screen.venue, &groups);

    // This playlist's items, resolved against the library.
    let resolved: HashMap<String, crate::server::api::media::MediaInfo> = {
        let mut map = HashMap::new();
        for sha256 in media.values() {
            if let Some(info) = crate::server::api::media::load_media(db, sha256)
                .await
                .or_page(web)?
            {
                map.insert(sha256.clone(), info);
            }
        }
        map
    };
    let (mut items, mut overlays) = parsed
        .to_manifest_parts(|path: &Path| {
            let key = path.to_string_lossy();
            let info = media
                .get(key.as_ref())
                .and_then(|sha256| resolved.get(sha256))
                .ok_or_else(|| key.to_string())?;
            Ok::<_, String>(manifest::Media {
                sha256: info.sha256.clone(),
                size: info.size,
                mime: info.mime.clone(),
                url: info.url.clone(),
            })
        })
        .map_err(|path| bad(web.t_with("editor-media-gone", &[("media", path)])))?;
    if !targeted {
        items.clear();
        overlays.clear();
    }
    // Every other campaign's stored playlist that targets this screen.
    let mut other_campaigns = Vec::new();
    let stored = sqlx::query(
        "SELECT campaign_id, targets_json, items_json, overlays_json FROM playlists WHERE campaign_id <> $1 ORDER BY campaign_id",
    )
    .bind(&parsed.campaign_id)
    .fetch_all(db.pool())
    .await
    .or_page(web)?;
    for row in &stored {
        let targets: StoredTargets =
            serde_json::from_str(&row.try_get::<String, _>("targets_json").or_page(web)?)
                .unwrap_or_default();
        let targets = playlist::Targets {
            venues: targets.venues,
            groups: targets.groups,
            screens: targets.screens,
        };
        if !targets.matches(&screen.id, &screen.venue, &groups) {
            continue;
        }
        let parse_err = |e: serde_json::Error| {
            WebError::new(
                web,
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                e.to_string(),
            )
        };
        let mut more: Vec<Item> =
            serde_json::from_str(&row.try_get::<String, _>("items_json").or_page(web)?)
                .map_err(parse_err)?;
        let mut more_overlays: Vec<Overlay> =
            serde_json::from_str(&row.try_get::<String, _>("overlays_json").or_page(web)?)
                .map_err(parse_err)?;
        items.append(&mut more);
        overlays.append(&mut more_overlays);
        other_campaigns.push(row.try_get::<String, _>("campaign_id").or_page(web)?);
    }

    // Clip lengths: what the item says, else what its MP4 header says, else assumed.
    let mut lengths: HashMap<String, SignedDuration> = HashMap::new();
    let mut assumed_lengths = Vec::new();
    for item in &items {
        let length = match item.duration_ms {
            Some(ms) => SignedDuration::from_millis(i64::try_from(ms).unwrap_or(i64::MAX)),
            None => match probe_clip(&web.state, &item.media.sha256, item.media.size).await {
                Some(facts) => SignedDuration::from_secs_f64(facts.duration_secs),
                None => {
                    assumed_lengths.push(item.id.clone());
                    SignedDuration::from_secs(ASSUMED_CLIP_SECS)
                }
            },
        };
        lengths.insert(item.id.clone(), length);
    }

    let today = Timestamp::now().to_zoned(zone.clone()).date();
    let day: Date = match day.trim() {
        "" => today.clamp(parsed.flight.start, parsed.flight.end),
        text => text
            .parse()
            .map_err(|_| bad(web.t_with("error-bad-date", &[("value", text.to_owned())])))?,
    };
    let start = day.to_zoned(zone.clone()).map_err(|e| bad(e.to_string()))?;
    let end = start.tomorrow().map_err(|e| bad(e.to_string()))?;
    let manifest = Manifest {
        schema: manifest::SCHEMA_VERSION,
        screen_id: screen.id.clone(),
        version: 0,
        issued_at: start.timestamp(),
        expires_at: end.timestamp(),
        timezone: venue.timezone.clone(),
        items,
        overlays,
        root: RootKeys {
            version: 1,
            keys: Vec::new(),
            threshold: 1,
        },
    };
    let length_of = |item: &Item| {
        lengths
            .get(&item.id)
            .copied()
            .unwrap_or(SignedDuration::from_secs(ASSUMED_CLIP_SECS))
    };
    let plays = schedule::simulate(&manifest, start.timestamp(), end.timestamp(), length_of)
        .map_err(|e| bad(e.to_string()))?;
    let schedule = Schedule::new(&manifest).map_err(|e| bad(e.to_string()))?;
    let (svg, ticker_minutes) =
        timeline_svg(&manifest, &schedule, &plays, start.timestamp(), &length_of);

    let mut rows: BTreeMap<String, PreviewRow> = BTreeMap::new();
    let total: f64 = plays
        .iter()
        .map(|(_, id)| item_length(&manifest, id, &length_of).as_secs_f64())
        .sum();
    for (at, id) in &plays {
        let seconds = item_length(&manifest, id, &length_of).as_secs_f64();
        let local = at.to_zoned(zone.clone()).strftime("%H:%M").to_string();
        let row = rows.entry(id.clone()).or_insert_with(|| PreviewRow {
            item: id.clone(),
            campaign: manifest
                .items
                .iter()
                .find(|item| &item.id == id)
                .map(|item| item.campaign.clone())
                .unwrap_or_default(),
            plays: 0,
            seconds: 0.0,
            share: 0.0,
            first: local.clone(),
            last: local.clone(),
        });
        row.plays += 1;
        row.seconds += seconds;
        row.last = local;
    }
    for row in rows.values_mut() {
        row.share = if total > 0.0 {
            row.seconds / total
        } else {
            0.0
        };
    }
    Ok(Preview {
        screen: screen.id,
        venue: venue.id,
        timezone: venue.timezone,
        day: day.to_string(),
        targeted,
        svg: minijinja::Value::from_safe_string(svg),
        rows: rows.into_values().collect(),
        plays: plays.len(),
        assumed_lengths,
        other_campaigns,
        ticker_minutes,
    })
}

fn item_length(
    manifest: &Manifest,
    id: &str,
    length_of: &impl Fn(&Item) -> SignedDuration,
) -> SignedDuration {
    manifest
        .items
        .iter()
        .find(|item| item.id == id)
        .map_or(SignedDuration::ZERO, |item| {
            length_of(item).max(schedule::MIN_CHARGE)
        })
}

/// Colours of the timeline's items, cycled.
const COLOURS: &[&str] = &[
    "#2f6fdf", "#e07b22", "#2a9d5c", "#c23b6b", "#7a5cc7", "#1b9aaa", "#b8860b", "#5c6b73",
];

/// The day as an SVG strip: hour ticks, one block per play (coloured per
/// item, with a tooltip), and a band where a ticker runs. Returns the SVG
/// and the minutes a ticker is on screen.
fn timeline_svg(
    manifest: &Manifest,
    schedule: &Schedule<'_>,
    plays: &[(Timestamp, String)],
    day_start: Timestamp,
    length_of: &impl Fn(&Item) -> SignedDuration,
) -> (String, i64) {
    use std::fmt::Write;
    let minutes = |at: Timestamp| at.duration_since(day_start).as_secs_f64() / 60.0;
    let mut svg = format!(
        "<svg class=\"timeline\" viewBox=\"0 0 {TIMELINE_WIDTH} 110\" preserveAspectRatio=\"none\" role=\"img\" xmlns=\"http://www.w3.org/2000/svg\">\
         <rect x=\"0\" y=\"0\" width=\"{TIMELINE_WIDTH}\" height=\"110\" fill=\"#f4f6f8\"/>"
    );
    for hour in 0..=24 {
        let x = f64::from(hour) * 60.0;
        let _ = write!(
            svg,
            "<line x1=\"{x}\" y1=\"0\" x2=\"{x}\" y2=\"80\" stroke=\"#c8ced4\" stroke-width=\"1\"/>"
        );
        if hour % 3 == 0 && hour < 24 {
            let _ = write!(
                svg,
                "<text x=\"{}\" y=\"104\" font-size=\"14\" fill=\"#333\">{hour:02}:00</text>",
                x + 2.0
            );
        }
    }
    // Back-to-back plays of one item are drawn as one block (a one-second
    // clip looping all day would otherwise be tens of thousands of rects).
    let mut runs: Vec<(Timestamp, Timestamp, &str, usize)> = Vec::new();
    for (at, id) in plays {
        let end = *at + item_length(manifest, id, length_of);
        match runs.last_mut() {
            Some(run) if run.2 == id && run.1 == *at => {
                run.1 = end;
                run.3 += 1;
            }
            _ => runs.push((*at, end, id, 1)),
        }
    }
    let zone = schedule.time_zone();
    for (start, end, id, count) in runs {
        let index = manifest
            .items
            .iter()
            .position(|item| item.id == id)
            .unwrap_or(0);
        let colour = COLOURS[index % COLOURS.len()];
        let x = minutes(start);
        let width = (minutes(end) - x).max(0.2);
        let _ = write!(
            svg,
            "<rect x=\"{x:.2}\" y=\"8\" width=\"{width:.2}\" height=\"52\" fill=\"{colour}\"><title>{} ×{count} {}–{}</title></rect>",
            escape(id),
            start.to_zoned(zone.clone()).strftime("%H:%M:%S"),
            end.to_zoned(zone.clone()).strftime("%H:%M:%S"),
        );
    }
    // Ticker band, sampled each minute, drawn as one block per stretch.
    let mut ticker_minutes = 0;
    let mut stretch: Option<i64> = None;
    for minute in 0..=1440 {
        let at = day_start + SignedDuration::from_mins(minute);
        let on = minute < 1440 && !schedule.active_overlays(at).is_empty();
        match (on, stretch) {
            (true, None) => stretch = Some(minute),
            (false, Some(first)) => {
                let _ = write!(
                    svg,
                    "<rect x=\"{first}\" y=\"66\" width=\"{}\" height=\"10\" fill=\"#d13b3b\"/>",
                    minute - first
                );
                stretch = None;
            }
            _ => {}
        }
        ticker_minutes += i64::from(on);
    }
    svg.push_str("</svg>");
    (svg, ticker_minutes)
}

/// Escapes text for SVG.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
