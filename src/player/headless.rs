//! Headless output: the engine renders into an offscreen texture at a set
//! size on a virtual clock (one refresh period per rendered frame, as fast
//! as the CPU allows, no sleeping), with optional PNG snapshots. Tests,
//! CI and screenshots use it; the drawing code is the window's.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::engine::{Engine, EngineConfig, Pacing, RunStats, TickOutcome};
use super::render::Renderer;
use super::screenshot;
use super::text::TextOverlay;
use super::{PlayerError, Source, open_device};
use crate::agent::heartbeat::ScreenshotRequest;

/// The offscreen target's format: plain 8-bit RGBA, the bytes a PNG holds.
pub const HEADLESS_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba8Unorm;

/// Headless output settings.
#[derive(Debug, Clone)]
pub struct HeadlessConfig {
    /// Output size in pixels.
    pub size: (u32, u32),
    /// Virtual refresh rate in Hz.
    pub refresh_hz: f64,
    /// Write a PNG here every `snapshot_every` of virtual time.
    pub snapshot_dir: Option<PathBuf>,
    /// Time between snapshots (the first is taken at time zero).
    pub snapshot_every: Duration,
    /// Stop after this much virtual time even if the source goes on.
    pub max_duration: Option<Duration>,
    /// Font file for text (default: DejaVu Sans, else system fonts).
    pub font: Option<PathBuf>,
    /// Letterbox / background colour (sRGB).
    pub background: [u8; 3],
}

impl Default for HeadlessConfig {
    fn default() -> Self {
        HeadlessConfig {
            size: (1920, 1080),
            refresh_hz: 60.0,
            snapshot_dir: None,
            snapshot_every: Duration::from_secs(1),
            max_duration: None,
            font: None,
            background: [0, 0, 0],
        }
    }
}

/// One rendered refresh, handed to a [`FrameObserver`].
pub struct RenderedFrame<'a> {
    /// Refresh number from 0.
    pub index: u64,
    /// Virtual time of the refresh.
    pub clock: Duration,
    /// What was drawn.
    pub image: &'a image::RgbaImage,
}

