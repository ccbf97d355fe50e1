//! The measurements behind `ekran bench playback` (SPEC §9), each as a
//! ratio against a baseline run in the same process:
//!
//! - CPU-seconds per presented frame of headless play against a
//!   decode-only GStreamer pipeline (same clip, same decoder choice,
//!   `fakesink sync=false`). Process CPU comes from `/proc/self/stat`
//!   (which keeps the time of threads that already ended); lavapipe's
//!   rasterizer threads (`llvmpipe-N`) stand in for a GPU and are counted
//!   apart from `/proc/self/task/*/stat`.
//! - NV12 upload of a 1080p picture through the renderer against a memcpy
//!   of the same bytes, the two timed in turn in one loop so that both
//!   find the caches as playback leaves them.
//! - Resident memory and open file descriptors over many item transitions.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_video as gst_video;

use super::decode::{self, DecodeConfig};
use super::engine::EngineConfig;
use super::frame::{Colorimetry, Frame, Pixels, PlaneLayout};
use super::headless::{HeadlessConfig, OffscreenTarget, run_headless, run_headless_on};
use super::list::FileListSource;
use super::render::{PictureTextures, Renderer};
use super::text::TextOverlay;
use super::{EngineEvent, Fit, NextItem, PlayerError, Source};

/// What can stop a benchmark.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// `/proc` could not be read (not Linux?).
    #[error("cannot read {path}: {source}")]
    Proc {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The playback side failed.
    #[error(transparent)]
    Player(#[from] PlayerError),
    /// GStreamer is unusable.
    #[error(transparent)]
    Media(#[from] super::MediaError),
    /// The decode-only baseline failed.
    #[error("decode-only pipeline failed: {0}")]
    Baseline(String),
    /// Making the test clip failed.
    #[error("cannot make the benchmark clip with gst-launch-1.0: {0}")]
    Clip(String),
    /// Items failed during the run, so the numbers would mean nothing.
    #[error("{0} item(s) failed during the benchmark run; see the log")]
    ItemsFailed(usize),
}

/// CPU time of this process, split into lavapipe's rasterizer and the rest.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTimes {
    /// All threads, including ones that have ended.
    pub total: Duration,
    /// Threads named `llvmpipe-*` (the software GPU's rasterizer).
    pub rasterizer: Duration,
    /// The other threads the graphics driver started when the device was
    /// opened (lavapipe's queue thread, which carries the process's name:
    /// it runs the command buffers, texture copies included, that a GPU
    /// runs in hardware). Zero unless a set of driver threads is given.
    pub driver: Duration,
}

impl CpuTimes {
    /// Time outside the rasterizer (SPEC §9's "rest of the process").
    pub fn without_rasterizer(&self) -> Duration {
        self.total.saturating_sub(self.rasterizer)
    }

    /// Time outside every thread of the software GPU (rasterizer and the
    /// driver's own threads).
    pub fn without_software_gpu(&self) -> Duration {
        self.without_rasterizer().saturating_sub(self.driver)
    }

    fn since(&self, earlier: &CpuTimes) -> CpuTimes {
        CpuTimes {
            total: self.total.saturating_sub(earlier.total),
            rasterizer: self.rasterizer.saturating_sub(earlier.rasterizer),
            driver: self.driver.saturating_sub(earlier.driver),
        }
    }
}

/// Clock ticks per second of `/proc` CPU times (USER_HZ, 100 on Linux).
const USER_HZ: f64 = 100.0;

fn read(path: &Path) -> Result<String, BenchError> {
    std::fs::read_to_string(path).map_err(|source| BenchError::Proc {
        path: path.to_owned(),
        source,
    })
}

/// utime + stime from a `stat` line (fields 14 and 15; the command name
/// in parentheses may contain spaces, so count from its closing paren).
fn stat_cpu(stat: &str) -> Option<Duration> {
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // after_name starts at field 3 (state): utime is field 14, stime 15.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_secs_f64((utime + stime) / USER_HZ))
}

/// CPU time of this process's children that have ended and been waited
/// for (`cutime` + `cstime`, fields 16 and 17 of `/proc/self/stat`).
fn children_cpu() -> Result<Duration, BenchError> {
    let stat = read(Path::new("/proc/self/stat"))?;
    let after_name = stat.rfind(')').map_or("", |end| &stat[end + 2..]);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let tick = |index: usize| -> f64 {
        fields
            .get(index)
            .and_then(|f| f.parse().ok())
            .unwrap_or(0.0)
    };
    Ok(Duration::from_secs_f64((tick(13) + tick(14)) / USER_HZ))
}

/// mpv's CPU per frame on the same clip, as SPEC §9 asks: `mpv --vo=gpu
/// --gpu-api=opengl --gpu-sw` (the software rasterizer on GL), untimed,
/// every frame shown, in a window of the headless run's size. Needs `mpv`
/// and a display (run the bench under `xvfb-run -a -s "-screen 0
/// 1920x1080x24"`: the X server's own time is not mpv's); `Ok(None)` when
/// either is missing.
pub fn mpv_cpu_per_frame(
    clip: &Path,
    frames: u64,
    size: (u32, u32),
) -> Result<Option<Duration>, BenchError> {
    if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
        return Ok(None);
    }
    let before = children_cpu()?;
    let status = std::process::Command::new("mpv")
        .args([
            "--no-config",
            "--really-quiet",
            "--vo=gpu",
            "--gpu-api=opengl",
            "--gpu-sw",
            "--untimed",
            "--no-audio",
            "--video-sync=display-desync",
        ])
        .arg(format!("--frames={frames}"))
        // The same output size as the headless run (the X screen must be
        // at least as large: `xvfb-run -a -s "-screen 0 1920x1080x24"`).
        .arg(format!("--geometry={}x{}+0+0", size.0, size.1))
        .arg(clip)
        .stdin(std::process::Stdio::null())
        .status();
    let status = match status {
        Ok(status) => status,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(BenchError::Baseline(format!("mpv: {error}"))),
    };
    if !status.success() {
        return Err(BenchError::Baseline(format!("mpv exited with {status}")));
    }
    let used = children_cpu()?.saturating_sub(before);
    Ok(Some(
        used / u32::try_from(frames.max(1)).unwrap_or(u32::MAX),
    ))
}

