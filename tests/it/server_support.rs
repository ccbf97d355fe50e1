//! Shared harness of the server tests: a real server on a loopback port 0
//! over SQLite in a temp dir or PostgreSQL (127.0.0.1:5432, database `test`)
//! in a freshly created schema that is dropped afterwards.

use std::time::Duration;

use ekran::server::auth::{self, Role};
use ekran::server::{AppState, Config};
use rand::RngCore;
use sqlx::Connection;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server tests use; `EKRAN_TEST_PG_URL` overrides it.
pub fn pg_admin_url() -> String {
    std::env::var("EKRAN_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A fresh PostgreSQL schema, dropped when this value is dropped.
pub struct PgSchema {
    pub name: String,
}

impl PgSchema {
    pub async fn create() -> Self {
        let mut raw = [0u8; 6];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let name = format!("ekran_test_{}", hex::encode(raw));
        let mut conn = sqlx::PgConnection::connect(&pg_admin_url()).await.expect(
            "PostgreSQL at 127.0.0.1:5432 (db test) must be reachable for the server tests",
        );
        sqlx::raw_sql(&format!("CREATE SCHEMA {name}"))
            .execute(&mut conn)
            .await
            .expect("create test schema");
        Self { name }
    }

    /// A connection URL whose sessions use only this schema.
    pub fn url(&self) -> String {
        format!(
            "{}?options=-c%20search_path%3D{}",
            pg_admin_url(),
            self.name
        )
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop may run inside an async test; do the blocking cleanup on its own thread.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&pg_admin_url()).await {
                    let _ = sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

/// A database for one test: a temp dir (always, for the data dir) and, on
/// PostgreSQL, a schema.
pub struct TestDb {
    pub data: TempDir,
    pub pg: Option<PgSchema>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        let data = tempfile::tempdir().expect("tempdir");
        let pg = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(PgSchema::create().await),
        };
        Self { data, pg }
    }

    pub fn database_url(&self) -> Option<String> {
        self.pg.as_ref().map(PgSchema::url)
    }

    pub fn config(&self) -> Config {
        let mut config = Config::new(self.data.path());
        config.database_url = self.database_url();
        config
    }
}

/// A running server with an admin token.
pub struct TestServer {
    pub base: String,
    pub state: AppState,
    pub admin: String,
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    // Dropped last: the schema outlives the server using it.
    pub db: TestDb,
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(TestDb::new(backend).await, |_| {}).await
    }

    /// Starts on `db` with a config adjusted by `tweak`.
    pub async fn start_with(db: TestDb, tweak: impl FnOnce(&mut Config)) -> Self {
        let mut config = db.config();
        tweak(&mut config);
        let state = AppState::open(config).await.expect("open server state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (shutdown, stop) = oneshot::channel::<()>();
        let serving = state.clone();
        let task = tokio::spawn(async move {
            ekran::server::serve(serving, listener, async {
                let _ = stop.await;
            })
            .await
            .expect("server ran");
        });
        let admin = auth::create_token(state.db(), Role::Admin, "test-admin")
            .await
            .expect("admin token")
            .secret;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        Self {
            base,
            state,
            admin,
            client,
            shutdown: Some(shutdown),
            task: Some(task),
            db,
        }
    }

    /// A new token with `role`.
    pub async fn token(&self, role: Role) -> String {
        auth::create_token(self.state.db(), role, &format!("test-{role}"))
            .await
            .expect("token")
            .secret
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// Runs an async test body once per backend: `both_backends!(name, ...)`
/// defines `name::sqlite` and `name::postgres` calling `name(Backend)`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::server_support::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::server_support::Backend::Postgres).await
            }
        }
    )*};
}

/// Reads a JSON error body's message.
pub async fn error_message(response: reqwest::Response) -> String {
    let body: serde_json::Value = response.json().await.expect("JSON error body");
    body["error"].as_str().expect("error field").to_owned()
}

