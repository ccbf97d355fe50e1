//! The media library (manager): uploads through the API's streaming
//! endpoint with a progress bar (`static/app.js`), then the file name is
//! recorded so playlists written here can name the file; the list shows
//! size, type, the duration and codec of MP4 clips (read from the file's
//! `moov` header: the server does not link a decoder), posters as
//! thumbnails, and which playlists use each file.

use std::collections::BTreeMap;
use std::ops::Range;

use axum::Form;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use futures_util::StreamExt;
use serde::Deserialize;
use sqlx::Row;

use super::{OrPage, Web, WebError};
use crate::manifest::Item;
use crate::server::AppState;
use crate::server::api::media::load_media;
use crate::server::auth::Role;
use crate::server::db::{Db, get_u64, now_ms};
use crate::server::error::AppError;
use crate::server::media::is_sha256_hex;

/// Largest `moov` box read to find a clip's duration and codec.
const MAX_MOOV_BYTES: u64 = 8 * 1024 * 1024;
/// Longest media name.
const MAX_NAME_CHARS: usize = 200;

/// How much of a Matroska/WebM file is read to find its `Info` and
/// `Tracks` (muxers put them before the first cluster, in the first KiB).
const MATROSKA_HEAD_BYTES: u64 = 256 * 1024;

/// What the header of a clip (MP4, or Matroska/WebM) says.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClipFacts {
    /// Movie duration in seconds.
    pub duration_secs: f64,
    /// The first video track's codec: the MP4 sample entry type (`avc1`,
    /// `hvc1`, `vp09`, …) or the Matroska codec id, shortened (`vp9`, `av1`…).
    pub codec: Option<String>,
}

/// A library row.
#[derive(Debug, serde::Serialize)]
struct MediaRow {
    sha256: String,
    size: u64,
    mime: String,
    created_at_ms: i64,
    names: Vec<String>,
    used_by: Vec<String>,
    is_image: bool,
    facts: Option<ClipFacts>,
}

/// `GET /media` (manager).
pub async fn media(web: Web) -> Result<Response, Response> {
    web.require(Role::Manager)?;
    media_page(&web).await.map_err(IntoResponse::into_response)
}

async fn media_page(web: &Web) -> Result<Response, WebError> {
    let db = web.state.db();
    let names = names_by_sha(db).await.or_page(web)?;
    let used = campaigns_by_sha(db).await.or_page(web)?;
    let rows = sqlx::query(
        "SELECT sha256, size, mime, created_at_ms FROM media ORDER BY created_at_ms DESC, sha256",
    )
    .fetch_all(db.pool())
    .await
    .or_page(web)?;
    let mut media = Vec::with_capacity(rows.len());
    for row in &rows {
        let sha256: String = row.try_get("sha256").or_page(web)?;
        let mime: String = row.try_get("mime").or_page(web)?;
        let size = get_u64(row, "size").or_page(web)?;
        let facts = if mime.starts_with("video/") {
            probe_clip(&web.state, &sha256, size).await
        } else {
            None
        };
        media.push(MediaRow {
            names: names.get(&sha256).cloned().unwrap_or_default(),
            used_by: used.get(&sha256).cloned().unwrap_or_default(),
            is_image: mime.starts_with("image/"),
            created_at_ms: row.try_get("created_at_ms").or_page(web)?,
            facts,
            sha256,
            size,
            mime,
        });
    }
    Ok(web.render(
        "media.html",
        minijinja::context! {
            media => media,
            max_upload_bytes => web.state.config().max_upload_bytes,
        },
    ))
}

/// Media name → SHA-256 of every named upload.
pub async fn name_map(db: &Db) -> Result<BTreeMap<String, String>, AppError> {
    let rows = sqlx::query("SELECT name, sha256 FROM media_names ORDER BY name")
        .fetch_all(db.pool())
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("name")?, row.try_get("sha256")?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(AppError::from)
}

async fn names_by_sha(db: &Db) -> Result<BTreeMap<String, Vec<String>>, AppError> {
    let mut names: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, sha256) in name_map(db).await? {
        names.entry(sha256).or_default().push(name);
    }
    Ok(names)
}

