// One full-screen layer of the composition: a decoded video frame (NV12 or
// I420 planes, converted to RGB here), an RGBA still, or a solid rectangle,
// placed by fit/rotation with a letterbox colour around it.
//
// The `Layer` struct must match `LayerUniform` in src/player/render.rs
// byte for byte; the `LAYOUT_*` and `ROTATION_*` constants match
// `PlaneLayout::shader_id` and `Rotation::shader_id` there.

const LAYOUT_NV12: u32 = 0u;
const LAYOUT_I420: u32 = 1u;
const LAYOUT_RGBA: u32 = 2u;
const LAYOUT_SOLID: u32 = 3u;

const ROTATION_0: u32 = 0u;
const ROTATION_90: u32 = 1u;
const ROTATION_180: u32 = 2u;
const ROTATION_270: u32 = 3u;

struct Layer {
    // Rows of the YUV -> RGB matrix; each is dotted with vec4(y, u, v, 1),
    // so range expansion and chroma offsets live in the fourth column.
    row_r: vec4<f32>,
    row_g: vec4<f32>,
    row_b: vec4<f32>,
    // Letterbox colour for content layers, fill colour for solid layers.
    letterbox: vec4<f32>,
    // Centre of the picture's rectangle in output UV space (0..1, y down).
    quad_center: vec2<f32>,
    // Output size divided by the picture's size on the output, per axis.
    quad_scale: vec2<f32>,
    opacity: f32,
    plane_layout: u32,
    rotation: u32,
    _pad: u32,
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

// Maps a point of the (rotated) picture rectangle back to the picture's
// own texture coordinates. Rotation is clockwise on screen.
fn unrotate(q: vec2<f32>, rotation: u32) -> vec2<f32> {
    switch rotation {
        case ROTATION_90: { return vec2<f32>(q.y, 1.0 - q.x); }
        case ROTATION_180: { return vec2<f32>(1.0 - q.x, 1.0 - q.y); }
        case ROTATION_270: { return vec2<f32>(1.0 - q.y, q.x); }
        default: { return q; }
    }
}

fn yuv_to_rgb(yuv: vec3<f32>) -> vec3<f32> {
    let v = vec4<f32>(yuv, 1.0);
    return clamp(vec3<f32>(dot(layer.row_r, v), dot(layer.row_g, v), dot(layer.row_b, v)), vec3<f32>(0.0), vec3<f32>(1.0));
}

@fragment
fn fs_main(in: VertexOut) -> @location(0) vec4<f32> {
    let q = (in.screen_uv - layer.quad_center) * layer.quad_scale + vec2<f32>(0.5);
    let inside = all(q >= vec2<f32>(0.0)) && all(q <= vec2<f32>(1.0));
    if layer.plane_layout == LAYOUT_SOLID {
        if !inside {
            discard;
        }
        return vec4<f32>(layer.letterbox.rgb, layer.letterbox.a * layer.opacity);
    }
    // Sample before branching on `inside`: texture sampling needs uniform
    // control flow for its implicit derivatives.
    let uv = unrotate(clamp(q, vec2<f32>(0.0), vec2<f32>(1.0)), layer.rotation);
    let s0 = textureSample(plane0, plane_sampler, uv);
    let s1 = textureSample(plane1, plane_sampler, uv);
    let s2 = textureSample(plane2, plane_sampler, uv);
    var rgb: vec3<f32>;
    switch layer.plane_layout {
        case LAYOUT_NV12: { rgb = yuv_to_rgb(vec3<f32>(s0.r, s1.r, s1.g)); }
        case LAYOUT_I420: { rgb = yuv_to_rgb(vec3<f32>(s0.r, s1.r, s2.r)); }
        default: { rgb = s0.rgb; }
    }
    if !inside {
        rgb = layer.letterbox.rgb;
    }
    return vec4<f32>(rgb, layer.opacity);
}
