//! Media endpoints: streaming upload (hash on the fly, sniffed type, size
//! limit, dedup), `HEAD` by hash, and download with `Range`, `If-Range`,
//! strong `ETag` (the SHA-256) and immutable caching.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::server::AppState;
use crate::server::auth::{Auth, Manager};
use crate::server::db::{Db, get_u64, now_ms, to_i64};
use crate::server::device::DeviceOrPerson;
use crate::server::error::AppError;
use crate::server::media::{ACCEPTED_TYPES, SNIFF_BYTES, is_sha256_hex, sniff};

/// A stored media file as the API describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaInfo {
    /// Lowercase hex SHA-256 of the bytes.
    pub sha256: String,
    /// Length in bytes.
    pub size: u64,
    /// Sniffed media type.
    pub mime: String,
    /// Download path on this server.
    pub url: String,
}

/// The download path of a media file (relative to the server URL).
pub fn media_url(sha256: &str) -> String {
    format!("/api/v1/media/{sha256}")
}

/// Looks up a media row.
pub async fn load_media(db: &Db, sha256: &str) -> Result<Option<MediaInfo>, AppError> {
    let row = sqlx::query("SELECT sha256, size, mime FROM media WHERE sha256 = $1")
        .bind(sha256)
        .fetch_optional(db.pool())
        .await?;
    row.map(|row| {
        let sha256: String = row.try_get("sha256")?;
        Ok(MediaInfo {
            size: get_u64(&row, "size")?,
            mime: row.try_get("mime")?,
            url: media_url(&sha256),
            sha256,
        })
    })
    .transpose()
}

fn check_hash(sha256: &str) -> Result<(), AppError> {
    if is_sha256_hex(sha256) {
        Ok(())
    } else {
        Err(AppError::BadRequest(format!(
            "{sha256:?} is not a media id: expected 64 lowercase hex characters (SHA-256)"
        )))
    }
}

/// `POST /api/v1/media`: the raw file as the body. Answers 201 with the
/// media description (200 when the same bytes were already stored). An
/// optional `X-Ekran-Sha256` header makes the server refuse bytes that
/// hash differently (a corrupted transfer).
pub async fn upload(
    State(state): State<AppState>,
    _auth: Auth<Manager>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AppError> {
    let limit = state.config().max_upload_bytes;
    let too_large = || {
        AppError::PayloadTooLarge(format!(
            "media upload is larger than the server's limit of {limit} bytes"
        ))
    };
    let declared_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared_length.is_some_and(|length| length > limit) {
        return Err(too_large());
    }
    let expected_sha = headers
        .get("x-ekran-sha256")
        .map(|v| v.to_str().unwrap_or_default().to_ascii_lowercase());
    if let Some(expected) = &expected_sha {
        check_hash(expected)?;
    }

    let mut staged = state.media().begin().await.map_err(AppError::internal)?;
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    let mut mime = None;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| AppError::BadRequest(format!("upload interrupted: {e}")))?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(too_large());
        }
        if mime.is_none() && head.len() < SNIFF_BYTES {
            let take = (SNIFF_BYTES - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
            if head.len() == SNIFF_BYTES {
                // Refuse a wrong type before storing gigabytes of it.
                mime = Some(sniff(&head).ok_or_else(wrong_type)?);
            }
        }
        hasher.update(&chunk);
        staged.write(&chunk).await.map_err(AppError::internal)?;
    }
    if size == 0 {
        return Err(AppError::BadRequest("empty media upload".into()));
    }
    let mime = match mime {
        Some(mime) => mime,
        None => sniff(&head).ok_or_else(wrong_type)?,
    };
    let sha256 = hex::encode(hasher.finalize());
    if let Some(expected) = expected_sha
        && expected != sha256
    {
        return Err(AppError::BadRequest(format!(
            "uploaded bytes hash to {sha256}, not to the declared {expected}: the transfer was corrupted"
        )));
    }
    staged
        .commit(sha256.clone())
        .await
        .map_err(AppError::internal)?;
    let inserted = sqlx::query(
        "INSERT INTO media (sha256, size, mime, created_at_ms) VALUES ($1, $2, $3, $4) ON CONFLICT (sha256) DO NOTHING",
    )
    .bind(&sha256)
    .bind(to_i64(size))
    .bind(mime)
    .bind(now_ms())
    .execute(state.db().pool())
    .await?;
    let status = if inserted.rows_affected() == 1 {
        tracing::info!(sha256 = %sha256, size, mime, "media stored");
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let info = MediaInfo {
        url: media_url(&sha256),
        sha256,
        size,
        mime: mime.to_owned(),
    };
    Ok((status, axum::Json(info)).into_response())
}

fn wrong_type() -> AppError {
    AppError::UnsupportedMediaType(format!(
        "the upload is not a supported media file (accepted: {ACCEPTED_TYPES}), judged by its content"
    ))
}

