//! The whole product end to end, as separate processes: `ekran server`,
//! `ekran token create`, `ekran screen approve`, `ekran push` and a headless
//! `ekran player` (sync agent + real GStreamer + wgpu on lavapipe), once on
//! SQLite and once on PostgreSQL. In one run of the box:
//!
//! 1. a playlist of two clips and a still plays gaplessly and its proof of
//!    play reaches the server verified, with presented durations;
//! 2. a SIGKILL mid-clip ends up as an `interrupted` record in a chain that
//!    still verifies;
//! 3. the server crashes: the box keeps playing and journaling; the server
//!    comes back on the same address and the backlog arrives exactly once;
//!    meanwhile someone with the database made it serve a tampered
//!    envelope, which the box refuses, says so in its heartbeat, and plays on;
//! 4. version 2 (another clip) is pushed while playing: the switch happens
//!    at an item boundary within the gap bound, no snapshot is black, and
//!    the old media leave the cache only once they are off screen;
//! 5. the server is made to serve version 1's genuine envelope again
//!    (rollback): refused, reported, version 2 plays on;
//! 6. nothing schedulable: the black fallback, and SIGTERM stops cleanly.

use std::path::Path;
use std::time::{Duration, Instant};

use ekran::pop::{Outcome, PlayRecord};

use crate::player_e2e_support::{
    Player, Publications, SCREEN, assert_verifies, cached_media, clip, ekran, field, file_sha,
    is_black, ok, runtime, screen_records, snapshots, still, tampered, token, until_black,
    until_drawn, until_records, until_status,
};
use crate::server_support::{Backend, ServerProcess, TestDb};

#[test]
fn full_loop_on_sqlite() {
    full_loop(Backend::Sqlite);
}

#[test]
fn full_loop_on_postgres() {
    full_loop(Backend::Postgres);
}

/// A playlist for campaign `e2e` with `items` (id, media, still duration),
/// flying from `start` for 30 days.
fn playlist(items: &[(&str, &str, Option<&str>)], start: jiff::civil::Date) -> String {
    let mut toml = format!(
        r#"campaign = "End to end"
id = "e2e"
timezone = "UTC"

[targets]
groups = ["e2e"]

[flight]
start = {start}
end = {}

[[ticker]]
text = "Ekran end to end"
"#,
        start.checked_add(jiff::Span::new().days(30)).unwrap()
    );
    for (id, media, duration) in items {
        toml.push_str(&format!("\n[[item]]\nid = \"{id}\"\nmedia = \"{media}\"\n"));
        if let Some(duration) = duration {
            toml.push_str(&format!("duration = \"{duration}\"\n"));
        }
    }
    toml
}

fn push(file: &Path, source: &str, base: &str, manager: &str) {
    std::fs::write(file, source).unwrap();
    ok(&ekran(&[
        "push",
        file.to_str().unwrap(),
        "--server",
        base,
        "--token",
        manager,
    ]));
}

/// Seqs 1..=n, each once: nothing lost, nothing delivered twice.
fn assert_contiguous(records: &[PlayRecord]) {
    let seqs: Vec<u64> = records.iter().map(|r| r.body.seq).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "no gap, no duplicate"
    );
}

/// Start of `next` minus end of `previous`, ms.
fn gap(previous: &PlayRecord, next: &PlayRecord) -> i64 {
    next.body.started_at_ms - previous.body.ended_at_ms
}

/// Gapless: a play starts on the refresh after its predecessor's last one
/// (a refresh is 33 ms at 30 Hz; slack for a loaded machine).
const MAX_GAP_MS: i64 = 90;

