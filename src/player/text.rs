//! Text on screen, shaped and rasterised by glyphon (cosmic-text): the
//! ticker scrolling along the bottom (any Unicode: Tajik Cyrillic, Arabic,
//! emoji where the font has them) and the full-screen pairing code.

use std::path::{Path, PathBuf};

use glyphon::{
    Attrs, Buffer, Cache, Color, Family, FontSystem, Metrics, Resolution, Shaping, SwashCache,
    TextArea, TextAtlas, TextBounds, TextRenderer, Viewport, Wrap, fontdb,
};

/// Where fonts come from when none is configured: DejaVu Sans is on every
/// Debian/Raspberry Pi OS box (`fonts-dejavu-core`) and covers Cyrillic.
pub const DEFAULT_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// Ticker speed in logical pixels per second, scaled with the output height
/// (this value is for 1080 lines) so it crosses any screen in the same time.
const TICKER_PIXELS_PER_SECOND_AT_1080: f64 = 160.0;

/// What text a frame shows.
#[derive(Debug, Clone, Copy, Default)]
pub struct TextRequest<'a> {
    /// Ticker text scrolling along the bottom edge.
    pub ticker: Option<&'a str>,
    /// Pairing code shown full screen, over everything.
    pub pairing_code: Option<&'a str>,
}

/// A solid rectangle spanning the output's width (the ticker band), in
/// output UV units.
#[derive(Debug, Clone, Copy)]
pub struct Band {
    /// RGBA.
    pub colour: [f32; 4],
    /// Vertical centre, 0 top, 1 bottom.
    pub center_y: f32,
    /// Height as a fraction of the output.
    pub height: f32,
}

struct ShapedText {
    text: String,
    size_px: u32,
    buffer: Buffer,
    width: f32,
}

/// Draws text with glyphon. Fonts load on first use (a second or so), so a
/// player that never shows text never pays for it.
pub struct TextOverlay {
    font_file: Option<PathBuf>,
    fonts: Option<FontSystem>,
    swash: SwashCache,
    viewport: Viewport,
    atlas: TextAtlas,
    renderer: TextRenderer,
    ticker: Option<ShapedText>,
    pairing: Option<(ShapedText, ShapedText)>,
    has_text: bool,
}

impl TextOverlay {
    /// Text for targets of `format`, with glyphs from `font_file` (default:
    /// [`DEFAULT_FONT`] if present, else the system's fonts).
    pub fn new(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        format: wgpu::TextureFormat,
        font_file: Option<&Path>,
    ) -> Self {
        let cache = Cache::new(device);
        let viewport = Viewport::new(device, &cache);
        let mut atlas = TextAtlas::new(device, queue, &cache, format);
        let renderer =
            TextRenderer::new(&mut atlas, device, wgpu::MultisampleState::default(), None);
        TextOverlay {
            font_file: font_file.map(Path::to_owned),
            fonts: None,
            swash: SwashCache::new(),
            viewport,
            atlas,
            renderer,
            ticker: None,
            pairing: None,
            has_text: false,
        }
    }

    fn fonts(&mut self) -> &mut FontSystem {
        let file = self.font_file.clone();
        self.fonts
            .get_or_insert_with(|| load_fonts(file.as_deref()))
    }

    fn shape(&mut self, text: &str, size_px: u32, cached: Option<ShapedText>) -> ShapedText {
        if let Some(cached) = cached
            && cached.text == text
            && cached.size_px == size_px
        {
            return cached;
        }
        let fonts = self.fonts();
        let size = size_px as f32;
        let mut buffer = Buffer::new(fonts, Metrics::new(size, size * 1.25));
        buffer.set_wrap(Wrap::None);
        buffer.set_size(None, None);
        buffer.set_text(
            text,
            &Attrs::new().family(Family::SansSerif),
            Shaping::Advanced,
            None,
        );
        buffer.shape_until_scroll(fonts, false);
        let width = buffer
            .layout_runs()
            .map(|run| run.line_w)
            .fold(0.0, f32::max);
        ShapedText {
            text: text.to_owned(),
            size_px,
            buffer,
            width,
        }
    }

