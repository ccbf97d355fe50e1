//! Publishing playlists into signed per-screen manifests: ETag/304,
//! long-poll woken by a publication, strictly increasing versions under
//! concurrent publishers (two server instances on one PostgreSQL).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ekran::manifest::Manifest;
use ekran::server::auth::Role;
use reqwest::StatusCode;
use reqwest::header;
use serde_json::json;

use crate::both_backends;
use crate::server_support::{
    Backend, TestDevice, TestServer, error_message, sample_mp4, sample_png, sha256_hex, upload,
};

both_backends!(
    publish_compiles_signed_manifests_for_targeted_screens,
    long_poll_returns_as_soon_as_a_version_is_published,
    concurrent_publishers_never_reuse_a_version,
);

/// A campaign with one clip and one poster, targeting a group and a glob.
pub fn playlist_source(campaign_id: &str, groups: &[&str]) -> String {
    format!(
        r#"campaign = "Campaign {campaign_id}"
id = "{campaign_id}"
timezone = "Europe/Kyiv"

[targets]
groups = {groups:?}
screens = ["glob-*"]

[flight]
start = 2026-11-01
end = 2026-12-31

[[item]]
id = "clip"
media = "media/clip.mp4"
weight = 2

[[item]]
id = "poster"
media = "media/poster.png"
duration = "10s"

[[ticker]]
text = "Hotline: 0 800 500 335"
"#
    )
}

/// Uploads the sample media and publishes `source`; returns the response.
pub async fn publish(server: &TestServer, token: &str, source: &str) -> reqwest::Response {
    let mut media = BTreeMap::new();
    for (path, bytes) in [
        ("media/clip.mp4", sample_mp4()),
        ("media/poster.png", sample_png()),
    ] {
        let response = upload(server, token, bytes).await;
        assert!(
            response.status().is_success(),
            "upload {path}: {}",
            response.status()
        );
        media.insert(path, sha256_hex(bytes));
    }
    server
        .client
        .post(server.url("/api/v1/playlists"))
        .bearer_auth(token)
        .json(&json!({"file_name": "playlists/test.toml", "source": source, "media": media}))
        .send()
        .await
        .unwrap()
}

/// Fetches and verifies a device's manifest; returns (etag, manifest).
pub async fn fetch_manifest(server: &TestServer, device: &TestDevice) -> (String, Manifest) {
    let response = device
        .send(server, "GET", "/api/v1/device/manifest", b"")
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let etag = response.headers()[header::ETAG]
        .to_str()
        .unwrap()
        .to_owned();
    let bytes = response.bytes().await.unwrap();
    let verified = ekran::dsse::verify(
        &bytes,
        ekran::dsse::MANIFEST_PAYLOAD_TYPE,
        &[server.state.signer().key.verifying_key()],
        1,
    )
    .expect("envelope verifies with the server key");
    (
        etag,
        Manifest::from_json(&verified.payload).expect("valid manifest"),
    )
}

