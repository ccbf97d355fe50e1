//! Harness of the full-loop test ([`super::player_e2e`]): the `ekran`
//! command line, a headless `ekran player` child whose log the test reads
//! line by line, snapshots, and the server's views (audit export, screen
//! status with the last heartbeat, and its publications table, which the
//! test rewrites to serve envelopes the server never signed).

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ekran::pop::{AuditBundle, PlayRecord};
use ekran::server::db::Db;
use sqlx::Row;

use crate::server_support::{TestDb, strip_ansi};

pub const SCREEN: &str = "e2e-box";

pub fn ekran(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ekran"))
        .args(args)
        .env_remove("EKRAN_SERVER")
        .env_remove("EKRAN_TOKEN")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap()
}

pub fn ok(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A new token with `role`, made on the server's database by the CLI.
pub fn token(db: &TestDb, role: &str) -> String {
    let data = db.data.path().to_str().unwrap().to_owned();
    let mut args = vec!["token", "create", "--data", &data, "--role", role];
    let url = db.database_url();
    if let Some(url) = &url {
        args.extend(["--database-url", url]);
    }
    ok(&ekran(&args))
}

pub fn gst(args: &[&str], out: &Path) {
    let status = Command::new("gst-launch-1.0")
        .arg("-q")
        .args(args)
        .arg(format!("location={}", out.display()))
        .status()
        .expect("gst-launch-1.0 must be installed (gstreamer1.0-tools)");
    assert!(
        status.success(),
        "gst-launch-1.0 failed for {}",
        out.display()
    );
}

/// A 1 s 320x240 H.264 clip at 30 fps.
pub fn clip(out: &Path, pattern: &str) {
    let pattern = format!("pattern={pattern}");
    gst(
        &[
            "videotestsrc",
            "num-buffers=30",
            &pattern,
            "!",
            "video/x-raw,width=320,height=240,framerate=30/1",
            "!",
            "x264enc",
            "!",
            "mp4mux",
            "!",
            "filesink",
        ],
        out,
    );
}

/// A running `ekran player --headless`; its log lines arrive on `lines`.
pub struct Player {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
}

impl Player {
    pub fn start(config: &Path, snapshots: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ekran"))
            .args([
                "player",
                "--headless",
                "--refresh",
                "30",
                "--snapshot-every",
                "0.2",
            ])
            .arg("--snapshot-dir")
            .arg(snapshots)
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "info,ekran::agent::run=debug")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ekran player");
        let stderr = child.stderr.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                if sender.send(strip_ansi(&line)).is_err() {
                    return;
                }
            }
        });
        Player {
            child,
            lines,
            log: Vec::new(),
        }
    }

    /// The first log line (from now) that `matches`, within `limit`.
    pub fn wait_for(
        &mut self,
        limit: Duration,
        what: &str,
        matches: impl Fn(&str) -> bool,
    ) -> String {
        let now = self.mark();
        self.wait_since(now, limit, what, matches).1
    }

    /// Where the log stands now (for [`Self::wait_since`]).
    pub fn mark(&mut self) -> usize {
        while let Ok(line) = self.lines.try_recv() {
            self.log.push(line);
        }
        self.log.len()
    }

    /// The first log line from `mark` on (even one already read by another
    /// wait) that `matches`, within `limit`, and its index for the next mark.
    pub fn wait_since(
        &mut self,
        mark: usize,
        limit: Duration,
        what: &str,
        matches: impl Fn(&str) -> bool,
    ) -> (usize, String) {
        let mark = mark.min(self.log.len());
        if let Some(at) = self.log[mark..].iter().position(|line| matches(line)) {
            return (mark + at, self.log[mark + at].clone());
        }
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if matches(&line) {
                        return (self.log.len() - 1, line);
                    }
                }
                Err(_) => panic!(
                    "timed out waiting for {what}; player log:\n{}",
                    self.log.join("\n")
                ),
            }
        }
    }

    /// The lines logged so far from `mark` on.
    pub fn log_since(&mut self, mark: usize) -> &[String] {
        self.mark();
        &self.log[mark.min(self.log.len())..]
    }

    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        self.child.wait().unwrap()
    }
}

