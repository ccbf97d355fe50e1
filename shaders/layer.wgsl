// One full-screen layer of the composition: a decoded video frame (NV12:
// `fs_nv12`, I420: `fs_i420`, converted to RGB here) or an RGBA still
// (`fs_rgba`), placed by fit/rotation with a letterbox colour around it;
// or a solid rectangle such as the ticker band (`fs_solid`). The entry
// point is chosen per plane layout in `PlaneLayout::fragment_entry`.
//
// The `Layer` struct must match `LayerUniform` in src/player/render.rs
// byte for byte; the `uv_row_*` pair is `Rotation::uv_rows` there.
//
// No branch depends on a uniform: lavapipe specialises (and recompiles)
// shaders on uniform values that steer control flow, which cost a
// compilation and ~6 target-sized allocations per frame. The layout is
// therefore an entry point and the rotation a matrix.

struct Layer {
    // Rows of the YUV -> RGB matrix; each is dotted with vec4(y, u, v, 1),
    // so range expansion and chroma offsets live in the fourth column.
    row_r: vec4<f32>,
    row_g: vec4<f32>,
    row_b: vec4<f32>,
    // Letterbox colour for content layers, fill colour for solid layers.
    letterbox: vec4<f32>,
    // Rows of the 2x3 matrix taking a point of the picture's rectangle on
    // screen (0..1, y down) to the picture's texture coordinates: this is
    // where the clockwise rotation lives.
    uv_row_x: vec4<f32>,
    uv_row_y: vec4<f32>,
    // Centre of the picture's rectangle in output UV space (0..1, y down).
    quad_center: vec2<f32>,
    // Output size divided by the picture's size on the output, per axis.
    quad_scale: vec2<f32>,
    opacity: f32,
    _pad0: f32,
    _pad1: f32,
    _pad2: f32,
}

@group(0) @binding(0) var plane0: texture_2d<f32>;
@group(0) @binding(1) var plane1: texture_2d<f32>;
@group(0) @binding(2) var plane2: texture_2d<f32>;
@group(0) @binding(3) var plane_sampler: sampler;
@group(0) @binding(4) var<uniform> layer: Layer;

struct VertexOut {
    @builtin(position) position: vec4<f32>,
    // Output UV: (0,0) top-left, (1,1) bottom-right.
    @location(0) screen_uv: vec2<f32>,
}

// One triangle covering the whole target; no vertex buffer.
@vertex
fn vs_main(@builtin(vertex_index) index: u32) -> VertexOut {
    let x = f32((index << 1u) & 2u);
    let y = f32(index & 2u);
    var out: VertexOut;
    out.position = vec4<f32>(x * 2.0 - 1.0, 1.0 - y * 2.0, 0.0, 1.0);
    out.screen_uv = vec2<f32>(x, y);
    return out;
}

// The point of the picture's rectangle under this fragment (inside when
// every coordinate is within 0..1).
fn picture_point(screen_uv: vec2<f32>) -> vec2<f32> {
    return (screen_uv - layer.quad_center) * layer.quad_scale + vec2<f32>(0.5);
}

fn is_inside(q: vec2<f32>) -> bool {
    return all(q >= vec2<f32>(0.0)) && all(q <= vec2<f32>(1.0));
}

fn yuv_to_rgb(yuv: vec3<f32>) -> vec3<f32> {
    let v = vec4<f32>(yuv, 1.0);
    return clamp(vec3<f32>(dot(layer.row_r, v), dot(layer.row_g, v), dot(layer.row_b, v)), vec3<f32>(0.0), vec3<f32>(1.0));
}

// Texture coordinates of the picture under this fragment, and whether
// the fragment is on the picture (else letterbox).
struct Placement {
    uv: vec2<f32>,
    inside: bool,
}

fn place(screen_uv: vec2<f32>) -> Placement {
    let q = picture_point(screen_uv);
    let p = vec3<f32>(clamp(q, vec2<f32>(0.0), vec2<f32>(1.0)), 1.0);
    return Placement(vec2<f32>(dot(layer.uv_row_x.xyz, p), dot(layer.uv_row_y.xyz, p)), is_inside(q));
}

fn finish(rgb: vec3<f32>, inside: bool) -> vec4<f32> {
    return vec4<f32>(select(layer.letterbox.rgb, rgb, inside), layer.opacity);
}

@fragment
fn fs_nv12(in: VertexOut) -> @location(0) vec4<f32> {
    let at = place(in.screen_uv);
    let y = textureSample(plane0, plane_sampler, at.uv).r;
    let uv = textureSample(plane1, plane_sampler, at.uv).rg;
    return finish(yuv_to_rgb(vec3<f32>(y, uv)), at.inside);
}

@fragment
fn fs_i420(in: VertexOut) -> @location(0) vec4<f32> {
    let at = place(in.screen_uv);
    let y = textureSample(plane0, plane_sampler, at.uv).r;
    let u = textureSample(plane1, plane_sampler, at.uv).r;
    let v = textureSample(plane2, plane_sampler, at.uv).r;
    return finish(yuv_to_rgb(vec3<f32>(y, u, v)), at.inside);
}

// The same for a picture drawn pixel for pixel: it has the target's size,
// no rotation (that comes after composition) and is opaque, so it covers
// every pixel (no letterbox) and its texture coordinates are the screen's.
// Luma is read texel for texel at the fragment's own pixel, which is what a
// bilinear sample at texel centres gives, without the placement arithmetic
// and filtering a software rasterizer pays for on every pixel; chroma (half
// size) is still interpolated. Chosen in `Renderer::picture_pipeline`.
@fragment
fn fs_nv12_exact(in: VertexOut) -> @location(0) vec4<f32> {
    let y = textureLoad(plane0, vec2<i32>(in.position.xy), 0).r;
    let uv = textureSample(plane1, plane_sampler, in.screen_uv).rg;
    return vec4<f32>(yuv_to_rgb(vec3<f32>(y, uv)), layer.opacity);
}

@fragment
fn fs_i420_exact(in: VertexOut) -> @location(0) vec4<f32> {
    let y = textureLoad(plane0, vec2<i32>(in.position.xy), 0).r;
    let u = textureSample(plane1, plane_sampler, in.screen_uv).r;
    let v = textureSample(plane2, plane_sampler, in.screen_uv).r;
    return vec4<f32>(yuv_to_rgb(vec3<f32>(y, u, v)), layer.opacity);
}

@fragment
fn fs_rgba(in: VertexOut) -> @location(0) vec4<f32> {
    let at = place(in.screen_uv);
    return finish(textureSample(plane0, plane_sampler, at.uv).rgb, at.inside);
}

@fragment
fn fs_solid(in: VertexOut) -> @location(0) vec4<f32> {
    if !is_inside(picture_point(in.screen_uv)) {
        discard;
    }
    return vec4<f32>(layer.letterbox.rgb, layer.letterbox.a * layer.opacity);
}
