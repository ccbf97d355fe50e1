//! Playback engine end to end: real GStreamer decoding, real wgpu on
//! lavapipe, headless output on a virtual clock. Sequencing, gapless
//! switches, crossfade, failures and the `ekran play` command.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use ekran::player::headless::{HeadlessConfig, RenderedFrame, run_headless};
use ekran::player::list::FileListSource;
use ekran::player::{EngineConfig, EngineEvent, Fit, Outcome, RunStats};

use crate::playback_media::{self as media, near, rgb};

const PERIOD_60HZ_MS: f64 = 1000.0 / 60.0;

/// Plays `files` headless at 60 Hz, returning the stats and every frame's
/// centre pixel with its time.
fn play(
    files: Vec<PathBuf>,
    engine: EngineConfig,
    size: (u32, u32),
) -> (RunStats, Vec<(Duration, [u8; 3])>) {
    let mut centres = Vec::new();
    let mut observe = |frame: RenderedFrame<'_>| {
        centres.push((
            frame.clock,
            rgb(
                frame.image,
                frame.image.width() / 2,
                frame.image.height() / 2,
            ),
        ));
    };
    let source = FileListSource::new(files, Duration::from_millis(500), Fit::Contain, false);
    let config = HeadlessConfig {
        size,
        ..HeadlessConfig::default()
    };
    let stats =
        run_headless(Box::new(source), engine, &config, Some(&mut observe)).expect("headless run");
    (stats, centres)
}

#[test]
fn a_clip_plays_every_frame_once_with_its_decoder_recorded() {
    let (stats, centres) = play(
        vec![media::clip(media::RED_H264)],
        EngineConfig::default(),
        (320, 240),
    );
    assert_eq!(stats.items.len(), 1, "{stats:?}");
    let item = &stats.items[0];
    assert_eq!(item.outcome, Outcome::Completed, "{item:?}");
    assert_eq!(item.frames_presented, 25, "1 s at 25 fps: {item:?}");
    assert_eq!(item.frames_dropped, 0);
    let decoder = item.decoder.as_deref().expect("decoder recorded");
    assert!(decoder.contains("h264"), "decoder {decoder}");
    assert!(!item.hardware, "no hardware decoder on this machine");
    assert_eq!(item.first_presented_ms, Some(0.0));
    // 25 pictures of 40 ms at 60 Hz: the last refresh showing the clip is
    // the last one before 1 s.
    let last = item.last_presented_ms.expect("last presented");
    assert!((last - 983.333).abs() < 0.01, "last presented at {last} ms");
    assert!(
        centres.iter().all(|(_, c)| near(*c, [255, 0, 0], 12)),
        "every refresh red"
    );
    assert_eq!(stats.black_frames, 0);
}

#[test]
fn three_clips_of_different_sizes_and_codecs_switch_without_a_black_frame() {
    let files = vec![
        media::clip(media::RED_H264),
        media::clip(media::GREEN_HEVC),
        media::clip(media::BLUE_VP9),
    ];
    let (stats, centres) = play(files, EngineConfig::default(), (320, 240));
    let outcomes: Vec<_> = stats
        .items
        .iter()
        .map(|i| (i.outcome, i.error.clone()))
        .collect();
    assert!(
        outcomes.iter().all(|(o, _)| *o == Outcome::Completed),
        "{outcomes:?}"
    );
    assert_eq!(stats.black_frames, 0);
    assert!(
        stats.max_gap_ms <= PERIOD_60HZ_MS + 0.01,
        "gap {} ms exceeds one refresh period",
        stats.max_gap_ms
    );
    // Every refresh shows one of the three colours, in order, and each
    // switch happens from one refresh to the next.
    let colour_of = |c: [u8; 3]| {
        [[255, 0, 0], [0, 255, 0], [0, 0, 255]]
            .iter()
            .position(|&want| near(c, want, 16))
            .unwrap_or_else(|| panic!("refresh shows {c:?}, neither red, green nor blue"))
    };
    let sequence: Vec<usize> = centres.iter().map(|(_, c)| colour_of(*c)).collect();
    let mut switches = sequence
        .windows(2)
        .filter(|w| w[0] != w[1])
        .map(|w| (w[0], w[1]));
    assert_eq!(switches.next(), Some((0, 1)));
    assert_eq!(switches.next(), Some((1, 2)));
    assert_eq!(switches.next(), None);
    for pair in stats.items.windows(2) {
        let gap = pair[1].first_presented_ms.unwrap() - pair[0].last_presented_ms.unwrap();
        assert!(
            (gap - PERIOD_60HZ_MS).abs() < 0.01,
            "next item {gap} ms after the last refresh of the previous"
        );
    }
    let decoders: Vec<_> = stats
        .items
        .iter()
        .map(|i| i.decoder.clone().unwrap_or_default())
        .collect();
    assert!(
        decoders[1].contains("265") || decoders[1].contains("hevc"),
        "{decoders:?}"
    );
    assert!(decoders[2].contains("vp9"), "{decoders:?}");
}