/// This process's CPU time now.
pub fn cpu_times() -> Result<CpuTimes, BenchError> {
    cpu_times_with_driver(&HashSet::new())
}

/// This process's CPU time now, with the threads in `driver` (see
/// [`open_target_and_driver_threads`]) counted as the graphics driver's.
pub fn cpu_times_with_driver(driver: &HashSet<u32>) -> Result<CpuTimes, BenchError> {
    let total = stat_cpu(&read(Path::new("/proc/self/stat"))?).unwrap_or_default();
    let mut times = CpuTimes {
        total,
        ..CpuTimes::default()
    };
    for (tid, (name, cpu)) in thread_times() {
        if name.starts_with("llvmpipe") {
            times.rasterizer += cpu;
        } else if driver.contains(&tid) {
            times.driver += cpu;
        }
    }
    Ok(times)
}

/// Opens the headless target and tells which threads the graphics driver
/// started for it besides the rasterizer's `llvmpipe-N`: the threads that
/// appear while the device opens (wgpu itself starts none). Those that
/// carry a name of their own and those of an adapter probed but not used
/// do no work during a run, so counting them costs nothing.
pub fn open_target_and_driver_threads(
    size: (u32, u32),
) -> Result<(OffscreenTarget, HashSet<u32>), BenchError> {
    let before = thread_times();
    let target = OffscreenTarget::new(size)?;
    let driver = thread_times()
        .into_iter()
        .filter(|(tid, (name, _))| !before.contains_key(tid) && !name.starts_with("llvmpipe"))
        .map(|(tid, _)| tid)
        .collect();
    Ok((target, driver))
}

/// CPU time per thread name of this process, sampled while a run goes on:
/// threads that end before the run does (decoder pools, streaming
/// threads) are kept at their last sample, so it shows where the time
/// went, not only the total.
pub struct ThreadSampler {
    stop: Arc<std::sync::atomic::AtomicBool>,
    /// Returns what it saw and its own CPU time.
    #[allow(clippy::type_complexity)]
    worker: Option<
        std::thread::JoinHandle<(std::collections::HashMap<u32, (String, Duration)>, Duration)>,
    >,
    start: std::collections::HashMap<u32, (String, Duration)>,
    /// The thread that started the sampler (the one running the engine).
    caller: Option<u32>,
    /// Threads shown as the graphics driver's.
    driver: HashSet<u32>,
}