/// A screen box for tests: its own key, and signed requests with it.
pub struct TestDevice {
    pub key: ed25519_dalek::SigningKey,
    pub screen_id: Option<String>,
}

impl Default for TestDevice {
    fn default() -> Self {
        Self::new()
    }
}

impl TestDevice {
    pub fn new() -> Self {
        Self {
            key: ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng),
            screen_id: None,
        }
    }

    pub fn public_pem(&self) -> String {
        ekran::keys::verifying_key_to_pem(&self.key.verifying_key())
    }

    /// The `Authorization` value for a request, signed now.
    pub fn authorization(&self, method: &str, path: &str, body: &[u8]) -> String {
        ekran::server::device::sign_request(
            &self.key,
            method,
            path,
            body,
            jiff::Timestamp::now().as_millisecond(),
        )
    }

    /// Sends a signed request.
    pub async fn send(
        &self,
        server: &TestServer,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> reqwest::Response {
        self.request(server, method, path, body)
            .send()
            .await
            .expect("device request")
    }

    /// Builds a signed request (to add headers before sending).
    pub fn request(
        &self,
        server: &TestServer,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> reqwest::RequestBuilder {
        server
            .client
            .request(method.parse().expect("method"), server.url(path))
            .header("authorization", self.authorization(method, path, body))
            .header("content-type", "application/json")
            .body(body.to_vec())
    }

    /// Registers the key and returns the pairing code.
    pub async fn enroll(&self, server: &TestServer) -> String {
        let body = serde_json::to_vec(&serde_json::json!({ "public_key": self.public_pem() }))
            .expect("json");
        let response = self.send(server, "POST", "/api/v1/enroll", &body).await;
        assert_eq!(response.status(), reqwest::StatusCode::CREATED);
        let pairing: serde_json::Value = response.json().await.expect("pairing");
        pairing["code"].as_str().expect("code").to_owned()
    }

    /// Enrolls and has the admin approve into `venue` (created if missing) and `groups`.
    pub async fn enroll_approved(
        server: &TestServer,
        venue: &str,
        groups: &[&str],
        screen_id: &str,
    ) -> Self {
        ensure_venue(server, venue, "Europe/Kyiv").await;
        let mut device = Self::new();
        let code = device.enroll(server).await;
        let response = server
            .client
            .post(server.url(&format!("/api/v1/pairings/{code}/approve")))
            .bearer_auth(&server.admin)
            .json(&serde_json::json!({ "venue": venue, "groups": groups, "screen_id": screen_id }))
            .send()
            .await
            .expect("approve");
        assert_eq!(response.status(), reqwest::StatusCode::CREATED);
        device.screen_id = Some(screen_id.to_owned());
        device
    }
}

/// Creates a venue unless it exists.
pub async fn ensure_venue(server: &TestServer, id: &str, timezone: &str) {
    let response = server
        .client
        .post(server.url("/api/v1/venues"))
        .bearer_auth(&server.admin)
        .json(&serde_json::json!({ "id": id, "timezone": timezone }))
        .send()
        .await
        .expect("create venue");
    assert!(
        response.status() == reqwest::StatusCode::CREATED
            || response.status() == reqwest::StatusCode::CONFLICT,
        "venue: {}",
        response.status()
    );
}

/// A small real H.264 MP4 clip made by GStreamer (once per test process).
pub fn sample_mp4() -> &'static [u8] {
    static CLIP: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    CLIP.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("clip.mp4");
        let status = std::process::Command::new("gst-launch-1.0")
            .args([
                "-q",
                "videotestsrc",
                "num-buffers=15",
                "!",
                "video/x-raw,width=160,height=90,framerate=15/1",
            ])
            .args(["!", "x264enc", "!", "mp4mux", "!", "filesink"])
            .arg(format!("location={}", path.display()))
            .status()
            .expect("gst-launch-1.0 must be installed (gstreamer1.0-tools)");
        assert!(
            status.success(),
            "gst-launch-1.0 failed to make the test clip"
        );
        std::fs::read(&path).expect("read clip")
    })
}

