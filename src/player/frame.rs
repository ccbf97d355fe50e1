//! Decoded pictures as they travel from a decoder to the renderer: the
//! plane layout (NV12, I420 or RGBA), the stream's colorimetry, and the
//! YUV → RGB matrix the shader applies. No pixel is converted on the CPU
//! here; the planes go to the GPU as they came out of the decoder.

use std::time::Duration;

use gstreamer_video::VideoFrameExt;

/// How a picture's bytes are laid out in planes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlaneLayout {
    /// Y plane, then one interleaved UV plane at half resolution.
    Nv12,
    /// Y, U and V planes, chroma at half resolution.
    I420,
    /// One plane of 8-bit R, G, B, A (stills).
    Rgba,
}

impl PlaneLayout {
    /// The fragment entry point of `shaders/layer.wgsl` that converts it.
    pub fn fragment_entry(self) -> &'static str {
        match self {
            PlaneLayout::Nv12 => "fs_nv12",
            PlaneLayout::I420 => "fs_i420",
            PlaneLayout::Rgba => "fs_rgba",
        }
    }

    /// Every layout, in a fixed order.
    pub const ALL: [PlaneLayout; 3] = [PlaneLayout::Nv12, PlaneLayout::I420, PlaneLayout::Rgba];
}

/// The YUV → RGB matrix a stream was encoded with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorMatrix {
    /// SD (BT.601 / SMPTE 170M).
    Bt601,
    /// HD (BT.709).
    Bt709,
    /// UHD (BT.2020 non-constant luminance).
    Bt2020,
}

/// Whether 8-bit luma spans 16–235 (limited, "TV") or 0–255 (full, "PC").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorRange {
    /// Y 16–235, chroma 16–240.
    Limited,
    /// Y and chroma 0–255.
    Full,
}

/// What the shader needs to turn a stream's YUV into RGB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Colorimetry {
    /// Matrix coefficients.
    pub matrix: ColorMatrix,
    /// Quantisation range.
    pub range: ColorRange,
}

impl Colorimetry {
    /// Three rows of a 3×4 matrix taking `(y, u, v, 1)` (texture values in
    /// 0..1) to non-linear R'G'B' in 0..1: range expansion, chroma offset
    /// and the matrix folded into one multiply-add per channel.
    pub fn yuv_to_rgb_rows(self) -> [[f32; 4]; 3] {
        let (kr, kb) = match self.matrix {
            ColorMatrix::Bt601 => (0.299_f32, 0.114_f32),
            ColorMatrix::Bt709 => (0.2126, 0.0722),
            ColorMatrix::Bt2020 => (0.2627, 0.0593),
        };
        let kg = 1.0 - kr - kb;
        // y' = (y - y_offset) * y_scale; c' = (c - 128/255) * c_scale.
        let (y_offset, y_scale, c_scale) = match self.range {
            ColorRange::Limited => (16.0 / 255.0, 255.0 / 219.0, 255.0 / 224.0),
            ColorRange::Full => (0.0, 1.0, 1.0),
        };
        let c_offset = 128.0 / 255.0;
        // R = Y + r_v·V, G = Y + g_u·U + g_v·V, B = Y + b_u·U.
        let r_v = 2.0 * (1.0 - kr);
        let g_u = -2.0 * kb * (1.0 - kb) / kg;
        let g_v = -2.0 * kr * (1.0 - kr) / kg;
        let b_u = 2.0 * (1.0 - kb);
        let row = |u_coef: f32, v_coef: f32| {
            let y = y_scale;
            let u = u_coef * c_scale;
            let v = v_coef * c_scale;
            [y, u, v, -y_offset * y - c_offset * u - c_offset * v]
        };
        [row(0.0, r_v), row(g_u, g_v), row(b_u, 0.0)]
    }
}

impl Default for Colorimetry {
    /// What GStreamer assumes for SD content without colorimetry in its caps.
    fn default() -> Self {
        Colorimetry {
            matrix: ColorMatrix::Bt601,
            range: ColorRange::Limited,
        }
    }
}

/// The pixels of one picture.
#[derive(Debug)]
pub enum Pixels {
    /// A mapped GStreamer buffer: planes as the decoder wrote them (boxed:
    /// the mapping record is large and pictures move through channels).
    Video(Box<gstreamer_video::VideoFrame<gstreamer_video::video_frame::Readable>>),
    /// A decoded still, tightly packed RGBA.
    Still(image::RgbaImage),
}

/// One decoded picture with its timing relative to the stream start.
#[derive(Debug)]
pub struct Frame {
    /// Presentation timestamp as the stream stamped it.
    pub pts: Duration,
    /// How long it should stay on screen, when the stream says.
    pub duration: Option<Duration>,
    /// Picture size in pixels.
    pub width: u32,
    /// Picture height in pixels.
    pub height: u32,
    /// Plane layout of `pixels`.
    pub layout: PlaneLayout,
    /// How to turn its YUV into RGB (ignored for RGBA).
    pub colorimetry: Colorimetry,
    /// The bytes.
    pub pixels: Pixels,
}

impl Frame {
    /// Plane `index` as `(bytes, bytes per row, rows)`.
    pub fn plane(&self, index: usize) -> Option<(&[u8], u32, u32)> {
        match &self.pixels {
            Pixels::Video(frame) => {
                let data = frame.plane_data(index as u32).ok()?;
                let stride = *frame.plane_stride().get(index)?;
                let rows = if index == 0 {
                    self.height
                } else {
                    self.height.div_ceil(2)
                };
                Some((data, u32::try_from(stride).ok()?, rows))
            }
            Pixels::Still(image) if index == 0 => {
                Some((image.as_raw(), image.width() * 4, image.height()))
            }
            Pixels::Still(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(rows: [[f32; 4]; 3], yuv: [f32; 3]) -> [f32; 3] {
        rows.map(|r| r[0] * yuv[0] + r[1] * yuv[1] + r[2] * yuv[2] + r[3])
    }

    #[test]
    fn limited_range_black_and_white_map_to_0_and_1() {
        let rows = Colorimetry::default().yuv_to_rgb_rows();
        let black = apply(rows, [16.0 / 255.0, 128.0 / 255.0, 128.0 / 255.0]);
        let white = apply(rows, [235.0 / 255.0, 128.0 / 255.0, 128.0 / 255.0]);
        for c in black {
            assert!(c.abs() < 1e-4, "{black:?}");
        }
        for c in white {
            assert!((c - 1.0).abs() < 1e-4, "{white:?}");
        }
    }

    #[test]
    fn bt709_full_range_red_round_trips() {
        // BT.709 full-range encoding of pure red (1, 0, 0).
        let (kr, kb) = (0.2126_f32, 0.0722_f32);
        let y = kr;
        let u = (0.0 - y) / (2.0 * (1.0 - kb)) + 0.5 * 255.0 / 255.0 + (128.0 / 255.0 - 0.5);
        let v = (1.0 - y) / (2.0 * (1.0 - kr)) + 128.0 / 255.0;
        let rgb = apply(
            Colorimetry {
                matrix: ColorMatrix::Bt709,
                range: ColorRange::Full,
            }
            .yuv_to_rgb_rows(),
            [y, u, v],
        );
        assert!(
            (rgb[0] - 1.0).abs() < 1e-3 && rgb[1].abs() < 1e-3 && rgb[2].abs() < 1e-3,
            "{rgb:?}"
        );
    }
}