#[test]
fn a_crossfade_shows_a_mix_halfway() {
    let engine = EngineConfig {
        crossfade: Duration::from_millis(400),
        ..EngineConfig::default()
    };
    let (stats, centres) = play(
        vec![media::clip(media::RED_H264), media::clip(media::BLUE_H264)],
        engine,
        (320, 240),
    );
    assert!(
        stats.items.iter().all(|i| i.outcome == Outcome::Completed),
        "{stats:?}"
    );
    let blue_start = Duration::from_secs_f64(stats.items[1].first_presented_ms.unwrap() / 1000.0);
    let halfway = blue_start + Duration::from_millis(200);
    let (_, mid) = centres
        .iter()
        .find(|(t, _)| *t >= halfway)
        .expect("a refresh halfway through the fade");
    assert!(
        near(*mid, [128, 0, 128], 24),
        "halfway through red → blue shows {mid:?}"
    );
    let (_, start) = centres.iter().find(|(t, _)| *t >= blue_start).unwrap();
    assert!(start[0] > 200, "fade starts from red: {start:?}");
    let (_, after) = centres
        .iter()
        .find(|(t, _)| *t >= blue_start + Duration::from_millis(450))
        .unwrap();
    assert!(
        near(*after, [0, 0, 255], 16),
        "after the fade only blue: {after:?}"
    );
}

#[test]
fn late_pictures_are_dropped_and_counted() {
    // 50 fps on a 25 Hz output: every other picture is superseded unseen.
    let source = FileListSource::new(
        vec![media::clip("red-h264-50fps")],
        Duration::from_secs(1),
        Fit::Contain,
        false,
    );
    let config = HeadlessConfig {
        size: (160, 120),
        refresh_hz: 25.0,
        ..HeadlessConfig::default()
    };
    let stats = run_headless(Box::new(source), EngineConfig::default(), &config, None).unwrap();
    let item = &stats.items[0];
    assert_eq!(item.outcome, Outcome::Completed);
    assert_eq!(item.frames_presented + item.frames_dropped, 50, "{item:?}");
    assert!((24..=26).contains(&item.frames_dropped), "{item:?}");
}