/// SHA-256 → names of the campaigns whose stored playlist uses it.
async fn campaigns_by_sha(db: &Db) -> Result<BTreeMap<String, Vec<String>>, AppError> {
    let rows = sqlx::query("SELECT campaign_id, items_json FROM playlists ORDER BY campaign_id")
        .fetch_all(db.pool())
        .await?;
    let mut used: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in &rows {
        let campaign: String = row.try_get("campaign_id")?;
        let items: Vec<Item> = serde_json::from_str(&row.try_get::<String, _>("items_json")?)
            .map_err(AppError::internal)?;
        for item in items {
            let users = used.entry(item.media.sha256).or_default();
            if !users.contains(&campaign) {
                users.push(campaign.clone());
            }
        }
    }
    Ok(used)
}

/// The naming form posted by the upload script once the bytes are stored.
#[derive(Debug, Deserialize)]
pub struct NameForm {
    name: String,
    sha256: String,
}

/// The base name of an uploaded file, refused when empty, too long or
/// containing control characters.
pub fn clean_name(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default().trim();
    (!base.is_empty()
        && base != "."
        && base != ".."
        && base.chars().count() <= MAX_NAME_CHARS
        && !base.chars().any(char::is_control))
    .then(|| base.to_owned())
}

/// `POST /media/name` (manager): records the file name of an uploaded file
/// (a later upload under the same name replaces the mapping).
pub async fn name_media(web: Web, Form(form): Form<NameForm>) -> Result<Response, Response> {
    let session = web.require(Role::Manager)?;
    let fail = |status, key: &str| WebError::new(&web, status, web.t(key)).into_response();
    let Some(name) = clean_name(&form.name) else {
        return Err(fail(StatusCode::BAD_REQUEST, "media-bad-name"));
    };
    let sha256 = form.sha256.trim().to_ascii_lowercase();
    if !is_sha256_hex(&sha256)
        || load_media(web.state.db(), &sha256)
            .await
            .or_page(&web)
            .map_err(IntoResponse::into_response)?
            .is_none()
    {
        return Err(fail(StatusCode::NOT_FOUND, "media-unknown-sha"));
    }
    sqlx::query(
        "INSERT INTO media_names (name, sha256, created_at_ms, created_by) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (name) DO UPDATE SET sha256 = excluded.sha256, created_at_ms = excluded.created_at_ms, created_by = excluded.created_by",
    )
    .bind(&name)
    .bind(&sha256)
    .bind(now_ms())
    .bind(&session.caller.name)
    .execute(web.state.db().pool())
    .await
    .or_page(&web)
    .map_err(IntoResponse::into_response)?;
    tracing::info!(name = %name, sha256 = %sha256, by = %session.caller.name, "media named");
    Ok(Redirect::to("/media").into_response())
}

/// Reads `range` of a stored file into memory (small ranges only).
async fn read_range(state: &AppState, sha256: &str, range: Range<u64>) -> Option<Vec<u8>> {
    let mut stream = state.media().read(sha256, range).await.ok()?;
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        bytes.extend_from_slice(&chunk.ok()?);
    }
    Some(bytes)
}

/// Duration and codec of a stored clip, read from its header: a Matroska
/// or WebM file's `Info` and `Tracks`, else an MP4's `moov` box. The
/// server decodes no video; anything else gives `None`.
pub async fn probe_clip(state: &AppState, sha256: &str, size: u64) -> Option<ClipFacts> {
    // The first 16 bytes say which container it is, and are the first MP4
    // box header.
    let first = read_range(state, sha256, 0..16.min(size)).await?;
    if first.starts_with(&EBML_MAGIC) {
        let head = read_range(state, sha256, 0..MATROSKA_HEAD_BYTES.min(size)).await?;
        return parse_matroska(&head);
    }
    probe_mp4(state, sha256, size, first).await
}