/// This thread's id, from `/proc/thread-self` (`PID/task/TID`).
fn current_tid() -> Option<u32> {
    std::fs::read_link("/proc/thread-self")
        .ok()?
        .file_name()?
        .to_str()?
        .parse()
        .ok()
}

/// Every thread of this process: id → (name, CPU so far).
fn thread_times() -> std::collections::HashMap<u32, (String, Duration)> {
    let mut threads = std::collections::HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc/self/task") else {
        return threads;
    };
    for entry in entries.flatten() {
        let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if let Some(cpu) = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|stat| stat_cpu(&stat))
        {
            threads.insert(tid, (comm.trim().to_owned(), cpu));
        }
    }
    threads
}

/// A thread name without its instance number (`llvmpipe-3` → `llvmpipe`,
/// `avdec_h264-0:sink` → `avdec_h264:sink`), so pools add up.
fn thread_group(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut group = String::with_capacity(name.len());
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() {
            group.push(chars[i]);
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && chars[i].is_ascii_digit() {
            i += 1;
        }
        if matches!(chars.get(i), None | Some(':' | '_')) {
            // An instance number: dropped with its separator.
            if group.ends_with(['-', '_']) {
                group.pop();
            }
        } else {
            group.extend(&chars[start..i]);
        }
    }
    group
}

impl ThreadSampler {
    /// Starts sampling every 20 ms.
    pub fn start() -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = stop.clone();
        let start = thread_times();
        let worker = std::thread::Builder::new()
            .name("ekran-sampler".into())
            .spawn(move || {
                let mut seen = std::collections::HashMap::new();
                loop {
                    seen.extend(thread_times());
                    if stopping.load(std::sync::atomic::Ordering::Relaxed) {
                        return (seen, thread_cpu());
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
            .ok();
        ThreadSampler {
            stop,
            worker,
            start,
            caller: current_tid(),
            driver: HashSet::new(),
        }
    }

    /// Shows `driver` (see [`open_target_and_driver_threads`]) as one
    /// group, `graphics driver`, instead of under the process's name.
    pub fn with_driver_threads(mut self, driver: &HashSet<u32>) -> Self {
        self.driver = driver.clone();
        self
    }

    /// Stops sampling; CPU time spent during the run per thread group,
    /// largest first (the sampler's own thread left out), and the CPU time
    /// of the sampler itself, which the caller takes out of the process's
    /// total (reading `/proc` for every thread every 20 ms is the
    /// measurement's cost, not the player's). The thread that started the
    /// sampler is `this thread`; threads that C libraries start without a
    /// name of their own (lavapipe's queue thread among them) carry the
    /// process's name unless named by [`Self::with_driver_threads`].
    pub fn finish(mut self) -> (Vec<(String, Duration)>, Duration) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (seen, own) = self
            .worker
            .take()
            .and_then(|worker| worker.join().ok())
            .unwrap_or_default();
        let mut groups: std::collections::HashMap<String, Duration> =
            std::collections::HashMap::new();
        for (tid, (name, cpu)) in seen {
            if name == "ekran-sampler" {
                continue;
            }
            let before = self.start.get(&tid).map_or(Duration::ZERO, |(_, cpu)| *cpu);
            let group = if Some(tid) == self.caller {
                "this thread".to_owned()
            } else if self.driver.contains(&tid) {
                "graphics driver".to_owned()
            } else {
                thread_group(&name)
            };
            *groups.entry(group).or_default() += cpu.saturating_sub(before);
        }
        let mut groups: Vec<(String, Duration)> = groups
            .into_iter()
            .filter(|(_, cpu)| !cpu.is_zero())
            .collect();
        groups.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        (groups, own)
    }
}

/// CPU time of the calling thread (nanosecond resolution).
fn thread_cpu() -> Duration {
    let time = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(time.tv_sec).unwrap_or(0),
        u32::try_from(time.tv_nsec).unwrap_or(0),
    )
}

/// Resident set size in KiB and the number of open file descriptors.
pub fn rss_and_fds() -> Result<(u64, usize), BenchError> {
    let status = read(Path::new("/proc/self/status"))?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0);
    Ok((rss, fds))
}