    /// Lays out this frame's text for an output of `size` at `seconds` on
    /// the output clock; returns the ticker band to draw under it.
    pub fn prepare(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        size: (u32, u32),
        request: &TextRequest<'_>,
        seconds: f64,
    ) -> Option<Band> {
        let (width, height) = (size.0 as f32, size.1 as f32);
        self.has_text = false;
        self.viewport.update(
            queue,
            Resolution {
                width: size.0,
                height: size.1,
            },
        );
        let white = Color::rgb(255, 255, 255);

        if let Some(code) = request.pairing_code {
            let big = (size.1 / 5).max(8);
            let small = (size.1 / 20).max(6);
            let cached = self.pairing.take();
            let (cached_code, cached_caption) = match cached {
                Some((a, b)) => (Some(a), Some(b)),
                None => (None, None),
            };
            let code_text = self.shape(code, big, cached_code);
            let caption = self.shape("Pair this screen with the code", small, cached_caption);
            let areas = [
                text_area(
                    &caption,
                    (width - caption.width) / 2.0,
                    height * 0.25,
                    size,
                    white,
                ),
                text_area(
                    &code_text,
                    (width - code_text.width) / 2.0,
                    height * 0.4,
                    size,
                    white,
                ),
            ];
            self.has_text = self.prepare_areas(device, queue, areas);
            self.pairing = Some((code_text, caption));
            // The pairing screen owns the whole output: dark, no ticker.
            return Some(Band {
                colour: [0.05, 0.05, 0.08, 1.0],
                center_y: 0.5,
                height: 1.0,
            });
        }
        self.pairing = None;

        let text = request.ticker?;
        let band_height = (height * 0.08).max(12.0);
        let size_px = (band_height * 0.6) as u32;
        let cached = self.ticker.take();
        let shaped = self.shape(text, size_px.max(6), cached);
        // Scrolls right to left; starts just off the right edge and wraps
        // once the whole text has left on the left.
        let speed = TICKER_PIXELS_PER_SECOND_AT_1080 * f64::from(height) / 1080.0;
        let travel = f64::from(width + shaped.width).max(1.0);
        let offset = (seconds * speed).rem_euclid(travel) as f32;
        let left = width - offset;
        let top = height - band_height + (band_height - size_px as f32 * 1.25) / 2.0;
        let area = text_area(&shaped, left, top, size, white);
        self.has_text = self.prepare_areas(device, queue, [area]);
        self.ticker = Some(shaped);
        Some(Band {
            colour: [0.0, 0.0, 0.0, 0.75],
            center_y: 1.0 - band_height / height / 2.0,
            height: band_height / height,
        })
    }

    fn prepare_areas<'a>(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        areas: impl IntoIterator<Item = TextArea<'a>>,
    ) -> bool {
        let Some(fonts) = self.fonts.as_mut() else {
            return false;
        };
        match self.renderer.prepare(
            device,
            queue,
            fonts,
            &mut self.atlas,
            &self.viewport,
            areas,
            &mut self.swash,
        ) {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(%error, "text not drawn");
                false
            }
        }
    }

    /// Draws what [`TextOverlay::prepare`] laid out.
    pub fn render(&mut self, pass: &mut wgpu::RenderPass<'_>) {
        if self.has_text
            && let Err(error) = self.renderer.render(&self.atlas, &self.viewport, pass)
        {
            tracing::warn!(%error, "text not drawn");
        }
    }

    /// Frees glyphs no longer used.
    pub fn trim(&mut self) {
        self.atlas.trim();
    }
}

fn text_area(
    shaped: &ShapedText,
    left: f32,
    top: f32,
    size: (u32, u32),
    colour: Color,
) -> TextArea<'_> {
    TextArea {
        buffer: &shaped.buffer,
        left,
        top,
        scale: 1.0,
        bounds: TextBounds {
            left: 0,
            top: 0,
            right: size.0 as i32,
            bottom: size.1 as i32,
        },
        default_color: colour,
        custom_glyphs: &[],
    }
}

/// One font file (deterministic output: the same glyphs on every box), or
/// every system font when the file is missing.
fn load_fonts(file: Option<&Path>) -> FontSystem {
    let wanted = file.map(Path::to_owned).or_else(|| {
        let default = PathBuf::from(DEFAULT_FONT);
        default.exists().then_some(default)
    });
    let mut db = fontdb::Database::new();
    if let Some(path) = &wanted
        && let Err(error) = db.load_font_file(path)
    {
        tracing::warn!(path = %path.display(), %error, "font not loaded; using system fonts");
    }
    if db.is_empty() {
        db.load_system_fonts();
    }
    let family = db
        .faces()
        .next()
        .and_then(|face| face.families.first().map(|(name, _)| name.clone()));
    if let Some(family) = family {
        db.set_sans_serif_family(family);
    }
    FontSystem::new_with_locale_and_db("en-US".to_string(), db)
}