#[test]
fn broken_truncated_and_missing_items_fail_and_the_rest_play() {
    let good = media::clip(media::RED_H264);
    let files = vec![
        media::garbage(),
        good.clone(),
        media::truncated(&good, 50),
        media::truncated(&media::clip("faststart-h264"), 60),
        PathBuf::from("/nonexistent/clip.mp4"),
        media::clip(media::BLUE_H264),
    ];
    let mut source = FileListSource::new(files, Duration::from_secs(1), Fit::Contain, false);
    let events = source.events();
    let config = HeadlessConfig {
        size: (160, 120),
        ..HeadlessConfig::default()
    };
    let stats = run_headless(Box::new(source), EngineConfig::default(), &config, None).unwrap();
    let outcomes: Vec<_> = stats.items.iter().map(|i| i.outcome).collect();
    use Outcome::{Completed, Failed};
    assert_eq!(
        outcomes,
        [Failed, Completed, Failed, Failed, Failed, Completed],
        "{stats:#?}"
    );
    let error = |i: usize| stats.items[i].error.clone().unwrap_or_default();
    assert!(error(0).contains("garbage.mp4"), "{}", error(0));
    assert!(error(3).contains("truncated"), "{}", error(3));
    assert!(error(4).contains("/nonexistent/clip.mp4"), "{}", error(4));
    assert_eq!(stats.items[5].frames_presented, 25);

    let events = events.lock().unwrap();
    let failed = events
        .iter()
        .filter(|e| matches!(e, EngineEvent::Failed { .. }))
        .count();
    let finished = events
        .iter()
        .filter(|e| matches!(e, EngineEvent::Finished { .. }))
        .count();
    assert_eq!((failed, finished), (4, 2), "{events:#?}");
}

#[test]
fn ekran_play_writes_the_stats_file_and_exit_status_says_failure() {
    let dir = tempfile::tempdir().unwrap();
    let stats_path = dir.path().join("s.json");
    let still = media::still("half-red-half-blue", 64, 32, [255, 0, 0], [0, 0, 255]);
    let output = Command::new(env!("CARGO_BIN_EXE_ekran"))
        .args([
            "play",
            "--headless",
            "--size",
            "160x120",
            "--still-seconds",
            "0.5",
            "--stats",
        ])
        .arg(&stats_path)
        .arg(media::clip(media::RED_H264))
        .arg(media::clip(media::GREEN_HEVC))
        .arg(media::clip(media::BLUE_VP9))
        .arg(&still)
        .arg(media::garbage())
        .output()
        .expect("run ekran play");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(1),
        "a failed item fails the run: {stderr}"
    );
    assert!(stderr.contains("garbage.mp4"), "{stderr}");

    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&stats_path).unwrap()).unwrap();
    let items = json["items"].as_array().expect("items");
    assert_eq!(items.len(), 5);
    for item in items {
        for key in [
            "path",
            "decoder",
            "hardware",
            "frames_presented",
            "frames_dropped",
            "first_presented_ms",
            "last_presented_ms",
            "outcome",
            "error",
        ] {
            assert!(item.get(key).is_some(), "{key} missing in {item}");
        }
    }
    let outcomes: Vec<_> = items
        .iter()
        .map(|i| i["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        ["completed", "completed", "completed", "completed", "failed"]
    );
    assert_eq!(items[3]["decoder"], "image");
    assert_eq!(items[3]["frames_presented"], 1);
    assert!(items[4]["error"].as_str().unwrap().contains("garbage.mp4"));
    assert_eq!(json["black_frames"], 0);
    assert!(
        json["max_gap_ms"].as_f64().unwrap() <= PERIOD_60HZ_MS + 0.01,
        "{json}"
    );

    // Only good items: exit status 0.
    let ok = Command::new(env!("CARGO_BIN_EXE_ekran"))
        .args(["play", "--headless", "--size", "160x120"])
        .arg(media::clip(media::RED_H264))
        .status()
        .unwrap();
    assert!(ok.success());
}

#[test]
fn decoders_named_in_the_preference_list_win_by_rank() {
    // openh264dec ranks below avdec_h264 by default; naming it as
    // preferred must make decodebin pick it (a separate process, since
    // ranks are process-wide).
    let dir = tempfile::tempdir().unwrap();
    let stats_path = dir.path().join("s.json");
    let status = Command::new(env!("CARGO_BIN_EXE_ekran"))
        .args([
            "play",
            "--headless",
            "--size",
            "160x120",
            "--hw-decoders",
            "openh264dec",
            "--stats",
        ])
        .arg(&stats_path)
        .arg(media::clip(media::RED_H264))
        .status()
        .unwrap();
    assert!(status.success());
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&stats_path).unwrap()).unwrap();
    assert_eq!(json["items"][0]["decoder"], "openh264dec", "{json}");
    assert_eq!(
        json["items"][0]["hardware"], true,
        "listed decoders count as hardware"
    );
}