/// `GET /api/v1/media` query-free listing is not offered; `GET/HEAD /api/v1/media/{sha256}`.
pub async fn download(
    State(state): State<AppState>,
    _caller: DeviceOrPerson,
    Path(sha256): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    check_hash(&sha256)?;
    let info = load_media(state.db(), &sha256)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no media {sha256} on this server")))?;
    let etag = format!("\"{sha256}\"");
    let mut response_headers = HeaderMap::new();
    let put = |headers: &mut HeaderMap, name: header::HeaderName, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    put(&mut response_headers, header::ETAG, &etag);
    // Content-addressed: the bytes behind this URL never change.
    put(
        &mut response_headers,
        header::CACHE_CONTROL,
        "public, max-age=31536000, immutable",
    );
    put(&mut response_headers, header::ACCEPT_RANGES, "bytes");
    put(&mut response_headers, header::CONTENT_TYPE, &info.mime);

    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| etag_list_matches(v, &etag))
    {
        return Ok((StatusCode::NOT_MODIFIED, response_headers).into_response());
    }

    let size = info.size;
    let range = requested_range(&headers, &etag, size)?;
    let (status, start, end) = match range {
        Some((start, end)) => {
            put(
                &mut response_headers,
                header::CONTENT_RANGE,
                &format!("bytes {start}-{}/{size}", end - 1),
            );
            (StatusCode::PARTIAL_CONTENT, start, end)
        }
        None => (StatusCode::OK, 0, size),
    };
    put(
        &mut response_headers,
        header::CONTENT_LENGTH,
        &(end - start).to_string(),
    );
    let stream = state
        .media()
        .read(&sha256, start..end)
        .await
        .map_err(AppError::internal)?;
    Ok((status, response_headers, Body::from_stream(stream)).into_response())
}

/// True when an `If-None-Match` list names `etag` (or is `*`).
fn etag_list_matches(list: &str, etag: &str) -> bool {
    list.split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag == etag || tag.strip_prefix("W/") == Some(etag))
}

/// The single byte range to serve (start, end exclusive), or `None` for
/// the whole file. Per RFC 9110: a `Range` is ignored when `If-Range` does
/// not carry our (strong) ETag, when it is malformed, or when it asks for
/// several ranges; a well-formed range outside the file is 416.
fn requested_range(
    headers: &HeaderMap,
    etag: &str,
    size: u64,
) -> Result<Option<(u64, u64)>, AppError> {
    use http_range_header::RangeUnsatisfiableError as E;
    let Some(range) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    if let Some(if_range) = headers.get(header::IF_RANGE) {
        // Only an exact strong ETag matches; a date or a weak tag never does.
        if if_range.to_str().ok() != Some(etag) {
            return Ok(None);
        }
    }
    let parsed = match http_range_header::parse_range_header(range) {
        Ok(parsed) => parsed,
        Err(_) => return Ok(None),
    };
    if parsed.ranges.len() != 1 {
        return Ok(None);
    }
    match parsed.validate(size) {
        Ok(ranges) => {
            let only = &ranges[0];
            Ok(Some((*only.start(), *only.end() + 1)))
        }
        // "bytes=-N" with N beyond the size means the whole file (RFC 9110 §14.1.2).
        Err(E::FileSuffixOutOfBounds) => Ok(Some((0, size))),
        Err(E::RangeReversed | E::OverlappingRanges) => Err(AppError::RangeNotSatisfiable(size)),
        Err(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(value: &str, if_range: Option<&str>) -> Result<Option<(u64, u64)>, AppError> {
        let mut headers = HeaderMap::new();
        headers.insert(header::RANGE, HeaderValue::from_str(value).unwrap());
        if let Some(tag) = if_range {
            headers.insert(header::IF_RANGE, HeaderValue::from_str(tag).unwrap());
        }
        requested_range(&headers, "\"abc\"", 100)
    }

    #[test]
    fn ranges_follow_rfc_9110() {
        assert_eq!(range("bytes=0-9", None).unwrap(), Some((0, 10)));
        assert_eq!(range("bytes=90-", None).unwrap(), Some((90, 100)));
        assert_eq!(range("bytes=95-200", None).unwrap(), Some((95, 100)));
        assert_eq!(range("bytes=-10", None).unwrap(), Some((90, 100)));
        assert_eq!(range("bytes=-500", None).unwrap(), Some((0, 100)));
        assert!(matches!(
            range("bytes=100-", None),
            Err(AppError::RangeNotSatisfiable(100))
        ));
        assert_eq!(range("bytes=0-1,5-6", None).unwrap(), None);
        assert_eq!(range("items=0-1", None).unwrap(), None);
        assert_eq!(range("bytes=0-9", Some("\"abc\"")).unwrap(), Some((0, 10)));
        assert_eq!(range("bytes=0-9", Some("\"old\"")).unwrap(), None);
        assert_eq!(range("bytes=0-9", Some("W/\"abc\"")).unwrap(), None);
        assert_eq!(
            range("bytes=0-9", Some("Sun, 29 Nov 2026 08:00:00 GMT")).unwrap(),
            None
        );
    }
}
