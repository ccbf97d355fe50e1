//! Media upload (streamed, sniffed, limited, deduplicated) and download
//! (Range, If-Range, ETag, immutable caching), on both backends.

use ekran::server::auth::Role;
use reqwest::StatusCode;
use reqwest::header;

use crate::both_backends;
use crate::server_support::{
    Backend, TestDb, TestDevice, TestServer, error_message, sample_mp4, sample_png, sha256_hex,
    upload,
};

both_backends!(
    upload_dedups_and_download_honours_ranges,
    refused_uploads_leave_nothing_behind,
    devices_download_with_signed_requests,
);

async fn upload_dedups_and_download_honours_ranges(backend: Backend) {
    let server = TestServer::start(backend).await;
    let manager = server.token(Role::Manager).await;
    let viewer = server.token(Role::Viewer).await;
    let clip = sample_mp4();
    let sha = sha256_hex(clip);

    assert_eq!(
        upload(&server, &viewer, clip).await.status(),
        StatusCode::FORBIDDEN
    );
    let response = upload(&server, &manager, clip).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let info: serde_json::Value = response.json().await.unwrap();
    assert_eq!(info["sha256"], sha);
    assert_eq!(info["size"], clip.len());
    assert_eq!(info["mime"], "video/mp4");
    assert_eq!(info["url"], format!("/api/v1/media/{sha}"));
    // Same bytes again: stored once.
    assert_eq!(
        upload(&server, &manager, clip).await.status(),
        StatusCode::OK
    );
    let png = sample_png();
    let response = upload(&server, &manager, png).await;
    assert_eq!(
        response.json::<serde_json::Value>().await.unwrap()["mime"],
        "image/png"
    );
    let objects = walk_files(&server.db.data.path().join("media"));
    assert_eq!(objects.len(), 2, "{objects:?}");

    let url = server.url(&format!("/api/v1/media/{sha}"));
    let head = server
        .client
        .head(&url)
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(
        head.headers()[header::CONTENT_LENGTH],
        clip.len().to_string().as_str()
    );
    let missing = server
        .client
        .head(server.url(&format!("/api/v1/media/{}", "0".repeat(64))))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    let full = server
        .client
        .get(&url)
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(full.status(), StatusCode::OK);
    let etag = format!("\"{sha}\"");
    assert_eq!(full.headers()[header::ETAG], etag.as_str());
    assert!(
        full.headers()[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    assert_eq!(full.headers()[header::ACCEPT_RANGES], "bytes");
    assert_eq!(full.bytes().await.unwrap().as_ref(), clip);

    let get = |range: &'static str, if_range: Option<&str>| {
        let mut request = server
            .client
            .get(&url)
            .bearer_auth(&viewer)
            .header(header::RANGE, range);
        if let Some(tag) = if_range {
            request = request.header(header::IF_RANGE, tag);
        }
        request.send()
    };
    let part = get("bytes=10-19", None).await.unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        part.headers()[header::CONTENT_RANGE],
        format!("bytes 10-19/{}", clip.len()).as_str()
    );
    assert_eq!(part.bytes().await.unwrap().as_ref(), &clip[10..20]);
    // Resume from an offset to the end.
    let tail = get("bytes=100-", Some(&etag)).await.unwrap();
    assert_eq!(tail.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(tail.bytes().await.unwrap().as_ref(), &clip[100..]);
    // The validator changed: the whole file instead.
    let stale = get("bytes=100-", Some("\"something-else\"")).await.unwrap();
    assert_eq!(stale.status(), StatusCode::OK);
    assert_eq!(stale.bytes().await.unwrap().len(), clip.len());
    let beyond = get("bytes=99999999-", None).await.unwrap();
    assert_eq!(beyond.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        beyond.headers()[header::CONTENT_RANGE],
        format!("bytes */{}", clip.len()).as_str()
    );

    let cached = server
        .client
        .get(&url)
        .bearer_auth(&viewer)
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);

    let tricky = server
        .client
        .get(server.url("/api/v1/media/..%2F..%2Fekran.db"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(tricky.status(), StatusCode::BAD_REQUEST);
    server.stop().await;
}

async fn refused_uploads_leave_nothing_behind(backend: Backend) {
    let db = TestDb::new(backend).await;
    let clip = sample_mp4();
    let limit = clip.len() as u64 - 1;
    let server = TestServer::start_with(db, |config| config.max_upload_bytes = limit).await;
    let manager = server.token(Role::Manager).await;

    let response = upload(&server, &manager, clip).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(error_message(response).await.contains(&limit.to_string()));

    // Streamed without a length: the limit still holds. The server answers
    // 413 and closes while the client may still be sending, so the client
    // sees either the 413 or a connection closed mid-body.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        clip.chunks(1000).map(|c| Ok(c.to_vec())).collect();
    let response = server
        .client
        .post(server.url("/api/v1/media"))
        .bearer_auth(&manager)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await;
    if let Ok(response) = response {
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    let response = upload(&server, &manager, b"#!/bin/sh\necho not a video\n").await;
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(error_message(response).await.contains("PNG"));
    assert_eq!(
        upload(&server, &manager, b"").await.status(),
        StatusCode::BAD_REQUEST
    );

    let png = sample_png();
    let response = server
        .client
        .post(server.url("/api/v1/media"))
        .bearer_auth(&manager)
        .header("x-ekran-sha256", "ab".repeat(32))
        .body(png.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(error_message(response).await.contains("corrupted"));

    assert!(walk_files(&server.db.data.path().join("media")).is_empty());
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM media")
        .fetch_one(server.state.db().pool())
        .await
        .unwrap();
    assert_eq!(rows, 0);
    // Still serving.
    assert_eq!(
        upload(&server, &manager, png).await.status(),
        StatusCode::CREATED
    );
    server.stop().await;
}

async fn devices_download_with_signed_requests(backend: Backend) {
    let server = TestServer::start(backend).await;
    let device = TestDevice::enroll_approved(&server, "kyiv-1", &[], "kyiv-lobby").await;
    let png = sample_png();
    let sha = sha256_hex(png);
    upload(&server, &server.admin, png).await;
    let path = format!("/api/v1/media/{sha}");
    let response = device
        .request(&server, "GET", &path, b"")
        .header(header::RANGE, "bytes=0-7")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(response.bytes().await.unwrap().as_ref(), &png[..8]);
    let anonymous = server.client.get(server.url(&path)).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    server.stop().await;
}

/// Every regular file under `dir`, recursively.
fn walk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk_files(&path));
        } else {
            files.push(path);
        }
    }
    files
}