/// A small real PNG made by GStreamer (once per test process).
pub fn sample_png() -> &'static [u8] {
    static POSTER: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    POSTER.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("poster.png");
        let status = std::process::Command::new("gst-launch-1.0")
            .args([
                "-q",
                "videotestsrc",
                "num-buffers=1",
                "pattern=ball",
                "!",
                "video/x-raw,width=64,height=64",
            ])
            .args(["!", "pngenc", "!", "filesink"])
            .arg(format!("location={}", path.display()))
            .status()
            .expect("gst-launch-1.0 must be installed (gstreamer1.0-tools)");
        assert!(
            status.success(),
            "gst-launch-1.0 failed to make the test poster"
        );
        std::fs::read(&path).expect("read poster")
    })
}

/// Uploads media as `token`'s holder and returns the response.
pub async fn upload(server: &TestServer, token: &str, bytes: &[u8]) -> reqwest::Response {
    server
        .client
        .post(server.url("/api/v1/media"))
        .bearer_auth(token)
        .body(bytes.to_vec())
        .send()
        .await
        .expect("upload")
}

/// Hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// An `ekran server` child process on a loopback port.
pub struct ServerProcess {
    child: Option<std::process::Child>,
    /// `http://127.0.0.1:PORT`
    pub base: String,
}

impl ServerProcess {
    /// Starts `ekran server` on `db` (its data dir, and DATABASE_URL on PostgreSQL).
    pub async fn spawn(db: &TestDb) -> Self {
        Self::spawn_on(db, "127.0.0.1:0").await
    }

    /// [`Self::spawn`] listening on `listen` (a restart on the port that
    /// clients already point at: `127.0.0.1:PORT` of an earlier [`Self::base`]).
    pub async fn spawn_on(db: &TestDb, listen: &str) -> Self {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_ekran"));
        command
            .args(["server", "--listen", listen, "--data"])
            .arg(db.data.path())
            .env("RUST_LOG", "info")
            .stderr(std::process::Stdio::piped());
        match db.database_url() {
            Some(url) => command.env("DATABASE_URL", url),
            None => command.env_remove("DATABASE_URL"),
        };
        let mut child = command.spawn().expect("spawn ekran server");
        let stderr = child.stderr.take().expect("stderr");
        // The log line "ekran server listening address=127.0.0.1:PORT" tells the port.
        let address = tokio::task::spawn_blocking(move || {
            use std::io::BufRead;
            let mut reader = std::io::BufReader::new(stderr);
            let mut line = String::new();
            loop {
                line.clear();
                assert!(
                    reader.read_line(&mut line).expect("read log") > 0,
                    "server exited before listening"
                );
                let plain = strip_ansi(&line);
                if let Some(rest) = plain.split("address=").nth(1) {
                    let address = rest.split_whitespace().next().expect("address").to_owned();
                    // Keep draining the log so the child never blocks on a full pipe.
                    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
                    return address;
                }
            }
        })
        .await
        .expect("log reader");
        Self {
            child: Some(child),
            base: format!("http://{address}"),
        }
    }

    /// The `host:port` it listens on.
    #[cfg_attr(not(feature = "player"), allow(dead_code))]
    pub fn address(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// SIGKILL (a crash or power cut of the server host) and waits.
    #[cfg_attr(not(feature = "player"), allow(dead_code))]
    pub fn kill(mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill server");
            child.wait().expect("wait for server");
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let pid = child.id().to_string();
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(killed.success());
        tokio::task::spawn_blocking(move || child.wait().expect("wait"))
            .await
            .expect("join")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // A test that failed half-way: do not leave the server running.
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Removes terminal colour sequences (`ESC [ … m`) from a log line.
pub fn strip_ansi(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}