#[test]
fn every_decoding_bin_plays_the_clip_to_its_end() {
    // decodebin3 after a filesrc is the default; the two uri bins stay
    // selectable. Each must decode every picture with the same decoder.
    let dir = tempfile::tempdir().unwrap();
    for bin in ekran::player::decode::DECODEBINS {
        let stats_path = dir.path().join(format!("{bin}.json"));
        let status = Command::new(env!("CARGO_BIN_EXE_ekran"))
            .args(["play", "--headless", "--size", "160x120"])
            .args(["--decodebin", bin, "--stats"])
            .arg(&stats_path)
            .arg(media::clip(media::RED_H264))
            .status()
            .unwrap();
        assert!(status.success(), "{bin}");
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&stats_path).unwrap()).unwrap();
        let item = &json["items"][0];
        assert_eq!(item["outcome"], "completed", "{bin}: {json}");
        assert_eq!(item["decoder"], "avdec_h264", "{bin}: {json}");
        assert!(
            item["frames_presented"].as_u64().unwrap() >= 20,
            "{bin}: {json}"
        );
    }
}

#[test]
fn snapshots_are_written_on_virtual_time() {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_ekran"))
        .args([
            "play",
            "--headless",
            "--size",
            "160x120",
            "--snapshot-every",
            "0.5",
            "--snapshot-dir",
        ])
        .arg(dir.path())
        .arg(media::clip(media::RED_H264))
        .status()
        .unwrap();
    assert!(status.success());
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["snapshot-00000000.png", "snapshot-00000500.png"]);
    let first = image::open(dir.path().join(&names[0])).unwrap().to_rgba8();
    assert_eq!(first.dimensions(), (160, 120));
    assert!(near(rgb(&first, 80, 60), [255, 0, 0], 12));
}

/// A playlist in a folder of its own with its media beside it (under
/// `media/`, as the playlists in `playlists/` keep them).
fn preview_playlist(dir: &std::path::Path) -> PathBuf {
    let media_dir = dir.join("media");
    std::fs::create_dir_all(&media_dir).unwrap();
    std::fs::copy(media::clip(media::RED_H264), media_dir.join("red.mp4")).unwrap();
    std::fs::copy(
        media::still("half-red-half-blue", 64, 32, [255, 0, 0], [0, 0, 255]),
        media_dir.join("poster.png"),
    )
    .unwrap();
    std::fs::copy(media::clip(media::BLUE_VP9), media_dir.join("blue.webm")).unwrap();
    let playlist = dir.join("preview.toml");
    std::fs::write(
        &playlist,
        r#"campaign = "Preview"
id = "preview"
timezone = "Asia/Dushanbe"

[targets]
screens = ["*"]

[flight]
start = 2026-11-10
end = 2026-12-10

[[item]]
id = "red"
media = "media/red.mp4"

[[item]]
id = "poster"
media = "media/poster.png"
duration = "2s"
fit = "cover"

[[item]]
id = "blue"
media = "media/blue.webm"

[[ticker]]
text = "Телефон доверия 1313"
"#,
    )
    .unwrap();
    playlist
}

