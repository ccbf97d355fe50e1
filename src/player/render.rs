//! The renderer: uploads decoded planes into textures and composes a frame
//! (content layers, crossfade, letterbox, rotation, ticker band, text) into
//! a `&TextureView` it is given. Window and headless outputs both call
//! [`Renderer::render`], so they share every line of drawing code.

use std::num::NonZeroU64;

use bytemuck::{Pod, Zeroable};

use super::frame::{Frame, PlaneLayout};
use super::shaders;
use super::text::{TextOverlay, TextRequest};
use crate::manifest::Fit;

/// Clockwise rotation of the whole picture on the output (portrait screens).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Rotation {
    /// Landscape, as composed.
    #[default]
    R0,
    /// A quarter turn clockwise.
    R90,
    /// Upside down.
    R180,
    /// A quarter turn counter-clockwise.
    R270,
}

impl Rotation {
    /// From degrees (0, 90, 180, 270).
    pub fn from_degrees(degrees: u32) -> Option<Self> {
        match degrees {
            0 => Some(Rotation::R0),
            90 => Some(Rotation::R90),
            180 => Some(Rotation::R180),
            270 => Some(Rotation::R270),
            _ => None,
        }
    }

    /// `uv_row_x` and `uv_row_y` of `shaders/layer.wgsl`: the rows of the
    /// 2×3 matrix taking a point q of the picture's on-screen rectangle
    /// (0..1, y down) to its texture coordinates. Turning the picture
    /// clockwise by 90° puts texture point (u, v) at (1 − v, u) on screen,
    /// so the inverse reads (u, v) = (q.y, 1 − q.x).
    pub fn uv_rows(self) -> [[f32; 4]; 2] {
        match self {
            Rotation::R0 => [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]],
            Rotation::R90 => [[0.0, 1.0, 0.0, 0.0], [-1.0, 0.0, 1.0, 0.0]],
            Rotation::R180 => [[-1.0, 0.0, 1.0, 0.0], [0.0, -1.0, 1.0, 0.0]],
            Rotation::R270 => [[0.0, -1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]],
        }
    }

    /// Whether width and height swap between composition and output.
    pub fn is_quarter_turn(self) -> bool {
        matches!(self, Rotation::R90 | Rotation::R270)
    }
}

/// `Layer` in `shaders/layer.wgsl`, byte for byte.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
struct LayerUniform {
    row_r: [f32; 4],
    row_g: [f32; 4],
    row_b: [f32; 4],
    letterbox: [f32; 4],
    uv_row_x: [f32; 4],
    uv_row_y: [f32; 4],
    quad_center: [f32; 2],
    quad_scale: [f32; 2],
    opacity: f32,
    _pad: [f32; 3],
}

/// A uniform buffer and the bind group that draws one layer.
struct LayerBinding {
    uniform: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
}

/// The textures holding one item's current picture, recreated only when
/// its size or plane layout changes.
pub struct PictureTextures {
    key: Option<(u32, u32, PlaneLayout)>,
    planes: Vec<wgpu::Texture>,
    binding: Option<LayerBinding>,
    colour_rows: [[f32; 4]; 3],
}

impl PictureTextures {
    /// Empty until the first upload.
    pub fn new() -> Self {
        PictureTextures {
            key: None,
            planes: Vec::new(),
            binding: None,
            colour_rows: [
                [1.0, 0.0, 0.0, 0.0],
                [0.0, 1.0, 0.0, 0.0],
                [0.0, 0.0, 1.0, 0.0],
            ],
        }
    }

    /// Picture size in pixels, once something was uploaded.
    pub fn size(&self) -> Option<(u32, u32)> {
        self.key.map(|(w, h, _)| (w, h))
    }
}

impl Default for PictureTextures {
    fn default() -> Self {
        Self::new()
    }
}

/// One content layer of a frame.
pub struct LayerDraw<'a> {
    /// The picture.
    pub picture: &'a PictureTextures,
    /// How it fills the screen.
    pub fit: Fit,
    /// 1.0 opaque; less while crossfading in.
    pub opacity: f32,
}

