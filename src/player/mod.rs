//! The screen box's playback engine: GStreamer decodes, wgpu composes,
//! a window or an offscreen texture shows the result.
//!
//! # Layout
//!
//! - [`decode`]: one GStreamer pipeline per clip (`filesrc → decodebin3 → appsink`,
//!   hardware decoders raised by rank), a thread per still; pictures reach
//!   the render thread through bounded channels.
//! - [`frame`]: decoded pictures (NV12 / I420 / RGBA planes) and their
//!   colorimetry, turned into the shader's YUV → RGB matrix.
//! - [`render`]: uploads planes into textures and composes layers, fit,
//!   rotation, crossfade and text into a `&TextureView` it is given.
//! - [`text`]: the ticker and the pairing screen (glyphon).
//! - [`engine`]: the sequencing loop: asks the [`Source`] what plays next,
//!   prerolls it, switches gaplessly, counts frames, reports [`EngineEvent`]s.
//! - [`headless`]: offscreen output on a virtual clock, PNG snapshots.
//! - [`window`]: winit fullscreen output paced by the display (vsync).
//! - [`list`]: the [`Source`] behind `ekran play` (files in order, looped).
//! - [`screenshot`]: reading an output back; the low-resolution PNG the
//!   agent uploads when the server asks for a screenshot.
//! - [`bench`]: the measurements behind `ekran bench playback`.
//! - [`shaders`]: the one place WGSL is loaded.
//!
//! # The engine's interface
//!
//! Whoever decides *what* plays (the player agent with its manifest and
//! schedule, or `ekran play` with its file list) implements [`Source`];
//! the engine decides *when* and *how*. All three methods are called on the
//! render thread once per output refresh at most and must not block: an
//! agent on another thread answers from state it keeps current, e.g.
//! behind a channel it drains here.
//!
//! - [`Source::next_item`] is asked for the item after the ones already
//!   handed out: when nothing plays, and as soon as an item starts, so that
//!   the next one is prerolled (its pipeline started and its first picture
//!   decoded) while the current one plays. Answer [`NextItem::NotYet`] to
//!   be asked again next refresh, [`NextItem::End`] to finish once the
//!   current item ends.
//! - [`Source::on_event`] receives [`EngineEvent::Started`] when an item's
//!   first picture is on screen, then [`EngineEvent::Finished`] (with its
//!   frame counts and first/last presentation times: the proof-of-play
//!   facts) or [`EngineEvent::Failed`] with the reason; a failed item is
//!   skipped and the next one plays.
//! - [`Source::poll_control`] is drained each refresh for [`Control`]s: the
//!   ticker text, the pairing code screen, stop.
//! - [`Source::poll_screenshot`] is asked after each refresh is drawn: the
//!   output reads that refresh back and answers the request.

pub mod agent_source;
pub mod bench;
pub mod decode;
pub mod engine;
pub mod frame;
pub mod headless;
pub mod list;
pub mod render;
pub mod screenshot;
pub mod shaders;
pub mod text;
pub mod window;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

pub use crate::manifest::Fit;
pub use decode::{DecodeConfig, DecoderUsed, MediaError};
pub use engine::{Engine, EngineConfig, ItemStats, Outcome, PLAYER_ITEM_HISTORY, Pacing, RunStats};
pub use render::Rotation;

/// Identifies one play of an item: the source numbers them, the engine's
/// events quote them back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlayId(pub u64);

/// How long an item stays on screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// A video clip, played to its end or cut at `max_duration`.
    Clip {
        /// Cut the clip after this long on screen.
        max_duration: Option<Duration>,
    },
    /// A still image (PNG/JPEG) shown for `duration`.
    Still {
        /// Display time.
        duration: Duration,
    },
}

/// One thing to put on screen.
#[derive(Debug, Clone, PartialEq)]
pub struct PlayItem {
    /// This play's number, quoted in events.
    pub play: PlayId,
    /// The manifest item id (proof-of-play records name it); for
    /// `ekran play`, the file name.
    pub item_id: String,
    /// The local file.
    pub path: PathBuf,
    /// Clip or still, with its duration.
    pub kind: MediaKind,
    /// How it fills the screen.
    pub fit: Fit,
}

/// The source's answer to "what plays next?".
#[derive(Debug, Clone, PartialEq)]
pub enum NextItem {
    /// Play this after the ones already handed out.
    Play(PlayItem),
    /// Nothing now; ask again next refresh (the last picture stays up, or
    /// the background when there never was one).
    NotYet,
    /// Nothing ever again: the engine finishes once the current item ends.
    End,
}

/// A moment on screen, on both the engine's clock and the wall clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresentedAt {
    /// Since the engine started (virtual in headless mode).
    pub clock: Duration,
    /// Wall-clock time: the engine's start time plus `clock`.
    pub wall: SystemTime,
}

/// What happened to an item the source handed out.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineEvent {
    /// The item's first picture is on screen.
    Started {
        /// Which play.
        play: PlayId,
        /// When its first picture was presented.
        presented_at: PresentedAt,
        /// The decoder element (clips only).
        decoder: Option<DecoderUsed>,
    },
    /// The item played to its end (or its duration).
    Finished {
        /// Which play.
        play: PlayId,
        /// Distinct pictures shown (a still counts one).
        frames_presented: u64,
        /// Pictures decoded but never shown because they were late.
        frames_dropped: u64,
        /// The refresh showing its first picture.
        first_presented: PresentedAt,
        /// The last refresh showing it.
        last_presented: PresentedAt,
    },
    /// The item could not play (missing, broken, truncated, stalled); the
    /// engine moved on.
    Failed {
        /// Which play.
        play: PlayId,
        /// Why, for logs and reports.
        reason: String,
    },
}