async fn publish_compiles_signed_manifests_for_targeted_screens(backend: Backend) {
    let server = TestServer::start(backend).await;
    let targeted =
        TestDevice::enroll_approved(&server, "kyiv-1", &["supermarkets"], "kyiv-silpo-1").await;
    let by_glob = TestDevice::enroll_approved(&server, "kyiv-1", &[], "glob-lobby").await;
    let other = TestDevice::enroll_approved(&server, "kyiv-1", &["offices"], "kyiv-office-1").await;
    let manager = server.token(Role::Manager).await;
    let viewer = server.token(Role::Viewer).await;

    let source = playlist_source("udhr", &["supermarkets"]);
    let response = server
        .client
        .post(server.url("/api/v1/playlists"))
        .bearer_auth(&viewer)
        .json(&json!({"file_name": "t.toml", "source": source, "media": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = publish(&server, &manager, &source).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let result: serde_json::Value = response.json().await.unwrap();
    let screens: Vec<&str> = result["screens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["screen_id"].as_str().unwrap())
        .collect();
    assert_eq!(screens, ["glob-lobby", "kyiv-silpo-1"]);

    let (etag, manifest) = fetch_manifest(&server, &targeted).await;
    assert_eq!(manifest.screen_id, "kyiv-silpo-1");
    assert_eq!(manifest.timezone, "Europe/Kyiv");
    // Version 1 came with the approval (empty), 2 with the publication.
    assert_eq!(manifest.version, 2);
    assert_eq!(manifest.items.len(), 2);
    assert_eq!(manifest.items[0].campaign, "Campaign udhr");
    assert_eq!(manifest.items[0].media.sha256, sha256_hex(sample_mp4()));
    assert_eq!(manifest.items[0].media.mime, "video/mp4");
    assert_eq!(manifest.items[1].media.size, sample_png().len() as u64);
    assert_eq!(manifest.overlays.len(), 1);
    assert_eq!(
        manifest.root.keys,
        vec![server.state.signer().public_key_pem.clone()]
    );
    assert!(manifest.expires_at > manifest.issued_at);

    let (_, globbed) = fetch_manifest(&server, &by_glob).await;
    assert_eq!(globbed.items.len(), 2);
    let (_, untouched) = fetch_manifest(&server, &other).await;
    assert!(
        untouched.items.is_empty(),
        "a screen outside the targets gets nothing"
    );

    // Unchanged: 304 with the same ETag.
    let response = targeted
        .request(&server, "GET", "/api/v1/device/manifest", b"")
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(response.headers()[header::ETAG], etag.as_str());

    // Retargeting away from a screen takes the content off it.
    let response = publish(&server, &manager, &playlist_source("udhr", &["offices"])).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let (_, now_empty) = fetch_manifest(&server, &targeted).await;
    assert_eq!(now_empty.version, 3);
    assert!(now_empty.items.is_empty());
    let (_, office) = fetch_manifest(&server, &other).await;
    assert_eq!(office.items.len(), 2);

    // A playlist naming media the server lacks is refused, nothing changes.
    let response = server
        .client
        .post(server.url("/api/v1/playlists"))
        .bearer_auth(&manager)
        .json(&json!({"file_name": "x.toml", "source": playlist_source("other", &["offices"]),
                      "media": {"media/clip.mp4": "ab".repeat(32), "media/poster.png": sha256_hex(sample_png())}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(error_message(response).await.contains("not on the server"));
    // A clip's name with a poster's bytes is refused as well.
    let response = server
        .client
        .post(server.url("/api/v1/playlists"))
        .bearer_auth(&manager)
        .json(&json!({"file_name": "x.toml", "source": playlist_source("other", &["offices"]),
                      "media": {"media/clip.mp4": sha256_hex(sample_png()), "media/poster.png": sha256_hex(sample_png())}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(error_message(response).await.contains("image/png"));
    let (_, unchanged) = fetch_manifest(&server, &other).await;
    assert_eq!(unchanged.version, office.version);
    server.stop().await;
}

async fn long_poll_returns_as_soon_as_a_version_is_published(backend: Backend) {
    let server = TestServer::start(backend).await;
    let device =
        TestDevice::enroll_approved(&server, "kyiv-1", &["supermarkets"], "kyiv-silpo-1").await;
    let (etag, first) = fetch_manifest(&server, &device).await;

    let poll = device
        .request(&server, "GET", "/api/v1/device/manifest?wait=60", b"")
        .header(header::IF_NONE_MATCH, &etag)
        .send();
    let started = Instant::now();
    let publisher = async {
        // Give the poll time to start waiting; the answer must still come
        // from the publication, long before the 60 s.
        tokio::time::sleep(Duration::from_millis(300)).await;
        publish(
            &server,
            &server.admin,
            &playlist_source("udhr", &["supermarkets"]),
        )
        .await
    };
    let (response, published) = tokio::join!(poll, publisher);
    assert_eq!(published.status(), StatusCode::CREATED);
    let response = response.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let version: u64 = response.headers()["x-ekran-manifest-version"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(version, first.version + 1);

    // A short wait with nothing new ends in 304.
    let (etag, _) = fetch_manifest(&server, &device).await;
    let response = device
        .request(&server, "GET", "/api/v1/device/manifest?wait=1", b"")
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);

    // Shutdown ends a pending long-poll instead of waiting it out.
    let poll = device
        .request(&server, "GET", "/api/v1/device/manifest?wait=60", b"")
        .header(header::IF_NONE_MATCH, &etag)
        .send();
    let started = Instant::now();
    let handle = tokio::spawn(poll);
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.stop().await;
    let response = handle.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    assert!(started.elapsed() < Duration::from_secs(20));
}

async fn concurrent_publishers_never_reuse_a_version(backend: Backend) {
    let server = TestServer::start(backend).await;
    let device =
        TestDevice::enroll_approved(&server, "kyiv-1", &["supermarkets"], "kyiv-silpo-1").await;
    let source = playlist_source("udhr", &["supermarkets"]);
    // Media first, so the concurrent part is only publishing.
    assert_eq!(
        publish(&server, &server.admin, &source).await.status(),
        StatusCode::CREATED
    );

    // On PostgreSQL a second server instance with its own pool and its own
    // notifier stands in for a second process behind a load balancer.
    let second = match backend {
        Backend::Postgres => {
            let state = ekran::server::AppState::open(server.db.config())
                .await
                .unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            tokio::spawn(ekran::server::serve(
                state,
                listener,
                std::future::pending(),
            ));
            Some(base)
        }
        Backend::Sqlite => None,
    };
    let bases = [
        server.base.clone(),
        second.clone().unwrap_or_else(|| server.base.clone()),
    ];

    // A device long-polling on instance 1 is woken by a publication on instance 2.
    let (etag, before) = fetch_manifest(&server, &device).await;
    let poll = device
        .request(&server, "GET", "/api/v1/device/manifest?wait=60", b"")
        .header(header::IF_NONE_MATCH, &etag)
        .send();

    let media = BTreeMap::from([
        ("media/clip.mp4", sha256_hex(sample_mp4())),
        ("media/poster.png", sha256_hex(sample_png())),
    ]);
    let rounds = 6;
    let publishes = (0..rounds * 2).map(|i| {
        let url = format!("{}/api/v1/playlists", bases[i % 2]);
        let body = json!({"file_name": "t.toml", "source": source, "media": media});
        let request = server
            .client
            .post(url)
            .bearer_auth(&server.admin)
            .json(&body)
            .send();
        async move {
            let response = request.await.unwrap();
            assert_eq!(response.status(), StatusCode::CREATED);
            response.json::<serde_json::Value>().await.unwrap()["screens"][0]["version"]
                .as_u64()
                .unwrap()
        }
    });
    let started = Instant::now();
    let (mut versions, woken) = tokio::join!(futures_util::future::join_all(publishes), poll);
    let woken = woken.unwrap();
    assert_eq!(woken.status(), StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(30));

    versions.sort_unstable();
    let expected: Vec<u64> = (before.version + 1..=before.version + (rounds * 2) as u64).collect();
    assert_eq!(
        versions, expected,
        "every publication got its own next version"
    );
    let stored: Vec<i64> = sqlx::query_scalar(
        "SELECT version FROM publications WHERE screen_id = $1 ORDER BY version",
    )
    .bind("kyiv-silpo-1")
    .fetch_all(server.state.db().pool())
    .await
    .unwrap();
    assert_eq!(
        stored,
        (1..=before.version as i64 + (rounds * 2) as i64).collect::<Vec<_>>()
    );
    let (_, last) = fetch_manifest(&server, &device).await;
    assert_eq!(last.version, *expected.last().unwrap());
    server.stop().await;
}

/// Two `ekran server` processes on one PostgreSQL behind an imaginary load
/// balancer: versions stay strictly increasing, and a device long-polling
/// one process is woken by a publication on the other (LISTEN/NOTIFY).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_server_processes_on_one_postgresql() {
    use crate::server_support::{ServerProcess, TestDb};
    let db = TestDb::new(Backend::Postgres).await;
    let first = ServerProcess::spawn(&db).await;
    let second = ServerProcess::spawn(&db).await;
    let state = ekran::server::db::Db::open(db.database_url().as_deref(), db.data.path())
        .await
        .unwrap();
    let admin = ekran::server::auth::create_token(&state, Role::Admin, "two-processes")
        .await
        .unwrap()
        .secret;
    let client = reqwest::Client::new();

    let response = client
        .post(format!("{}/api/v1/venues", first.base))
        .bearer_auth(&admin)
        .json(&json!({"id": "kyiv-1", "timezone": "Europe/Kyiv"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let device = TestDevice::new();
    let signed = |base: &str, method: &str, path: &str, body: Vec<u8>| {
        client
            .request(method.parse().unwrap(), format!("{base}{path}"))
            .header("authorization", device.authorization(method, path, &body))
            .body(body)
    };
    let enroll = serde_json::to_vec(&json!({"public_key": device.public_pem()})).unwrap();
    let pairing: serde_json::Value = signed(&first.base, "POST", "/api/v1/enroll", enroll)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let code = pairing["code"].as_str().unwrap();
    let response = client
        .post(format!("{}/api/v1/pairings/{code}/approve", second.base))
        .bearer_auth(&admin)
        .json(&json!({"venue": "kyiv-1", "groups": ["supermarkets"], "screen_id": "kyiv-silpo-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let mut media = BTreeMap::new();
    for (path, bytes) in [
        ("media/clip.mp4", sample_mp4()),
        ("media/poster.png", sample_png()),
    ] {
        let response = client
            .post(format!("{}/api/v1/media", first.base))
            .bearer_auth(&admin)
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
        media.insert(path, sha256_hex(bytes));
    }

    let source = playlist_source("udhr", &["supermarkets"]);
    let publish = |base: String| {
        let request = client
            .post(format!("{base}/api/v1/playlists"))
            .bearer_auth(&admin)
            .json(&json!({"file_name": "udhr.toml", "source": source, "media": media}))
            .send();
        async move {
            let response = request.await.unwrap();
            assert_eq!(response.status(), StatusCode::CREATED);
            response.json::<serde_json::Value>().await.unwrap()["screens"][0]["version"]
                .as_u64()
                .unwrap()
        }
    };

    // Long-poll on the first process, publish on the second: woken well
    // before the 10 s safety re-check, so by the NOTIFY.
    let current = signed(&first.base, "GET", "/api/v1/device/manifest", Vec::new())
        .send()
        .await
        .unwrap();
    let etag = current.headers()[header::ETAG].to_str().unwrap().to_owned();
    let poll = signed(
        &first.base,
        "GET",
        "/api/v1/device/manifest?wait=60",
        Vec::new(),
    )
    .header(header::IF_NONE_MATCH, &etag)
    .send();
    let started = Instant::now();
    let late_publish = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        publish(second.base.clone()).await
    };
    let (woken, version) = tokio::join!(poll, late_publish);
    let woken = woken.unwrap();
    assert_eq!(woken.status(), StatusCode::OK);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(version, 2, "approval made v1");

    // Both processes publishing at once: every publication its own next version.
    let publishes = (0..8).map(|i| {
        publish(if i % 2 == 0 {
            second.base.clone()
        } else {
            first.base.clone()
        })
    });
    let mut versions = futures_util::future::join_all(publishes).await;
    versions.sort_unstable();
    assert_eq!(versions, (3..=10).collect::<Vec<u64>>());

    assert!(first.terminate().await.success());
    assert!(second.terminate().await.success());
    state.close().await;
}
