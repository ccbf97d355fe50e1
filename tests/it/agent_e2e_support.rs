//! Harness of the agent's end-to-end tests: the real server (in process,
//! SQLite in a temp dir, loopback port 0), a player config pointing at it,
//! and the operator's side (venues, approval, media upload, publish)
//! through the server's HTTP API.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use ekran::agent::client::{DeviceClient, ServerClock};
use ekran::agent::config::PlayerConfig;
use ekran::agent::enroll::{self, EnrollOptions, PairingEvent};
use ekran::server::auth::Role;
use ekran::trust::TrustState;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tempfile::TempDir;

use crate::server_support::{Backend, TestDb, TestServer};

/// The venue every test screen stands in.
pub const VENUE: &str = "kyiv-mall";

/// A server with one venue, and a player data dir.
pub struct Rig {
    pub server: TestServer,
    pub manager: String,
    pub player_dir: TempDir,
}

impl Rig {
    pub async fn start() -> Self {
        Self::start_on(Backend::Sqlite, |_| {}).await
    }

    /// Starts with the server's config adjusted by `tweak`.
    pub async fn start_with(tweak: impl FnOnce(&mut ekran::server::Config)) -> Self {
        Self::start_on(Backend::Sqlite, tweak).await
    }

    /// Starts on `backend`, with the server's config adjusted by `tweak`.
    pub async fn start_on(
        backend: Backend,
        tweak: impl FnOnce(&mut ekran::server::Config),
    ) -> Self {
        let server = TestServer::start_with(TestDb::new(backend).await, tweak).await;
        let response = server
            .client
            .post(server.url("/api/v1/venues"))
            .bearer_auth(&server.admin)
            .json(&json!({"id": VENUE, "timezone": "Europe/Kyiv"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        let manager = server.token(Role::Manager).await;
        Self {
            server,
            manager,
            player_dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A player config for this server with fast retries.
    pub fn config(&self) -> PlayerConfig {
        player_config(&self.server.base, self.player_dir.path())
    }

    /// Approves a pairing code as the operator does.
    pub async fn approve(&self, code: &str, screen_id: &str) -> reqwest::Response {
        self.server
            .client
            .post(self.server.url(&format!("/api/v1/pairings/{code}/approve")))
            .bearer_auth(&self.server.admin)
            .json(&json!({"venue": VENUE, "screen_id": screen_id, "groups": ["lobby"]}))
            .send()
            .await
            .unwrap()
    }

    /// Enrolls a box with a fresh key in `config.data_dir` as screen
    /// `screen_id`, approving its code as soon as it is shown.
    pub async fn enroll_box(&self, config: &PlayerConfig, screen_id: &str) -> TrustState {
        let key = enroll::load_or_create_screen_key(&config.screen_key_path()).unwrap();
        let client =
            DeviceClient::new(&config.server_url, key, Arc::new(ServerClock::system())).unwrap();
        let (events, mut shown) = tokio::sync::mpsc::unbounded_channel();
        let trust_dir = config.trust_dir();
        let options = EnrollOptions::from_config(config);
        let enrolling = tokio::spawn(async move {
            enroll::enroll(
                &client,
                &trust_dir,
                &options,
                move |event| events.send(event).unwrap(),
                std::future::pending(),
            )
            .await
        });
        let Some(PairingEvent::Show(pairing)) = shown.recv().await else {
            panic!("no pairing code shown")
        };
        let response = self.approve(&pairing.code, screen_id).await;
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        within(Duration::from_secs(20), enrolling)
            .await
            .unwrap()
            .unwrap()
    }

    /// Where the server keeps the bytes of media `sha256`.
    pub fn stored_media_path(&self, sha256: &str) -> std::path::PathBuf {
        self.server
            .db
            .data
            .path()
            .join(ekran::server::MEDIA_DIR)
            .join(&sha256[..2])
            .join(sha256)
    }

    /// Uploads media bytes as a manager; returns their SHA-256.
    pub async fn upload_media(&self, bytes: &[u8]) -> String {
        let response = self
            .server
            .client
            .post(self.server.url("/api/v1/media"))
            .bearer_auth(&self.manager)
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{}",
            response.text().await.unwrap()
        );
        hex::encode(Sha256::digest(bytes))
    }

    /// Publishes a playlist of stills (`(item id, media path, sha)`) for
    /// `screen_id`; returns the manifest version the screen got.
    pub async fn publish(
        &self,
        campaign_id: &str,
        screen_id: &str,
        stills: &[(&str, &str, &str)],
    ) -> u64 {
        let today = jiff::Zoned::now().date();
        let start = today.checked_sub(jiff::Span::new().days(1)).unwrap();
        let end = today.checked_add(jiff::Span::new().days(30)).unwrap();
        let mut source = format!(
            "campaign = \"Campaign {campaign_id}\"\nid = \"{campaign_id}\"\ntimezone = \"Europe/Kyiv\"\n\n\
             [targets]\nscreens = [\"{screen_id}\"]\n\n[flight]\nstart = {start}\nend = {end}\n"
        );
        let mut media = serde_json::Map::new();
        for (id, path, sha) in stills {
            source.push_str(&format!(
                "\n[[item]]\nid = \"{id}\"\nmedia = \"{path}\"\nduration = \"5s\"\n"
            ));
            media.insert((*path).to_owned(), json!(sha));
        }
        let response = self
            .server
            .client
            .post(self.server.url("/api/v1/playlists"))
            .bearer_auth(&self.manager)
            .json(&json!({"file_name": format!("{campaign_id}.toml"), "source": source, "media": media}))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "publish failed");
        let result: serde_json::Value = response.json().await.unwrap();
        result["screens"]
            .as_array()
            .unwrap()
            .iter()
            .find(|screen| screen["screen_id"] == screen_id)
            .and_then(|screen| screen["version"].as_u64())
            .unwrap_or_else(|| panic!("screen {screen_id} not published: {result}"))
    }
}

/// A player config for `server_url` keeping its state in `data_dir`, with
/// retries fast enough for tests.
pub fn player_config(server_url: &str, data_dir: &Path) -> PlayerConfig {
    let mut config = PlayerConfig {
        server_url: server_url.to_owned(),
        data_dir: data_dir.to_owned(),
        ..PlayerConfig::default()
    };
    config.sync.backoff_base = Duration::from_millis(20);
    config.sync.backoff_cap = Duration::from_millis(200);
    config.download.backoff_base = Duration::from_millis(20);
    config.download.backoff_cap = Duration::from_millis(200);
    config.sync.heartbeat_interval = Duration::from_millis(200);
    config
}

/// A small valid-looking PNG (the server sniffs the signature) with `seed` in it.
pub fn png(seed: &str) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    bytes.extend_from_slice(seed.as_bytes());
    bytes.extend(std::iter::repeat_n(0x5a, 4096));
    bytes
}

/// Awaits `future`, failing the test after `limit` instead of hanging.
pub async fn within<T>(limit: Duration, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, future)
        .await
        .expect("timed out waiting")
}

/// Polls `check` every 20 ms until it returns `Some`, for at most `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
