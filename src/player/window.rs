//! Window output: a winit fullscreen borderless window (or, with a size
//! set, a borderless window of that size) with the cursor hidden,
//! following resizes, presenting with Fifo (vsync), on the graphics
//! backend the config names. The engine
//! runs on the winit thread and never waits there: decoders deliver
//! pictures through channels and wake the loop through an
//! `EventLoopProxy`; each vsync-paced redraw takes what is ready.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use winit::application::ApplicationHandler;
use winit::dpi::{PhysicalPosition, PhysicalSize};
use winit::event::{ElementState, KeyEvent, WindowEvent};
use winit::event_loop::{ActiveEventLoop, EventLoop, EventLoopProxy};
use winit::keyboard::{Key, NamedKey};
use winit::window::{Fullscreen, Window, WindowId};

use super::engine::{Engine, EngineConfig, Pacing, RunStats, TickOutcome};
use super::render::Renderer;
use super::screenshot;
use super::text::TextOverlay;
use super::{PlayerError, Source, open_device};

/// Window output settings.
#[derive(Debug, Clone)]
pub struct WindowConfig {
    /// Font file for text (default: DejaVu Sans, else system fonts).
    pub font: Option<PathBuf>,
    /// Letterbox / background colour (sRGB).
    pub background: [u8; 3],
    /// Stop after this long.
    pub max_duration: Option<Duration>,
    /// `None`: fullscreen at the display's own size. A size: a borderless
    /// window of that many pixels at the top-left corner instead (a panel
    /// driven below its native mode, a preview on a desktop).
    pub size: Option<(u32, u32)>,
    /// The graphics APIs wgpu may use (`output.backend` of the player
    /// config: Vulkan or GL).
    pub backends: wgpu::Backends,
}

impl Default for WindowConfig {
    fn default() -> Self {
        Self {
            font: None,
            background: [0, 0, 0],
            max_duration: None,
            size: None,
            backends: wgpu::Backends::all(),
        }
    }
}

/// Sent to the event loop from decoder threads.
#[derive(Debug, Clone, Copy)]
enum Wake {
    PictureReady,
}

struct Output {
    engine: Engine,
    surface: wgpu::Surface<'static>,
    surface_config: wgpu::SurfaceConfiguration,
    instance: wgpu::Instance,
    // Dropped after the surface (field order): wgpu's surface borrows it.
    window: Arc<Window>,
}

struct App {
    source: Option<Box<dyn Source>>,
    engine_config: EngineConfig,
    config: WindowConfig,
    proxy: Arc<Mutex<EventLoopProxy<Wake>>>,
    output: Option<Output>,
    started: Instant,
    error: Option<PlayerError>,
    stats: Option<RunStats>,
}

/// Plays `source` in a fullscreen window until it ends (or Escape),
/// returning the run's statistics.
pub fn run_window(
    source: Box<dyn Source>,
    engine_config: EngineConfig,
    config: WindowConfig,
) -> Result<RunStats, PlayerError> {
    let event_loop = EventLoop::<Wake>::with_user_event()
        .build()
        .map_err(|e| PlayerError::Window(e.to_string()))?;
    let proxy = Arc::new(Mutex::new(event_loop.create_proxy()));
    let mut app = App {
        source: Some(source),
        engine_config,
        config,
        proxy,
        output: None,
        started: Instant::now(),
        error: None,
        stats: None,
    };
    event_loop
        .run_app(&mut app)
        .map_err(|e| PlayerError::Window(e.to_string()))?;
    if let Some(error) = app.error {
        return Err(error);
    }
    if let Some(output) = app.output.take() {
        app.stats = Some(output.engine.finish());
    }
    Ok(app.stats.unwrap_or_default())
}

