//! `ekran play`: plays local clips and stills once in order (or looped),
//! in a fullscreen window or headless, for previewing content and checking
//! a clip on a box before pushing it. A playlist TOML among the items
//! stands for its items in file order (media relative to the playlist,
//! stills for their duration, clips capped by theirs, each with its fit;
//! its tickers scroll unless `--ticker` is given). Flights, windows and
//! weights are not applied: this previews every item once per round.
//! Exit status 0 only if every item completed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use ekran::player::decode::{DEFAULT_HARDWARE_DECODERS, DecodeConfig};
use ekran::player::headless::{HeadlessConfig, run_headless};
use ekran::player::list::{FileListSource, ListEntry};
use ekran::player::window::{WindowConfig, run_window};
use ekran::player::{
    Control, EngineConfig, Fit, MediaKind, Outcome, Rotation, RunStats, parse_size,
};
use ekran::playlist;

/// Play local files (clips: MP4/MKV/WebM with H.264, HEVC, VP9; stills: PNG, JPEG).
#[derive(Debug, clap::Args)]
pub struct PlayArgs {
    /// Files to play, in order; a playlist `.toml` plays its items in file order.
    #[arg(required = true, value_name = "ITEM")]
    items: Vec<PathBuf>,
    /// Render offscreen on a virtual clock instead of opening a window.
    #[arg(long)]
    headless: bool,
    /// Output size: headless 1920x1080 by default; for a window, a window
    /// of this size instead of fullscreen.
    #[arg(long, value_name = "WxH")]
    size: Option<String>,
    /// Virtual refresh rate for --headless, in Hz.
    #[arg(long, default_value_t = 60.0, value_name = "HZ")]
    refresh: f64,
    /// Rotate the whole picture clockwise (portrait screens).
    #[arg(long, default_value_t = 0, value_name = "DEGREES")]
    rotate: u32,
    /// Crossfade between items, in milliseconds (0 cuts).
    #[arg(long, default_value_t = 0, value_name = "MS")]
    crossfade: u64,
    /// How pictures of another aspect ratio fill the screen (playlist items keep their own).
    #[arg(long, default_value = "contain", value_parser = ["contain", "cover"])]
    fit: String,
    /// How long stills stay on screen, in seconds (playlist items: their duration).
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
    still_seconds: f64,
    /// Write PNG snapshots here (--headless).
    #[arg(long, value_name = "DIR")]
    snapshot_dir: Option<PathBuf>,
    /// Seconds of (virtual) time between snapshots.
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
    snapshot_every: f64,
    /// Write per-item and run statistics as JSON.
    #[arg(long, value_name = "FILE.json")]
    stats: Option<PathBuf>,
    /// Start again after the last item (until interrupted).
    #[arg(long = "loop")]
    looped: bool,
    /// Scroll this text along the bottom edge.
    #[arg(long, value_name = "TEXT")]
    ticker: Option<String>,
    /// Show this pairing code full screen instead of content.
    #[arg(long, value_name = "CODE")]
    pairing_code: Option<String>,
    /// Font file for text (default: DejaVu Sans, else system fonts).
    #[arg(long, value_name = "FILE")]
    font: Option<PathBuf>,
    /// Audio volume 0.0–1.0 (0: no audio at all).
    #[arg(long, default_value_t = 0.0)]
    volume: f64,
    /// Hardware decoders to prefer, most preferred first (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "ELEMENTS")]
    hw_decoders: Option<Vec<String>>,
    /// Decoding bin: decodebin3 (after a filesrc; the default), uridecodebin3 or uridecodebin.
    #[arg(long, value_parser = ekran::player::decode::DECODEBINS)]
    decodebin: Option<String>,
    /// An item fails when no picture arrives for this many seconds.
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
    stall_seconds: f64,
    /// Stop after this many seconds (virtual time in --headless).
    #[arg(long, value_name = "SECONDS")]
    max_seconds: Option<f64>,
}

