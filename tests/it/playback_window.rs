//! Window mode smoke test: `ekran play` in a real winit window on a
//! virtual X server (xvfb-run), presenting through lavapipe with vsync.

use std::process::Command;

use crate::playback_media as media;

#[test]
fn ekran_play_in_a_window_plays_a_clip_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let stats_path = dir.path().join("s.json");
    let output = Command::new("xvfb-run")
        .args(["-a", "-s", "-screen 0 640x480x24"])
        .arg(env!("CARGO_BIN_EXE_ekran"))
        .args(["play", "--ticker", "Телефони боварӣ", "--stats"])
        .arg(&stats_path)
        .arg(media::clip(media::RED_H264))
        .arg(media::still(
            "half-red-half-blue",
            200,
            100,
            [255, 0, 0],
            [0, 0, 255],
        ))
        .args(["--still-seconds", "0.3"])
        .output()
        .expect("run xvfb-run (package xvfb)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "ekran play in a window failed: {stderr}"
    );
    assert!(stderr.contains("window open"), "{stderr}");

    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&stats_path).unwrap()).unwrap();
    let items = json["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{json}");
    assert!(items.iter().all(|i| i["outcome"] == "completed"), "{json}");
    // Real time on a software rasterizer: pictures may be late and
    // dropped, but the clip must have been on screen.
    let shown = items[0]["frames_presented"].as_u64().unwrap();
    let dropped = items[0]["frames_dropped"].as_u64().unwrap();
    assert!(shown > 0 && shown + dropped <= 25, "{json}");
    assert_eq!(items[1]["frames_presented"], 1);
}

#[test]
fn a_configured_size_opens_a_window_of_that_size() {
    let output = Command::new("xvfb-run")
        .args(["-a", "-s", "-screen 0 640x480x24"])
        .arg(env!("CARGO_BIN_EXE_ekran"))
        .args(["play", "--size", "320x200", "--still-seconds", "0.2"])
        .arg(media::still("size", 64, 64, [0, 255, 0], [0, 255, 0]))
        .output()
        .expect("run xvfb-run (package xvfb)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "ekran play failed: {stderr}");
    assert!(
        stderr
            .lines()
            .any(|line| line.contains("window open") && line.contains("width=320 height=200")),
        "{stderr}"
    );
}