#[test]
fn ekran_play_plays_a_playlist_in_order_with_its_durations_fits_and_ticker() {
    let dir = tempfile::tempdir().unwrap();
    let playlist = preview_playlist(dir.path());
    let stats_path = dir.path().join("s.json");
    let snapshots = dir.path().join("snapshots");
    // Run from elsewhere: media paths are relative to the playlist, not the
    // working directory.
    let output = Command::new(env!("CARGO_BIN_EXE_ekran"))
        .current_dir(std::env::temp_dir())
        .args(["play", "--headless", "--size", "160x120", "--stats"])
        .arg(&stats_path)
        .arg("--snapshot-every")
        .arg("1.5")
        .arg("--snapshot-dir")
        .arg(&snapshots)
        .arg(&playlist)
        .output()
        .expect("run ekran play");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&stats_path).unwrap()).unwrap();
    let items = json["items"].as_array().expect("items");
    let paths: Vec<_> = items
        .iter()
        .map(|item| {
            let path = PathBuf::from(item["path"].as_str().unwrap());
            path.file_name().unwrap().to_string_lossy().into_owned()
        })
        .collect();
    assert_eq!(paths, ["red.mp4", "poster.png", "blue.webm"], "{json}");
    assert!(
        items.iter().all(|item| item["outcome"] == "completed"),
        "{json}"
    );
    // The poster stays its own 2 s, not the --still-seconds default of 5 s.
    let poster = &items[1];
    let shown = poster["last_presented_ms"].as_f64().unwrap()
        - poster["first_presented_ms"].as_f64().unwrap();
    assert!(
        (shown - (2000.0 - PERIOD_60HZ_MS)).abs() < 1.0,
        "poster on screen {shown} ms"
    );
    assert_eq!(json["black_frames"], 0);

    // At 0 s the red clip under the ticker band; at 1.5 s the poster
    // (half red, half blue) covering the 4:3 output: its left edge is red
    // and its right edge blue, with no letterbox above or below.
    let snapshot = |name: &str| {
        image::open(snapshots.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .to_rgba8()
    };
    let first = snapshot("snapshot-00000000.png");
    assert!(near(rgb(&first, 80, 40), [255, 0, 0], 12));
    let band = rgb(&first, 1, 118);
    assert!(near(band, [64, 0, 0], 16), "ticker band {band:?}");
    let poster = snapshot("snapshot-00001500.png");
    assert!(near(rgb(&poster, 20, 2), [255, 0, 0], 12));
    assert!(near(rgb(&poster, 140, 2), [0, 0, 255], 12));

    // --loop starts over after the last item (stopped by --max-seconds).
    Command::new(env!("CARGO_BIN_EXE_ekran"))
        .args([
            "play",
            "--headless",
            "--size",
            "64x48",
            "--loop",
            "--max-seconds",
            "5",
            "--stats",
        ])
        .arg(&stats_path)
        .arg(&playlist)
        .output()
        .unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&stats_path).unwrap()).unwrap();
    let items = json["items"].as_array().expect("items");
    assert!(items.len() >= 4, "{json}");
    assert!(
        items[3]["path"].as_str().unwrap().ends_with("red.mp4"),
        "{json}"
    );
}

#[test]
fn a_malformed_playlist_is_refused_with_its_location() {
    let dir = tempfile::tempdir().unwrap();
    let playlist = dir.path().join("bad.toml");
    std::fs::write(
        &playlist,
        "campaign = \"Bad\"\ntimezone = \"Asia/Dushanbe\"\n[targets]\nscreens = [\"*\"]\n\
         [flight]\nstart = 2026-11-10\nend = 2026-12-10\n[[item]]\nmedia = \"poster.png\"\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_ekran"))
        .args(["play", "--headless"])
        .arg(&playlist)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    // A still without a duration: named at its line.
    assert!(stderr.contains("bad.toml:"), "{stderr}");
    assert!(stderr.contains("duration"), "{stderr}");
}