/// Duration and codec of a stored MP4, from its `moov` box (found by
/// walking the top-level box headers, reading nothing else); `first` is
/// the file's first 16 bytes.
async fn probe_mp4(state: &AppState, sha256: &str, size: u64, first: Vec<u8>) -> Option<ClipFacts> {
    let mut offset = 0u64;
    let mut first = Some(first);
    while offset + 8 <= size {
        let header = match first.take() {
            Some(header) => header,
            None => read_range(state, sha256, offset..(offset + 16).min(size)).await?,
        };
        let (box_size, header_len) = box_size(&header, size - offset)?;
        if &header[4..8] == b"moov" {
            if box_size > MAX_MOOV_BYTES {
                return None;
            }
            let moov = read_range(state, sha256, offset + header_len..offset + box_size).await?;
            return parse_moov(&moov);
        }
        offset += box_size;
    }
    None
}

/// The EBML header's id: the first bytes of every Matroska/WebM file.
const EBML_MAGIC: [u8; 4] = [0x1A, 0x45, 0xDF, 0xA3];

/// An EBML variable-length integer at the start of `data`: (value, length).
/// Ids keep their length marker; sizes drop it, and a size whose bits are
/// all ones ("unknown", for live streams) is `u64::MAX`.
fn ebml_vint(data: &[u8], is_id: bool) -> Option<(u64, usize)> {
    let first = *data.first()?;
    let len = first.leading_zeros() as usize + 1;
    if len > if is_id { 4 } else { 8 } || data.len() < len {
        return None;
    }
    let marker_mask = 0xFFu8.checked_shr(len as u32).unwrap_or(0);
    let mut value = u64::from(if is_id { first } else { first & marker_mask });
    let mut all_ones = first & marker_mask == marker_mask;
    for byte in &data[1..len] {
        value = value << 8 | u64::from(*byte);
        all_ones &= *byte == 0xFF;
    }
    Some(if !is_id && all_ones {
        (u64::MAX, len)
    } else {
        (value, len)
    })
}

/// The elements of an EBML body: (id, body); a body cut short by the end
/// of `data` is given as far as it goes, and an unknown size ends the walk.
fn ebml_children(mut data: &[u8]) -> Vec<(u64, &[u8])> {
    let mut elements = Vec::new();
    while let Some((id, id_len)) = ebml_vint(data, true) {
        let Some((size, size_len)) = ebml_vint(&data[id_len..], false) else {
            break;
        };
        let start = id_len + size_len;
        if size == u64::MAX {
            elements.push((id, &data[start..]));
            break;
        }
        let end = usize::try_from(size)
            .ok()
            .and_then(|size| start.checked_add(size))
            .map_or(data.len(), |end| end.min(data.len()));
        elements.push((id, &data[start..end]));
        data = &data[end..];
    }
    elements
}

fn ebml_uint(body: &[u8]) -> Option<u64> {
    (body.len() <= 8).then(|| body.iter().fold(0u64, |v, b| v << 8 | u64::from(*b)))
}

/// Duration and first video codec from the head of a Matroska/WebM file.
fn parse_matroska(head: &[u8]) -> Option<ClipFacts> {
    const SEGMENT: u64 = 0x1853_8067;
    const INFO: u64 = 0x1549_A966;
    const TIMESTAMP_SCALE: u64 = 0x2A_D7B1;
    const DURATION: u64 = 0x4489;
    const TRACKS: u64 = 0x1654_AE6B;
    const TRACK_ENTRY: u64 = 0xAE;
    const TRACK_TYPE: u64 = 0x83;
    const CODEC_ID: u64 = 0x86;
    const VIDEO: u64 = 1;

    let segment = ebml_children(head)
        .into_iter()
        .find(|(id, _)| *id == SEGMENT)?
        .1;
    let mut scale_ns = 1_000_000u64;
    let mut duration = None;
    let mut codec = None;
    for (id, body) in ebml_children(segment) {
        match id {
            INFO => {
                for (id, value) in ebml_children(body) {
                    match (id, value.len()) {
                        (TIMESTAMP_SCALE, _) => scale_ns = ebml_uint(value)?,
                        (DURATION, 4) => {
                            duration = Some(f64::from(f32::from_be_bytes(value.try_into().ok()?)));
                        }
                        (DURATION, 8) => {
                            duration = Some(f64::from_be_bytes(value.try_into().ok()?))
                        }
                        _ => {}
                    }
                }
            }
            TRACKS if codec.is_none() => {
                codec = ebml_children(body)
                    .into_iter()
                    .filter(|(id, _)| *id == TRACK_ENTRY)
                    .find_map(|(_, entry)| {
                        let fields = ebml_children(entry);
                        let is_video = fields
                            .iter()
                            .any(|(id, v)| *id == TRACK_TYPE && ebml_uint(v) == Some(VIDEO));
                        let codec_id = fields.iter().find(|(id, _)| *id == CODEC_ID)?.1;
                        is_video.then(|| short_codec(&String::from_utf8_lossy(codec_id)))
                    });
            }
            _ => {}
        }
    }
    Some(ClipFacts {
        duration_secs: duration? * scale_ns as f64 / 1e9,
        codec,
    })
}