/// Everything one output frame shows.
pub struct Scene<'a> {
    /// Content layers, bottom first (outgoing before incoming in a crossfade).
    pub layers: &'a [LayerDraw<'a>],
    /// Ticker text and pairing screen.
    pub text: TextRequest<'a>,
}

/// Composes frames with wgpu.
pub struct Renderer {
    device: wgpu::Device,
    queue: wgpu::Queue,
    output_format: wgpu::TextureFormat,
    bind_group_layout: wgpu::BindGroupLayout,
    /// Per [`PlaneLayout::ALL`] entry: `[opaque, blending]`.
    layer_pipelines: [[wgpu::RenderPipeline; 2]; 3],
    /// NV12 and I420 pictures drawn pixel for pixel, opaque.
    exact_pipelines: [wgpu::RenderPipeline; 2],
    solid_pipeline: wgpu::RenderPipeline,
    sampler: wgpu::Sampler,
    placeholder: wgpu::TextureView,
    letterbox: [f32; 4],
    band: LayerBinding,
    /// Composition target when the output is rotated, and its blit layer.
    rotated: Option<(wgpu::Texture, LayerBinding, (u32, u32))>,
    text: TextOverlay,
    last_submission: Option<wgpu::SubmissionIndex>,
}

impl Renderer {
    /// Builds the pipeline for targets of `output_format`. `letterbox` is
    /// the sRGB colour around pictures that do not fill the screen.
    pub fn new(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        output_format: wgpu::TextureFormat,
        letterbox: [u8; 3],
        text: TextOverlay,
    ) -> Self {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("layer.wgsl"),
            source: wgpu::ShaderSource::Wgsl(shaders::LAYER.into()),
        });
        let texture_entry = |binding| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::FRAGMENT,
            ty: wgpu::BindingType::Texture {
                sample_type: wgpu::TextureSampleType::Float { filterable: true },
                view_dimension: wgpu::TextureViewDimension::D2,
                multisampled: false,
            },
            count: None,
        };
        let bind_group_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("layer"),
            entries: &[
                texture_entry(0),
                texture_entry(1),
                texture_entry(2),
                wgpu::BindGroupLayoutEntry {
                    binding: 3,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Sampler(wgpu::SamplerBindingType::Filtering),
                    count: None,
                },
                wgpu::BindGroupLayoutEntry {
                    binding: 4,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: NonZeroU64::new(size_of::<LayerUniform>() as u64),
                    },
                    count: None,
                },
            ],
        });
        let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("layer"),
            bind_group_layouts: &[Some(&bind_group_layout)],
            immediate_size: 0,
        });
        let make_pipeline = |fragment_entry: &str, blend: wgpu::BlendState| {
            device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
                label: Some(fragment_entry),
                layout: Some(&layout),
                vertex: wgpu::VertexState {
                    module: &module,
                    entry_point: Some("vs_main"),
                    compilation_options: Default::default(),
                    buffers: &[],
                },
                primitive: wgpu::PrimitiveState::default(),
                depth_stencil: None,
                multisample: wgpu::MultisampleState::default(),
                fragment: Some(wgpu::FragmentState {
                    module: &module,
                    entry_point: Some(fragment_entry),
                    compilation_options: Default::default(),
                    targets: &[Some(wgpu::ColorTargetState {
                        format: output_format,
                        blend: Some(blend),
                        write_mask: wgpu::ColorWrites::ALL,
                    })],
                }),
                multiview_mask: None,
                cache: None,
            })
        };
        // Opaque layers replace what is below without reading it (on a
        // software rasterizer, blending a 1080p frame costs milliseconds);
        // translucent ones (crossfade, ticker band) mix.
        // One pipeline per plane layout (no uniform-steered branch, and no
        // sampling of planes a layout lacks), opaque and blending.
        let layer_pipelines = PlaneLayout::ALL.map(|layout| {
            [
                make_pipeline(layout.fragment_entry(), wgpu::BlendState::REPLACE),
                make_pipeline(layout.fragment_entry(), wgpu::BlendState::ALPHA_BLENDING),
            ]
        });
        let exact_pipelines = [
            make_pipeline("fs_nv12_exact", wgpu::BlendState::REPLACE),
            make_pipeline("fs_i420_exact", wgpu::BlendState::REPLACE),
        ];
        let solid_pipeline = make_pipeline("fs_solid", wgpu::BlendState::ALPHA_BLENDING);
        let sampler = device.create_sampler(&wgpu::SamplerDescriptor {
            label: Some("planes"),
            address_mode_u: wgpu::AddressMode::ClampToEdge,
            address_mode_v: wgpu::AddressMode::ClampToEdge,
            mag_filter: wgpu::FilterMode::Linear,
            min_filter: wgpu::FilterMode::Linear,
            ..Default::default()
        });
        let placeholder = device
            .create_texture(&wgpu::TextureDescriptor {
                label: Some("unused plane"),
                size: wgpu::Extent3d {
                    width: 1,
                    height: 1,
                    depth_or_array_layers: 1,
                },
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format: wgpu::TextureFormat::R8Unorm,
                usage: wgpu::TextureUsages::TEXTURE_BINDING,
                view_formats: &[],
            })
            .create_view(&Default::default());
        let letterbox = [
            f32::from(letterbox[0]) / 255.0,
            f32::from(letterbox[1]) / 255.0,
            f32::from(letterbox[2]) / 255.0,
            1.0,
        ];
        let band = make_binding(
            device,
            &bind_group_layout,
            &sampler,
            "ticker band",
            [&placeholder, &placeholder, &placeholder],
        );
        Renderer {
            device: device.clone(),
            queue: queue.clone(),
            output_format,
            bind_group_layout,
            layer_pipelines,
            exact_pipelines,
            solid_pipeline,
            sampler,
            placeholder,
            letterbox,
            band,
            rotated: None,
            text,
            last_submission: None,
        }
    }

    /// The pipeline for a layer; `exact`: the picture has the target's
    /// size and is drawn unrotated, pixel for pixel.
    fn picture_pipeline(
        &self,
        layout: PlaneLayout,
        opacity: f32,
        exact: bool,
    ) -> &wgpu::RenderPipeline {
        match layout {
            PlaneLayout::Nv12 if exact && opacity >= 1.0 => &self.exact_pipelines[0],
            PlaneLayout::I420 if exact && opacity >= 1.0 => &self.exact_pipelines[1],
            _ => self.layer_pipeline(layout, opacity),
        }
    }

    fn layer_pipeline(&self, layout: PlaneLayout, opacity: f32) -> &wgpu::RenderPipeline {
        let index = PlaneLayout::ALL
            .iter()
            .position(|l| *l == layout)
            .unwrap_or(0);
        &self.layer_pipelines[index][usize::from(opacity < 1.0)]
    }

    /// The texture format this renderer draws into.
    pub fn output_format(&self) -> wgpu::TextureFormat {
        self.output_format
    }

    /// The submission of the last rendered frame: outputs that are not
    /// paced by a display wait on it to bound the frames in flight.
    pub fn last_submission(&self) -> Option<wgpu::SubmissionIndex> {
        self.last_submission.clone()
    }

    /// The device it renders with.
    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    /// The queue it submits to.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    fn binding(&self, label: &str, views: [&wgpu::TextureView; 3]) -> LayerBinding {
        make_binding(
            &self.device,
            &self.bind_group_layout,
            &self.sampler,
            label,
            views,
        )
    }

    /// Copies a picture's planes into `target`'s textures (recreating them
    /// only if the size or layout changed). The planes go up as decoded,
    /// with their row stride; colour conversion happens in the shader.
    pub fn upload(&self, target: &mut PictureTextures, frame: &Frame) {
        let key = (frame.width, frame.height, frame.layout);
        if target.key != Some(key) {
            self.recreate_planes(target, key);
        }
        target.colour_rows = match frame.layout {
            PlaneLayout::Rgba => PictureTextures::new().colour_rows,
            _ => frame.colorimetry.yuv_to_rgb_rows(),
        };
        for (index, texture) in target.planes.iter().enumerate() {
            let Some((bytes, stride, rows)) = frame.plane(index) else {
                tracing::warn!(plane = index, "decoded picture lacks a plane");
                continue;
            };
            let size = texture.size();
            self.queue.write_texture(
                wgpu::TexelCopyTextureInfo {
                    texture,
                    mip_level: 0,
                    origin: wgpu::Origin3d::ZERO,
                    aspect: wgpu::TextureAspect::All,
                },
                bytes,
                wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(stride),
                    rows_per_image: Some(rows),
                },
                wgpu::Extent3d {
                    width: size.width,
                    height: size.height.min(rows),
                    depth_or_array_layers: 1,
                },
            );
        }
    }

    fn recreate_planes(&self, target: &mut PictureTextures, key: (u32, u32, PlaneLayout)) {
        let (width, height, layout) = key;
        let (chroma_w, chroma_h) = (width.div_ceil(2), height.div_ceil(2));
        let formats: &[(wgpu::TextureFormat, u32, u32)] = match layout {
            PlaneLayout::Nv12 => &[
                (wgpu::TextureFormat::R8Unorm, width, height),
                (wgpu::TextureFormat::Rg8Unorm, chroma_w, chroma_h),
            ],
            PlaneLayout::I420 => &[
                (wgpu::TextureFormat::R8Unorm, width, height),
                (wgpu::TextureFormat::R8Unorm, chroma_w, chroma_h),
                (wgpu::TextureFormat::R8Unorm, chroma_w, chroma_h),
            ],
            PlaneLayout::Rgba => &[(wgpu::TextureFormat::Rgba8Unorm, width, height)],
        };
        target.planes = formats
            .iter()
            .map(|&(format, w, h)| {
                self.device.create_texture(&wgpu::TextureDescriptor {
                    label: Some("picture plane"),
                    size: wgpu::Extent3d {
                        width: w.max(1),
                        height: h.max(1),
                        depth_or_array_layers: 1,
                    },
                    mip_level_count: 1,
                    sample_count: 1,
                    dimension: wgpu::TextureDimension::D2,
                    format,
                    usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
                    view_formats: &[],
                })
            })
            .collect();
        let views: Vec<wgpu::TextureView> = target
            .planes
            .iter()
            .map(|t| t.create_view(&Default::default()))
            .collect();
        let view = |i: usize| views.get(i).unwrap_or(&self.placeholder);
        target.binding = Some(self.binding("picture", [view(0), view(1), view(2)]));
        target.key = Some(key);
    }

    /// Draws `scene` into `view` (an output of `output_size` pixels),
    /// rotated by `rotation`, and submits the work. `seconds` is the
    /// output's clock, which scrolls the ticker.
    pub fn render(
        &mut self,
        view: &wgpu::TextureView,
        output_size: (u32, u32),
        rotation: Rotation,
        scene: &Scene<'_>,
        seconds: f64,
    ) {
        let logical = if rotation.is_quarter_turn() {
            (output_size.1, output_size.0)
        } else {
            output_size
        };
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("frame"),
            });

        if rotation == Rotation::R0 {
            self.rotated = None;
            self.compose(&mut encoder, view, logical, scene, seconds);
        } else {
            self.ensure_rotation_target(logical);
            let Some((texture, blit, _)) = &self.rotated else {
                return;
            };
            let composed = texture.create_view(&Default::default());
            self.queue.write_buffer(
                &blit.uniform,
                0,
                bytemuck::bytes_of(&LayerUniform {
                    row_r: [1.0, 0.0, 0.0, 0.0],
                    row_g: [0.0, 1.0, 0.0, 0.0],
                    row_b: [0.0, 0.0, 1.0, 0.0],
                    letterbox: self.letterbox,
                    uv_row_x: rotation.uv_rows()[0],
                    uv_row_y: rotation.uv_rows()[1],
                    quad_center: [0.5, 0.5],
                    quad_scale: [1.0, 1.0],
                    opacity: 1.0,
                    _pad: [0.0; 3],
                }),
            );
            self.compose(&mut encoder, &composed, logical, scene, seconds);
            let Some((_, blit, _)) = &self.rotated else {
                return;
            };
            // The blit covers every pixel: nothing to clear.
            let mut pass = begin_pass(&mut encoder, view, None, "rotate");
            pass.set_pipeline(self.layer_pipeline(PlaneLayout::Rgba, 1.0));
            pass.set_bind_group(0, &blit.bind_group, &[]);
            pass.draw(0..3, 0..1);
        }
        self.last_submission = Some(self.queue.submit(Some(encoder.finish())));
        self.text.trim();
    }

    fn ensure_rotation_target(&mut self, logical: (u32, u32)) {
        if self
            .rotated
            .as_ref()
            .is_some_and(|(_, _, size)| *size == logical)
        {
            return;
        }
        let texture = self.device.create_texture(&wgpu::TextureDescriptor {
            label: Some("composition before rotation"),
            size: wgpu::Extent3d {
                width: logical.0.max(1),
                height: logical.1.max(1),
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: self.output_format,
            usage: wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::TEXTURE_BINDING,
            view_formats: &[],
        });
        let view = texture.create_view(&Default::default());
        let blit = self.binding("rotate", [&view, &self.placeholder, &self.placeholder]);
        self.rotated = Some((texture, blit, logical));
    }

    fn compose(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        view: &wgpu::TextureView,
        size: (u32, u32),
        scene: &Scene<'_>,
        seconds: f64,
    ) {
        for layer in scene.layers {
            let (Some(binding), Some((w, h))) = (&layer.picture.binding, layer.picture.size())
            else {
                continue;
            };
            let [row_r, row_g, row_b] = layer.picture.colour_rows;

            self.queue.write_buffer(
                &binding.uniform,
                0,
                bytemuck::bytes_of(&LayerUniform {
                    row_r,
                    row_g,
                    row_b,
                    letterbox: self.letterbox,
                    uv_row_x: Rotation::R0.uv_rows()[0],
                    uv_row_y: Rotation::R0.uv_rows()[1],
                    quad_center: [0.5, 0.5],
                    quad_scale: fit_scale((w, h), size, layer.fit),
                    opacity: layer.opacity.clamp(0.0, 1.0),
                    _pad: [0.0; 3],
                }),
            );
        }
        let band = self
            .text
            .prepare(&self.device, &self.queue, size, &scene.text, seconds);
        if let Some(band) = band {
            self.queue.write_buffer(
                &self.band.uniform,
                0,
                bytemuck::bytes_of(&LayerUniform {
                    row_r: [0.0; 4],
                    row_g: [0.0; 4],
                    row_b: [0.0; 4],
                    letterbox: band.colour,
                    uv_row_x: [0.0; 4],
                    uv_row_y: [0.0; 4],
                    quad_center: [0.5, band.center_y],
                    quad_scale: [1.0, 1.0 / band.height],
                    opacity: 1.0,
                    _pad: [0.0; 3],
                }),
            );
        }
        let drawable: Vec<(&LayerBinding, PlaneLayout, f32, bool)> = scene
            .layers
            .iter()
            .filter_map(|layer| {
                let (width, height, layout) = layer.picture.key?;
                // Rotation happens after composition, so a picture of the
                // composition's size lands pixel for pixel whatever its fit.
                let exact = (width, height) == size;
                Some((
                    layer.picture.binding.as_ref()?,
                    layout,
                    layer.opacity,
                    exact,
                ))
            })
            .collect();
        // A full-screen opaque first layer (letterbox included) writes every
        // pixel, so the target needs no clear.
        let covered = drawable
            .first()
            .is_some_and(|(_, _, opacity, _)| *opacity >= 1.0);
        let clear = (!covered).then_some(self.letterbox);
        let mut pass = begin_pass(encoder, view, clear, "compose");
        for (binding, layout, opacity, exact) in drawable {
            pass.set_pipeline(self.picture_pipeline(layout, opacity, exact));
            pass.set_bind_group(0, &binding.bind_group, &[]);
            pass.draw(0..3, 0..1);
        }
        if band.is_some() {
            pass.set_pipeline(&self.solid_pipeline);
            pass.set_bind_group(0, &self.band.bind_group, &[]);
            pass.draw(0..3, 0..1);
        }
        self.text.render(&mut pass);
    }
}

