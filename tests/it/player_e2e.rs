//! The whole product end to end, as separate processes: `ekran server`,
//! `ekran token create`, `ekran screen approve`, `ekran push` and a headless
//! `ekran player` (sync agent + real GStreamer + wgpu on lavapipe). The
//! player's proof of play must reach the server verified, with presented
//! durations, and a SIGKILL mid-clip must end up as an `interrupted`
//! record in a chain that still verifies.

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ekran::pop::{AuditBundle, Outcome, PlayRecord};

use crate::server_support::{Backend, ServerProcess, TestDb, strip_ansi};

const SCREEN: &str = "e2e-box";

fn ekran(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ekran"))
        .args(args)
        .env_remove("EKRAN_SERVER")
        .env_remove("EKRAN_TOKEN")
        .output()
        .unwrap()
}

fn ok(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn token(data: &Path, role: &str) -> String {
    ok(&ekran(&[
        "token",
        "create",
        "--data",
        data.to_str().unwrap(),
        "--role",
        role,
    ]))
}

fn gst(args: &[&str], out: &Path) {
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
fn clip(out: &Path, pattern: &str) {
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
struct Player {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
}

impl Player {
    fn start(config: &Path, snapshots: &Path) -> Self {
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
    fn wait_for(&mut self, limit: Duration, what: &str, matches: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if matches(&line) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "timed out waiting for {what}; player log:\n{}",
                    self.log.join("\n")
                ),
            }
        }
    }

    /// Forgets the lines logged so far (older plays), so that the next
    /// [`Self::wait_for`] sees only what happens from now on.
    fn skip_backlog(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            self.log.push(line);
        }
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn terminate(mut self) -> std::process::ExitStatus {
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
fn until_drawn(dir: &Path, limit: Duration) {
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
fn until_black(dir: &Path, after: &Path, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let newest = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|entry| entry.path())
            .max()
            .filter(|newest| newest.as_path() > after);
        // A snapshot being written may not decode yet: try again.
        let black = newest
            .and_then(|path| image::open(path).ok())
            .is_some_and(|image| {
                image
                    .to_rgb8()
                    .pixels()
                    .all(|pixel| pixel.0.iter().all(|&c| c < 16))
            });
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
fn field(line: &str, key: &str) -> String {
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
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| tokio::runtime::Runtime::new().unwrap())
}

fn get_json<T: serde::de::DeserializeOwned>(url: String, token: &str) -> T {
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

fn export(server: &str, viewer: &str) -> AuditBundle {
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

fn screen_records(bundle: &AuditBundle) -> Vec<PlayRecord> {
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
fn until_records(
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
fn assert_verifies(dir: &Path, server: &str, viewer: &str, bundle: &AuditBundle) {
    let file = dir.join(format!("export-{}.json", bundle.records.len()));
    std::fs::write(&file, serde_json::to_vec(bundle).unwrap()).unwrap();
    ok(&ekran(&["pop", "verify", file.to_str().unwrap()]));
    let findings: serde_json::Value = get_json(
        format!("{server}/api/v1/audit/findings?screen={SCREEN}"),
        viewer,
    );
    assert_eq!(findings, serde_json::json!([]), "audit findings");
}

#[test]
fn a_real_player_reports_verified_proof_of_play_and_survives_a_kill() {
    let db = runtime().block_on(TestDb::new(Backend::Sqlite));
    let server = runtime().block_on(ServerProcess::spawn(&db));
    let base = server.base.clone();
    let data = db.data.path();
    let admin = token(data, "admin");
    let manager = token(data, "manager");
    let viewer = token(data, "viewer");
    let created = runtime().block_on(async {
        reqwest::Client::new()
            .post(format!("{base}/api/v1/venues"))
            .bearer_auth(&admin)
            .json(&serde_json::json!({ "id": "lab", "timezone": "UTC" }))
            .send()
            .await
            .unwrap()
    });
    assert!(created.status().is_success(), "{}", created.status());

    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("media");
    std::fs::create_dir(&media).unwrap();
    clip(&media.join("clip-a.mp4"), "smpte");
    clip(&media.join("clip-b.mp4"), "ball");
    gst(
        &[
            "videotestsrc",
            "num-buffers=1",
            "pattern=checkers-8",
            "!",
            "video/x-raw,width=320,height=240",
            "!",
            "pngenc",
            "!",
            "filesink",
        ],
        &media.join("poster.png"),
    );

    let box_dir = dir.path().join("box");
    let config = dir.path().join("player.toml");
    std::fs::write(
        &config,
        format!(
            r#"server_url = "{base}"
data_dir = "{}"

[sync]
heartbeat_interval = "1s"
backoff_base = "100ms"
backoff_cap = "1s"

[output]
width = 320
height = 240
headless = true
volume = 0.0
"#,
            box_dir.display()
        ),
    )
    .unwrap();

    // First start: the pairing code shows (and is logged); approve it.
    let pairing_snapshots = dir.path().join("pairing");
    let mut player = Player::start(&config, &pairing_snapshots);
    let line = player.wait_for(Duration::from_secs(20), "the pairing code", |line| {
        line.contains("pairing code on screen")
    });
    let code = field(&line, "code");
    until_drawn(&pairing_snapshots, Duration::from_secs(10));
    ok(&ekran(&[
        "screen", "approve", &code, "--venue", "lab", "--group", "e2e", "--id", SCREEN, "--server",
        &base, "--token", &admin,
    ]));
    player.wait_for(Duration::from_secs(10), "enrollment", |line| {
        line.contains("screen enrolled")
    });

    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let playlist = dir.path().join("e2e.toml");
    std::fs::write(
        &playlist,
        format!(
            r#"campaign = "End to end"
id = "e2e"
timezone = "UTC"

[targets]
groups = ["e2e"]

[flight]
start = {}
end = {}

[[item]]
id = "clip-a"
media = "media/clip-a.mp4"

[[item]]
id = "clip-b"
media = "media/clip-b.mp4"

[[item]]
id = "poster"
media = "media/poster.png"
duration = "1s"

[[ticker]]
text = "Ekran end to end"
"#,
            today.yesterday().unwrap(),
            today.checked_add(jiff::Span::new().days(30)).unwrap()
        ),
    )
    .unwrap();
    ok(&ekran(&[
        "push",
        playlist.to_str().unwrap(),
        "--server",
        &base,
        "--token",
        &manager,
    ]));

    // Every item played to its end, reported with its presented duration.
    let completed_items = |records: &[PlayRecord]| {
        ["e2e/clip-a", "e2e/clip-b", "e2e/poster"]
            .iter()
            .all(|item| {
                records
                    .iter()
                    .any(|r| r.body.item_id == *item && r.body.outcome == Outcome::Completed)
            })
    };
    let bundle = until_records(
        &base,
        &viewer,
        Duration::from_secs(30),
        "completed plays",
        completed_items,
    );
    let records = screen_records(&bundle);
    for record in &records {
        let body = &record.body;
        assert_eq!(body.outcome, Outcome::Completed, "{body:?}");
        assert_eq!(
            body.ended_at_ms - body.started_at_ms,
            body.duration_ms as i64
        );
        // Each item is 1 s on screen: a 30-frame clip or a 1 s still.
        assert!(
            (700..=1300).contains(&body.duration_ms),
            "presented duration {} ms of {body:?}",
            body.duration_ms
        );
        assert!(body.frames_presented >= 1, "{body:?}");
        if body.item_id.starts_with("e2e/clip-") {
            assert!(body.frames_presented >= 20, "{body:?}");
        }
        let started = jiff::Timestamp::from_millisecond(body.started_at_ms).unwrap();
        let age = jiff::Timestamp::now().duration_since(started);
        assert!(age.as_secs() < 60, "presented times are now's: {body:?}");
    }
    // Gapless: each play starts on the refresh after its predecessor's
    // last one (a refresh is 33 ms at 30 Hz; slack for a loaded machine).
    let gaps: Vec<i64> = records
        .windows(2)
        .map(|pair| pair[1].body.started_at_ms - pair[0].body.ended_at_ms)
        .collect();
    eprintln!("gaps between plays (ms): {gaps:?}");
    assert!(
        gaps.iter().all(|gap| (0..=90).contains(gap)),
        "gaps between plays: {gaps:?} ms"
    );
    assert_verifies(dir.path(), &base, &viewer, &bundle);

    // SIGKILL mid-clip: once the clip's first frame is checkpointed.
    player.skip_backlog();
    let line = player.wait_for(Duration::from_secs(20), "a clip to start", |line| {
        line.contains(" play ") && line.contains("item=e2e/clip-")
    });
    let play_id = field(&line, "play");
    player.wait_for(Duration::from_secs(10), "the clip's checkpoint", |line| {
        line.contains("play checkpointed") && field(line, "play") == play_id
    });
    player.kill();

    let player = Player::start(&config, &dir.path().join("restarted"));
    let bundle = until_records(
        &base,
        &viewer,
        Duration::from_secs(20),
        "the interrupted record",
        |records| {
            records
                .iter()
                .any(|r| r.body.play_id == play_id && r.body.outcome == Outcome::Interrupted)
        },
    );
    let records = screen_records(&bundle);
    let interrupted = records.iter().find(|r| r.body.play_id == play_id).unwrap();
    assert!(interrupted.body.item_id.starts_with("e2e/clip-"));
    assert!(
        interrupted.body.duration_ms <= 1300,
        "{:?}",
        interrupted.body
    );
    let seqs: Vec<u64> = records.iter().map(|r| r.body.seq).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "no gap, no duplicate"
    );
    assert_verifies(dir.path(), &base, &viewer, &bundle);

    // Nothing schedulable (the campaign's flight starts tomorrow): the
    // screen goes to the black fallback instead of holding the last picture.
    let snapshots = dir.path().join("restarted");
    until_drawn(&snapshots, Duration::from_secs(10));
    let drawn = std::fs::read_dir(&snapshots)
        .unwrap()
        .flatten()
        .map(|entry| entry.path())
        .max()
        .unwrap();
    let later = std::fs::read_to_string(&playlist).unwrap().replace(
        &format!("start = {}", today.yesterday().unwrap()),
        &format!("start = {}", today.tomorrow().unwrap()),
    );
    std::fs::write(&playlist, later).unwrap();
    ok(&ekran(&[
        "push",
        playlist.to_str().unwrap(),
        "--server",
        &base,
        "--token",
        &manager,
    ]));
    until_black(&snapshots, &drawn, Duration::from_secs(15));

    let status = player.terminate();
    assert!(
        status.success(),
        "SIGTERM stops the player cleanly: {status}"
    );
    drop(server);
}