/// `V_VP9` → `vp9`, `V_MPEG4/ISO/AVC` → `avc1`…; other ids as they are.
fn short_codec(codec_id: &str) -> String {
    let codec_id = codec_id.trim_end_matches('\0');
    match codec_id {
        "V_VP8" => "vp8".into(),
        "V_VP9" => "vp9".into(),
        "V_AV1" => "av1".into(),
        "V_MPEG4/ISO/AVC" => "avc1".into(),
        "V_MPEGH/ISO/HEVC" => "hevc".into(),
        other => other.to_owned(),
    }
}

/// A box's total size and header length from its first bytes; `remaining`
/// is what is left of the enclosing space (size 0 means "to the end").
fn box_size(header: &[u8], remaining: u64) -> Option<(u64, u64)> {
    let size32 = u32::from_be_bytes(header.get(0..4)?.try_into().ok()?);
    let (size, header_len) = match size32 {
        0 => (remaining, 8),
        1 => (u64::from_be_bytes(header.get(8..16)?.try_into().ok()?), 16),
        n => (u64::from(n), 8),
    };
    (size >= header_len && size <= remaining).then_some((size, header_len))
}

/// The children of a box body: (type, body).
fn children(mut data: &[u8]) -> Vec<([u8; 4], &[u8])> {
    let mut boxes = Vec::new();
    while data.len() >= 8 {
        let Some((size, header_len)) = box_size(data, data.len() as u64) else {
            break;
        };
        let (size, header_len) = (size as usize, header_len as usize);
        let mut kind = [0u8; 4];
        kind.copy_from_slice(&data[4..8]);
        boxes.push((kind, &data[header_len..size]));
        data = &data[size..];
    }
    boxes
}

fn child<'a>(data: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    children(data)
        .into_iter()
        .find(|(k, _)| k == kind)
        .map(|(_, body)| body)
}