fn make_binding(
    device: &wgpu::Device,
    layout: &wgpu::BindGroupLayout,
    sampler: &wgpu::Sampler,
    label: &str,
    views: [&wgpu::TextureView; 3],
) -> LayerBinding {
    let uniform = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: size_of::<LayerUniform>() as u64,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let texture = |binding, view| wgpu::BindGroupEntry {
        binding,
        resource: wgpu::BindingResource::TextureView(view),
    };
    let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(label),
        layout,
        entries: &[
            texture(0, views[0]),
            texture(1, views[1]),
            texture(2, views[2]),
            wgpu::BindGroupEntry {
                binding: 3,
                resource: wgpu::BindingResource::Sampler(sampler),
            },
            wgpu::BindGroupEntry {
                binding: 4,
                resource: uniform.as_entire_binding(),
            },
        ],
    });
    LayerBinding {
        uniform,
        bind_group,
    }
}

/// A pass over `view`, cleared to `clear` or (`None`) loading what is
/// there because the first draw overwrites every pixel anyway.
fn begin_pass<'e>(
    encoder: &'e mut wgpu::CommandEncoder,
    view: &wgpu::TextureView,
    clear: Option<[f32; 4]>,
    label: &str,
) -> wgpu::RenderPass<'e> {
    let load = match clear {
        Some(clear) => wgpu::LoadOp::Clear(wgpu::Color {
            r: f64::from(clear[0]),
            g: f64::from(clear[1]),
            b: f64::from(clear[2]),
            a: 1.0,
        }),
        None => wgpu::LoadOp::Load,
    };
    encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
        label: Some(label),
        color_attachments: &[Some(wgpu::RenderPassColorAttachment {
            view,
            depth_slice: None,
            resolve_target: None,
            ops: wgpu::Operations {
                load,
                store: wgpu::StoreOp::Store,
            },
        })],
        depth_stencil_attachment: None,
        timestamp_writes: None,
        occlusion_query_set: None,
        multiview_mask: None,
    })
}