#[test]
fn clip_still_clip_switches_within_one_refresh() {
    let still = media::still("half-red-half-blue", 64, 32, [255, 0, 0], [0, 0, 255]);
    let files = vec![
        media::clip(media::RED_H264),
        still,
        media::clip(media::BLUE_H264),
    ];
    let (stats, _) = play(files, EngineConfig::default(), (160, 120));
    assert!(
        stats.items.iter().all(|i| i.outcome == Outcome::Completed),
        "{stats:#?}"
    );
    assert_eq!(stats.black_frames, 0);
    for pair in stats.items.windows(2) {
        let gap = pair[1].first_presented_ms.unwrap() - pair[0].last_presented_ms.unwrap();
        assert!(
            (gap - PERIOD_60HZ_MS).abs() < 0.01,
            "switch took {gap} ms: {stats:#?}"
        );
    }
    // The still is shown for its 500 ms.
    let still = &stats.items[1];
    let shown =
        still.last_presented_ms.unwrap() - still.first_presented_ms.unwrap() + PERIOD_60HZ_MS;
    assert!(
        (shown - 500.0).abs() <= PERIOD_60HZ_MS,
        "still shown {shown} ms"
    );
}

/// A source that records how the engine calls it.
struct ScriptedSource {
    items: Vec<ekran::player::NextItem>,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ekran::player::Source for ScriptedSource {
    fn next_item(&mut self) -> ekran::player::NextItem {
        let answer = if self.items.is_empty() {
            ekran::player::NextItem::End
        } else {
            self.items.remove(0)
        };
        let text = match &answer {
            ekran::player::NextItem::Play(item) => format!("next→{}", item.item_id),
            other => format!("next→{other:?}"),
        };
        self.log.lock().expect("log lock").push(text);
        answer
    }

    fn on_event(&mut self, event: EngineEvent) {
        let text = match event {
            EngineEvent::Started { play, .. } => format!("started {}", play.0),
            EngineEvent::Finished {
                play,
                frames_presented,
                first_presented,
                last_presented,
                ..
            } => {
                assert!(last_presented.wall >= first_presented.wall);
                format!("finished {} ({frames_presented} frames)", play.0)
            }
            EngineEvent::Failed { play, .. } => format!("failed {}", play.0),
        };
        self.log.lock().expect("log lock").push(text);
    }
}

#[test]
fn the_engine_asks_for_the_next_item_while_the_current_one_plays() {
    use ekran::player::{MediaKind, NextItem, PlayId, PlayItem};
    let item = |id: u64, name: &str, path: PathBuf, kind| {
        NextItem::Play(PlayItem {
            play: PlayId(id),
            item_id: name.into(),
            path,
            kind,
            fit: Fit::Contain,
        })
    };
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let source = ScriptedSource {
        items: vec![
            NextItem::NotYet,
            NextItem::NotYet,
            item(
                1,
                "poster",
                media::still("half-red-half-blue", 64, 32, [255, 0, 0], [0, 0, 255]),
                MediaKind::Still {
                    duration: Duration::from_millis(200),
                },
            ),
            item(
                2,
                "clip",
                media::clip(media::RED_H264),
                MediaKind::Clip {
                    max_duration: Some(Duration::from_millis(500)),
                },
            ),
        ],
        log: log.clone(),
    };
    let config = HeadlessConfig {
        size: (64, 48),
        ..HeadlessConfig::default()
    };
    let stats = run_headless(Box::new(source), EngineConfig::default(), &config, None).unwrap();
    let log = log.lock().unwrap().clone();
    assert_eq!(
        log,
        [
            "next→NotYet",
            "next→NotYet",
            "next→poster",
            "started 1",
            // Prerolled as soon as the poster is up, not when it ends.
            "next→clip",
            "finished 1 (1 frames)",
            "started 2",
            "next→End",
            // Cut at its 500 ms: 13 pictures of 40 ms started by then.
            "finished 2 (13 frames)",
        ]
    );
    // Two refreshes waited for the source; nothing had been shown yet, so
    // they are not black frames of a gap.
    assert_eq!(
        stats.items[0].first_presented_ms,
        Some(2.0 * PERIOD_60HZ_MS).map(|v| (v * 1000.0).round() / 1000.0)
    );
    assert_eq!(stats.black_frames, 0);
}

/// Records the decoder each started item reported.
struct DecoderProbe {
    inner: FileListSource,
    decoders: std::sync::Arc<std::sync::Mutex<Vec<Option<ekran::player::DecoderUsed>>>>,
}

impl ekran::player::Source for DecoderProbe {
    fn next_item(&mut self) -> ekran::player::NextItem {
        self.inner.next_item()
    }