/// The benchmark clip's default picture: a moving zone plate, detailed in
/// every frame like camera footage (a bouncing ball on black decodes in
/// half the time and would flatter no one but the baseline's share).
pub const DEFAULT_PATTERN: &str = "zone-plate kx2=20 ky2=20 kt=1";

/// Encodes the benchmark clip (H.264, `pattern` as videotestsrc
/// properties, 6 Mbit/s like a signage clip) with gst-launch-1.0.
pub fn make_clip(
    path: &Path,
    frames: u32,
    fps: u32,
    size: (u32, u32),
    pattern: &str,
) -> Result<(), BenchError> {
    let pipeline = format!(
        "videotestsrc pattern={pattern} num-buffers={frames} ! video/x-raw,format=I420,width={},height={},framerate={fps}/1 \
         ! x264enc speed-preset=veryfast bitrate=6000 ! mp4mux ! filesink location={}",
        size.0,
        size.1,
        path.display()
    );
    let status = std::process::Command::new("gst-launch-1.0")
        .arg("-q")
        .args(pipeline.split_whitespace())
        .status()
        .map_err(|e| BenchError::Clip(e.to_string()))?;
    if status.success() {
        Ok(())
    } else {
        Err(BenchError::Clip(format!("{status} for: {pipeline}")))
    }
}

/// CPU per presented frame: headless play against decode-only.
#[derive(Debug, Clone)]
pub struct CpuComparison {
    /// Frames presented by the headless run.
    pub frames_presented: u64,
    /// CPU of the headless run (the thread sampler's own time left out).
    pub play: CpuTimes,
    /// Where the headless run's CPU went, per thread group, largest first.
    pub play_threads: Vec<(String, Duration)>,
    /// Frames the decode-only pipeline decoded.
    pub frames_decoded: u64,
    /// CPU of the decode-only run (the thread sampler's own time left out).
    pub decode_only: Duration,
    /// Where the decode-only run's CPU went, per thread group.
    pub decode_only_threads: Vec<(String, Duration)>,
    /// The decoder both used.
    pub decoder: Option<String>,
}

impl CpuComparison {
    /// Per-frame CPU outside the rasterizer, play ÷ decode-only (target ≤ 1.3).
    pub fn ratio_without_rasterizer(&self) -> f64 {
        per_frame(self.play.without_rasterizer(), self.frames_presented)
            / per_frame(self.decode_only, self.frames_decoded)
    }

    /// Per-frame CPU outside every software-GPU thread (rasterizer and
    /// driver), play ÷ decode-only: what a box with a GPU would see.
    pub fn ratio_without_software_gpu(&self) -> f64 {
        per_frame(self.play.without_software_gpu(), self.frames_presented)
            / per_frame(self.decode_only, self.frames_decoded)
    }

    /// Per-frame CPU of the whole process, play ÷ decode-only.
    pub fn ratio_whole(&self) -> f64 {
        per_frame(self.play.total, self.frames_presented)
            / per_frame(self.decode_only, self.frames_decoded)
    }
}

fn per_frame(time: Duration, frames: u64) -> f64 {
    time.as_secs_f64() / frames.max(1) as f64
}

