//! The operator's commands against a real server: `ekran screen approve`,
//! `ekran push` (check, upload only what is missing, publish) and
//! `ekran report airtime` in each format.

use ekran::pop::{GENESIS_HASH, Outcome, PlayBody, seal};
use ekran::server::auth::Role;
use reqwest::StatusCode;

use crate::both_backends;
use crate::server_publish::{fetch_manifest, playlist_source};
use crate::server_support::{
    Backend, TestDevice, TestServer, ensure_venue, sample_mp4, sample_png,
};

both_backends!(approve_push_and_report_from_the_command_line);

async fn ekran(server: &TestServer, token: &str, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_ekran"))
        .args(args)
        .env("EKRAN_SERVER", &server.base)
        .env("EKRAN_TOKEN", token)
        .output()
        .await
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn approve_push_and_report_from_the_command_line(backend: Backend) {
    let server = TestServer::start(backend).await;
    ensure_venue(&server, "kyiv-1", "Europe/Kyiv").await;
    let mut device = TestDevice::new();
    let code = device.enroll(&server).await;

    let manager = server.token(Role::Manager).await;
    let output = ekran(
        &server,
        &manager,
        &["screen", "approve", &code, "--venue", "kyiv-1"],
    )
    .await;
    assert!(!output.status.success(), "a manager cannot approve");
    assert!(
        text(&output.stderr).contains("403"),
        "{}",
        text(&output.stderr)
    );

    let output = ekran(
        &server,
        &server.admin,
        &[
            "screen",
            "approve",
            &code,
            "--venue",
            "kyiv-1",
            "--group",
            "supermarkets",
            "--id",
            "kyiv-silpo-1",
        ],
    )
    .await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("enrolled screen kyiv-silpo-1"));
    device.screen_id = Some("kyiv-silpo-1".into());

    // A playlist folder with its media, as a campaign manager has it.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("media")).unwrap();
    std::fs::write(dir.path().join("media/clip.mp4"), sample_mp4()).unwrap();
    std::fs::write(dir.path().join("media/poster.png"), sample_png()).unwrap();
    let playlist = dir.path().join("udhr.toml");
    std::fs::write(&playlist, playlist_source("udhr", &["supermarkets"])).unwrap();
    let playlist = playlist.to_str().unwrap();

    let output = ekran(&server, &manager, &["push", playlist]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("uploading 2"),
        "{}",
        text(&output.stderr)
    );
    assert!(
        text(&output.stdout).contains("kyiv-silpo-1 manifest v2"),
        "{}",
        text(&output.stdout)
    );
    let (_, manifest) = fetch_manifest(&server, &device).await;
    assert_eq!(manifest.items.len(), 2);

    // Again: nothing to upload, a new version all the same.
    let output = ekran(&server, &manager, &["push", playlist]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("2 already on the server, uploading 0"),
        "{}",
        text(&output.stderr)
    );

    // An invalid playlist never reaches the server.
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "campaign = \"x\"\nwieght = 2\n").unwrap();
    let output = ekran(&server, &manager, &["push", broken.to_str().unwrap()]).await;
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("broken.toml:"),
        "{}",
        text(&output.stderr)
    );

    // Two plays on 2026-11-29 (Kyiv), then the report in each format.
    let mut prev = GENESIS_HASH.to_owned();
    let mut records = Vec::new();
    for seq in 1..=2u64 {
        let started = 1_795_950_000_000 + seq as i64 * 60_000;
        let body = PlayBody {
            screen_id: "kyiv-silpo-1".into(),
            seq,
            play_id: format!("p{seq}"),
            item_id: manifest.items[0].id.clone(),
            campaign: manifest.items[0].campaign.clone(),
            media_sha256: manifest.items[0].media.sha256.clone(),
            manifest_version: manifest.version,
            started_at_ms: started,
            ended_at_ms: started + 15_000,
            duration_ms: 15_000,
            frames_presented: 225,
            frames_dropped: 0,
            outcome: Outcome::Completed,
            stale: false,
        };
        let record = seal(body, &prev, &device.key).unwrap();
        prev = record.hash.clone();
        records.push(record);
    }
    let body = serde_json::to_vec(&records).unwrap();
    let response = device
        .send(&server, "POST", "/api/v1/device/pop", &body)
        .await;
    assert_eq!(response.status(), StatusCode::OK);

    let viewer = server.token(Role::Viewer).await;
    let range = [
        "report",
        "airtime",
        "--from",
        "2026-11-29",
        "--to",
        "2026-11-29",
    ];
    let output = ekran(
        &server,
        &viewer,
        &[&range[..], &["--format", "csv"]].concat(),
    )
    .await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("2026-11-29,kyiv-1,Campaign udhr,30.0,2,2,1,30.0,2,1.0"),
        "{}",
        text(&output.stdout)
    );
    let output = ekran(
        &server,
        &viewer,
        &[&range[..], &["--format", "json"]].concat(),
    )
    .await;
    let rows: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(rows[0]["plays"], 2);
    let output = ekran(&server, &viewer, &range).await;
    let table = text(&output.stdout);
    assert!(
        table.contains("Campaign udhr") && table.contains("100.0%"),
        "{table}"
    );
    server.stop().await;
}