    fn on_event(&mut self, event: EngineEvent) {
        if let EngineEvent::Started { decoder, .. } = &event {
            self.decoders.lock().expect("lock").push(decoder.clone());
        }
        self.inner.on_event(event);
    }
}

#[test]
fn clips_with_audio_play_muted_and_odd_formats_take_the_logged_conversion() {
    let decoders = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let files = vec![
        media::clip("with-audio-vp9"),
        media::clip("y444-h264"),
        media::clip(media::RED_H264),
    ];
    let source = DecoderProbe {
        inner: FileListSource::new(files, Duration::from_secs(1), Fit::Contain, false),
        decoders: decoders.clone(),
    };
    let config = HeadlessConfig {
        size: (160, 120),
        ..HeadlessConfig::default()
    };
    let stats = run_headless(Box::new(source), EngineConfig::default(), &config, None).unwrap();
    assert!(
        stats.items.iter().all(|i| i.outcome == Outcome::Completed),
        "{stats:#?}"
    );
    assert_eq!(stats.items[0].frames_presented, 25, "{stats:#?}");
    let decoders = decoders.lock().unwrap().clone();
    let decoders: Vec<_> = decoders
        .into_iter()
        .map(|d| d.expect("clip decoder"))
        .collect();
    // The audio stream is neither decoded nor played: the decoder found is
    // the video one.
    assert!(decoders[0].element.contains("vp9"), "{decoders:?}");
    assert_eq!(decoders[0].converted_from, None);
    // 4:4:4 is neither NV12 nor I420: converted on the CPU, and said so.
    assert_eq!(
        decoders[1].converted_from.as_deref(),
        Some("Y444"),
        "{decoders:?}"
    );
    assert_eq!(
        decoders[2].converted_from, None,
        "NV12/I420 go up untouched"
    );
}

/// A long-running player keeps the statistics of its recent plays only:
/// one entry per play forever would grow a box's memory for months.
#[test]
fn a_bounded_history_keeps_the_recent_plays_statistics_only() {
    let red = media::still("history-red", 32, 24, [255, 0, 0], [255, 0, 0]);
    let blue = media::still("history-blue", 32, 24, [0, 0, 255], [0, 0, 255]);
    let files: Vec<PathBuf> = (0..30)
        .map(|i| {
            if i % 2 == 0 {
                red.clone()
            } else {
                blue.clone()
            }
        })
        .collect();
    let config = HeadlessConfig {
        size: (32, 24),
        ..HeadlessConfig::default()
    };
    let run = |history: Option<usize>| {
        let source = FileListSource::new(
            files.clone(),
            Duration::from_millis(50),
            Fit::Contain,
            false,
        );
        let engine = EngineConfig {
            item_history: history,
            ..EngineConfig::default()
        };
        run_headless(Box::new(source), engine, &config, None).expect("headless run")
    };

    let bounded = run(Some(4));
    assert!(
        (4..8).contains(&bounded.items.len()),
        "kept {} entries",
        bounded.items.len()
    );
    assert_eq!(bounded.dropped_items + bounded.items.len(), 30);
    for (offset, item) in bounded.items.iter().enumerate() {
        let play = bounded.dropped_items + offset;
        assert_eq!(item.outcome, Outcome::Completed, "play {play}");
        assert_eq!(PathBuf::from(&item.path), files[play], "play {play}");
        assert_eq!(
            item.frames_presented, 1,
            "play {play}: a still is one picture"
        );
        assert!(
            item.last_presented_ms > item.first_presented_ms,
            "play {play}"
        );
    }

    let all = run(None);
    assert_eq!(all.items.len(), 30);
    assert_eq!(all.dropped_items, 0);
    assert_eq!(all.items[26..], bounded.items[bounded.items.len() - 4..]);
}