fn parse_moov(moov: &[u8]) -> Option<ClipFacts> {
    let mvhd = child(moov, b"mvhd")?;
    // Full box: version (1 byte) + flags (3); v0 has 32-bit times, v1 64-bit.
    let (timescale, duration) = match *mvhd.first()? {
        0 => (
            u32::from_be_bytes(mvhd.get(12..16)?.try_into().ok()?),
            u64::from(u32::from_be_bytes(mvhd.get(16..20)?.try_into().ok()?)),
        ),
        1 => (
            u32::from_be_bytes(mvhd.get(20..24)?.try_into().ok()?),
            u64::from_be_bytes(mvhd.get(24..32)?.try_into().ok()?),
        ),
        _ => return None,
    };
    if timescale == 0 {
        return None;
    }
    let codec = children(moov)
        .into_iter()
        .filter(|(kind, _)| kind == b"trak")
        .find_map(|(_, trak)| {
            let mdia = child(trak, b"mdia")?;
            let hdlr = child(mdia, b"hdlr")?;
            if hdlr.get(8..12)? != b"vide" {
                return None;
            }
            let stsd = child(child(child(mdia, b"minf")?, b"stbl")?, b"stsd")?;
            // Full box header (4) + entry count (4), then the first sample entry.
            let entry = stsd.get(8..)?;
            Some(String::from_utf8_lossy(entry.get(4..8)?).into_owned())
        });
    Some(ClipFacts {
        duration_secs: duration as f64 / f64::from(timescale),
        codec,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mp4_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        out
    }

    fn ebml(id: &[u8], body: &[u8]) -> Vec<u8> {
        let mut out = id.to_vec();
        out.push(0x80 | body.len() as u8); // one-byte size (bodies < 127 here)
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn matroska_head_gives_duration_and_video_codec() {
        let mut info = ebml(&[0x2A, 0xD7, 0xB1], &1_000_000u32.to_be_bytes());
        info.extend(ebml(&[0x44, 0x89], &2500f64.to_be_bytes()));
        let audio = [ebml(&[0x83], &[2]), ebml(&[0x86], b"A_OPUS")].concat();
        let video = [ebml(&[0x83], &[1]), ebml(&[0x86], b"V_VP9")].concat();
        let tracks = [ebml(&[0xAE], &audio), ebml(&[0xAE], &video)].concat();
        let mut segment_body = ebml(&[0x15, 0x49, 0xA9, 0x66], &info);
        segment_body.extend(ebml(&[0x16, 0x54, 0xAE, 0x6B], &tracks));
        // A live-style segment of unknown size, then the head ends mid-cluster.
        let mut file = ebml(&EBML_MAGIC, &ebml(&[0x42, 0x82], b"webm"));
        file.extend([
            0x18, 0x53, 0x80, 0x67, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        ]);
        file.extend(segment_body);
        file.extend([0x1F, 0x43, 0xB6, 0x75, 0x88, 1, 2]);
        let facts = parse_matroska(&file).unwrap();
        assert_eq!(facts.duration_secs, 2.5);
        assert_eq!(facts.codec.as_deref(), Some("vp9"));
        // Cut before the Info: nothing to say.
        assert_eq!(parse_matroska(&file[..30]), None);
    }

    proptest::proptest! {
        #[test]
        fn any_matroska_head_is_read_without_panicking(
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)
        ) {
            let mut head = EBML_MAGIC.to_vec();
            head.extend(tail);
            let _ = parse_matroska(&head);
            let _ = parse_matroska(&head[4..]);
        }
    }

    #[test]
    fn moov_gives_duration_and_video_codec() {
        let mut mvhd = vec![0u8; 100];
        mvhd[12..16].copy_from_slice(&1000u32.to_be_bytes());
        mvhd[16..20].copy_from_slice(&2500u32.to_be_bytes());
        let mut hdlr = vec![0u8; 24];
        hdlr[8..12].copy_from_slice(b"vide");
        let mut stsd = vec![0u8; 8];
        stsd.extend(mp4_box(b"avc1", &[0u8; 70]));
        let stbl = mp4_box(b"stbl", &mp4_box(b"stsd", &stsd));
        let minf = mp4_box(b"minf", &stbl);
        let mut mdia = mp4_box(b"hdlr", &hdlr);
        mdia.extend(minf);
        let trak = mp4_box(b"trak", &mp4_box(b"mdia", &mdia));
        let mut moov = mp4_box(b"mvhd", &mvhd);
        moov.extend(trak);
        let facts = parse_moov(&moov).unwrap();
        assert_eq!(facts.duration_secs, 2.5);
        assert_eq!(facts.codec.as_deref(), Some("avc1"));
    }

    #[test]
    fn names_are_base_names_without_tricks() {
        assert_eq!(clean_name("C:\\clips\\a.mp4").as_deref(), Some("a.mp4"));
        assert_eq!(clean_name("../x/клип.mp4").as_deref(), Some("клип.mp4"));
        assert_eq!(clean_name(".."), None);
        assert_eq!(clean_name("a\nb"), None);
        assert_eq!(clean_name("  "), None);
    }
}