/// Plays `clip` headless at `size` with the refresh rate equal to the
/// clip's frame rate (every picture presented once), then decodes it with
/// `filesrc ! decodebin3 ! fakesink sync=false`.
pub fn compare_cpu(clip: &Path, size: (u32, u32), fps: f64) -> Result<CpuComparison, BenchError> {
    decode::prefer_hardware_decoders(&DecodeConfig::default().hardware_decoders)?;
    // The device (and its llvmpipe threads) must outlive the second
    // reading, or the threads' time is gone from /proc/self/task; the
    // warm-up (shader compilation, plugin loading) runs on it too.
    let (target, driver) = open_target_and_driver_threads(size)?;
    let warmup = Box::new(FileListSource::new(
        vec![clip.to_owned()],
        Duration::ZERO,
        Fit::Contain,
        false,
    ));
    let config = HeadlessConfig {
        size,
        refresh_hz: fps,
        max_duration: Some(Duration::from_millis(200)),
        ..HeadlessConfig::default()
    };
    run_headless_on(&target, warmup, EngineConfig::default(), &config, None)?;

    let source = Box::new(FileListSource::new(
        vec![clip.to_owned()],
        Duration::ZERO,
        Fit::Contain,
        false,
    ));
    let config = HeadlessConfig {
        max_duration: None,
        ..config
    };
    let before = cpu_times_with_driver(&driver)?;
    let sampler = ThreadSampler::start().with_driver_threads(&driver);
    let stats = run_headless_on(&target, source, EngineConfig::default(), &config, None)?;
    let (play_threads, sampling) = sampler.finish();
    let mut play = cpu_times_with_driver(&driver)?.since(&before);
    play.total = play.total.saturating_sub(sampling);
    drop(target);
    let failed = stats.items.iter().filter(|i| i.error.is_some()).count();
    if failed > 0 {
        return Err(BenchError::ItemsFailed(failed));
    }
    let frames_presented = stats.items.iter().map(|i| i.frames_presented).sum();
    let decoder = stats.items.first().and_then(|i| i.decoder.clone());

    let before = cpu_times()?;
    let sampler = ThreadSampler::start();
    let frames_decoded = decode_only(clip)?;
    let (decode_only_threads, sampling) = sampler.finish();
    let decode_only = cpu_times()?.since(&before).total.saturating_sub(sampling);
    Ok(CpuComparison {
        frames_presented,
        play,
        play_threads,
        frames_decoded,
        decode_only,
        decode_only_threads,
        decoder,
    })
}

/// Decodes `clip` as fast as possible into a fakesink; returns the number
/// of pictures decoded.
fn decode_only(clip: &Path) -> Result<u64, BenchError> {
    let absolute = std::fs::canonicalize(clip).map_err(|e| BenchError::Baseline(e.to_string()))?;
    // The same decoding bin as playback, so the same decoder is chosen.
    let description = format!(
        "filesrc location=\"{}\" ! {} caps=video/x-raw ! fakesink name=sink sync=false signal-handoffs=true",
        absolute.display(),
        decode::default_decodebin()
    );
    let pipeline = gst::parse::launch(&description)
        .map_err(|e| BenchError::Baseline(e.to_string()))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| BenchError::Baseline("not a pipeline".into()))?;
    let count = Arc::new(Mutex::new(0u64));
    if let Some(sink) = pipeline.by_name("sink") {
        let counter = count.clone();
        sink.connect("handoff", false, move |_| {
            *counter.lock().unwrap_or_else(|p| p.into_inner()) += 1;
            None
        });
    }
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| BenchError::Baseline(e.to_string()))?;
    let bus = pipeline
        .bus()
        .ok_or_else(|| BenchError::Baseline("no bus".into()))?;
    let result = match bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(120),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .map(|m| m.view().clone_error())
    {
        Some(None) => Ok(()),
        Some(Some(error)) => Err(BenchError::Baseline(error)),
        None => Err(BenchError::Baseline("timed out".into())),
    };
    let _ = pipeline.set_state(gst::State::Null);
    result?;
    let decoded = *count.lock().unwrap_or_else(|p| p.into_inner());
    Ok(decoded)
}

trait CloneError {
    fn clone_error(&self) -> Option<String>;
}

impl CloneError for gst::MessageView<'_> {
    fn clone_error(&self) -> Option<String> {
        match self {
            gst::MessageView::Error(error) => Some(error.error().to_string()),
            _ => None,
        }
    }
}