impl App {
    fn open(&mut self, event_loop: &ActiveEventLoop) -> Result<Output, PlayerError> {
        let attributes = Window::default_attributes()
            .with_title("Ekran")
            .with_decorations(false);
        let attributes = match self.config.size {
            None => attributes.with_fullscreen(Some(Fullscreen::Borderless(None))),
            Some((width, height)) => attributes
                .with_inner_size(PhysicalSize::new(width, height))
                .with_resizable(false)
                .with_position(PhysicalPosition::new(0, 0)),
        };
        let window = Arc::new(
            event_loop
                .create_window(attributes)
                .map_err(|e| PlayerError::Window(e.to_string()))?,
        );
        window.set_cursor_visible(false);
        let mut descriptor = wgpu::InstanceDescriptor::new_with_display_handle(Box::new(
            event_loop.owned_display_handle(),
        ));
        descriptor.backends = self.config.backends;
        let instance = wgpu::Instance::new(descriptor);
        let surface = instance
            .create_surface(window.clone())
            .map_err(|e| PlayerError::Window(e.to_string()))?;
        let (adapter, device, queue) = pollster::block_on(open_device(&instance, Some(&surface)))?;
        let capabilities = surface.get_capabilities(&adapter);
        // A plain (non-sRGB) format: the shader writes display-referred
        // values, exactly as the headless PNGs hold them.
        let format = capabilities
            .formats
            .iter()
            .copied()
            .find(|f| !f.is_srgb())
            .or_else(|| capabilities.formats.first().copied())
            .ok_or_else(|| PlayerError::Window("the surface supports no format".into()))?;
        let size = window.inner_size();
        // Copyable frames let a screenshot read back exactly what is shown;
        // a surface that cannot be copied still plays, without screenshots.
        let copy = capabilities.usages & wgpu::TextureUsages::COPY_SRC;
        let surface_config = wgpu::SurfaceConfiguration {
            usage: wgpu::TextureUsages::RENDER_ATTACHMENT | copy,
            format,
            width: size.width.max(1),
            height: size.height.max(1),
            // Fifo is vsync, and the one mode every surface supports.
            present_mode: wgpu::PresentMode::Fifo,
            alpha_mode: capabilities
                .alpha_modes
                .first()
                .copied()
                .unwrap_or(wgpu::CompositeAlphaMode::Opaque),
            view_formats: vec![],
            desired_maximum_frame_latency: 2,
            color_space: wgpu::SurfaceColorSpace::Auto,
        };
        surface.configure(&device, &surface_config);

        let refresh_period = window
            .current_monitor()
            .and_then(|m| m.refresh_rate_millihertz())
            .filter(|&mhz| mhz > 0)
            .map(|mhz| Duration::from_secs_f64(1000.0 / f64::from(mhz)))
            .unwrap_or(self.engine_config.refresh_period);
        tracing::info!(
            width = size.width,
            height = size.height,
            ?format,
            ?refresh_period,
            "window open"
        );
        let text = TextOverlay::new(&device, &queue, format, self.config.font.as_deref());
        let renderer = Renderer::new(&device, &queue, format, self.config.background, text);
        let proxy = self.proxy.clone();
        let waker = Arc::new(move || {
            if let Ok(proxy) = proxy.lock() {
                let _ = proxy.send_event(Wake::PictureReady);
            }
        });
        let source = self
            .source
            .take()
            .ok_or_else(|| PlayerError::Window("the window was opened twice".into()))?;
        let engine_config = EngineConfig {
            refresh_period,
            ..self.engine_config.clone()
        };
        let engine = Engine::new(renderer, source, engine_config, Pacing::RealTime, waker)?;
        self.started = Instant::now();
        Ok(Output {
            engine,
            surface,
            surface_config,
            instance,
            window,
        })
    }

    fn redraw(&mut self, event_loop: &ActiveEventLoop) {
        let Some(output) = self.output.as_mut() else {
            return;
        };
        let frame = match output.surface.get_current_texture() {
            wgpu::CurrentSurfaceTexture::Success(frame) => frame,
            wgpu::CurrentSurfaceTexture::Suboptimal(frame) => frame,
            wgpu::CurrentSurfaceTexture::Timeout | wgpu::CurrentSurfaceTexture::Occluded => {
                output.window.request_redraw();
                return;
            }
            wgpu::CurrentSurfaceTexture::Outdated => {
                output
                    .surface
                    .configure(output.engine.renderer().device(), &output.surface_config);
                output.window.request_redraw();
                return;
            }
            wgpu::CurrentSurfaceTexture::Lost => {
                match output.instance.create_surface(output.window.clone()) {
                    Ok(surface) => output.surface = surface,
                    Err(error) => tracing::error!(%error, "surface lost and not recreated"),
                }
                output
                    .surface
                    .configure(output.engine.renderer().device(), &output.surface_config);
                output.window.request_redraw();
                return;
            }
            other => {
                tracing::error!(?other, "cannot get a surface texture");
                output.window.request_redraw();
                return;
            }
        };
        let view = frame.texture.create_view(&Default::default());
        let size = (output.surface_config.width, output.surface_config.height);
        let now = self.started.elapsed();
        let outcome = output.engine.tick(now, &view, size);
        if let Some(request) = output.engine.screenshot_request() {
            let renderer = output.engine.renderer();
            screenshot::answer_from_texture(
                request,
                renderer.device(),
                renderer.queue(),
                &frame.texture,
            );
        }
        output.engine.renderer().queue().present(frame);
        let out_of_time = self.config.max_duration.is_some_and(|max| now >= max);
        if outcome == TickOutcome::Finished || out_of_time {
            event_loop.exit();
        } else {
            // Fifo blocks in get_current_texture until the next vsync, which
            // paces this loop at the display's refresh rate.
            output.window.request_redraw();
        }
    }
}

impl ApplicationHandler<Wake> for App {
    fn resumed(&mut self, event_loop: &ActiveEventLoop) {
        if self.output.is_some() {
            return;
        }
        match self.open(event_loop) {
            Ok(output) => {
                output.window.request_redraw();
                self.output = Some(output);
            }
            Err(error) => {
                self.error = Some(error);
                event_loop.exit();
            }
        }
    }

    fn user_event(&mut self, _: &ActiveEventLoop, _: Wake) {
        if let Some(output) = &self.output {
            output.window.request_redraw();
        }
    }

    fn window_event(&mut self, event_loop: &ActiveEventLoop, _: WindowId, event: WindowEvent) {
        match event {
            WindowEvent::CloseRequested => event_loop.exit(),
            WindowEvent::KeyboardInput {
                event:
                    KeyEvent {
                        logical_key: Key::Named(NamedKey::Escape),
                        state: ElementState::Pressed,
                        ..
                    },
                ..
            } => event_loop.exit(),
            WindowEvent::Resized(size) => {
                if let Some(output) = self.output.as_mut() {
                    output.surface_config.width = size.width.max(1);
                    output.surface_config.height = size.height.max(1);
                    output
                        .surface
                        .configure(output.engine.renderer().device(), &output.surface_config);
                    output.window.request_redraw();
                }
            }
            WindowEvent::RedrawRequested => self.redraw(event_loop),
            _ => {}
        }
    }
}