/// Requests the source makes of the engine outside the item sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// Scroll this text along the bottom edge; `None` removes the ticker.
    Ticker(Option<String>),
    /// Show this pairing code full screen; `None` returns to content.
    PairingCode(Option<String>),
    /// Nothing may play (the agent's fallback): once no item is on
    /// screen, drop the held last picture so the background shows.
    Blank,
    /// Stop at once (the current item is reported as interrupted).
    Stop,
}

/// What the engine plays: implemented by the player agent and by
/// `ekran play`. See the module docs for the call protocol.
pub trait Source {
    /// The item after the ones already handed out.
    fn next_item(&mut self) -> NextItem;
    /// An item started, finished or failed.
    fn on_event(&mut self, event: EngineEvent);
    /// The next pending control request, if any.
    fn poll_control(&mut self) -> Option<Control> {
        None
    }
    /// A pending request for a screenshot of the refresh just drawn, if any.
    fn poll_screenshot(&mut self) -> Option<crate::agent::heartbeat::ScreenshotRequest> {
        None
    }
}

/// Errors that stop the engine as a whole (a single bad item never does).
#[derive(Debug, thiserror::Error)]
pub enum PlayerError {
    /// No GPU adapter (not even the software rasterizer).
    #[error("no graphics adapter found: {0}; install mesa-vulkan-drivers for software rendering")]
    NoAdapter(String),
    /// The adapter refused to give a device.
    #[error("the graphics device could not be opened: {0}")]
    Device(String),
    /// The window could not be opened.
    #[error(
        "cannot open the output window: {0}; is a display server running (DISPLAY / WAYLAND_DISPLAY)?"
    )]
    Window(String),
    /// GStreamer is unusable.
    #[error(transparent)]
    Media(#[from] MediaError),
    /// A snapshot or stats file could not be written.
    #[error("cannot write {path}: {reason}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The output size is unusable.
    #[error("bad output size {0}: expected WIDTHxHEIGHT, each 1..=8192, e.g. 1920x1080")]
    BadSize(String),
}

/// The wgpu backends for the player config's `output.backend`.
pub fn backends(backend: crate::agent::config::GraphicsBackend) -> wgpu::Backends {
    match backend {
        crate::agent::config::GraphicsBackend::Vulkan => wgpu::Backends::VULKAN,
        crate::agent::config::GraphicsBackend::Gl => wgpu::Backends::GL,
    }
}

/// Parses `WIDTHxHEIGHT`.
pub fn parse_size(text: &str) -> Result<(u32, u32), PlayerError> {
    let bad = || PlayerError::BadSize(text.to_owned());
    let (w, h) = text.split_once(['x', 'X']).ok_or_else(bad)?;
    let w: u32 = w.trim().parse().map_err(|_| bad())?;
    let h: u32 = h.trim().parse().map_err(|_| bad())?;
    if !(1..=8192).contains(&w) || !(1..=8192).contains(&h) {
        return Err(bad());
    }
    Ok((w, h))
}

/// The adapter the latest [`open_device`] opened, as [`describe_adapter`]
/// words it (one engine per process, so one adapter).
static GRAPHICS_IN_USE: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// The graphics backend and adapter this process renders with, once the
/// output is open: what heartbeats report (SPEC §5).
pub fn graphics_in_use() -> Option<String> {
    GRAPHICS_IN_USE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone()
}

/// "Vulkan · llvmpipe (LLVM 15.0.6, 256 bits) · software (CPU) · llvmpipe
/// Mesa 22.3.6": backend, adapter, what kind of device, driver.
pub fn describe_adapter(info: &wgpu::AdapterInfo) -> String {
    let kind = match info.device_type {
        wgpu::DeviceType::Cpu => "software (CPU)",
        wgpu::DeviceType::IntegratedGpu => "integrated GPU",
        wgpu::DeviceType::DiscreteGpu => "discrete GPU",
        wgpu::DeviceType::VirtualGpu => "virtual GPU",
        wgpu::DeviceType::Other => "other device",
    };
    let driver = [info.driver.as_str(), info.driver_info.as_str()]
        .iter()
        .filter(|part| !part.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    let mut described = format!("{:?} · {} · {kind}", info.backend, info.name);
    if !driver.is_empty() {
        described.push_str(" · ");
        described.push_str(&driver);
    }
    described
}

/// Opens the default adapter (lavapipe on a box without GPU) and a device.
pub async fn open_device(
    instance: &wgpu::Instance,
    surface: Option<&wgpu::Surface<'_>>,
) -> Result<(wgpu::Adapter, wgpu::Device, wgpu::Queue), PlayerError> {
    let adapter = instance
        .request_adapter(&wgpu::RequestAdapterOptions {
            compatible_surface: surface,
            ..Default::default()
        })
        .await
        .map_err(|e| PlayerError::NoAdapter(e.to_string()))?;
    let info = adapter.get_info();
    let described = describe_adapter(&info);
    tracing::info!(adapter = %info.name, backend = ?info.backend, device_type = ?info.device_type, graphics = %described, "graphics adapter");
    *GRAPHICS_IN_USE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(described);
    let (device, queue) = adapter
        .request_device(&wgpu::DeviceDescriptor {
            label: Some("ekran"),
            ..Default::default()
        })
        .await
        .map_err(|e| PlayerError::Device(e.to_string()))?;
    Ok((adapter, device, queue))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_bad_ones_are_named() {
        assert_eq!(parse_size("1920x1080").unwrap(), (1920, 1080));
        assert_eq!(parse_size("320X240").unwrap(), (320, 240));
        for bad in ["", "1920", "0x10", "10x", "axb", "9000x10"] {
            let error = parse_size(bad).unwrap_err().to_string();
            assert!(error.contains(bad), "{error}");
        }
    }
}