/// NV12 1080p upload against memcpy.
#[derive(Debug, Clone)]
pub struct UploadComparison {
    /// Bytes per picture (Y + UV).
    pub bytes: usize,
    /// Per picture (each figure a median over the iterations): the
    /// renderer's upload, waited for until the device has
    /// it (wall clock; on lavapipe this includes the software GPU's own
    /// buffer-to-texture copy on its queue thread).
    pub upload: Duration,
    /// Per picture: CPU time of the uploading thread in
    /// [`Renderer::upload`] (the copy into the driver's staging memory and
    /// recording the copy to the texture). On a GPU the rest is a DMA copy;
    /// on lavapipe it is the software GPU's work, counted apart as SPEC §9
    /// counts the `llvmpipe-N` threads apart.
    pub upload_cpu: Duration,
    /// Per picture: CPU time of the uploading thread in the submit that
    /// sends the copy to the device. A player sends it with the frame's
    /// drawing, one submit per frame whether or not a picture went up, so
    /// it is shown apart (on lavapipe it is mostly waking the driver's
    /// queue thread).
    pub submit_cpu: Duration,
    /// Per picture: CPU time of copying the same bytes into another buffer,
    /// timed in the same loop as the upload, right after the device's copy
    /// of the previous upload (the baseline of the ratio).
    pub memcpy: Duration,
    /// Per picture: the same memcpy repeated on its own, source and
    /// destination staying in the processor's caches: the best case, shown
    /// for comparison.
    pub memcpy_hot: Duration,
}

impl UploadComparison {
    /// CPU of the uploading thread ÷ memcpy in the same loop (target ≤ 1.5).
    pub fn ratio(&self) -> f64 {
        self.upload_cpu.as_secs_f64() / self.memcpy.as_secs_f64().max(1e-12)
    }

    /// CPU of the uploading thread ÷ the memcpy repeated on its own.
    pub fn hot_ratio(&self) -> f64 {
        self.upload_cpu.as_secs_f64() / self.memcpy_hot.as_secs_f64().max(1e-12)
    }

    /// Wall time until the device holds the picture ÷ memcpy.
    pub fn wall_ratio(&self) -> f64 {
        self.upload.as_secs_f64() / self.memcpy.as_secs_f64().max(1e-12)
    }
}

/// Uploads `iterations` NV12 1080p pictures through [`Renderer::upload`]
/// (waiting for the queue each time), copying the same bytes into a buffer
/// after each, then repeats the copy on its own as often. Each figure is
/// the median over the iterations.
///
/// Everything is timed on this thread's CPU clock, so time it spends
/// preempted on a busy machine counts for neither side. The copy in the
/// loop is the baseline: like the upload, it runs after the device's copy
/// of the previous picture (on lavapipe, a CPU thread writing the texture)
/// has passed through the caches, as in playback, where the decoder and the
/// renderer also touch other memory between two uploads. A copy repeated
/// on its own keeps its 3 MB source and destination in cache and runs
/// about twice as fast; it is reported too ([`UploadComparison::memcpy_hot`]).
pub fn compare_upload(iterations: u32) -> Result<UploadComparison, BenchError> {
    decode::init_gstreamer()?;
    let (width, height) = (1920u32, 1080u32);
    let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Nv12, width, height)
        .build()
        .map_err(|e| BenchError::Baseline(e.to_string()))?;
    let bytes = info.size();
    // A varying pattern so nothing can be skipped as zero pages.
    let data: Vec<u8> = (0..bytes).map(|i| (i * 7 % 251) as u8).collect();
    let buffer = gst::Buffer::from_slice(data.clone());
    let mapped = gst_video::VideoFrame::from_buffer_readable(buffer, &info)
        .map_err(|_| BenchError::Baseline("cannot map the NV12 picture".into()))?;
    let frame = Frame {
        pts: Duration::ZERO,
        duration: None,
        width,
        height,
        layout: PlaneLayout::Nv12,
        colorimetry: Colorimetry::default(),
        pixels: Pixels::Video(Box::new(mapped)),
    };
    let target = OffscreenTarget::new((16, 16))?;
    let text = TextOverlay::new(
        target.device(),
        target.queue(),
        super::headless::HEADLESS_FORMAT,
        None,
    );
    let renderer = Renderer::new(
        target.device(),
        target.queue(),
        super::headless::HEADLESS_FORMAT,
        [0, 0, 0],
        text,
    );
    let mut textures = PictureTextures::new();
    let wait = || {
        let _ = renderer.device().poll(wgpu::PollType::wait_indefinitely());
    };
    let mut destination = vec![0u8; bytes];
    let mut copy = |i: u32| {
        destination.copy_from_slice(&data);
        // Keep the copy observable so it is not optimised away.
        std::hint::black_box(&destination);
        destination[i as usize % bytes] ^= 1;
    };
    renderer.upload(&mut textures, &frame);
    renderer.queue().submit([]);
    wait();
    copy(0);
    let iterations = iterations.max(1) as usize;
    let mut upload_cpu = Vec::with_capacity(iterations);
    let mut submit_cpu = Vec::with_capacity(iterations);
    let mut memcpy = Vec::with_capacity(iterations);
    let mut upload_wall = Vec::with_capacity(iterations);
    for i in 0..iterations as u32 {
        let started = Instant::now();
        let before = thread_cpu();
        renderer.upload(&mut textures, &frame);
        let uploaded = thread_cpu();
        renderer.queue().submit([]);
        let submitted = thread_cpu();
        wait();
        upload_wall.push(started.elapsed());
        upload_cpu.push(uploaded.saturating_sub(before));
        submit_cpu.push(submitted.saturating_sub(uploaded));
        let before = thread_cpu();
        copy(i);
        memcpy.push(thread_cpu().saturating_sub(before));
    }
    let mut memcpy_hot = Vec::with_capacity(iterations);
    for i in 0..iterations as u32 {
        let before = thread_cpu();
        copy(i);
        memcpy_hot.push(thread_cpu().saturating_sub(before));
    }
    Ok(UploadComparison {
        bytes,
        upload: median(upload_wall),
        upload_cpu: median(upload_cpu),
        submit_cpu: median(submit_cpu),
        memcpy: median(memcpy),
        memcpy_hot: median(memcpy_hot),
    })
}