pub fn run(args: PlayArgs) -> anyhow::Result<ExitCode> {
    let rotation = Rotation::from_degrees(args.rotate)
        .with_context(|| format!("--rotate {}: use 0, 90, 180 or 270", args.rotate))?;
    let fit = if args.fit == "cover" {
        Fit::Cover
    } else {
        Fit::Contain
    };
    let seconds = |value: f64, flag: &str| {
        if value.is_finite() && value >= 0.0 {
            Ok(Duration::from_secs_f64(value))
        } else {
            anyhow::bail!("{flag} {value}: expected a number of seconds ≥ 0")
        }
    };
    let engine_config = EngineConfig {
        decode: DecodeConfig {
            hardware_decoders: args.hw_decoders.clone().unwrap_or_else(|| {
                DEFAULT_HARDWARE_DECODERS
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            }),
            stall_timeout: seconds(args.stall_seconds, "--stall-seconds")?,
            volume: args.volume.clamp(0.0, 1.0),
            decodebin: args.decodebin.clone(),
        },
        crossfade: Duration::from_millis(args.crossfade),
        rotation,
        // A looped preview without --stats may run for days: keep only the
        // recent plays' statistics (with --stats, every play is written out).
        item_history: (args.looped && args.stats.is_none())
            .then_some(ekran::player::PLAYER_ITEM_HISTORY),
        ..EngineConfig::default()
    };
    let still_duration = seconds(args.still_seconds, "--still-seconds")?;
    let (entries, tickers) = expand_items(&args.items, still_duration, fit)?;
    let mut controls = Vec::new();
    let ticker = args
        .ticker
        .clone()
        .or_else(|| (!tickers.is_empty()).then(|| tickers.join("   ·   ")));
    if let Some(text) = ticker {
        controls.push(Control::Ticker(Some(text)));
    }
    if let Some(code) = &args.pairing_code {
        controls.push(Control::PairingCode(Some(code.clone())));
    }
    let source = FileListSource::from_entries(entries, args.looped).with_controls(controls);
    let max_duration = args
        .max_seconds
        .map(|s| seconds(s, "--max-seconds"))
        .transpose()?;

    let stats = if args.headless {
        let config = HeadlessConfig {
            size: parse_size(args.size.as_deref().unwrap_or("1920x1080"))?,
            refresh_hz: args.refresh,
            snapshot_dir: args.snapshot_dir.clone(),
            snapshot_every: seconds(args.snapshot_every, "--snapshot-every")?,
            max_duration,
            font: args.font.clone(),
            ..HeadlessConfig::default()
        };
        run_headless(Box::new(source), engine_config, &config, None)?
    } else {
        let config = WindowConfig {
            font: args.font.clone(),
            max_duration,
            size: args.size.as_deref().map(parse_size).transpose()?,
            ..WindowConfig::default()
        };
        run_window(Box::new(source), engine_config, config)?
    };
    report(&args, &stats)
}

/// The list entries for the command line's items: files as they are, and
/// each playlist TOML as its items (in file order); also the playlists'
/// ticker texts.
fn expand_items(
    items: &[PathBuf],
    still_duration: Duration,
    fit: Fit,
) -> anyhow::Result<(Vec<ListEntry>, Vec<String>)> {
    let mut entries = Vec::new();
    let mut tickers = Vec::new();
    for path in items {
        let is_playlist = path
            .extension()
            .is_some_and(|extension| extension.eq_ignore_ascii_case("toml"));
        if !is_playlist {
            entries.push(ListEntry::file(path.clone(), still_duration, fit));
            continue;
        }
        let source = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the playlist {}", path.display()))?;
        // Missing media are not checked here: like any missing file they
        // fail their item when its turn comes, and the rest still play.
        let parsed =
            playlist::parse(&source, path).map_err(|errors| anyhow::anyhow!("{errors}"))?;
        for item in &parsed.items {
            let duration = item.duration_ms.map(Duration::from_millis);
            let kind = match item.kind {
                playlist::MediaKind::Still => MediaKind::Still {
                    duration: duration.unwrap_or(still_duration),
                },
                playlist::MediaKind::Clip => MediaKind::Clip {
                    max_duration: duration,
                },
            };
            entries.push(ListEntry {
                path: parsed.media_path(item),
                item_id: item.id.clone(),
                kind,
                fit: item.fit,
            });
        }
        tickers.extend(parsed.tickers.iter().map(|ticker| ticker.text.clone()));
    }
    Ok((entries, tickers))
}