/// One full loop at a time: two real-time players rendering on the CPU at
/// once would each miss refreshes, and presented timing is what is tested.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn full_loop(backend: Backend) {
    let _alone = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let began = Instant::now();
    let db = runtime().block_on(TestDb::new(backend));
    let server = runtime().block_on(ServerProcess::spawn(&db));
    let base = server.base.clone();
    let admin = token(&db, "admin");
    let manager = token(&db, "manager");
    let viewer = token(&db, "viewer");
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
    clip(&media.join("clip-c.mp4"), "pinwheel");
    still(&media.join("poster.png"), "checkers-8");
    let v1_media: Vec<String> = ["clip-a.mp4", "clip-b.mp4", "poster.png"]
        .iter()
        .map(|name| file_sha(&media.join(name)))
        .collect();
    let clip_c = file_sha(&media.join("clip-c.mp4"));

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
    let line = player.wait_for(Duration::from_secs(30), "the pairing code", |line| {
        line.contains("pairing code on screen")
    });
    let code = field(&line, "code");
    until_drawn(&pairing_snapshots, Duration::from_secs(10));
    // Marked before approving: the box may enroll before `approve` returns.
    let before_approval = player.mark();
    ok(&ekran(&[
        "screen", "approve", &code, "--venue", "lab", "--group", "e2e", "--id", SCREEN, "--server",
        &base, "--token", &admin,
    ]));
    player.wait_since(
        before_approval,
        Duration::from_secs(10),
        "enrollment",
        |line| line.contains("screen enrolled"),
    );

    // 1. Three items play; the server holds verified, gapless proof.
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let playlist_file = dir.path().join("e2e.toml");
    let v1_items = [
        ("clip-a", "media/clip-a.mp4", None),
        ("clip-b", "media/clip-b.mp4", None),
        ("poster", "media/poster.png", Some("1s")),
    ];
    push(
        &playlist_file,
        &playlist(&v1_items, today.yesterday().unwrap()),
        &base,
        &manager,
    );
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
        Duration::from_secs(40),
        "completed plays",
        completed_items,
    );
    let records = screen_records(&bundle);
    let v1 = records[0].body.manifest_version;
    for record in &records {
        let body = &record.body;
        assert_eq!(body.outcome, Outcome::Completed, "{body:?}");
        assert_eq!(body.manifest_version, v1, "{body:?}");
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
    let gaps: Vec<i64> = records.windows(2).map(|w| gap(&w[0], &w[1])).collect();
    eprintln!("[{backend:?}] gaps between plays (ms): {gaps:?}");
    assert!(
        gaps.iter().all(|gap| (0..=MAX_GAP_MS).contains(gap)),
        "gaps between plays: {gaps:?} ms"
    );
    assert_verifies(dir.path(), &base, &viewer, &bundle);

    // 1b. The heartbeat names the graphics backend (lavapipe here), and a
    // screenshot asked for on the server comes back from the real player.
    let status = until_status(
        &base,
        &admin,
        Duration::from_secs(10),
        "the graphics backend in the heartbeat",
        |status| status["graphics"].is_string(),
    );
    let graphics = status["graphics"].as_str().unwrap_or_default();
    eprintln!("[{backend:?}] heartbeat graphics: {graphics}");
    assert!(graphics.starts_with("Vulkan · "), "{graphics}");
    runtime().block_on(screenshot_round_trip(&base, &admin, backend));

    // 2. SIGKILL mid-clip: once the clip's first frame is checkpointed.
    // Older plays are behind this mark.
    let from_now = player.mark();
    let (started_at, line) = player.wait_since(
        from_now,
        Duration::from_secs(20),
        "a clip to start",
        |line| line.contains(" play ") && line.contains("item=e2e/clip-"),
    );
    let play_id = field(&line, "play");
    // From the play's own line: its checkpoint may already be logged.
    player.wait_since(
        started_at + 1,
        Duration::from_secs(10),
        "the clip's checkpoint",
        |line| line.contains("play checkpointed") && field(line, "play") == play_id,
    );
    player.kill();

    let snapshots_dir = dir.path().join("restarted");
    let mut player = Player::start(&config, &snapshots_dir);
    let bundle = until_records(
        &base,
        &viewer,
        Duration::from_secs(30),
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
    // Killed after its first frame was checkpointed: the record says so.
    assert!(
        interrupted.body.frames_presented >= 1,
        "{:?}",
        interrupted.body
    );
    assert!(
        interrupted.body.duration_ms <= 1300,
        "{:?}",
        interrupted.body
    );
    assert_contiguous(&records);
    assert_verifies(dir.path(), &base, &viewer, &bundle);

    // 3. The server crashes. The box plays on and journals; uploads fail.
    let address = server.address().to_owned();
    let before_outage = player.mark();
    let outage = Instant::now();
    server.kill();
    player.wait_since(
        before_outage,
        Duration::from_secs(20),
        "an upload failing while the server is down",
        |line| line.contains("proof-of-play upload failed"),
    );
    let mut journaled_offline = Vec::new();
    let mut from = before_outage;
    while journaled_offline.len() < 4 {
        let (at, line) = player.wait_since(
            from,
            Duration::from_secs(20),
            "plays journaled while the server is down",
            |line| line.contains("play journaled"),
        );
        journaled_offline.push(field(&line, "seq").parse::<u64>().unwrap());
        from = at + 1;
    }
    // Meanwhile the database is made to serve an envelope the server's
    // signer never made: its newest manifest with the version raised.
    let publications = Publications::open(&db);
    let (latest, genuine) = publications.latest();
    assert_eq!(latest, v1, "the box plays the newest publication");
    publications.serve_instead(&tampered(&genuine));
    publications.close();
    let cached_before = cached_media(&box_dir);

    let before_restart = player.mark();
    let server = runtime().block_on(ServerProcess::spawn_on(&db, &address));
    assert_eq!(server.base, base, "the box's server_url still points at it");
    let down_for = outage.elapsed();
    let last_offline = *journaled_offline.last().unwrap();
    let backlog_started = Instant::now();
    let bundle = until_records(
        &base,
        &viewer,
        Duration::from_secs(30),
        "the backlog journaled while the server was down",
        |records| records.iter().any(|r| r.body.seq == last_offline),
    );
    let backlog_took = backlog_started.elapsed();
    let records = screen_records(&bundle);
    assert_contiguous(&records);
    assert_verifies(dir.path(), &base, &viewer, &bundle);
    let delivered: Vec<String> = player
        .log_since(before_restart)
        .iter()
        .filter(|line| line.contains("proof-of-play records delivered"))
        .map(|line| field(line, "delivered"))
        .collect();
    eprintln!(
        "[{backend:?}] server down {down_for:?}; seqs journaled offline (first 4): {journaled_offline:?}; \
         after restart {} records on the server within {backlog_took:?}; deliveries: {delivered:?}",
        records.len()
    );

    // The tampered envelope was refused; the heartbeat says why; v1 plays on.
    let (refused_at, line) = player.wait_since(
        before_restart,
        Duration::from_secs(20),
        "the tampered manifest refused",
        |line| line.contains("manifest rejected"),
    );
    assert!(line.contains("envelope rejected"), "{line}");
    let status = until_status(
        &base,
        &admin,
        Duration::from_secs(20),
        "the refusal in the heartbeat",
        |status| {
            status["last_error"]
                .as_str()
                .is_some_and(|error| error.contains("envelope rejected"))
        },
    );
    assert_eq!(status["manifest_version"], v1, "{status:#}");
    eprintln!(
        "[{backend:?}] heartbeat after the tampered envelope: {}",
        status["last_error"]
    );
    let (_, line) = player.wait_since(
        refused_at,
        Duration::from_secs(10),
        "a play after the refusal",
        |line| line.contains(" play ") && line.contains("item=e2e/"),
    );
    assert!(!line.contains("e2e/clip-c"), "{line}");
    assert_eq!(
        cached_media(&box_dir),
        cached_before,
        "the cache is untouched"
    );

    // 4. Version 2 while playing: another clip. The switch comes at an item
    // boundary, gapless, never black; the old media go once off screen.
    let shown_before = snapshots(&snapshots_dir).last().cloned().unwrap();
    let before_v2 = player.mark();
    let v2_items = [("clip-c", "media/clip-c.mp4", None)];
    push(
        &playlist_file,
        &playlist(&v2_items, today.yesterday().unwrap()),
        &base,
        &manager,
    );
    let (_, line) = player.wait_since(
        before_v2,
        Duration::from_secs(30),
        "version 2 activated",
        |line| line.contains("manifest activated"),
    );
    let v2: u64 = field(&line, "version").parse().unwrap();
    assert!(v2 > v1);
    let (first_v2_at, first_v2_line) = player.wait_since(
        before_v2,
        Duration::from_secs(20),
        "the first play of version 2",
        |line| line.contains(" play ") && line.contains("item=e2e/clip-c"),
    );
    let first_v2_play = field(&first_v2_line, "play");
    let bundle = until_records(
        &base,
        &viewer,
        Duration::from_secs(20),
        "the first play of version 2 completed",
        |records| {
            records
                .iter()
                .any(|r| r.body.play_id == first_v2_play && r.body.outcome == Outcome::Completed)
        },
    );
    let records = screen_records(&bundle);
    assert_contiguous(&records);
    let first = records
        .iter()
        .position(|r| r.body.manifest_version == v2)
        .unwrap();
    assert_eq!(records[first].body.play_id, first_v2_play);
    let last_v1 = &records[first - 1];
    assert_eq!(last_v1.body.manifest_version, v1);
    assert_eq!(
        last_v1.body.outcome,
        Outcome::Completed,
        "{:?}",
        last_v1.body
    );
    let switch_gap = gap(last_v1, &records[first]);
    let around: Vec<i64> = records[first.saturating_sub(3)..]
        .windows(2)
        .map(|w| gap(&w[0], &w[1]))
        .collect();
    eprintln!(
        "[{backend:?}] v{v1} -> v{v2} switch gap {switch_gap} ms; gaps around it: {around:?}"
    );
    assert!(
        around.iter().all(|gap| (0..=MAX_GAP_MS).contains(gap)),
        "gaps around the switch: {around:?} ms"
    );
    let switch_snapshots: Vec<_> = snapshots(&snapshots_dir)
        .into_iter()
        .filter(|path| *path > shown_before)
        .collect();
    assert!(switch_snapshots.len() >= 5, "{switch_snapshots:?}");
    for path in &switch_snapshots {
        assert_ne!(is_black(path), Some(true), "black frame {}", path.display());
    }
    // Eviction spared what was on screen or prerolled at the activation;
    // the last v1 item's file went only once version 2 was playing.
    player.wait_since(
        before_v2,
        Duration::from_secs(10),
        "an eviction deferred while the file was on screen",
        |line| line.contains("evicted once played"),
    );
    player.wait_since(
        first_v2_at,
        Duration::from_secs(10),
        "the last v1 item's media evicted after the switch",
        |line| line.contains("media cache: evicted") && line.contains(&last_v1.body.media_sha256),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while cached_media(&box_dir) != [clip_c.clone()] {
        assert!(
            Instant::now() < deadline,
            "old media still cached: {:?} (v1 media {v1_media:?})",
            cached_media(&box_dir)
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // 5. Rollback: the server serves version 1's genuine envelope again
    // (its row now holds the tampered one: the copy read before).
    let before_rollback = player.mark();
    let publications = Publications::open(&db);
    publications.serve_instead(&genuine);
    publications.close();
    let (refused_at, line) = player.wait_since(
        before_rollback,
        Duration::from_secs(30),
        "the rolled-back manifest refused",
        |line| line.contains("manifest rejected"),
    );
    assert!(line.contains("rollback"), "{line}");
    let status = until_status(
        &base,
        &admin,
        Duration::from_secs(20),
        "the rollback in the heartbeat",
        |status| {
            status["last_error"]
                .as_str()
                .is_some_and(|error| error.contains("rollback"))
        },
    );
    assert_eq!(status["manifest_version"], v2, "{status:#}");
    eprintln!(
        "[{backend:?}] heartbeat after the rollback: {}",
        status["last_error"]
    );
    player.wait_since(
        refused_at,
        Duration::from_secs(10),
        "version 2 playing on after the refusal",
        |line| line.contains(" play ") && line.contains("item=e2e/clip-c"),
    );
    assert_eq!(cached_media(&box_dir), std::slice::from_ref(&clip_c));

    // 6. Nothing schedulable (the flight starts tomorrow): the screen goes
    // to the black fallback instead of holding the last picture.
    until_drawn(&snapshots_dir, Duration::from_secs(10));
    let drawn = snapshots(&snapshots_dir).last().cloned().unwrap();
    push(
        &playlist_file,
        &playlist(&v2_items, today.tomorrow().unwrap()),
        &base,
        &manager,
    );
    until_black(&snapshots_dir, &drawn, Duration::from_secs(15));

    let status = player.terminate();
    assert!(
        status.success(),
        "SIGTERM stops the player cleanly: {status}"
    );
    drop(server);
    eprintln!("[{backend:?}] full loop took {:?}", began.elapsed());
}

/// Asks the server for a screenshot of the screen, waits for the player to
/// upload it on a later heartbeat, and checks it is a small picture of
/// what plays (none of the playlist's items is all black).
async fn screenshot_round_trip(base: &str, admin: &str, backend: Backend) {
    let client = reqwest::Client::new();
    let asked = client
        .post(format!("{base}/api/v1/screens/{SCREEN}/screenshot-request"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert!(asked.status().is_success(), "{}", asked.status());
    let asked: serde_json::Value = asked.json().await.unwrap();
    let asked_at = asked["requested_at_ms"].as_i64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let (taken_at, png) = loop {
        let response = client
            .get(format!("{base}/api/v1/screens/{SCREEN}/screenshot"))
            .bearer_auth(admin)
            .send()
            .await
            .unwrap();
        let taken_at: Option<i64> = response
            .headers()
            .get("x-ekran-taken-at")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<jiff::Timestamp>().ok())
            .map(|at| at.as_millisecond());
        if let (true, Some(taken_at)) = (response.status().is_success(), taken_at)
            && taken_at >= asked_at
        {
            break (taken_at, response.bytes().await.unwrap().to_vec());
        }
        assert!(
            Instant::now() < deadline,
            "no screenshot within 15 s of the request (last answer {})",
            response.status()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let picture = image::load_from_memory_with_format(&png, image::ImageFormat::Png)
        .unwrap()
        .to_rgba8();
    assert!(picture.width() <= 480 && picture.height() <= 480);
    assert_eq!(
        picture.width() * 240,
        picture.height() * 320,
        "the screen's 320x240 shape"
    );
    let lit = picture
        .pixels()
        .filter(|pixel| pixel.0[..3].iter().any(|channel| *channel > 40))
        .count();
    // The bouncing ball clip is mostly black: ask only for visible content.
    assert!(
        lit * 200 > (picture.width() * picture.height()) as usize,
        "the screenshot shows content: {lit} lit pixels of {}x{}",
        picture.width(),
        picture.height()
    );
    eprintln!(
        "[{backend:?}] screenshot {}x{} taken {} ms after the request",
        picture.width(),
        picture.height(),
        taken_at - asked_at
    );
}