/// The middle value (the upper one of an even count): a few copies slowed
/// by another thread's cache traffic or an interrupt do not move it.
fn median(mut values: Vec<Duration>) -> Duration {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

/// Memory and descriptors sampled during a long run of short items.
#[derive(Debug, Clone)]
pub struct TransitionSamples {
    /// `(transitions so far, RSS KiB, open fds)`.
    pub samples: Vec<(u64, u64, usize)>,
}

impl TransitionSamples {
    /// RSS growth in KiB from the first sample after warm-up to the last.
    pub fn rss_growth_kib(&self) -> i64 {
        match (self.samples.get(1), self.samples.last()) {
            (Some(first), Some(last)) => last.1 as i64 - first.1 as i64,
            _ => 0,
        }
    }

    /// RSS growth in KiB over the second half of the run: the allocator's
    /// per-thread arenas fill during the first few hundred transitions
    /// (GStreamer's streaming threads come and go with each item), after
    /// which a steady player stays flat; a leak keeps growing here.
    pub fn rss_second_half_growth_kib(&self) -> i64 {
        match (
            self.samples.get(self.samples.len() / 2),
            self.samples.last(),
        ) {
            (Some(middle), Some(last)) => last.1 as i64 - middle.1 as i64,
            _ => 0,
        }
    }

    /// Descriptor growth over the same span as [`Self::rss_growth_kib`].
    pub fn fd_growth(&self) -> i64 {
        match (self.samples.get(1), self.samples.last()) {
            (Some(first), Some(last)) => last.2 as i64 - first.2 as i64,
            _ => 0,
        }
    }
}

/// Cycles through `clips` for `transitions` item changes, sampling RSS and
/// descriptors every `sample_every` transitions.
pub fn measure_transitions(
    clips: Vec<PathBuf>,
    transitions: u64,
    sample_every: u64,
) -> Result<TransitionSamples, BenchError> {
    struct Sampling {
        inner: FileListSource,
        finished: u64,
        limit: u64,
        every: u64,
        samples: Arc<Mutex<Vec<(u64, u64, usize)>>>,
        failed: Arc<Mutex<usize>>,
    }
    impl Source for Sampling {
        fn next_item(&mut self) -> NextItem {
            if self.finished >= self.limit {
                return NextItem::End;
            }
            self.inner.next_item()
        }
        fn on_event(&mut self, event: EngineEvent) {
            match &event {
                EngineEvent::Finished { .. } => {
                    self.finished += 1;
                    if self.finished.is_multiple_of(self.every.max(1))
                        && let Ok((rss, fds)) = rss_and_fds()
                    {
                        self.samples
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push((self.finished, rss, fds));
                    }
                }
                EngineEvent::Failed { .. } => {
                    *self.failed.lock().unwrap_or_else(|p| p.into_inner()) += 1
                }
                EngineEvent::Started { .. } => {}
            }
            self.inner.on_event(event);
        }
    }
    let samples = Arc::new(Mutex::new(Vec::new()));
    let failed = Arc::new(Mutex::new(0));
    let source = Sampling {
        inner: FileListSource::new(clips, Duration::from_millis(50), Fit::Contain, true),
        finished: 0,
        limit: transitions,
        every: sample_every,
        samples: samples.clone(),
        failed: failed.clone(),
    };
    let config = HeadlessConfig {
        size: (160, 120),
        refresh_hz: 60.0,
        ..HeadlessConfig::default()
    };
    // As a screen's player runs: recent plays' statistics only.
    let engine_config = EngineConfig {
        item_history: Some(super::PLAYER_ITEM_HISTORY),
        ..EngineConfig::default()
    };
    run_headless(Box::new(source), engine_config, &config, None)?;
    let failed = *failed.lock().unwrap_or_else(|p| p.into_inner());
    if failed > 0 {
        return Err(BenchError::ItemsFailed(failed));
    }
    let samples = samples.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Ok(TransitionSamples { samples })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_names_group_by_pool() {
        assert_eq!(thread_group("llvmpipe-3"), "llvmpipe");
        assert_eq!(thread_group("llvmpipe-12"), "llvmpipe");
        assert_eq!(thread_group("multiqueue0:src_0"), "multiqueue:src");
        assert_eq!(thread_group("ekran-render"), "ekran-render");
        assert_eq!(thread_group("qtdemux0:sink"), "qtdemux:sink");
        assert_eq!(thread_group("avdec_h264-0:sink"), "avdec_h264:sink");
    }

    #[test]
    fn stat_lines_with_spaces_in_the_name_parse() {
        let line = "1234 (llvmpipe 0) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0";
        assert_eq!(stat_cpu(line), Some(Duration::from_secs(3)));
    }

    #[test]
    fn cpu_of_the_given_driver_threads_is_counted_apart() {
        let (to_main, from_worker) = std::sync::mpsc::channel();
        let (to_worker, from_main) = std::sync::mpsc::channel::<()>();
        let worker = std::thread::spawn(move || {
            let _ = to_main.send(current_tid());
            let _ = from_main.recv();
            // 30 ms of CPU (three clock ticks) on this thread alone.
            let began = thread_cpu();
            while thread_cpu().saturating_sub(began) < Duration::from_millis(30) {
                std::hint::black_box((0..1000u64).sum::<u64>());
            }
            let _ = to_main.send(None);
            let _ = from_main.recv();
        });
        let driver = HashSet::from([from_worker.recv().unwrap().unwrap()]);
        let before = cpu_times_with_driver(&driver).unwrap();
        to_worker.send(()).unwrap();
        assert_eq!(from_worker.recv().unwrap(), None);
        let after = cpu_times_with_driver(&driver).unwrap();
        to_worker.send(()).unwrap();
        worker.join().unwrap();
        let spent = after.since(&before);
        assert!(spent.driver >= Duration::from_millis(20), "{spent:?}");
        assert_eq!(spent.rasterizer, Duration::ZERO);
        assert_eq!(
            spent.without_software_gpu(),
            spent.without_rasterizer() - spent.driver
        );
    }

    #[test]
    fn this_process_has_cpu_time_rss_and_descriptors() {
        let busy: u64 = (0..5_000_000u64).map(std::hint::black_box).sum();
        assert!(busy > 0);
        assert!(cpu_times().unwrap().total > Duration::ZERO);
        let (rss, fds) = rss_and_fds().unwrap();
        assert!(rss > 0 && fds >= 3);
    }
}