fn report(args: &PlayArgs, stats: &RunStats) -> anyhow::Result<ExitCode> {
    if let Some(path) = &args.stats {
        let json = serde_json::to_string_pretty(stats)?;
        std::fs::write(path, json + "\n")
            .with_context(|| format!("cannot write stats to {}", path.display()))?;
    }
    let failed: Vec<_> = stats
        .items
        .iter()
        .filter(|i| i.outcome != Outcome::Completed)
        .collect();
    for item in &failed {
        eprintln!(
            "{}: {}",
            item.path,
            item.error.as_deref().unwrap_or("did not complete")
        );
    }
    eprintln!(
        "played {} item(s): {} completed, {} not; black frames {}, largest gap {:.1} ms",
        stats.items.len(),
        stats.items.len() - failed.len(),
        failed.len(),
        stats.black_frames,
        stats.max_gap_ms
    );
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Benchmarks (SPEC §9): ratios against baselines measured in the same run.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCmd {
    /// Playback CPU per frame vs decode-only, NV12 upload vs memcpy, RSS and fds over transitions.
    Playback(BenchPlaybackArgs),
}

/// Options of `ekran bench playback`.
#[derive(Debug, clap::Args)]
pub struct BenchPlaybackArgs {
    /// Clip to measure (default: a 1080p H.264 clip made with gst-launch-1.0).
    #[arg(long, value_name = "FILE")]
    clip: Option<PathBuf>,
    /// Frames in the generated clip.
    #[arg(long, default_value_t = 300)]
    frames: u32,
    /// Frame rate of the generated clip (also the headless refresh rate).
    #[arg(long, default_value_t = 30)]
    fps: u32,
    /// Output size of the headless run.
    #[arg(long, default_value = "1920x1080", value_name = "WxH")]
    size: String,
    /// videotestsrc pattern (and properties) of the generated clip.
    #[arg(long, default_value = ekran::player::bench::DEFAULT_PATTERN)]
    pattern: String,
    /// Rounds of the play vs decode-only comparison; the round with the
    /// median ratio is reported (one round is at the mercy of a busy host).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
    /// NV12 1080p uploads to time.
    #[arg(long, default_value_t = 200)]
    uploads: u32,
    /// Item transitions for the memory and descriptor check.
    #[arg(long, default_value_t = 1000)]
    transitions: u64,
}

pub fn run_bench(cmd: BenchCmd) -> anyhow::Result<ExitCode> {
    use ekran::player::bench;
    let BenchCmd::Playback(args) = cmd;
    let size = parse_size(&args.size)?;
    let scratch = Scratch::new()?;
    let clip = match &args.clip {
        Some(clip) => clip.clone(),
        None => {
            let clip = scratch.path().join("bench-1080p.mp4");
            eprintln!(
                "encoding a {}-frame 1080p H.264 clip of {}…",
                args.frames, args.pattern
            );
            bench::make_clip(&clip, args.frames, args.fps, (1920, 1080), &args.pattern)?;
            clip
        }
    };

    let mut rounds = Vec::new();
    for _ in 0..args.rounds {
        rounds.push(bench::compare_cpu(&clip, size, f64::from(args.fps))?);
    }
    rounds.sort_by(|a, b| {
        a.ratio_without_rasterizer()
            .total_cmp(&b.ratio_without_rasterizer())
    });
    let ratios: Vec<String> = rounds
        .iter()
        .map(|round| format!("{:.2}", round.ratio_without_rasterizer()))
        .collect();
    let cpu = rounds.swap_remove(rounds.len() / 2);
    println!(
        "{} round(s) of play vs decode-only, ratios without rasterizer: {}; the median round follows",
        ratios.len(),
        ratios.join(", ")
    );
    println!(
        "clip {} decoded with {}",
        clip.display(),
        cpu.decoder.as_deref().unwrap_or("?")
    );
    println!(
        "play --headless: {} frames, {:.2} ms CPU/frame ({:.2} ms without llvmpipe threads)",
        cpu.frames_presented,
        ms_per(cpu.play.total, cpu.frames_presented),
        ms_per(cpu.play.without_rasterizer(), cpu.frames_presented)
    );
    println!(
        "decode-only:     {} frames, {:.2} ms CPU/frame",
        cpu.frames_decoded,
        ms_per(cpu.decode_only, cpu.frames_decoded)
    );
    println!(
        "ratio CPU/frame without rasterizer: {:.2} (target <= 1.3)",
        cpu.ratio_without_rasterizer()
    );
    println!(
        "ratio CPU/frame without any software-GPU thread (llvmpipe-N and the driver's queue thread, {:.2} ms/frame): {:.2}",
        ms_per(cpu.play.driver, cpu.frames_presented),
        cpu.ratio_without_software_gpu()
    );
    println!(
        "ratio CPU/frame whole process:      {:.2}",
        cpu.ratio_whole()
    );
    match bench::mpv_cpu_per_frame(&clip, cpu.frames_presented, size)? {
        Some(mpv) => println!(
            "mpv --vo=gpu --gpu-api=opengl --gpu-sw: {:.2} ms CPU/frame; ratio whole process to mpv: {:.2} (target <= 1.0)",
            mpv.as_secs_f64() * 1000.0,
            ms_per(cpu.play.total, cpu.frames_presented) / (mpv.as_secs_f64() * 1000.0).max(1e-9)
        ),
        None => println!(
            "mpv comparison skipped: needs mpv on PATH and a display (xvfb-run -a -s \"-screen 0 1920x1080x24\")"
        ),
    }
    for (label, threads, frames) in [
        ("play", &cpu.play_threads, cpu.frames_presented),
        ("decode-only", &cpu.decode_only_threads, cpu.frames_decoded),
    ] {
        let parts: Vec<String> = threads
            .iter()
            .take(8)
            .map(|(name, time)| format!("{name} {:.2}", ms_per(*time, frames)))
            .collect();
        println!("  {label} ms CPU/frame by thread: {}", parts.join(", "));
    }

    let upload = bench::compare_upload(args.uploads)?;
    println!(
        "NV12 1080p upload {:.3} ms CPU on the uploading thread vs memcpy {:.3} ms of {} bytes in the same loop: ratio {:.2} (target <= 1.5)",
        upload.upload_cpu.as_secs_f64() * 1000.0,
        upload.memcpy.as_secs_f64() * 1000.0,
        upload.bytes,
        upload.ratio()
    );
    println!(
        "  the memcpy repeated on its own (source and destination in cache): {:.3} ms, ratio {:.2}",
        upload.memcpy_hot.as_secs_f64() * 1000.0,
        upload.hot_ratio()
    );
    println!(
        "  the submit that sends it: {:.3} ms CPU on the same thread (once per frame with the drawing; ratio with it {:.2})",
        upload.submit_cpu.as_secs_f64() * 1000.0,
        (upload.upload_cpu + upload.submit_cpu).as_secs_f64()
            / upload.memcpy.as_secs_f64().max(1e-12)
    );
    println!(
        "  until the device holds it (wall, incl. the software GPU's copy): {:.3} ms, ratio {:.2}",
        upload.upload.as_secs_f64() * 1000.0,
        upload.wall_ratio()
    );

    let short = [("a", "0xFFFF0000", 160, 120), ("b", "0xFF0000FF", 176, 144)];
    let mut clips = Vec::new();
    for (name, colour, w, h) in short {
        let path = scratch.path().join(format!("short-{name}.mp4"));
        let pipeline = format!(
            "videotestsrc pattern=solid-color foreground-color={colour} num-buffers=3 \
             ! video/x-raw,format=I420,width={w},height={h},framerate=25/1 ! x264enc ! mp4mux ! filesink location={}",
            path.display()
        );
        let status = std::process::Command::new("gst-launch-1.0")
            .arg("-q")
            .args(pipeline.split_whitespace())
            .status()?;
        anyhow::ensure!(status.success(), "gst-launch-1.0 failed: {pipeline}");
        clips.push(path);
    }
    let every = (args.transitions / 10).max(1);
    let samples = bench::measure_transitions(clips, args.transitions, every)?;
    for (transitions, rss, fds) in &samples.samples {
        println!("after {transitions:>5} transitions: RSS {rss} KiB, {fds} open fds");
    }
    println!(
        "growth after warm-up: RSS {:+} KiB, fds {:+}; over the second half: RSS {:+} KiB",
        samples.rss_growth_kib(),
        samples.fd_growth(),
        samples.rss_second_half_growth_kib()
    );
    Ok(ExitCode::SUCCESS)
}

/// A directory for the benchmark's clips, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("ekran-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Scratch(dir))
    }

    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ms_per(time: Duration, frames: u64) -> f64 {
    time.as_secs_f64() * 1000.0 / frames.max(1) as f64
}