/// Waits until a snapshot in `dir` shows something on the black
/// background (the pairing screen's text).
pub fn until_drawn(dir: &Path, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let drawn = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .any(|entry| {
                image::open(entry.path()).is_ok_and(|image| {
                    image
                        .to_rgb8()
                        .pixels()
                        .filter(|pixel| pixel.0.iter().any(|&c| c > 128))
                        .count()
                        > 50
                })
            });
        if drawn {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no snapshot in {} shows the pairing screen",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until the newest snapshot in `dir`, taken after `after`, is all black.
pub fn until_black(dir: &Path, after: &Path, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let newest = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|entry| entry.path())
            .max()
            .filter(|newest| newest.as_path() > after);
        // A snapshot being written may not decode yet: try again.
        let black = newest.is_some_and(|path| is_black(&path) == Some(true));
        if black {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the screen never went black (fallback) in {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The value of `key=` in a tracing log line.
pub fn field(line: &str, key: &str) -> String {
    let rest = line
        .split(&format!("{key}="))
        .nth(1)
        .unwrap_or_else(|| panic!("no {key}= in {line}"));
    rest.split_whitespace()
        .next()
        .unwrap()
        .trim_matches('"')
        .to_owned()
}

/// The runtime the blocking test drives its HTTP calls on.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| tokio::runtime::Runtime::new().unwrap())
}

pub fn get_json<T: serde::de::DeserializeOwned>(url: String, token: &str) -> T {
    runtime().block_on(async {
        let response = reqwest::Client::new()
            .get(&url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{url}: {}",
            response.status()
        );
        response.json().await.unwrap()
    })
}

pub fn export(server: &str, viewer: &str) -> AuditBundle {
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let from = today.yesterday().unwrap();
    let to = today.tomorrow().unwrap();
    get_json(
        format!("{server}/api/v1/audit/export?from={from}&to={to}"),
        viewer,
    )
}

pub fn screen_records(bundle: &AuditBundle) -> Vec<PlayRecord> {
    let mut records: Vec<PlayRecord> = bundle
        .records
        .iter()
        .filter(|record| record.body.screen_id == SCREEN)
        .cloned()
        .collect();
    records.sort_by_key(|record| record.body.seq);
    records
}

/// Polls the server's export until `done` accepts the screen's records.
pub fn until_records(
    server: &str,
    viewer: &str,
    limit: Duration,
    what: &str,
    done: impl Fn(&[PlayRecord]) -> bool,
) -> AuditBundle {
    let deadline = Instant::now() + limit;
    loop {
        let bundle = export(server, viewer);
        if done(&screen_records(&bundle)) {
            return bundle;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; records: {:#?}",
            screen_records(&bundle)
                .iter()
                .map(|r| &r.body)
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `ekran pop verify` on the export, and no audit findings on the server.
pub fn assert_verifies(dir: &Path, server: &str, viewer: &str, bundle: &AuditBundle) {
    let file = dir.join(format!("export-{}.json", bundle.records.len()));
    std::fs::write(&file, serde_json::to_vec(bundle).unwrap()).unwrap();
    ok(&ekran(&["pop", "verify", file.to_str().unwrap()]));
    let findings: serde_json::Value = get_json(
        format!("{server}/api/v1/audit/findings?screen={SCREEN}"),
        viewer,
    );
    assert_eq!(findings, serde_json::json!([]), "audit findings");
}

/// Whether the snapshot at `path` is all black; `None` while it does not
/// decode (being written).
pub fn is_black(path: &Path) -> Option<bool> {
    let image = image::open(path).ok()?;
    Some(
        image
            .to_rgb8()
            .pixels()
            .all(|pixel| pixel.0.iter().all(|&c| c < 16)),
    )
}

/// The snapshots in `dir`, oldest first (names carry the time).
pub fn snapshots(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|entry| entry.path())
        .collect();
    paths.sort();
    paths
}

/// A 1 s 320x240 PNG still.
pub fn still(out: &Path, pattern: &str) {
    let pattern = format!("pattern={pattern}");
    gst(
        &[
            "videotestsrc",
            "num-buffers=1",
            &pattern,
            "!",
            "video/x-raw,width=320,height=240",
            "!",
            "pngenc",
            "!",
            "filesink",
        ],
        out,
    );
}

/// Hex SHA-256 of a file.
pub fn file_sha(path: &Path) -> String {
    crate::server_support::sha256_hex(&std::fs::read(path).unwrap())
}

/// The SHA-256 names of the verified media in the box's cache.
pub fn cached_media(box_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(box_dir.join("cache").join("media"))
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The screen's last heartbeat as the server shows it.
pub fn screen_status(server: &str, admin: &str) -> serde_json::Value {
    let screen: serde_json::Value = get_json(format!("{server}/api/v1/screens/{SCREEN}"), admin);
    screen["status"].clone()
}

/// Polls the screen's heartbeat until `done` accepts it.
pub fn until_status(
    server: &str,
    admin: &str,
    limit: Duration,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + limit;
    loop {
        let status = screen_status(server, admin);
        if done(&status) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; last heartbeat: {status:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The server's `publications` table, reached behind its back: what an
/// attacker with the database (or a broken replica) could serve.
pub struct Publications {
    db: Db,
}

impl Publications {
    pub fn open(test_db: &TestDb) -> Self {
        let url = test_db
            .database_url()
            .unwrap_or_else(|| Db::sqlite_url(test_db.data.path()));
        Self {
            db: runtime().block_on(Db::connect(&url)).unwrap(),
        }
    }

    /// The newest publication of the screen: (version, envelope JSON).
    pub fn latest(&self) -> (u64, String) {
        runtime().block_on(async {
            let row = sqlx::query(
                "SELECT version, envelope FROM publications WHERE screen_id = $1 ORDER BY version DESC LIMIT 1",
            )
            .bind(SCREEN)
            .fetch_one(self.db.pool())
            .await
            .unwrap();
            (
                u64::try_from(row.get::<i64, _>("version")).unwrap(),
                row.get("envelope"),
            )
        })
    }

    /// Makes the server serve `envelope` (bytes its signer never produced
    /// for this row) as its newest publication, with a new ETag, and wakes
    /// the long-polls of every server process on PostgreSQL (on SQLite the
    /// server re-reads within its recheck interval).
    pub fn serve_instead(&self, envelope: &str) {
        let (version, _) = self.latest();
        let etag = crate::server_support::sha256_hex(envelope.as_bytes());
        runtime().block_on(async {
            let changed = sqlx::query(
                "UPDATE publications SET envelope = $1, etag = $2 WHERE screen_id = $3 AND version = $4",
            )
            .bind(envelope)
            .bind(etag)
            .bind(SCREEN)
            .bind(i64::try_from(version).unwrap())
            .execute(self.db.pool())
            .await
            .unwrap();
            assert_eq!(changed.rows_affected(), 1);
            if self.db.backend() == ekran::server::db::Backend::Postgres {
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(ekran::server::publish::NOTIFY_CHANNEL)
                    .bind(SCREEN)
                    .execute(self.db.pool())
                    .await
                    .unwrap();
            }
        });
    }

    pub fn close(self) {
        runtime().block_on(self.db.pool().close());
    }
}

/// `envelope` with its payload's `"version":N` raised by one and its
/// signature kept: what a man in the middle would try.
pub fn tampered(envelope: &str) -> String {
    use base64::Engine as _;
    let mut json: serde_json::Value = serde_json::from_str(envelope).unwrap();
    let engine = base64::engine::general_purpose::STANDARD;
    let payload = engine.decode(json["payload"].as_str().unwrap()).unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    let version = manifest["version"].as_u64().unwrap();
    let text = String::from_utf8(payload).unwrap();
    let forged = text.replacen(
        &format!("\"version\":{version}"),
        &format!("\"version\":{}", version + 1),
        1,
    );
    assert_ne!(forged, text, "the payload names its version");
    json["payload"] = engine.encode(forged.as_bytes()).into();
    json.to_string()
}