/// Sees every rendered refresh (tests check pixels across transitions).
pub type FrameObserver<'a> = &'a mut dyn FnMut(RenderedFrame<'_>);

/// An offscreen target and the device that renders into it.
pub struct OffscreenTarget {
    device: wgpu::Device,
    queue: wgpu::Queue,
    texture: wgpu::Texture,
    view: wgpu::TextureView,
    size: (u32, u32),
}

impl OffscreenTarget {
    /// Opens the default adapter (lavapipe without a GPU) and a target:
    /// Vulkan (or the platform's primary API) first, every backend only
    /// when that finds no adapter. Asking for all at once also starts
    /// OpenGL through EGL, whose driver starts its own idle rasterizer
    /// threads (and logs DRI errors without a display) only to be probed.
    pub fn new(size: (u32, u32)) -> Result<Self, PlayerError> {
        Self::with_backends(size, wgpu::Backends::PRIMARY).or_else(|error| {
            tracing::info!(%error, "no primary graphics backend, probing all");
            Self::with_backends(size, wgpu::Backends::all())
        })
    }

    /// [`Self::new`] on an adapter of one of `backends` (the player
    /// config's `output.backend`).
    pub fn with_backends(size: (u32, u32), backends: wgpu::Backends) -> Result<Self, PlayerError> {
        let mut descriptor = wgpu::InstanceDescriptor::new_without_display_handle();
        descriptor.backends = backends;
        let instance = wgpu::Instance::new(descriptor);
        let (_, device, queue) = pollster::block_on(open_device(&instance, None))?;
        let texture = device.create_texture(&wgpu::TextureDescriptor {
            label: Some("headless output"),
            size: wgpu::Extent3d {
                width: size.0,
                height: size.1,
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: HEADLESS_FORMAT,
            usage: wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC,
            view_formats: &[],
        });
        let view = texture.create_view(&Default::default());
        Ok(OffscreenTarget {
            device,
            queue,
            texture,
            view,
            size,
        })
    }

    /// The device.
    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    /// The queue.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    /// The view the renderer draws into.
    pub fn view(&self) -> &wgpu::TextureView {
        &self.view
    }

    /// Output size.
    pub fn size(&self) -> (u32, u32) {
        self.size
    }

    /// The texture the renderer draws into.
    pub fn texture(&self) -> &wgpu::Texture {
        &self.texture
    }

    /// Copies the target back to memory (see [`screenshot::read_texture`]);
    /// a failed readback is logged and gives a black image.
    pub fn read_back(&self) -> image::RgbaImage {
        screenshot::read_texture(&self.device, &self.queue, &self.texture).unwrap_or_else(|error| {
            tracing::error!(%error, "readback failed");
            let (width, height) = self.size;
            image::RgbaImage::new(width, height)
        })
    }

    /// Answers a screenshot request with what the target holds now.
    pub fn answer_screenshot(&self, request: ScreenshotRequest) {
        screenshot::answer_from_texture(request, &self.device, &self.queue, &self.texture);
    }
}

/// Frames submitted but not yet rasterized before the loop waits: without
/// a display to pace it, the loop would otherwise queue frames faster than
/// the (software) GPU draws them, and memory would grow without bound.
const MAX_FRAMES_IN_FLIGHT: usize = 2;

/// Plays `source` headless until it ends (or `max_duration` of virtual
/// time), returning the run's statistics. `observer`, if given, sees every
/// refresh's pixels.
pub fn run_headless(
    source: Box<dyn Source>,
    engine_config: EngineConfig,
    config: &HeadlessConfig,
    observer: Option<FrameObserver<'_>>,
) -> Result<RunStats, PlayerError> {
    let target = OffscreenTarget::new(config.size)?;
    run_headless_on(&target, source, engine_config, config, observer)
}

/// [`run_headless`] on a target the caller made (and keeps: the bench
/// reads the rasterizer threads' CPU time before the device goes away).
pub fn run_headless_on(
    target: &OffscreenTarget,
    source: Box<dyn Source>,
    engine_config: EngineConfig,
    config: &HeadlessConfig,
    mut observer: Option<FrameObserver<'_>>,
) -> Result<RunStats, PlayerError> {
    let text = TextOverlay::new(
        target.device(),
        target.queue(),
        HEADLESS_FORMAT,
        config.font.as_deref(),
    );
    let renderer = Renderer::new(
        target.device(),
        target.queue(),
        HEADLESS_FORMAT,
        config.background,
        text,
    );
    let period = Duration::from_secs_f64(1.0 / config.refresh_hz.clamp(1.0, 1000.0));
    let engine_config = EngineConfig {
        refresh_period: period,
        ..engine_config
    };
    // Virtual time: nobody needs waking, the engine waits on its decoders.
    let mut engine = Engine::new(
        renderer,
        source,
        engine_config,
        Pacing::Virtual,
        Arc::new(|| {}),
    )?;
    if let Some(dir) = &config.snapshot_dir {
        std::fs::create_dir_all(dir).map_err(|e| PlayerError::Write {
            path: dir.clone(),
            reason: e.to_string(),
        })?;
    }
    let mut next_snapshot = Duration::ZERO;
    let mut in_flight = VecDeque::with_capacity(MAX_FRAMES_IN_FLIGHT + 1);
    for index in 0u64.. {
        let clock = period.mul_f64(index as f64);
        if config.max_duration.is_some_and(|max| clock >= max) {
            break;
        }
        let outcome = engine.tick(clock, target.view(), target.size());
        if outcome == TickOutcome::Finished {
            break;
        }
        if let Some(request) = engine.screenshot_request() {
            target.answer_screenshot(request);
        }
        in_flight.extend(engine.renderer().last_submission());
        while in_flight.len() > MAX_FRAMES_IN_FLIGHT {
            let oldest = in_flight.pop_front();
            let _ = target.device().poll(wgpu::PollType::Wait {
                submission_index: oldest,
                timeout: None,
            });
        }
        let snapshot_due = config.snapshot_dir.is_some() && clock >= next_snapshot;
        if snapshot_due || observer.is_some() {
            let image = target.read_back();
            if snapshot_due && let Some(dir) = &config.snapshot_dir {
                write_snapshot(dir, clock, &image)?;
                next_snapshot += config.snapshot_every.max(period);
            }
            if let Some(observer) = observer.as_mut() {
                observer(RenderedFrame {
                    index,
                    clock,
                    image: &image,
                });
            }
        }
    }
    let _ = target.device().poll(wgpu::PollType::wait_indefinitely());
    Ok(engine.finish())
}

/// Writes `snapshot-<ms>.png` (virtual milliseconds, zero-padded so the
/// files sort in time order).
fn write_snapshot(
    dir: &Path,
    clock: Duration,
    image: &image::RgbaImage,
) -> Result<(), PlayerError> {
    let path = dir.join(format!("snapshot-{:08}.png", clock.as_millis()));
    image.save(&path).map_err(|e| PlayerError::Write {
        path: path.clone(),
        reason: e.to_string(),
    })
}