/// Output size divided by the picture's size on the output, per axis:
/// above 1 on an axis with letterbox (contain), below 1 where cropped (cover).
pub fn fit_scale(picture: (u32, u32), output: (u32, u32), fit: Fit) -> [f32; 2] {
    let (pw, ph) = (picture.0.max(1) as f32, picture.1.max(1) as f32);
    let (ow, oh) = (output.0.max(1) as f32, output.1.max(1) as f32);
    let scale = match fit {
        Fit::Contain => (ow / pw).min(oh / ph),
        Fit::Cover => (ow / pw).max(oh / ph),
    };
    [ow / (pw * scale), oh / (ph * scale)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_matches_the_wgsl_struct_size() {
        // WGSL `Layer`: six vec4, two vec2, four 32-bit scalars.
        assert_eq!(size_of::<LayerUniform>(), 128);
    }

    #[test]
    fn contain_letterboxes_and_cover_crops() {
        // 4:3 picture on a 16:9 output.
        let contain = fit_scale((640, 480), (1920, 1080), Fit::Contain);
        assert!((contain[0] - 1.3333).abs() < 1e-3 && (contain[1] - 1.0).abs() < 1e-6);
        let cover = fit_scale((640, 480), (1920, 1080), Fit::Cover);
        assert!((cover[0] - 1.0).abs() < 1e-6 && (cover[1] - 0.75).abs() < 1e-3);
    }
}
